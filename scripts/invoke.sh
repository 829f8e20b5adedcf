#!/usr/bin/env bash
# Replays one sample event through a function, the way Lambda would run it:
#   scripts/invoke.sh transform events/transform/sqs-change-notices.json
# Starts moto, the simulators with a provisioned stack (`ferry sim --aws`),
# and `cargo lambda watch` with the stack's environment; then
# `cargo lambda invoke` sends the event and prints the function's answer.
# Everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
FN=${1:?usage: invoke.sh <function> <event.json>}
EVENT=${2:?usage: invoke.sh <function> <event.json>}
case $FN in intake|transform|post|retry|reconcile) ;; *) echo "invoke: no function '$FN' (intake, transform, post, retry, reconcile)" >&2; exit 2;; esac
[[ -f $EVENT ]] || { echo "invoke: no event file '$EVENT'" >&2; exit 2; }
if [[ -z ${AWS_ENDPOINT_URL:-} ]]; then exec scripts/with-moto.sh "$0" "$@"; fi
export PATH="$PWD/.venv/bin:$PATH"
DIR=.ferry/invoke
rm -rf "$DIR" && mkdir -p "$DIR"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
cargo build --quiet --locked -p ferry-cli --bin ferry -p "$FN"
# The sample ConnectWise callback names its key URL on 127.0.0.1:8401 (and is signed
# with the simulator's demo key), so intake's samples verify against this simulator.
SIM_ARGS=()
if [[ $FN == intake ]]; then SIM_ARGS=(--connectwise-addr 127.0.0.1:8401); fi
./target/debug/ferry --log error sim --members 12 --dir "$DIR" --db "$DIR/ferry.db" --aws "invoke-$$" "${SIM_ARGS[@]}" > "$DIR/sim.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 200); do [[ -f $DIR/lambda.env ]] && break; sleep 0.1; done
[[ -f $DIR/lambda.env ]] || { echo "invoke: the simulators did not come up; see $DIR/sim.log" >&2; cat "$DIR/sim.log" >&2; exit 1; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cargo lambda watch -A 127.0.0.1 -P "$PORT" --env-file "$DIR/lambda.env" -p "$FN" > "$DIR/watch.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 600); do
  if (echo > /dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then break; fi
  sleep 0.1
done
cargo lambda invoke "$FN" --invoke-address 127.0.0.1 --invoke-port "$PORT" --data-file "$EVENT"
echo
echo "invoke: function logs are in $DIR/watch.log" >&2
