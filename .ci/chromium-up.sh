#!/usr/bin/env bash
# Bring up what the live view's browser tests need (tests/live_browser.rs, benches/live_page.rs,
# docs/screenshots.sh) on a Debian 12 host, as root: Debian's `chromium` and `chromium-driver`
# (/usr/bin/chromium, /usr/bin/chromedriver), installed only if missing. Nothing is downloaded
# from a browser vendor; the tests start the browser headless with a fresh profile.
# Idempotent: running it again when both are there does nothing but check.
set -euo pipefail

log() { printf 'chromium-up: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

have() { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }

if have; then
    log "chromium and chromedriver already installed"
else
    [ "$(id -u)" -eq 0 ] || die "must run as root (it installs the chromium packages)"
    log "installing chromium and chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends chromium chromium-driver
    have || die "chromium or chromedriver not found after installing the packages"
fi

# (The Debian launcher script says a word about memory on stderr: not ours to show.)
/usr/bin/chromium --version 2> /dev/null | head -n 1 >&2
/usr/bin/chromedriver --version 2>&1 | head -n 1 >&2
