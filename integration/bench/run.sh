#!/usr/bin/env bash
# Records Strata's figures for BENCHMARKS.md on this machine, with the ceilings measured in the
# same run: direct disk write/read (dd, O_DIRECT) and MD5 per core. Starts its own strata on
# four drive directories of one disk, runs strata-bench scenarios, stops it.
# Usage: integration/bench/run.sh [SECONDS=15]
set -euo pipefail
SECS=${1:-15}
source "$(dirname "$0")/common.sh"

echo "## ceilings (same disk, same run)"
echo "disk direct write: $(disk_write)"
dd if="$W/dd.bin" of=/dev/null bs=4M iflag=direct 2>&1 | tail -1 | sed 's/^/disk direct read:  /'
rm -f "$W/dd.bin"
python3 - <<'PY'
import hashlib, time
b = bytes(512 << 20)
t = time.perf_counter(); hashlib.md5(b).digest(); s = time.perf_counter() - t
print(f"MD5 one core: {512 / s:.0f} MiB/s")
PY

echo "## strata, 4 drives (EC 2+2) under $W"
start_strata "$W/data"
B="$BENCH --duration $SECS"
rss() { grep "$1" "/proc/$PID/status" | awk '{printf "%d MiB", $2 / 1024}'; }
echo "## memory: 32 concurrent 256 MiB uploads"
$B --op put --size 256MiB --concurrency 32 --prefix s256m
echo "peak RSS of strata so far: $(rss VmHWM)"
$B --op put --size 4KiB --concurrency 32 --prefix s4k
$B --op get --size 4KiB --concurrency 32 --prefix s4k
$B --op put --size 1MiB --concurrency 16 --prefix s1m
$B --op get --size 1MiB --concurrency 16 --prefix s1m
$B --op put --size 64MiB --concurrency 4 --prefix s64m
$B --op get --size 64MiB --concurrency 4 --prefix s64m --objects 32
if sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then
    echo "## GET 64 MiB from disk (page cache dropped; 2 GiB of objects, 3 s)"
    $BENCH --op get --size 64MiB --concurrency 4 --prefix s64m --objects 32 --no-prefill --duration 3
fi
$B --op list --size 1KiB --concurrency 8 --objects 1000 --prefix l1k
$B --op mixed --size 64KiB --concurrency 16 --prefix mix
echo "peak RSS of strata: $(rss VmHWM)"

echo "## degraded: two of four drives gone (each replaced by a file, so it cannot come back)"
for d in drive3 drive4; do mv "$W/data/$d" "$W/data/$d.gone"; touch "$W/data/$d"; done
# The drive monitor notices within 5 s; until then reads find the shards missing.
sleep 7
curl -s "http://127.0.0.1:$PORT/metrics" | grep '^strata_drive_online'
$B --op get --size 64MiB --concurrency 4 --prefix s64m --objects 32 --no-prefill
$B --op get --size 4KiB --concurrency 32 --prefix s4k --no-prefill

echo "## one drive, no parity: the write path when every user byte is written once"
stop_strata
start_strata "$W/one" --drives 1
$B --op put --size 64MiB --concurrency 4 --prefix one64m

echo "## erasure coding micro-benchmark"
cargo bench --quiet -p strata-storage --bench erasure 2>/dev/null | grep -E "EC|bitrot|MD5"
