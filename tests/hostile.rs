//! Hostile cgroup trees (issue 18): what sits where a cgroup directory or file should be must
//! never hang the daemon, `snapshot` or `check`.
//! - A FIFO in place of a container's directory in a secondary hierarchy, or in place of
//!   `mountinfo`: opened as a directory (or a regular file) and never blocking, it is refused
//!   at once, and everything else is read.
//! - A hung filesystem (a FUSE mount that never answers, as a dead FUSE daemon or network
//!   mount leaves it) in place of a cgroup file or directory: no open or read of it ever
//!   returns, so the bound is what counts. The daemon's watchdog names the file when ticks
//!   stop, SIGTERM ends it non-zero within seconds; `snapshot` and `check` end non-zero
//!   within their stated bound (10 s for one operation), naming the file.
//!
//! The trees are the test's own (a hybrid layout: v1 controllers plus a cgroup2, "mounted" by
//! a `mountinfo` of the test's), since cgroupfs itself cannot hold a FIFO or a FUSE mount.
//! Needs root (FUSE mounts).

mod common;

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::exporter::Exporter;
use common::{HTTP_TIMEOUT, TempDir, free_port, http_request, unique_name};
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;

/// The v1 controllers of the tree, each its own mount, and the cgroup2.
const V1: &[&str] = &["memory", "cpu", "cpuacct", "pids", "blkio"];

/// A hybrid cgroup tree of the test's own: `<tmp>/cg/<controller>` and `<tmp>/cg/unified`,
/// "mounted" by `<tmp>/proc/self/mountinfo`, holding Docker-shaped containers.
struct HybridTree {
    tmp: TempDir,
}

impl HybridTree {
    fn new() -> HybridTree {
        let tmp = TempDir::new();
        fs::create_dir_all(tmp.0.join("proc/self")).unwrap();
        let mut mountinfo = String::new();
        for (n, c) in V1.iter().enumerate() {
            let at = tmp.0.join("cg").join(c);
            fs::create_dir_all(&at).unwrap();
            mountinfo.push_str(&format!(
                "{} 25 0:{} / {} rw,nosuid - cgroup cgroup rw,{c}\n",
                40 + n,
                40 + n,
                at.display()
            ));
        }
        let unified = tmp.0.join("cg/unified");
        fs::create_dir_all(&unified).unwrap();
        mountinfo.push_str(&format!(
            "50 25 0:50 / {} rw,nosuid - cgroup2 cgroup2 rw\n",
            unified.display()
        ));
        fs::write(tmp.0.join("proc/self/mountinfo"), mountinfo).unwrap();
        HybridTree { tmp }
    }

    fn root(&self) -> String {
        self.tmp.0.join("cg").display().to_string()
    }

    fn proc_root(&self) -> String {
        self.tmp.0.join("proc").display().to_string()
    }

    /// A container's directory in one hierarchy (`memory`, `cpu`, …, `unified`).
    fn dir(&self, hier: &str, id: &str) -> PathBuf {
        self.tmp.0.join("cg").join(hier).join("docker").join(id)
    }

    /// A running container with sound files in every hierarchy.
    fn container(&self, id: &str) {
        let files: &[(&str, &[(&str, &str)])] = &[
            (
                "memory",
                &[
                    ("memory.usage_in_bytes", "4096\n"),
                    ("memory.limit_in_bytes", "1073741824\n"),
                    (
                        "memory.stat",
                        "total_rss 1024\ntotal_cache 2048\ntotal_inactive_file 512\n",
                    ),
                ],
            ),
            (
                "cpu",
                &[
                    ("cpu.cfs_quota_us", "-1\n"),
                    ("cpu.cfs_period_us", "100000\n"),
                    (
                        "cpu.stat",
                        "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
                    ),
                ],
            ),
            (
                "cpuacct",
                &[
                    ("cpuacct.usage", "1000000\n"),
                    ("cpuacct.stat", "user 1\nsystem 1\n"),
                ],
            ),
            ("pids", &[("pids.current", "1\n"), ("pids.max", "max\n")]),
            ("blkio", &[]),
            (
                "unified",
                &[
                    ("cgroup.events", "populated 1\nfrozen 0\n"),
                    ("cgroup.procs", ""),
                    (
                        "cpu.stat",
                        "usage_usec 1000\nuser_usec 600\nsystem_usec 400\n",
                    ),
                ],
            ),
        ];
        for (hier, files) in files {
            let dir = self.dir(hier, id);
            fs::create_dir_all(&dir).unwrap();
            for (name, content) in *files {
                fs::write(dir.join(name), content).unwrap();
            }
        }
    }

    fn args<'a>(&'a self, root: &'a str, proc_root: &'a str) -> Vec<&'a str> {
        vec![
            "--cgroup-root",
            root,
            "--proc-root",
            proc_root,
            "--docker-host",
            "off",
            "--podman-host",
            "off",
            "--cri-endpoint",
            "off",
        ]
    }
}

fn fifo_at(path: &Path) {
    if path.is_dir() {
        fs::remove_dir_all(path).unwrap();
    } else if path.exists() {
        fs::remove_file(path).unwrap();
    }
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o644)).unwrap();
}

/// A FUSE filesystem mounted over a file or directory whose daemon never answers (the
/// mount's `/dev/fuse` descriptor is held and never read): every open, stat or read of it
/// blocks, as on a hung FUSE or network mount. Dropped: the descriptor is closed (blocked
/// callers get ENOTCONN) and the mount is detached.
struct HungMount {
    at: PathBuf,
    fuse: Option<OwnedFd>,
}

impl HungMount {
    fn over(at: &Path) -> HungMount {
        let fuse = nix::fcntl::open("/dev/fuse", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
            .expect("open /dev/fuse (the FUSE module must be loaded)");
        let rootmode = if at.is_dir() { 0o040000 } else { 0o100000 };
        let opts = format!(
            "fd={},rootmode={rootmode:o},user_id=0,group_id=0",
            fuse.as_raw_fd()
        );
        mount(
            Some("ce-hung"),
            at,
            Some("fuse"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(opts.as_str()),
        )
        .unwrap_or_else(|e| panic!("mount a FUSE filesystem on {}: {e}", at.display()));
        HungMount {
            at: at.to_path_buf(),
            fuse: Some(fuse),
        }
    }
}

impl Drop for HungMount {
    fn drop(&mut self) {
        drop(self.fuse.take());
        let _ = umount2(&self.at, MntFlags::MNT_DETACH);
    }
}

/// Runs the binary; kills it if it has not ended within `limit`. Returns the status (`None`
/// when it had to be killed), how long it ran and what it printed.
fn run_bounded(args: &[&str], limit: Duration) -> (Option<ExitStatus>, Duration, String) {
    let log = std::env::temp_dir().join(format!("{}-out.log", unique_name()));
    let f = fs::File::create(&log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_container-exporter"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .expect("run container-exporter");
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    let text = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_file(&log);
    (status, took, text)
}

/// Starts the daemon and waits only for its HTTP server (a stuck collector never gets ready).
fn start_unready(args: &[&str]) -> Exporter {
    let port = free_port();
    let log = std::env::temp_dir().join(format!("{}-exporter.log", unique_name()));
    let f = fs::File::create(&log).unwrap();
    let listen = format!("127.0.0.1:{port}");
    let child: Child = Command::new(env!("CARGO_BIN_EXE_container-exporter"))
        .args(["--prometheus-listen", &listen, "--log-level", "debug"])
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .expect("start container-exporter");
    let exp = Exporter {
        child: Some(child),
        port,
        log,
        group: false,
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while http_request(port, "/healthz", &[], HTTP_TIMEOUT).is_err() {
        assert!(
            Instant::now() < deadline,
            "no HTTP server within 15 s:\n{}",
            exp.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    exp
}

const ID: &str = "f1f0f1f0f1f0f1f0f1f0f1f0f1f0f1f0f1f0f1f0f1f0f1f0f1f0f1f0f1f0f1f0";
const OTHER: &str = "0a0b0a0b0a0b0a0b0a0b0a0b0a0b0a0b0a0b0a0b0a0b0a0b0a0b0a0b0a0b0a0b";

/// The daemon with a FIFO where a container's directory in a secondary hierarchy (`cpu`)
/// should be: ready at its first tick, the container on the page with what the other
/// hierarchies hold, one warning naming the FIFO, and SIGTERM ends it at once with status 0.
#[test]
fn daemon_fifo_in_place_of_a_containers_directory() {
    let tree = HybridTree::new();
    tree.container(ID);
    tree.container(OTHER);
    fifo_at(&tree.dir("cpu", ID));
    let (root, proc_root) = (tree.root(), tree.proc_root());
    let mut args = tree.args(&root, &proc_root);
    args.extend(["--interval", "500ms"]);
    // Ready within 15 s, or this fails.
    let mut exp = Exporter::start_with_env(&args, &[]);
    let page = exp.wait_for("both containers read", Duration::from_secs(10), ID, |p| {
        p.get("container_memory_usage_bytes", &[("container_id", ID)]) == Some(4096.0)
            && p.get("container_memory_usage_bytes", &[("container_id", OTHER)]) == Some(4096.0)
    });
    assert!(
        page.cpu_seconds(ID).is_some(),
        "{}",
        page.container_lines(ID)
    );
    assert_eq!(exp.healthz(), 200);
    // Said once, when the few seconds a new container's directories are looked for again
    // are over, naming the FIFO.
    let fifo = tree.dir("cpu", ID).display().to_string();
    let said = |log: &str| {
        log.lines()
            .filter(|l| l.contains("WARN") && l.contains("not a directory") && l.contains(&fifo))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while said(&exp.log_text()) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no warning naming {fifo}:\n{}",
            exp.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Not again, at any of the next ticks (counted, at 500 ms each).
    let ticks = exp.collections();
    exp.wait_for("four more ticks", Duration::from_secs(60), "", |p| {
        p.value("container_exporter_collections_total", &[]) >= ticks + 4.0
    });
    assert_eq!(said(&exp.log_text()), 1, "{}", exp.log_tail());
    // SIGTERM ends it with status 0, within the promised bound `stop` enforces.
    let (status, took) = exp.stop();
    assert!(
        status.success(),
        "exit status {status} ({took:?} after SIGTERM)"
    );
}

#[test]
fn snapshot_and_check_fifo_in_place_of_a_containers_directory() {
    let tree = HybridTree::new();
    tree.container(ID);
    fifo_at(&tree.dir("cpu", ID));
    fifo_at(&tree.dir("pids", ID));
    let (root, proc_root) = (tree.root(), tree.proc_root());
    let mut args = tree.args(&root, &proc_root);
    args.extend(["snapshot", "--format", "json"]);
    let (status, took, out) = run_bounded(&args, Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "snapshot: {status:?} after {took:?}:\n{out}"
    );
    let json_start = out.find('{').expect("a JSON document");
    let doc: serde_json::Value = serde_json::from_str(
        out[json_start..]
            .lines()
            .take_while(|l| !l.starts_with(char::is_numeric))
            .collect::<Vec<_>>()
            .join("\n")
            .as_str(),
    )
    .unwrap_or_else(|e| panic!("snapshot's JSON: {e}\n{out}"));
    let c = &doc["containers"][0];
    assert_eq!(c["resource"]["container.id"], ID, "{out}");
    let memory = c["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "container.memory.usage")
        .unwrap_or_else(|| panic!("no memory usage:\n{out}"));
    assert_eq!(memory["value"], 4096);

    let mut args = tree.args(&root, &proc_root);
    args.extend(["check"]);
    let (status, took, out) = run_bounded(&args, Duration::from_secs(20));
    assert!(status.is_some(), "check hung ({took:?}):\n{out}");
    assert!(out.contains("1 found by cgroup path"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

/// A FIFO where `<proc-root>/self/mountinfo` should be: every command says at once that it
/// cannot read it, instead of waiting for a writer.
#[test]
fn a_fifo_in_place_of_mountinfo_is_refused_at_once() {
    let tree = HybridTree::new();
    let mountinfo = tree.tmp.0.join("proc/self/mountinfo");
    fifo_at(&mountinfo);
    let (root, proc_root) = (tree.root(), tree.proc_root());
    for command in [
        &["snapshot"][..],
        &["check"],
        &["--prometheus-listen", "off"],
    ] {
        let mut args = tree.args(&root, &proc_root);
        args.extend(command);
        // Refused at once (it is not a regular file), not given up after the 10 s an
        // operation may block: the message says which. 60 s only ends a hang.
        let (status, took, out) = run_bounded(&args, Duration::from_secs(60));
        assert!(
            status.is_some_and(|s| s.code() == Some(1)),
            "{command:?}: {status:?} after {took:?}:\n{out}"
        );
        assert!(
            out.contains(&mountinfo.display().to_string()) && out.contains("not a regular file"),
            "{command:?}: the message names the file:\n{out}"
        );
        assert!(
            !out.contains("stuck for"),
            "{command:?}: blocked on the FIFO until the bound ({took:?}):\n{out}"
        );
    }
}

/// A hung filesystem over a container's `memory.stat`: the daemon cannot finish its first
/// tick. Its HTTP server answers; `/readyz` stays 503; when the liveness limit passes
/// (3 intervals + 30 s) the log says which file the collector is stuck on and `/healthz`
/// fails; SIGTERM ends it within seconds, with a non-zero status.
#[test]
fn daemon_stuck_on_a_hung_file_names_it_and_exits_non_zero() {
    let tree = HybridTree::new();
    tree.container(ID);
    let file = tree.dir("memory", ID).join("memory.stat");
    let _hung = HungMount::over(&file);
    let (root, proc_root) = (tree.root(), tree.proc_root());
    let mut args = tree.args(&root, &proc_root);
    args.extend(["--interval", "100ms"]);
    let mut exp = start_unready(&args);
    assert_eq!(exp.get("/readyz", &[]).status, 503);
    let file = file.display().to_string();
    // A promised bound: the stall is said once the liveness limit (3 intervals + 30 s) has
    // passed; 90 s is a wide margin, and ends a wait for a stall never said.
    let deadline = Instant::now() + Duration::from_secs(90);
    let line = loop {
        let log = exp.log_text();
        if let Some(l) = log.lines().find(|l| l.contains("collection has stalled")) {
            break l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no stall logged within 90 s:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        line.contains(&format!("stuck opening {file}")),
        "the line names the file: {line}"
    );
    assert_eq!(exp.healthz(), 503);
    assert_eq!(exp.get("/readyz", &[]).status, 503);
    // A promised bound: it waits 3 s for the stuck collector, then exits; `stop` fails the
    // test past its wide SHUTDOWN_BOUND.
    let (status, took) = exp.stop();
    assert_eq!(
        status.code(),
        Some(1),
        "exit status {status} ({took:?} after SIGTERM)"
    );
    let log = exp.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("did not stop") && l.contains(&file)),
        "the shutdown names the file:\n{log}"
    );
}

/// `snapshot` over a hung file, and over a hung directory of a secondary hierarchy: it ends
/// within its bound (10 s for one operation), non-zero, naming what it was stuck on.
#[test]
fn snapshot_ends_within_its_bound_on_a_hung_tree() {
    for (hier, name) in [("memory", Some("memory.stat")), ("pids", None)] {
        let tree = HybridTree::new();
        tree.container(ID);
        let at = match name {
            Some(n) => tree.dir(hier, ID).join(n),
            None => tree.dir(hier, ID),
        };
        let _hung = HungMount::over(&at);
        let (root, proc_root) = (tree.root(), tree.proc_root());
        let mut args = tree.args(&root, &proc_root);
        args.extend(["snapshot"]);
        let (status, took, out) = run_bounded(&args, Duration::from_secs(90));
        assert!(
            status.is_some_and(|s| s.code() == Some(1)),
            "{}: {status:?} after {took:?}:\n{out}",
            at.display()
        );
        assert!(
            out.contains(&format!("stuck for 10 s opening {}", at.display())),
            "the error names {}:\n{out}",
            at.display()
        );
        // A promised bound: 10 s for one operation (60 s in all); 20 s more is a wide margin.
        assert!(took < Duration::from_secs(30), "took {took:?}");
    }
}

/// `check` over a hung file: it ends within its bound, non-zero, with a FAIL line naming the
/// file, and still checks what needs no tree.
#[test]
fn check_ends_within_its_bound_on_a_hung_tree() {
    let tree = HybridTree::new();
    tree.container(ID);
    let file = tree.dir("memory", ID).join("memory.stat");
    let _hung = HungMount::over(&file);
    let (root, proc_root) = (tree.root(), tree.proc_root());
    let mut args = tree.args(&root, &proc_root);
    args.extend(["check"]);
    let (status, took, out) = run_bounded(&args, Duration::from_secs(90));
    assert!(
        status.is_some_and(|s| s.code() == Some(1)),
        "{status:?} after {took:?}:\n{out}"
    );
    let fail = out
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_else(|| panic!("no FAIL line:\n{out}"));
    assert!(
        fail.contains(&format!("stuck for 10 s opening {}", file.display())),
        "{fail}"
    );
    assert!(
        out.contains("ok    cgroups"),
        "what came before is kept:\n{out}"
    );
    assert!(
        out.contains("prometheus"),
        "the outputs are still checked:\n{out}"
    );
    // A promised bound: 10 s for one operation (60 s in all); 20 s more is a wide margin.
    assert!(took < Duration::from_secs(30), "took {took:?}");
}
