//! The daemon when the host runs short of what it needs, and the limits it does not re-read
//! every tick (issue 9 parts 2 and 3, issue 11 defect 3), against the real thing:
//! - 50 real containers under `prlimit --nofile=256:256`: every one is on the page with its
//!   own pids limit, memory limit, process count and network series, although only a few fit
//!   the descriptor budget; one warning, and the self-metric counts the others;
//! - `fs.inotify.max_user_watches` lowered to 1 while containers start (one in a new cgroup
//!   parent, one under `docker/`): both are found, with one warning and the self-metric; once
//!   it is restored the watches come back (the sysctl is restored on failure too);
//! - 400 container-shaped cgroups appearing at once under `--nofile=2048`: every scrape answers,
//!   the descriptors never reach the limit less 64, and all are on the page within two ticks;
//! - 200 of them under `--nofile=3200`, where their per-tick files fit and not all their
//!   files do: every file of as many as fit is kept open, and the self-metric shows the states;
//! - `docker update` shows its new limits at the next tick (the `update` event), not after the
//!   minute the limits are otherwise trusted for;
//! - a limit written straight to a real cgroup file shows once the reader's period has passed,
//!   and at once after `refresh_limits`.
//!
//! Needs root and a running dockerd with the test image: run `.ci/docker-up.sh` first.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use container_exporter::cgroup::{
    CgroupReader, CgroupSample, Layout, LayoutKind, OpenOptions, ProcRoot,
};
use container_exporter::discovery::walk;

use common::exporter::Exporter;
use common::page::Page;
use common::{
    Container, HTTP_TIMEOUT, docker, free_port, http_request, require_docker, unique_name,
};

const MIB: u64 = 1 << 20;

/// One Docker test at a time: the inotify one lowers a limit every process shares, and must
/// not wait behind fifty `docker run`s while it is low.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The daemon under `prlimit --nofile=N:N`, with `--interval 1s`.
fn exporter_with_nofile(nofile: u32) -> Exporter {
    require_docker();
    let port = free_port();
    let log = std::env::temp_dir().join(format!("{}-exporter.log", unique_name()));
    let log_file = fs::File::create(&log).unwrap();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new("prlimit")
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_container-exporter"))
        .args(["--prometheus-listen", &listen, "--log-level", "debug"])
        .args(["--interval", "1s"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .expect("prlimit (util-linux) runs the exporter");
    let e = Exporter {
        child: Some(child),
        port,
        log,
        group: false,
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while http_request(port, "/healthz", &[], HTTP_TIMEOUT).is_err() {
        assert!(
            Instant::now() < deadline,
            "the exporter did not answer within 15 s:\n{}",
            e.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    e
}

/// Container `i` of the descriptor test: its own pids limit, memory limit and process count.
fn expected(i: usize) -> (u64, u64, u64) {
    let pids_limit = 100 + i as u64;
    let memory_limit = (32 + i as u64) * MIB;
    let processes = 1 + (i % 3) as u64;
    (pids_limit, memory_limit, processes)
}

#[test]
fn fifty_containers_under_256_descriptors_are_all_on_the_page() {
    require_docker();
    let _serial = serial();
    // Started in parallel, eight at a time.
    let mut containers: Vec<Container> = Vec::new();
    for chunk in (0..50).collect::<Vec<_>>().chunks(8) {
        let started: Vec<Container> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    s.spawn(move || {
                        let (pids, memory, processes) = expected(i);
                        let script = format!(
                            "for i in $(seq {}); do sleep 100000 & done; exec sleep 100000",
                            processes - 1
                        );
                        Container::sh(
                            &[
                                "--pids-limit",
                                &pids.to_string(),
                                "--memory",
                                &format!("{}m", memory / MIB),
                            ],
                            &script,
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        containers.extend(started);
    }

    let e = exporter_with_nofile(256);
    let wrong = |page: &Page| -> Vec<String> {
        let mut wrong = Vec::new();
        for (i, c) in containers.iter().enumerate() {
            let (pids_limit, memory_limit, processes) = expected(i);
            let id = c.id.as_str();
            let got = (
                page.get("container_pid_limit", &[("container_id", id)]),
                page.get("container_memory_limit_bytes", &[("container_id", id)]),
                page.get("container_pids", &[("container_id", id)]),
                page.cpu_seconds(id).is_some(),
                page.has_lo_network(id),
            );
            let want = (
                Some(pids_limit as f64),
                Some(memory_limit as f64),
                Some(processes as f64),
                true,
                true,
            );
            if got != want {
                wrong.push(format!("{}: {got:?}, want {want:?}", c.name));
            }
        }
        wrong
    };
    let page = e.wait_for(
        "every container with its limits, processes, CPU time and network series",
        Duration::from_secs(20),
        "",
        |p| wrong(p).is_empty(),
    );
    // Let a few more ticks pass in open-read-close mode: the values stay right.
    let ticks = page.value("container_exporter_collections_total", &[]);
    let page = e.wait_for("three more ticks", Duration::from_secs(10), "", |p| {
        p.value("container_exporter_collections_total", &[]) >= ticks + 3.0
    });
    let still_wrong = wrong(&page);
    assert!(
        still_wrong.is_empty(),
        "after three ticks: {still_wrong:#?}"
    );

    // Most of them do not fit 256 descriptors (128 are kept back, about 19 per container).
    let reopened = page.value("container_exporter_containers_reopened", &[]);
    assert!(
        (30.0..=page.value("container_exporter_containers_tracked", &[])).contains(&reopened),
        "containers read by open-read-close: {reopened}"
    );
    let fds = page.value("process_open_fds", &[]);
    assert!(
        fds <= 256.0 - 64.0,
        "{fds} descriptors open under a limit of 256"
    );
    let log = e.log_text();
    let warnings = log
        .matches("leaves room to keep the files of about")
        .count();
    assert_eq!(
        warnings, 1,
        "one warning about the descriptor budget:\n{log}"
    );
    assert!(
        !log.contains("Too many open files"),
        "no descriptor error reached the log:\n{log}"
    );
}

/// Sets a sysctl for the duration of a test and restores it when dropped, also when the test
/// fails.
struct Sysctl {
    path: PathBuf,
    old: String,
}

impl Sysctl {
    fn set(name: &str, value: &str) -> Sysctl {
        let path = Path::new("/proc/sys").join(name);
        let old = fs::read_to_string(&path).unwrap().trim().to_string();
        fs::write(&path, value).unwrap();
        Sysctl { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = fs::write(&self.path, &self.old);
    }
}

/// Removes the directories of a cgroup parent that `docker run --cgroup-parent` created in
/// every hierarchy.
struct CgroupParent(String);

impl Drop for CgroupParent {
    fn drop(&mut self) {
        for h in fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let top = h.path().join(&self.0);
            let _ = fs::remove_dir(top.join("docker"));
            let _ = fs::remove_dir(&top);
        }
        let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(&self.0).join("docker"));
        let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(&self.0));
    }
}

#[test]
fn too_few_inotify_watches_still_finds_every_container() {
    require_docker();
    let _serial = serial();
    let e = Exporter::start(&["--interval", "1s"]);
    e.wait_for("the first collection", Duration::from_secs(10), "", |p| {
        p.get("container_exporter_collections_total", &[])
            .is_some_and(|n| n >= 1.0)
    });
    let parent = CgroupParent(format!("ce-inotify-{}", std::process::id()));
    let (in_parent, plain) = {
        // Kept short: every process of root shares this limit while it is low.
        let _low = Sysctl::set("fs/inotify/max_user_watches", "1");
        // The parent exists (empty, unwatched) before the container is made in it, so only
        // listing it again can find the container.
        let layout = Layout::detect(Path::new("/sys/fs/cgroup"), Path::new("/proc")).unwrap();
        fs::create_dir(layout.discovery_root().join(&parent.0)).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let cgroup_parent = format!("/{}/docker", parent.0);
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| {
                Container::run(&["--cgroup-parent", &cgroup_parent], &["sleep", "100000"])
            });
            let b = s.spawn(|| Container::run(&[], &["sleep", "100000"]));
            (a.join().unwrap(), b.join().unwrap())
        });
        let page = e.wait_for(
            "both containers found without inotify watches",
            Duration::from_secs(8),
            "",
            |p| p.has_container(&a.id) && p.has_container(&b.id),
        );
        let unwatched = page.get(
            "container_exporter_inotify_unwatched",
            &[("kind", "cgroup_events")],
        );
        assert!(
            unwatched.is_some_and(|u| u >= 1.0),
            "unwatched cgroup.events counted: {unwatched:?}"
        );
        let dirs = page.get(
            "container_exporter_inotify_unwatched",
            &[("kind", "directory")],
        );
        assert!(
            dirs.is_some_and(|u| u >= 1.0),
            "the new cgroup parent's directories counted: {dirs:?}"
        );
        (a, b)
    };
    // Restored: the watches are retried and come back.
    e.wait_for(
        "every watch in place again once the limit is restored",
        Duration::from_secs(10),
        "",
        |p| {
            p.value(
                "container_exporter_inotify_unwatched",
                &[("kind", "directory")],
            ) == 0.0
                && p.value(
                    "container_exporter_inotify_unwatched",
                    &[("kind", "cgroup_events")],
                ) == 0.0
        },
    );
    let log = e.log_text();
    assert_eq!(
        log.matches("cannot add an inotify watch").count(),
        1,
        "one warning for the shortage:\n{log}"
    );
    drop((in_parent, plain));
}

#[test]
fn docker_update_shows_new_limits_at_the_next_tick() {
    require_docker();
    let _serial = serial();
    let c = Container::run(
        &["--memory", "64m", "--pids-limit", "50"],
        &["sleep", "100000"],
    );
    let e = Exporter::start(&["--interval", "1s"]);
    let limit = |p: &Page, name: &str| p.get(name, &[("container_id", &c.id)]);
    e.wait_for("the first limits", Duration::from_secs(15), &c.id, |p| {
        limit(p, "container_memory_limit_bytes") == Some((64 * MIB) as f64)
            && limit(p, "container_pid_limit") == Some(50.0)
    });
    let out = docker(&[
        "update",
        "--memory",
        "96m",
        "--memory-swap",
        "96m",
        "--pids-limit",
        "70",
        &c.id,
    ]);
    assert!(
        out.status.success(),
        "docker update: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the `update` event the old values would be kept for up to 59 s. A promised
    // bound: the next tick after the event; 30 s is a wide margin, still well short of 59 s.
    e.wait_for("the new limits", Duration::from_secs(30), &c.id, |p| {
        limit(p, "container_memory_limit_bytes") == Some((96 * MIB) as f64)
            && limit(p, "container_pid_limit") == Some(70.0)
    });
}

/// A cgroup in every hierarchy (not container-shaped: nobody else's exporter tracks it),
/// removed when dropped.
struct TestCgroup {
    rel: PathBuf,
    dirs: Vec<PathBuf>,
}

impl TestCgroup {
    fn new(l: &Layout) -> TestCgroup {
        let rel = PathBuf::from(format!("ce-test-limits-{}", std::process::id()));
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
fn limits_are_trusted_for_their_period_then_read_again() {
    let l = Layout::detect(Path::new("/sys/fs/cgroup"), Path::new("/proc")).unwrap();
    let cg = TestCgroup::new(&l);
    let pids_max = match l.kind {
        LayoutKind::V2 => l.unified.as_ref().unwrap().join(&cg.rel).join("pids.max"),
        _ => l.pids.as_ref().unwrap().join(&cg.rel).join("pids.max"),
    };
    let every = Duration::from_millis(1500);
    let options = OpenOptions {
        keep_open: true,
        keep_rare: true,
        limits_every: every,
        ..OpenOptions::default()
    };
    let mut reader = CgroupReader::open_with(&l, &cg.rel, options).unwrap();
    let proc_root = ProcRoot::new(Path::new("/proc"));
    let (mut buf, mut sample) = (Vec::new(), CgroupSample::default());
    let mut read = |r: &mut CgroupReader| -> Option<u64> {
        r.read(&proc_root, &mut buf, &mut sample, &mut |e| panic!("{e}"))
            .expect("the cgroup is there");
        sample.pids.limit
    };
    assert_eq!(read(&mut reader), None, "pids.max is `max` in a new cgroup");
    // For its first seconds a container's limits are read at every read: a runtime writes
    // them just after creating the cgroup.
    fs::write(&pids_max, "66").unwrap();
    assert_eq!(
        read(&mut reader),
        Some(66),
        "read at once while the container is new"
    );
    fs::write(&pids_max, "max").unwrap();
    assert_eq!(read(&mut reader), None);
    std::thread::sleep(container_exporter::discovery::RETRY_AFTER_DISCOVERY);
    assert_eq!(read(&mut reader), None);
    // The first period is cut short (staggered); from the second read on it is whole.
    std::thread::sleep(every);
    assert_eq!(read(&mut reader), None);

    fs::write(&pids_max, "77").unwrap();
    let written = Instant::now();
    assert_eq!(read(&mut reader), None, "trusted within its period");
    std::thread::sleep(every.saturating_sub(written.elapsed()) + Duration::from_millis(50));
    assert_eq!(
        read(&mut reader),
        Some(77),
        "read again once the period passed"
    );

    fs::write(&pids_max, "88").unwrap();
    assert_eq!(read(&mut reader), Some(77), "trusted within its period");
    reader.refresh_limits();
    assert_eq!(read(&mut reader), Some(88), "read at once when asked to");

    // The default reader (check, snapshot) reads limits every time.
    let mut plain = CgroupReader::open(&l, &cg.rel).unwrap();
    assert_eq!(read(&mut plain), Some(88));
    fs::write(&pids_max, "99").unwrap();
    assert_eq!(read(&mut plain), Some(99));
    // Not a container: discovery does not report it.
    assert!(!walk(l.discovery_root()).iter().any(|f| f.rel == cg.rel));
}

#[test]
fn a_lean_reader_keeps_only_what_it_reads_every_tick() {
    let l = Layout::detect(Path::new("/sys/fs/cgroup"), Path::new("/proc")).unwrap();
    // The v1 throttling counters are what moves between the sets: a pure v2 host has none, and
    // cannot test this. CI machines are hybrid: there a v2 layout fails (see `layout_is`).
    if !common::cgroups::layout_is(
        &l,
        &[LayoutKind::V1, LayoutKind::Hybrid],
        "a lean reader keeping only its per-tick files (v1 cpu.stat with and without a quota)",
    ) {
        return;
    }
    let cg = TestCgroup::new(&l);
    let cpu = l.cpu.as_ref().unwrap().join(&cg.rel);
    let options = OpenOptions {
        keep_open: true,
        keep_rare: false,
        limits_every: Duration::from_secs(3600),
        ..OpenOptions::default()
    };
    let mut lean = CgroupReader::open_with(&l, &cg.rel, options).unwrap();
    let mut full = CgroupReader::open(&l, &cg.rel).unwrap();
    let proc_root = ProcRoot::new(Path::new("/proc"));
    let mut buf = Vec::new();
    let mut read = |r: &mut CgroupReader| -> CgroupSample {
        let mut s = CgroupSample::default();
        r.read(&proc_root, &mut buf, &mut s, &mut |e| panic!("{e}"))
            .expect("the cgroup is there");
        s
    };
    let (a, b) = (read(&mut lean), read(&mut full));
    assert_eq!(a.cpu.quota_us, None);
    assert_eq!(
        (a.memory.limit, a.pids.limit),
        (b.memory.limit, b.pids.limit)
    );
    lean.trim(&l, &cg.rel);
    assert!(
        lean.held() + 5 <= full.held(),
        "limits, cpu.stat without a quota and empty blkio files are not kept: {} vs {}",
        lean.held(),
        full.held()
    );
    assert!(!lean.reopens(), "every per-tick file is kept");

    // A quota makes v1 cpu.stat a per-tick file: read (opened when read) once the limits are
    // read again, and kept once there is room.
    fs::write(cpu.join("cpu.cfs_period_us"), "100000").unwrap();
    fs::write(cpu.join("cpu.cfs_quota_us"), "50000").unwrap();
    lean.refresh_limits();
    let s = read(&mut lean);
    assert_eq!(s.cpu.limit_cpus(), Some(0.5));
    assert_eq!(s.cpu.periods, Some(0), "throttling counters are read");
    assert!(
        lean.reopens(),
        "cpu.stat is read every tick now, without a kept descriptor"
    );
    let before = lean.held();
    assert!(lean.keep_open());
    assert_eq!(lean.held(), before + 1);
    assert!(!lean.reopens());
    let s = read(&mut lean);
    assert_eq!(
        s.cpu.limit_cpus(),
        Some(0.5),
        "the limit is kept between its reads"
    );
    assert_eq!(s.cpu.periods, Some(0));
}

/// Container-shaped cgroups made by `benches/fake-containers.sh`, removed when dropped (also
/// when the test fails).
/// How many of the fake containers whose ids start with `prefix` have their CPU time on the
/// page.
fn fakes_on_page(p: &Page, prefix: &str) -> usize {
    p.series("container_cpu_time_seconds_total", &[("cpu_mode", "user")])
        .iter()
        .filter(|s| {
            s.labels
                .get("container_id")
                .is_some_and(|v| v.starts_with(prefix))
        })
        .count()
}

struct FakeContainers(PathBuf);

impl FakeContainers {
    fn create(n: usize, id_prefix: &str) -> FakeContainers {
        let state = std::env::temp_dir().join(unique_name());
        let guard = FakeContainers(state.clone());
        let out = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/benches/fake-containers.sh"
            ))
            .args(["create", &n.to_string()])
            .arg(&state)
            .env("ID_PREFIX", id_prefix)
            .env("LIFETIME", "600")
            // Each in a network namespace of its own, as containers are: its `net/dev` is read.
            .env("NETNS", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "fake-containers.sh create: {out:?}");
        guard
    }
}

impl Drop for FakeContainers {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/benches/fake-containers.sh"
            ))
            .arg("remove")
            .arg(&self.0)
            .output();
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A surge of containers under a low open-file limit (issue 24 item 5): 400 appear at once,
/// each in a network namespace of its own, while the daemon runs under `--nofile=2048` (room
/// for the files of about 180 of them, when only those read every tick are kept). The page
/// must answer every scrape during the surge (the listener's descriptors are kept back from
/// the containers' files), no descriptor error may reach the log, and every container must be
/// on the page by the second tick after the last one appeared (the budget reacts as each
/// container is opened, not a tick later). Descriptors a reader opens at its first read
/// (`cgroup.procs`, `net/dev`) count against the budget from the start: counted only once
/// open, the surge took every descriptor (about two per container past the budget), and
/// `accept` failed.
#[test]
fn a_surge_under_a_low_descriptor_limit_leaves_the_page_answering() {
    const SURGE: usize = 400;
    const NOFILE: u32 = 2048;
    const PREFIX: &str = "ce5a2e24";
    let _serial = serial();
    let e = exporter_with_nofile(NOFILE);
    e.wait_for("a first collection", Duration::from_secs(15), "", |p| {
        p.get("container_exporter_collections_total", &[])
            .unwrap_or(0.0)
            >= 1.0
    });
    // Before the surge: the runtime, the listener, inotify, the connections, and the files of
    // the host's other containers.
    let fd_dir = format!("/proc/{}/fd", e.pid());
    let before_fds = fs::read_dir(&fd_dir).unwrap().count();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (scrapes, failed, fake, created_at_tick, peak_fds) = std::thread::scope(|s| {
        // Two scrapers, back to back, for the whole surge.
        let scrapers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let (mut n, mut failed, mut peak) = (0u32, Vec::new(), 0usize);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        n += 1;
                        peak = peak.max(fs::read_dir(&fd_dir).map_or(0, |d| d.count()));
                        match http_request(e.port, "/metrics", &[], HTTP_TIMEOUT) {
                            Ok(r) if r.status == 200 => {}
                            Ok(r) => failed.push(format!("status {}", r.status)),
                            Err(err) => failed.push(err.to_string()),
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    (n, failed, peak)
                })
            })
            .collect();
        let fake = FakeContainers::create(SURGE, PREFIX);
        let tick = e
            .metrics()
            .value("container_exporter_collections_total", &[]);
        // Until every one is on the page (the deadline only guards against waiting forever).
        let on_page = |p: &Page| fakes_on_page(p, PREFIX);
        let shown = e.wait_for("the surge on the page", Duration::from_secs(60), "", |p| {
            on_page(p) == SURGE
        });
        // Two more ticks under the surge, still scraped.
        let at = shown.value("container_exporter_collections_total", &[]);
        e.wait_for("two more ticks", Duration::from_secs(20), "", |p| {
            p.value("container_exporter_collections_total", &[]) >= at + 2.0
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (mut scrapes, mut failed, mut peak) = (0, Vec::new(), 0);
        for h in scrapers {
            let (n, f, p) = h.join().unwrap();
            scrapes += n;
            failed.extend(f);
            peak = peak.max(p);
        }
        (scrapes, failed, fake, (tick, at), peak)
    });
    assert!(
        failed.is_empty(),
        "{} of {scrapes} scrapes failed during the surge: {:?}\n{}",
        failed.len(),
        &failed[..failed.len().min(10)],
        e.log_tail()
    );
    eprintln!(
        "{scrapes} scrapes; {before_fds} descriptors open before the surge, at most {peak_fds} \
         during it, under a limit of {NOFILE}"
    );
    // The containers' files may hold the limit less 128 (FD_RESERVE), the disk thread's less
    // 64 more: half the reserve at least stays free for connections.
    assert!(
        peak_fds <= NOFILE as usize - 64,
        "{peak_fds} descriptors open at once under a limit of {NOFILE}: the containers' files \
         took more than their budget, out of the listener's reserve"
    );
    let (created, shown) = created_at_tick;
    assert!(
        shown <= created + 2.0,
        "all {SURGE} on the page at tick {shown}, the surge was made by tick {created}"
    );
    let page = e.metrics();
    assert!(
        page.value("container_exporter_containers_reopened", &[]) > 0.0,
        "most of the surge is read by open-read-close"
    );
    let log = e.log_text();
    assert!(
        !log.contains("Too many open files") && !log.contains("os error 24"),
        "a descriptor error reached the log:\n{}",
        e.log_tail()
    );
    drop(fake);
}

/// When every container's files do not fit the budget but those read every tick do, the
/// room left keeps every file of as many containers as it holds (issue #23, item 1): the
/// others open their rarely read files (limits, settings) when they are due. Before, every
/// container kept only its per-tick files as soon as one did not fit, and each tick opened,
/// read and closed the rare files of a sixth of them (about 1,900 opens a tick at 1,000
/// containers under 20,000 descriptors). The self-metric shows each state.
#[test]
fn short_descriptors_keep_every_file_of_as_many_containers_as_fit() {
    const N: usize = 200;
    const NOFILE: u32 = 3200;
    const PREFIX: &str = "ce5a1e23";
    let _serial = serial();
    let fake = FakeContainers::create(N, PREFIX);
    let e = exporter_with_nofile(NOFILE);
    let on_page = |p: &Page| fakes_on_page(p, PREFIX);
    let shown = e.wait_for(
        "every container on the page",
        Duration::from_secs(30),
        "",
        |p| on_page(p) == N,
    );
    // The room is spent a few hundred containers a tick: three ticks more.
    let at = shown.value("container_exporter_collections_total", &[]);
    let page = e.wait_for("three more ticks", Duration::from_secs(20), "", |p| {
        p.value("container_exporter_collections_total", &[]) >= at + 3.0
    });
    let kept = |how: &str| page.value("container_exporter_containers_files", &[("kept", how)]);
    let (all, per_tick, none) = (kept("all"), kept("per_tick"), kept("none"));
    let tracked = page.value("container_exporter_containers_tracked", &[]);
    let fds = page.value("process_open_fds", &[]);
    eprintln!(
        "{tracked} containers: {all} keep every file, {per_tick} those read every tick, {none} \
         none; {fds} descriptors open under a limit of {NOFILE}"
    );
    assert_eq!(
        all + per_tick + none,
        tracked,
        "each container in one state"
    );
    assert_eq!(none, 0.0, "every container's per-tick files fit");
    assert_eq!(on_page(&page), N, "every container still on the page");
    // About 9 per-tick files each take 1,800 of the 3,072 the containers may hold; the
    // rest (less the room kept for new containers) holds about 70 containers' other 12.
    assert!(
        all >= 40.0 && per_tick >= 1.0,
        "the room left keeps every file of some containers, not of all: {all} and {per_tick}"
    );
    assert!(
        fds <= NOFILE as f64 - 64.0,
        "{fds} descriptors open under a limit of {NOFILE}"
    );
    let log = e.log_text();
    assert!(
        !log.contains("Too many open files") && !log.contains("os error 24"),
        "a descriptor error reached the log:\n{}",
        e.log_tail()
    );
    drop(fake);
}
