#!/usr/bin/env bash
# Bring up what tests/docker.rs needs on a Debian 12 host, as root:
#   - packages docker.io and busybox-static (installed only if missing),
#   - a running dockerd (started in the background if its socket does not answer),
#   - the image ce-busybox:test (built with `docker import`, no registry needed).
# Idempotent: running it again when everything is up does nothing but check.
#
# Environment:
#   CE_TEST_IMAGE   image to build            (default ce-busybox:test)
#   DOCKERD_LOG     where dockerd's output goes (default /var/log/dockerd.log)
#   DOCKER_WAIT     seconds to wait for dockerd (default 60)
#   DOCKERD_EXTRA_ARGS  more dockerd flags, e.g. for a second daemon on its own socket and data root
#                   (then also set DOCKER_HOST so the client talks to it)
set -euo pipefail

IMAGE="${CE_TEST_IMAGE:-ce-busybox:test}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
DOCKER_WAIT="${DOCKER_WAIT:-60}"

log() { printf 'docker-up: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts dockerd)"

# --- packages ---------------------------------------------------------------
pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}
missing=()
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    pkg_installed docker.io || missing+=(docker.io)
fi
pkg_installed busybox-static || missing+=(busybox-static)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v dockerd >/dev/null 2>&1 || die "dockerd not found after installing docker.io"
command -v docker >/dev/null 2>&1 || die "docker client not found after installing docker.io"

BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || BUSYBOX="$(command -v busybox || true)"
[ -n "$BUSYBOX" ] && [ -x "$BUSYBOX" ] || die "busybox not found after installing busybox-static"

# --- dockerd ----------------------------------------------------------------
docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

if docker_answers; then
    log "dockerd already answering"
else
    # If a dockerd is already starting, this second one exits at once on its pid file and the
    # loop below simply waits for the first.
    log "starting dockerd --iptables=false --ip6tables=false ${DOCKERD_EXTRA_ARGS:-} (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid + nohup: dockerd outlives this script and the CI step's shell.
    # shellcheck disable=SC2086 # DOCKERD_EXTRA_ARGS is a list of words
    setsid nohup dockerd --iptables=false --ip6tables=false ${DOCKERD_EXTRA_ARGS:-} \
        >>"$DOCKERD_LOG" 2>&1 </dev/null &
    deadline=$((SECONDS + DOCKER_WAIT))
    until docker_answers; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "dockerd did not answer within ${DOCKER_WAIT}s; last lines of $DOCKERD_LOG:"
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            exit 1
        fi
        sleep 1
    done
    log "dockerd is up"
fi

# --- image ------------------------------------------------------------------
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "image $IMAGE already present"
else
    if ! file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' \
        && ldd "$BUSYBOX" >/dev/null 2>&1; then
        die "$BUSYBOX is dynamically linked; the image needs busybox-static"
    fi
    log "building $IMAGE from $BUSYBOX"
    root="$(mktemp -d)"
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/bin" "$root/tmp" "$root/data" "$root/etc"
    chmod 1777 "$root/tmp"
    cp "$BUSYBOX" "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    # A passwd/group so `id`, httpd and friends resolve root.
    printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
    docker run --rm --network none "$IMAGE" sh -c 'busybox true && test -x /bin/httpd && test -d /data' \
        || die "image $IMAGE was built but does not run"
    log "image $IMAGE built"
fi
