#!/usr/bin/env bash
# What disk usage costs, side by side with `du` on the same layers: N container-shaped cgroups
# (benches/fake-containers.sh with LAYER_FILES: each process in a mount namespace of its own,
# an overlay as its root, FILES files of 100 bytes in its writable layer), then
#   1. `du -s -x` over the same upper directories: one process for all of them (per file), and
#      one process per container (per container, as a walk-per-container exporter pays);
#   2. the release daemon with disk usage off (`--disk-interval off`), CPU of every thread over
#      SECONDS (/proc/PID/task/*/schedstat), the collection alone;
#   3. the release daemon at its default settings: the first pass over every layer (the disk
#      thread's own CPU counter, per file and per container, and how long it took under the 5 %
#      budget), then CPU of every thread over SECONDS, against run 2;
#   4. the same with --disk-idle-interval 20s, to measure what a later pass costs (the layers
#      are known by then: no mountinfo is read), over SECONDS: the disk thread's CPU counter
#      divided by the passes made.
# With idle containers (the default) nothing is due in run 3's window: what the daemon pays on
# top of collection is the tick's hand-off to the disk thread, plus one pass every
# --disk-idle-interval (10 min), amortised from run 4. BUSY=1 makes every container wake each
# second (its CPU time moves), so each is walked again every --disk-interval (1 min): the pass
# of run 4 is then amortised over 1 min.
#
#   benches/disk.sh [N=1000] [FILES=100] [SECONDS=60]
#
# As root, with python3. The cgroups, processes and layers are removed at exit. Other people's
# exporters on the same machine see these cgroups as Docker containers: keep runs short.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
files=${2:-100}
secs=${3:-60}
bin=${BIN:-target/release/container-exporter}
port=${PORT:-$((21000 + RANDOM % 1000))}
state=$(mktemp -d /tmp/ce-disk.XXXXXX)

cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2> /dev/null && wait "$pid" 2> /dev/null || true
    benches/fake-containers.sh remove "$state/fake" || true
    rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cargo build --release --quiet
echo "kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo "$n containers, $files files of 100 bytes in each writable layer, BUSY=${BUSY:-0}"
# Ids of their own (ce5d15c0…), apart from other benchmarks' fake containers.
ID_PREFIX=${ID_PREFIX:-ce5d15c0} LAYER_FILES=$files benches/fake-containers.sh create "$n" "$state/fake"
sleep 2

# --- du, on the same directories (page cache warm: each run twice, the second counted) -------
python3 - "$state/fake/layers/overlay" << 'EOF'
import os, resource, subprocess, sys
root = sys.argv[1]
dirs = sorted(os.path.join(root, d, "diff") for d in os.listdir(root))
def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
entries = int(subprocess.run(["du", "-s", "-x", "--inodes", "-c", *dirs], capture_output=True,
                             text=True, check=True).stdout.split()[-2])
for _ in range(2):
    a = children_cpu()
    subprocess.run(["du", "-s", "-x", "-B1", *dirs], stdout=subprocess.DEVNULL, check=True)
    one = children_cpu() - a
for _ in range(2):
    a = children_cpu()
    for d in dirs:
        subprocess.run(["du", "-s", "-x", "-B1", d], stdout=subprocess.DEVNULL, check=True)
    each = children_cpu() - a
print(f"du, one process over all {len(dirs)} layers: {1e3 * one:.0f} ms CPU for {entries} entries, "
      f"{1e9 * one / entries:.0f} ns per file")
print(f"du, one process per layer: {1e3 * each:.0f} ms CPU, {1e6 * each / len(dirs):.0f} µs per container")
EOF

url() { echo "http://127.0.0.1:$port"; }
value() { curl -sf "$(url)/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
cpu_ns() { cat /proc/"$pid"/task/*/schedstat | awk '{s += $1} END {printf "%.0f", s}'; }

# Starts the daemon with "$@" and waits until it tracks every container.
start() {
    "$bin" --interval 10s --prometheus-listen "127.0.0.1:$port" --log-level warn "$@" &
    pid=$!
    for _ in $(seq 1 600); do
        t=$(value container_exporter_containers_tracked || true)
        if [ -n "$t" ] && [ "${t%.*}" -ge "$n" ]; then
            return
        fi
        sleep 0.1
    done
    echo "not ready with $n containers" >&2
    exit 1
}

# CPU of every thread over SECONDS, past two ticks; prints "cpu_s wall_s".
window() {
    sleep 21
    local n0 w0 n1 w1
    n0=$(cpu_ns)
    w0=$(date +%s.%N)
    sleep "$secs"
    n1=$(cpu_ns)
    w1=$(date +%s.%N)
    awk -v a="$n0" -v b="$n1" -v c="$w0" -v d="$w1" 'BEGIN { printf "%.6f %.3f", (b - a) / 1e9, d - c }'
}

stop() {
    kill "$pid"
    wait "$pid" 2> /dev/null || true
    pid=""
}

# --- the daemon without disk usage ------------------------------------------------------------
start --disk-interval off
read -r base_cpu base_wall <<< "$(window)"
stop

# --- the daemon at its defaults ---------------------------------------------------------------
t0=$(date +%s.%N)
start
for _ in $(seq 1 1200); do
    done_walks=$(value 'container_exporter_disk_walks_total{outcome="complete"}' || echo 0)
    lag=$(value container_exporter_disk_lag_seconds || echo 1)
    if [ "${done_walks%.*}" -ge "$n" ] && [ "$lag" = "0.0" ]; then
        break
    fi
    sleep 0.5
done
t1=$(date +%s.%N)
pass_cpu=$(value container_exporter_disk_cpu_time_seconds_total)
pass_entries=$(value container_exporter_disk_entries_total)
found=$(value 'container_exporter_disk_layers{state="found"}')
read -r disk_cpu disk_wall <<< "$(window)"
after_cpu=$(value container_exporter_disk_cpu_time_seconds_total)
stop

# --- a later pass, measured with a short idle interval ----------------------------------------
start --disk-idle-interval 20s
for _ in $(seq 1 1200); do
    done_walks=$(value 'container_exporter_disk_walks_total{outcome="complete"}' || echo 0)
    [ "${done_walks%.*}" -ge "$n" ] && break
    sleep 0.5
done
sleep 5
c0=$(value container_exporter_disk_cpu_time_seconds_total)
k0=$(value 'container_exporter_disk_walks_total{outcome="complete"}')
sleep "$secs"
c1=$(value container_exporter_disk_cpu_time_seconds_total)
k1=$(value 'container_exporter_disk_walks_total{outcome="complete"}')
stop

awk -v n="$n" -v pc="$pass_cpu" -v pe="$pass_entries" -v found="$found" -v pw="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    -v bc="$base_cpu" -v bw="$base_wall" -v dc="$disk_cpu" -v dw="$disk_wall" -v ac="$after_cpu" -v busy="${BUSY:-0}" \
    -v c0="$c0" -v c1="$c1" -v k0="$k0" -v k1="$k1" -v files="$files" 'BEGIN {
    printf "exporter, first pass over %d layers found: %.0f ms CPU for %d entries, %.0f ns per file, %.0f µs per container, %.1f s wall at the 5 %% budget\n",
        found, 1e3 * pc, pe, 1e9 * pc / pe, 1e6 * pc / n, pw
    walks = k1 - k0; later = (c1 - c0) / (walks / n)
    printf "exporter, later passes: %d walks, %.0f ms CPU per pass, %.0f ns per file, %.0f µs per container\n",
        walks, 1e3 * later, 1e9 * later / (n * (files + 1)), 1e6 * later / n
    base = 100 * bc / bw; with = 100 * dc / dw
    printf "daemon, disk usage off: %.3f %% of one core; at the defaults: %.3f %% (disk thread: %.1f ms in %.0f s)\n",
        base, with, 1e3 * (ac - pc), dw
    printf "on top of collection, measured in the window: %+.3f %% of one core\n", with - base
    every = busy == 1 ? 60 : 600
    printf "one later pass every %d s, amortised: %.4f %% of one core; total on top of collection: %.3f %% (target 0.1 %%)\n",
        every, 100 * later / every, (busy == 1 ? with - base : with - base + 100 * later / every)
}'
