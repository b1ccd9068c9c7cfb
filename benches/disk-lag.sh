#!/usr/bin/env bash
# How long a small container's write takes to show on the page: one busybox container writes
# 10 MiB into its layer, and the page is polled every 0.1 s until its
# container_filesystem_usage_bytes changes. No other layer is walked meanwhile, so what it
# measures is the cadence itself: the tick that sees the container's CPU time move, the disk
# interval since its last walk, and the tick that reads the new figure back.
#
#   benches/disk-lag.sh [INTERVAL] [DISK_INTERVAL] [RUNS]    # defaults: 10s 5s 3
#
# BIG_FILES=N adds a busy container (its CPU time moves every 0.2 s) whose layer holds N files
# of 10 bytes, written from the host before it starts, walked over and over meanwhile.
# BUDGET=F passes --disk-cpu-budget F (default: the exporter's own default). With BIG_FILES, the
# script ends with the disk thread's pace over 30 s: entries walked per second, its share of a
# core, and so how long one walk of the busy layer takes at that budget.
#
# As root, with Docker running and the test image (ce-busybox:test) built. BIN names the binary
# (default: target/debug/container-exporter, built if missing; the lag does not depend on it).
set -euo pipefail
interval=${1:-10s} disk_interval=${2:-5s} runs=${3:-3}
bin=${BIN:-target/debug/container-exporter}
[ -x "$bin" ] || cargo build --quiet
port=$((20000 + RANDOM % 10000))
"$bin" --prometheus-listen 127.0.0.1:$port --interval "$interval" --disk-interval "$disk_interval" \
    ${BUDGET:+--disk-cpu-budget "$BUDGET"} > /dev/null 2>&1 &
exporter=$!
name=ce-disk-lag-$$
trap 'kill $exporter 2>/dev/null; docker rm -f $name $name-big > /dev/null 2>&1 || true' EXIT
if [ -n "${BIG_FILES:-}" ]; then
    big=$(docker create --network none --name $name-big ce-busybox:test sh -c \
        'trap "exit 0" TERM; while :; do sleep 0.2; done')
    upper=$(docker inspect -f '{{.GraphDriver.Data.UpperDir}}' "$big")
    python3 - "$upper" "$BIG_FILES" << 'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 1000}")
    if i % 1000 == 0:
        os.mkdir(d)
    with open(os.path.join(d, f"f{i % 1000}"), "wb") as f:
        f.write(b"0123456789")
PY
    docker start "$big" > /dev/null
fi
id=$(docker run -d --network none --name $name ce-busybox:test sh -c \
    'trap "exit 0" TERM; n=0; while :; do while [ ! -e /go$n ]; do sleep 0.2; done; \
     dd if=/dev/zero of=/f$n bs=1M count=10 2>/dev/null; n=$((n + 1)); done')
value() {
    curl -s 127.0.0.1:$port/metrics |
        awk -v id="$id" 'index($0, "container_filesystem_usage_bytes{container_id=\"" id "\"") == 1 { print $2 }'
}
until [ -n "$(value 2>/dev/null || true)" ]; do sleep 0.2; done
for ((r = 0; r < runs; r++)); do
    sleep 3
    before=$(value)
    docker exec $name touch /go$r
    t0=$(date +%s.%N)
    while [ "$(value)" = "$before" ]; do sleep 0.1; done
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" -v i="$interval" -v d="$disk_interval" \
        -v big="${BIG_FILES:-0}" -v budget="${BUDGET:-default}" \
        'BEGIN { printf "--interval %s --disk-interval %s --disk-cpu-budget %s, busy layer of %d files beside it: a 10 MiB write shown after %.1f s\n", i, d, budget, big, b - a }'
done
if [ -n "${BIG_FILES:-}" ]; then
    counter() {
        curl -s 127.0.0.1:$port/metrics | awk -v m="$1" '$1 == m { print $2 }'
    }
    e0=$(counter container_exporter_disk_entries_total)
    c0=$(counter container_exporter_disk_cpu_time_seconds_total)
    sleep 30
    e1=$(counter container_exporter_disk_entries_total)
    c1=$(counter container_exporter_disk_cpu_time_seconds_total)
    awk -v e0="$e0" -v e1="$e1" -v c0="$c0" -v c1="$c1" -v n="$BIG_FILES" \
        -v budget="${BUDGET:-default}" \
        'BEGIN { r = (e1 - e0) / 30; printf "--disk-cpu-budget %s: %.0f entries/s at %.2f %% of a core: a walk of the busy layer takes %.0f s\n", budget, r, (c1 - c0) / 30 * 100, (n + n / 1000) / r }'
fi
