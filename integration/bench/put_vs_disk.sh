#!/usr/bin/env bash
# Large PUT against the disk it lands on: direct-write speed (dd, O_DIRECT) right before and
# right after a 64 MiB PUT run on a fresh strata with DRIVES drive directories on that disk,
# because this kind of virtual disk changes speed within minutes.
# Usage: integration/bench/put_vs_disk.sh [DRIVES=4] [SECONDS=10]
set -euo pipefail
cd "$(dirname "$0")/../.."
DRIVES=${1:-4} SECS=${2:-10}
cargo build --release --quiet -p strata-gateway -p strata-bench
W=$(mktemp -d "${BENCH_DIR:-$PWD/target}/putdisk.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=benchadmin AWS_SECRET_ACCESS_KEY=benchadmin-secret
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
disk() { dd if=/dev/zero of="$W/dd.bin" bs=4M count=256 oflag=direct 2>&1 | tail -1; rm -f "$W/dd.bin"; }
echo "disk direct write before: $(disk)"
STRATA_ROOT_USER=$AWS_ACCESS_KEY_ID STRATA_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY \
    target/release/strata server --address "127.0.0.1:$PORT" --data "$W/data" --drives "$DRIVES" > "$W/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 0.1; done
target/release/strata-bench --endpoint "http://127.0.0.1:$PORT" --op put --size 64MiB --concurrency 4 \
    --duration "$SECS" --prefix p
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
echo "disk direct write after:  $(disk)"
