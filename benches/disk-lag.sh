#!/usr/bin/env bash
# How long a small container's write takes to show on the page: one busybox container writes
# 10 MiB into its layer, and the page is polled every 0.1 s until its
# container_filesystem_usage_bytes changes. No other layer is walked meanwhile, so what it
# measures is the cadence itself: the tick that sees the container's CPU time move, the disk
# interval since its last walk, and the tick that reads the new figure back.
#
#   benches/disk-lag.sh [INTERVAL] [DISK_INTERVAL] [RUNS]    # defaults: 10s 5s 3
#
# As root, with Docker running and the test image (ce-busybox:test) built. BIN names the binary
# (default: target/debug/container-exporter, built if missing; the lag does not depend on it).
set -euo pipefail
interval=${1:-10s} disk_interval=${2:-5s} runs=${3:-3}
bin=${BIN:-target/debug/container-exporter}
[ -x "$bin" ] || cargo build --quiet
port=$((20000 + RANDOM % 10000))
"$bin" --prometheus-listen 127.0.0.1:$port --interval "$interval" --disk-interval "$disk_interval" \
    > /dev/null 2>&1 &
exporter=$!
name=ce-disk-lag-$$
trap 'kill $exporter 2>/dev/null; docker rm -f $name > /dev/null 2>&1 || true' EXIT
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
        'BEGIN { printf "--interval %s --disk-interval %s: a 10 MiB write shown after %.1f s\n", i, d, b - a }'
done
