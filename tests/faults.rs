//! The daemon under faults of what it reads (issue 11): files it may not open, a FIFO where a
//! cgroup file should be. The real binary runs as a child process; the cgroups are real
//! container-shaped cgroups on this machine's cgroupfs, except where the fault cannot exist on
//! cgroupfs (a FIFO), which is set up in a tree of the test's own.
//!
//! Needs root (it creates cgroups and runs the exporter as another user).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::TempDir;
use common::cgroups::{TestCgroup, layout, read_line};
use common::exporter::Exporter;

/// The unprivileged user the exporter runs as in its image and DaemonSet.
const NOBODY: u32 = 65534;

fn file_in(cg: &TestCgroup, name: &str) -> PathBuf {
    cg.dirs
        .iter()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no {name} in {:?}", cg.dirs))
}

/// Two containers whose files the exporter may not open (a mode change stands in for any
/// open error): each warning names that container's own file, and each container is on the
/// page at the next tick once its file opens, not at the next rescan five minutes later.
#[test]
fn a_container_that_could_not_be_opened_is_retried_every_tick_and_named_right() {
    let l = layout();
    let mut a = TestCgroup::new(&l, 101);
    let mut b = TestCgroup::new(&l, 102);
    for cg in [&mut a, &mut b] {
        let child = cg.spawn_perl("$| = 1; print qq(ready\\n); sleep 120;");
        assert_eq!(read_line(child), "ready");
    }
    let a_file = file_in(&a, "memory.stat");
    let b_file = file_in(&b, "pids.max");
    let restore: Vec<(PathBuf, u32)> = [&a_file, &b_file]
        .iter()
        .map(|p| {
            let mode = fs::metadata(p).unwrap().permissions().mode();
            fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
            (p.to_path_buf(), mode)
        })
        .collect();
    struct Restore(Vec<(PathBuf, u32)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            for (p, mode) in &self.0 {
                let _ = fs::set_permissions(p, fs::Permissions::from_mode(*mode));
            }
        }
    }
    let restore = Restore(restore);

    let exp = Exporter::start_as(
        &[
            "--interval",
            "1s",
            "--rescan-interval",
            "5m",
            "--docker-host",
            "off",
        ],
        &[],
        Some(NOBODY),
    );
    exp.wait_for("two collections", Duration::from_secs(15), "", |p| {
        p.get("container_exporter_collections_total", &[])
            .unwrap_or(0.0)
            >= 2.0
    });
    let page = exp.metrics();
    assert!(!page.has_container(&a.id) && !page.has_container(&b.id));
    let log = exp.log_text();
    for (cg, file) in [(&a, &a_file), (&b, &b_file)] {
        let line = log
            .lines()
            .find(|l| l.contains("cannot open") && l.contains(&cg.id))
            .unwrap_or_else(|| panic!("no warning for {}:\n{log}", cg.id));
        assert!(
            line.contains(&file.display().to_string()),
            "the warning for {} names the wrong file: {line}",
            cg.id
        );
    }
    // (Only the cgroup files' warnings: the disk thread may warn about the writable layer of
    // another test's Docker container, which this unprivileged exporter cannot open either.)
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("cannot open the container's cgroup files"))
        .count();
    assert_eq!(
        warnings, 2,
        "one warning per container, not one per try:\n{log}"
    );

    drop(restore);
    let opened = Instant::now();
    exp.wait_for(
        "both containers on the page once their files open",
        Duration::from_secs(30),
        &a.id,
        |p| p.cpu_seconds(&a.id).is_some() && p.cpu_seconds(&b.id).is_some(),
    );
    eprintln!(
        "on the page {:?} after the files became readable",
        opened.elapsed()
    );
}

/// A tree of the test's own standing in for a cgroup2 mount, for faults cgroupfs itself
/// cannot have (a FIFO, garbage in a file): `<tmp>/cg` is "mounted" by a `mountinfo` in
/// `<tmp>/proc`, and holds Docker-shaped containers (`docker/<id>`) with the usual files.
struct FakeTree {
    tmp: TempDir,
}

impl FakeTree {
    fn new() -> FakeTree {
        let tmp = TempDir::new();
        let proc_root = tmp.0.join("proc");
        fs::create_dir_all(proc_root.join("self")).unwrap();
        fs::create_dir_all(tmp.0.join("cg")).unwrap();
        fs::write(
            proc_root.join("self/mountinfo"),
            format!(
                "30 25 0:26 / {} rw,nosuid - cgroup2 cgroup2 rw\n",
                tmp.0.join("cg").display()
            ),
        )
        .unwrap();
        FakeTree { tmp }
    }

    /// A running container with sound files; returns its directory.
    fn container(&self, id: &str) -> PathBuf {
        let dir = self.tmp.0.join("cg/docker").join(id);
        fs::create_dir_all(&dir).unwrap();
        for (name, content) in [
            ("cgroup.events", "populated 1\nfrozen 0\n"),
            (
                "cpu.stat",
                "usage_usec 1000\nuser_usec 600\nsystem_usec 400\n",
            ),
            ("memory.current", "4096\n"),
            ("memory.stat", "anon 1024\nfile 2048\ninactive_file 512\n"),
            ("cgroup.procs", ""),
        ] {
            fs::write(dir.join(name), content).unwrap();
        }
        dir
    }

    fn exporter(&self) -> Exporter {
        Exporter::start_with_env(
            &[
                "--interval",
                "1s",
                "--docker-host",
                "off",
                "--cgroup-root",
                &self.tmp.0.join("cg").display().to_string(),
                "--proc-root",
                &self.tmp.0.join("proc").display().to_string(),
            ],
            &[],
        )
    }
}

/// A FIFO where `memory.stat` should be: opening it for reading would block until a writer
/// came, with the collector stuck before its first tick. It is never opened blocking: the
/// exporter gets ready, says which file is wrong, and SIGTERM ends it at once.
#[test]
fn a_fifo_in_place_of_a_cgroup_file_never_blocks_the_collector() {
    let tree = FakeTree::new();
    let dir = tree.container(&"f1f0".repeat(16));
    fs::remove_file(dir.join("memory.stat")).unwrap();
    nix::unistd::mkfifo(
        &dir.join("memory.stat"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let mut exp = tree.exporter();
    exp.wait_for("a first collection", Duration::from_secs(10), "", |p| {
        p.get("container_exporter_collections_total", &[])
            .unwrap_or(0.0)
            >= 1.0
    });
    assert_eq!(exp.get("/readyz", &[]).status, 200);
    assert_eq!(exp.healthz(), 200);
    let fifo = dir.join("memory.stat").display().to_string();
    let log = exp.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains(&fifo) && l.contains("not a regular file")),
        "no warning naming {fifo}:\n{log}"
    );
    // SIGTERM still ends it, within the promised bound `stop` enforces.
    let (status, took) = exp.stop();
    assert!(
        status.success(),
        "exit status {status} ({took:?} after SIGTERM)"
    );
}

/// 40 containers with a malformed `memory.stat` each: every file gets its own warning (not
/// the last 16 of a tick), and a file that stays broken is not logged again every tick.
#[test]
fn every_broken_file_gets_one_warning_and_no_more() {
    let tree = FakeTree::new();
    let files: Vec<PathBuf> = (0..40)
        .map(|i| {
            let dir = tree.container(&format!("{i:02}").repeat(32));
            let f = dir.join("memory.stat");
            fs::write(&f, "anon 1024\nfile twelve\ninactive_file 512\n").unwrap();
            f
        })
        .collect();
    let exp = tree.exporter();
    let page = exp.wait_for("four collections", Duration::from_secs(15), "", |p| {
        p.get("container_exporter_collections_total", &[])
            .unwrap_or(0.0)
            >= 4.0
    });
    assert!(
        page.value(
            "container_exporter_read_errors_total",
            &[("kind", "malformed")]
        ) >= 40.0 * 4.0,
        "every error is counted"
    );
    let log = exp.log_text();
    for f in &files {
        let warnings = log
            .lines()
            .filter(|l| l.contains("WARN") && l.contains(&f.display().to_string()))
            .count();
        assert_eq!(
            warnings,
            1,
            "{} has {warnings} warnings:\n{log}",
            f.display()
        );
    }
}

/// An `io.stat` with 300 devices (and a big host could have more): the sample keeps 256, the
/// rest are counted on the page, and the tick stays cheap.
#[test]
fn devices_past_the_cap_are_counted_not_kept() {
    let tree = FakeTree::new();
    let id = "d1".repeat(32);
    let dir = tree.container(&id);
    let io: String = (0..300)
        .map(|i| format!("8:{i} rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n"))
        .collect();
    fs::write(dir.join("io.stat"), io).unwrap();
    let exp = tree.exporter();
    let page = exp.wait_for("two collections", Duration::from_secs(15), "", |p| {
        p.get("container_exporter_collections_total", &[])
            .unwrap_or(0.0)
            >= 2.0
    });
    let devices = page
        .series(
            "container_disk_io_bytes_total",
            &[("container_id", &id), ("disk_io_direction", "read")],
        )
        .len();
    assert_eq!(devices, 256, "the cap");
    let dropped = page.value(
        "container_exporter_dropped_entries_total",
        &[("kind", "device")],
    );
    assert!(
        dropped >= 44.0,
        "44 devices per read past the cap: {dropped}"
    );
}
