//! The exporter against a real, pure cgroup v2 kernel (issue 3).
//!
//! The project's machines mount cgroups hybrid, so this test boots a VM (qemu; KVM when it
//! really works, else TCG) with a Debian kernel and a busybox userspace: `tests/vm/run-vm.sh`.
//! Inside, `tests/vm/guest/scenario.sh` builds container-shaped cgroups the way systemd, docker,
//! containerd and the kubelet lay them out, starts known workloads in them, and runs the
//! statically linked exporter (`snapshot --format json`) three times from the root cgroup:
//! twice while a CPU burner is still running under half a CPU, once after it finished. Around
//! each run it `cat`s the containers' cgroup files (the ground truth). This test then checks the
//! exporter's JSON against what the workloads did and what the kernel said.
//!
//! Then real runtimes make containers in the same VM (issue 27, `tests/vm/guest/runtimes.sh`):
//! runc from `runc spec` bundles at the paths Docker and the kubelet give it, and containerd
//! with `ctr run`, while the exporter runs as the daemon (twice: the OpenTelemetry page and the
//! cAdvisor page). `tests/vm/checks/runtimes.rs` checks those pages against the workloads.
//!
//! The harness fetches what it needs (kernel, qemu, busybox, runc, containerd) with apt into
//! /var/cache/container-exporter-vm (`CE_VM_CACHE`); it never skips: if the VM cannot boot the
//! test fails with the guest console. Whatever is left untested is said on stderr as a
//! `NOT TESTED:` line, and appended to the file `CE_SKIP_REPORT` names (CI prints it at the
//! end). Knobs:
//! - `CE_VM_EXPORTER=PATH`: use this binary (static, or a `#!/bin/sh` script such as
//!   `tests/vm/standin-exporter.sh`) instead of building `container-exporter` with
//!   `+crt-static` into `<target dir>/vm-static`. The test then fails unless
//!   `CE_VM_ALLOW_STANDIN=1` is set too, and says NOT TESTED for the exporter either way;
//! - `CE_VM_RUNTIMES`: the runtimes in the guest, `runc containerd` (default), `runc` or
//!   `none` (each one left out is NOT TESTED);
//! - `CE_VM_OUT=DIR`: where the VM's results are unpacked (default `<target dir>/vm-cgroup2`),
//!   kept after the run for inspection;
//! - the harness's own `CE_VM_*` variables (see tests/vm/run-vm.sh).

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::{exporter_binary, not_tested, runtimes_wanted, target_dir};

#[path = "vm/checks/harness.rs"]
mod harness;
#[path = "vm/checks/page.rs"]
mod page;
#[path = "vm/checks/runtimes.rs"]
mod runtimes;
#[path = "vm/checks/subjects.rs"]
mod subjects;
#[path = "vm/checks/truth.rs"]
mod truth;
#[path = "vm/checks/workloads.rs"]
mod workloads;

/// The metric table of METRICS.md: name, unit, attribute keys.
const CONTRACT: &[(&str, &str, &[&str])] = &[
    ("container.cpu.time", "s", &["cpu.mode"]),
    ("container.cpu.usage", "{cpu}", &[]),
    ("container.cpu.limit", "{cpu}", &[]),
    ("container.cpu.cfs.periods", "{period}", &[]),
    ("container.cpu.cfs.throttled_periods", "{period}", &[]),
    ("container.cpu.cfs.throttled.time", "s", &[]),
    ("container.memory.usage", "By", &[]),
    ("container.memory.working_set", "By", &[]),
    ("container.memory.rss", "By", &[]),
    ("container.memory.file", "By", &[]),
    ("container.memory.available", "By", &[]),
    ("container.memory.limit", "By", &[]),
    ("container.memory.swap.usage", "By", &[]),
    // Not in METRICS.md: the exporter's addition (README, "How it works"), the figure that
    // still says what a container used after it exited.
    ("container.memory.peak", "By", &[]),
    ("container.memory.oom_kills", "{kill}", &[]),
    (
        "container.paging.faults",
        "{fault}",
        &["system.paging.fault.type"],
    ),
    ("container.pid.count", "{task}", &[]),
    ("container.pid.limit", "{task}", &[]),
    (
        "container.disk.io",
        "By",
        &["disk.io.direction", "system.device"],
    ),
    (
        "container.disk.operations",
        "{operation}",
        &["disk.io.direction", "system.device"],
    ),
    (
        "container.network.io",
        "By",
        &["network.io.direction", "network.interface.name"],
    ),
    (
        "container.network.packet.count",
        "{packet}",
        &["network.io.direction", "network.interface.name"],
    ),
    (
        "container.network.errors",
        "{error}",
        &["network.io.direction", "network.interface.name"],
    ),
    (
        "container.network.packet.dropped",
        "{packet}",
        &["network.io.direction", "network.interface.name"],
    ),
    (
        "container.cpu.pressure.stall.time",
        "s",
        &["pressure.stall_type"],
    ),
    (
        "container.memory.pressure.stall.time",
        "s",
        &["pressure.stall_type"],
    ),
    (
        "container.io.pressure.stall.time",
        "s",
        &["pressure.stall_type"],
    ),
    ("container.uptime", "s", &[]),
];

// ---- ground truth -----------------------------------------------------------------------

struct Truth {
    dir: PathBuf,
    facts: HashMap<String, String>,
}

impl Truth {
    fn fact(&self, key: &str) -> &str {
        self.facts
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("fact {key} missing"))
    }
    fn fact_f(&self, key: &str) -> f64 {
        self.fact(key)
            .parse()
            .unwrap_or_else(|_| panic!("fact {key} not a number"))
    }
    fn file(&self, phase: &str, name: &str, file: &str) -> String {
        let p = self.dir.join("truth").join(phase).join(name).join(file);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }
    /// A key of a flat-keyed file (`cpu.stat`, `memory.stat`, `memory.events`).
    fn key(&self, phase: &str, name: &str, file: &str, key: &str) -> f64 {
        self.file(phase, name, file)
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{key} missing in truth/{phase}/{name}/{file}"))
    }
    /// A single-value file (`memory.current`, `pids.current`).
    fn single(&self, phase: &str, name: &str, file: &str) -> f64 {
        let s = self.file(phase, name, file);
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("truth/{phase}/{name}/{file}: {s:?}"))
    }
    /// `total=` of the `some`/`full` line of a pressure file, in µs.
    fn pressure_total(&self, phase: &str, name: &str, file: &str, kind: &str) -> f64 {
        self.file(phase, name, file)
            .lines()
            .filter(|l| l.starts_with(kind))
            .find_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("total=")?.parse().ok())
            })
            .unwrap_or_else(|| panic!("{kind} total missing in truth/{phase}/{name}/{file}"))
    }
}

// ---- the exporter's snapshot ------------------------------------------------------------------

struct Snapshot {
    run: u32,
    by_id: HashMap<String, Value>,
}

impl Snapshot {
    fn container(&self, id: &str) -> Option<&Value> {
        self.by_id.get(id)
    }
}

/// Value of the metric `name` with exactly these attributes, after checking its unit.
fn metric(c: &Value, name: &str, unit: &str, attrs: &[(&str, &str)]) -> Result<f64, String> {
    let metrics = c["metrics"].as_array().ok_or("no metrics array")?;
    let mut found = Vec::new();
    for m in metrics.iter().filter(|m| m["name"] == name) {
        let a = m["attributes"].as_object();
        let n = a.map_or(0, |a| a.len());
        let all = attrs
            .iter()
            .all(|(k, v)| a.and_then(|a| a.get(*k)).and_then(Value::as_str) == Some(*v));
        if all && n == attrs.len() {
            found.push(m);
        }
    }
    match found.as_slice() {
        [] => Err(format!("{name} {attrs:?} missing")),
        [m] => {
            if m["unit"] != unit {
                return Err(format!("{name}: unit {} instead of {unit:?}", m["unit"]));
            }
            m["value"]
                .as_f64()
                .ok_or_else(|| format!("{name}: value {} is not a number", m["value"]))
        }
        _ => Err(format!("{name} {attrs:?} appears {} times", found.len())),
    }
}

fn has_metric(c: &Value, name: &str) -> bool {
    c["metrics"]
        .as_array()
        .is_some_and(|ms| ms.iter().any(|m| m["name"] == name))
}

// ---- checks -------------------------------------------------------------------------------------

#[derive(Default)]
struct Report {
    passed: Vec<String>,
    failed: Vec<String>,
}

impl Report {
    fn check(&mut self, what: &str, ok: bool, detail: String) {
        let line = format!("{what}: {detail}");
        if ok {
            self.passed.push(line)
        } else {
            self.failed.push(line)
        }
    }
    /// `got` within `rel` (fraction) of `want`.
    fn near(&mut self, what: &str, got: Result<f64, String>, want: f64, rel: f64) {
        match got {
            Ok(g) => {
                let ok = (g - want).abs() <= rel * want.abs();
                self.check(
                    what,
                    ok,
                    format!("{g} vs expected {want} (±{:.0} %)", rel * 100.0),
                )
            }
            Err(e) => self.check(what, false, e),
        }
    }
    fn between(&mut self, what: &str, got: Result<f64, String>, lo: f64, hi: f64) {
        match got {
            Ok(g) => self.check(what, g >= lo && g <= hi, format!("{g} in [{lo}, {hi}]")),
            Err(e) => self.check(what, false, e),
        }
    }
    fn exact(&mut self, what: &str, got: Result<f64, String>, want: f64) {
        match got {
            Ok(g) => self.check(what, (g - want).abs() < 1e-9, format!("{g} vs {want}")),
            Err(e) => self.check(what, false, e),
        }
    }
    fn positive(&mut self, what: &str, got: Result<f64, String>) {
        match got {
            Ok(g) => self.check(what, g > 0.0, format!("{g} > 0")),
            Err(e) => self.check(what, false, e),
        }
    }
}

fn cpu_time(c: &Value) -> Result<f64, String> {
    let u = metric(c, "container.cpu.time", "s", &[("cpu.mode", "user")])?;
    let s = metric(c, "container.cpu.time", "s", &[("cpu.mode", "system")])?;
    Ok(u + s)
}

fn cpu_some(c: &Value) -> Result<f64, String> {
    metric(
        c,
        "container.cpu.pressure.stall.time",
        "s",
        &[("pressure.stall_type", "some")],
    )
}

#[test]
fn exporter_in_a_cgroup_v2_vm() {
    let wanted = runtimes_wanted();
    let (bin, standin) = exporter_binary();
    let out = std::env::var_os("CE_VM_OUT")
        .map_or_else(|| target_dir().join("vm-cgroup2"), PathBuf::from);
    let _ = std::fs::remove_dir_all(&out);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/run-vm.sh");
    let started = std::time::Instant::now();
    let res = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .arg(&bin)
        .args(["snapshot", "--format", "json"])
        .output()
        .expect("run tests/vm/run-vm.sh");
    let stderr = String::from_utf8_lossy(&res.stderr);
    eprintln!("{stderr}");
    assert!(
        res.status.success(),
        "the VM run failed ({}); harness stderr (with the guest console):\n{stderr}",
        res.status
    );
    eprintln!(
        "VM run took {:.1} s; results in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );

    let facts = std::fs::read_to_string(out.join("facts")).unwrap_or_else(|e| {
        let console = std::fs::read_to_string(out.join("console.log")).unwrap_or_default();
        let log = std::fs::read_to_string(out.join("scenario.log")).unwrap_or_default();
        panic!("no facts from the guest ({e}); scenario log:\n{log}\nconsole:\n{console}")
    });
    let t = Truth {
        dir: out.clone(),
        facts: facts
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };

    let mut r = Report::default();
    let mut snaps = Vec::new();
    for run in 1..=3 {
        let rc = std::fs::read_to_string(out.join(format!("run{run}.rc"))).unwrap_or_default();
        let err = std::fs::read_to_string(out.join(format!("run{run}.stderr"))).unwrap_or_default();
        let json = std::fs::read_to_string(out.join(format!("run{run}.json"))).unwrap_or_default();
        let ms = std::fs::read_to_string(out.join(format!("run{run}.ms"))).unwrap_or_default();
        r.check(
            &format!("run {run}: exit status"),
            rc.trim() == "0",
            format!("{} (stderr: {})", rc.trim(), err.trim()),
        );
        let v: Value = match serde_json::from_str(&json) {
            Ok(v) => v,
            Err(e) => {
                let head: String = json.chars().take(400).collect();
                r.check(&format!("run {run}: JSON"), false, format!("{e}: {head:?}"));
                Value::Null
            }
        };
        let mut by_id = HashMap::new();
        for c in v["containers"].as_array().into_iter().flatten() {
            if let Some(id) = c["resource"]["container.id"].as_str() {
                by_id.insert(id.to_string(), c.clone());
            }
        }
        eprintln!("run {run}: {} containers in {} ms", by_id.len(), ms.trim());
        snaps.push(Snapshot { run, by_id });
    }

    // ---- discovery and resources ----
    let names = ["cpu", "mem", "oom", "io"];
    let want: BTreeSet<String> = names
        .iter()
        .map(|n| t.fact(&format!("{n}.id")).to_string())
        .collect();
    for s in &snaps {
        let got: BTreeSet<String> = s.by_id.keys().cloned().collect();
        let missing: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(&want).collect();
        r.check(
            &format!("run {}: discovery", s.run),
            missing.is_empty() && extra.is_empty(),
            format!("missing {missing:?}, unexpected {extra:?}"),
        );
    }
    let last = &snaps[2];
    for n in names {
        let id = t.fact(&format!("{n}.id"));
        let Some(c) = last.container(id) else {
            continue;
        };
        let runtime = if n == "mem" { "containerd" } else { "docker" };
        let res = &c["resource"];
        r.check(
            &format!("{n}: container.runtime.name"),
            res["container.runtime.name"] == runtime,
            format!("{} vs {runtime}", res["container.runtime.name"]),
        );
        let pod = res.get("k8s.pod.uid").and_then(Value::as_str);
        if n == "mem" {
            r.check(
                "mem: k8s.pod.uid",
                pod == Some(t.fact("pod_uid")),
                format!("{pod:?} vs {}", t.fact("pod_uid")),
            );
        } else {
            r.check(
                &format!("{n}: no k8s.pod.uid"),
                pod.is_none(),
                format!("{pod:?}"),
            );
        }
    }

    let get = |run: usize, n: &str| -> Option<&Value> {
        snaps[run - 1].container(t.fact(&format!("{n}.id")))
    };
    let missing = || Err::<f64, String>("container not in the snapshot".into());

    // ---- CPU: half a CPU, burning for BURN_S ----
    // Runs 1 and 2 happen while the burner runs: the exporter's value must lie between the
    // cgroup's usage_usec read just before and just after the run (±10 %).
    for run in [1, 2] {
        let lo = t.key(&format!("pre{run}"), "cpu", "cpu.stat", "usage_usec") / 1e6;
        let hi = t.key(&format!("post{run}"), "cpu", "cpu.stat", "usage_usec") / 1e6;
        let got = get(run, "cpu").map_or_else(missing, cpu_time);
        r.between(
            &format!(
                "cpu: run {run} container.cpu.time (user+system) vs cgroup usage before/after"
            ),
            got,
            lo * 0.9,
            hi * 1.1,
        );
    }
    // Run 3 is after the burner exited: the counters stand still.
    let c3 = get(3, "cpu");
    let usage = t.key("post3", "cpu", "cpu.stat", "usage_usec") / 1e6;
    let self_measured = t.fact_f("cpu.burn_self_usec") / 1e6;
    let t3 = c3.map_or_else(missing, cpu_time);
    r.near(
        "cpu: run 3 container.cpu.time vs the cgroup's usage_usec",
        t3.clone(),
        usage,
        0.10,
    );
    r.near(
        "cpu: run 3 container.cpu.time vs the burner's own `time` (user+sys)",
        t3.clone(),
        self_measured,
        0.10,
    );
    // cpu.max holds it to half a CPU (an upper bound only: a loaded host gives the VM less)
    // for as long as it burned (BURN_S, or until run 2 was over: its own `time`'s real)
    let burn_s = t.fact_f("cpu.burn_real_s");
    r.between(
        "cpu: run 3 container.cpu.time at most half a CPU for the burn's duration",
        t3,
        0.0,
        0.5 * burn_s * 1.1,
    );
    r.exact(
        "cpu: container.cpu.limit",
        c3.map_or_else(missing, |c| metric(c, "container.cpu.limit", "{cpu}", &[])),
        0.5,
    );
    let thr = c3.map_or_else(missing, |c| {
        metric(c, "container.cpu.cfs.throttled_periods", "{period}", &[])
    });
    r.positive("cpu: container.cpu.cfs.throttled_periods", thr.clone());
    r.near(
        "cpu: container.cpu.cfs.throttled_periods vs cpu.stat nr_throttled",
        thr,
        t.key("post3", "cpu", "cpu.stat", "nr_throttled"),
        0.02,
    );
    let thr_t = c3.map_or_else(missing, |c| {
        metric(c, "container.cpu.cfs.throttled.time", "s", &[])
    });
    r.positive("cpu: container.cpu.cfs.throttled.time", thr_t.clone());
    r.near(
        "cpu: container.cpu.cfs.throttled.time vs cpu.stat throttled_usec",
        thr_t,
        t.key("post3", "cpu", "cpu.stat", "throttled_usec") / 1e6,
        0.02,
    );
    // pressure: present, > 0, and growing between runs 1 and 2 (both while the burner runs)
    let p1 = get(1, "cpu").map_or_else(missing, cpu_some);
    let p2 = get(2, "cpu").map_or_else(missing, cpu_some);
    r.positive(
        "cpu: run 1 container.cpu.pressure.stall.time{some}",
        p1.clone(),
    );
    match (&p1, &p2) {
        (Ok(a), Ok(b)) => r.check(
            "cpu: container.cpu.pressure.stall.time{some} grows from run 1 to run 2",
            b > a,
            format!(
                "{a} -> {b} (burner still running after run 2: {})",
                t.fact("burning_after_run2")
            ),
        ),
        _ => r.check(
            "cpu: container.cpu.pressure.stall.time{some} grows",
            false,
            format!("{p1:?} {p2:?}"),
        ),
    }
    let h1 = t.pressure_total("pre1", "cpu", "cpu.pressure", "some") / 1e6;
    let h2 = t.pressure_total("post2", "cpu", "cpu.pressure", "some") / 1e6;
    r.check(
        "cpu: cpu.pressure some total grows in the harness's own reads",
        h2 > h1,
        format!("{h1} -> {h2}"),
    );
    r.between(
        "cpu: run 2 container.cpu.pressure.stall.time{some} vs the harness's reads around it",
        p2,
        t.pressure_total("pre2", "cpu", "cpu.pressure", "some") / 1e6 * 0.9,
        t.pressure_total("post2", "cpu", "cpu.pressure", "some") / 1e6 * 1.1,
    );

    // ---- memory: 32 MiB anon + 32 MiB shmem, 5 processes, limits ----
    let m = get(3, "mem");
    let anon = t.fact_f("mem.anon_bytes");
    let shmem = t.fact_f("mem.shmem_bytes");
    let mm = |name: &str| m.map_or_else(missing, |c| metric(c, name, "By", &[]));
    r.near(
        "mem: container.memory.usage vs anon + page cache allocated",
        mm("container.memory.usage"),
        anon + shmem,
        0.10,
    );
    r.near(
        "mem: container.memory.rss vs anon allocated",
        mm("container.memory.rss"),
        anon,
        0.10,
    );
    r.near(
        "mem: container.memory.file vs page cache (shmem) written",
        mm("container.memory.file"),
        shmem,
        0.10,
    );
    r.near(
        "mem: container.memory.working_set vs anon + page cache (shmem is never inactive_file)",
        mm("container.memory.working_set"),
        anon + shmem,
        0.10,
    );
    let ws_truth = t.single("post3", "mem", "memory.current")
        - t.key("post3", "mem", "memory.stat", "inactive_file");
    r.near(
        "mem: container.memory.working_set vs memory.current - inactive_file",
        mm("container.memory.working_set"),
        ws_truth,
        0.02,
    );
    r.near(
        "mem: container.memory.usage vs memory.current",
        mm("container.memory.usage"),
        t.single("post3", "mem", "memory.current"),
        0.02,
    );
    r.exact(
        "mem: container.memory.limit",
        mm("container.memory.limit"),
        t.fact_f("mem.max"),
    );
    r.exact(
        "mem: container.pid.count vs processes started",
        m.map_or_else(missing, |c| metric(c, "container.pid.count", "{task}", &[])),
        t.fact_f("mem.pids_started"),
    );
    r.exact(
        "mem: container.pid.limit vs pids.max",
        m.map_or_else(missing, |c| metric(c, "container.pid.limit", "{task}", &[])),
        t.fact_f("mem.pids_max"),
    );

    // ---- OOM: 16 MiB dd in an 8 MiB cgroup ----
    let o = get(3, "oom");
    let kills = o.map_or_else(missing, |c| {
        metric(c, "container.memory.oom_kills", "{kill}", &[])
    });
    match kills {
        Ok(k) => r.check(
            "oom: container.memory.oom_kills >= 1",
            k >= 1.0,
            format!("{k} (dd exit status {})", t.fact("oom.dd_rc")),
        ),
        Err(e) => r.check("oom: container.memory.oom_kills", false, e),
    }
    r.exact(
        "oom: container.memory.limit",
        o.map_or_else(missing, |c| metric(c, "container.memory.limit", "By", &[])),
        t.fact_f("oom.max"),
    );

    // ---- block IO: O_DIRECT on /dev/vda ----
    let io = get(3, "io");
    let dev = t.fact("vda_majmin");
    let attrs = |dir: &'static str| [("disk.io.direction", dir), ("system.device", dev)];
    r.near(
        &format!("io: container.disk.io write on {dev} vs dd oflag=direct"),
        io.map_or_else(missing, |c| {
            metric(c, "container.disk.io", "By", &attrs("write"))
        }),
        t.fact_f("io.write_bytes"),
        0.10,
    );
    r.positive(
        &format!("io: container.disk.operations write on {dev}"),
        io.map_or_else(missing, |c| {
            metric(
                c,
                "container.disk.operations",
                "{operation}",
                &attrs("write"),
            )
        }),
    );
    r.near(
        &format!("io: container.disk.io read on {dev} vs dd iflag=direct"),
        io.map_or_else(missing, |c| {
            metric(c, "container.disk.io", "By", &attrs("read"))
        }),
        t.fact_f("io.read_bytes"),
        0.10,
    );
    r.positive(
        &format!("io: container.disk.operations read on {dev}"),
        io.map_or_else(missing, |c| {
            metric(
                c,
                "container.disk.operations",
                "{operation}",
                &attrs("read"),
            )
        }),
    );

    // ---- unlimited values are omitted, never exported as numbers ----
    if let Some(c) = io {
        for name in [
            "container.memory.limit",
            "container.pid.limit",
            "container.cpu.limit",
        ] {
            r.check(
                &format!("io (no limits set): {name} omitted"),
                !has_metric(c, name),
                "present: ".to_string() + &has_metric(c, name).to_string(),
            );
        }
    }

    // ---- cpu.usage (a rate over the exporter's two samples) while the burner runs ----
    for run in [1, 2] {
        let got = get(run, "cpu")
            .map_or_else(missing, |c| metric(c, "container.cpu.usage", "{cpu}", &[]));
        // at most the 0.5 CPU quota (plus a period's slack); at least 0.3 unless the host starves the VM
        r.between(
            &format!("cpu: run {run} container.cpu.usage under cpu.max 0.5"),
            got,
            0.3,
            0.6,
        );
    }
    let avail = m.map_or_else(missing, |c| {
        metric(c, "container.memory.available", "By", &[])
    });
    let avail_want = match (
        mm("container.memory.limit"),
        mm("container.memory.working_set"),
    ) {
        (Ok(l), Ok(w)) => l - w,
        _ => f64::NAN,
    };
    r.near(
        "mem: container.memory.available = limit - working_set",
        avail,
        avail_want,
        0.001,
    );

    // ---- every metric of every container: a name and unit of the contract (METRICS.md) ----
    for s in &snaps {
        let mut bad = Vec::new();
        for c in s.by_id.values() {
            for m in c["metrics"].as_array().into_iter().flatten() {
                let (name, unit) = (
                    m["name"].as_str().unwrap_or(""),
                    m["unit"].as_str().unwrap_or(""),
                );
                match CONTRACT.iter().find(|(n, _, _)| *n == name) {
                    None => bad.push(format!("unknown metric {name}")),
                    Some((_, u, _)) if *u != unit => {
                        bad.push(format!("{name}: unit {unit} instead of {u}"))
                    }
                    Some((_, _, keys)) => {
                        let got: BTreeSet<&str> = m["attributes"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .map(|(k, _)| k.as_str())
                            .collect();
                        let want: BTreeSet<&str> = keys.iter().copied().collect();
                        if got != want {
                            bad.push(format!("{name}: attributes {got:?} instead of {want:?}"));
                        }
                    }
                }
                if !m["value"].is_number() {
                    bad.push(format!("{name}: value {} is not a number", m["value"]));
                }
            }
        }
        bad.sort();
        bad.dedup();
        r.check(
            &format!(
                "run {}: every metric's name, unit and attribute keys follow METRICS.md",
                s.run
            ),
            bad.is_empty(),
            format!("{bad:?}"),
        );
    }

    // ---- real runtimes: runc and containerd made these cgroups, the daemon read them ----
    let rt = runtimes::check(&out, &t, &mut r, &wanted, standin.is_none());
    for what in &rt.not_tested {
        not_tested(what);
    }

    // durations the guest measured (the *_ms facts that are not moments)
    let durations: BTreeSet<String> = t
        .facts
        .iter()
        .filter(|(k, _)| {
            [
                "run_ms",
                "ready_ms",
                "up_ms",
                "phase_ms",
                "setup_ms",
                "burn_wall_ms",
            ]
            .iter()
            .any(|d| k.ends_with(d))
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut msg = String::new();
    let _ = writeln!(
        msg,
        "timings: {} {}",
        std::fs::read_to_string(out.join("timings"))
            .unwrap_or_default()
            .replace('\n', " "),
        durations.into_iter().collect::<Vec<_>>().join(" ")
    );
    for p in &r.passed {
        let _ = writeln!(msg, "  ok   {p}");
    }
    for f in &r.failed {
        let _ = writeln!(msg, "  FAIL {f}");
    }
    // said again at the end, where a reader of the output looks
    for what in standin.iter().chain(&rt.not_tested) {
        let _ = writeln!(msg, "  NOT TESTED: {what}");
    }
    eprintln!("{msg}");
    assert!(
        r.failed.is_empty(),
        "{} of {} checks failed (results kept in {}):\n{msg}",
        r.failed.len(),
        r.failed.len() + r.passed.len(),
        out.display()
    );
}
