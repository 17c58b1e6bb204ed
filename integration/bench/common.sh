# Shared by the benchmark scripts (sourced): builds the release binaries, makes a work
# directory (removed on exit), picks a port, and starts / stops strata on it.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --release --quiet -p strata-gateway -p strata-bench
W=$(mktemp -d "${BENCH_DIR:-$PWD/target}/bench.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=benchadmin AWS_SECRET_ACCESS_KEY=benchadmin-secret
# Binaries where cargo put them (CI and the developers' machines keep a target directory
# outside the clone).
T=${CARGO_TARGET_DIR:-target}
BENCH="$T/release/strata-bench --endpoint http://127.0.0.1:$PORT"
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

# start_strata DATA_DIR [SERVER ARGS...]: a fresh server on $PORT, ready when this returns.
start_strata() {
    local data=$1; shift
    STRATA_ROOT_USER=$AWS_ACCESS_KEY_ID STRATA_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY \
        "$T/release/strata" server --address "127.0.0.1:$PORT" --data "$data" "$@" > "$data.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && return; sleep 0.1; done
    echo "strata did not become ready; see $data.log" >&2; return 1
}

stop_strata() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }

# Direct (O_DIRECT) write speed of the disk under $W, as dd reports it.
disk_write() { dd if=/dev/zero of="$W/dd.bin" bs=4M count=256 oflag=direct 2>&1 | tail -1; }
