# Ferry — the two commands that matter are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
FERRY := $(CARGO) run --quiet --locked -p ferry-cli --bin ferry --

VENV := .venv
TOOLS := $(VENV)/.installed
VENV_IAC := .venv-iac
TOOLS_IAC := $(VENV_IAC)/.installed

.PHONY: run run-real real-systems test test-clock sim soak lint fmt build tools browser deploy infra-check bench schema clean help

help: ## List the targets
	@grep -E '^[a-z%-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

run: ## The demo: simulators, a 600-person firm, backfill, live webhooks, payments, reconciliation, summary
	$(FERRY) --log error run

test: $(TOOLS) $(TOOLS_IAC) browser ## Every test: unit, contract suites (SQLite and AWS on moto), end-to-end on both and against real Redmine and Tryton, the console in headless Chromium, Xero spec contract, infrastructure gates
	scripts/with-moto.sh scripts/with-real-systems.sh bash -c '$(CARGO) test --workspace --locked && $(VENV_IAC)/bin/python infra/gates.py'

# The date the year-boundary run starts every test binary at: a minute before a new year.
CLOCK_YEAR_END ?= 2027-12-31 23:59:00
# Every integration-test target but tests/tests/real.rs (its dates are fixed to
# October 2026 and it was run shifted by hand; see the README's Time section) and
# tests/tests/simulation.rs (it runs on its own manual clock, which a shifted
# system clock does not move), and tests/tests/scenarios.rs (fault sequences over
# the fixed October 2026 firm, with only relative waits; the calendar rules they
# pass through are covered by pipeline, reconcile and money, which do run
# shifted). It keeps CI within its 40 minutes.
TESTS_BUT_REAL = $(shell $(CARGO) metadata --no-deps --format-version 1 --locked | python3 -c 'import json,sys; print(" ".join(sorted({"--test "+t["name"] for p in json.load(sys.stdin)["packages"] for t in p["targets"] if "test" in t["kind"] and t["name"] not in ("real", "simulation", "scenarios")})))')
test-clock: $(TOOLS) ## The tests again under a shifted clock (faketime): every binary but the real-system one starting a minute before a new year; then unit, intake and lambda 400 days ahead
	scripts/with-shifted-clock.sh '$(CLOCK_YEAR_END)' scripts/with-moto.sh \
	  $(CARGO) test --workspace --locked --lib --bins $(TESTS_BUT_REAL)
	scripts/with-shifted-clock.sh +400d \
	  $(CARGO) test --workspace --locked --lib --bins --test intake --test lambda

FERRY_SIM_SEED ?= 1
FERRY_SIM_SEEDS ?= 8
sim: ## The deterministic simulation: FERRY_SIM_SEEDS seeds from FERRY_SIM_SEED (faults, crashes, finance; checked against a fault-free run)
	FERRY_SIM_SEED=$(FERRY_SIM_SEED) FERRY_SIM_SEEDS=$(FERRY_SIM_SEEDS) $(CARGO) test --locked -p ferry-tests --test simulation -- --nocapture

SOAK_SEEDS ?= 850
SOAK_STEPS ?= 1500
SOAK_MEMBERS ?= 30
SOAK_JOBS ?= 2
soak: ## The simulation over many seeds in a release build (SOAK_SEEDS larger seeds on SOAK_JOBS threads); prints records, faults per kind and invariant violations
	set -o pipefail; FERRY_SIM_SEED=$(FERRY_SIM_SEED) FERRY_SIM_SEEDS=$(SOAK_SEEDS) FERRY_SIM_STEPS=$(SOAK_STEPS) FERRY_SIM_MEMBERS=$(SOAK_MEMBERS) FERRY_SIM_JOBS=$(SOAK_JOBS) $(CARGO) test --release --locked -p ferry-tests --test simulation -- --nocapture 2>&1 | grep -E '^(seed|simulation:|  seed|test result|thread|[0-9]+ of)'

run-real: ## The flow against real software: Redmine (PSA) into Tryton (ERP) on loopback, seeded, synced, reconciled, summarised
	$(CARGO) build --quiet --locked -p ferry-cli --bin ferry
	scripts/with-real-systems.sh ./target/debug/ferry --log error run-real

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser: ## Install headless Chromium and chromedriver from Debian when missing (the console's browser tests drive them)
	@command -v chromedriver >/dev/null && command -v chromium >/dev/null || { \
	  echo "installing chromium and chromium-driver (Debian apt)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; }

real-systems: ## Install Redmine (apt) and Tryton (PyPI) and build their snapshot databases (make test does it when needed)
	tests/realsys/install.sh

deploy: $(TOOLS) $(TOOLS_IAC) ## Deploy a customer stack: make deploy PARTNER=northwind CUSTOMER=acme [DRY_RUN=1]
	@test -n "$(PARTNER)" -a -n "$(CUSTOMER)" || { echo "usage: make deploy PARTNER=<partner> CUSTOMER=<customer> [DRY_RUN=1]" >&2; exit 2; }
	$(FERRY) deploy --partner $(PARTNER) --customer $(CUSTOMER) $(if $(DRY_RUN),--dry-run,)

infra-check: $(TOOLS_IAC) ## Only the infrastructure gates: SAM validate, cfn-lint, checkov, transform, deploy into moto
	scripts/with-moto.sh $(VENV_IAC)/bin/python infra/gates.py

tools: $(TOOLS) $(TOOLS_IAC) ## Install the Python-packaged tools: moto, cargo-lambda, zig (.venv); SAM CLI, cfn-lint, checkov (.venv-iac)

$(TOOLS_IAC): tools/requirements-iac.txt
	python3 -m venv $(VENV_IAC)
	$(VENV_IAC)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-iac.txt
	touch $@

$(TOOLS): tools/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	touch $@

lint: ## Formatting and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

build: $(TOOLS) ## Release Lambda zips for every function (cargo lambda, arm64; x86-64 fallback) and their sizes
	scripts/build-lambdas.sh

invoke-%: $(TOOLS) ## Replay an event through a function: make invoke-transform EVENT=events/transform/sqs-change-notices.json
	@test -n "$(EVENT)" || { echo "usage: make invoke-$* EVENT=events/$*/<case>.json" >&2; exit 2; }
	scripts/invoke.sh $* $(EVENT)

bench: ## Throughput, latency and peak memory of the demo, release build (see README "Measurements")
	$(CARGO) build --release --locked -p ferry-cli --bin ferry
	/usr/bin/time -v ./target/release/ferry --log error run --quiet --json --db .ferry/bench.db > .ferry/bench.json 2> .ferry/bench.time
	@python3 scripts/bench_report.py .ferry/bench.json .ferry/bench.time

schema: ## Regenerate the canonical model's JSON Schema after a deliberate model change
	$(CARGO) run --quiet -p ferry-canon --example export_schema

clean: ## Remove build output and local state
	$(CARGO) clean
	rm -rf .ferry
