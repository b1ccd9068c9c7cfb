#!/usr/bin/env bash
# Refreshes the vendored uPlot (MIT, https://github.com/leeoniya/uPlot) from the npm registry:
#
#   src/live/assets/vendor/uplot/refresh.sh [VERSION]   (default: the pinned one in VERSION)
#
# Takes the minified IIFE build, its CSS and its licence from the package, pins the version in
# VERSION and records the files' digests in SHA256SUMS; `cargo build` embeds these files and
# never touches the network. Review the diff (and the release notes) before committing.
set -euo pipefail
cd "$(dirname "$0")"
version=${1:-$(cat VERSION)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$version" > /dev/null)
tar -xzf "$tmp/uplot-$version.tgz" -C "$tmp"
grep -q "(v$version)" "$tmp/package/dist/uPlot.iife.min.js" || {
    echo "refresh.sh: uplot@$version's build does not name that version" >&2
    exit 1
}
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" .
echo "$version" > VERSION
sha256sum uPlot.iife.min.js uPlot.min.css LICENSE > SHA256SUMS
echo "uPlot $version vendored:" >&2
cat SHA256SUMS >&2
