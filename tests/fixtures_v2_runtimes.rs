//! The exporter's parsers and path rules on cgroup files that runc and containerd made on a
//! pure cgroup v2 kernel (`testdata/linux-6.1-cgroup-v2/runc/` and `containerd/`, captured by
//! the VM test's runtime phase: see testdata/README.md for the specs and workloads behind each
//! file). The truth each assertion compares with is what the runtime was told (its spec) or
//! what the workload did, as the README says; the file is what the kernel made of it.

use std::fs;
use std::path::{Path, PathBuf};

use container_exporter::cgroup::CgroupSample;
use container_exporter::cgroup::parse;
use container_exporter::cgroup::plan::parse_files;
use container_exporter::cgroup::sample::Limit;
use container_exporter::discovery::{self, Kind, Runtime};
use container_exporter::exit;

const MIB: u64 = 1 << 20;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/linux-6.1-cgroup-v2")
        .join(rel)
}

fn read(rel: &str) -> String {
    let p = testdata(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Parses these files of a fixture directory as the reader would (v2 rows), failing on any
/// file the reader would report as a problem.
fn parse_dir(dir: &str, names: &[&str]) -> CgroupSample {
    let contents: Vec<(&str, Vec<u8>)> = names
        .iter()
        .map(|n| {
            let p = testdata(dir).join(n);
            let bytes = fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (*n, bytes)
        })
        .collect();
    let files: Vec<(&str, &[u8])> = contents.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let mut s = CgroupSample::default();
    let problems = parse_files(false, &files, &mut s);
    assert!(problems.is_empty(), "{dir}: {problems:?}");
    s
}

/// The cgroup path of a `/proc/<pid>/cgroup` line on cgroup v2 (`0::/path`), relative to the
/// mount, as discovery sees it.
fn v2_path(pid_cgroup: &str) -> PathBuf {
    let line = pid_cgroup.trim();
    let path = line
        .strip_prefix("0::/")
        .unwrap_or_else(|| panic!("not a cgroup v2 line: {line:?}"));
    PathBuf::from(path)
}

/// runc's conversion of CPU shares to `cpu.weight` (`ConvertCPUSharesToCgroupV2Value`).
fn runc_weight(shares: u64) -> u64 {
    1 + ((shares - 2) * 9999) / 262142
}

/// A container of the kubelet's cgroupfs layout made by runc: `memory.limit` 256 MiB and cpu
/// shares 512 in its spec, nothing else. runc wrote those two, and left every other limit as
/// the kernel makes it: unlimited.
#[test]
fn runc_made_kubepods_container() {
    let w: u64 = read("runc/cpu.weight").trim().parse().unwrap();
    assert_eq!(w, runc_weight(512), "runc/cpu.weight");
    let s = parse_dir(
        "runc",
        &[
            "cpu.max",
            "cpu.weight",
            "memory.max",
            "memory.min",
            "memory.swap.max",
            "pids.max",
            "cgroup.events",
        ],
    );
    assert_eq!(s.memory.limit, Some(256 * MIB));
    assert_eq!(s.spec.memory_limit, Some(Limit::Value(256 * MIB)));
    // no swap in the spec: runc leaves memory.swap.max alone; no pids.limit, no CPU quota
    assert_eq!(s.spec.memory_swap_limit, Some(Limit::Unlimited));
    assert_eq!(s.spec.memory_reservation, Some(Limit::Value(0)));
    assert_eq!(
        (s.pids.limit, s.spec.pids_limit),
        (None, Some(Limit::Unlimited))
    );
    assert_eq!((s.cpu.limit_cpus(), s.cpu.period_us), (None, Some(100_000)));
    // shares 512 -> weight 20 (runc) -> 500 (cAdvisor's conversion back, the page's figure)
    assert_eq!(s.cpu.shares, Some(500));
    assert_eq!(s.populated, Some(true));

    // discovery on the path runc was given: containerd (the kubelet's CRI runtime), pod uid
    let rel = v2_path(&read("runc/pid-cgroup"));
    let found = discovery::classify(&rel).expect("a container");
    assert_eq!(
        (found.kind, found.runtime),
        (Kind::Container, Runtime::Containerd)
    );
    assert_eq!(
        found.pod_uid.as_deref(),
        Some("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
    );
    let pod = discovery::classify(rel.parent().unwrap()).expect("its pod");
    assert_eq!(pod.kind, Kind::Pod);
}

/// The controllers runc enables on the parents it makes (`/docker`, the pod's cgroup): all the
/// root has, so every file the exporter reads is there in the container, and the container's
/// `cgroup.controllers` is what its parent enabled.
#[test]
fn runc_enables_every_controller_on_the_parents_it_makes() {
    let docker = read("runc/parents/docker.subtree_control");
    let pod = read("runc/parents/pod.subtree_control");
    for sc in [&docker, &pod] {
        let set: Vec<&str> = sc.split_whitespace().collect();
        for c in ["cpu", "io", "memory", "pids"] {
            assert!(set.contains(&c), "{c} not enabled: {sc:?}");
        }
    }
    assert_eq!(read("runc/cgroup.controllers"), pod);
    assert_eq!(docker.trim(), "cpuset cpu io memory hugetlb pids rdma misc");
}

/// runc's `cpu.max` from quota 50000 / period 100000, after a burn: half a CPU, throttled,
/// and the CPU pressure throttling causes. The cgroup is empty (the container ended) but
/// still there until `runc delete`: its counters are final.
#[test]
fn runc_throttled_after_the_burn() {
    let t = parse_dir(
        "runc/throttled",
        &[
            "cpu.stat",
            "cpu.max",
            "cpu.weight",
            "cpu.pressure",
            "cgroup.events",
        ],
    );
    assert_eq!(t.cpu.limit_cpus(), Some(0.5));
    assert_eq!(
        (t.cpu.quota_us, t.cpu.period_us),
        (Some(50_000), Some(100_000))
    );
    let (periods, throttled) = (t.cpu.periods.unwrap(), t.cpu.throttled_periods.unwrap());
    assert!(
        throttled > 0 && throttled <= periods,
        "{throttled} of {periods}"
    );
    assert!(t.cpu.throttled_ns.unwrap() > 0);
    // the burn wanted a whole CPU for 10 s and got half: about 5 s of it; runc init's own
    // CPU in the cgroup comes on top (under TCG, seconds)
    let usage = t.cpu.usage_ns.unwrap();
    assert!(usage >= 4_500_000_000, "usage {usage} ns");
    // user + system is usage, to the kernel's rounding of each (6840344 = 4444351 + 2395992 + 1 µs)
    let parts = t.cpu.user_ns.unwrap() + t.cpu.system_ns.unwrap();
    assert!(
        usage.abs_diff(parts) <= 2_000,
        "usage {usage} vs user + system {parts}"
    );
    assert!(t.cpu_pressure.unwrap().some_us.unwrap() > 0);
    // the default weight: no shares in runc's spec
    assert_eq!(t.cpu.shares, Some(2597));
    assert_eq!(t.populated, Some(false));
}

/// A runc container whose dd was OOM-killed under memory.max 16 MiB: the kernel's count alone
/// says `OOMKilled` (the VM has no runtime socket to ask), with no exit code.
#[test]
fn runc_oom_kill_from_the_kernel_alone() {
    let o = parse_dir(
        "runc/oom",
        &[
            "memory.events",
            "memory.max",
            "memory.peak",
            "memory.current",
            "cgroup.events",
        ],
    );
    assert_eq!(o.memory.oom_kills, Some(1));
    assert_eq!(o.memory.oom_group_kills, Some(0));
    assert_eq!(o.memory.limit, Some(16 * MIB));
    // dd asked for 64 MiB: usage reached the limit exactly
    assert_eq!(o.memory.peak, Some(16 * MIB));
    assert_eq!(o.populated, Some(false));
    let kernel = exit::kernel_oom(Some(&o));
    assert_eq!(kernel, Some(true));
    let e = exit::verdict(kernel, None).expect("an exit");
    assert_eq!(e.reason.as_str(), "OOMKilled");
    assert_eq!(e.code, None);
}

/// pids.limit 16 and cpu shares 256 in runc's spec, 8 processes started.
#[test]
fn runc_pids_limit() {
    let p = parse_dir("runc/pids", &["pids.max", "pids.current", "cpu.weight"]);
    assert_eq!((p.pids.limit, p.pids.current), (Some(16), Some(8)));
    assert_eq!(
        read("runc/pids/cpu.weight").trim(),
        runc_weight(256).to_string()
    );
    assert_eq!(p.cpu.shares, Some(237));
}

/// containerd: where it puts a container on its own (`/default/<id>`, the id a name), the
/// weight its default spec's 1024 shares become (39), and its shim, which stays in
/// containerd's cgroup: not a container, and not in the container's `cgroup.procs`.
#[test]
fn containerd_made_containers_and_their_shim() {
    let rel = v2_path(&read("containerd/default/pid-cgroup"));
    assert_eq!(rel, Path::new("default/ce-burn"));
    let found = discovery::classify(&rel).expect("a container");
    assert_eq!(
        (found.id.as_str(), found.runtime, found.pod_uid.as_deref()),
        ("ce-burn", Runtime::Containerd, None)
    );
    let d = parse_dir(
        "containerd/default",
        &["cpu.max", "cpu.weight", "memory.max", "pids.max"],
    );
    assert_eq!(
        read("containerd/default/cpu.weight").trim(),
        runc_weight(1024).to_string()
    );
    assert_eq!(d.cpu.shares, Some(998));
    assert_eq!(
        (d.cpu.limit_cpus(), d.memory.limit, d.pids.limit),
        (None, None, None)
    );
    assert_eq!(
        read("containerd/parents/default.subtree_control").trim(),
        "cpuset cpu io memory hugetlb pids rdma misc"
    );

    // the kubelet-shaped one (--cgroup /kubepods/besteffort/pod<uid>/<id>), and its shim
    let rel = v2_path(&read("containerd/pid-cgroup"));
    let found = discovery::classify(&rel).expect("a container");
    assert_eq!(found.runtime, Runtime::Containerd);
    assert_eq!(
        found.pod_uid.as_deref(),
        Some("b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e")
    );
    let shim_rel = v2_path(&read("containerd/shim.cgroup"));
    assert_eq!(shim_rel, Path::new("system.slice/containerd.service"));
    assert_eq!(
        discovery::classify(&shim_rel),
        None,
        "the shim's cgroup is no container"
    );
    let shim: u32 = read("containerd/shim.pid").trim().parse().unwrap();
    let procs = read("containerd/cgroup.procs");
    assert!(
        !procs.lines().any(|l| l.trim() == shim.to_string()),
        "shim {shim} in {procs:?}"
    );
    // the process the exporter would read the network of is the container's first one
    let first = parse::first_pid(procs.as_bytes()).unwrap();
    assert_ne!(first, shim);
    // 4 processes started by the container (its shell and 3 sleeps), none of them the shim
    let k = parse_dir("containerd", &["pids.current", "pids.max", "cpu.weight"]);
    assert_eq!(k.pids.current, Some(4));
    assert_eq!(procs.lines().count(), 4);
    assert_eq!(k.cpu.shares, Some(998));
}
