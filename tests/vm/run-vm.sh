#!/usr/bin/env bash
# tests/vm/run-vm.sh OUTDIR EXPORTER [ARGS...]
#
# Boots a throwaway VM (qemu; KVM when it really works, else TCG software emulation)
# with a Debian kernel package and a busybox initramfs, mounts a pure cgroup v2
# hierarchy (+cpu +memory +io +pids), builds container-shaped cgroups with known
# workloads (tests/vm/guest/scenario.sh), runs `EXPORTER ARGS...` three times from the
# root cgroup, and unpacks everything the guest wrote into OUTDIR:
#   OUTDIR/facts, truth/, run{1,2,3}.{json,stderr,rc,ms}, capture/, burn.time,
#   scenario.log, console.log (guest console), timings (host side)
# ARGS default to: snapshot --format json
# EXPORTER must be statically linked (or a #!/bin/sh script: the guest has busybox only).
#
# Exit status: 0 when the guest completed the scenario and returned its results (the
# exporter's own exit statuses are in OUTDIR/run*.rc); 125 when the VM could not be
# booted or returned nothing (the guest console is printed on stderr); 124 on timeout.
#
# What it needs, it fetches itself (root + apt, as in CI): the kernel and, unless the host
# has qemu-system-x86_64, qemu are `apt-get download`ed and unpacked with `dpkg -x` into
# the cache (nothing installed; qemu's shared libraries are apt-get installed when missing);
# busybox-static is unpacked there too when the host has no static busybox.
#
# Environment:
#   CE_VM_CACHE    cache dir (default /var/cache/container-exporter-vm, reused between runs)
#   CE_VM_ACCEL    auto (default) | kvm | tcg
#   CE_VM_TIMEOUT  host-side wall-clock limit in seconds (default 600: a guard against a hung
#                  guest, not a bound on speed; with runc and containerd the VM took 208 s on
#                  the 2 shared cores at load 18)
#   CE_VM_BURN_S   seconds the CPU workload burns (default 10; runs 1 and 2 happen while it burns)
#   CE_VM_SMP / CE_VM_MEM   vCPUs (default 2) / guest MiB (default 512; 1024 with containerd)
#   CE_VM_RUNTIMES  the real runtimes put in the guest: "runc containerd" (default), "runc"
#                   or "none" (containerd implies runc). runc adds about 15 MB to the
#                   initramfs, containerd about 83 MB; the scenario's runtime phase runs with
#                   what is there (see tests/vm/README.md)
#   CE_VM_KERNEL_PKG  Debian kernel package (default linux-image-cloud-amd64)
#   CE_VM_VERBOSE=1   full kernel log on the console (automatic for a second boot after a failed one)
#   CE_VM_APPEND      extra kernel command line
set -euo pipefail

die() { echo "run-vm: $*" >&2; exit 125; }
[ $# -ge 2 ] || { sed -n '2,/^set -eu/p' "$0" | sed 's/^# \{0,1\}//;$d' >&2; exit 2; }
OUT=$1; BIN=$2; shift 2
[ -f "$BIN" ] && [ -x "$BIN" ] || { echo "run-vm: not an executable file: $BIN" >&2; exit 2; }
[ $# -gt 0 ] || set -- snapshot --format json
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CE_VM_CACHE:-/var/cache/container-exporter-vm}
TIMEOUT=${CE_VM_TIMEOUT:-600}
KPKG=${CE_VM_KERNEL_PKG:-linux-image-cloud-amd64}
T_START=$(date +%s%N)
elapsed() { echo $(( ($(date +%s%N) - T_START) / 1000000 )); }
mkdir -p "$OUT" "$CACHE/debs" "$CACHE/root"

# ---------------------------------------------------------------------------------------
# 1. Tools, under a lock (parallel runs share the cache).
# ---------------------------------------------------------------------------------------
exec 9> "$CACHE/.lock"
flock 9
APT_UPDATED=0
apt_update_once() {
  if [ $APT_UPDATED = 0 ]; then
    echo "run-vm: apt-get update" >&2
    apt-get update -qq >&2 || die "apt-get update failed"
    APT_UPDATED=1
  fi
}
fetch_pkg() {   # fetch_pkg PKG...: download + unpack into $CACHE/root (never installed)
  local p deb
  for p in "$@"; do
    echo "run-vm: fetching $p into $CACHE (one time)" >&2
    if ! (cd "$CACHE/debs" && apt-get download "$p" >/dev/null 2>&1); then
      apt_update_once
      (cd "$CACHE/debs" && apt-get download "$p" >&2) || die "apt-get download $p failed"
    fi
    deb=$(ls -t "$CACHE/debs/${p}"_*.deb | head -1)
    dpkg -x "$deb" "$CACHE/root"
  done
}
is_static() { ! ldd "$1" >/dev/null 2>&1 || ldd "$1" 2>&1 | grep 'statically linked' >/dev/null; }

# kernel: a Debian kernel .deb (vmlinuz + modules + config)
KERNEL=$(ls "$CACHE"/root/boot/vmlinuz-* 2>/dev/null | head -1 || true)
if [ -z "$KERNEL" ]; then
  kimg=$(apt-cache depends "$KPKG" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}' || true)
  if [ -z "$kimg" ]; then
    apt_update_once
    kimg=$(apt-cache depends "$KPKG" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}' || true)
  fi
  fetch_pkg "${kimg:-$KPKG}"
  KERNEL=$(ls "$CACHE"/root/boot/vmlinuz-* | head -1)
fi
KVER=${KERNEL##*/vmlinuz-}
KCONFIG=$CACHE/root/boot/config-$KVER
MODDIR=$CACHE/root/lib/modules/$KVER/kernel

# The uncompressed vmlinux boots through PVH (qemu -kernel takes the ELF): no real-mode
# loader and no in-guest decompression, about a second faster under TCG.
extract_vmlinux() {   # extract_vmlinux BZIMAGE OUT
  local m cmd off
  while read -r m cmd; do
    command -v "${cmd%% *}" >/dev/null 2>&1 || continue
    for off in $(LC_ALL=C grep -aboP "$m" "$1" 2>/dev/null | cut -d: -f1 | head -5); do
      tail -c +$((off + 1)) "$1" | $cmd > "$2" 2>/dev/null || true
      [ "$(head -c 4 "$2" | od -An -c | tr -d ' ')" = 177ELF ] && return 0
    done
  done <<'EOF'
\x02\x21\x4c\x18 lz4 -dc
\x1f\x8b\x08 gzip -dc
\xfd\x37\x7a\x58\x5a\x00 xz -dc
\x28\xb5\x2f\xfd zstd -dc
EOF
  rm -f "$2"; return 1
}
BOOT_KERNEL=$KERNEL
if grep -q '^CONFIG_PVH=y' "$KCONFIG" 2>/dev/null; then
  if [ ! -s "$CACHE/vmlinux-$KVER" ] && extract_vmlinux "$KERNEL" "$CACHE/vmlinux-$KVER.tmp"; then
    mv "$CACHE/vmlinux-$KVER.tmp" "$CACHE/vmlinux-$KVER"
  fi
  if [ -s "$CACHE/vmlinux-$KVER" ]; then BOOT_KERNEL=$CACHE/vmlinux-$KVER; fi
fi

# qemu: the host's, else Debian's unpacked into the cache (installing qemu-system-x86
# could replace a newer qemu-utils on the host).  The TCG accelerator module lives in
# qemu-system-common and is found relative to the binary.
QEMU_L=()
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
  QEMU=$(command -v qemu-system-x86_64)
else
  QEMU=$CACHE/root/usr/bin/qemu-system-x86_64
  [ -x "$QEMU" ] && [ -e "$CACHE/root/usr/share/seabios/bios-256k.bin" ] ||
    fetch_pkg qemu-system-x86 qemu-system-common qemu-system-data seabios
  # Captured first: under pipefail, `ldd | grep -q` fails when grep's early exit kills ldd
  # with SIGPIPE, and the missing libraries went uninstalled (qemu then exits 127).
  missing=$(ldd "$QEMU" 2>&1 | grep 'not found' || true)
  if [ -n "$missing" ]; then
    libs=$(apt-cache depends qemu-system-x86 qemu-system-common 2>/dev/null |
           awk '/ Depends: lib/{print $2}' | sort -u | tr '\n' ' ')
    [ -n "$libs" ] || { apt_update_once; libs=$(apt-cache depends qemu-system-x86 qemu-system-common |
                         awk '/ Depends: lib/{print $2}' | sort -u | tr '\n' ' '); }
    echo "run-vm: installing qemu's shared libraries: $libs" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $libs >&2 ||
      { apt_update_once; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $libs >&2; } ||
      die "cannot install qemu's libraries"
    ! ldd "$QEMU" | grep 'not found' >&2 || die "qemu still lacks libraries"
  fi
  QEMU_L=(-L "$CACHE/root/usr/share/qemu" -L "$CACHE/root/usr/share/seabios")
fi

# busybox: the guest's whole userspace, so it must be static
BUSYBOX=
for b in /bin/busybox /usr/bin/busybox "$CACHE/root/bin/busybox"; do
  if [ -x "$b" ] && is_static "$b"; then BUSYBOX=$b; break; fi
done
if [ -z "$BUSYBOX" ]; then fetch_pkg busybox-static; BUSYBOX=$CACHE/root/bin/busybox; fi

mkcpio() {   # mkcpio DIR -> newc archive on stdout, files owned by root
  if command -v cpio >/dev/null 2>&1; then
    (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet)
  else
    (cd "$1" && find . | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null)
  fi
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ce-vm.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# base initramfs (cached): busybox, its applet links, the virtio modules
MODS="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk failover net_failover virtio_net"
BASE_KEY=$(cat "$BUSYBOX" | cksum | cut -d' ' -f1)
BASE=$CACHE/base-$KVER-$BASE_KEY.cpio.gz
if [ ! -s "$BASE" ]; then
  R=$WORK/base
  mkdir -p "$R"/{bin,proc,sys,dev,tmp,root,lib/modules,vm}
  cp "$BUSYBOX" "$R/bin/busybox"
  for a in $("$BUSYBOX" --list); do [ "$a" = busybox ] || ln -s busybox "$R/bin/$a"; done
  for m in $MODS; do
    f=$(find "$MODDIR" -name "$m.ko*" | head -1)
    [ -n "$f" ] || continue                  # built in (or absent) in this kernel
    case $f in
      *.ko.xz)  xz -dc "$f" > "$R/lib/modules/$m.ko" ;;
      *.ko.zst) zstd -qdc "$f" > "$R/lib/modules/$m.ko" ;;
      *.ko.gz)  gzip -dc "$f" > "$R/lib/modules/$m.ko" ;;
      *)        cp "$f" "$R/lib/modules/$m.ko" ;;
    esac
  done
  echo "$MODS" > "$R/vm/modules"
  mkcpio "$R" | gzip -1 > "$BASE.tmp" && mv "$BASE.tmp" "$BASE"
  rm -rf "$R"
  find "$CACHE" -maxdepth 1 -name 'base-*.cpio.gz' ! -name "${BASE##*/}" -delete
fi
# Container runtimes (tests/vm/README.md, "Real runtimes"): runc, and containerd with its shim
# and ctr, from the host (else Debian's packages unpacked into the cache), with the shared
# libraries `ldd` names at the same paths, and a busybox root filesystem for their bundles.
# One archive per set of binaries, cached; everything goes in /bin, where the shim finds runc
# and containerd the shim (through PATH).
RUNTIMES=${CE_VM_RUNTIMES-runc containerd}
case " $RUNTIMES " in *" containerd "*) case " $RUNTIMES " in *" runc "*) ;; *) RUNTIMES="runc $RUNTIMES" ;; esac ;; esac
[ "$RUNTIMES" != none ] || RUNTIMES=
for r in $RUNTIMES; do
  case $r in runc|containerd) ;; *) die "CE_VM_RUNTIMES: unknown runtime $r (runc, containerd, none)" ;; esac
done
host_or_pkg() {   # host_or_pkg PKG PATH: the host's PATH if executable, else PKG's, unpacked
  if [ -x "$2" ]; then echo "$2"; return; fi
  [ -x "$CACHE/root$2" ] || fetch_pkg "$1" >&2
  [ -x "$CACHE/root$2" ] || die "package $1 has no $2"
  echo "$CACHE/root$2"
}
RT_CPIO=
if [ -n "$RUNTIMES" ]; then
  RT_BINS=$(host_or_pkg runc /usr/sbin/runc)
  case " $RUNTIMES " in *" containerd "*)
    for b in containerd containerd-shim-runc-v2 ctr; do
      RT_BINS="$RT_BINS $(host_or_pkg containerd /usr/bin/$b)"
    done ;;
  esac
  RT_KEY=$(cat $RT_BINS "$BUSYBOX" | cksum | cut -d' ' -f1)
  RT_CPIO=$CACHE/runtimes-$RT_KEY.cpio
  if [ ! -s "$RT_CPIO" ]; then
    T=$WORK/rt
    mkdir -p "$T/bin" "$T/etc/containerd"
    for b in $RT_BINS; do
      cp "$b" "$T/bin/"
      # the libraries the dynamic loader would load, at the host's paths (cp -L: no symlinks)
      { ldd "$b" 2>/dev/null || true; } | awk '/=> \//{print $3} /^[[:space:]]*\/[^ ]*ld-linux/{print $1}' |
        while read -r lib; do
          [ -e "$T$lib" ] || { mkdir -p "$T$(dirname "$lib")"; cp -L "$lib" "$T$lib"; }
        done
      ! { ldd "$b" 2>/dev/null || true; } | grep 'not found' >&2 || die "$b lacks libraries on this host"
    done
    # the bundles' root: busybox and its applets, and what runc and containerd mount over
    B=$T/bundle/rootfs
    mkdir -p "$B/bin" "$B/proc" "$B/sys" "$B/dev" "$B/tmp" "$B/etc" "$B/root" "$B/truth"
    cp "$BUSYBOX" "$B/bin/busybox"
    for a in $("$BUSYBOX" --list); do [ "$a" = busybox ] || ln -s busybox "$B/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$B/etc/passwd"
    printf 'root:x:0:\n' > "$B/etc/group"
    # containerd: its own state in the guest's tmpfs; no CRI (the VM has no kubelet) and no
    # snapshotters that need modules or tools (`ctr run --rootfs` takes a directory)
    cat > "$T/etc/containerd/config.toml" <<'EOF'
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "/run/containerd/containerd.sock"
EOF
    mkcpio "$T" > "$RT_CPIO.tmp" && mv "$RT_CPIO.tmp" "$RT_CPIO"
    rm -rf "$T"
    find "$CACHE" -maxdepth 1 -name 'runtimes-*.cpio' ! -name "${RT_CPIO##*/}" -delete
  fi
fi
flock -u 9
T_TOOLS=$(elapsed)

# ---------------------------------------------------------------------------------------
# 2. Per-run archive (uncompressed; the kernel unpacks concatenated archives in order):
#    /init, the scenario, the exporter, its arguments.
# ---------------------------------------------------------------------------------------
R=$WORK/run
mkdir -p "$R/vm"
cp "$HERE/guest/init" "$R/init"; chmod 755 "$R/init"
cp "$HERE/guest/scenario.sh" "$HERE/guest/runtimes.sh" "$R/vm/"
cp "$BIN" "$R/vm/container-exporter"; chmod 755 "$R/vm/container-exporter"
is_static "$BIN" || head -c 2 "$BIN" | grep -q '#!' ||
  echo "run-vm: warning: $BIN is dynamically linked; the guest has no libraries" >&2
args=$(for a in "$@"; do printf "'%s' " "$(printf '%s' "$a" | sed "s/'/'\\\\''/g")"; done)
cat > "$R/vm/config" <<EOF
BURN_S='${CE_VM_BURN_S:-10}'
EXPORTER_ARGS="$(printf '%s' "$args" | sed 's/["$`\\]/\\&/g')"
EOF
if [ -n "$RUNTIMES" ]; then
  # The bundles' config.json: `runc spec` (the runtime's own defaults: namespaces, mounts,
  # capabilities, masked paths, a deny-all device rule), edited only where the VM needs it.
  # The scenario fills in @NAME@, @CGROUP@, "@RESOURCES@" and "@DEVICES@" per container.
  mkdir -p "$R/bundle" "$WORK/spec"
  (cd "$WORK/spec" && "${RT_BINS%% *}" spec) || die "runc spec failed"
  python3 - "$WORK/spec/config.json" > "$R/bundle/config.template.json" <<'EOF' || die "cannot edit runc's spec (python3)"
import json, sys
spec = json.load(open(sys.argv[1]))
p = spec["process"]
p["terminal"] = False                       # `run -d` would want a console socket
p["args"] = ["/bin/sh", "/truth/run.sh"]    # the container's script, in its truth directory
spec["root"] = {"path": "/bundle/rootfs", "readonly": False}
spec["hostname"] = "@NAME@"
# the container's own directory of the guest's /out: its script in, its ground truth out
spec["mounts"].append({"destination": "/truth", "type": "bind", "source": "/out/rt/@NAME@",
                       "options": ["rbind", "rw"]})
linux = spec["linux"]
linux["cgroupsPath"] = "@CGROUP@"
linux["resources"] = "@RESOURCES@"
linux["devices"] = "@DEVICES@"
json.dump(spec, sys.stdout, indent=1)
EOF
  echo "$RUNTIMES" > "$R/vm/runtimes"
fi
INITRD=$WORK/initrd.img
# Uncompressed archives first: the kernel takes one only at a 4-byte aligned offset, which
# the end of the gzip'd base is not.
{ mkcpio "$R"; [ -z "$RT_CPIO" ] || cat "$RT_CPIO"; } > "$INITRD"
truncate -s %4 "$INITRD"
cat "$BASE" >> "$INITRD"

# ---------------------------------------------------------------------------------------
# 3. Boot.  vda: scratch disk for the block IO workload; vdb: the guest's results (tar).
#    ttyS0: console log; ttyS1: "done" once vdb holds the results.
# ---------------------------------------------------------------------------------------
kvm_ok() {   # hardware KVM that can create a VM; kvm_pvm (software) cannot run a stock kernel
  [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ ! -e /sys/module/kvm_pvm ] &&
    grep -qwE 'vmx|svm' /proc/cpuinfo &&
    echo quit | timeout 20 "$QEMU" "${QEMU_L[@]}" -machine none -accel kvm -nodefaults \
      -display none -monitor stdio >/dev/null 2>&1
}
ACCEL=${CE_VM_ACCEL:-auto}
ACCEL_WANTED=$ACCEL
case $ACCEL in
  auto) if kvm_ok; then ACCEL=kvm; else ACCEL=tcg; fi ;;
  kvm|tcg) ;;
  *) die "CE_VM_ACCEL must be auto, kvm or tcg" ;;
esac
set_accel() {
  ACCEL=$1
  APPEND="console=ttyS0 panic=-1 rdinit=/init cgroup_no_v1=all psi=1 tsc=reliable mitigations=off cryptomgr.notests"
  if [ "$ACCEL" = kvm ]; then
    ACCEL_OPTS=(-accel kvm -cpu host)
  else
    ACCEL_OPTS=(-accel tcg,thread=multi -cpu max)
    # skip the delay-loop calibration of each vCPU (about a second each under TCG)
    local hz lpj
    hz=$(sed -n 's/^CONFIG_HZ=//p' "$KCONFIG" 2>/dev/null); hz=${hz:-250}
    lpj=$(awk -v hz="$hz" '/^cpu MHz/{printf "%d", $4 * 1000000 / hz; exit}' /proc/cpuinfo)
    if [ -n "$lpj" ]; then APPEND="$APPEND lpj=$lpj"; fi
  fi
  # the serial console is slow under emulation: keep it quiet unless asked
  if [ "${CE_VM_VERBOSE:-0}" != 1 ]; then APPEND="$APPEND quiet loglevel=3"
  else APPEND="$APPEND earlyprintk=serial,ttyS0,115200 ignore_loglevel"; fi
  APPEND="$APPEND ${CE_VM_APPEND:-}"
}
set_accel "$ACCEL"

run_vm() {
  truncate -s 0 "$WORK/vda.img" "$WORK/vdb.img" 2>/dev/null || true
  truncate -s 64M "$WORK/vda.img"; truncate -s 32M "$WORK/vdb.img"
  : > "$WORK/console.log"; : > "$WORK/status"
  set +e
  ( timeout "$TIMEOUT" "$QEMU" "${QEMU_L[@]}" "${ACCEL_OPTS[@]}" \
      -machine pc -smp "${CE_VM_SMP:-2}" -m "$VM_MEM" \
      -nodefaults -no-user-config -display none -no-reboot \
      -kernel "$BOOT_KERNEL" -initrd "$INITRD" -append "$APPEND" \
      -serial "file:$WORK/console.log" -serial "file:$WORK/status" \
      -drive "file=$WORK/vda.img,format=raw,if=virtio" \
      -drive "file=$WORK/vdb.img,format=raw,if=virtio" \
      -netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,romfile= \
      < /dev/null; exit $? ) 2> "$WORK/qemu.err"
  qrc=$?
  set -e
}
# containerd: RUNTIME.md measured 43-73 MB used by the guest plus 97 MB of initramfs in
# shmem, and ran it in 1 GiB; 512 MiB was not tried there
case " $RUNTIMES " in *" containerd "*) VM_MEM=${CE_VM_MEM:-1024} ;; *) VM_MEM=${CE_VM_MEM:-512} ;; esac
T_BOOT=$(elapsed)
run_vm
if [ "$ACCEL_WANTED" = auto ] && [ "$ACCEL" = kvm ] && ! grep -q done "$WORK/status"; then
  echo "run-vm: KVM run failed (qemu rc=$qrc: $(head -c 300 "$WORK/qemu.err")); retrying with TCG" >&2
  set_accel tcg
  run_vm
fi
T_END=$(elapsed)
if ! grep -q done "$WORK/status" && [ $qrc != 124 ] && [ "${CE_VM_VERBOSE:-0}" != 1 ]; then
  echo "run-vm: the VM returned no results (qemu rc=$qrc); booting again with the full kernel log" >&2
  CE_VM_VERBOSE=1; set_accel "$ACCEL"; run_vm
fi

tr -d '\r' < "$WORK/console.log" > "$OUT/console.log"
cp "$WORK/qemu.err" "$OUT/qemu.err"
cat > "$OUT/timings" <<EOF
accel=$ACCEL
kernel=$KVER
tools_ms=$T_TOOLS
vm_ms=$((T_END - T_BOOT))
total_ms=$T_END
EOF
if [ $qrc = 124 ]; then
  echo "run-vm: timed out after ${TIMEOUT}s (CE_VM_TIMEOUT); guest console:" >&2
  cat "$OUT/console.log" >&2; exit 124
fi
if ! grep -q done "$WORK/status" || ! tar -xf "$WORK/vdb.img" -C "$OUT"; then
  echo "run-vm: the VM returned no results (qemu rc=$qrc, accel=$ACCEL); qemu stderr + guest console:" >&2
  cat "$WORK/qemu.err" "$OUT/console.log" >&2
  exit 125
fi
echo "run-vm: done in $((T_END / 1000)).$((T_END % 1000 / 100)) s (accel=$ACCEL, kernel $KVER, VM $(( (T_END - T_BOOT) / 1000 )) s)" >&2
