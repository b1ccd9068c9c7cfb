# container-exporter image: the binary and the C runtime it links against, nothing else
# (no shell, no package manager). Two ways to build it:
#
#   docker build -t container-exporter .
#       From source: a Rust build stage, then distroless/cc (glibc for name resolution, CA
#       certificates for OTLP over TLS). Needs access to an image registry.
#
#   .ci/build-image.sh [BINARY]
#       From a binary built on the host (air-gapped hosts, and this project's CI): the script
#       lays out the same root filesystem (binary, its glibc libraries, CA certificates) in
#       target/image-root and builds the `prebuilt` stage below, which needs no registry.
#       The `prebuilt` stage comes first so that even the classic builder (no BuildKit)
#       builds nothing else for `--target prebuilt`.
#
# There is no HEALTHCHECK: the image has no program to run one with. Use the HTTP probes
# instead (/healthz for liveness, /readyz for readiness), as deploy/kubernetes does.

FROM scratch AS prebuilt
COPY rootfs/ /
# Not root: cgroup files and /proc/<pid>/net/dev are world-readable. Docker names need the
# socket's group (docker run --group-add); see the README.
USER 65534:65534
EXPOSE 9464
ENTRYPOINT ["/container-exporter"]

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && cp target/release/container-exporter /container-exporter

FROM gcr.io/distroless/cc-debian12 AS runtime
COPY --from=build /container-exporter /container-exporter
USER 65534:65534
EXPOSE 9464
ENTRYPOINT ["/container-exporter"]
