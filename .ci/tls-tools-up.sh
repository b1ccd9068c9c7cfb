#!/usr/bin/env bash
# Bring up what the TLS and abuse tests (tests/web_security.rs, tests/web_abuse.rs,
# tests/otlp_tls.rs) need on a Debian 12 host, as root: `openssl` (the tests make their own CA
# and certificates), `curl` (the client an operator would probe the page with) and `prlimit`
# (util-linux, to run the exporter under a low descriptor limit). Installed only if missing.
set -euo pipefail

log() { printf 'tls-tools-up: %s\n' "$*" >&2; }

missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)

if [ "${#missing[@]}" -eq 0 ]; then
    log "openssl, curl and prlimit already installed"
else
    [ "$(id -u)" -eq 0 ] || { log "error: must run as root to install ${missing[*]}"; exit 1; }
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends ca-certificates "${missing[@]}"
fi
openssl version >&2
curl --version | head -n 1 >&2
