"""Offline gates for the stack template, run by `make test` (moto is up and
AWS_ENDPOINT_URL set by scripts/with-moto.sh):

1. `sam validate --lint`, and cfn-lint at error level;
2. checkov: every failed check must be listed, with its reason, in checkov-skips.yaml;
3. the offline SAM -> CloudFormation transform (samtranslator, no AWS calls);
4. assertions on the transformed JSON for what moto does not create (HTTP API
   routes, alarms, dashboard) and for the rules the stack must keep (no `*` IAM
   actions, partial batch responses, visibility >= 6x the consumer's timeout);
5. a CloudFormation deploy into moto, then assertions on what exists there.

Each failure names the gate and what is wrong; the exit code is non-zero.
"""

import json
import re
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import yaml
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

INFRA = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TEMPLATE = INFRA / "template.yaml"

REPO = INFRA.parent


def examples():
    """Every example customer's plan, rendered by `ferry deploy --dry-run --json`."""
    plans = []
    for f in sorted(INFRA.glob("partners/*/customers/*.toml")):
        partner, customer = f.parent.parent.name, f.stem
        r = subprocess.run(["cargo", "run", "--quiet", "--locked", "-p", "ferry-cli", "--bin", "ferry", "--",
                            "deploy", "--partner", partner, "--customer", customer, "--dry-run", "--json"],
                           capture_output=True, text=True, cwd=REPO)
        gate(f"ferry deploy --dry-run renders {partner}/{customer}", r.returncode == 0, r.stderr[-1000:])
        if r.returncode == 0:
            plans.append(json.loads(r.stdout)["plan"])
    return plans


failures = []


def gate(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}")
    if not ok:
        failures.append(f"{name}: {detail}")


def run(args):
    env = dict(os.environ, SAM_CLI_TELEMETRY="0", AWS_DEFAULT_REGION="us-east-1")
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=INFRA)


def lint():
    r = run([str(BIN / "sam"), "validate", "--lint", "-t", str(TEMPLATE)])
    gate("sam validate --lint", r.returncode == 0, (r.stdout + r.stderr)[-2000:])
    r = run([str(BIN / "cfn-lint"), "--non-zero-exit-code", "error", str(TEMPLATE)])
    gate("cfn-lint (errors)", r.returncode == 0, (r.stdout + r.stderr)[-2000:])


def checkov():
    skips = yaml.safe_load((INFRA / "checkov-skips.yaml").read_text())
    unjustified = [k for k, v in skips.items() if not str(v or "").strip()]
    gate("every checkov skip has a reason", not unjustified, ", ".join(unjustified))
    r = run([str(BIN / "checkov"), "-f", str(TEMPLATE), "--framework", "cloudformation",
             "--skip-check", ",".join(skips), "-o", "json", "--quiet", "--compact"])
    try:
        report = json.loads(r.stdout)
    except json.JSONDecodeError:
        gate("checkov ran", False, (r.stdout + r.stderr)[-2000:])
        return
    failed = report.get("results", {}).get("failed_checks", [])
    gate("checkov: no failed check outside the justified skips", not failed,
         "; ".join(f"{c['check_id']} {c['resource']}" for c in failed))


def transformed(parameters=None, label="the template"):
    tpl = yaml_parse(TEMPLATE.read_text())
    for r in tpl["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = "s3://ferry-artifacts/functions.zip"  # what `sam package` writes
            r.pop("Metadata", None)
        if r["Type"] == "AWS::Serverless::LayerVersion":
            r["Properties"]["ContentUri"] = "s3://ferry-artifacts/config.zip"
    tpl.get("Globals", {}).get("Function", {}).pop("CodeUri", None)

    class NoManagedPolicies:  # only consulted for AWS managed policy names; the template uses none
        def load(self):
            return {}

    cfn = transform(tpl, parameters or {}, NoManagedPolicies())
    gate(f"SAM -> CloudFormation transform of {label}", bool(cfn.get("Resources")))
    return cfn


def of_type(cfn, t):
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == t}


def template_rules(cfn):
    routes = sorted(r["Properties"]["RouteKey"] for r in of_type(cfn, "AWS::ApiGatewayV2::Route").values()) \
        if of_type(cfn, "AWS::ApiGatewayV2::Route") else sorted(
            f"{m.upper()} {p}" for api in of_type(cfn, "AWS::ApiGatewayV2::Api").values()
            for p, ops in api["Properties"].get("Body", {}).get("paths", {}).items() for m in ops)
    gate("one webhook route for every connector",
         routes == ["POST /webhooks/{connector}/{tenant}"], str(routes))
    stages = of_type(cfn, "AWS::ApiGatewayV2::Stage")
    gate("HTTP API has throttling and access logs", any(
        s["Properties"].get("DefaultRouteSettings", {}).get("ThrottlingRateLimit") and
        s["Properties"].get("AccessLogSettings") for s in stages.values()), str(list(stages)))

    for name, role in of_type(cfn, "AWS::IAM::Role").items():
        for pol in role["Properties"].get("Policies", []):
            for st in pol["PolicyDocument"]["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                bad = [a for a in actions if "*" in a]
                gate(f"{name}: no wildcard actions", not bad, str(bad))

    for name, role in of_type(cfn, "AWS::IAM::Role").items():
        statements = [st for pol in role["Properties"].get("Policies", []) for st in pol["PolicyDocument"]["Statement"]]
        gate(f"{name}: the audit log is append-only", any(
            st["Effect"] == "Deny" and set(st["Action"]) == {"dynamodb:UpdateItem", "dynamodb:DeleteItem"}
            and "*#audit" in json.dumps(st.get("Condition", {})) for st in statements))
        gate(f"{name}: no table scans", not any("dynamodb:Scan" in st["Action"] for st in statements if st["Effect"] == "Allow"))

    functions = of_type(cfn, "AWS::Lambda::Function")
    gate("five functions, arm64, provided.al2023", len(functions) == 5 and all(
        f["Properties"]["Architectures"] == ["arm64"] and f["Properties"]["Runtime"] == "provided.al2023"
        for f in functions.values()), str(list(functions)))
    mappings = of_type(cfn, "AWS::Lambda::EventSourceMapping")
    gate("every SQS event source reports partial batch failures", len(mappings) == 2 and all(
        m["Properties"].get("FunctionResponseTypes") == ["ReportBatchItemFailures"] for m in mappings.values()),
        json.dumps(mappings)[:500])
    gate("post consumers are capped for the ERP", any(
        m["Properties"].get("ScalingConfig", {}).get("MaximumConcurrency") for m in mappings.values()))

    queues = of_type(cfn, "AWS::SQS::Queue")
    for m in mappings.values():
        queue = m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
        consumer = m["Properties"]["FunctionName"]["Ref"]
        timeout = functions[consumer]["Properties"].get("Timeout", 3)
        vis = queues[queue]["Properties"]["VisibilityTimeout"]
        gate(f"{queue}: visibility >= 6x its consumer's timeout", vis >= 6 * timeout, f"{vis}s for a {timeout}s consumer")
        gate(f"{queue}: has a dead-letter queue", "RedrivePolicy" in queues[queue]["Properties"])

    table = next(iter(of_type(cfn, "AWS::DynamoDB::Table").values()))["Properties"]
    gate("table: PITR, TTL, encryption",
         table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
         and table["TimeToLiveSpecification"]["AttributeName"] == "ttl"
         and table["SSESpecification"]["SSEEnabled"] is True)

    alarms = of_type(cfn, "AWS::CloudWatch::Alarm")
    metrics = sorted({a["Properties"]["MetricName"] for a in alarms.values()})
    gate("alarms: DLQ depth, backlog age, errors, throttles, retries, reconciliation",
         {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "Errors", "Throttles",
          "Retried", "ErpThrottled", "TenantsMismatched"} <= set(metrics), str(metrics))
    gate("every alarm notifies the topic", all(a["Properties"].get("AlarmActions") for a in alarms.values()))
    gate("a dashboard", len(of_type(cfn, "AWS::CloudWatch::Dashboard")) == 1)
    logs = of_type(cfn, "AWS::Logs::LogGroup")
    gate("log groups with retention", len(logs) >= 6 and all(l["Properties"].get("RetentionInDays") for l in logs.values()))
    rules = of_type(cfn, "AWS::Events::Rule")

    def target_input(t):
        # A constant input, or one built with Fn::Sub (its ${...} stand for text).
        raw = t.get("Input", "{}")
        if isinstance(raw, dict):
            raw = raw.get("Fn::Sub", "{}")
            raw = raw[0] if isinstance(raw, list) else raw
            raw = re.sub(r"\$\{[^}]*\}", "x", raw)
        return json.loads(raw)

    inputs = [target_input(t) for r in rules.values() for t in r["Properties"]["Targets"]]
    polled = sorted(d for i in inputs for d in i.get("domains", []))
    gate("a poll schedule per domain", polled == sorted(
        ["time_entries", "expenses", "customers", "projects", "invoices", "credit_memos", "payments"]), str(polled))
    gate("the sweep and reconcile schedules", sum(
        1 for i in inputs if i.get("action") in ("sweep", "reconcile")) == 2)
    gate("the webhook subscriptions are renewed at the stack's webhook API", any(
        i.get("action") == "subscribe" and i.get("base", "").startswith("https://") for i in inputs))


def deploy(cfn, plan):
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if not endpoint.startswith("http://127.0.0.1"):
        gate("moto is running (AWS_ENDPOINT_URL)", False, "run through `make test` (scripts/with-moto.sh)")
        return
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    cf, s3, sqs, ddb, ev, iam = (boto3.client(s, **kw) for s in ("cloudformation", "s3", "sqs", "dynamodb", "events", "iam"))
    if "ferry-artifacts" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="ferry-artifacts")
    s3.put_object(Bucket="ferry-artifacts", Key="functions.zip", Body=b"PK\x05\x06" + b"\0" * 18)
    # moto answers 500 for outputs that read attributes of resources it skips; keep the rest.
    body = dict(cfn, Outputs={k: v for k, v in cfn.get("Outputs", {}).items() if k != "WebhookBaseUrl"})
    name = plan["stack_name"]
    cf.create_stack(StackName=name, TemplateBody=json.dumps(body),
                    Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in plan["parameters"].items()],
                    Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    for _ in range(100):
        status = cf.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS"):
            break
        time.sleep(0.2)
    gate(f"{name} deploys into moto", status == "CREATE_COMPLETE", status)
    prefix = name
    tables = ddb.list_tables()["TableNames"]
    gate(f"{name}: table exists", f"{prefix}-state" in tables, str(tables))
    urls = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    by_name = {u.rsplit("/", 1)[1]: u for u in urls}
    for q in ("transform", "post"):
        url = by_name.get(f"{prefix}-{q}")
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"] if url else {}
        redrive = json.loads(attrs.get("RedrivePolicy", "{}"))
        gate(f"{name}: {q} queue redrives to its DLQ", redrive.get("deadLetterTargetArn", "").endswith(f"{prefix}-{q}-dlq")
             and str(redrive.get("maxReceiveCount")) == "5", str(redrive))
    resources = cf.list_stack_resources(StackName=name)["StackResourceSummaries"]
    kinds = [r["ResourceType"] for r in resources]
    gate(f"{name}: ten schedule rules", kinds.count("AWS::Events::Rule") == 10, str(kinds))
    gate(f"{name}: one role per function", kinds.count("AWS::IAM::Role") == 5, str(kinds))
    rules = {r["Name"]: r.get("ScheduleExpression") for r in ev.list_rules()["Rules"]}
    expected = {plan["parameters"][k] for k in ("PollFrequentSchedule", "PollDailySchedule", "SweepSchedule", "ReconcileSchedule")}
    gate(f"{name}: the tier's schedules", expected <= set(rules.values()), str(sorted(expected - set(rules.values()))))


if __name__ == "__main__":
    lint()
    checkov()
    cfn = transformed()
    template_rules(cfn)
    plans = examples()
    gate("two example partners with two customers each, at different tiers",
         len(plans) == 4 and len({p["partner"] for p in plans}) == 2 and len({p["tier"] for p in plans}) >= 3,
         str([(p["partner"], p["customer"], p["tier"]) for p in plans]))
    for plan in plans:
        deploy(transformed(plan["parameters"], plan["stack_name"]), plan)
    if failures:
        print(f"\n{len(failures)} infrastructure gate(s) failed")
        sys.exit(1)
    print("\nall infrastructure gates passed")
