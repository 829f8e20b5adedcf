#!/usr/bin/env bash
# Runs a command with the real systems up on loopback, then stops them:
#   scripts/with-real-systems.sh cargo test -p ferry-tests --test real
# Installs Tryton (PyPI) and Redmine (Debian apt, needs root the first time) and
# builds their snapshot databases if needed (tests/realsys/install.sh), starts
# both from fresh copies (tests/realsys/ctl.sh) and exports FERRY_REDMINE_* and
# FERRY_TRYTON_* for the command.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/realsys/install.sh
trap 'tests/realsys/ctl.sh stop' EXIT
ENV=$(tests/realsys/ctl.sh start)
while IFS= read -r line; do export "$line"; done <<< "$ENV"
echo "with-real-systems: Redmine on $FERRY_REDMINE_URL, Tryton on $FERRY_TRYTON_URL" >&2
"$@"
