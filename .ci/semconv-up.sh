#!/usr/bin/env bash
# Bring up what tests/semconv.rs needs: a Python virtualenv holding the OpenTelemetry semantic
# conventions' registry as its Python package publishes it (opentelemetry-semantic-conventions,
# with opentelemetry-api, which its modules import), exactly as pinned, with hashes, in
# .ci/semconv-requirements.txt. Needs python3 with venv and PyPI on the first run.
#
# The virtualenv is $CE_CACHE_DIR/semconv-venv (default ~/.cache/container-exporter, as for
# .ci/validate-deploy.sh); the test looks for its python there (or in
# CONTAINER_EXPORTER_SEMCONV_PYTHON). Idempotent: when the virtualenv holds what the
# requirements pin, it does nothing but check.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'semconv-up: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

req=.ci/semconv-requirements.txt
cache="${CE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/container-exporter}"
venv="$cache/semconv-venv"

if cmp -s "$req" "$venv/requirements.txt" &&
   "$venv/bin/python" -c 'import opentelemetry.semconv._incubating.metrics' 2>/dev/null; then
    log "$venv already holds $req"
else
    command -v python3 >/dev/null || die "python3 is missing (Debian: apt-get install python3 python3-venv)"
    log "creating $venv from $req"
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --require-hashes -r "$req" || die "pip could not install $req"
    cp "$req" "$venv/requirements.txt"
fi
"$venv/bin/python" -c 'import importlib.metadata as m; print("semconv-up: opentelemetry-semantic-conventions", m.version("opentelemetry-semantic-conventions"))' >&2
