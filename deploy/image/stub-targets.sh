#!/bin/sh
# Writes an empty source file for every target Cargo.toml names, so that the Dockerfile's build
# stage can compile the dependencies alone (`cargo build --release --locked` in a directory
# holding only Cargo.toml, Cargo.lock and these files) into a layer that a change to the sources
# does not invalidate. .ci/validate-deploy.sh checks, with `cargo metadata`, that the files
# below are exactly the targets Cargo.toml has: a new bench or binary must be added here.
set -eu
mkdir -p src benches
echo 'fn main() {}' >src/main.rs
: >src/lib.rs
for bench in collect render otlp parse floor live live_page; do
    echo 'fn main() {}' >"benches/$bench.rs"
done
