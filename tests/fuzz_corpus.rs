//! The fuzz corpus as a regression test on stable (issue 11): every file kept under
//! `tests/fuzz/corpus/<target>/` and `tests/fuzz/regressions/<target>/` (the inputs of the
//! defects found and fixed) goes through the very function its libFuzzer target runs
//! (`tests/fuzz/targets.rs`), which checks that the parser neither panics nor invents a
//! value, and that caps and names hold. The real kernel files of `testdata/` go through
//! the targets too. A corpus directory that is missing or empty fails the test: the corpus
//! is what makes it a test.

#[path = "fuzz/targets.rs"]
mod targets;

use std::fs;
use std::path::{Path, PathBuf};

/// A target's name (its corpus directory), its function, and the `testdata/` files that are
/// its kind of input.
type Target = (&'static str, fn(&[u8]), &'static [&'static str]);

const TARGETS: &[Target] = &[
    (
        "flat_keyed",
        targets::flat_keyed,
        &[
            "linux-6.1-cgroup-v2/cpu.stat",
            "linux-6.1-cgroup-v2/memory.stat",
            "linux-6.1-cgroup-v2/memory.events",
            "linux-6.18-cgroup-v1/memory/memory.stat",
            "linux-6.18-cgroup-v1/cpuacct/cpuacct.stat",
        ],
    ),
    (
        "single",
        targets::single,
        &[
            "linux-6.1-cgroup-v2/memory.current",
            "linux-6.1-cgroup-v2/pids.max",
        ],
    ),
    (
        "cpu_max",
        targets::cpu_max,
        &["linux-6.1-cgroup-v2/cpu.max"],
    ),
    (
        "io_stat",
        targets::io_stat,
        &["linux-6.1-cgroup-v2/io.stat"],
    ),
    (
        "blkio",
        targets::blkio,
        &["linux-6.18-cgroup-v1/blkio/blkio.throttle.io_service_bytes_recursive"],
    ),
    (
        "pressure",
        targets::pressure,
        &["linux-6.1-cgroup-v2/cpu.pressure"],
    ),
    (
        "net_dev",
        targets::net_dev,
        &[
            "linux-6.18-procfs/net-dev",
            "linux-6.18-procfs/net-dev-host",
        ],
    ),
    (
        "first_pid",
        targets::first_pid,
        &["linux-6.1-cgroup-v2/cgroup.procs"],
    ),
    (
        "mem_total",
        targets::mem_total,
        &["linux-6.18-procfs/meminfo"],
    ),
    (
        "cpu_list_len",
        targets::cpu_list_len,
        &["linux-6.18-sysfs/cpu-online"],
    ),
    (
        "uevent_devname",
        targets::uevent_devname,
        &[
            "linux-6.18-sysfs/dev-block-254-0-uevent",
            "linux-6.18-sysfs/dev-block-7-0-uevent",
        ],
    ),
    ("mountinfo", targets::mountinfo, &[]),
    ("parse_files", targets::parse_files, &[]),
    ("disk_mountinfo", targets::disk_mountinfo, &[]),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = root().join("tests/fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `f` on `data`; a panic fails the test naming the input.
fn run(target: &str, f: fn(&[u8]), path: &Path, data: &[u8]) {
    if std::panic::catch_unwind(|| f(data)).is_err() {
        panic!(
            "target {target} failed on {} ({} bytes)",
            path.display(),
            data.len()
        );
    }
}

#[test]
fn every_corpus_file_passes_its_target() {
    let mut total = 0;
    for &(target, f, _) in TARGETS {
        let files = corpus(target);
        assert!(!files.is_empty(), "tests/fuzz/corpus/{target} is empty");
        for path in &files {
            run(target, f, path, &fs::read(path).unwrap());
        }
        eprintln!("{target}: {} corpus files", files.len());
        total += files.len();
    }
    eprintln!("{total} corpus files in all");
}

/// Inputs that found a defect (or show one fixed before fuzzing found it), kept whatever the
/// next minimisation of the corpus drops: `tests/fuzz/regressions/<target>/`.
#[test]
fn every_regression_input_passes_its_target() {
    let mut total = 0;
    for &(target, f, _) in TARGETS {
        let dir = root().join("tests/fuzz/regressions").join(target);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.map(|e| e.unwrap().path()) {
            run(target, f, &path, &fs::read(&path).unwrap());
            total += 1;
        }
    }
    assert!(total >= 5, "only {total} regression inputs");
}

#[test]
fn real_kernel_files_pass_their_targets() {
    for &(target, f, files) in TARGETS {
        for rel in files {
            let path = root().join("testdata").join(rel);
            let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            run(target, f, &path, &data);
            // Cut anywhere, too.
            for cut in (0..data.len()).step_by(7) {
                run(target, f, &path, &data[..cut]);
            }
        }
    }
    // mountinfo with each cgroup root: the first byte picks it.
    for rel in [
        "linux-6.18-procfs/mountinfo-hybrid",
        "linux-6.1-procfs/mountinfo",
    ] {
        let path = root().join("testdata").join(rel);
        let text = fs::read(&path).unwrap();
        for pick in 0..3u8 {
            let mut data = vec![pick];
            data.extend_from_slice(&text);
            run("mountinfo", targets::mountinfo, &path, &data);
        }
    }
}

/// The checks themselves catch what they are for: a target whose checks cannot fail would
/// test nothing. Outputs the parsers no longer produce are handed to the same checks.
#[test]
fn the_checks_reject_invented_values() {
    use container_exporter::cgroup::CgroupSample;
    use container_exporter::cgroup::sample::{IoDevice, MemorySample};
    let fails = |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
    let input = b"8:0 rbytes=1 wbytes=2\n";
    let dev = |read_bytes| IoDevice {
        major: 8,
        minor: 0,
        read_bytes: Some(read_bytes),
        ..IoDevice::default()
    };
    assert!(!fails(&|| targets::check_devices(input, &[dev(1)], 0, 1)));
    assert!(
        fails(&|| targets::check_devices(input, &[dev(3)], 0, 1)),
        "3 is not in the input"
    );
    assert!(
        fails(&|| targets::check_devices(input, &[dev(1), dev(1)], 0, 1)),
        "a device twice"
    );
    assert!(
        fails(&|| targets::check_devices(input, &[dev(1)], 1, 1)),
        "dropped below the cap"
    );

    let nums = targets::numbers(b"100\n");
    let usage_only = CgroupSample {
        memory: MemorySample {
            usage: Some(100),
            ..MemorySample::default()
        },
        ..CgroupSample::default()
    };
    assert!(!fails(&|| targets::check_sample(
        &usage_only,
        &nums,
        b"100\n",
        false
    )));
    let invented = CgroupSample {
        memory: MemorySample {
            usage: Some(101),
            ..MemorySample::default()
        },
        ..CgroupSample::default()
    };
    assert!(fails(&|| targets::check_sample(
        &invented, &nums, b"100\n", false
    )));
    // Defect 10b: working set equal to usage without memory.stat.
    assert_eq!(usage_only.memory.working_set(), None);

    // The cAdvisor page's fields: an invented failure count, limit or share fails too.
    use container_exporter::cgroup::sample::{CpuSample, Limit, SpecSample};
    let failcnt = CgroupSample {
        memory: MemorySample {
            failcnt: Some(7),
            ..MemorySample::default()
        },
        ..CgroupSample::default()
    };
    assert!(fails(&|| targets::check_sample(
        &failcnt, &nums, b"100\n", true
    )));
    let limit = |l| CgroupSample {
        spec: SpecSample {
            memory_reservation: Some(l),
            ..SpecSample::default()
        },
        ..CgroupSample::default()
    };
    assert!(!fails(&|| targets::check_sample(
        &limit(Limit::Value(100)),
        &nums,
        b"100\n",
        false
    )));
    assert!(!fails(&|| targets::check_sample(
        &limit(Limit::Unlimited),
        &nums,
        b"100\n",
        false
    )));
    assert!(fails(&|| targets::check_sample(
        &limit(Limit::Value(99)),
        &nums,
        b"100\n",
        false
    )));
    let shares = |s| CgroupSample {
        cpu: CpuSample {
            shares: Some(s),
            ..CpuSample::default()
        },
        ..CgroupSample::default()
    };
    // Weight 100 is 2 + 99 * 262142 / 9999 = 2597 shares.
    assert!(!fails(&|| targets::check_sample(
        &shares(2597),
        &nums,
        b"100\n",
        false
    )));
    assert!(!fails(&|| targets::check_sample(
        &shares(100),
        &nums,
        b"100\n",
        true
    )));
    assert!(fails(&|| targets::check_sample(
        &shares(2598),
        &nums,
        b"100\n",
        false
    )));

    // The host facts and device names.
    assert!(fails(&|| targets::mem_total_checked(
        b"MemTotal: 8 kB\n",
        8 * 1000
    )));
    assert!(fails(&|| targets::devname_checked(
        b"DEVNAME=vda\n",
        b"vdb"
    )));
}
