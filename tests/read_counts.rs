//! The exporter's count of its own reads (`container_exporter_cgroup_reads_total{file}`, which
//! `benches/floor.rs` prices for its floor of exactly the daemon's reads) against the kernel's
//! count of the process's read system calls (`syscr` in `/proc/self/io`): equal, read for
//! read, over reads of a real container-shaped cgroup whose process has a network namespace
//! of its own (so `cgroup.procs` and `net/dev` are read too).
//!
//! A test binary of its own, with one test: the counts are process-wide, and nothing else in
//! this process reads while it measures. On this machine's own cgroups, as root.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use container_exporter::cgroup::reader::OpenOptions;
use container_exporter::cgroup::{CgroupReader, CgroupSample, NetSource, ProcRoot, reads};
use container_exporter::discovery::RETRY_AFTER_DISCOVERY;

use common::cgroups::{TestCgroup, layout, read_line};

/// The process's read system calls so far, by one `pread` of a kept `/proc/self/io` (which
/// the kernel counts once its read is done: in the next figure, not in its own).
fn syscr(io: &File) -> u64 {
    let mut buf = [0u8; 1024];
    let n = io.read_at(&mut buf, 0).expect("pread /proc/self/io");
    let text = std::str::from_utf8(&buf[..n]).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("syscr: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no syscr in /proc/self/io:\n{text}"))
}

fn counts() -> BTreeMap<&'static str, u64> {
    reads::counts().collect()
}

#[test]
fn the_reads_counted_are_the_read_system_calls_made() {
    let l = layout();
    let mut cg = TestCgroup::new(&l, 1);
    let child = cg.spawn_perl_in_own_network("$| = 1; print qq(ready\\n); sleep 600;");
    assert_eq!(read_line(child), "ready");
    // As the daemon opens a container: limits once a minute, `cgroup.events` when its
    // inotify watch reports.
    let options = OpenOptions {
        limits_every: Duration::from_secs(59),
        ..OpenOptions::default()
    };
    let mut reader = CgroupReader::open_with(&l, &cg.rel, options)
        .expect("open the test cgroup")
        .with_net_source(NetSource::Own);
    reader.set_events_watched(true);
    let proc_root = ProcRoot::new(Path::new("/proc"));
    let (mut buf, mut sample) = (Vec::new(), CgroupSample::default());
    let io = File::open("/proc/self/io").expect("/proc/self/io (task I/O accounting)");

    // Young (its limits read at every read), and then past that, when only the files read
    // every tick are (and of those, not the counters that move only under a limit this
    // cgroup does not have): both are counted as made.
    let mut rounds = Vec::new();
    for pause in [None, Some(RETRY_AFTER_DISCOVERY)] {
        if let Some(p) = pause {
            std::thread::sleep(p + Duration::from_millis(200));
        }
        let (c0, s0) = (counts(), syscr(&io));
        for _ in 0..5 {
            reader
                .read(&proc_root, &mut buf, &mut sample, &mut |e| panic!("{e}"))
                .expect("the cgroup is there");
        }
        let s1 = syscr(&io);
        let c1 = counts();
        let made: BTreeMap<&str, u64> = (c1.iter())
            .map(|(f, n)| (*f, n - c0.get(f).copied().unwrap_or(0)))
            .filter(|&(_, n)| n > 0)
            .collect();
        let counted: u64 = made.values().sum();
        eprintln!(
            "5 reads: {counted} counted, {} read system calls: {made:?}",
            s1 - s0 - 1
        );
        assert_eq!(
            counted,
            s1 - s0 - 1,
            "reads counted vs the kernel's count of read system calls (less the pread of \
             /proc/self/io that took the first figure): {made:?}"
        );
        assert_eq!(made.get("net/dev"), Some(&5), "{made:?}");
        let memory_stat = made
            .iter()
            .find(|(f, _)| f.ends_with("memory.stat"))
            .map(|(_, n)| *n);
        assert_eq!(memory_stat, Some(5), "memory.stat every read: {made:?}");
        rounds.push(made);
    }
    let [young, settled] = [&rounds[0], &rounds[1]];
    let limit = |m: &BTreeMap<&str, u64>| {
        m.iter()
            .find(|(f, _)| f.ends_with("pids.max"))
            .map(|(_, n)| *n)
    };
    assert_eq!(
        limit(young),
        Some(5),
        "a young container's limits at every read: {young:?}"
    );
    assert_eq!(
        limit(settled),
        Some(1),
        "past its first seconds, its limits once, then not before as long as it has existed: \
         {settled:?}"
    );
    assert!(
        !settled.keys().any(|f| f.ends_with("cgroup.events")),
        "no cgroup.events without an event: {settled:?}"
    );
    assert!(
        sample.net.iter().any(|i| i.name.as_str() == "lo"),
        "{:?}",
        sample.net
    );
}
