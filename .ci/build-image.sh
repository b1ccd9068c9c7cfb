#!/usr/bin/env bash
# Builds the container-exporter image from a binary built on this host, with no registry: lays
# out the image's root filesystem in target/image-root/rootfs with deploy/image/rootfs.sh (the
# script the Dockerfile's source build runs too) and builds the Dockerfile's `prebuilt` stage
# from it.
#
#   .ci/build-image.sh [BINARY] [TAG...]
#     BINARY  default: target/release/container-exporter (built with cargo build --release
#             when missing)
#     TAG     default: container-exporter:<version> (the crate's version, Cargo.toml, which
#             deploy/kubernetes/kustomization.yaml and deploy/compose/compose.yaml name) and
#             container-exporter:latest
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/release/container-exporter}
shift || true
if [ "$#" -eq 0 ]; then
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
    [ -n "$version" ] || { echo "build-image: no version in Cargo.toml" >&2; exit 1; }
    set -- "container-exporter:$version" container-exporter:latest
fi
if [ ! -x "$bin" ]; then
    cargo build --release
    bin=target/release/container-exporter
fi

root=target/image-root
rm -rf "$root"
mkdir -p "$root"
sh deploy/image/rootfs.sh "$bin" "$root/rootfs"
tags=()
for t in "$@"; do tags+=(-t "$t"); done
# The classic builder, which needs no BuildKit: `prebuilt` is the first stage, so it builds
# nothing else.
DOCKER_BUILDKIT=0 docker build -q --target prebuilt "${tags[@]}" -f Dockerfile "$root" >/dev/null
echo "built $* from $bin"
