#!/usr/bin/env bash
# tests/vm/capture-testdata.sh [EXPORTER]
# Boots the test VM (tests/vm/run-vm.sh) and copies the real kernel files its scenario
# captured into testdata/linux-<major.minor>-cgroup-v2/ and testdata/linux-<major.minor>-procfs/
# (replacing them).  The exporter is irrelevant here: without an argument a stand-in that
# prints an empty snapshot is used.  See testdata/README.md for what each file is.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ce-capture.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
BIN=${1:-}
if [ -z "$BIN" ]; then
  BIN=$TMP/standin
  printf '#!/bin/sh\necho "{\\"containers\\":[]}"\n' > "$BIN"; chmod +x "$BIN"
fi
"$HERE/run-vm.sh" "$TMP/out" "$BIN"
kver=$(cat "$TMP/out/capture/kernel")
mm=$(echo "$kver" | cut -d. -f1,2)
CG=$ROOT/testdata/linux-$mm-cgroup-v2
PROC=$ROOT/testdata/linux-$mm-procfs
rm -rf "$CG" "$PROC"
mkdir -p "$CG" "$PROC"
cp -r "$TMP/out/capture/cgroup/." "$CG/"
cp "$TMP/out/capture/procfs/net_dev" "$PROC/net-dev"
cp "$TMP/out/capture/procfs/mountinfo" "$PROC/mountinfo"
cp "$TMP/out/capture/procfs/pid_cgroup" "$PROC/pid-cgroup"
echo "captured from kernel $kver into $CG and $PROC"
