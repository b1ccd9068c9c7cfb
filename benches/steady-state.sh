#!/usr/bin/env bash
# Steady-state cost of the daemon: CPU (share of one core) and resident memory with N idle
# containers at the default 10 s interval, scraped every 15 s like a Prometheus server would.
#
#   benches/steady-state.sh [N=200] [SECONDS=120] [BINARY=target/release/container-exporter]
#
# As root, with Docker running and the test image built (.ci/docker-up.sh). The containers
# are `sleep`s with --network none, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
secs=${2:-120}
bin=${3:-target/release/container-exporter}
[ -x "$bin" ] || cargo build --release
port=19964
prefix="ce-steady-$$"

cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
    docker ps -aq --filter "name=$prefix-" | xargs -r -n 10 docker rm -f >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "starting $n idle containers..." >&2
for i in $(seq 1 "$n"); do
    docker run -d --network none --name "$prefix-$i" ce-busybox:test sleep 100000 >/dev/null &
    if (( i % 10 == 0 )); then wait; fi
done
wait

"$bin" --prometheus-listen "127.0.0.1:$port" --log-level warn &
pid=$!
# Warm-up: the first walk, the first ticks, Docker's first list.
sleep 25
curl -sf "http://127.0.0.1:$port/metrics" -o /dev/null

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
tracked=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^container_exporter_containers_tracked / {print $2}')

t0=$(ticks); max_rss=$(rss_kib); start=$(date +%s.%N)
elapsed=0
while (( elapsed < secs )); do
    sleep 15
    curl -sf -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/metrics" -o /dev/null
    r=$(rss_kib); (( r > max_rss )) && max_rss=$r
    elapsed=$(( elapsed + 15 ))
done
t1=$(ticks); end=$(date +%s.%N)
hz=$(getconf CLK_TCK)
awk -v t0="$t0" -v t1="$t1" -v s="$start" -v e="$end" -v hz="$hz" -v rss="$max_rss" \
    -v n="$n" -v tracked="$tracked" 'BEGIN {
    cpu = (t1 - t0) / hz; wall = e - s
    printf "containers started: %d, tracked by the exporter: %d\n", n, tracked
    printf "CPU: %.3f s over %.0f s = %.3f %% of one core\n", cpu, wall, 100 * cpu / wall
    printf "RSS: %.1f MiB (highest seen)\n", rss / 1024
}'
