//! The runtime phase of the VM test (`tests/vm/guest/runtimes.sh`): containers made by runc and
//! containerd, read by the exporter running as the daemon (one instance per page), checked
//! against what their workloads did and what their runtimes were told.
//!
//! Ground truth, per container (under `rt/<name>/`): the processes its script started (`pids`,
//! one line each), the burner's own rusage (`burn.time`, busybox `time -p`), the bytes `dd`
//! reported writing (`*.dd`), the status a killed `dd` died with (`dd.rc`), and the spec the
//! runtime was given (`config.json`: runc's bundle, or the one containerd wrote for runc). The
//! cgroup files the harness `cat`ed (`cg.<phase>/`) serve only to say where a process was.
//!
//! Every check runs on both pages (OpenTelemetry names, `.otel`; cAdvisor names, `.cadvisor`),
//! with the same truth: [`Metric`] says what each figure is called on each.
//!
//! This file: the phase as a whole (the runtimes did what they were asked, both daemons ran),
//! discovery and network; `workloads.rs` checks each workload's figures.

use std::collections::BTreeSet;
use std::path::Path;

use super::page::Page;
use super::subjects::{BOTH, Naming, Who};
use super::truth::Ctx;
use super::workloads::{burner, containerd, disk, limits, memory, pid_count, pods, rc_oom};
use super::{Report, Truth};

/// What was not tested, to be said loudly by the caller.
pub struct Outcome {
    pub not_tested: Vec<String>,
}

/// `wanted`: the runtimes CE_VM_RUNTIMES asked for; `daemon_tested`: false when a stand-in
/// replaced the exporter (the phase's harness checks still run, the page checks cannot).
pub fn check(
    out: &Path,
    t: &Truth,
    r: &mut Report,
    wanted: &[&str],
    daemon_tested: bool,
) -> Outcome {
    let mut not_tested = Vec::new();
    if wanted.is_empty() {
        not_tested.push(
            "runc and containerd in the VM (CE_VM_RUNTIMES=none): no runtime-made cgroup was read"
                .into(),
        );
        return Outcome { not_tested };
    }
    let with_containerd = wanted.contains(&"containerd");
    if !with_containerd {
        not_tested.push(format!(
            "containerd in the VM (CE_VM_RUNTIMES={:?}): its /<namespace>/<id> placement and its shims",
            wanted.join(" ")
        ));
    }
    let got = t.facts.get("rt.runtimes").cloned();
    let expected = if with_containerd {
        "runc containerd"
    } else {
        "runc"
    };
    r.check(
        "runtime phase: ran with the runtimes asked for",
        got.as_deref() == Some(expected),
        format!(
            "rt.runtimes {got:?} vs {expected:?}{}",
            t.facts
                .get("rt.missing")
                .map(|m| format!(" (missing in the guest: {m})"))
                .unwrap_or_default()
        ),
    );
    if got.is_none() {
        return Outcome { not_tested };
    }
    let timeouts: Vec<&String> = t
        .facts
        .iter()
        .filter(|(k, _)| k.as_str() == "rt.timeout")
        .map(|(_, v)| v)
        .collect();
    // facts keep the last value of a key: the guest writes rt.timeout once per wait that timed out
    r.check(
        "runtime phase: every wait in the guest ended before its bound",
        timeouts.is_empty(),
        format!("the last that timed out: {timeouts:?} (rt/pages/index, scenario.log)"),
    );

    let rt = out.join("rt");
    let index = std::fs::read_to_string(rt.join("pages/index"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.nth(1)?.to_string()))
        })
        .collect();
    let c = Ctx {
        rt: rt.clone(),
        t,
        majmin: t.fact("vda_majmin").to_string(),
        index,
    };

    let rc = |n: &str| Who::from_facts(t, n, "runc");
    let ctr = |n: &str| Who::from_facts(t, n, "containerd");
    let (oom, burn, mem, io, pids) = (
        rc("rc-oom"),
        rc("rc-burn"),
        rc("rc-mem"),
        rc("rc-io"),
        rc("rc-pids"),
    );
    let mut all = vec![&oom, &burn, &mem, &io, &pids];
    let (ce, kube) = (ctr("ce-burn"), ctr("ctr-kube"));
    if with_containerd {
        all.push(&ce);
        all.push(&kube);
    }

    // ---- the runtimes did what they were asked (else nothing below means anything) ----
    for w in &all {
        let f = |k: &str| {
            t.facts
                .get(&format!("rt.{}.{k}", w.name))
                .cloned()
                .unwrap_or_default()
        };
        r.check(
            &format!("{}: `{} run` succeeded", w.show(), w.made_by),
            f("run_rc") == "0",
            format!(
                "status {:?} (rt/{}/{}.log)",
                f("run_rc"),
                w.name,
                if w.made_by == "runc" { "runc" } else { "ctr" }
            ),
        );
        r.check(
            &format!(
                "{}: its first process is in that cgroup (/proc/<pid>/cgroup)",
                w.show()
            ),
            f("pid_cgroup") == format!("0::{}", w.dir),
            format!("{:?} vs \"0::{}\"", f("pid_cgroup"), w.dir),
        );
    }
    if with_containerd {
        r.check(
            "ce-burn: containerd's own placement for `ctr run` without --cgroup is /default/<id>",
            ce.dir == "/default/ce-burn",
            format!("{:?} (from the process's /proc/<pid>/cgroup)", ce.dir),
        );
    }
    let pod_dir = format!(
        "/kubepods/burstable/pod{}",
        mem.pod.clone().unwrap_or_default()
    );
    for (p, d) in [("docker", "/docker"), ("pod", pod_dir.as_str())] {
        let sc = std::fs::read_to_string(rt.join(format!("parents{d}/cgroup.subtree_control")))
            .unwrap_or_default();
        let have: BTreeSet<&str> = sc.split_whitespace().collect();
        r.check(
            &format!("runc enabled cpu io memory pids in the parent it made ({p}: {d}/cgroup.subtree_control)"),
            ["cpu", "io", "memory", "pids"].iter().all(|k| have.contains(k)),
            format!("{:?}", sc.trim()),
        );
    }

    if !daemon_tested {
        not_tested.push(
            "the exporter as a daemon on runc- and containerd-made cgroups (discovery by inotify, \
             final samples, OOMKilled, both pages): a stand-in replaced the exporter"
                .into(),
        );
        return Outcome { not_tested };
    }
    r.check(
        "runtime phase: both daemons (OpenTelemetry page, cAdvisor page) ready before the first runtime container",
        t.facts.get("rt.daemons_ready").map(String::as_str) == Some("1"),
        format!(
            "rt.daemons_ready {:?} (rt/daemon-otel.stderr, rt/daemon-cadvisor.stderr)",
            t.facts.get("rt.daemons_ready")
        ),
    );
    for w in ["otel", "cadvisor"] {
        let status = std::fs::read_to_string(rt.join(format!("daemon-{w}.rc"))).unwrap_or_default();
        r.check(
            &format!("daemon ({w} page): exit status after SIGTERM"),
            status.trim() == "0",
            format!("{:?} vs \"0\" (rt/daemon-{w}.stderr)", status.trim()),
        );
    }

    discovery(&c, r, &all, with_containerd);
    for w in &all {
        network(&c, r, w);
    }
    rc_oom(&c, r, &oom);
    burner(&c, r, &burn, "running", "burn-final");
    limits(&c, r, &burn, &mem, &pids);
    memory(&c, r, &mem);
    disk(&c, r, &io);
    for (who, tag) in [
        (&mem, "end"),
        (&io, "end"),
        (&pids, "end"),
        (&burn, "running"),
    ] {
        pid_count(&c, r, who, tag, None);
    }
    let dir = |k: &str| t.facts.get(k).cloned().unwrap_or_default();
    let pod1 = Who::pod(
        "pod of rc-mem and rc-io",
        mem.pod.as_deref().unwrap_or(""),
        &dir("rt.pod1.dir"),
        "runc",
    );
    let pod2 = Who::pod(
        "pod of rc-pids",
        pids.pod.as_deref().unwrap_or(""),
        &dir("rt.pod2.dir"),
        "runc",
    );
    pods(&c, r, &pod1, &[&mem, &io], Some(&io));
    pods(&c, r, &pod2, &[&pids], None);
    if with_containerd {
        burner(&c, r, &ce, "ctr-running", "ctr-burn-final");
        containerd(&c, r, &ce, &kube);
        let pod3_dir = kube
            .dir
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        let pod3 = Who::pod(
            "pod of ctr-kube",
            kube.pod.as_deref().unwrap_or(""),
            &pod3_dir,
            "containerd",
        );
        pods(&c, r, &pod3, &[&kube], None);
    }
    Outcome { not_tested }
}

/// Found by inotify (no rescan after the first walk, which came before every runtime
/// container), named as their paths say, and nothing else taken for a container.
fn discovery(c: &Ctx, r: &mut Report, all: &[&Who], with_containerd: bool) {
    let start = c.page("start", Naming::Otel);
    let rescans0 = start.as_ref().map_err(Clone::clone).and_then(|p| {
        p.value(
            "container_exporter_discovery_events_total",
            &[("event", "rescan")],
        )
    });
    for (file, _) in c
        .index
        .iter()
        .filter(|(f, s)| f.ends_with(".otel") && s != "timeout")
    {
        let Ok(p) = Page::load(&c.rt.join("pages").join(file)) else {
            continue;
        };
        let got = p.value(
            "container_exporter_discovery_events_total",
            &[("event", "rescan")],
        );
        let over = p.value(
            "container_exporter_discovery_events_total",
            &[("event", "overflow")],
        );
        let unw = p.value(
            "container_exporter_inotify_unwatched",
            &[("kind", "directory")],
        );
        r.check(
            &format!("discovery by inotify alone: no rescan, no overflow, no unwatched directory ({file})"),
            rescans0.is_ok() && got == rescans0 && over == Ok(0.0) && unw == Ok(0.0),
            format!("rescans {got:?} vs {rescans0:?} at start, overflows {over:?}, unwatched {unw:?}"),
        );
    }
    // each container on the page where it must be, with its runtime and pod
    for w in all {
        for n in BOTH {
            let p = match c.page(home_tag(w), n) {
                Ok(p) => p,
                Err(e) => {
                    r.check(&format!("{}: on the {} page", w.show(), n.ext()), false, e);
                    continue;
                }
            };
            let info = p.find("container_info", &[w.identity(n)]);
            let rt = info
                .first()
                .and_then(|s| s.labels.get("container_runtime_name"))
                .cloned();
            r.check(
                &format!(
                    "{}: found, container_info container_runtime_name ({})",
                    w.show(),
                    p.file
                ),
                info.len() == 1 && rt.as_deref() == Some(w.runtime.as_str()),
                format!("{} series, runtime {rt:?} vs {:?}", info.len(), w.runtime),
            );
            if n == Naming::Otel {
                let pod = info
                    .first()
                    .and_then(|s| s.labels.get("k8s_pod_uid"))
                    .cloned();
                r.check(
                    &format!("{}: k8s_pod_uid from its path ({})", w.show(), p.file),
                    pod == w.pod,
                    format!("{pod:?} vs {:?}", w.pod),
                );
            }
        }
    }
    // at the end: exactly the containers with processes, and the pods
    let Ok(end) = c.page("end", Naming::Otel) else {
        return;
    };
    let t = c.t;
    let mut want: BTreeSet<String> = ["mem.id", "oom.id", "io.id"]
        .iter()
        .map(|k| t.fact(k).to_string())
        .collect();
    let mut pods: BTreeSet<String> = [t.fact("pod_uid").to_string()].into();
    for w in all
        .iter()
        .filter(|w| matches!(w.name.as_str(), "rc-mem" | "rc-io" | "rc-pids" | "ctr-kube"))
    {
        want.insert(w.id.clone());
        pods.extend(w.pod.clone());
    }
    let got: BTreeSet<String> = end
        .find("container_info", &[])
        .iter()
        .filter_map(|s| s.labels.get("container_id").cloned())
        .collect();
    let got_pods: BTreeSet<String> = end
        .find("k8s_pod_info", &[])
        .iter()
        .filter_map(|s| s.labels.get("k8s_pod_uid").cloned())
        .collect();
    r.check(
        &format!(
            "discovery: exactly the containers with processes at the end{} ({})",
            if with_containerd {
                ", no shim or containerd.service"
            } else {
                ""
            },
            end.file
        ),
        got == want,
        format!(
            "missing {:?}, unexpected {:?}",
            want.difference(&got).collect::<Vec<_>>(),
            got.difference(&want).collect::<Vec<_>>()
        ),
    );
    r.check(
        &format!("discovery: exactly the pods ({})", end.file),
        got_pods == pods,
        format!(
            "missing {:?}, unexpected {:?}",
            pods.difference(&got_pods).collect::<Vec<_>>(),
            got_pods.difference(&pods).collect::<Vec<_>>()
        ),
    );
}

/// The page where each runtime container is checked for what it is (running, or its final
/// sample for those that end early).
pub(crate) fn home_tag(w: &Who) -> &'static str {
    match w.name.as_str() {
        "rc-oom" => "oom-exit",
        "rc-burn" => "running",
        "ce-burn" | "ctr-kube" => "ctr-running",
        _ => "end",
    }
}

/// Network from the container's own namespace, not the host's (the first process of a new
/// runc container is `runc init`, still in the host's): the interfaces its workload saw. A
/// pod's containers have none of their own on the pages (a pod's network is written once, on
/// the pod); the cAdvisor page leaves out `lo`, as cAdvisor does.
fn network(c: &Ctx, r: &mut Report, w: &Who) {
    let truth = match c.ifaces(&w.name) {
        Ok(t) => t,
        Err(e) => {
            r.check(&format!("{}: its network interfaces", w.show()), false, e);
            return;
        }
    };
    let in_pod = w.pod.is_some();
    for n in BOTH {
        let Ok(p) = c.page(home_tag(w), n) else {
            continue;
        };
        let (name, key) = match n {
            Naming::Otel => ("container_network_io_bytes_total", "network_interface_name"),
            Naming::Cadvisor => ("container_network_receive_bytes_total", "interface"),
        };
        let got: BTreeSet<String> = p
            .find(name, &[w.identity(n)])
            .iter()
            .filter_map(|s| s.labels.get(key).cloned())
            .collect();
        let want: BTreeSet<String> = match (in_pod, n) {
            (true, _) => BTreeSet::new(),
            (false, Naming::Otel) => truth.clone(),
            (false, Naming::Cadvisor) => truth
                .iter()
                .filter(|i| {
                    !["lo", "veth", "docker", "nerdctl"]
                        .iter()
                        .any(|x| i.starts_with(x))
                })
                .cloned()
                .collect(),
        };
        r.check(
            &format!(
                "{}: {name} interfaces vs its own namespace's{} ({})",
                w.show(),
                if in_pod {
                    " (none: a pod's container)"
                } else {
                    ""
                },
                p.file
            ),
            got == want,
            format!("{got:?} vs {want:?} (rt/{}/net.dev: {truth:?})", w.name),
        );
    }
}
