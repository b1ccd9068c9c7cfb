//! Files read only when they can have changed, on this machine's real cgroups: a counter that
//! moves only under a limit is read every tick while the container has that limit, and with the
//! limits otherwise (its last content standing in). Each rule is checked against the kernel
//! (without the limit the counter does not move, whatever the workload does), shown skipping
//! (a change the rule does not expect is not seen until the limits are read), and shown
//! resuming with the right value once a limit is set. Needs root.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use container_exporter::cgroup::{CgroupReader, CgroupSample, LayoutKind, OpenOptions, ProcRoot};
use container_exporter::discovery;

use common::TempDir;
use common::cgroups::{TestCgroup, layout, layout_is, read_line};

/// Whether the reader reads `name` at every read now.
fn every_tick(reader: &CgroupReader, name: &str) -> bool {
    reader.per_tick().any(|f| f.name == name)
}

/// Reads the reader once; returns `memory.failcnt` as sampled.
fn failcnt(reader: &mut CgroupReader) -> Option<u64> {
    let (mut buf, mut sample) = (Vec::new(), CgroupSample::default());
    reader
        .read(
            &ProcRoot::new(Path::new("/proc")),
            &mut buf,
            &mut sample,
            &mut |e| panic!("{e}"),
        )
        .expect("the cgroup is there");
    sample.memory.failcnt
}

fn number(path: &Path) -> u64 {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

/// Writes 64 MiB to a file on disk from inside the cgroup, through the page cache (which a
/// limit reclaims: charges fail and are retried, nothing is killed), and waits for it.
fn write_64_mib(cg: &mut TestCgroup, dir: &Path) {
    let file = dir.join("f");
    let child = cg.spawn_perl(&format!(
        r#"$| = 1; open(my $f, ">", "{}") or die; my $m = "x" x 1048576;
           print $f $m for 1..64; close($f) or die; print "done\n";"#,
        file.display()
    ));
    assert_eq!(read_line(child), "done", "the writer finished");
    let _ = fs::remove_file(&file);
}

/// v1 `memory.failcnt` counts the charges refused by the cgroup's own memory limit: read every
/// tick under a limit, with the limits without one.
#[test]
fn failcnt_is_read_every_tick_only_under_a_memory_limit() {
    let l = layout();
    if !layout_is(
        &l,
        &[LayoutKind::Hybrid, LayoutKind::V1],
        "v1 memory.failcnt read only under a memory limit",
    ) {
        return;
    }
    let dir = TempDir::new();
    let mut cg = TestCgroup::new(&l, 1);
    let mem = l.memory.as_ref().unwrap().join(&cg.rel);
    let (limit, count) = (
        mem.join("memory.limit_in_bytes"),
        mem.join("memory.failcnt"),
    );
    fs::write(&limit, (16 << 20).to_string()).unwrap();
    let options = OpenOptions {
        limits_every: Duration::from_secs(36_000),
        ..OpenOptions::default()
    };
    let mut reader = CgroupReader::open_with(&l, &cg.rel, options).unwrap();
    // Past the first seconds, when every file is read at every read.
    std::thread::sleep(discovery::RETRY_AFTER_DISCOVERY);
    assert_eq!(failcnt(&mut reader), Some(0), "a new cgroup");
    assert!(every_tick(&reader, "memory.failcnt"), "under a limit");

    // Under the limit: 64 MiB through a 16 MiB limit make the kernel refuse charges.
    write_64_mib(&mut cg, dir.0.as_path());
    let hit = number(&count);
    assert!(
        hit > 0,
        "64 MiB written under a 16 MiB limit: failcnt {hit}"
    );
    assert_eq!(failcnt(&mut reader), Some(hit), "read at the next tick");
    fs::write(&count, "0").unwrap();
    assert_eq!(failcnt(&mut reader), Some(0), "and at every tick");
    write_64_mib(&mut cg, dir.0.as_path());
    let hit = number(&count);
    assert!(hit > 0);
    assert_eq!(failcnt(&mut reader), Some(hit));

    // The limit removed (and the limits read again, as after a runtime's update event).
    fs::write(&limit, "-1").unwrap();
    reader.refresh_limits();
    assert_eq!(failcnt(&mut reader), Some(hit), "read with the limits");
    assert!(
        !every_tick(&reader, "memory.failcnt"),
        "not read every tick without a memory limit"
    );
    // The one change the kernel allows without a limit, a reset, is not seen: skipped.
    fs::write(&count, "0").unwrap();
    for _ in 0..3 {
        assert_eq!(
            failcnt(&mut reader),
            Some(hit),
            "not read without a limit: its last content stands in"
        );
    }
    // What the rule rests on: without a limit of its own, the same workload leaves the count
    // where it was.
    write_64_mib(&mut cg, dir.0.as_path());
    assert_eq!(number(&count), 0, "no limit, no failure counted");
    reader.refresh_limits();
    assert_eq!(failcnt(&mut reader), Some(0), "read again with the limits");

    // A limit set again: read every tick from the read of the limits on.
    fs::write(&limit, (16 << 20).to_string()).unwrap();
    reader.refresh_limits();
    assert_eq!(failcnt(&mut reader), Some(0));
    assert!(
        every_tick(&reader, "memory.failcnt"),
        "read every tick again"
    );
    write_64_mib(&mut cg, dir.0.as_path());
    let hit = number(&count);
    assert!(hit > 0, "64 MiB under the new limit: failcnt {hit}");
    assert_eq!(
        failcnt(&mut reader),
        Some(hit),
        "the count under the new limit, at the next tick"
    );
}
