#!/usr/bin/env bash
# This daemon next to its peers, on the same N running Docker containers in the same run: CPU
# per container per collection of
#   1. this exporter (release build, --interval 1s, page on), all its threads;
#   2. netdata's cgroups plugin (Debian netdata-core, `update every = 1`, every other plugin
#      off), the whole netdata process and the plugin's own threads;
#   3. the Docker stats API as the OpenTelemetry Collector's docker_stats receiver uses it: one
#      GET /containers/<id>/stats?stream=false per container and collection, all containers
#      at once; the CPU of dockerd, containerd and every containerd shim, less what they spent
#      in an idle window of the same length just before.
# CPU is on-CPU time from /proc/PID/task/*/schedstat. Each tool runs alone, one after another.
#
#   benches/peers.sh [N=50] [SECONDS=60]
#
# As root, with Docker (ce-busybox:test), netdata (Debian netdata-core), curl and jq. The
# containers and netdata are removed or stopped at exit, also on failure.
#
# netdata 1.37 names each cgroup with `cgroup-name.sh`, which Debian ships in
# netdata-plugins-bash, not in netdata-core: without it every rename fails ("cannot popen
# .../cgroup-name.sh") and no cgroup_* chart is ever made. When it is missing, a two-line script
# naming each cgroup by its directory is used instead (and said so).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
secs=${2:-60}
bin=${BIN:-target/release/container-exporter}
port=$((21000 + RANDOM % 1000))
nd_port=$((port + 1000))
prefix="ce-peers-$$"
dir=$(mktemp -d /tmp/ce-peers.XXXXXX)

cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2> /dev/null && wait "$pid" 2> /dev/null || true
    [ -n "${nd_pid:-}" ] && kill "$nd_pid" 2> /dev/null || true
    docker ps -aq --filter "name=^$prefix-" | xargs -r -n 10 docker rm -f > /dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cpu_ns() { # on-CPU ns of all threads of the given pids
    for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2> /dev/null; done | awk '{s += $1} END {printf "%.0f\n", s}'
}
per() { # total_ns units -> µs per unit
    awk -v ns="$1" -v u="$2" 'BEGIN { if (u > 0) printf "%.1f", ns / u / 1e3; else print "n/a" }'
}

cargo build --release --quiet
echo "kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
echo "Docker $(docker version -f '{{.Server.Version}}'), $(netdata -v 2>&1 | head -1)"
echo "starting $n idle containers..." >&2
ids=()
for i in $(seq 1 "$n"); do
    docker run -d --network none --name "$prefix-$i" ce-busybox:test sleep 100000 > /dev/null &
    if (( i % 8 == 0 )); then wait; fi
done
wait
mapfile -t ids < <(docker ps -q --no-trunc --filter "name=^$prefix-")
echo "$n containers running (${#ids[@]} ids)"

# --- 1. this exporter ------------------------------------------------------------------------
"$bin" --interval 1s --prometheus-listen "127.0.0.1:$port" --log-level warn &
pid=$!
value() { curl -sf "http://127.0.0.1:$port/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
for _ in $(seq 1 100); do
    t=$(value container_exporter_containers_tracked 2> /dev/null || true)
    [ -n "$t" ] && [ "${t%.*}" -ge "$n" ] && break
    sleep 0.2
done
sleep 5
c0=$(value container_exporter_collections_total); a0=$(cpu_ns "$pid")
sleep "$secs"
a1=$(cpu_ns "$pid"); c1=$(value container_exporter_collections_total)
tracked=$(value container_exporter_containers_tracked)
kill "$pid"; wait "$pid" 2> /dev/null || true; pid=""
ours_ticks=$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')
ours=$(per $((a1 - a0)) "$(awk -v t="$ours_ticks" -v c="$tracked" 'BEGIN { print t * c }')")
echo "exporter: $((a1 - a0)) ns over $ours_ticks collections of ${tracked%.*} containers: $ours µs per container per collection"

# --- 2. netdata's cgroups plugin ---------------------------------------------------------------
name_script=/usr/lib/netdata/plugins.d/cgroup-name.sh
if [ ! -x "$name_script" ]; then
    echo "netdata: $name_script is not installed (Debian: netdata-plugins-bash); naming cgroups by directory"
    name_script="$dir/cgroup-name.sh"
    printf '#!/bin/sh\n# netdata passes: <cgroup path> <chart id>; print the name.\necho "$2"\n' > "$name_script"
    chmod +x "$name_script"
fi
mkdir -p "$dir"/{cache,lib,log,run}
# On a hybrid host netdata picks the unified hierarchy, which there has no memory, IO or pids
# controller: it would read 4 files per cgroup (cpu.stat and pressure) and chart CPU only. The
# v1 controllers give it memory and IO too, closer to what this exporter reads.
unified=yes
if grep -q ' - cgroup cgroup .*memory' /proc/self/mountinfo; then
    unified=no
fi
echo "netdata: use unified cgroups = $unified"
cat > "$dir/netdata.conf" << EOF
[global]
	run as user = root
	update every = 1
	memory mode = ram
	history = 120
[directories]
	cache = $dir/cache
	lib = $dir/lib
	log = $dir/log
	run = $dir/run
[logs]
	error = $dir/log/error.log
	access = none
[web]
	bind to = 127.0.0.1:$nd_port
[health]
	enabled = no
[ml]
	enabled = no
[plugins]
	cgroups = yes
	proc = no
	diskspace = no
	tc = no
	idlejitter = no
	checks = no
	statsd = no
	timex = no
	apps = no
	python.d = no
	charts.d = no
	go.d = no
	node.d = no
	fping = no
	ioping = no
	perf = no
	slabinfo = no
	nfacct = no
	ebpf = no
	enable running new plugins = no
[plugin:cgroups]
	update every = 1
	check for new cgroups every = 10
	script to get cgroup names = $name_script
	use unified cgroups = $unified
EOF
netdata -c "$dir/netdata.conf" -D -P "$dir/run/netdata.pid" > "$dir/log/out.log" 2>&1 &
nd_pid=$!
charted() { # containers of this run with a cgroup_* chart
    curl -sf "http://127.0.0.1:$nd_port/api/v1/charts" | jq -r '.charts | keys[]' |
        grep -c -F -f <(printf 'cgroup_docker_%s.\n' "${ids[@]}") || true
}
seen=0
for _ in $(seq 1 90); do
    seen=$(charted)
    [ "$seen" -ge "$n" ] && break
    sleep 1
done
if [ "$seen" -lt "$n" ]; then
    echo "netdata: only $seen of $n containers have cgroup_* charts after 90 s; its log:" >&2
    tail -20 "$dir/log/error.log" >&2
    exit 1
fi
all_cgroups=$(curl -sf "http://127.0.0.1:$nd_port/api/v1/charts" | jq -r '.charts | keys[]' |
    grep '^cgroup_' | sed 's/\..*//' | sort -u | wc -l)
echo "netdata: cgroup_* charts for all $n containers of this run ($all_cgroups cgroups charted in all)"
sleep 5
plugin_tids() { grep -l 'cgroups' /proc/"$nd_pid"/task/*/comm | sed 's|/comm$||; s|.*/||'; }
plugin_ns() { for t in $(plugin_tids); do cut -d' ' -f1 "/proc/$nd_pid/task/$t/schedstat"; done | awk '{s += $1} END {printf "%.0f\n", s}'; }
b0=$(cpu_ns "$nd_pid"); p0=$(plugin_ns); w0=$(date +%s.%N)
sleep "$secs"
b1=$(cpu_ns "$nd_pid"); p1=$(plugin_ns); w1=$(date +%s.%N)
kill "$nd_pid"; wait "$nd_pid" 2> /dev/null || true; nd_pid=""
nd_ticks=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%d", b - a }')
units=$((nd_ticks * all_cgroups))
netdata_all=$(per $((b1 - b0)) "$units")
netdata_plugin=$(per $((p1 - p0)) "$units")
echo "netdata: $((b1 - b0)) ns (cgroups threads $((p1 - p0)) ns) over $nd_ticks collections of $all_cgroups cgroups: $netdata_all µs per cgroup per collection (plugin threads alone $netdata_plugin)"

# --- 3. the Docker stats API -------------------------------------------------------------------
dockerd=$(pgrep -xo dockerd)
containerd=$(pgrep -P "$dockerd" -x containerd || pgrep -xo containerd)
docker_pids() {
    echo "$dockerd" "$containerd"
    pgrep -f 'containerd-shim.*-address /var/run/docker/containerd/containerd.sock' || true
}
# dockerd and containerd serve everyone on the host: their cost for these calls is what they
# spend during the calls less what they spend idle, in alternating windows (median of rounds).
rounds=3
w=$(( secs / rounds ))
results=()
total_calls=0
for r in $(seq 1 "$rounds"); do
    i0=$(cpu_ns $(docker_pids)); sleep "$w"; i1=$(cpu_ns $(docker_pids))
    calls=0
    s0=$(cpu_ns $(docker_pids)); start=$(date +%s.%N)
    while awk -v s="$start" -v now="$(date +%s.%N)" -v w="$w" 'BEGIN { exit !(now - s < w) }'; do
        printf '%s\n' "${ids[@]}" | xargs -P "$n" -I{} curl -s -o /dev/null \
            --unix-socket /var/run/docker.sock "http://localhost/containers/{}/stats?stream=false"
        calls=$((calls + n))
    done
    s1=$(cpu_ns $(docker_pids)); end=$(date +%s.%N)
    per_call=$(awk -v s=$((s1 - s0)) -v i=$((i1 - i0)) -v w="$w" -v a="$start" -v b="$end" -v c="$calls" \
        'BEGIN { printf "%.1f", (s - i * (b - a) / w) / c / 1e3 }')
    echo "Docker stats API round $r: $calls calls, $(( (s1 - s0) / 1000000 )) ms busy vs $(( (i1 - i0) / 1000000 )) ms idle per ${w} s: $per_call µs per call"
    results+=("$per_call")
    total_calls=$((total_calls + calls))
done
stats=$(printf '%s\n' "${results[@]}" | sort -n | sed -n "$(( (rounds + 1) / 2 ))p")
echo "Docker stats API: $total_calls calls, median $stats µs of dockerd + containerd + shim CPU per container per collection"

echo
echo "| collector | CPU per container per collection | vs this exporter |"
echo "|---|---|---|"
ratio() { awk -v a="$1" -v b="$ours" 'BEGIN { if (b > 0 && a != "n/a") printf "%.0f ×", a / b; else print "n/a" }'; }
echo "| container-exporter (all threads) | $ours µs | 1 × |"
echo "| netdata cgroups plugin (whole netdata process) | $netdata_all µs | $(ratio "$netdata_all") |"
echo "| netdata cgroups plugin (its threads alone) | $netdata_plugin µs | $(ratio "$netdata_plugin") |"
echo "| Docker stats API (dockerd + containerd + shims) | $stats µs | $(ratio "$stats") |"
