# Ferry — the two commands that matter are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
FERRY := $(CARGO) run --quiet --locked -p ferry-cli --bin ferry --

.PHONY: run test lint fmt build bench schema clean help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

run: ## The demo: simulators, a 600-person firm, backfill, live webhooks, payments, reconciliation, summary
	$(FERRY) --log error run

test: ## Every test: unit, contract suites, end-to-end scenarios, the Xero spec contract
	$(CARGO) test --workspace --locked

lint: ## Formatting and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

build: ## Release build of every binary
	$(CARGO) build --workspace --release --locked

bench: ## Throughput, latency and peak memory of the demo, release build (see README "Measurements")
	$(CARGO) build --release --locked -p ferry-cli --bin ferry
	/usr/bin/time -v ./target/release/ferry --log error run --quiet --json --db .ferry/bench.db > .ferry/bench.json 2> .ferry/bench.time
	@python3 scripts/bench_report.py .ferry/bench.json .ferry/bench.time

schema: ## Regenerate the canonical model's JSON Schema after a deliberate model change
	$(CARGO) run --quiet -p ferry-canon --example export_schema

clean: ## Remove build output and local state
	$(CARGO) clean
	rm -rf .ferry
