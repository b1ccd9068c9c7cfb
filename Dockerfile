# container-exporter image: the binary and the C runtime it links against, nothing else (no
# shell, no package manager). Two ways to build it, with the same files in the image (both lay
# out its root filesystem with deploy/image/rootfs.sh):
#
#   docker build -t container-exporter:0.1.0 .
#       From source: the `build` stage compiles it in the Rust image, the `runtime` stage (the
#       last, so the default target) is that root filesystem on an empty base. Needs access to
#       an image registry for the Rust image.
#
#   .ci/build-image.sh [BINARY]
#       From a binary built on the host (air-gapped hosts, and this project's CI): the script
#       lays out the root filesystem in target/image-root and builds the `prebuilt` stage, which
#       needs no registry. It comes first so that even the classic builder (no BuildKit) builds
#       nothing else for `--target prebuilt`.
#
# docs/deploy.md says what of each stage is tested. `prebuilt` and `runtime` must say the same
# below their COPY (.ci/validate-deploy.sh checks that they do).
#
# There is no HEALTHCHECK: the image has no program to run one with. Use the HTTP probes
# instead (/healthz for liveness, /readyz for readiness), as deploy/kubernetes does.

FROM scratch AS prebuilt
COPY rootfs/ /
# Not root: cgroup files and /proc/<pid>/net/dev are world-readable. Docker names need the
# socket's group (docker run --group-add); see docs/deploy.md.
USER 65534:65534
EXPOSE 9464
ENTRYPOINT ["/container-exporter"]

# The Rust toolchain this project's CI builds and tests with, on Debian 12 (the glibc the image
# then carries).
FROM rust:1.95.0-bookworm AS build
WORKDIR /src
# Dependencies first, in a layer of their own: the manifest and the lock file with an empty
# crate of the same targets (deploy/image/stub-targets.sh, which validate-deploy holds to
# Cargo.toml's targets). A change to the sources leaves this layer cached; only a change to
# Cargo.toml or Cargo.lock compiles every crate again.
COPY Cargo.toml Cargo.lock ./
COPY deploy/image/stub-targets.sh /usr/local/bin/
RUN sh /usr/local/bin/stub-targets.sh \
    && cargo build --release --locked \
    && rm -rf src benches target/release/.fingerprint/container-exporter-*
# Then the exporter itself. The fingerprints removed above make cargo build it again whatever
# the files' times.
COPY . .
RUN cargo build --release --locked \
    && sh deploy/image/rootfs.sh target/release/container-exporter /rootfs

FROM scratch AS runtime
COPY --from=build /rootfs/ /
# Not root: cgroup files and /proc/<pid>/net/dev are world-readable. Docker names need the
# socket's group (docker run --group-add); see docs/deploy.md.
USER 65534:65534
EXPOSE 9464
ENTRYPOINT ["/container-exporter"]
