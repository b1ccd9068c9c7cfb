#!/usr/bin/env bash
# tests/vm/capture-testdata.sh [--runtimes] [EXPORTER]
# Boots the test VM (tests/vm/run-vm.sh) and copies the real kernel files its scenario
# captured into testdata/linux-<major.minor>-cgroup-v2/ and testdata/linux-<major.minor>-procfs/
# (replacing them).  The exporter is irrelevant here: without an argument a stand-in that
# prints an empty snapshot is used.  See testdata/README.md for what each file is.
#
# --runtimes: replace only the files runc and containerd made (the `runc/` and `containerd/`
# subdirectories of the cgroup-v2 directory, tests/fixtures_v2_runtimes.rs), leaving every
# other fixture as it is.  The VM needs its runtimes for these (CE_VM_RUNTIMES unset, or
# "runc containerd").
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ONLY_RUNTIMES=0
if [ "${1:-}" = --runtimes ]; then ONLY_RUNTIMES=1; shift; fi
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
copy_runtimes() {
  for r in runc containerd; do
    if [ -d "$TMP/out/capture/runtimes/$r" ]; then
      rm -rf "${CG:?}/$r"
      cp -r "$TMP/out/capture/runtimes/$r" "$CG/$r"
    else
      echo "no $r files captured (CE_VM_RUNTIMES?); $CG/$r left as it was" >&2
    fi
  done
}
if [ $ONLY_RUNTIMES = 1 ]; then
  mkdir -p "$CG"
  copy_runtimes
  echo "captured the runtime-made files from kernel $kver into $CG/{runc,containerd}"
  exit 0
fi
rm -rf "$CG" "$PROC"
mkdir -p "$CG" "$PROC"
cp -r "$TMP/out/capture/cgroup/." "$CG/"
copy_runtimes
cp "$TMP/out/capture/procfs/net_dev" "$PROC/net-dev"
cp "$TMP/out/capture/procfs/mountinfo" "$PROC/mountinfo"
cp "$TMP/out/capture/procfs/pid_cgroup" "$PROC/pid-cgroup"
echo "captured from kernel $kver into $CG and $PROC"
