#!/usr/bin/env bash
# Runs a command with moto (the AWS emulator) up on loopback, then stops it.
#   scripts/with-moto.sh cargo test --workspace
# moto comes from the project's venv (`make tools`). The command sees
# AWS_ENDPOINT_URL and test credentials; nothing reaches real AWS.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO=${MOTO_SERVER:-.venv/bin/moto_server}
if [[ ! -x $MOTO ]]; then
  echo "with-moto: $MOTO not found; run 'make tools' first" >&2
  exit 2
fi
# A free port on loopback, chosen by the kernel.
PORT=${MOTO_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
mkdir -p .ferry
"$MOTO" -H 127.0.0.1 -p "$PORT" > .ferry/moto.log 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null || true; wait $MOTO_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$PORT/moto-api/" > /dev/null 2>&1; then break; fi
  if ! kill -0 $MOTO_PID 2>/dev/null; then echo "with-moto: moto exited; see .ferry/moto.log" >&2; exit 2; fi
  sleep 0.1
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
  AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
echo "with-moto: moto on $AWS_ENDPOINT_URL (pid $MOTO_PID)" >&2
"$@"
