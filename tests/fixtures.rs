//! Every parser on files captured from real kernels (`testdata/`, see its README for how each
//! set was captured and what the workloads did), and on arbitrary bytes (no panic, ever).

use std::fs;
use std::path::{Path, PathBuf};

use container_exporter::cgroup::CgroupSample;
use container_exporter::cgroup::parse::{self, BlkioKind};
use container_exporter::cgroup::plan;
use container_exporter::cgroup::plan::parse_files;
use container_exporter::cgroup::sample::{IoDevice, Limit, Psi, SpecSample};
use proptest::prelude::*;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

/// Parses the named files of a fixture directory as the reader would; `names` are paths
/// under the directory, passed to the parser by their kernel file name, or
/// `"path as name"` to give the name explicitly.
fn parse_dir(dir: &str, v1: bool, names: &[&str]) -> CgroupSample {
    let contents: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|n| {
            let (path, name) = match n.split_once(" as ") {
                Some((path, name)) => (path, name.to_string()),
                None => (
                    *n,
                    Path::new(n)
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                ),
            };
            let p = testdata(dir).join(path);
            let bytes = fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (name, bytes)
        })
        .collect();
    let files: Vec<(&str, &[u8])> = contents
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let mut s = CgroupSample::default();
    let problems = parse_files(v1, &files, &mut s);
    assert!(problems.is_empty(), "{dir}: {problems:?}");
    s
}

const MIB: u64 = 1 << 20;

#[test]
fn v2_container_with_every_controller() {
    let s = parse_dir(
        "linux-6.1-cgroup-v2",
        false,
        &[
            "cpu.stat",
            "cpu.max",
            "memory.current",
            "memory.max",
            "memory.stat",
            "memory.events",
            "memory.swap.current",
            "pids.current",
            "pids.max",
            "io.stat",
            "cpu.pressure",
            "memory.pressure",
            "io.pressure",
            "cgroup.events",
        ],
    );
    assert_eq!(s.cpu.usage_ns, Some(1_141_606_000));
    assert_eq!(s.cpu.user_ns, Some(14_152_000));
    assert_eq!(s.cpu.system_ns, Some(1_127_454_000));
    assert_eq!(s.cpu.periods, Some(0));
    assert_eq!(s.cpu.limit_cpus(), None, "cpu.max `max 100000` is no limit");
    // 32 MiB anon held by a blocked dd, a 32 MiB tmpfs file, a little kernel memory.
    assert_eq!(s.memory.usage, Some(67_698_688));
    assert_eq!(s.memory.anon, Some(33_751_040));
    assert_eq!(s.memory.file, Some(32 * MIB));
    assert_eq!(s.memory.inactive_file, Some(0));
    assert_eq!(s.memory.working_set(), Some(67_698_688));
    assert_eq!(s.memory.limit, Some(256 * MIB));
    assert_eq!(s.memory.available(), Some(256 * MIB - 67_698_688));
    assert_eq!(s.memory.swap, Some(0));
    assert_eq!(s.memory.oom_kills, Some(0));
    assert_eq!(s.memory.oom_group_kills, Some(0));
    assert_eq!(s.memory.pgfault, Some(8875));
    assert_eq!(s.memory.pgmajfault, Some(0));
    // Always hierarchical: the cgroup's own faults are the same figures.
    assert_eq!(
        (s.memory.pgfault_own, s.memory.pgmajfault_own),
        (Some(8875), Some(0))
    );
    assert_eq!(
        (s.memory.mapped_file, s.memory.active_file),
        (Some(0), Some(0))
    );
    assert_eq!(
        (s.memory.events_high, s.memory.events_max),
        (Some(0), Some(0))
    );
    assert_eq!(s.spec.memory_limit, Some(Limit::Value(256 * MIB)));
    assert_eq!(s.spec.pids_limit, Some(Limit::Value(64)));
    assert_eq!((s.cpu.bursts, s.cpu.burst_ns), (Some(0), Some(0)));
    assert_eq!((s.pids.current, s.pids.limit), (Some(5), Some(64)));
    assert_eq!(
        s.io,
        vec![IoDevice {
            major: 254,
            minor: 0,
            read_bytes: Some(4 * MIB),
            write_bytes: Some(0),
            read_ops: Some(4),
            write_ops: Some(0),
        }]
    );
    assert_eq!(
        s.cpu_pressure,
        Some(Psi {
            some_us: Some(196_786),
            full_us: Some(154_965)
        })
    );
    assert!(s.memory_pressure.is_some() && s.io_pressure.is_some());
    assert_eq!(s.populated, Some(true));
}

#[test]
fn v2_throttled_oom_unlimited_and_controllerless() {
    let t = parse_dir(
        "linux-6.1-cgroup-v2",
        false,
        &[
            "throttled/cpu.stat",
            "throttled/cpu.max",
            "throttled/cpu.pressure",
        ],
    );
    assert_eq!(t.cpu.limit_cpus(), Some(0.5));
    assert_eq!(t.cpu.periods, Some(104));
    assert_eq!(t.cpu.throttled_periods, Some(101));
    assert_eq!(t.cpu.throttled_ns, Some(4_740_099_000));
    assert_eq!(t.cpu_pressure.unwrap().some_us, Some(4_293_036));

    let o = parse_dir(
        "linux-6.1-cgroup-v2",
        false,
        &["oom/memory.events", "oom/memory.max", "oom/memory.current"],
    );
    assert_eq!(o.memory.oom_kills, Some(1));
    // One process killed, not the whole cgroup as a group (memory.oom.group is off).
    assert_eq!(o.memory.oom_group_kills, Some(0));
    assert_eq!(o.memory.limit, Some(8 * MIB));

    let u = parse_dir(
        "linux-6.1-cgroup-v2",
        false,
        &[
            "unlimited/memory.max",
            "unlimited/pids.max",
            "unlimited/cpu.max",
            "unlimited/io.stat",
        ],
    );
    assert_eq!(
        (u.memory.limit, u.pids.limit, u.cpu.limit_cpus()),
        (None, None, None)
    );
    assert_eq!(u.cpu.period_us, Some(100_000));
    assert_eq!(u.io[0].write_bytes, Some(32 * MIB));
    assert_eq!(u.io[0].read_bytes, Some(16 * MIB));
    assert_eq!((u.io[0].read_ops, u.io[0].write_ops), (Some(16), Some(32)));

    // A cgroup whose parent enables no controllers: only usage/user/system in cpu.stat.
    let p = parse_dir(
        "linux-6.1-cgroup-v2",
        false,
        &["plain/cpu.stat", "plain/cgroup.events"],
    );
    assert!(p.cpu.usage_ns.is_some());
    assert_eq!((p.cpu.periods, p.cpu.throttled_ns), (None, None));
}

#[test]
fn v1_controllers_with_hybrid_unified_cpu() {
    let files = [
        "cpu/cpu.stat",
        "cpu/cpu.cfs_quota_us",
        "cpu/cpu.cfs_period_us",
        "cpuacct/cpuacct.usage",
        "cpuacct/cpuacct.stat",
        "memory/memory.usage_in_bytes",
        "memory/memory.limit_in_bytes",
        "memory/memory.stat",
        "memory/memory.oom_control",
        "pids/pids.current",
        "pids/pids.max",
        "blkio/blkio.throttle.io_service_bytes_recursive",
        "blkio/blkio.throttle.io_serviced_recursive",
    ];
    let s = parse_dir("linux-6.18-cgroup-v1", true, &files);
    // cpuacct.stat ticks (296 user, 10 system) split the exact cpuacct.usage.
    assert_eq!(s.cpu.usage_ns, Some(3_070_882_507));
    assert_eq!(
        s.cpu.user_ns.unwrap() + s.cpu.system_ns.unwrap(),
        3_070_882_507
    );
    assert_eq!(s.cpu.user_ns, Some(3_070_882_507 * 296 / 306));
    assert_eq!(s.cpu.limit_cpus(), Some(1.5));
    assert_eq!(
        (s.cpu.periods, s.cpu.throttled_periods),
        (Some(36), Some(0))
    );
    assert_eq!(s.memory.usage, Some(42_909_696));
    assert_eq!(s.memory.limit, Some(256 * MIB));
    assert_eq!(s.memory.anon, Some(102_400));
    assert_eq!(s.memory.file, Some(42_008_576));
    assert_eq!(s.memory.swap, Some(0));
    assert_eq!(
        (s.memory.pgfault, s.memory.pgmajfault),
        (Some(2632), Some(2))
    );
    assert_eq!(s.memory.oom_kills, Some(0));
    assert_eq!((s.pids.current, s.pids.limit), (Some(2), Some(100)));
    // 32 MiB written with O_DIRECT under a throttle rule: exactly counted.
    assert_eq!(
        s.io,
        vec![IoDevice {
            major: 254,
            minor: 0,
            read_bytes: Some(33_607_680),
            write_bytes: Some(32 * MIB),
            read_ops: Some(39),
            write_ops: Some(32),
        }]
    );

    // On the hybrid host the unified cpu.stat gives user/system in µs instead of ticks.
    let h = parse_dir(
        "linux-6.18-hybrid-unified",
        true,
        &[
            "cpu.stat as unified/cpu.stat",
            "cpu.pressure",
            "io.pressure",
            "memory.pressure",
            "cgroup.events",
        ],
    );
    assert_eq!(h.cpu.usage_ns, Some(3_070_882_000));
    assert_eq!(h.cpu.user_ns, Some(2_967_217_000));
    assert_eq!(h.cpu.system_ns, Some(103_664_000));
    assert_eq!(h.io_pressure.unwrap().some_us, Some(31_248));
    assert_eq!(h.populated, Some(true));
    let e = parse_dir(
        "linux-6.18-hybrid-unified",
        true,
        &["cgroup.events.unpopulated as cgroup.events"],
    );
    assert_eq!(e.populated, Some(false));
}

#[test]
fn v1_unlimited_and_untracked_blkio() {
    let u = parse_dir(
        "linux-6.18-cgroup-v1",
        true,
        &[
            "unlimited/cpu.cfs_quota_us",
            "unlimited/memory.limit_in_bytes",
            "unlimited/pids.max",
        ],
    );
    assert_eq!(
        (u.cpu.quota_us, u.memory.limit, u.pids.limit),
        (None, None, None)
    );
    // The cAdvisor page's view of the same: read, and unlimited (written as 0 there).
    let u = parse_dir(
        "linux-6.18-cgroup-v1",
        true,
        &[
            "unlimited/memory.limit_in_bytes",
            "unlimited/memory.soft_limit_in_bytes",
            "unlimited/memory.memsw.limit_in_bytes",
            "unlimited/pids.max",
            "unlimited/cpu.shares",
            "unlimited/memory.failcnt",
        ],
    );
    assert_eq!(
        u.spec,
        SpecSample {
            memory_limit: Some(Limit::Unlimited),
            memory_reservation: Some(Limit::Unlimited),
            memory_swap_limit: Some(Limit::Unlimited),
            pids_limit: Some(Limit::Unlimited),
        }
    );
    assert_eq!((u.cpu.shares, u.memory.failcnt), (Some(1024), Some(0)));
    // Without a throttle rule v1 blkio counts nothing: no devices, not zeros.
    let b = parse_dir(
        "linux-6.18-cgroup-v1",
        true,
        &[
            "blkio-untracked/blkio.throttle.io_service_bytes_recursive",
            "blkio-untracked/blkio.throttle.io_serviced_recursive",
        ],
    );
    assert!(b.io.is_empty());
}

/// `docker run --cpu-shares 512 --memory 64m --memory-reservation 32m --memory-swap 96m`
/// writing 200 MiB through the page cache: the limit was hit, reclaim made room.
#[test]
fn v1_settings_and_limit_hits() {
    let s = parse_dir(
        "linux-6.18-cgroup-v1",
        true,
        &[
            "spec/cpu.shares",
            "spec/memory.limit_in_bytes",
            "spec/memory.soft_limit_in_bytes",
            "spec/memory.memsw.limit_in_bytes",
            "spec/memory.failcnt",
            "spec/memory.stat",
        ],
    );
    assert_eq!(s.cpu.shares, Some(512));
    assert_eq!(
        s.spec,
        SpecSample {
            memory_limit: Some(Limit::Value(64 * MIB)),
            memory_reservation: Some(Limit::Value(32 * MIB)),
            memory_swap_limit: Some(Limit::Value(96 * MIB)),
            pids_limit: None,
        }
    );
    assert_eq!(s.memory.limit, Some(64 * MIB));
    assert_eq!(s.memory.failcnt, Some(140));
    // A leaf cgroup: its own faults are its hierarchy's.
    assert_eq!(
        (s.memory.pgfault_own, s.memory.pgfault),
        (Some(1484), Some(1484))
    );
    assert_eq!(s.memory.pgmajfault_own, Some(0));
    assert_eq!(s.memory.mapped_file, Some(0));
    assert_eq!(s.memory.active_file, Some(0));
    assert_eq!(s.memory.inactive_file, Some(60 * MIB));
}

/// The v2 settings of a Burstable pod's container (`cpu.weight` 39, what runc writes for 1024
/// shares; `memory.min` 64 MiB; `memory.swap.max` 128 MiB) and of one with none, from the VM.
#[test]
fn v2_settings() {
    let files = ["cpu.weight", "memory.min", "memory.swap.max"];
    let s = parse_dir("linux-6.1-cgroup-v2/spec", false, &files);
    // Back to shares as cAdvisor converts: 2 + (39 - 1) * 262142 / 9999.
    assert_eq!(s.cpu.shares, Some(998));
    assert_eq!(
        (s.spec.memory_reservation, s.spec.memory_swap_limit),
        (Some(Limit::Value(64 * MIB)), Some(Limit::Value(128 * MIB)))
    );
    let u = parse_dir("linux-6.1-cgroup-v2/spec/unlimited", false, &files);
    // The default weight, 100, shows as 2597 shares, not v1's default 1024: cAdvisor's
    // conversion back is not the inverse of runc's (1024 shares -> weight 39 -> 998).
    assert_eq!(u.cpu.shares, Some(2597));
    assert_eq!(
        (u.spec.memory_reservation, u.spec.memory_swap_limit),
        (Some(Limit::Value(0)), Some(Limit::Unlimited))
    );
}

#[test]
fn net_dev_of_real_namespaces() {
    let mut out = Vec::new();
    parse::net_dev(
        &fs::read(testdata("linux-6.18-procfs/net-dev")).unwrap(),
        &mut out,
        &mut 0,
    )
    .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].name.as_str(), "lo");
    assert_eq!((out[0].rx_bytes, out[0].tx_bytes), (16_810_473, 16_810_473));
    assert_eq!(out[0].rx_packets, 634);

    for f in ["linux-6.18-procfs/net-dev-host", "linux-6.1-procfs/net-dev"] {
        let mut out = Vec::new();
        parse::net_dev(&fs::read(testdata(f)).unwrap(), &mut out, &mut 0).unwrap();
        assert!(out.iter().any(|i| i.name.as_str() == "lo"), "{f}");
        assert!(out.len() >= 2, "{f}: {out:?}");
    }
}

/// Every file name the readers know (the file plan's, and the unified `cpu.stat` of a hybrid
/// host by its `parse_files` name), to feed arbitrary bytes through each parser.
fn all_files() -> Vec<String> {
    let mut names: Vec<String> = plan::PLAN.iter().map(|f| f.name.to_string()).collect();
    names.push("unified/cpu.stat".to_string());
    names.sort();
    names.dedup();
    names
}

/// Bytes that look like cgroup files often enough to reach deep into the parsers.
fn cgroupish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"usage_usec ".to_vec()),
        Just(b"max".to_vec()),
        Just(b"-1".to_vec()),
        Just(b"\n".to_vec()),
        Just(b" ".to_vec()),
        Just(b"254:0 ".to_vec()),
        Just(b"rbytes=".to_vec()),
        Just(b"total=".to_vec()),
        Just(b"some ".to_vec()),
        Just(b"Read ".to_vec()),
        Just(b"lo: ".to_vec()),
        Just(b"18446744073709551616".to_vec()),
        "[0-9]{1,20}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn no_parser_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for v1 in [false, true] {
            for name in &all_files() {
                let mut s = CgroupSample::default();
                let _ = parse_files(v1, &[(name.as_str(), &bytes)], &mut s);
            }
        }
        let mut out = Vec::new();
        let _ = parse::net_dev(&bytes, &mut out, &mut 0);
        let _ = parse::first_pid(&bytes);
    }

    #[test]
    fn no_parser_panics_on_cgroup_like_bytes(bytes in cgroupish()) {
        for v1 in [false, true] {
            for name in &all_files() {
                let mut s = CgroupSample::default();
                let _ = parse_files(v1, &[(name.as_str(), &bytes), ("cpuacct.usage", b"100\n")], &mut s);
            }
        }
        let mut out = Vec::new();
        let _ = parse::net_dev(&bytes, &mut out, &mut 0);
        let mut devs = Vec::new();
        let _ = parse::blkio(&bytes, BlkioKind::Bytes, &mut devs, &mut 0);
        let _ = parse::io_stat(&bytes, &mut devs, &mut 0);
    }

    /// A file cut anywhere never yields a value that was not in the file whole: the cut
    /// line is dropped, every complete line is kept.
    #[test]
    fn truncation_never_invents_values(cut in 0usize..400) {
        let whole = fs::read(testdata("linux-6.1-cgroup-v2/memory.stat")).unwrap();
        let cut = cut.min(whole.len());
        let mut full = Vec::new();
        parse::flat_keyed(&whole, |k, v| full.push((k.to_vec(), v))).unwrap();
        let mut part = Vec::new();
        let r = parse::flat_keyed(&whole[..cut], |k, v| part.push((k.to_vec(), v)));
        prop_assert!(part.iter().all(|kv| full.contains(kv)));
        if cut < whole.len() && cut > 0 && whole[cut - 1] != b'\n' {
            prop_assert!(r.is_err());
        }
    }
}
