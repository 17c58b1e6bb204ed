#!/usr/bin/env bash
# Large PUT against the disk it lands on: direct-write speed (dd, O_DIRECT) right before and
# right after a 64 MiB PUT run on a fresh strata with DRIVES drive directories on that disk,
# because this kind of virtual disk changes speed within minutes.
# Usage: integration/bench/put_vs_disk.sh [DRIVES=4] [SECONDS=10]
set -euo pipefail
DRIVES=${1:-4} SECS=${2:-10}
source "$(dirname "$0")/common.sh"
echo "disk direct write before: $(disk_write)"
rm -f "$W/dd.bin"
start_strata "$W/data" --drives "$DRIVES"
$BENCH --op put --size 64MiB --concurrency 4 --duration "$SECS" --prefix p
stop_strata
echo "disk direct write after:  $(disk_write)"
