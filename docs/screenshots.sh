#!/usr/bin/env bash
# The README's pictures of the live view (docs/img/live-overview.png, docs/img/live-container.png),
# taken by the browser test itself (tests/live_browser.rs) from a real run: a real daemon, real
# Docker containers (renamed demo-*, a few more kinds of work than the test needs), headless
# Chromium. Nothing is drawn by hand. As root, with .ci/docker-up.sh and .ci/chromium-up.sh done:
#
#   docs/screenshots.sh
#
# The test's checks all run as usual; the pictures are only written when it passes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/img
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
LIVE_SCREENSHOTS=$tmp cargo test --test live_browser -- --nocapture --test-threads 1
for f in live-overview.png live-container.png; do
    [ -s "$tmp/$f" ] || { echo "screenshots.sh: the test wrote no $f" >&2; exit 1; }
    cp "$tmp/$f" "$out/$f"
    echo "$out/$f: $(stat -c %s "$out/$f") bytes" >&2
done
