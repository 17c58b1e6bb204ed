#!/usr/bin/env bash
# The multi-node cluster next to one node with the same total drives, in one run on the
# loopback (every node on this machine, every drive directory on its one disk):
#   one node with 8 drives (EC 4+4)  vs  4 nodes x 2 drives (one set of 8 across the nodes, EC 4+4)
# PUT and GET of 64 MiB objects (strata-bench), 4 KiB PUT and GET req/s (wrk, presigned),
# ListObjectsV2 pages of 1,000 keys; then one node killed and the 64 MiB GET again; and the
# internal RPC's mean latency per call from the nodes' own metrics. Load goes to node 1.
# Usage: integration/bench/cluster.sh [SECONDS=10]
set -euo pipefail
SECS=${1:-10}
source "$(dirname "$0")/common.sh"
export PATH="$PWD/.venv/bin:$PATH" # wrk-small.sh's presigning needs boto3
WRK=../shared/bench/wrk-small.sh

# Node 1's internal calls so far: "CALLS SECONDS" (0 0 on one node).
rpc_totals() {
    curl -s "$1/metrics" | awk '/^strata_peer_rpc_calls_total/ {c += $2} /^strata_peer_rpc_latency_seconds_total/ {s += $2} END {printf "%d %f\n", c, s}'
}
# The mean internal call between two rpc_totals readings.
rpc_mean() {
    echo "$1 $2" | awk '{c = $3 - $1; if (c > 0) printf "  internal calls: %d, mean %.2f ms each\n", c, 1000 * ($4 - $2) / c}'
}

scenarios() { # $1: endpoint
    local B="$T/release/strata-bench --endpoint $1 --duration $SECS" before
    $B --op put --size 64MiB --concurrency 4 --prefix s64m
    # Every internal call of a 64 MiB GET but a few record reads is one shard block.
    before=$(rpc_totals "$1")
    $B --op get --size 64MiB --concurrency 4 --prefix s64m --objects 16
    rpc_mean "$before" "$(rpc_totals "$1")"
    $B --op list --size 1KiB --concurrency 8 --objects 1000 --prefix l1k
    if [ -x "$WRK" ]; then
        before=$(rpc_totals "$1")
        "$WRK" "$1" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" 4096 "$SECS" 32
        rpc_mean "$before" "$(rpc_totals "$1")"
    fi
}

echo "## one node, 8 drives"
start_strata "$W/one" --drives 8
scenarios "http://127.0.0.1:$PORT"
stop_strata

echo "## 4 nodes x 2 drives"
PORTS=()
for _ in 1 2 3 4; do PORTS+=("$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"); done
ARGS=()
for i in 1 2 3 4; do ARGS+=("http://127.0.0.1:${PORTS[$((i - 1))]}$W/n$i/d{1...2}"); done
PIDS=()
for i in 1 2 3 4; do
    STRATA_ROOT_USER=$AWS_ACCESS_KEY_ID STRATA_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY STRATA_CLUSTER_SECRET=bench-cluster-secret \
        "$T/release/strata" server --address "127.0.0.1:${PORTS[$((i - 1))]}" "${ARGS[@]}" > "$W/node$i.log" 2>&1 &
    PIDS+=($!)
done
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
for p in "${PORTS[@]}"; do
    for _ in $(seq 300); do curl -sf "http://127.0.0.1:$p/health/ready" >/dev/null && break; sleep 0.1; done
done
N1="http://127.0.0.1:${PORTS[0]}"
scenarios "$N1"

echo "## 4 nodes, node 4 killed: GET 64 MiB (reads reconstruct from the 6 drives left)"
kill -9 "${PIDS[3]}"
sleep 5
"$T/release/strata-bench" --endpoint "$N1" --duration "$SECS" --op get --size 64MiB --concurrency 4 --prefix s64m --objects 16 --no-prefill
echo "## the same with all four nodes (node 4 back), right after"
STRATA_ROOT_USER=$AWS_ACCESS_KEY_ID STRATA_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY STRATA_CLUSTER_SECRET=bench-cluster-secret \
    "$T/release/strata" server --address "127.0.0.1:${PORTS[3]}" "${ARGS[@]}" >> "$W/node4.log" 2>&1 &
PIDS[3]=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:${PORTS[3]}/health/ready" >/dev/null && break; sleep 0.1; done
sleep 3
"$T/release/strata-bench" --endpoint "$N1" --duration "$SECS" --op get --size 64MiB --concurrency 4 --prefix s64m --objects 16 --no-prefill
