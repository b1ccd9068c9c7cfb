#!/usr/bin/env bash
# Runs every fuzz target in turn for a bounded time, then merges what it found into the kept,
# minimised corpus (tests/fuzz/corpus/<target>, run by tests/fuzz_corpus.rs in CI). Inputs of
# defects found go to tests/fuzz/regressions/<target> by hand: those are never minimised away.
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 180 s, every target)
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a C++ compiler; the stable toolchain is
# enough (`-s none`: no sanitizer). One target at a time: each uses one core.
# Working corpora grow in $FUZZ_WORK (default /tmp/ce-fuzz); crashes land in
# tests/fuzz/artifacts/<target>/. Prints executions and coverage per target.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-180}"
shift || true
TARGETS=("$@")
[ "${#TARGETS[@]}" -gt 0 ] || TARGETS=(flat_keyed single cpu_max io_stat blkio pressure net_dev first_pid mountinfo parse_files mem_total cpu_list_len uevent_devname disk_mountinfo)
WORK="${FUZZ_WORK:-/tmp/ce-fuzz}"
FUZZ=(cargo fuzz run --fuzz-dir tests/fuzz -s none -O)

cargo fuzz build --fuzz-dir tests/fuzz -s none -O
for t in "${TARGETS[@]}"; do
    mkdir -p "$WORK/$t" "tests/fuzz/corpus/$t"
    log="$WORK/$t.log"
    status=0
    seeds=("tests/fuzz/corpus/$t")
    [ -d "tests/fuzz/regressions/$t" ] && seeds+=("tests/fuzz/regressions/$t")
    "${FUZZ[@]}" "$t" "$WORK/$t" "${seeds[@]}" -- \
        -max_total_time="$SECS" -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -E '^#[0-9]+.*cov:' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || echo '?')
    # Minimise: a small set of inputs that reaches every edge reached so far replaces the
    # kept corpus (edges only, not hit counts: that keeps it to tens of files a target; the
    # richer working corpus stays in $WORK for the next run).
    merged="$WORK/$t.merged"
    rm -rf "$merged" && mkdir -p "$merged"
    "${FUZZ[@]}" "$t" "$merged" "tests/fuzz/corpus/$t" "$WORK/$t" -- -merge=1 -use_counters=0 \
        >"$WORK/$t.merge.log" 2>&1
    rm -rf "tests/fuzz/corpus/$t" && mv "$merged" "tests/fuzz/corpus/$t"
    kept=$(find "tests/fuzz/corpus/$t" -type f | wc -l)
    echo "$t: ${SECS}s, $execs executions, $cov, $kept corpus files kept, exit $status"
    if [ "$status" -ne 0 ]; then
        grep -E 'panicked|Test unit written' "$log" >&2 || true
    fi
done
