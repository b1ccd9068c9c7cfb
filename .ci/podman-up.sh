#!/usr/bin/env bash
# Bring up what tests/podman.rs needs on a Debian 12 host, as root, after .ci/docker-up.sh:
#   - the podman package (Debian's 4.3.1) and catatonit (installed only if missing); with
#     catatonit Podman builds its own pod infra image (localhost/podman-pause) without a registry,
#   - a configuration of our own in /etc/ce-podman (rootful, cgroupfs manager, file events,
#     storage under /var/lib/ce-podman), apart from any Podman setup the host has,
#   - the image ce-busybox:test, copied from Docker (`docker save | podman load`),
#   - `podman system service --time=0` on its own socket, unix:///run/ce-podman/podman.sock.
# Idempotent: when the socket answers `_ping` and the image is there, it only checks.
#
# Every podman command that must see the same containers (the tests' included) needs
#   CONTAINERS_CONF=/etc/ce-podman/containers.conf CONTAINERS_STORAGE_CONF=/etc/ce-podman/storage.conf
#
# Environment:
#   CE_TEST_IMAGE   image to copy from Docker        (default ce-busybox:test)
#   PODMAN_WAIT     seconds to wait for the service  (default 30)
set -euo pipefail

IMAGE="${CE_TEST_IMAGE:-ce-busybox:test}"
PODMAN_WAIT="${PODMAN_WAIT:-30}"
CONF_DIR=/etc/ce-podman
STORAGE_DIR=/var/lib/ce-podman
RUN_DIR=/run/ce-podman
SOCKET="$RUN_DIR/podman.sock"
LOG="$RUN_DIR/service.log"

log() { printf 'podman-up: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts podman's service)"

# --- packages ---------------------------------------------------------------
pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}
missing=()
for p in podman runc conmon catatonit curl; do
    pkg_installed "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v podman >/dev/null 2>&1 || die "podman not found after installing it"

# --- configuration ----------------------------------------------------------
mkdir -p "$CONF_DIR" "$CONF_DIR/cni" "$STORAGE_DIR" "$RUN_DIR" "$RUN_DIR/tmp"
# Rewritten every time (cheap), so a change here reaches a host set up before it; the service
# reads it at start.
cat >"$CONF_DIR/containers.conf.new" <<EOF
# container-exporter's test Podman (.ci/podman-up.sh); used through CONTAINERS_CONF.
[containers]
log_driver = "k8s-file"
# Without CAP_SYS_RESOURCE (CI VMs, containers), Podman's rootful defaults (nofile and nproc
# 1048576) make runc fail with "error setting rlimit type 7: operation not permitted"; Podman
# also lowers its own nproc hard limit to 32768, so nproc must stay at or under that.
default_ulimits = ["nofile=1024:4096", "nproc=4096:4096"]

[engine]
# No systemd on CI hosts: cgroupfs puts containers under /libpod_parent, where the exporter
# finds them. The file logger is what makes the API's /events stream work without journald.
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$RUN_DIR/events.log"
runtime = "runc"
tmp_dir = "$RUN_DIR/tmp"

[network]
network_backend = "cni"
cni_plugin_dirs = ["/usr/lib/cni"]
network_config_dir = "$CONF_DIR/cni"
EOF
mv "$CONF_DIR/containers.conf.new" "$CONF_DIR/containers.conf"
cat >"$CONF_DIR/storage.conf" <<EOF
# container-exporter's test Podman (.ci/podman-up.sh); used through CONTAINERS_STORAGE_CONF.
[storage]
driver = "overlay"
graphroot = "$STORAGE_DIR/root"
runroot = "$RUN_DIR/runroot"
EOF
export CONTAINERS_CONF="$CONF_DIR/containers.conf" CONTAINERS_STORAGE_CONF="$CONF_DIR/storage.conf"

# --- image ------------------------------------------------------------------
if podman image exists "$IMAGE"; then
    log "image $IMAGE already present"
else
    docker image inspect "$IMAGE" >/dev/null 2>&1 \
        || die "Docker has no $IMAGE: run .ci/docker-up.sh first"
    log "loading $IMAGE from Docker"
    docker save "$IMAGE" | podman load -q >/dev/null
    podman image exists "$IMAGE" || die "podman load did not give $IMAGE"
    podman run --rm --network none "$IMAGE" true || die "$IMAGE does not run under podman"
fi

# --- the Docker-compatible service -------------------------------------------
ping() { curl -sf --max-time 5 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; }

if ping; then
    log "podman service already answering on $SOCKET"
else
    if [ -f "$RUN_DIR/service.pid" ]; then
        old="$(cat "$RUN_DIR/service.pid")"
        # A service of ours that does not answer: stop it before starting another.
        if [ -n "$old" ] && grep -qs 'podman' "/proc/$old/cmdline"; then
            log "stopping unresponsive podman service (pid $old)"
            kill "$old" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
        fi
    fi
    rm -f "$SOCKET"
    log "starting podman system service on unix://$SOCKET (log: $LOG)"
    # setsid + nohup: the service outlives this script and the CI step's shell.
    setsid nohup podman system service --time=0 "unix://$SOCKET" >>"$LOG" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/service.pid"
    deadline=$((SECONDS + PODMAN_WAIT))
    until ping; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "podman service did not answer within ${PODMAN_WAIT}s; last lines of $LOG:"
            tail -n 30 "$LOG" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
    log "podman service is up"
fi
