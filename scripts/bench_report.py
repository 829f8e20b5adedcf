#!/usr/bin/env python3
"""Summarise a `ferry run --json` result and `/usr/bin/time -v` output (make bench)."""
import json
import sys

result = json.load(open(sys.argv[1]))
time_lines = open(sys.argv[2]).read().splitlines()


def time_field(name):
    for line in time_lines:
        if line.strip().startswith(name):
            return line.split(":", 1)[1].strip()
    return "?"


summary = result["summary"]
seen = sum(d["seen"] for d in summary["domains"].values())
phases = dict(result["phases"])
backfill = phases.get("backfill", 0) or 1
print(f"records processed       {seen}")
print(f"wall clock              {result['elapsed_seconds']} s  ({', '.join(f'{k} {v} s' for k, v in result['phases'])})")
print(f"backfill throughput     {seen // backfill} records/s (whole pipeline, Xero limits included)")
print(f"webhook→ERP latency     p50 {summary['latency']['p50_ms']} ms, p95 {summary['latency']['p95_ms']} ms over {summary['latency']['samples']} records")
print(f"ERP calls               {summary['erp_calls']['last_day']} of {summary['erp_daily_limit']} per day")
print(f"peak memory (RSS)       {time_field('Maximum resident set size')} KB")
print(f"CPU                     user {time_field('User time (seconds)')} s, system {time_field('System time (seconds)')} s")
print(f"unexplained             {len(result['unexplained'])}")
sys.exit(1 if result["unexplained"] else 0)
