#!/usr/bin/env bash
# Bring up what the CRI tests (tests/common/cri.rs, tests/cri_metadata.rs) need on a Debian 12
# host, as root:
#   - packages containerd (Debian's 1.6, which has the CRI plugin), runc,
#     containernetworking-plugins (bridge, host-local, loopback in /usr/lib/cni),
#     busybox-static and iproute2 (installed only if missing);
#   - OCI image archives built from busybox-static by tests/cri/mk-oci.sh (no registry):
#     a pause image, a busybox image and a second "tools" image with another id, listed
#     with their ids in $CE_CRI_DIR/images.txt.
# It starts no daemon: every test starts its own containerd on its own socket, root and state
# (see tests/common/cri.rs), so the system's containerd and Docker's stay untouched.
# Idempotent: running it again when everything is there does nothing but check.
#
# Environment:
#   CE_CRI_DIR   where the archives go (default /var/lib/container-exporter-ci/cri; the tests
#                read the same variable)
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${CE_CRI_DIR:-/var/lib/container-exporter-ci/cri}"

log() { printf 'containerd-up: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages)"

# --- packages ---------------------------------------------------------------
pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}
missing=()
for p in containerd runc containernetworking-plugins busybox-static iproute2; do
    pkg_installed "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
for b in containerd ctr containerd-shim-runc-v2 runc ip; do
    command -v "$b" >/dev/null 2>&1 || die "$b not found after installing the packages"
done
for p in bridge host-local loopback; do
    [ -x "/usr/lib/cni/$p" ] || die "CNI plugin /usr/lib/cni/$p missing (containernetworking-plugins)"
done
containerd config default 2>/dev/null | grep -q 'io.containerd.grpc.v1.cri' \
    || die "this containerd has no CRI plugin"

# --- images -----------------------------------------------------------------
mkdir -p "$DIR"
build() { # file name entrypoint cmd [env]
    local f="$DIR/$1.tar"
    if [ -s "$f" ] && grep -q "^$1.tar " "$DIR/images.txt" 2>/dev/null; then
        return
    fi
    log "building $f ($2)"
    local line
    line="$(bash tests/cri/mk-oci.sh "$f" "${@:2}")"
    # "<file> <name> <id>"
    grep -v "^$1.tar " "$DIR/images.txt" 2>/dev/null >"$DIR/images.txt.tmp" || true
    echo "$1.tar ${line#* }" >>"$DIR/images.txt.tmp"
    mv "$DIR/images.txt.tmp" "$DIR/images.txt"
}
# The pause image: a shell that waits and exits on SIGTERM, as the real pause does.
build pause localhost/ce/pause:1 \
    '["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait; done"]' 'null'
build busybox docker.io/library/busybox:ce-test '[]' '["/bin/sh"]'
# Same files, another config, so another image id (and a registry with a port in its name).
build tools registry.local:5000/ce/tools:v2 '[]' '["/bin/sh"]' \
    '["PATH=/usr/sbin:/usr/bin:/sbin:/bin","CE_IMAGE=tools"]'
log "images in $DIR: $(cut -d' ' -f2 "$DIR/images.txt" | tr '\n' ' ')"
