//! Limits a runtime writes late. runc makes a container's cgroup, puts `runc init` in it, and
//! writes the limits only once that process has set the container up (its procReady/procHooks
//! step): on a busy host that is seconds later, after the first seconds in which the exporter
//! reads a new container's limits at every read. The VM test saw it (tests/vm/, a `cpu.max`
//! missing from the page 37 s after runc wrote it, trusted for a whole period). A container
//! younger than a period now trusts its limits no longer than it has existed: a limit written
//! late shows within about twice its delay.
//!
//! On this machine's own cgroups (v1, v2 or hybrid), as root, like tests/limits.rs.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use container_exporter::cgroup::reader::OpenOptions;
use container_exporter::cgroup::{CgroupReader, CgroupSample, Layout, LayoutKind, ProcRoot};
use container_exporter::discovery::RETRY_AFTER_DISCOVERY;

/// A cgroup in every hierarchy (not container-shaped), removed when dropped.
struct TestCgroup {
    rel: PathBuf,
    dirs: Vec<PathBuf>,
}

impl TestCgroup {
    fn new(l: &Layout) -> TestCgroup {
        let rel = PathBuf::from(format!("ce-test-late-limits-{}", std::process::id()));
        let mut dirs = Vec::new();
        for m in [&l.unified, &l.cpu, &l.cpuacct, &l.memory, &l.blkio, &l.pids]
            .into_iter()
            .flatten()
        {
            let d = m.join(&rel);
            if !dirs.contains(&d) {
                fs::create_dir_all(&d).expect("create a cgroup (run as root)");
                dirs.push(d);
            }
        }
        TestCgroup { rel, dirs }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = fs::remove_dir(d);
        }
    }
}

#[test]
fn limits_written_after_the_first_seconds_show_within_twice_their_delay() {
    let l = Layout::detect(Path::new("/sys/fs/cgroup"), Path::new("/proc")).unwrap();
    let cg = TestCgroup::new(&l);
    let pids_max = match l.kind {
        LayoutKind::V2 => l.unified.as_ref().unwrap().join(&cg.rel).join("pids.max"),
        _ => l.pids.as_ref().unwrap().join(&cg.rel).join("pids.max"),
    };
    // the daemon's period (60 s less its interval)
    let options = OpenOptions {
        limits_every: Duration::from_secs(59),
        ..OpenOptions::default()
    };
    let before_open = Instant::now();
    let mut reader = CgroupReader::open_with(&l, &cg.rel, options).unwrap();
    let proc_root = ProcRoot::new(Path::new("/proc"));
    let (mut buf, mut sample) = (Vec::new(), CgroupSample::default());
    let mut read = |r: &mut CgroupReader| -> Option<u64> {
        r.read(&proc_root, &mut buf, &mut sample, &mut |e| panic!("{e}"))
            .expect("the cgroup is there");
        sample.pids.limit
    };
    assert_eq!(read(&mut reader), None, "pids.max is `max` in a new cgroup");

    // The runtime is slow: its limit comes after the first seconds, and after a read that
    // found none.
    std::thread::sleep(RETRY_AFTER_DISCOVERY + Duration::from_millis(500));
    let last_read = Instant::now();
    assert_eq!(read(&mut reader), None);
    fs::write(&pids_max, "66").unwrap();
    let age = last_read.duration_since(before_open);

    // That read trusted the limits for no longer than the reader had existed: by twice its
    // age they are read again (the sleep can only be longer than asked, never shorter).
    let due = before_open + age * 2 + Duration::from_millis(100);
    std::thread::sleep(due.saturating_duration_since(Instant::now()));
    assert_eq!(
        read(&mut reader),
        Some(66),
        "a limit written {:.1} s after the cgroup was opened, read at {:.1} s",
        age.as_secs_f64(),
        before_open.elapsed().as_secs_f64()
    );
}
