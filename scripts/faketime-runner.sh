#!/usr/bin/env bash
# Cargo runner (see with-shifted-clock.sh): runs one test binary with libfaketime
# preloaded. FERRY_FAKETIME is an offset (+400d) or a date; a date becomes the
# offset from now, so the binary starts at that instant and every process it
# spawns shares its clock. The library is preloaded directly rather than through
# the `faketime` wrapper, which waits until every descendant has exited, and the
# real-system tests leave Tryton and Redmine running for the next scenario.
set -euo pipefail
case $FERRY_FAKETIME in
  [+-]*) offset=$FERRY_FAKETIME ;;
  *) offset=$(( $(date -u -d "$FERRY_FAKETIME" +%s) - $(date -u +%s) ))
     [[ $offset == -* ]] || offset="+$offset" ;;
esac
export LD_PRELOAD="/usr/\$LIB/faketime/libfaketime.so.1${LD_PRELOAD:+:$LD_PRELOAD}" FAKETIME=$offset
exec "$@"
