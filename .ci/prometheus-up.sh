#!/usr/bin/env bash
# Bring up what tests/prometheus.rs needs on a Debian 12 host, as root: the `prometheus` and
# `promtool` binaries from Debian's `prometheus` package (installed only if missing).
#
# The tests start their own Prometheus server on a loopback port with a scratch storage
# directory, so only the binaries are needed: the package's own service is not started by the
# install (a policy-rc.d refuses service starts for its duration), and one that was already
# running is left alone (it listens on :9090, which the tests never use).
# Idempotent: running it again when everything is there does nothing but check.
set -euo pipefail

log() { printf 'prometheus-up: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

have_binaries() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }

if have_binaries; then
    log "prometheus and promtool already installed"
else
    [ "$(id -u)" -eq 0 ] || die "must run as root (it installs the prometheus package)"
    # Refuse service starts while the package installs (invoke-rc.d and deb-systemd-invoke both
    # honour policy-rc.d), unless the host already has a policy of its own.
    policy=/usr/sbin/policy-rc.d
    ours=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# prometheus-up.sh: no service starts during the install\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        ours=1
        trap 'rm -f "$policy"' EXIT
    fi
    log "installing prometheus (binaries only are used; its service is not started)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends prometheus
    if [ -n "$ours" ]; then
        rm -f "$policy"
        trap - EXIT
    fi
    have_binaries || die "prometheus or promtool not found after installing the prometheus package"
fi

prometheus --version 2>&1 | head -n 1 >&2
promtool --version 2>&1 | head -n 1 >&2
