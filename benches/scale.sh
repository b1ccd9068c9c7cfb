#!/usr/bin/env bash
# The daemon at scale: N container-shaped cgroups on the real cgroupfs (benches/fake-containers.sh:
# Docker's cgroupfs-driver paths in every hierarchy, one sleeping process each), the release
# daemon at --interval 10s with the page on and OTLP/HTTP going to a local sink. Prints:
# time to ready, CPU per tick and % of one core (all threads, /proc/PID/task/*/schedstat, and
# each thread's share), with a scrape every 15 s (SCRAPE=seconds, 0: none) during the window,
# peak RSS, page bytes (plain and gzip), render time, scrape time, OTLP encode time.
#
#   benches/scale.sh [N=1000] [SECONDS=60] [INTERVAL=10s]
#
# As root, with python3 (the OTLP sink). OTLP=0 leaves OTLP off; WARMUP=S measures from S
# seconds after ready (default two intervals and a second); ARGS="--flag value ..." adds flags
# (ARGS="--disk-interval off": collection alone). The cgroups and processes are
# removed at exit, also on failure or Ctrl-C. Other people's exporters on the same machine see
# these cgroups as Docker containers: keep runs short.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
secs=${2:-60}
interval=${3:-10s}
bin=${BIN:-target/release/container-exporter}
port=${PORT:-$((20000 + RANDOM % 1000))}
sink_port=$((port + 1000))
state=$(mktemp -d /tmp/ce-scale.XXXXXX)

cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2> /dev/null && wait "$pid" 2> /dev/null || true
    [ -n "${sink:-}" ] && kill "$sink" 2> /dev/null || true
    [ -n "${scraper:-}" ] && kill "$scraper" 2> /dev/null || true
    benches/fake-containers.sh remove "$state/fake" || true
    rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cargo build --release --quiet
echo "kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
t0=$(date +%s.%N)
benches/fake-containers.sh create "$n" "$state/fake"
t1=$(date +%s.%N)
echo "created $n container-shaped cgroups in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"

otlp_args=()
if [ "${OTLP:-1}" = 1 ]; then
    # Accepts every OTLP/HTTP request with an empty (valid) ExportMetricsServiceResponse.
    python3 - "$sink_port" > /dev/null 2>&1 << 'EOF' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
    sink=$!
    otlp_args=(--otlp-endpoint "http://127.0.0.1:$sink_port")
fi

start=$(date +%s.%N)
# shellcheck disable=SC2086 # ARGS: more flags, split on spaces
"$bin" --interval "$interval" --prometheus-listen "127.0.0.1:$port" --log-level warn \
    "${otlp_args[@]}" ${ARGS:-} &
pid=$!
url="http://127.0.0.1:$port"
value() { curl -sf "$url/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
ready=""
for _ in $(seq 1 600); do
    if curl -sf -o /dev/null "$url/readyz"; then
        tracked=$(value container_exporter_containers_tracked || true)
        if [ -n "$tracked" ] && [ "${tracked%.*}" -ge "$n" ]; then
            ready=$(date +%s.%N)
            break
        fi
    fi
    sleep 0.05
done
[ -n "$ready" ] || { echo "not ready with $n containers within 30 s" >&2; exit 1; }
echo "ready (first collection done, $tracked containers tracked) $(awk -v a="$start" -v b="$ready" 'BEGIN { printf "%.2f", b - a }') s after start"

cpu_ns() { cat /proc/"$pid"/task/*/schedstat | awk '{s += $1} END {print s}'; }
# Past the first ticks, Docker's list and the first limit reads (WARMUP=seconds to wait longer:
# these cgroups' processes share the host's mount namespace, so the disk thread looks at them
# again for a minute, a readlink of /proc/<pid>/ns/mnt each time, before it takes them as having
# no layer).
sleep "${WARMUP:-$(awk -v i="${interval%s}" 'BEGIN { print 2 * i + 1 }')}"
# Each thread's CPU time (ns), by name: "name ns" lines.
threads() {
    for t in /proc/"$pid"/task/*; do
        printf '%s %s\n' "$(tr ' ' '_' < "$t/comm")" "$(cut -d' ' -f1 "$t/schedstat")"
    done 2> /dev/null | awk '{s[$1] += $2} END {for (k in s) print k, s[k]}'
}
c0=$(value container_exporter_collections_total)
d0=$(value container_exporter_disk_cpu_time_seconds_total)
threads > "$state/threads0"
n0=$(cpu_ns)
w0=$(date +%s.%N)
# A Prometheus server's scrape every SCRAPE seconds (default 15; 0: none), gzip as it asks,
# during the measurement: its cost is part of what a user pays.
if [ "${SCRAPE:-15}" != 0 ]; then
    (while sleep "${SCRAPE:-15}"; do
        curl -s -o /dev/null -H 'Accept-Encoding: gzip' "$url/metrics"
    done) &
    scraper=$!
fi
sleep "$secs"
n1=$(cpu_ns)
w1=$(date +%s.%N)
threads > "$state/threads1"
[ -n "${scraper:-}" ] && kill "$scraper" 2> /dev/null
c1=$(value container_exporter_collections_total)
d1=$(value container_exporter_disk_cpu_time_seconds_total)

# Scrapes, plain and gzip: five each, the median time.
scrape() {
    for _ in 1 2 3 4 5; do
        curl -s -o /dev/null -w '%{time_total} %{size_download}\n' "$@" "$url/metrics"
    done | sort -n | sed -n 3p
}
read -r t_plain b_plain <<< "$(scrape)"
read -r t_gzip b_gzip <<< "$(scrape -H 'Accept-Encoding: gzip')"
page=$(curl -s "$url/metrics")
render=$(awk '$1 == "container_exporter_output_duration_seconds{output=\"prometheus\"}" {print $2}' <<< "$page")
encode=$(awk '$1 == "container_exporter_output_duration_seconds{output=\"otlp\"}" {print $2}' <<< "$page")
tick=$(awk '$1 == "container_exporter_collection_duration_seconds" {print $2}' <<< "$page")
exports=$(awk '$1 == "container_exporter_otlp_exports_total{outcome=\"success\"}" {print $2}' <<< "$page")
reopened=$(awk '$1 == "container_exporter_containers_reopened" {print $2}' <<< "$page")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
fds=$(ls "/proc/$pid/fd" | wc -l)

awk -v n="$n" -v c0="$c0" -v c1="$c1" -v d0="${d0:-0}" -v d1="${d1:-0}" -v n0="$n0" -v n1="$n1" -v w0="$w0" -v w1="$w1" \
    -v hwm="$hwm" -v rss="$rss" -v tp="$t_plain" -v bp="$b_plain" -v tg="$t_gzip" -v bg="$b_gzip" \
    -v render="$render" -v encode="$encode" -v tick="$tick" -v exports="${exports:-0}" -v fds="$fds" -v reopened="${reopened:-0}" 'BEGIN {
    ticks = c1 - c0; cpu = (n1 - n0) / 1e9; wall = w1 - w0
    printf "containers %d, %d ticks over %.0f s\n", n, ticks, wall
    printf "CPU: %.1f ms per tick (%.1f µs per container), %.3f %% of one core (all threads)\n",
        1e3 * cpu / ticks, 1e6 * cpu / ticks / n, 100 * cpu / wall
    printf "  of which the disk thread: %.3f %% of one core\n", 100 * (d1 - d0) / wall
    printf "last tick (read + outputs, collector thread, wall): %.1f ms\n", 1e3 * tick
    printf "memory: peak RSS %.1f MiB, now %.1f MiB; %d descriptors, %d containers read by open-read-close\n", hwm / 1024, rss / 1024, fds, reopened
    printf "page: %.2f MB plain, %.2f MB gzip; render %.1f ms per tick\n", bp / 1e6, bg / 1e6, 1e3 * render
    printf "scrape (median of 5, loopback curl): plain %.1f ms, gzip %.1f ms\n", 1e3 * tp, 1e3 * tg
    printf "OTLP: encode + gzip %.1f ms per tick, %d requests accepted by the sink\n", 1e3 * encode, exports
}'
# Each thread's share of one core over the same window (threads of one name summed).
echo "by thread (% of one core; scrapes every ${SCRAPE:-15} s$( [ "${SCRAPE:-15}" = 0 ] && echo ': none')):"
awk -v wall="$(awk -v a="$w0" -v b="$w1" 'BEGIN { print b - a }')" '
    NR == FNR { t0[$1] = $2; next }
    { printf "  %-32s %.3f\n", $1, 100 * ($2 - t0[$1]) / 1e9 / wall }' \
    "$state/threads0" "$state/threads1" | sort -k2 -rn
