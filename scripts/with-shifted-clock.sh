#!/usr/bin/env bash
# Runs a cargo command whose test binaries see a shifted wall clock (libfaketime),
# so a test or code path that depends on the day it runs fails here, not on a
# later day in CI:
#   scripts/with-shifted-clock.sh +400d cargo test --workspace --lib --tests
#   scripts/with-shifted-clock.sh '2027-12-31 23:59:00' cargo test --test scenarios
# SHIFT is either an offset in faketime's -f form (+400d, -30d, +2h) or a date:
# then every test binary starts at that instant and its clock runs on from there
# (processes it spawns share its clock). Only the binaries cargo runs are shifted
# (they run through a cargo runner); cargo, rustc and services started outside
# (moto, Redmine, Tryton) keep the real clock, as a vendor's servers would.
# Installs faketime from Debian apt when it is missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
SHIFT=${1:?usage: with-shifted-clock.sh SHIFT CMD...  (SHIFT: +400d, or "2027-12-31 23:59:00")}
shift
if ! command -v faketime > /dev/null; then
  if [[ $EUID -ne 0 ]]; then
    echo "with-shifted-clock: faketime is not installed; install Debian's 'faketime' package (needs root)" >&2
    exit 2
  fi
  echo "with-shifted-clock: installing faketime (Debian apt)" >&2
  mkdir -p .ferry
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends faketime; } \
    > .ferry/apt-faketime.log 2>&1 || { tail -20 .ferry/apt-faketime.log >&2; exit 2; }
fi
export FERRY_FAKETIME=$SHIFT
RUNNER=$PWD/scripts/faketime-runner.sh
# Prove the shift takes before trusting a green run: the faked date must differ from today.
if [[ "$("$RUNNER" date -u +%F)" == "$(date -u +%F)" ]]; then
  echo "with-shifted-clock: the shift $SHIFT does not move the date; refusing to run" >&2
  exit 2
fi
HOST=$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${HOST}_RUNNER=$RUNNER"
echo "with-shifted-clock: test binaries start at $("$RUNNER" date -u '+%F %T') UTC" >&2
"$@"
