#!/usr/bin/env bash
# Cargo runner (see with-shifted-clock.sh): runs one test binary under faketime.
set -euo pipefail
if [[ $FERRY_FAKETIME == [+-]* ]]; then
  exec faketime -f "$FERRY_FAKETIME" "$@"
fi
exec faketime "$FERRY_FAKETIME" "$@"
