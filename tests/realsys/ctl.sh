#!/usr/bin/env bash
# Starts, stops and resets the real systems from their snapshots (install.sh builds them).
#   ctl.sh start     fresh copies of both snapshots, both servers up; prints the env to export
#   ctl.sh restore   stop, fresh copies, start again (each test scenario starts here)
#   ctl.sh stop      stop both servers
# Ports: FERRY_TRYTON_PORT and FERRY_REDMINE_PORT (free loopback ports when unset at start;
# restore reuses the ports start chose).
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE=.ferry/realsys
SNAP=$STATE/snapshots
RUN=$STATE/run
VENV=.venv-tryton
say() { echo "realsys: $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

stop_pid() {
  local f=$1
  [[ -f $f ]] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop() {
  stop_pid $RUN/tryton.pid
  stop_pid $RUN/redmine.pid
}

wait_for() { # name url [post-body]
  for _ in $(seq 1 300); do
    if [[ -n ${3:-} ]]; then
      curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d "$3" "$2" && return 0
    else
      curl -sf -o /dev/null "$2" && return 0
    fi
    sleep 0.1
  done
  say "$1 did not answer on $2; see $RUN/$1.log"; return 1
}

start() {
  [[ -s $SNAP/erp.sqlite && -s $SNAP/redmine.sqlite3 ]] || { say "no snapshots; run tests/realsys/install.sh"; exit 2; }
  mkdir -p "$RUN/tryton"
  if [[ ! -f $RUN/ports ]]; then
    echo "${FERRY_TRYTON_PORT:-$(free_port)} ${FERRY_REDMINE_PORT:-$(free_port)}" > $RUN/ports
  fi
  read -r TP RP < $RUN/ports
  # Fresh databases: a copy of each snapshot, without stale WAL files.
  rm -f $RUN/tryton/erp.sqlite* $RUN/redmine.sqlite3*
  cp $SNAP/erp.sqlite $RUN/tryton/erp.sqlite
  cp $SNAP/redmine.sqlite3 $RUN/redmine.sqlite3
  printf '[database]\nuri = sqlite://\npath = %s\nlist = False\n[web]\nlisten = 127.0.0.1:%s\n[session]\nmax_attempt = 1000\n' \
    "$(realpath $RUN/tryton)" "$TP" > $RUN/trytond.conf
  # -d names the database at start (8.2.1 fails lazy pool init on the first request).
  setsid "$VENV/bin/trytond" -c $RUN/trytond.conf -d erp > $RUN/tryton.log 2>&1 < /dev/null &
  echo $! > $RUN/tryton.pid
  local run; run=$(realpath $RUN)
  ( cd /usr/share/redmine && RAILS_ENV=production DATABASE_URL="sqlite3:$run/redmine.sqlite3" \
      exec setsid bin/rails server -u webrick -b 127.0.0.1 -p "$RP" -P "$run/redmine-rails.pid" \
      > "$run/redmine.log" 2>&1 < /dev/null ) &
  echo $! > $RUN/redmine.pid
  wait_for tryton "http://127.0.0.1:$TP/rpc/" '{"id":0,"method":"common.server.version","params":[]}'
  wait_for redmine "http://127.0.0.1:$RP/"
}

env_lines() {
  read -r TP RP < $RUN/ports
  echo "FERRY_TRYTON_URL=http://127.0.0.1:$TP"
  echo "FERRY_TRYTON_DB=erp"
  echo "FERRY_TRYTON_REST_KEY=${FERRY_TRYTON_REST_KEY:-ferry-e2e-rest-key-0123456789abcdef}"
  echo "FERRY_REDMINE_URL=http://127.0.0.1:$RP"
  echo "FERRY_REDMINE_API_KEY=${FERRY_REDMINE_API_KEY:-feedfacefeedfacefeedfacefeedfacefeedface}"
  echo "FERRY_REALSYS_CTL=$(realpath tests/realsys/ctl.sh)"
}

case ${1:-} in
  start) stop; rm -f $RUN/ports; start; env_lines ;;
  restore) stop; start ;;
  stop) stop; rm -f $RUN/ports ;;
  env) env_lines ;;
  *) echo "usage: $0 start|restore|stop|env" >&2; exit 2 ;;
esac
