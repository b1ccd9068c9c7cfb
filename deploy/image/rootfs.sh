#!/bin/sh
# Lays out the container image's root filesystem in DIR: the exporter's BINARY (debug symbols
# stripped), the shared libraries it links against at the paths the loader expects, the CA
# certificates, and passwd and nsswitch.conf files. Nothing else: no shell, no package manager.
#
#   deploy/image/rootfs.sh BINARY DIR
#
# Both ways of building the image run this: the Dockerfile's `build` stage (from source, in the
# Rust image) and .ci/build-image.sh (from a binary built on the host, for the `prebuilt` stage),
# so the image has the same files whichever way it was built. POSIX sh, since the build stage
# has no bash guarantee; needs ldd, strip and cp.
set -eu

bin=$1
dir=$2
rm -rf "$dir"
mkdir -p "$dir/etc/ssl/certs" "$dir/tmp"
strip --strip-debug -o "$dir/container-exporter" "$bin"
chmod 0755 "$dir/container-exporter"
# The libraries and the loader, from ldd's `name => /path (addr)` and `/path (addr)` lines.
# glibc 2.34+ has the `files` and `dns` NSS modules built in, so name resolution needs nothing
# more than nsswitch.conf.
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$dir$(dirname "$lib")"
    cp -L "$lib" "$dir$lib"
done
printf 'hosts: files dns\n' >"$dir/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' \
    >"$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
# OTLP over TLS with the system's roots. Required: an image without them fails every https
# endpoint at run time, which is worse than failing the build.
cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
