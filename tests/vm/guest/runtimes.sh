# Sourced at the end of scenario.sh (busybox sh) when the initramfs holds real runtimes
# (/vm/runtimes: "runc" or "runc containerd", from CE_VM_RUNTIMES). runc makes containers at
# the cgroup paths Docker and the kubelet give it, each from a `runc spec` bundle
# (/bundle/config.template.json, filled in here) over a busybox root; containerd makes two
# with `ctr run`, one where it chooses. The exporter runs as the daemon, twice (the
# OpenTelemetry page on 9464, the cAdvisor page on 9465), started before any runtime
# container exists, and its pages are scraped with busybox wget at each step. Writes:
#   /out/rt/<name>/       a container's truth dir, bind-mounted at /truth inside it: its
#                         script (run.sh), config.json (the spec runc ran), what the workload
#                         wrote (pids it started, its own /proc/net/dev as net.dev, burn.time
#                         from busybox `time -p`, dd's reports, dd.rc), and its cgroup files as
#                         read at a phase (cg.<phase>/)
#   /out/rt/pages/        every page scraped, in order: NNN-<tag>.otel / .cadvisor, and
#                         index ("file uptime_ms status")
#   /out/rt/daemon-<otel|cadvisor>.{stderr,rc}, containerd.log
#   facts rt.*            ids, cgroup paths, pids, timings, return codes
#   /out/capture/runtimes/  runtime-made kernel files for testdata/
# Settings: BURN_S (from /vm/config).
RT=$OUT/rt
PAGES=$RT/pages
mkdir -p $PAGES /run/runc
RUNTIMES=$(cat /vm/runtimes)
has_rt() { case " $RUNTIMES " in *" $1 "*) return 0 ;; esac; return 1; }
OTEL_PORT=9464
CADV_PORT=9465
POLL_S=90                           # bound on every wait: a broken exporter or runtime must not hang the VM
RC_BURN_S=$BURN_S                   # rc-burn burns under cpu.max 0.5 ...
CTR_BURN_S=$(( (BURN_S + 1) / 2 ))  # ... ce-burn a whole CPU for half as long
CGFILES="cgroup.events cgroup.procs cgroup.controllers cgroup.subtree_control cgroup.type
  cpu.stat cpu.max cpu.weight cpu.pressure memory.current memory.max memory.high memory.low
  memory.min memory.swap.max memory.stat memory.events memory.peak memory.pressure
  pids.current pids.max io.stat io.max io.pressure"

T_RT=$(ms)
for b in runc $(has_rt containerd && echo containerd ctr containerd-shim-runc-v2); do
  command -v $b > /dev/null || { fact rt.missing "$b"; echo "runtime phase: $b missing"; return 1; }
done
fact rt.runtimes "$RUNTIMES"
fact rt.runc_version "$(runc --version 2>&1 | head -1)"
has_rt containerd && fact rt.containerd_version "$(containerd --version 2>&1)"
fact rt.burn_s $RC_BURN_S
fact rt.ctr_burn_s $CTR_BURN_S

# ---- helpers ------------------------------------------------------------------------------
get() { timeout 10 wget -q -O "$2" "http://127.0.0.1:$1/metrics" 2>/dev/null || : > "$2"; }
port_of() { if [ "$1" = otel ]; then echo $OTEL_PORT; else echo $CADV_PORT; fi; }
SEQ=0
LAST=
scrape() {  # scrape TAG: both pages, kept in order; $LAST is the path without .otel/.cadvisor
  SEQ=$((SEQ + 1)); LAST=$PAGES/$(printf '%03d-%s' $SEQ "$1")
  for w in otel cadvisor; do
    get $(port_of $w) $LAST.$w
    echo "${LAST##*/}.$w $(ms) scraped" >> $PAGES/index
  done
}
# poll_page WHICH TAG CMD...: scrape WHICH page until `CMD... FILE` succeeds, keeping that
# page only (a page that served nothing new is thrown away: a final sample stays on the page
# until a scrape has served it). Returns 1 after POLL_S, or at once when the daemon is gone.
poll_page() {
  _w=$1; _tag=$2; shift 2
  eval _pid=\${DPID_$_w:-}
  SEQ=$((SEQ + 1)); _f=$PAGES/$(printf '%03d-%s' $SEQ "$_tag").$_w
  _i=0
  while [ $_i -lt $((POLL_S * 5)) ]; do
    get $(port_of $_w) $_f
    if "$@" $_f; then echo "${_f##*/} $(ms) ok" >> $PAGES/index; return 0; fi
    [ -n "$_pid" ] && kill -0 $_pid 2>/dev/null || break
    sleep 0.2; _i=$((_i + 1))
  done
  echo "${_f##*/} $(ms) timeout" >> $PAGES/index
  [ -n "$_pid" ] && kill -0 $_pid 2>/dev/null && timed_out "poll $_tag $_w"
  return 1
}
self_metric() { awk -v n="$2" '$1 == n { print $2; f = 1; exit } END { if (!f) print -1 }' "$1"; }
# final_after BEFORE PATTERN FILE: the exporter took a final sample since it said BEFORE,
# and the container (PATTERN, a label of its series) is on the page
final_after() {
  awk -v b="$1" -v pat="$2" '$1 == "container_exporter_final_samples_total" { n = $2 }
    index($0, pat) { seen = 1 } END { exit !(n > b && seen) }' "$3"
}
wait_ticks() {  # wait_ticks N: N more collections on the OpenTelemetry page
  get $OTEL_PORT /tmp/tick.page
  _c0=$(self_metric /tmp/tick.page container_exporter_collections_total)
  _i=0
  while [ $_i -lt $((POLL_S * 10)) ]; do
    get $OTEL_PORT /tmp/tick.page
    [ "$(self_metric /tmp/tick.page container_exporter_collections_total)" -ge $((_c0 + $1)) ] && return 0
    kill -0 ${DPID_otel:-0} 2>/dev/null || return 1
    sleep 0.1; _i=$((_i + 1))
  done
  timed_out "wait_ticks $1"
  return 1
}
# Every wait is bounded; after one timed out (something is broken: the checks will say what),
# the others wait a few seconds only, so that a broken run still returns well within the
# harness's timeout.
timed_out() { POLL_S=3; fact rt.timeout "$1"; }
wait_for() {  # wait_for SECONDS CMD...: until CMD succeeds (0.1 s steps)
  _n=$(($1 * 10)); shift; _i=0
  [ $POLL_S -gt 3 ] || _n=30
  while [ $_i -lt $_n ]; do "$@" && return 0; sleep 0.1; _i=$((_i + 1)); done
  timed_out "$*"
  return 1
}
var_of() { echo "$1" | sed 's/-/_/g'; }
# copy SRC DST with shell builtins only: a `cat` per file (a fork and an exec under TCG)
# cost about 30 ms, 0.7 s for one container's files
copy() {
  [ -r "$1" ] || return 1
  while IFS= read -r _l || [ -n "$_l" ]; do printf '%s\n' "$_l"; done < "$1" > "$2"
}
cg_snap() {  # cg_snap NAME PHASE: the container's cgroup files, read once each
  eval _d=\$DIR_$(var_of "$1")
  mkdir -p $RT/$1/cg.$2
  for _f in $CGFILES; do
    copy $CG$_d/$_f $RT/$1/cg.$2/$_f 2>/dev/null || rm -f $RT/$1/cg.$2/$_f
  done
}
describe() {  # describe NAME ID DIR RUNTIME POD: what the checks expect to find
  eval DIR_$(var_of "$1")=\$3
  mkdir -p $RT/$1
  fact rt.$1.id "$2"; fact rt.$1.dir "$3"; fact rt.$1.runtime "$4"; fact rt.$1.pod "$5"
}
pid_facts() {  # pid_facts NAME PID: the container's first process and the cgroup it is in
  fact rt.$1.pid "$2"
  fact rt.$1.pid_cgroup "$(cat /proc/$2/cgroup 2>/dev/null)"
}

# ---- runc bundles -------------------------------------------------------------------------
DENY='{"allow":false,"access":"rwm"}'
rc_bundle() {  # rc_bundle NAME RESOURCES DEVICES: config.json from the runc spec template
  eval _d=\$DIR_$(var_of "$1")
  mkdir -p /bundle/$1
  sed -e "s|@NAME@|$1|g" -e "s|@CGROUP@|$_d|" -e "s|\"@RESOURCES@\"|$2|" \
      -e "s|\"@DEVICES@\"|$3|" /bundle/config.template.json > /bundle/$1/config.json
  cp /bundle/$1/config.json $RT/$1/config.json
}
rc_run() {  # rc_run NAME: runc run -d (timed); the container's stdio goes to runc.log
  _s=$(ms)
  (cd /bundle/$1 && runc run -d --no-pivot $1) < /dev/null > $RT/$1/runc.log 2>&1
  _rc=$?
  fact rt.$1.run_rc $_rc; fact rt.$1.run_ms $(( $(ms) - _s ))
  _p=$(runc state $1 2>/dev/null | awk -F'[:,]' '/"pid"/ { gsub(/ /, "", $2); print $2 }')
  [ -n "$_p" ] && pid_facts $1 $_p
  return $_rc
}
rc_stopped() { runc state $1 2>/dev/null | grep -q '"status": "stopped"'; }

ID_OOM=$(hexid rc-oom); ID_BURN=$(hexid rc-burn); ID_MEM=$(hexid rc-mem)
ID_IO=$(hexid rc-io);   ID_PIDS=$(hexid rc-pids); ID_KUBE=$(hexid ctr-kube)
U1=0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d   # kubelet, cgroupfs driver: rc-mem and rc-io
U2=5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9   # kubelet, systemd driver's shape: rc-pids
U3=b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e   # kubelet-shaped path given to containerd: ctr-kube
U2_=$(echo $U2 | tr - _)
describe rc-oom  $ID_OOM  /system.slice/docker-$ID_OOM.scope docker ""
describe rc-burn $ID_BURN /docker/$ID_BURN docker ""
describe rc-mem  $ID_MEM  /kubepods/burstable/pod$U1/$ID_MEM containerd $U1
describe rc-io   $ID_IO   /kubepods/burstable/pod$U1/$ID_IO containerd $U1
describe rc-pids $ID_PIDS /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$U2_.slice/cri-containerd-$ID_PIDS.scope containerd $U2
fact rt.pod1.dir /kubepods/burstable/pod$U1
fact rt.pod2.dir /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$U2_.slice
RC_MEM_LIMIT=268435456; RC_OOM_LIMIT=16777216; RC_PIDS_LIMIT=16
RC_MEM_SHM_MB=32; RC_MEM_ANON_MB=32; RC_IO_WRITE_MB=32; RC_IO_READ_MB=16

# ---- the exporter as a daemon, twice ----------------------------------------------------------
# --rescan-interval 1h: after the first walk (before any runtime container exists), only
# inotify can find the containers.
start_daemon() {  # start_daemon NAME PORT ARGS...
  _n=$1; _port=$2; shift 2
  /vm/container-exporter --prometheus-listen 127.0.0.1:$_port --interval 1s \
    --rescan-interval 1h --exited-retention 10m "$@" \
    < /dev/null > $RT/daemon-$_n.stdout 2> $RT/daemon-$_n.stderr &
  eval DPID_$_n=$!
}
ready() { wget -q -O /dev/null "http://127.0.0.1:$1/readyz" 2>/dev/null; }
alive_ready() { eval kill -0 \$DPID_$1 2>/dev/null || return 2; ready $(port_of $1); }
_s=$(ms)
start_daemon otel $OTEL_PORT
start_daemon cadvisor $CADV_PORT --prometheus-names cadvisor
DAEMONS=1
for w in otel cadvisor; do
  _i=0
  while [ $_i -lt $((POLL_S * 10)) ]; do
    alive_ready $w; _r=$?
    [ $_r = 0 ] && break
    [ $_r = 2 ] && { fact rt.daemon_$w.exited_early 1; break; }
    sleep 0.1; _i=$((_i + 1))
  done
  if ready $(port_of $w); then fact rt.daemon_$w.ready_ms $(( $(ms) - _s )); else DAEMONS=0; fi
done
fact rt.daemons_ready $DAEMONS
[ $DAEMONS = 1 ] && wait_ticks 2
scrape start

# ---- runc 1: a container OOM-killed under memory.max -------------------------------------------
# The main shell survives its dd (by far the largest process) and reports the status dd died
# with: one kill, of a process that was writing 64 MiB into 16 MiB.
cat > $RT/rc-oom/run.sh <<'EOF'
echo $$ > /truth/pids
cat /proc/net/dev > /truth/net.dev
dd if=/dev/zero of=/dev/null bs=64M count=1 2> /truth/dd.err
rc=$?
echo $rc > /truth/dd.rc
exit $rc
EOF
fact rt.rc-oom.limit $RC_OOM_LIMIT
rc_bundle rc-oom "{\"devices\":[$DENY],\"memory\":{\"limit\":$RC_OOM_LIMIT}}" '[]'
B_OTEL=$(self_metric $LAST.otel container_exporter_final_samples_total)
B_CADV=$(self_metric $LAST.cadvisor container_exporter_final_samples_total)
rc_run rc-oom
wait_for $POLL_S rc_stopped rc-oom || fact rt.rc-oom.not_stopped 1
fact rt.rc-oom.stopped_ms $(ms)
poll_page otel oom-exit final_after $B_OTEL "container_id=\"$ID_OOM\""
poll_page cadvisor oom-exit final_after $B_CADV "id=\"$DIR_rc_oom\""
cg_snap rc-oom stopped
runc delete rc-oom > /dev/null 2>&1

# ---- runc 2-5: containers that stay, and a CPU burner under cpu.max -----------------------------
# rc-burn: waits for "go" on a FIFO, then burns under half a CPU for RC_BURN_S, measured by
# busybox `time` (its own rusage); the container ends with the burn.
mkfifo $RT/rc-burn/go
cat > $RT/rc-burn/run.sh <<EOF
echo \$\$ > /truth/pids
cat /proc/net/dev > /truth/net.dev
echo ready > /truth/ready
read go < /truth/go
exec time -p -o /truth/burn.time sh -c 'yes > /dev/null & y=\$!; sleep "\$0"; kill \$y; wait \$y; true' $RC_BURN_S
EOF
rc_bundle rc-burn "{\"devices\":[$DENY],\"cpu\":{\"quota\":50000,\"period\":100000}}" '[]'
rc_run rc-burn
# rc-mem: 32 MiB written to its /dev/shm (tmpfs: shmem, counted as file), 32 MiB of anonymous
# memory held by a dd blocked on a FIFO nobody reads; cpu shares 512 (runc writes cpu.weight)
cat > $RT/rc-mem/run.sh <<EOF
echo \$\$ > /truth/pids
cat /proc/net/dev > /truth/net.dev
dd if=/dev/zero of=/dev/shm/fill bs=1M count=$RC_MEM_SHM_MB 2> /truth/shm.dd
mkfifo /dev/shm/anon.fifo
sleep 100000 < /dev/shm/anon.fifo &
echo \$! >> /truth/pids
dd if=/dev/zero bs=${RC_MEM_ANON_MB}M count=1 2> /dev/null > /dev/shm/anon.fifo &
echo \$! >> /truth/pids
echo ready > /truth/ready
exec sleep 100000
EOF
fact rt.rc-mem.limit $RC_MEM_LIMIT
fact rt.rc-mem.shm_bytes $((RC_MEM_SHM_MB << 20)); fact rt.rc-mem.anon_bytes $((RC_MEM_ANON_MB << 20))
fact rt.rc-mem.bs 1048576
rc_bundle rc-mem "{\"devices\":[$DENY],\"memory\":{\"limit\":$RC_MEM_LIMIT},\"cpu\":{\"shares\":512}}" '[]'
rc_run rc-mem
# rc-io: O_DIRECT writes and reads on the guest's scratch disk, allowed by a device rule
VDA=$(cat /sys/block/vda/dev)
fact rt.rc-io.bs 1048576
cat > $RT/rc-io/run.sh <<EOF
echo \$\$ > /truth/pids
cat /proc/net/dev > /truth/net.dev
dd if=/dev/zero of=/dev/vda bs=1M count=$RC_IO_WRITE_MB oflag=direct 2> /truth/write.dd
echo \$? > /truth/write.rc
dd if=/dev/vda of=/dev/null bs=1M count=$RC_IO_READ_MB iflag=direct 2> /truth/read.dd
echo \$? > /truth/read.rc
echo ready > /truth/ready
exec sleep 100000
EOF
rc_bundle rc-io "{\"devices\":[$DENY,{\"allow\":true,\"type\":\"b\",\"major\":${VDA%:*},\"minor\":${VDA#*:},\"access\":\"rw\"}]}" \
  "[{\"path\":\"/dev/vda\",\"type\":\"b\",\"major\":${VDA%:*},\"minor\":${VDA#*:},\"fileMode\":432,\"uid\":0,\"gid\":0}]"
rc_run rc-io
# rc-pids: 7 processes started by the main one under pids.max 16; cpu shares 256
cat > $RT/rc-pids/run.sh <<'EOF'
echo $$ > /truth/pids
cat /proc/net/dev > /truth/net.dev
i=0
while [ $i -lt 7 ]; do sleep 100000 & echo $! >> /truth/pids; i=$((i + 1)); done
echo ready > /truth/ready
exec sleep 100000
EOF
fact rt.rc-pids.limit $RC_PIDS_LIMIT
rc_bundle rc-pids "{\"devices\":[$DENY],\"pids\":{\"limit\":$RC_PIDS_LIMIT},\"cpu\":{\"shares\":256}}" '[]'
rc_run rc-pids
for n in rc-burn rc-mem rc-io rc-pids; do
  wait_for $POLL_S test -e $RT/$n/ready || fact rt.$n.not_ready 1
done
# the parents runc made, and the controllers it enabled in them
for d in /docker /kubepods /kubepods/burstable /kubepods/burstable/pod$U1 /system.slice \
         /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$U2_.slice; do
  mkdir -p $RT/parents$d
  cat $CG$d/cgroup.subtree_control > $RT/parents$d/cgroup.subtree_control 2>/dev/null
done
[ $DAEMONS = 1 ] && wait_ticks 2
scrape running
for n in rc-burn rc-mem rc-io rc-pids; do cg_snap $n running; done

# ---- the burn starts; containerd meanwhile ------------------------------------------------------
B_OTEL=$(self_metric $LAST.otel container_exporter_final_samples_total)
B_CADV=$(self_metric $LAST.cadvisor container_exporter_final_samples_total)
fact rt.rc-burn.go_ms $(ms)
echo go > $RT/rc-burn/go &

if has_rt containerd; then
  # containerd in the cgroup systemd gives it: its shims stay there, outside the containers
  mkdir -p $CG/system.slice/containerd.service /var/lib/containerd /run/containerd
  _s=$(ms)
  ( echo 0 > $CG/system.slice/containerd.service/cgroup.procs &&
    exec containerd --config /etc/containerd/config.toml ) > $RT/containerd.log 2>&1 &
  CTRD_PID=$!
  ctr_up() { ctr version > /dev/null 2>&1; }
  if wait_for $POLL_S ctr_up; then fact rt.containerd.up_ms $(( $(ms) - _s )); else fact rt.containerd.up 0; fi
  ctr_run() {  # ctr_run NAME ID [ctr run options]: a container over the bundles' busybox root
    _n=$1; _id=$2; shift 2
    _s=$(ms)
    ctr run -d --null-io --no-pivot "$@" \
      --mount type=bind,src=$RT/$_n,dst=/truth,options=rbind:rw \
      --rootfs /bundle/rootfs $_id /bin/sh /truth/run.sh > $RT/$_n/ctr.log 2>&1
    _rc=$?
    fact rt.$_n.run_rc $_rc; fact rt.$_n.run_ms $(( $(ms) - _s ))
    _p=$(ctr task ls 2>/dev/null | awk -v id=$_id '$1 == id { print $2 }')
    [ -n "$_p" ] && pid_facts $_n $_p
    # the spec containerd made and handed to runc (its default spec, and --cgroup)
    cp /run/containerd/io.containerd.runtime.v2.task/default/$_id/config.json $RT/$_n/ 2>/dev/null
    # its shim: containerd-shim-runc-v2 -namespace default -id <id> ...
    _sp=$(ps -o pid,args | awk -v id=$_id '/containerd-shim-runc-v2/ && / -id / {
      for (i = 1; i < NF; i++) if ($i == "-id" && $(i + 1) == id) print $1 }' | head -1)
    if [ -n "$_sp" ]; then
      fact rt.$_n.shim_pid $_sp
      fact rt.$_n.shim_cgroup "$(cat /proc/$_sp/cgroup 2>/dev/null)"
    fi
  }
  # ce-burn: where containerd puts it on its own (/<namespace>/<id>), an id that is a name;
  # containerd's default spec gives it cpu shares 1024 (runc writes cpu.weight 39)
  mkdir -p $RT/ce-burn
  mkfifo $RT/ce-burn/go
  cat > $RT/ce-burn/run.sh <<EOF
echo \$\$ > /truth/pids
cat /proc/net/dev > /truth/net.dev
echo ready > /truth/ready
read go < /truth/go
exec time -p -o /truth/burn.time sh -c 'yes > /dev/null & y=\$!; sleep "\$0"; kill \$y; wait \$y; true' $CTR_BURN_S
EOF
  ctr_run ce-burn ce-burn
  # where containerd put it, from its process (the checks expect /default/ce-burn)
  _cg=$(awk -F= '$1 == "rt.ce-burn.pid_cgroup" { sub(/^0::/, "", $2); print $2 }' $OUT/facts)
  describe ce-burn ce-burn "${_cg:-/default/ce-burn}" containerd ""
  # ctr-kube: a kubelet-shaped path, given with --cgroup as the CRI plugin would
  describe ctr-kube $ID_KUBE /kubepods/besteffort/pod$U3/$ID_KUBE containerd $U3
  cat > $RT/ctr-kube/run.sh <<'EOF'
echo $$ > /truth/pids
cat /proc/net/dev > /truth/net.dev
dd if=/dev/zero of=/dev/shm/fill bs=1M count=16 2> /truth/shm.dd
i=0
while [ $i -lt 3 ]; do sleep 100000 & echo $! >> /truth/pids; i=$((i + 1)); done
echo ready > /truth/ready
exec sleep 100000
EOF
  fact rt.ctr-kube.shm_bytes $((16 << 20))
  ctr_run ctr-kube $ID_KUBE --cgroup /kubepods/besteffort/pod$U3/$ID_KUBE
  for n in ce-burn ctr-kube; do
    wait_for $POLL_S test -e $RT/$n/ready || fact rt.$n.not_ready 1
  done
  for d in /default /kubepods/besteffort/pod$U3; do
    mkdir -p $RT/parents$d
    cat $CG$d/cgroup.subtree_control > $RT/parents$d/cgroup.subtree_control 2>/dev/null
  done
fi

# ---- rc-burn's end: its final sample ------------------------------------------------------------
wait_for $((RC_BURN_S + POLL_S)) test -s $RT/rc-burn/burn.time || fact rt.rc-burn.no_burn_time 1
wait_for $POLL_S rc_stopped rc-burn || fact rt.rc-burn.not_stopped 1
fact rt.rc-burn.stopped_ms $(ms)
poll_page otel burn-final final_after $B_OTEL "container_id=\"$ID_BURN\""
poll_page cadvisor burn-final final_after $B_CADV "id=\"$DIR_rc_burn\""
cg_snap rc-burn stopped
runc delete rc-burn > /dev/null 2>&1

# ---- containerd: running, then ce-burn's burn and its final sample ----------------------------
if has_rt containerd; then
  [ $DAEMONS = 1 ] && wait_ticks 2
  scrape ctr-running
  for n in ce-burn ctr-kube; do cg_snap $n running; done
  # every process of the containers' cgroups, and where the shims are
  ps -o pid,args > $RT/ps.ctr-running
  B_OTEL=$(self_metric $LAST.otel container_exporter_final_samples_total)
  B_CADV=$(self_metric $LAST.cadvisor container_exporter_final_samples_total)
  fact rt.ce-burn.go_ms $(ms)
  echo go > $RT/ce-burn/go &
  wait_for $((CTR_BURN_S + POLL_S)) test -s $RT/ce-burn/burn.time || fact rt.ce-burn.no_burn_time 1
  ctr_stopped() { ctr task ls 2>/dev/null | awk '$1 == "ce-burn" && $3 == "STOPPED" { f = 1 } END { exit !f }'; }
  wait_for $POLL_S ctr_stopped || fact rt.ce-burn.not_stopped 1
  fact rt.ce-burn.stopped_ms $(ms)
  poll_page otel ctr-burn-final final_after $B_OTEL "container_id=\"ce-burn\""
  poll_page cadvisor ctr-burn-final final_after $B_CADV "id=\"$DIR_ce_burn\""
  cg_snap ce-burn stopped
  ctr task rm ce-burn > /dev/null 2>&1
fi

# ---- the end: the containers that stay -----------------------------------------------------------
[ $DAEMONS = 1 ] && wait_ticks 2
scrape end
STAYING="rc-mem rc-io rc-pids"
has_rt containerd && STAYING="$STAYING ctr-kube"
for n in $STAYING; do cg_snap $n end; done
DIR_pod1=/kubepods/burstable/pod$U1
DIR_pod2=/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$U2_.slice
for p in pod1 pod2; do cg_snap $p end; done

# ---- the daemons' end: SIGTERM, as a container runtime or systemd stops them ------------------
for w in otel cadvisor; do
  eval _p=\$DPID_$w
  kill -TERM $_p 2>/dev/null
  wait $_p
  echo $? > $RT/daemon-$w.rc
done

# ---- runtime-made kernel files for testdata/ (tests/fixtures_v2_runtimes.rs) ------------------
C=$OUT/capture/runtimes
mkdir -p $C/runc/throttled $C/runc/oom $C/runc/pids $C/runc/parents
cp_cg() { for _f in $3; do [ -e $RT/$1/cg.$2/$_f ] && cp $RT/$1/cg.$2/$_f $4/; done; }
fact_of() { awk -F= -v k="$1" '$1 == k { sub(/^[^=]*=/, ""); print }' $OUT/facts; }
# rc-mem: memory.limit 256 MiB and cpu shares 512 in its spec, nothing else
cp_cg rc-mem end "cgroup.controllers cgroup.events cgroup.type cpu.max cpu.weight memory.max
  memory.high memory.low memory.min memory.swap.max pids.max io.max" $C/runc
fact_of rt.rc-mem.pid_cgroup > $C/runc/pid-cgroup
# rc-burn after its burn under cpu.max (quota 50000, period 100000): the cgroup runc leaves
# until `runc delete`, empty
cp_cg rc-burn stopped "cgroup.events cpu.stat cpu.max cpu.weight cpu.pressure" $C/runc/throttled
# rc-oom after dd was killed under memory.max 16 MiB
cp_cg rc-oom stopped "cgroup.events memory.events memory.max memory.peak memory.current" $C/runc/oom
# rc-pids: pids.limit 16, cpu shares 256, 8 processes
cp_cg rc-pids end "pids.max pids.current cpu.weight" $C/runc/pids
cp $RT/parents/docker/cgroup.subtree_control $C/runc/parents/docker.subtree_control 2>/dev/null
cp $RT/parents/kubepods/burstable/pod$U1/cgroup.subtree_control $C/runc/parents/pod.subtree_control 2>/dev/null
if has_rt containerd; then
  mkdir -p $C/containerd/default $C/containerd/parents
  # ctr-kube: --cgroup /kubepods/besteffort/pod<uid>/<id>, containerd's default spec otherwise
  cp_cg ctr-kube end "cgroup.controllers cgroup.procs cpu.max cpu.weight memory.max pids.max
    pids.current" $C/containerd
  fact_of rt.ctr-kube.pid_cgroup > $C/containerd/pid-cgroup
  fact_of rt.ctr-kube.shim_pid > $C/containerd/shim.pid
  fact_of rt.ctr-kube.shim_cgroup > $C/containerd/shim.cgroup
  # ce-burn: where containerd put it on its own (/default/ce-burn), read while it ran
  cp_cg ce-burn running "cgroup.controllers cpu.max cpu.weight memory.max pids.max" $C/containerd/default
  fact_of rt.ce-burn.pid_cgroup > $C/containerd/default/pid-cgroup
  cp $RT/parents/default/cgroup.subtree_control $C/containerd/parents/default.subtree_control 2>/dev/null
  kill $CTRD_PID 2>/dev/null
fi
fact rt.phase_ms $(( $(ms) - T_RT ))
echo "runtime phase done after $(( $(ms) - T_RT )) ms"
