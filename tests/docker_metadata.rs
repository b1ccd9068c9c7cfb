//! Docker metadata (`src/metadata/sources/docker.rs`) against real Docker daemons.
//!
//! - The host's daemon: names, image, tags, image id, allowed labels and Kubernetes labels of
//!   busybox containers (`ce-busybox:test`, built by `.ci/docker-up.sh`) reach the store within
//!   seconds of `docker run`; a rename is followed; a removed container leaves the store after
//!   the removal delay.
//! - No daemon at all: errors are counted, retries back off, nothing panics, shutdown is prompt.
//! - A second dockerd of the test's own (own data root, exec root, socket and cgroup parent, so
//!   it can be stopped without touching the host's daemon and its containers stay out of other
//!   tests' cgroup discovery): after it is stopped and started again, names of new containers
//!   come back within seconds and `reconnects` counts the return. It has a bridge of its own
//!   (`--bridge none` would delete the host's `docker0`), and the host's daemon can still start
//!   a container on its default bridge network afterwards.
//!
//! These tests need root and a running dockerd: run `.ci/docker-up.sh` first. Without Docker
//! they fail (they do not skip). Names carry the process id, so they run in parallel with the
//! other test files.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use container_exporter::metadata::sources::docker::{DockerConfig, run};
use container_exporter::metadata::{MetadataStore, SourceStats};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use common::bridge::{TestBridge, assert_docker0_usable};
use common::{Container, IMAGE, docker_at, require_docker};

// ---------------------------------------------------------------------------------------------
// Docker CLI helpers
// ---------------------------------------------------------------------------------------------

fn docker_ok(host: Option<&str>, args: &[&str]) -> String {
    let out = docker_at(host, args);
    assert!(
        out.status.success(),
        "`docker {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A `sleep 600` busybox container on the daemon at `host`, removed on drop.
fn sleeper(host: Option<&str>, extra: &[&str]) -> Container {
    // `sleep` as pid 1 ignores SIGTERM: without this a daemon shutdown waits 10 s for it.
    let mut args = vec!["--stop-timeout", "1"];
    args.extend(extra);
    Container::run_at(host, &args, &["sleep", "600"])
}

// ---------------------------------------------------------------------------------------------
// The follower under test
// ---------------------------------------------------------------------------------------------

/// `run` spawned on the test's runtime, stopped by `stop` (or by drop, unchecked).
struct Follower {
    store: MetadataStore,
    stats: Arc<SourceStats>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Follower {
    fn start(cfg: DockerConfig) -> Follower {
        let store = MetadataStore::new();
        let stats = Arc::new(SourceStats::default());
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(run(cfg, store.clone(), stats.clone(), async {
            let _ = rx.await;
        }));
        Follower {
            store,
            stats,
            stop: Some(tx),
            task: Some(task),
        }
    }

    fn api_errors(&self) -> u64 {
        self.stats.api_errors.load(Ordering::Relaxed)
    }
    fn reconnects(&self) -> u64 {
        self.stats.reconnects.load(Ordering::Relaxed)
    }
    fn connected(&self) -> bool {
        self.stats.connected.load(Ordering::Relaxed)
    }

    /// Shutdown must end `run`, whatever state it is in.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        // A promised bound: shutdown ends `run` (it waits on nothing). 10 s is a wide margin
        // for a loaded machine, and ends a hang.
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("run did not return within 10 s of shutdown")
            .expect("run panicked");
        assert!(!self.connected(), "still marked connected after shutdown");
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes; returns how long it took.
async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The host's daemon
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_follows_the_host_daemon() {
    require_docker();
    let k8s = [
        "--label",
        "io.kubernetes.pod.name=web-0",
        "--label",
        "io.kubernetes.pod.namespace=prod",
        "--label",
        "io.kubernetes.container.name=app",
        "--label",
        "io.kubernetes.pod.uid=0b0e6b0c-8c51-4d43-9a3f-0d5a7b0b6c1e",
    ];
    let mut extra = vec!["--label", "team=a", "--label", "secret=x"];
    extra.extend(k8s);
    // One container before the follower starts (found by the initial list), one after (found
    // through the events stream).
    let before = sleeper(None, &extra);
    let f = Follower::start(DockerConfig {
        host: None,
        label_globs: vec!["team".into(), "io.*".into()],
        removal_delay: Duration::from_secs(3),
        ..Default::default()
    });
    wait_for("the listed container", Duration::from_secs(10), || {
        f.store.get(&before.id).is_some()
    })
    .await;
    let after = sleeper(None, &["--label", "team=b", "--label", "secret=y"]);
    wait_for("the started container", Duration::from_secs(30), || {
        f.store.get(&after.id).is_some()
    })
    .await;
    assert!(f.connected());

    let m = f.store.get(&before.id).unwrap();
    assert_eq!(m.name.as_deref(), Some(before.name.as_str()));
    assert_eq!(m.image_name.as_deref(), Some("ce-busybox"));
    assert_eq!(m.image_tags, ["test"]);
    let image_id = docker_ok(None, &["inspect", "--format", "{{.Image}}", &before.id]);
    assert!(image_id.starts_with("sha256:"), "{image_id}");
    assert_eq!(m.image_id.as_deref(), Some(image_id.as_str()));
    let keys: Vec<&str> = m.labels.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "io.kubernetes.container.name",
            "io.kubernetes.pod.name",
            "io.kubernetes.pod.namespace",
            "io.kubernetes.pod.uid",
            "team"
        ],
        "allow-list [team, io.*] must keep these and drop `secret`"
    );
    assert_eq!(m.labels[4].1, "a");
    assert_eq!(m.k8s_pod_name.as_deref(), Some("web-0"));
    assert_eq!(m.k8s_namespace_name.as_deref(), Some("prod"));
    assert_eq!(m.k8s_container_name.as_deref(), Some("app"));
    assert_eq!(
        m.k8s_pod_uid.as_deref(),
        Some("0b0e6b0c-8c51-4d43-9a3f-0d5a7b0b6c1e")
    );
    let age = SystemTime::now()
        .duration_since(m.started_at.expect("StartedAt"))
        .expect("StartedAt in the future");
    assert!(age < Duration::from_secs(60), "StartedAt {age:?} ago");

    let m = f.store.get(&after.id).unwrap();
    assert_eq!(m.name.as_deref(), Some(after.name.as_str()));
    assert_eq!(m.labels, [("team".to_owned(), "b".to_owned())]);
    assert_eq!(m.k8s_pod_name, None);

    // Rename: the new name arrives and the generation moves, so renderers refresh.
    let generation = f.store.generation();
    let new_name = format!("{}-renamed", after.name);
    docker_ok(None, &["rename", &after.id, &new_name]);
    wait_for("the new name", Duration::from_secs(30), || {
        f.store.get(&after.id).unwrap().name.as_deref() == Some(new_name.as_str())
    })
    .await;
    assert!(f.store.generation() > generation);

    // Removal: the entry outlives the container by the removal delay (the exporter's final
    // sample needs the name), then goes. Timed from before `docker rm`: its `die` cannot come
    // earlier, so the entry must stay at least the delay from then.
    let removing = Instant::now();
    docker_ok(None, &["rm", "-f", &after.id]);
    // A promised bound: gone after the delay (3 s); 30 s only ends a wait for an entry that
    // never goes.
    wait_for(
        "the removed container to leave",
        Duration::from_secs(30),
        || f.store.get(&after.id).is_none(),
    )
    .await;
    let took = removing.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "left {took:?} after `docker rm` began, before the removal delay (3 s)"
    );
    assert!(f.store.get(&before.id).is_some());
    assert_eq!(f.api_errors(), 0, "no API error against a healthy daemon");
    f.stop().await;
}

// ---------------------------------------------------------------------------------------------
// No daemon
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_daemon_counts_errors_and_backs_off() {
    // A socket path that does not exist (bollard fails at connect) and a TCP port nobody
    // listens on (fails at the first request).
    for host in ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:1"] {
        let started = Instant::now();
        let f = Follower::start(DockerConfig {
            host: Some(host.into()),
            label_globs: vec!["*".into()],
            ..Default::default()
        });
        // It keeps trying (five failed attempts; one that gave up never gets there), and backs
        // off: 250 ms doubling, jittered to [d/2, d], so the fifth attempt comes 125 + 250 +
        // 500 + 1000 ms after the first at the earliest. A hot loop takes milliseconds; a
        // slow machine only takes longer.
        wait_for(
            &format!("{host}: five failed attempts"),
            Duration::from_secs(60),
            || f.api_errors() >= 5,
        )
        .await;
        let took = started.elapsed();
        let shortest = Duration::from_millis(125 + 250 + 500 + 1000);
        let errors = f.api_errors();
        assert!(
            took >= shortest,
            "{host}: {errors} errors within {took:?}: no backoff (at least {shortest:?})"
        );
        assert!(!f.connected());
        assert_eq!(f.reconnects(), 0);
        assert!(f.store.is_empty());
        f.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// A daemon that restarts
// ---------------------------------------------------------------------------------------------

/// A dockerd of the test's own under /tmp, with a bridge of its own, stopped and cleaned up on
/// drop.
struct SecondDaemon {
    dir: PathBuf,
    host: String,
    cgroup_parent: String,
    child: Option<Child>,
    /// Its default network's bridge (not `--bridge none`, which deletes the host's docker0);
    /// dropped after the daemon has stopped.
    bridge: TestBridge,
}

impl SecondDaemon {
    fn new() -> SecondDaemon {
        // Unique per daemon: two tests of this file may each run one at the same time.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let tag = format!("ce-meta-{}-{n}", std::process::id());
        let dir = PathBuf::from(format!("/tmp/{tag}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        SecondDaemon {
            host: format!("unix://{}/docker.sock", dir.display()),
            dir,
            cgroup_parent: format!("/{tag}"),
            child: None,
            bridge: TestBridge::new(),
        }
    }

    fn start(&mut self) {
        assert!(self.child.is_none());
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .unwrap();
        let d = self.dir.display();
        let child = Command::new("dockerd")
            .args([
                &format!("--data-root={d}/data"),
                &format!("--exec-root={d}/x"),
                &format!("--pidfile={d}/docker.pid"),
                &format!("--host={}", self.host),
                // Out of /docker/<id>, so other tests' cgroup discovery never sees these.
                &format!("--cgroup-parent={}", self.cgroup_parent),
                &format!("--bridge={}", self.bridge.name),
                "--iptables=false",
                "--ip6tables=false",
                "--shutdown-timeout=1",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start a second dockerd");
        self.child = Some(child);
        let start = Instant::now();
        while !docker_at(Some(&self.host), &["info", "--format", "{{.ID}}"])
            .status
            .success()
        {
            if start.elapsed() > Duration::from_secs(30) {
                let log = fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
                panic!("second dockerd did not answer within 30 s; its log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, as a crash or an OOM kill would: no events, containers keep running under
    /// their shims until the restarted dockerd cleans up.
    fn crash(&mut self) {
        let mut child = self.child.take().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGTERM and wait; SIGKILL (dockerd and its containerd) after 20 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let containerd = self.dir.join("x/containerd/containerd.pid");
                if let Ok(pid) = fs::read_to_string(containerd) {
                    let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
                }
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SecondDaemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let ids = docker_at(Some(&self.host), &["ps", "-aq"]);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = docker_at(Some(&self.host), &["rm", "-f", id]);
            }
            self.stop();
        }
        // Anything dockerd left mounted under its roots (only after a SIGKILL).
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.dir.to_string_lossy().into_owned();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&prefix))
            .collect();
        ours.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in ours {
            let _ = Command::new("umount").args(["-l", p]).status();
        }
        let _ = fs::remove_dir_all(&self.dir);
        // The cgroup parent dockerd created, on every hierarchy (v1, hybrid or v2).
        let parent = self.cgroup_parent.trim_start_matches('/');
        let _ = fs::remove_dir(PathBuf::from("/sys/fs/cgroup").join(parent));
        if let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") {
            for h in hierarchies.flatten() {
                let _ = fs::remove_dir(h.path().join(parent));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_return_after_the_daemon_restarts() {
    require_docker();
    let mut daemon = SecondDaemon::new();
    daemon.start();
    let host = daemon.host.clone();
    // `docker save | docker load` keeps the name, tag and id; no registry needed.
    let loaded = Command::new("sh")
        .arg("-c")
        .arg(format!("docker save {IMAGE} | docker -H {host} load"))
        .output()
        .unwrap();
    assert!(
        loaded.status.success(),
        "loading {IMAGE} into the second daemon: {}",
        String::from_utf8_lossy(&loaded.stderr)
    );

    let f = Follower::start(DockerConfig {
        host: Some(host.clone()),
        label_globs: vec![],
        removal_delay: Duration::from_secs(1),
        ..Default::default()
    });
    let first = sleeper(Some(&host), &[]);
    wait_for(
        "a name from the second daemon",
        Duration::from_secs(10),
        || f.store.get(&first.id).is_some(),
    )
    .await;
    assert!(f.connected());
    let (errors, reconnects) = (f.api_errors(), f.reconnects());
    assert_eq!(reconnects, 0);

    // Down: the follower notices at once (the events stream closes) and counts it.
    daemon.stop();
    wait_for(
        "the follower to notice the daemon is gone",
        Duration::from_secs(30),
        || !f.connected(),
    )
    .await;
    assert!(f.api_errors() > errors);
    // A few retries fail (counted), so the backoff has grown by the time the daemon returns.
    let lost = f.api_errors();
    wait_for("three failed retries", Duration::from_secs(60), || {
        f.api_errors() >= lost + 3
    })
    .await;

    // Back: containers do not survive a restart without live-restore; a new one must be named
    // (backoff cap 5 s plus a resync), and the dead one must go.
    daemon.start();
    let back = Instant::now();
    let second = sleeper(Some(&host), &[]);
    // A promised bound: retries are at most 5 s apart (the backoff's cap); 30 s is a wide
    // margin, and ends a wait for a follower that gave up.
    wait_for("a name after the restart", Duration::from_secs(30), || {
        f.store.get(&second.id).is_some()
    })
    .await;
    let took = back.elapsed();
    assert!(f.connected());
    assert_eq!(f.reconnects(), reconnects + 1);
    assert_eq!(
        f.store.get(&second.id).unwrap().name.as_deref(),
        Some(second.name.as_str())
    );
    wait_for(
        "the pre-restart container to leave",
        Duration::from_secs(30),
        || f.store.get(&first.id).is_none(),
    )
    .await;
    eprintln!("name back {took:?} after the daemon answered again");

    // A crash sends no `die`: the entry must stay while the daemon is away (the container may
    // well still run), and leave once the restarted daemon shows it gone.
    daemon.crash();
    let crashed = Instant::now();
    wait_for(
        "the follower to notice the crash",
        Duration::from_secs(30),
        || !f.connected(),
    )
    .await;
    // Away for longer than the removal delay (1 s), and retrying (a failed attempt counted):
    // the entry is still there. This is the time the entry must survive, not a wait for
    // something; a slow machine only makes it longer.
    let lost = f.api_errors();
    wait_for("a failed retry", Duration::from_secs(60), || {
        f.api_errors() > lost
    })
    .await;
    let away = Duration::from_secs(2);
    tokio::time::sleep(away.saturating_sub(crashed.elapsed())).await;
    assert!(
        f.store.get(&second.id).is_some(),
        "dropped while the daemon was away ({:?} after the crash)",
        crashed.elapsed()
    );
    daemon.start();
    let third = sleeper(Some(&host), &[]);
    // A promised bound, as above: the backoff's cap (5 s) with a wide margin.
    wait_for("a name after the crash", Duration::from_secs(30), || {
        f.store.get(&third.id).is_some()
    })
    .await;
    assert_eq!(f.reconnects(), reconnects + 2);
    wait_for(
        "the container the restart killed to leave",
        Duration::from_secs(30),
        || f.store.get(&second.id).is_none(),
    )
    .await;
    f.stop().await;
    drop((first, second, third));
    drop(daemon);
    assert_docker0_usable();
}

/// The second daemon's default network is a bridge of the test's own, which works (a container
/// on it gets an address in the bridge's subnet), and the host's `docker0` outlives the daemon
/// (`--bridge none` would have deleted it).
#[test]
fn a_second_daemon_keeps_to_its_own_bridge() {
    require_docker();
    let mut daemon = SecondDaemon::new();
    daemon.start();
    let host = daemon.host.clone();
    let loaded = Command::new("sh")
        .arg("-c")
        .arg(format!("docker save {IMAGE} | docker -H {host} load"))
        .output()
        .unwrap();
    assert!(
        loaded.status.success(),
        "loading {IMAGE} into the second daemon: {}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let c = Container::run_at(Some(&host), &["--network", "bridge"], &["sleep", "30"]);
    let addr = docker_ok(
        Some(&host),
        &[
            "inspect",
            "--format",
            "{{.NetworkSettings.Networks.bridge.IPAddress}}",
            &c.id,
        ],
    );
    let bridge_addr = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-o", "-4", "addr", "show", "dev", &daemon.bridge.name])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    let subnet = addr
        .trim()
        .rsplit_once('.')
        .map(|(net, _)| format!(" {net}."));
    assert!(
        subnet.is_some_and(|s| bridge_addr.contains(&s)),
        "the second daemon's container ({addr:?}) is not on its bridge {} ({bridge_addr:?})",
        daemon.bridge.name
    );
    drop(c);
    let bridge = daemon.bridge.name.clone();
    drop(daemon);
    assert!(
        !Path::new("/sys/class/net").join(&bridge).exists(),
        "the test's bridge {bridge} was left behind"
    );
    assert_docker0_usable();
}
