# Sourced by /init inside the VM (busybox sh).  Builds container-shaped cgroups the way
# systemd + docker / containerd + kubelet lay them out, starts known workloads in
# them, runs the exporter three times from the root cgroup, and writes to /out:
#   facts                 key=value: what the workloads did (ids, sizes, limits, ...)
#   truth/<phase>/<name>/ the raw cgroup files of each container, read by `cat` at
#                         phase pre1 post1 pre2 post2 final (around the exporter runs)
#   run<N>.json .stderr .rc .ms   the exporter's stdout, stderr, exit status, wall ms
#   capture/              real kernel files for testdata/ (see tests/vm/README.md)
#   burn.time             busybox `time` output of the CPU burner (self-measure)
# Settings come from /vm/config: BURN_S (CPU burn seconds), EXPORTER_ARGS.
set -u
CG=/sys/fs/cgroup
OUT=/out
ANON_MB=32      # anonymous memory held by a blocked dd in the kubepods container
SHMEM_MB=32     # tmpfs file written from the kubepods container (shmem: counted as file)
MEM_SLEEPS=4    # extra processes in the kubepods container (+1 for the dd): pid.count
MEM_PIDS_MAX=64
MEM_MAX=268435456
OOM_MAX=8388608
IO_WRITE_MB=32  # O_DIRECT writes to /dev/vda from the io container
IO_READ_MB=16   # O_DIRECT reads from /dev/vda from the io container
CPU_MAX="50000 100000"

ms() { read -r up _ < /proc/uptime; echo "${up%.*}${up#*.}0"; }  # uptime in ms (10 ms steps)
fact() { echo "$1=$2" >> $OUT/facts; }
hexid() { printf '%s' "$1" | sha256sum | cut -c1-64; }
ctl() { for c in cpu memory io pids; do echo "+$c" > "$1/cgroup.subtree_control" || echo "cannot enable $c in $1"; done; }
# incg CGROUP CMD...: move this (sub)shell into CGROUP, then exec CMD: use as ( incg ... ) &
# (pid 0 written to cgroup.procs means the writer itself; $$ would be the parent shell's pid)
incg() { _cg=$1; shift; echo 0 > "$_cg/cgroup.procs" && exec "$@"; }

: > $OUT/facts
fact kernel "$(uname -r)"
fact vda_majmin "$(cat /sys/block/vda/dev)"
fact cpus "$(nproc)"
fact burn_s "$BURN_S"

# ---- the cgroup tree -----------------------------------------------------------------
ctl $CG
mkdir -p $CG/system.slice && ctl $CG/system.slice
POD_UID=6f1c2a34-8b5d-4e7f-9a0b-1c2d3e4f5a6b
POD_U=$(echo $POD_UID | tr - _)
KP=$CG/kubepods.slice
POD=$KP/kubepods-burstable.slice/kubepods-burstable-pod$POD_U.slice
mkdir -p $POD
ctl $KP; ctl $KP/kubepods-burstable.slice; ctl $POD

ID_CPU=$(hexid cpu-burner); ID_MEM=$(hexid memory-holder); ID_OOM=$(hexid oom-victim); ID_IO=$(hexid direct-io)
D_CPU=$CG/system.slice/docker-$ID_CPU.scope
D_MEM=$POD/cri-containerd-$ID_MEM.scope
D_OOM=$CG/system.slice/docker-$ID_OOM.scope
D_IO=$CG/system.slice/docker-$ID_IO.scope
mkdir -p $D_CPU $D_MEM $D_OOM $D_IO
mkdir -p $CG/plain/leaf        # plain's subtree_control stays empty: leaf has no controllers
echo "$CPU_MAX" > $D_CPU/cpu.max
echo $MEM_MAX > $D_MEM/memory.max
echo $MEM_PIDS_MAX > $D_MEM/pids.max
echo $OOM_MAX > $D_OOM/memory.max
# what a Burstable pod's container gets from the kubelet through runc: cpu.weight from its CPU
# request (shares 1024 -> weight 39), and a memory.min and memory.swap.max to read back
echo 39 > $D_MEM/cpu.weight
echo $((64 << 20)) > $D_MEM/memory.min
echo $((128 << 20)) > $D_MEM/memory.swap.max
fact pod_uid $POD_UID
fact cpu.id $ID_CPU;  fact cpu.dir ${D_CPU#$CG};  fact cpu.max "$CPU_MAX"
fact mem.id $ID_MEM;  fact mem.dir ${D_MEM#$CG};  fact mem.max $MEM_MAX
fact mem.anon_bytes $((ANON_MB << 20)); fact mem.shmem_bytes $((SHMEM_MB << 20))
fact mem.pids_started $((MEM_SLEEPS + 1)); fact mem.pids_max $MEM_PIDS_MAX
fact oom.id $ID_OOM;  fact oom.dir ${D_OOM#$CG};  fact oom.max $OOM_MAX
fact io.id $ID_IO;    fact io.dir ${D_IO#$CG}
fact io.write_bytes $((IO_WRITE_MB << 20)); fact io.read_bytes $((IO_READ_MB << 20))

# ---- workloads ---------------------------------------------------------------------------
T0=$(ms)

# memory: ANON_MB of anonymous memory held by a dd blocked on a full pipe (its reader
# sleeps in the root cgroup), SHMEM_MB written to tmpfs, MEM_SLEEPS idle processes.
mkfifo /tmp/anon.fifo
sleep 100000 < /tmp/anon.fifo &
( incg $D_MEM dd if=/dev/zero bs=${ANON_MB}M count=1 ) > /tmp/anon.fifo 2>/dev/null &
( incg $D_MEM dd if=/dev/zero of=/dev/shm/page-cache bs=1M count=$SHMEM_MB ) 2>/dev/null
i=0; while [ $i -lt $MEM_SLEEPS ]; do ( incg $D_MEM sleep 100000 ) & i=$((i+1)); done
MEM_SLEEP_PID=$!
# a little O_DIRECT read there too, so the captured io.stat of this container is not empty
( incg $D_MEM dd if=/dev/vda of=/dev/null bs=1M count=4 iflag=direct ) 2>/dev/null

# OOM: a 16M dd in an 8M cgroup is killed; a sleep stays, like a container's main process.
( incg $D_OOM sleep 100000 ) &
( incg $D_OOM dd if=/dev/zero of=/dev/null bs=16M count=1 ) 2>/dev/null
fact oom.dd_rc $?

# block IO: O_DIRECT to the virtio disk; a sleep keeps the container populated.
( incg $D_IO sleep 100000 ) &
( incg $D_IO dd if=/dev/zero of=/dev/vda bs=1M count=$IO_WRITE_MB oflag=direct ) 2>/dev/null
fact io.dd_write_rc $?
( incg $D_IO dd if=/dev/vda of=/dev/null bs=1M count=$IO_READ_MB iflag=direct ) 2>/dev/null
fact io.dd_read_rc $?

# a process in a controller-less cgroup, and some packets for /proc/PID/net/dev
( incg $CG/plain/leaf sleep 100000 ) &
ip link set lo up
ping -c 2 127.0.0.1 > /dev/null 2>&1
if ip link set eth0 up 2>/dev/null; then
  ip addr add 10.0.2.15/24 dev eth0
  ping -c 2 -W 1 10.0.2.2 > /dev/null 2>&1
fi
fact setup_ms $(( $(ms) - T0 ))

# ---- ground truth + exporter runs ------------------------------------------------------------
snap() {  # snap PHASE: raw files of every container, read with cat
  for n in cpu mem oom io; do
    eval d=\$D_$(echo $n | tr a-z A-Z)
    mkdir -p $OUT/truth/$1/$n
    for f in cgroup.events cpu.stat cpu.max cpu.pressure memory.current memory.max memory.stat \
             memory.events memory.pressure pids.current pids.max io.stat io.pressure; do
      cat $d/$f > $OUT/truth/$1/$n/$f 2>/dev/null
    done
  done
}
run() {  # run N: the exporter from the root cgroup (cgroup v2: no internal processes)
  snap pre$1
  s=$(ms)
  eval "/vm/container-exporter $EXPORTER_ARGS" < /dev/null > $OUT/run$1.json 2> $OUT/run$1.stderr
  echo $? > $OUT/run$1.rc
  echo $(( $(ms) - s )) > $OUT/run$1.ms
  snap post$1
}
# CPU: `yes` under half a CPU for BURN_S seconds, and on until run 2 is over (on a loaded host
# the runs took longer than the burn); busybox `time` measures the burn itself.
T_BURN=$(ms)
( incg $D_CPU time sh -c 'yes > /dev/null & y=$!; sleep "$0"
  while [ ! -e /tmp/burn.stop ]; do sleep 0.2; done; kill $y; wait $y' "$BURN_S" ) 2> $OUT/burn.time &
BURN_PID=$!
run 1
if kill -0 $BURN_PID 2>/dev/null; then fact burning_after_run1 1; else fact burning_after_run1 0; fi
sleep 0.5
run 2
if kill -0 $BURN_PID 2>/dev/null; then fact burning_after_run2 1; else fact burning_after_run2 0; fi
touch /tmp/burn.stop
wait $BURN_PID
fact burn_wall_ms $(( $(ms) - T_BURN ))
# self-measure: "user\t0m 2.45s" -> microseconds
fact cpu.burn_real_s "$(awk '$1 == "real" { v = $2 " " $3; sub(/s$/, "", v); split(v, a, "m "); printf "%.2f", a[1] * 60 + a[2] }' $OUT/burn.time)"
fact cpu.burn_self_usec "$(awk '$1 == "user" || $1 == "sys" { v = $2 " " $3; sub(/s$/, "", v); split(v, a, "m "); t += a[1] * 60 + a[2] }
  END { printf "%d", t * 1000000 }' $OUT/burn.time)"
run 3

# ---- real kernel files for testdata/ -------------------------------------------------------
C=$OUT/capture/cgroup
mkdir -p $C/throttled $C/oom $C/plain $C/unlimited $C/root $C/spec $C/spec/unlimited $OUT/capture/procfs
for f in cpu.stat cpu.max memory.current memory.max memory.stat memory.events memory.swap.current \
         pids.current pids.max io.stat cpu.pressure memory.pressure io.pressure cgroup.events \
         cgroup.controllers cgroup.procs cgroup.type cgroup.stat; do
  cat $D_MEM/$f > $C/$f
done
for f in cpu.stat cpu.max cpu.pressure; do cat $D_CPU/$f > $C/throttled/$f; done
for f in memory.events memory.max memory.current; do cat $D_OOM/$f > $C/oom/$f; done
for f in cpu.stat cgroup.controllers cgroup.events cpu.pressure; do cat $CG/plain/leaf/$f > $C/plain/$f; done
for f in memory.max pids.max cpu.max io.stat; do cat $D_IO/$f > $C/unlimited/$f; done
# the limits the cAdvisor page shows as container_spec_*: set (the kubepods container) and not
for f in cpu.weight memory.min memory.swap.max; do
  cat $D_MEM/$f > $C/spec/$f; cat $D_IO/$f > $C/spec/unlimited/$f
done
for f in cgroup.controllers cgroup.subtree_control cpu.stat memory.stat io.stat cpu.pressure; do
  cat $CG/$f > $C/root/$f
done
cat /proc/$MEM_SLEEP_PID/net/dev > $OUT/capture/procfs/net_dev
cat /proc/$MEM_SLEEP_PID/cgroup > $OUT/capture/procfs/pid_cgroup
cat /proc/self/mountinfo > $OUT/capture/procfs/mountinfo
uname -r > $OUT/capture/kernel
echo "scenario done after $(( $(ms) - T0 )) ms"

# ---- real runtimes: runc (and containerd) make containers while the exporter runs as a daemon --
if [ -s /vm/runtimes ]; then
  . /vm/runtimes.sh
fi
