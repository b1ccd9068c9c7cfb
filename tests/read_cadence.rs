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

use container_exporter::cgroup::{
    CgroupReader, CgroupSample, LayoutKind, NetSource, OpenOptions, ProcRoot,
};
use container_exporter::discovery;

use common::TempDir;
use common::cgroups::{TestCgroup, layout, layout_is, read_line};

/// Whether the reader reads `name` at every read now.
fn every_tick(reader: &CgroupReader, name: &str) -> bool {
    reader.per_tick().any(|f| f.name == name)
}

/// Reads the reader once; returns the sample.
fn read_once(reader: &mut CgroupReader) -> CgroupSample {
    let (mut buf, mut sample) = (Vec::new(), CgroupSample::default());
    reader
        .read(
            &ProcRoot::new(Path::new("/proc")),
            &mut buf,
            &mut sample,
            &mut |e| panic!("{e}"),
        )
        .expect("the cgroup is there");
    sample
}

/// Reads the reader once; returns `memory.failcnt` as sampled.
fn failcnt(reader: &mut CgroupReader) -> Option<u64> {
    read_once(reader).memory.failcnt
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

/// v2 `memory.swap.current` under `memory.swap.max` 0 (what runc writes for a memory limit
/// with no swap over it, as for every Kubernetes container with one): the kernel refuses a swap
/// charge past the limit (`page_counter_try_charge`), so a count of 0 cannot move and the file
/// is read with the limits; with swap allowed, or swap still in use, every tick. This host's
/// unified hierarchy has no memory controller, so the reader runs over a copy of the VM's real
/// v2 files (the VM test reads real ones), the kernel's side of the rule being the refusal above.
#[test]
fn swap_is_read_every_tick_unless_the_container_may_not_swap_and_uses_none() {
    let mount = TempDir::new();
    let dir = mount.0.join("ctr");
    fs::create_dir_all(&dir).unwrap();
    let (current, max) = (dir.join("memory.swap.current"), dir.join("memory.swap.max"));
    let fixture = |f: &str| {
        fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/linux-6.1-cgroup-v2")
                .join(f),
        )
        .unwrap()
    };
    // No swap used (the fixture's 0), none allowed.
    fs::write(&current, fixture("memory.swap.current")).unwrap();
    fs::write(&max, b"0\n").unwrap();
    let layout = container_exporter::cgroup::Layout {
        kind: LayoutKind::V2,
        unified: Some(mount.0.clone()),
        cpu: None,
        cpuacct: None,
        memory: None,
        blkio: None,
        pids: None,
        systemd: None,
    };
    let options = OpenOptions {
        limits_every: Duration::from_secs(36_000),
        ..OpenOptions::default()
    };
    let mut reader = CgroupReader::open_with(&layout, Path::new("ctr"), options)
        .unwrap()
        .with_net_source(NetSource::Skip);
    let swap = |r: &mut CgroupReader| read_once(r).memory.swap;
    // Past the first seconds, when every file is read at every read.
    std::thread::sleep(discovery::RETRY_AFTER_DISCOVERY);
    assert_eq!(swap(&mut reader), Some(0));
    assert!(
        !every_tick(&reader, "memory.swap.current"),
        "no swap allowed and none used: not read every tick"
    );
    // A change the kernel cannot make under the 0 limit is not seen: its last content stands in.
    fs::write(&current, b"4096\n").unwrap();
    assert_eq!(swap(&mut reader), Some(0), "skipped");

    // Swap allowed (the fixture's `max` of a runc container): read with the limits, then every
    // tick.
    fs::write(&max, fixture("runc/memory.swap.max")).unwrap();
    reader.refresh_limits();
    assert_eq!(swap(&mut reader), Some(4096), "read with the limits");
    assert!(every_tick(&reader, "memory.swap.current"), "swap allowed");
    fs::write(&current, b"8192\n").unwrap();
    assert_eq!(swap(&mut reader), Some(8192), "and at every tick");

    // The limit lowered to 0 while swap is in use: the count can still fall (pages swapped in),
    // so it is read every tick until it is 0.
    fs::write(&max, b"0\n").unwrap();
    reader.refresh_limits();
    assert_eq!(swap(&mut reader), Some(8192));
    assert!(every_tick(&reader, "memory.swap.current"), "swap in use");
    fs::write(&current, b"0\n").unwrap();
    assert_eq!(swap(&mut reader), Some(0), "read as it falls");
    reader.refresh_limits();
    assert_eq!(swap(&mut reader), Some(0));
    assert!(
        !every_tick(&reader, "memory.swap.current"),
        "none used and none allowed: with the limits again"
    );
}
