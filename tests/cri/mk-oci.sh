#!/usr/bin/env bash
# Builds a single-layer OCI image archive (an OCI layout in a tar, as `ctr images import`
# and `podman load` take it) from busybox-static, with no registry, no Docker and no Python:
# the CRI tests import these into their private containerd (see tests/common/cri.rs).
#
#   mk-oci.sh OUT.tar IMAGE_NAME ENTRYPOINT_JSON CMD_JSON [ENV_JSON]
#
# IMAGE_NAME is the full reference containerd records (`docker.io/library/busybox:ce-test`).
# ENTRYPOINT_JSON and CMD_JSON are JSON arrays (or `null`); ENV_JSON an array of `K=V` strings
# (default: PATH only). Everything is written with fixed owners and times, so the same inputs
# give the same digests (image ids stay stable between runs).
set -euo pipefail

[ "$#" -ge 4 ] || { echo "usage: $0 OUT.tar IMAGE_NAME ENTRYPOINT_JSON CMD_JSON [ENV_JSON]" >&2; exit 2; }
out="$1" name="$2" entrypoint="$3" cmd="$4"
env_json="${5:-[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"]}"

BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || BUSYBOX="$(command -v busybox || true)"
[ -n "$BUSYBOX" ] || { echo "mk-oci: busybox not found (install busybox-static)" >&2; exit 1; }
if ldd "$BUSYBOX" >/dev/null 2>&1; then
    echo "mk-oci: $BUSYBOX is dynamically linked; the image needs busybox-static" >&2
    exit 1
fi

case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    *) arch="$(dpkg --print-architecture)" ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,var,run}
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list-full); do
    [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

blobs="$work/oci/blobs/sha256"
mkdir -p "$blobs"
# A blob under its digest; prints the digest and size.
put() {
    local f="$1" d
    d="$(sha256sum "$f" | cut -d' ' -f1)"
    mv "$f" "$blobs/$d"
    echo "$d $(stat -c %s "$blobs/$d")"
}

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$root" -cf "$work/layer.tar" .
read -r layer_digest layer_size < <(put "$work/layer.tar")

printf '{"architecture":"%s","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":%s,"Entrypoint":%s,"Cmd":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"tests/cri/mk-oci.sh (busybox-static)"}]}' \
    "$arch" "$env_json" "$entrypoint" "$cmd" "$layer_digest" >"$work/config.json"
read -r config_digest config_size < <(put "$work/config.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$work/manifest.json"
read -r manifest_digest manifest_size < <(put "$work/manifest.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest_digest" "$manifest_size" "$arch" "$name" "${name##*:}" >"$work/oci/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"

mkdir -p "$(dirname "$out")"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/oci" -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
# The image id containerd will report (the config's digest).
echo "$out $name sha256:$config_digest"
