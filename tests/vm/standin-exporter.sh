#!/bin/sh
# A stand-in for `container-exporter snapshot --format json`, in busybox sh + awk, used to
# develop and check the VM harness and tests/vm_cgroup2.rs independently of the real exporter:
#   CE_VM_EXPORTER=tests/vm/standin-exporter.sh cargo test --test vm_cgroup2
# The test fails with it unless CE_VM_ALLOW_STANDIN=1 is set too, and then says NOT TESTED.
# It knows only the cgroup v2 layouts the VM scenario creates (docker-*.scope and
# cri-containerd-*.scope) and prints the same JSON shape as the exporter's contract. It is no
# daemon: the runtime phase's page checks cannot run with it.
CG=${CGROUP_ROOT:-/sys/fs/cgroup}
DIRS=$(find "$CG" -type d \( -name 'docker-*.scope' -o -name 'cri-containerd-*.scope' \))
# the real exporter samples twice, about a second apart: cpu.usage is the rate between them
T0=$(cut -d' ' -f1 /proc/uptime)
U0=$(for d in $DIRS; do echo "$d $(awk '$1 == "usage_usec" { print $2 }' "$d/cpu.stat")"; done)
sleep 1
T1=$(cut -d' ' -f1 /proc/uptime)
echo "$DIRS" | awk -v q='"' -v t0="$T0" -v t1="$T1" -v u0="$U0" '
BEGIN { n0 = split(u0, l0, "\n"); for (i = 1; i <= n0; i++) { split(l0[i], w, " "); first[w[1]] = w[2] } }
NF == 0 { next }
function rd(f,   l, s) { s = ""; while ((getline l < f) > 0) s = s l "\n"; close(f); return s }
function kv(f, k,   l, a) { while ((getline l < f) > 0) { split(l, a, " "); if (a[1] == k) { close(f); return a[2] } } close(f); return "" }
function one(f,   l) { l = ""; getline l < f; close(f); return l }
function m(name, unit, attrs, v) { if (v == "" || v == "max") return; out = out (n++ ? "," : "") "{" q "name" q ":" q name q "," q "unit" q ":" q unit q "," q "attributes" q ":{" attrs "}," q "value" q ":" v "}" }
function at(k, v) { return q k q ":" q v q }
{
  d = $0; b = d; sub(/.*\//, "", b)
  if (b ~ /^docker-/) { rt = "docker"; id = substr(b, 8) } else { rt = "containerd"; id = substr(b, 16) }
  sub(/\.scope$/, "", id)
  res = at("container.id", id) "," at("container.runtime.name", rt)
  if (match(d, /-pod[0-9a-f_]+\.slice/)) { pod = substr(d, RSTART + 4, RLENGTH - 10); gsub(/_/, "-", pod); res = res "," at("k8s.pod.uid", pod) }
  out = ""; n = 0
  m("container.cpu.time", "s", at("cpu.mode", "user"), kv(d "/cpu.stat", "user_usec") / 1e6)
  m("container.cpu.time", "s", at("cpu.mode", "system"), kv(d "/cpu.stat", "system_usec") / 1e6)
  if ((d in first) && t1 > t0) m("container.cpu.usage", "{cpu}", "", (kv(d "/cpu.stat", "usage_usec") - first[d]) / 1e6 / (t1 - t0))
  split(one(d "/cpu.max"), cm, " "); if (cm[1] != "max") m("container.cpu.limit", "{cpu}", "", cm[1] / cm[2])
  m("container.cpu.cfs.periods", "{period}", "", kv(d "/cpu.stat", "nr_periods"))
  m("container.cpu.cfs.throttled_periods", "{period}", "", kv(d "/cpu.stat", "nr_throttled"))
  t = kv(d "/cpu.stat", "throttled_usec"); if (t != "") m("container.cpu.cfs.throttled.time", "s", "", t / 1e6)
  u = one(d "/memory.current"); m("container.memory.usage", "By", "", u)
  ws = u - kv(d "/memory.stat", "inactive_file"); if (ws < 0) ws = 0; m("container.memory.working_set", "By", "", ws)
  m("container.memory.rss", "By", "", kv(d "/memory.stat", "anon"))
  m("container.memory.file", "By", "", kv(d "/memory.stat", "file"))
  lim = one(d "/memory.max"); m("container.memory.limit", "By", "", lim)
  if (lim != "max" && lim != "") m("container.memory.available", "By", "", lim - ws)
  m("container.memory.oom_kills", "{kill}", "", kv(d "/memory.events", "oom_kill"))
  m("container.pid.count", "{task}", "", one(d "/pids.current"))
  m("container.pid.limit", "{task}", "", one(d "/pids.max"))
  f = d "/io.stat"
  while ((getline l < f) > 0) {
    nf = split(l, w, " "); dev = w[1]
    for (i = 2; i <= nf; i++) { split(w[i], p, "=")
      if (p[1] == "rbytes") m("container.disk.io", "By", at("disk.io.direction", "read") "," at("system.device", dev), p[2])
      if (p[1] == "wbytes") m("container.disk.io", "By", at("disk.io.direction", "write") "," at("system.device", dev), p[2])
      if (p[1] == "rios") m("container.disk.operations", "{operation}", at("disk.io.direction", "read") "," at("system.device", dev), p[2])
      if (p[1] == "wios") m("container.disk.operations", "{operation}", at("disk.io.direction", "write") "," at("system.device", dev), p[2]) }
  }
  close(f)
  for (k = 0; k < 3; k++) { r = (k == 0 ? "cpu" : k == 1 ? "memory" : "io"); f = d "/" r ".pressure"
    while ((getline l < f) > 0) { split(l, w, " "); sub(/total=/, "", w[5]); m("container." r ".pressure.stall.time", "s", at("pressure.stall_type", w[1]), w[5] / 1e6) }
    close(f) }
  cs = cs (nc++ ? "," : "") "{" q "resource" q ":{" res "}," q "metrics" q ":[" out "]}"
}
END { print "{" q "containers" q ":[" cs "]}" }'
