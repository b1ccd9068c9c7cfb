//! End-to-end tests of the daemon against a real Docker daemon (issue 4): the real binary runs
//! as a child process serving its Prometheus page on a free loopback port, busybox containers
//! (image `ce-busybox:test`, `--network none`) come and go, and the page is read over HTTP and
//! parsed here.
//!
//! - containers appear with their names, image and `container_info`; `/healthz`, `/readyz`,
//!   gzip, and a clean exit on SIGTERM;
//! - a container that lives less than one interval still shows its CPU time (the final sample
//!   read when `cgroup.events` says `populated 0`), then leaves the page once served;
//! - a new container is found by inotify (the rescan count does not move), not at the next
//!   rescan;
//! - a second Docker daemon of the test's own, stopped and restarted under the exporter:
//!   collection never stops and names come back; it has a bridge of its own, and the host's
//!   `docker0` is still usable afterwards;
//! - churn of 50 containers: descriptors and inotify watches return to their baseline.
//!
//! They need root and a running dockerd with the test image: run `.ci/docker-up.sh` first.
//! Without Docker they fail (they do not skip).

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use common::bridge::{TestBridge, assert_docker0_usable};
use common::exporter::Exporter;
use common::page::{Page, Sample};
use common::{
    Container, DOCKER_SETUP, IMAGE, busybox_time, docker, docker_at, log_tail, require_docker,
    terminate, unique_name,
};

const IMAGE_NAME: &str = "ce-busybox";
const IMAGE_TAG: &str = "test";

// ---------------------------------------------------------------------------------------------
// Test isolation: the churn test counts the exporter's descriptors, which grow with every
// container on the host, so it runs alone; the others share.
// ---------------------------------------------------------------------------------------------

static EXCLUSIVE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner())
}

fn alone() -> RwLockWriteGuard<'static, ()> {
    EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Docker
// ---------------------------------------------------------------------------------------------

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Names of containers to remove at the end, whatever happened (the churn test).
struct Names(Vec<String>);

impl Drop for Names {
    fn drop(&mut self) {
        for chunk in self.0.chunks(20) {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(chunk.iter().map(String::as_str));
            let _ = Command::new("docker")
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Open descriptors of a process, and inotify watches summed over its inotify descriptors.
fn fds_and_watches(pid: u32) -> (usize, usize) {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let mut fds = 0;
    let mut watches = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let Ok(entry) = entry else { continue };
        fds += 1;
        let target = fs::read_link(entry.path()).unwrap_or_default();
        if target == Path::new("anon_inode:inotify") {
            let info = format!("/proc/{pid}/fdinfo/{}", entry.file_name().to_string_lossy());
            watches += fs::read_to_string(&info)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count();
        }
    }
    (fds, watches)
}

// ---------------------------------------------------------------------------------------------
// 1. Containers on the page, health, readiness, gzip, SIGTERM
// ---------------------------------------------------------------------------------------------

#[test]
fn containers_appear_with_names_and_info_and_the_server_behaves() {
    let _g = shared();
    let mut exp = Exporter::start(&["--interval", "1s"]);

    // Readiness as documented: 503 until the first collection is done, 200 after. The first
    // tick runs at once, so the 503 is seldom seen; whichever it is must say so.
    let r = exp.get("/readyz", &[]);
    match r.status {
        200 => assert_eq!(r.text(), "ready\n"),
        503 => assert!(r.text().contains("first collection"), "{}", r.text()),
        s => panic!("/readyz answered {s}: {}", r.text()),
    }
    assert_eq!(exp.healthz(), 200, "/healthz at start");
    exp.wait_for("a first collection", Duration::from_secs(10), "", |p| {
        p.value("container_exporter_collections_total", &[]) >= 1.0
    });
    let r = exp.get("/readyz", &[]);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "ready\n"),
        "/readyz after the first collection"
    );
    assert_eq!(exp.get("/nope", &[]).status, 404);

    let a = Container::run(&[], &["sleep", "120"]);
    let b = Container::run(&[], &["sleep", "120"]);
    let started = Instant::now();
    let page = exp.wait_for(
        "both containers on /metrics with their names",
        Duration::from_secs(10),
        &a.id[..12],
        |p| {
            [&a, &b].iter().all(|c| {
                p.get(
                    "container_info",
                    &[("container_id", &c.id), ("container_name", &c.name)],
                )
                .is_some()
                    && p.cpu_seconds(&c.id).is_some()
            })
        },
    );
    eprintln!(
        "both containers named on the page {:?} after docker run",
        started.elapsed()
    );
    for c in [&a, &b] {
        let info = page.series("container_info", &[("container_id", &c.id)]);
        assert_eq!(info.len(), 1, "one container_info for {}", c.name);
        let info = info[0];
        assert_eq!(info.value, 1.0);
        let l = &info.labels;
        assert_eq!(l.get("container_name").map(String::as_str), Some(&*c.name));
        assert_eq!(
            l.get("container_image_name").map(String::as_str),
            Some(IMAGE_NAME),
            "{l:?}"
        );
        assert_eq!(
            l.get("container_image_tags").map(String::as_str),
            Some(IMAGE_TAG),
            "{l:?}"
        );
        assert_eq!(
            l.get("container_runtime_name").map(String::as_str),
            Some("docker"),
            "{l:?}"
        );
        assert!(
            l.get("container_image_id")
                .is_some_and(|v| v.starts_with("sha256:")),
            "container_image_id: {l:?}"
        );
        // Identity labels on every series of the container.
        let series: Vec<&Sample> = page
            .samples
            .iter()
            .filter(|s| s.labels.get("container_id") == Some(&c.id))
            .collect();
        assert!(
            series.len() > 10,
            "only {} series for {}",
            series.len(),
            c.name
        );
        for s in &series {
            assert_eq!(s.labels.get("container_name"), Some(&c.name), "{s:?}");
            assert_eq!(
                s.labels.get("container_image_name").map(String::as_str),
                Some(IMAGE_NAME),
                "{s:?}"
            );
        }
        // `sleep` is one process; it uses memory.
        assert_eq!(
            page.get("container_pids", &[("container_id", &c.id)]),
            Some(1.0),
            "{}",
            page.container_lines(&c.id)
        );
        assert!(
            page.get("container_memory_usage_bytes", &[("container_id", &c.id)])
                .is_some_and(|v| v > 0.0),
            "{}",
            page.container_lines(&c.id)
        );
    }

    // Headers, and gzip when asked: the same bytes once decoded. Retry until no tick fell
    // between the plain reads around the gzip one (the page changes every tick).
    let mut same = false;
    for _ in 0..10 {
        let p1 = exp.get("/metrics", &[]);
        let gz = exp.get("/metrics", &[("Accept-Encoding", "gzip")]);
        let p2 = exp.get("/metrics", &[]);
        assert_eq!(
            p1.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        assert_eq!(p1.header("content-encoding"), None);
        assert_eq!(gz.status, 200);
        assert_eq!(
            gz.header("content-encoding"),
            Some("gzip"),
            "{:?}",
            gz.headers
        );
        assert!(
            gz.header("vary")
                .is_some_and(|v| v.eq_ignore_ascii_case("accept-encoding")),
            "{:?}",
            gz.headers
        );
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gz.body[..])
            .read_to_end(&mut decoded)
            .expect("the gzip body decodes");
        if p1.body == p2.body {
            assert_eq!(
                String::from_utf8_lossy(&decoded),
                p1.text(),
                "the gzip page differs from the plain one"
            );
            assert!(gz.body.len() < p1.body.len() / 3, "gzip barely compresses");
            same = true;
            break;
        }
    }
    assert!(same, "the page changed between every pair of reads");
    assert_eq!(exp.healthz(), 200);

    // Clean shutdown on SIGTERM (within the promised bound `stop` enforces).
    let (status, took) = exp.stop();
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}; log:\n{}",
        exp.log_tail()
    );
    eprintln!("exited cleanly {took:?} after SIGTERM");
}

// ---------------------------------------------------------------------------------------------
// 2. The final sample of a container shorter than one interval
// ---------------------------------------------------------------------------------------------

#[test]
fn a_container_shorter_than_an_interval_still_shows_its_cpu_time() {
    let _g = shared();
    let exp = Exporter::start(&["--interval", "10s"]);

    // Start the workload just after a tick, so it ends well before the next one.
    let c0 = exp.collections();
    exp.wait_for("a tick", Duration::from_secs(15), "", |p| {
        p.value("container_exporter_collections_total", &[]) > c0
    });
    let c = Container::run(&[], &["sh", "-c", "time timeout 2 yes >/dev/null"]);
    let started = Instant::now();
    c.wait_exit();
    let lived = started.elapsed();
    let own = busybox_time(&c.logs())
        .unwrap_or_else(|| panic!("no busybox `time` figures in the log:\n{}", c.logs()));
    eprintln!("the workload used {own:.2} s of CPU and exited {lived:?} after docker run");
    assert!(own > 0.3, "the workload barely ran: {own} s\n{}", c.logs());

    // A page rendered after the exit must carry the final sample: the one published as soon
    // as Docker said why it ended (with its exit series), else the next tick's. Keep the
    // container (Docker already removed its cgroup) until the page has shown it.
    let after_exit = exp.collections();
    let page = exp.wait_for(
        "a page rendered after the container's exit",
        Duration::from_secs(15),
        "",
        |p| {
            !p.series("container_exit_code", &[("container_id", &c.id)])
                .is_empty()
                || p.value("container_exporter_collections_total", &[]) > after_exit
        },
    );
    let cpu = page.cpu_seconds(&c.id).unwrap_or_else(|| {
        panic!(
            "the exited container {} is not on the page rendered after its exit (no final \
             sample). Its lines:\n{}\nExporter log:\n{}",
            c.id,
            page.container_lines(&c.id),
            exp.log_tail()
        )
    });
    eprintln!("final sample: {cpu:.3} s CPU (workload: {own:.2} s)");
    assert!(
        (cpu - own).abs() <= own * 0.10,
        "final CPU time {cpu:.3} s is not within 10 % of the workload's {own:.2} s:\n{}",
        page.container_lines(&c.id)
    );
    assert_eq!(
        page.get(
            "container_info",
            &[("container_id", &c.id), ("container_name", &c.name)]
        ),
        Some(1.0),
        "the exited container keeps its name:\n{}",
        page.container_lines(&c.id)
    );
    assert!(
        page.get("container_memory_peak_bytes", &[("container_id", &c.id)])
            .is_some_and(|v| v > 0.0),
        "the final sample has no memory peak:\n{}",
        page.container_lines(&c.id)
    );
    assert!(page.value("container_exporter_final_samples_total", &[]) >= 1.0);

    // Served once, removed: its series leave within a couple of ticks.
    c.remove();
    let gone = Instant::now();
    exp.wait_for(
        "the removed container's series leave the page",
        Duration::from_secs(35),
        &c.id,
        |p| !p.has_container(&c.id),
    );
    eprintln!(
        "its series left the page {:?} after docker rm",
        gone.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. A new container is found by inotify, not at the next rescan
// ---------------------------------------------------------------------------------------------

#[test]
fn a_new_container_is_found_by_inotify_not_by_a_rescan() {
    let _g = shared();
    let exp = Exporter::start(&["--interval", "1s"]);
    let page = exp.wait_for("a first collection", Duration::from_secs(10), "", |p| {
        p.value("container_exporter_collections_total", &[]) >= 1.0
    });
    let rescans = page.value(
        "container_exporter_discovery_events_total",
        &[("event", "rescan")],
    );

    let c = Container::run(&[], &["sleep", "60"]);
    let t0 = Instant::now();
    // Found by inotify, not by the rescan (5 min away): the rescan count below says which.
    // The wait's 60 s only ends a wait for a container never found.
    let page = exp.wait_for(
        "the new container on the page",
        Duration::from_secs(60),
        &c.id,
        |p| p.cpu_seconds(&c.id).is_some(),
    );
    let took = t0.elapsed();
    eprintln!("on the page {took:?} after docker run returned");
    assert_eq!(
        page.value(
            "container_exporter_discovery_events_total",
            &[("event", "rescan")]
        ),
        rescans,
        "a rescan ran: the container was not found by inotify"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. A Docker daemon that stops and comes back
// ---------------------------------------------------------------------------------------------

/// A second dockerd with its own data root, exec root, socket and bridge, removed with
/// everything it started when dropped. Its containers use the default cgroup parent
/// (`/docker/<id>`), where the exporter finds Docker containers.
struct SecondDockerd {
    dir: PathBuf,
    child: Option<Child>,
    /// Its default network's bridge (not `--bridge none`, which deletes the host's docker0);
    /// dropped after the daemon has stopped.
    bridge: TestBridge,
}

impl SecondDockerd {
    fn host(&self) -> String {
        format!("unix://{}/docker.sock", self.dir.display())
    }

    fn new() -> SecondDockerd {
        require_docker();
        let dir = std::env::temp_dir().join(format!("{}-dockerd", unique_name()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let mut d = SecondDockerd {
            dir,
            child: None,
            bridge: TestBridge::new(),
        };
        d.start();
        // The test image, from the main daemon.
        let mut save = Command::new("docker")
            .args(["save", IMAGE])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker save");
        let load = Command::new("docker")
            .args(["-H", &d.host(), "load", "-q"])
            .stdin(save.stdout.take().unwrap())
            .output()
            .expect("docker load");
        assert!(save.wait().unwrap().success(), "docker save {IMAGE} failed");
        assert!(
            load.status.success(),
            "docker load into the second daemon: {}",
            String::from_utf8_lossy(&load.stderr)
        );
        d
    }

    fn start(&mut self) {
        let dir = &self.dir;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("dockerd.log"))
            .expect("dockerd log");
        let p = |s: &str| dir.join(s).display().to_string();
        let child = Command::new("dockerd")
            .args([
                "--data-root",
                &p("root"),
                "--exec-root",
                &p("exec"),
                "--pidfile",
                &p("docker.pid"),
                "-H",
                &self.host(),
                "--bridge",
                &self.bridge.name,
                "--iptables=false",
                "--ip6tables=false",
                // Containers outlive the daemon, as in production: the exporter must keep
                // reporting them by id meanwhile.
                "--live-restore",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dockerd: {e}; run {DOCKER_SETUP} first"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if docker_at(Some(&self.host()), &["info", "--format", "{{.ID}}"])
                .status
                .success()
            {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "the second dockerd exited ({st}); its log:\n{}",
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the second dockerd did not answer within 60 s; its log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_tail(&self) -> String {
        log_tail(&self.dir.join("dockerd.log"), 30)
    }

    /// SIGTERM and wait (dockerd, then the containerd it started).
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the second dockerd did not exit within 30 s of SIGTERM; log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Processes whose command line names this daemon's directory (containerd, shims).
    fn leftovers(&self) -> Vec<i32> {
        let needle = self.dir.display().to_string();
        let mut pids = Vec::new();
        for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmdline) = fs::read(e.path().join("cmdline")) else {
                continue;
            };
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for SecondDockerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- second dockerd log, tail ---\n{}", self.log_tail());
        }
        let host = self.host();
        if self.child.is_some() {
            let ids = stdout(&docker_at(Some(&host), &["ps", "-aq"]));
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(ids);
                let _ = docker_at(Some(&host), &args);
            }
        }
        if let Some(mut child) = self.child.take() {
            terminate(
                &mut child,
                Duration::from_secs(30),
                Duration::from_millis(100),
            );
        }
        // containerd and shims of this daemon go too (they are ours).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                break;
            }
            let sig = if Instant::now() > deadline {
                Signal::SIGKILL
            } else {
                Signal::SIGTERM
            };
            for pid in left {
                let _ = kill(Pid::from_raw(pid), sig);
            }
            std::thread::sleep(Duration::from_millis(200));
            if Instant::now() > deadline + Duration::from_secs(5) {
                eprintln!(
                    "processes of the second dockerd survive: {:?}",
                    self.leftovers()
                );
                break;
            }
        }
        // Whatever it left mounted under its directory, then the directory.
        let needle = self.dir.display().to_string();
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&needle))
            .collect();
        points.reverse();
        for m in points {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn collection_survives_a_docker_daemon_restart_and_names_return() {
    let _g = shared();
    let mut dockerd = SecondDockerd::new();
    let host = dockerd.host();
    let exp = Exporter::start(&["--interval", "1s", "--docker-host", &host]);

    let a = Container::run_at(Some(&host), &[], &["sleep", "300"]);
    exp.wait_for(
        "the container of the second daemon, named",
        Duration::from_secs(10),
        &a.id,
        |p| {
            p.get(
                "container_info",
                &[("container_id", &a.id), ("container_name", &a.name)],
            )
            .is_some()
                && p.value(
                    "container_exporter_metadata_connected",
                    &[("source", "docker")],
                ) == 1.0
        },
    );
    let page = exp.metrics();
    let errors_before = page.value(
        "container_exporter_metadata_api_errors_total",
        &[("source", "docker")],
    );

    // The daemon goes away.
    let t = Instant::now();
    dockerd.stop();
    eprintln!("second dockerd stopped in {:?}", t.elapsed());
    let mut last_collections = 0.0;
    let page = exp.wait_for(
        "metadata_connected{source=\"docker\"} 0 and a Docker API error counted",
        Duration::from_secs(20),
        "",
        |p| {
            let c = p.value("container_exporter_collections_total", &[]);
            assert!(c >= last_collections, "collections_total went backwards");
            last_collections = c;
            assert_eq!(exp.healthz(), 200, "/healthz while Docker is down");
            p.value(
                "container_exporter_metadata_connected",
                &[("source", "docker")],
            ) == 0.0
                && p.value(
                    "container_exporter_metadata_api_errors_total",
                    &[("source", "docker")],
                ) > errors_before
        },
    );
    // Collection goes on, and the container that outlived its daemon is still reported.
    let c = page.value("container_exporter_collections_total", &[]);
    let page = exp.wait_for(
        "collection going on while Docker is down",
        Duration::from_secs(10),
        "",
        |p| {
            assert_eq!(exp.healthz(), 200, "/healthz while Docker is down");
            p.value("container_exporter_collections_total", &[]) >= c + 3.0
        },
    );
    assert!(
        page.cpu_seconds(&a.id).is_some(),
        "the running container left the page while Docker was down:\n{}",
        page.container_lines(&a.id)
    );

    // The daemon comes back: a new container is named within seconds, the old one too.
    let t = Instant::now();
    dockerd.start();
    eprintln!("second dockerd restarted in {:?}", t.elapsed());
    let b = Container::run_at(Some(&host), &[], &["sleep", "300"]);
    let t = Instant::now();
    exp.wait_for(
        "the new container named after the daemon's return",
        Duration::from_secs(10),
        &b.id,
        |p| {
            assert_eq!(exp.healthz(), 200);
            p.get(
                "container_info",
                &[("container_id", &b.id), ("container_name", &b.name)],
            )
            .is_some()
                && p.get(
                    "container_info",
                    &[("container_id", &a.id), ("container_name", &a.name)],
                )
                .is_some()
                && p.value(
                    "container_exporter_metadata_connected",
                    &[("source", "docker")],
                ) == 1.0
        },
    );
    eprintln!("names back {:?} after docker run", t.elapsed());
    drop((a, b));
    drop(exp);
    drop(dockerd);
    // The second daemon ran on a bridge of its own: the host's docker0 is still there, and
    // the host's daemon still starts containers on it.
    assert_docker0_usable();
}

// ---------------------------------------------------------------------------------------------
// 5. Churn: descriptors and watches return to their baseline
// ---------------------------------------------------------------------------------------------

#[test]
fn churn_of_50_containers_leaves_no_descriptors_watches_or_series() {
    let _g = alone();
    let exp = Exporter::start(&["--interval", "1s"]);
    let pid = exp.pid();
    exp.wait_for("a first collection", Duration::from_secs(10), "", |p| {
        p.value("container_exporter_collections_total", &[]) >= 2.0
    });
    let watches_metric = |p: &Page| {
        p.value(
            "container_exporter_inotify_watches",
            &[("kind", "directory")],
        ) + p.value(
            "container_exporter_inotify_watches",
            &[("kind", "cgroup_events")],
        )
    };
    let page = exp.metrics();
    let tracked_before = page.value("container_exporter_containers_tracked", &[]);
    let (fds0, watches0) = fds_and_watches(pid);
    assert_eq!(
        watches_metric(&page) as usize,
        watches0,
        "container_exporter_inotify_watches disagrees with fdinfo at the start"
    );
    eprintln!(
        "baseline: {fds0} descriptors, {watches0} inotify watches, {tracked_before} containers"
    );

    let mut names = Names(Vec::new());
    let mut ids = Vec::new();
    let (mut peak_fds, mut peak_watches) = (fds0, watches0);
    for round in 0..5 {
        let batch: Vec<String> = (0..10).map(|_| unique_name()).collect();
        names.0.extend(batch.iter().cloned());
        let children: Vec<Child> = batch
            .iter()
            .map(|n| {
                Command::new("docker")
                    .args(["run", "-d", "--network", "none", "--name", n, IMAGE])
                    .args(["sleep", "30"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("docker run")
            })
            .collect();
        let mut batch_ids = Vec::new();
        for ch in children {
            let out = ch.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "docker run (round {round}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            batch_ids.push(stdout(&out));
        }
        // Let the exporter pick them up (it should, within a tick) before they go.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let page = exp.metrics();
            let missing: Vec<&String> = batch_ids
                .iter()
                .filter(|id| !page.has_container(id))
                .collect();
            if missing.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let log = exp.log_text();
                let about: Vec<String> = missing
                    .iter()
                    .map(|id| {
                        let cgroups: Vec<String> = ["memory", "unified", "cpu"]
                            .iter()
                            .map(|h| {
                                let p = format!("/sys/fs/cgroup/{h}/docker/{id}");
                                format!("{h}: {}", Path::new(&p).exists())
                            })
                            .collect();
                        let lines: Vec<&str> = log.lines().filter(|l| l.contains(*id)).collect();
                        format!(
                            "{id}: cgroup dirs {cgroups:?}; docker state {}; log:\n{}",
                            stdout(&docker(&["inspect", "-f", "{{.State.Status}}", id])),
                            lines.join("\n")
                        )
                    })
                    .collect();
                panic!(
                    "round {round}: {} of 10 containers not on the page after 10 s:\n{}",
                    missing.len(),
                    about.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let (f, w) = fds_and_watches(pid);
        peak_fds = peak_fds.max(f);
        peak_watches = peak_watches.max(w);
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(batch.iter().map(String::as_str));
        let out = docker(&args);
        assert!(
            out.status.success(),
            "docker rm -f (round {round}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ids.extend(batch_ids);
    }
    eprintln!("peak during churn: {peak_fds} descriptors, {peak_watches} watches");
    assert!(
        peak_fds >= fds0 + 10 * 5,
        "ten containers should hold many descriptors (baseline {fds0}, peak {peak_fds}): \
         the measurement is not measuring"
    );

    // Everything returns. The self-metric is set at each tick, fdinfo is live: poll until they
    // meet at the baseline.
    let slack = 3;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = exp.metrics();
        let (fds, watches) = fds_and_watches(pid);
        let left: Vec<&String> = ids.iter().filter(|id| page.has_container(id)).collect();
        let tracked = page.value("container_exporter_containers_tracked", &[]);
        let metric = watches_metric(&page) as usize;
        let ok = left.is_empty()
            // (containers of other programs on the host may only have gone meanwhile)
            && tracked <= tracked_before
            && fds <= fds0 + slack
            && watches <= watches0
            && metric == watches;
        if ok {
            eprintln!(
                "after churn: {fds} descriptors (baseline {fds0}), {watches} watches \
                 (baseline {watches0}), self-metric {metric}"
            );
            break;
        }
        if Instant::now() > deadline {
            let fd_list: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| {
                    format!(
                        "{} -> {}",
                        e.file_name().to_string_lossy(),
                        fs::read_link(e.path()).unwrap_or_default().display()
                    )
                })
                .collect();
            panic!(
                "30 s after the churn: {} of our containers still on the page, {tracked} \
                 tracked (before: {tracked_before}), {fds} descriptors (baseline {fds0}, \
                 slack {slack}), {watches} inotify watches in fdinfo (baseline {watches0}), \
                 self-metric says {metric}.\nDescriptors:\n{}",
                left.len(),
                fd_list.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Label keys that collide on the page
// ---------------------------------------------------------------------------------------------

/// `com.example.team` and `com-example-team` are both `container_label_com_example_team` on
/// the page: the first key in byte order wins, every time, and the loss is said once.
#[test]
fn colliding_label_keys_are_decided_by_key_order_and_warned_about_once() {
    let _g = shared();
    let exp = Exporter::start(&["--interval", "1s", "--container-labels", "com*"]);
    let c = Container::run(
        &[
            "--label",
            "com.example.team=dots",
            "--label",
            "com-example-team=dashes",
        ],
        &["sleep", "60"],
    );
    let page = exp.wait_for(
        "the container's info with its label",
        Duration::from_secs(15),
        &c.id,
        |p| {
            !p.series("container_info", &[("container_id", &c.id)])
                .is_empty()
                && p.series("container_info", &[("container_id", &c.id)])[0]
                    .labels
                    .contains_key("container_label_com_example_team")
        },
    );
    let info = &page.series("container_info", &[("container_id", &c.id)])[0];
    // '-' (0x2d) sorts before '.' (0x2e).
    assert_eq!(info.labels["container_label_com_example_team"], "dashes");
    // A few more ticks: still one warning.
    let n = page.value("container_exporter_collections_total", &[]);
    exp.wait_for("three more ticks", Duration::from_secs(15), "", |p| {
        p.value("container_exporter_collections_total", &[]) >= n + 3.0
    });
    let log = exp.log_text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("container_label_com_example_team"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("com.example.team"), "{}", warnings[0]);
}
