#!/usr/bin/env bash
# Container-shaped cgroups on the real cgroupfs, for benchmarks at counts the machine cannot run
# as Docker containers: Docker's cgroupfs-driver path `docker/<64-hex id>` in every v1 hierarchy
# and in `unified/` (or in the v2 root), one sleeping process each, as `docker run` makes them.
#
#   benches/fake-containers.sh create N STATE_DIR    # prints nothing; STATE_DIR records them
#   benches/fake-containers.sh remove STATE_DIR      # kills the processes, removes the cgroups
#
# Every id starts with `ce5ca1e0` so they are recognisable (other people's exporters and tests on
# the same machine see them as Docker containers: keep runs short, always remove); ID_PREFIX
# (8 hex digits) gives another, so that two benchmarks on one machine do not collide. Callers trap
# EXIT and call `remove`; the sleeps also end by themselves after LIFETIME seconds (default 1800).
# With NETNS=1 each process gets its own network namespace (so `net/dev` is read too).
# With LAYER_FILES=K each process runs in a mount namespace of its own with an overlay as its
# root, as a runtime makes it: busybox as the image (lower), K files of 100 bytes written in the
# writable layer (upper, STATE_DIR/layers/overlay/<id>/diff: where containers/storage keeps its
# layers, the only kind of place the exporter trusts as a layer), so the disk thread has layers
# to walk; with
# BUSY=1 those processes wake every second (their CPU time moves, so they are walked at
# --disk-interval rather than --disk-idle-interval).
set -euo pipefail
cg=${CGROUP_ROOT:-/sys/fs/cgroup}

hierarchies() {
    # Every cgroup mount under the root (v1 controllers, named hierarchies, the unified one).
    awk -v root="$cg" '$9 ~ /^cgroup2?$/ && index($5, root) == 1 { print $5 }' /proc/self/mountinfo | sort -u
}

create() {
    local n=$1 state=$2
    mkdir -p "$state"
    mapfile -t hs < <(hierarchies)
    [ "${#hs[@]}" -gt 0 ] || { echo "no cgroup mounts under $cg" >&2; exit 1; }
    printf '%s\n' "${hs[@]}" > "$state/hierarchies"
    : > "$state/ids"
    : > "$state/pids"
    for h in "${hs[@]}"; do
        mkdir -p "$h/docker"
        # cgroup v1 cpuset: a new cgroup has no CPUs until given some (Docker copies its parent's).
        if [ -f "$h/docker/cpuset.cpus" ] && [ -z "$(cat "$h/docker/cpuset.cpus")" ]; then
            cat "$h/cpuset.cpus" > "$h/docker/cpuset.cpus"
            cat "$h/cpuset.mems" > "$h/docker/cpuset.mems"
        fi
    done
    if [ -n "${LAYER_FILES:-}" ]; then
        # The image: a static busybox and its applets.
        mkdir -p "$state/lower/bin"
        cp /bin/busybox "$state/lower/bin/busybox"
        mkfifo "$state/lower/p"
    fi
    local lifetime=${LIFETIME:-1800} cpus="" mems=""
    for h in "${hs[@]}"; do
        if [ -f "$h/docker/cpuset.cpus" ]; then
            cpus=$(< "$h/docker/cpuset.cpus")
            mems=$(< "$h/docker/cpuset.mems")
        fi
    done
    for ((i = 0; i < n; i++)); do
        local id
        id=$(printf '%s%056x' "${ID_PREFIX:-ce5ca1e0}" "$i")
        echo "$id" >> "$state/ids"
        # One mkdir for all hierarchies, builtins for the rest: 5,000 containers in seconds.
        mkdir "${hs[@]/%//docker/$id}"
        for h in "${hs[@]}"; do
            if [ -f "$h/docker/$id/cpuset.cpus" ]; then
                echo "$cpus" > "$h/docker/$id/cpuset.cpus"
                echo "$mems" > "$h/docker/$id/cpuset.mems"
            fi
        done
        if [ -n "${LAYER_FILES:-}" ]; then
            local d="$state/layers/overlay/$id" f
            mkdir -p "$d/diff" "$d/work" "$d/merged"
            for ((f = 0; f < LAYER_FILES; f++)); do
                printf '%100s' x > "$d/diff/f$f"
            done
            local cmd="exec /bin/busybox sleep $lifetime"
            # Busy: wakes every second on a read that times out (no process forked).
            [ "${BUSY:-0}" = 1 ] && cmd="exec 3<> /p; i=0; while [ \$i -lt $lifetime ]; do read -t 1 -u 3 x; i=\$((i + 1)); done"
            unshare --mount --propagation private /bin/busybox sh -c \
                "mount -t overlay overlay -o lowerdir=$state/lower,upperdir=$d/diff,workdir=$d/work $d/merged && cd $d/merged && exec /bin/busybox chroot . /bin/busybox sh -c '$cmd'" \
                < /dev/null > /dev/null 2>&1 &
        elif [ "${NETNS:-0}" = 1 ]; then
            unshare --net sleep "$lifetime" < /dev/null > /dev/null 2>&1 &
        else
            sleep "$lifetime" < /dev/null > /dev/null 2>&1 &
        fi
        local pid=$!
        echo "$pid" >> "$state/pids"
        for h in "${hs[@]}"; do
            echo "$pid" > "$h/docker/$id/cgroup.procs"
        done
    done
}

remove() {
    local state=$1
    [ -d "$state" ] || return 0
    if [ -s "$state/pids" ]; then
        xargs -r kill -9 < "$state/pids" 2>/dev/null || true
    fi
    mapfile -t hs < "$state/hierarchies" 2>/dev/null || hs=()
    local id h tries
    while read -r id; do
        for h in "${hs[@]}"; do
            [ -d "$h/docker/$id" ] || continue
            # A killed process leaves its cgroup a moment later.
            for tries in 1 2 3 4 5 6 7 8 9 10; do
                rmdir "$h/docker/$id" 2>/dev/null && break
                sleep 0.1
            done
        done
    done < "$state/ids"
    local left=0
    while read -r id; do
        for h in "${hs[@]}"; do
            [ -d "$h/docker/$id" ] && left=$((left + 1))
        done
    done < "$state/ids"
    [ "$left" -eq 0 ] || echo "fake-containers: $left cgroup directories could not be removed" >&2
    rm -rf "$state"
}

case "${1:-}" in
    create) create "$2" "$3" ;;
    remove) remove "$2" ;;
    *) echo "usage: $0 create N STATE_DIR | remove STATE_DIR" >&2; exit 2 ;;
esac
