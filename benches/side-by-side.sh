#!/usr/bin/env bash
# The whole daemon against the floor of its reads, side by side in the same run: the release
# daemon (page on) reads N idle containers every INTERVAL while benches/floor.rs preads, at the
# same cadence, the very files the daemon holds open (found in /proc/<daemon>/fd). Both are
# measured by on-CPU time of all their threads (/proc/PID/task/*/schedstat); the script prints
# each round, the medians and the ratio daemon ÷ floor.
#
#   benches/side-by-side.sh [N=100] [INTERVAL=1s] [SECONDS=40] [ROUNDS=3]
#
# As root. SOURCE=docker (default): N idle Docker containers (ce-busybox:test, --network none).
# SOURCE=cgroups: N container-shaped cgroups (benches/fake-containers.sh; NETNS=1 gives each its
# own network namespace). SOURCE=none: start nothing, use the N containers already running.
# DAEMON_ARGS adds flags to the daemon. Everything started is removed
# at exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
interval=${2:-1s}
secs=${3:-40}
rounds=${4:-3}
source=${SOURCE:-docker}
bin=${BIN:-target/release/container-exporter}
port=${PORT:-$((19000 + RANDOM % 1000))}
prefix="ce-sbs-$$"
state=$(mktemp -d /tmp/ce-sbs.XXXXXX)

cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    if [ "$source" = none ]; then
        :
    elif [ "$source" = docker ]; then
        docker ps -aq --filter "name=^$prefix-" | xargs -r -n 10 docker rm -f > /dev/null 2>&1 || true
    else
        benches/fake-containers.sh remove "$state/fake" || true
    fi
    rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cargo build --release --quiet
floor=$(cargo bench --bench floor --no-run --message-format=json 2> /dev/null |
    jq -r 'select(.executable != null and .target.name == "floor") | .executable' | tail -1)
[ -x "$floor" ] || { echo "cannot build benches/floor.rs" >&2; exit 1; }

echo "starting $n containers ($source)..." >&2
if [ "$source" = none ]; then
    :
elif [ "$source" = docker ]; then
    for i in $(seq 1 "$n"); do
        docker run -d --network none --name "$prefix-$i" ce-busybox:test sleep 100000 > /dev/null &
        if (( i % 8 == 0 )); then wait; fi
    done
    wait
else
    benches/fake-containers.sh create "$n" "$state/fake"
fi

# shellcheck disable=SC2086
"$bin" --interval "$interval" --prometheus-listen "127.0.0.1:$port" --log-level warn ${DAEMON_ARGS:-} &
pid=$!
value() { curl -sf "http://127.0.0.1:$port/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
for _ in $(seq 1 100); do
    t=$(value container_exporter_containers_tracked 2> /dev/null || true)
    [ -n "$t" ] && [ "${t%.*}" -ge "$n" ] && break
    sleep 0.3
done
echo "daemon pid $pid tracks ${t:-0} containers (this run started $n); warming up" >&2
# A few ticks, so every container is past its first reads and Docker's list.
sleep "$(awk -v i="${interval%s}" 'BEGIN { v = i + 0; if (v < 1) v = 1; print 5 * v }')"
echo "kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
"$floor" --pid "$pid" --interval "$interval" --seconds "$secs" --rounds "$rounds" \
    --page "127.0.0.1:$port"
echo "daemon: peak RSS $(awk '/^VmHWM/ {print $2 / 1024 " MiB"}' "/proc/$pid/status"), \
$(ls "/proc/$pid/fd" | wc -l) descriptors"
