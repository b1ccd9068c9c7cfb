//! The runtime phase's workloads, each against its own truth: the OOM kill, the burners'
//! CPU, throttling and pressure, limits as the runtimes wrote them, memory, block IO, tasks,
//! pods, and containerd's shims.

use std::collections::BTreeSet;

use super::Report;
use super::page::Page;
use super::subjects::{BOTH, Metric, Naming, Who, called};
use super::truth::{Ctx, runc_weight, shares_of_weight};

/// OOM-killed under runc's memory.max: the final sample, with `OOMKilled` from the kernel's
/// count alone (no runtime socket in the VM: no code, the value is NaN).
pub(crate) fn rc_oom(c: &Ctx, r: &mut Report, w: &Who) {
    let dd_rc = c.truth(&w.name, "dd.rc").unwrap_or_default();
    r.check(
        &format!("{}: the workload: dd writing 64 MiB was killed (status 137), its shell lived to say so", w.show()),
        dd_rc.trim() == "137",
        format!("rt/{}/dd.rc {:?} vs \"137\"", w.name, dd_rc.trim()),
    );
    let limit = c.spec_num(&w.name, &["linux", "resources", "memory", "limit"]);
    for n in BOTH {
        let p = match c.page("oom-exit", n) {
            Ok(p) => p,
            Err(e) => {
                r.check(
                    &format!("{}: final sample on the {} page", w.show(), n.ext()),
                    false,
                    e,
                );
                continue;
            }
        };
        let (name, reason_key) = match n {
            Naming::Otel => ("container_exit_code", "container_exit_reason"),
            Naming::Cadvisor => ("container_last_terminated_exitcode", "reason"),
        };
        let exits = p.find(name, &[w.identity(n)]);
        let reasons: Vec<String> = exits
            .iter()
            .filter_map(|s| s.labels.get(reason_key).cloned())
            .collect();
        r.check(
            &format!("{}: {name}{{{reason_key}}} from the kernel's oom_kill alone ({})", w.show(), p.file),
            reasons == ["OOMKilled"] && exits[0].value.is_nan(),
            format!(
                "reasons {reasons:?} vs [\"OOMKilled\"], value {:?} vs NaN (no runtime to give a code)",
                exits.first().map(|s| s.value)
            ),
        );
        r.exact(
            &format!(
                "{}: {} vs processes killed (dd) ({})",
                w.show(),
                called(Metric::OomKills, n),
                p.file
            ),
            w.read(&p, n, Metric::OomKills, &c.majmin),
            1.0,
        );
        match &limit {
            Ok(l) => {
                r.exact(
                    &format!(
                        "{}: {} vs the spec's memory.limit ({})",
                        w.show(),
                        called(Metric::MemLimit, n),
                        p.file
                    ),
                    w.read(&p, n, Metric::MemLimit, &c.majmin),
                    *l,
                );
                // dd asked for 64 MiB: usage reached the limit (within a MiB of reclaimable
                // kernel memory) and never passed it
                r.between(
                    &format!(
                        "{}: {} reached the limit it was killed at ({})",
                        w.show(),
                        called(Metric::Peak, n),
                        p.file
                    ),
                    w.read(&p, n, Metric::Peak, &c.majmin),
                    l - 1048576.0,
                    *l,
                );
            }
            Err(e) => r.check(&format!("{}: spec", w.show()), false, e.clone()),
        }
        r.positive(
            &format!(
                "{}: {} (it stalled in reclaim before the kill) ({})",
                w.show(),
                called(Metric::MemSome, n),
                p.file
            ),
            w.read(&p, n, Metric::MemSome, &c.majmin),
        );
    }
}

/// A burner that waits for "go", burns, and ends: its CPU over the burn (final sample minus
/// the page before "go", so `runc init`'s own CPU in the cgroup is left out) within 5 % of its
/// own rusage; throttling and CPU pressure over the burn.
pub(crate) fn burner(c: &Ctx, r: &mut Report, w: &Who, before: &str, fin: &str) {
    let truth = c.burn(&w.name);
    let quota = c
        .spec_num(&w.name, &["linux", "resources", "cpu", "quota"])
        .ok();
    for n in BOTH {
        let pages = (c.page(before, n), c.page(fin, n));
        let (p0, p1) = match pages {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                let e = [a.err(), b.err()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ");
                r.check(
                    &format!(
                        "{}: pages before the burn and of its final sample ({})",
                        w.show(),
                        n.ext()
                    ),
                    false,
                    e,
                );
                continue;
            }
        };
        let at = |p: &Page, m| w.read(p, n, m, &c.majmin);
        let delta = |m| -> Result<f64, String> { Ok(at(&p1, m)? - at(&p0, m)?) };
        let (rusage, real) = match &truth {
            Ok(x) => *x,
            Err(e) => {
                r.check(
                    &format!("{}: the burner's rusage", w.show()),
                    false,
                    e.clone(),
                );
                continue;
            }
        };
        r.near(
            &format!(
                "{}: {} over the burn ({} − {}) vs the burner's own rusage (user + sys)",
                w.show(),
                called(Metric::Cpu, n),
                p1.file,
                p0.file
            ),
            delta(Metric::Cpu),
            rusage,
            0.05,
        );
        // (No check of the tasks in the final sample: the kernel says `populated 0` as the last
        // process exits, but pids.current counts it until its parent reaps it; containerd's
        // shim often has not yet, and the final sample then says 1. docs/cgroup-v2.md.)
        // CPU pressure over the burn: some, and at most the burn's wall time (plus a tick)
        let hi = real * 1.05 + 1.0;
        let some = delta(Metric::CpuSome);
        r.check(
            &format!(
                "{}: {} over the burn, more than 0 and at most its wall time {real} s (+5 %, +1 s)",
                w.show(),
                called(Metric::CpuSome, n)
            ),
            some.as_ref().is_ok_and(|v| *v > 0.0 && *v <= hi),
            format!("{some:?}"),
        );
        if quota.is_none() {
            continue;
        }
        if n == Naming::Cadvisor {
            // The cAdvisor page writes the CFS counters only for a container whose quota the
            // exporter has read, which the page before "go" may not have yet (runc writes
            // cpu.max seconds after making the cgroup on a busy host): the final sample's.
            let fin = |m| at(&p1, m);
            let (thr, per) = (fin(Metric::ThrottledPeriods), fin(Metric::Periods));
            r.check(
                &format!(
                    "{}: {} in the final sample, more than 0 and at most {} ({})",
                    w.show(),
                    called(Metric::ThrottledPeriods, n),
                    called(Metric::Periods, n),
                    p1.file
                ),
                matches!((&thr, &per), (Ok(t), Ok(p)) if *t > 0.0 && t <= p),
                format!("{thr:?} of {per:?}"),
            );
            r.positive(
                &format!(
                    "{}: {} in the final sample ({})",
                    w.show(),
                    called(Metric::ThrottledTime, n),
                    p1.file
                ),
                fin(Metric::ThrottledTime),
            );
            continue;
        }
        // throttled under cpu.max: in some periods, and never more periods than the burn's
        // wall time holds (one per 100 ms; 10 % and 5 periods of slack for the period timer
        // starting and stopping around the burn on a loaded guest)
        r.positive(
            &format!(
                "{}: {} over the burn",
                w.show(),
                called(Metric::ThrottledPeriods, n)
            ),
            delta(Metric::ThrottledPeriods),
        );
        r.between(
            &format!(
                "{}: {} over the burn vs the 100 ms periods in its wall time {real} s",
                w.show(),
                called(Metric::Periods, n)
            ),
            delta(Metric::Periods),
            1.0,
            real * 10.0 * 1.1 + 5.0,
        );
        r.positive(
            &format!(
                "{}: {} over the burn",
                w.show(),
                called(Metric::ThrottledTime, n)
            ),
            delta(Metric::ThrottledTime),
        );
    }
}

/// Limits as the runtime wrote them, from the spec it was given.
pub(crate) fn limits(c: &Ctx, r: &mut Report, burn: &Who, mem: &Who, pids: &Who) {
    let spec = |w: &Who, p: &[&str]| c.spec_num(&w.name, p);
    // cpu.max: the OpenTelemetry page's limit in CPUs, the cAdvisor page's quota and period,
    // on the page of rc-burn's final sample: by then the exporter has read them again, however
    // late runc wrote them (it reads a young container's limits at about 5, 10, 20, 40 s)
    if let (Ok(q), Ok(per)) = (
        spec(burn, &["linux", "resources", "cpu", "quota"]),
        spec(burn, &["linux", "resources", "cpu", "period"]),
    ) {
        if let Ok(p) = c.page("burn-final", Naming::Otel) {
            r.exact(
                &format!(
                    "{}: container_cpu_limit (cpu.max) vs the spec's quota / period ({})",
                    burn.show(),
                    p.file
                ),
                p.value("container_cpu_limit", &[burn.identity(Naming::Otel)]),
                q / per,
            );
        }
        if let Ok(p) = c.page("burn-final", Naming::Cadvisor) {
            for (name, want) in [
                ("container_spec_cpu_quota", q),
                ("container_spec_cpu_period", per),
            ] {
                r.exact(
                    &format!("{}: {name} (cpu.max) vs the spec ({})", burn.show(), p.file),
                    p.value(name, &[burn.identity(Naming::Cadvisor)]),
                    want,
                );
            }
        }
    } else {
        r.check(
            &format!("{}: cpu quota and period in the spec", burn.show()),
            false,
            "missing".into(),
        );
    }
    for n in BOTH {
        let Ok(p) = c.page("end", n) else { continue };
        let lim = |w: &Who, m, path: &[&str]| match spec(w, path) {
            Ok(want) => (w.read(&p, n, m, &c.majmin), want),
            Err(e) => (Err(e), f64::NAN),
        };
        let (got, want) = lim(
            mem,
            Metric::MemLimit,
            &["linux", "resources", "memory", "limit"],
        );
        r.exact(
            &format!(
                "{}: {} vs the spec's memory.limit ({})",
                mem.show(),
                called(Metric::MemLimit, n),
                p.file
            ),
            got,
            want,
        );
        let (got, want) = lim(
            pids,
            Metric::PidLimit,
            &["linux", "resources", "pids", "limit"],
        );
        r.exact(
            &format!(
                "{}: {} vs the spec's pids.limit ({})",
                pids.show(),
                called(Metric::PidLimit, n),
                p.file
            ),
            got,
            want,
        );
        if n == Naming::Cadvisor {
            // shares in the spec -> cpu.weight (runc) -> shares on the page (cAdvisor's conversion)
            for w in [mem, pids] {
                match spec(w, &["linux", "resources", "cpu", "shares"]) {
                    Ok(s) => r.exact(
                        &format!(
                            "{}: container_spec_cpu_shares (cpu.weight) vs the spec's shares {s} as runc writes them (weight {}) and cAdvisor reads them back",
                            w.show(), runc_weight(s)
                        ),
                        p.value("container_spec_cpu_shares", &[w.identity(n)]),
                        shares_of_weight(runc_weight(s)),
                    ),
                    Err(e) => r.check(&format!("{}: shares in the spec", w.show()), false, e),
                }
            }
        }
    }
}

pub(crate) fn memory(c: &Ctx, r: &mut Report, w: &Who) {
    let fact = |k: &str| c.t.fact_f(&format!("rt.{}.{k}", w.name));
    let (shm, anon) = (fact("shm_bytes"), fact("anon_bytes"));
    let shm_dd = c.dd_bytes(&w.name, "shm.dd");
    r.check(
        &format!(
            "{}: the workload: dd wrote {shm} bytes to its /dev/shm",
            w.show()
        ),
        shm_dd == Ok(shm),
        format!("rt/{}/shm.dd says {shm_dd:?}", w.name),
    );
    for n in BOTH {
        let Ok(p) = c.page("end", n) else {
            r.check(
                &format!("{}: the end page ({})", w.show(), n.ext()),
                false,
                "missing".into(),
            );
            continue;
        };
        for (m, want, what) in [
            (
                Metric::MemUsage,
                shm + anon,
                "tmpfs written + anonymous memory held",
            ),
            (Metric::Rss, anon, "anonymous memory held by dd"),
            (Metric::File, shm, "tmpfs written (shmem)"),
        ] {
            r.near(
                &format!("{}: {} vs {what} ({})", w.show(), called(m, n), p.file),
                w.read(&p, n, m, &c.majmin),
                want,
                0.10,
            );
        }
    }
}

pub(crate) fn disk(c: &Ctx, r: &mut Report, w: &Who) {
    for (m, file, rc) in [
        (Metric::DiskWrite, "write.dd", "write.rc"),
        (Metric::DiskRead, "read.dd", "read.rc"),
    ] {
        let status = c.truth(&w.name, rc).unwrap_or_default();
        r.check(
            &format!(
                "{}: the workload: O_DIRECT dd through runc's device rule ({file})",
                w.show()
            ),
            status.trim() == "0",
            format!(
                "rt/{}/{rc} {:?}: {}",
                w.name,
                status.trim(),
                c.truth(&w.name, file).unwrap_or_default().trim()
            ),
        );
        let want = c.dd_bytes(&w.name, file);
        for n in BOTH {
            let Ok(p) = c.page("end", n) else { continue };
            match &want {
                // O_DIRECT: exactly the bytes dd moved (a per cent for the tests' own reads of binaries)
                Ok(b) => r.near(
                    &format!(
                        "{}: {} vs the bytes dd reported ({})",
                        w.show(),
                        called(m, n),
                        p.file
                    ),
                    w.read(&p, n, m, &c.majmin),
                    *b,
                    0.01,
                ),
                Err(e) => r.check(&format!("{}: {file}", w.show()), false, e.clone()),
            }
        }
    }
    for n in BOTH {
        if let Ok(p) = c.page("end", n) {
            r.positive(
                &format!(
                    "{}: {} (it waited on O_DIRECT IO) ({})",
                    w.show(),
                    called(Metric::IoSome, n),
                    p.file
                ),
                w.read(&p, n, Metric::IoSome, &c.majmin),
            );
        }
    }
}

/// Tasks in the cgroup vs the processes the container's script started; `extra` names what
/// must not be counted (a shim).
pub(crate) fn pid_count(c: &Ctx, r: &mut Report, w: &Who, tag: &str, extra: Option<&str>) {
    let want = c.started(&w.name);
    for n in BOTH {
        let got = c
            .page(tag, n)
            .and_then(|p| w.read(&p, n, Metric::Pids, &c.majmin));
        match &want {
            Ok(s) => r.exact(
                &format!(
                    "{}: {} vs processes its script started{} ({tag}.{})",
                    w.show(),
                    called(Metric::Pids, n),
                    extra.unwrap_or(""),
                    n.ext()
                ),
                got,
                *s,
            ),
            Err(e) => r.check(
                &format!("{}: processes started", w.show()),
                false,
                e.clone(),
            ),
        }
    }
}

/// A pod's own cgroup: its tasks are its containers' (and, with a disk writer, its IO).
pub(crate) fn pods(c: &Ctx, r: &mut Report, pod: &Who, members: &[&Who], writer: Option<&Who>) {
    let tag = if pod.made_by == "containerd" {
        "ctr-running"
    } else {
        "end"
    };
    let started: Result<f64, String> = members.iter().map(|m| c.started(&m.name)).sum();
    // its network: the interfaces of its containers' namespaces
    let ifaces: Result<BTreeSet<String>, String> =
        members.iter().try_fold(BTreeSet::new(), |mut all, m| {
            all.extend(c.ifaces(&m.name)?);
            Ok(all)
        });
    if let (Ok(p), Ok(want)) = (c.page(tag, Naming::Otel), &ifaces) {
        let got: BTreeSet<String> = p
            .find(
                "k8s_pod_network_io_bytes_total",
                &[pod.identity(Naming::Otel)],
            )
            .iter()
            .filter_map(|s| s.labels.get("network_interface_name").cloned())
            .collect();
        r.check(
            &format!(
                "{}: k8s_pod_network_io_bytes_total interfaces vs its containers' namespaces' ({})",
                pod.show(),
                p.file
            ),
            &got == want,
            format!("{got:?} vs {want:?}"),
        );
    }
    for n in BOTH {
        let p = match c.page(tag, n) {
            Ok(p) => p,
            Err(e) => {
                r.check(
                    &format!("{}: on the {} page", pod.show(), n.ext()),
                    false,
                    e,
                );
                continue;
            }
        };
        match &started {
            Ok(s) => r.exact(
                &format!(
                    "{}: {} vs processes its containers started ({})",
                    pod.show(),
                    called(Metric::Pids, n),
                    p.file
                ),
                pod.read(&p, n, Metric::Pids, &c.majmin),
                *s,
            ),
            Err(e) => r.check(
                &format!("{}: processes started", pod.show()),
                false,
                e.clone(),
            ),
        }
        if let Some(wr) = writer {
            match c.dd_bytes(&wr.name, "write.dd") {
                Ok(b) => r.near(
                    &format!(
                        "{}: {} vs the bytes {} wrote ({})",
                        pod.show(),
                        called(Metric::DiskWrite, n),
                        wr.name,
                        p.file
                    ),
                    pod.read(&p, n, Metric::DiskWrite, &c.majmin),
                    b,
                    0.01,
                ),
                Err(e) => r.check(&format!("{}: write.dd", pod.show()), false, e),
            }
        }
    }
}

/// containerd: its default spec's CPU shares as runc wrote them, and the shims, which stay in
/// containerd's cgroup: neither their processes nor their CPU are the container's.
pub(crate) fn containerd(c: &Ctx, r: &mut Report, ce: &Who, kube: &Who) {
    let t = c.t;
    for w in [ce, kube] {
        let f = |k: &str| {
            t.facts
                .get(&format!("rt.{}.{k}", w.name))
                .cloned()
                .unwrap_or_default()
        };
        let shim = f("shim_pid");
        r.check(
            &format!(
                "{}: its shim (pid {shim}) runs in containerd's cgroup, not the container's",
                w.show()
            ),
            !shim.is_empty() && f("shim_cgroup") == "0::/system.slice/containerd.service",
            format!(
                "shim /proc/<pid>/cgroup {:?} vs \"0::/system.slice/containerd.service\"",
                f("shim_cgroup")
            ),
        );
        let procs = c
            .truth(&w.name, "cg.running/cgroup.procs")
            .unwrap_or_default();
        r.check(
            &format!(
                "{}: the shim's pid is not in the container's cgroup.procs",
                w.show()
            ),
            !shim.is_empty() && !procs.lines().any(|l| l.trim() == shim),
            format!(
                "cgroup.procs {:?}, shim {shim}",
                procs.split_whitespace().collect::<Vec<_>>()
            ),
        );
        let note = format!(" (not its shim, pid {shim})");
        pid_count(c, r, w, "ctr-running", Some(&note));
    }
    // cpu.weight from the shares containerd's default spec gives
    match c.spec_num(&ce.name, &["linux", "resources", "cpu", "shares"]) {
        Ok(s) => {
            if let Ok(p) = c.page("ctr-running", Naming::Cadvisor) {
                r.exact(
                    &format!(
                        "{}: container_spec_cpu_shares (cpu.weight) vs the shares {s} of containerd's spec, as runc writes them (weight {})",
                        ce.show(), runc_weight(s)
                    ),
                    p.value("container_spec_cpu_shares", &[ce.identity(Naming::Cadvisor)]),
                    shares_of_weight(runc_weight(s)),
                );
                r.check(
                    &format!(
                        "{}: no container_spec_cpu_quota (containerd set none) ({})",
                        ce.show(),
                        p.file
                    ),
                    !p.has("container_spec_cpu_quota", &[ce.identity(Naming::Cadvisor)]),
                    format!(
                        "{:?}",
                        p.value("container_spec_cpu_quota", &[ce.identity(Naming::Cadvisor)])
                    ),
                );
            }
            if let Ok(p) = c.page("ctr-running", Naming::Otel) {
                r.check(
                    &format!(
                        "{}: no container_cpu_limit (containerd set none) ({})",
                        ce.show(),
                        p.file
                    ),
                    !p.has("container_cpu_limit", &[ce.identity(Naming::Otel)]),
                    format!(
                        "{:?}",
                        p.value("container_cpu_limit", &[ce.identity(Naming::Otel)])
                    ),
                );
            }
        }
        Err(e) => r.check(&format!("{}: containerd's spec", ce.show()), false, e),
    }
    // the kubelet-shaped one's tmpfs
    let shm = t.fact_f("rt.ctr-kube.shm_bytes");
    for n in BOTH {
        if let Ok(p) = c.page("end", n) {
            r.near(
                &format!(
                    "{}: {} vs tmpfs written (shmem) ({})",
                    kube.show(),
                    called(Metric::File, n),
                    p.file
                ),
                kube.read(&p, n, Metric::File, &c.majmin),
                shm,
                0.10,
            );
        }
    }
}
