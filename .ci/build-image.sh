#!/usr/bin/env bash
# Builds the container-exporter image from a binary built on this host, with no registry:
# lays out the image's root filesystem (the binary, the glibc libraries it links against,
# CA certificates, a passwd file) in target/image-root and builds the Dockerfile's
# `prebuilt` stage from it.
#
#   .ci/build-image.sh [BINARY] [TAG]
#     BINARY  default: target/release/container-exporter (built with cargo build --release
#             when missing)
#     TAG     default: container-exporter:latest
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/release/container-exporter}
tag=${2:-container-exporter:latest}
if [ ! -x "$bin" ]; then
    cargo build --release
    bin=target/release/container-exporter
fi

root=target/image-root
rm -rf "$root"
mkdir -p "$root/rootfs/etc/ssl/certs" "$root/rootfs/tmp"
# Debug builds carry ~90 MB of symbols the image does not need.
strip --strip-debug -o "$root/rootfs/container-exporter" "$bin"
chmod 0755 "$root/rootfs/container-exporter"
# The shared libraries it links against, at the paths the loader expects. glibc 2.34+ has
# the `files` and `dns` NSS modules built in, so name resolution needs nothing more.
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$root/rootfs$(dirname "$lib")"
    cp -L "$lib" "$root/rootfs$lib"
done
printf 'hosts: files dns\n' > "$root/rootfs/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' \
    > "$root/rootfs/etc/passwd"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$root/rootfs/etc/ssl/certs/"
fi
DOCKER_BUILDKIT=0 docker build -q --target prebuilt -t "$tag" -f Dockerfile "$root" >/dev/null
echo "built $tag from $bin"
