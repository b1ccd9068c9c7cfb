//! Podman (issue 10) against a real Podman 4.3 (Debian's, rootful, cgroupfs manager) and its
//! Docker-compatible service, started by `.ci/podman-up.sh` on its own socket and storage.
//!
//! - The metadata follower (`src/metadata/sources/docker.rs` with `Flavor::Podman`): names, image,
//!   tags, image id and allowed labels of a listed container and of one started later, a
//!   rename, a pod's infra container marked `sandbox` (and its application container not), and
//!   an exited container leaving the store after the removal delay, which only Podman's `die`
//!   event can do (the follower re-lists only on reconnect, and none happens).
//! - The daemon (`--podman-host`): a Podman container and a container in a Podman pod (under
//!   `libpod_parent/<pod-id>/libpod-<id>`) are on the page with their names and image; a
//!   container shorter than an interval shows its CPU time (measured by `time -p -o FILE`
//!   inside it) after its exit, its `die` and `remove` events reach the daemon, and its series
//!   leave the page after `podman rm`.
//! - Why a container ended (issue 16): a non-zero exit from Podman's `died` event on the final
//!   sample, with Podman's restart count.
//!
//! Ground truth is what Podman itself says (`podman inspect`, `podman pod inspect`) and what
//! the workload measured. The tests need root, Docker's `ce-busybox:test` copied into Podman
//! and the service answering: run `.ci/docker-up.sh` and `.ci/podman-up.sh` first. Without
//! them they fail (they do not skip).

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use container_exporter::metadata::sources::docker::{DockerConfig, Flavor, run};
use container_exporter::metadata::{MetadataStore, SourceStats};
use tokio::sync::oneshot;

use common::exporter::Exporter;
use common::{IMAGE, TempDir, unique_name};

const SETUP: &str = ".ci/podman-up.sh";
const SOCKET: &str = "/run/ce-podman/podman.sock";
const HOST: &str = "unix:///run/ce-podman/podman.sock";
const CONTAINERS_CONF: &str = "/etc/ce-podman/containers.conf";
const STORAGE_CONF: &str = "/etc/ce-podman/storage.conf";

// ---------------------------------------------------------------------------------------------
// Podman
// ---------------------------------------------------------------------------------------------

/// `podman args…` with the configuration the service runs with (same storage, same events).
fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .env("CONTAINERS_CONF", CONTAINERS_CONF)
        .env("CONTAINERS_STORAGE_CONF", STORAGE_CONF)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `podman {}`: {e}; run {SETUP}", args.join(" ")))
}

fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "`podman {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `GET /_ping` on the service's socket.
fn ping() -> Result<(), String> {
    let mut s = UnixStream::connect(SOCKET).map_err(|e| format!("connect {SOCKET}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: podman\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    if resp.starts_with("HTTP/1.1 200") && resp.ends_with("OK") {
        Ok(())
    } else {
        Err(format!("/_ping answered {resp:?}"))
    }
}

/// Fails the test (never skips) unless the service answers and the test image is there.
fn require_podman() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let res = CHECK.get_or_init(|| {
        ping()?;
        let out = Command::new("podman")
            .args(["image", "exists", IMAGE])
            .env("CONTAINERS_CONF", CONTAINERS_CONF)
            .env("CONTAINERS_STORAGE_CONF", STORAGE_CONF)
            .output()
            .map_err(|e| format!("cannot run podman: {e}"))?;
        if !out.status.success() {
            return Err(format!("Podman has no image {IMAGE}"));
        }
        Ok(())
    });
    if let Err(e) = res {
        panic!(
            "Podman is not available for tests/podman.rs: {e}.\nRun `.ci/docker-up.sh` then \
             `{SETUP}` as root (they install podman, copy {IMAGE} into it and start its \
             service on {HOST}), then re-run the tests."
        );
    }
}

/// A Podman container (`--network none`), removed when dropped.
struct Ctr {
    name: String,
    id: String,
}

impl Ctr {
    fn run(extra: &[&str], cmd: &[&str]) -> Ctr {
        require_podman();
        let mut c = Ctr {
            name: unique_name(),
            id: String::new(),
        };
        let mut args = vec!["run", "-d", "--name", &c.name];
        // A container in a pod shares the pod's network namespace.
        if !extra.contains(&"--pod") {
            args.extend(["--network", "none"]);
        }
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        c.id = podman_ok(&args);
        assert!(
            c.id.len() == 64 && c.id.bytes().all(|b| b.is_ascii_hexdigit()),
            "unexpected id from podman run: {:?}",
            c.id
        );
        c
    }

    fn inspect(&self, format: &str) -> String {
        podman_ok(&["inspect", "--type", "container", "-f", format, &self.id])
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let target = if self.id.is_empty() {
            &self.name
        } else {
            &self.id
        };
        let _ = podman(&["rm", "-f", "-t", "0", target]);
    }
}

/// A Podman pod (`--network none`, Podman's own infra container), removed when dropped with
/// the pod cgroup directories runc leaves behind.
struct Pod {
    name: String,
    id: String,
    infra_id: String,
}

impl Pod {
    fn create() -> Pod {
        require_podman();
        let mut p = Pod {
            name: unique_name(),
            id: String::new(),
            infra_id: String::new(),
        };
        p.id = podman_ok(&["pod", "create", "--name", &p.name, "--network", "none"]);
        p.infra_id = podman_ok(&["pod", "inspect", "-f", "{{.InfraContainerID}}", &p.id]);
        assert_eq!(p.infra_id.len(), 64, "infra container id {:?}", p.infra_id);
        p
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let target = if self.id.is_empty() {
            &self.name
        } else {
            &self.id
        };
        let _ = podman(&["pod", "rm", "-f", "-t", "0", target]);
        if self.id.len() == 64 {
            // runc removes its leaf cgroups only; the pod's own directory stays behind in the
            // hierarchies conmon does not use.
            if let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") {
                for h in hierarchies.flatten() {
                    let dir = h.path().join("libpod_parent").join(&self.id);
                    let _ = fs::remove_dir(dir.join("conmon"));
                    let _ = fs::remove_dir(&dir);
                }
            }
        }
    }
}

/// What Podman says the container's image is: (`container.image.name`,
/// `container.image.tags`, `container.image.id`). Podman resolves names (`localhost/…`).
fn image_of(c: &Ctr) -> (String, String, String) {
    let image = c.inspect("{{.ImageName}}");
    let (name, tag) = image.rsplit_once(':').expect("a tagged image name");
    let id = c.inspect("{{.Image}}");
    (name.to_owned(), tag.to_owned(), format!("sha256:{id}"))
}

/// `time -p` output (`user 1.23` and `sys 0.45` lines): user + sys seconds.
fn time_p(text: &str) -> Option<f64> {
    let field = |key: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(field("user ")? + field("sys ")?)
}

// ---------------------------------------------------------------------------------------------
// 1. The follower against Podman's compat API
// ---------------------------------------------------------------------------------------------

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_names_podman_containers_and_marks_pod_infra() {
    require_podman();
    let listed = Ctr::run(
        &["--label", "team=obs", "--label", "secret=x"],
        &["sleep", "600"],
    );

    let store = MetadataStore::new();
    let stats = Arc::new(SourceStats::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let removal_delay = Duration::from_secs(2);
    let task = tokio::spawn(run(
        DockerConfig {
            host: Some(HOST.into()),
            label_globs: vec!["team".into()],
            removal_delay,
            flavor: Flavor::Podman,
            ..DockerConfig::default()
        },
        store.clone(),
        stats.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    wait_for(
        "the listed container in the store",
        Duration::from_secs(10),
        || store.get(&listed.id).is_some(),
    )
    .await;
    assert!(stats.connected.load(Ordering::Relaxed));

    let later = Ctr::run(&["--label", "team=late"], &["sleep", "600"]);
    let pod = Pod::create();
    let in_pod = Ctr::run(&["--pod", &pod.name], &["sleep", "600"]);
    let took = wait_for(
        "the later container, the pod's and its infra container in the store",
        Duration::from_secs(10),
        || {
            [&later.id, &in_pod.id, &pod.infra_id]
                .iter()
                .all(|id| store.get(id).is_some())
        },
    )
    .await;
    eprintln!("containers started under the follower were named {took:?} later (events)");

    for (c, team) in [
        (&listed, Some("obs")),
        (&later, Some("late")),
        (&in_pod, None),
    ] {
        let m = store.get(&c.id).unwrap();
        let (image, tag, image_id) = image_of(c);
        assert_eq!(m.name.as_deref(), Some(c.name.as_str()), "{m:?}");
        assert_eq!(m.image_name.as_deref(), Some(image.as_str()), "{m:?}");
        assert_eq!(m.image_tags, [tag], "{m:?}");
        assert_eq!(m.image_id.as_deref(), Some(image_id.as_str()), "{m:?}");
        let want: Vec<(String, String)> = team
            .map(|t| vec![("team".to_owned(), t.to_owned())])
            .unwrap_or_default();
        assert_eq!(m.labels, want, "only allowed labels: {m:?}");
        assert!(!m.sandbox, "an application container marked sandbox: {m:?}");
        assert!(m.started_at.is_some(), "{m:?}");
    }
    let infra = store.get(&pod.infra_id).unwrap();
    let infra_name = podman_ok(&["inspect", "-f", "{{.Name}}", &pod.infra_id]);
    assert_eq!(infra.name.as_deref(), Some(infra_name.as_str()));
    assert!(
        infra.sandbox,
        "the pod's infra container is not marked sandbox: {infra:?}"
    );

    // A rename is followed.
    let renamed = format!("{}-renamed", later.name);
    podman_ok(&["rename", &later.id, &renamed]);
    wait_for("the new name in the store", Duration::from_secs(10), || {
        store.get(&later.id).and_then(|m| m.name.clone()).as_deref() == Some(renamed.as_str())
    })
    .await;

    // An exit: only Podman's `die` event (filtered as `died`) schedules the entry's removal.
    // Timed from before the stop: the event may arrive before `podman stop` returns.
    let stopped_at = Instant::now();
    podman_ok(&["stop", "-t", "0", &listed.id]);
    wait_for(
        "the stopped container to leave the store",
        removal_delay + Duration::from_secs(8),
        || store.get(&listed.id).is_none(),
    )
    .await;
    let took = stopped_at.elapsed();
    eprintln!("the stopped container left the store {took:?} after podman stop");
    assert!(
        took >= removal_delay - Duration::from_millis(100),
        "{took:?}"
    );
    assert_eq!(
        stats.reconnects.load(Ordering::Relaxed),
        0,
        "the follower reconnected (and re-listed): the exit was not seen as an event"
    );
    assert!(
        store.get(&later.id).is_some(),
        "a running container left the store"
    );

    let _ = stop.send(());
    // A promised bound: shutdown ends the follower (it waits on nothing). 10 s is a wide
    // margin for a loaded machine, and ends a hang.
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the follower did not stop within 10 s")
        .expect("the follower panicked");
}

// ---------------------------------------------------------------------------------------------
// 2. The daemon: names on the page, a container in a pod
// ---------------------------------------------------------------------------------------------

#[test]
fn podman_containers_and_a_pod_container_are_named_on_the_page() {
    require_podman();
    let exp = Exporter::start(&["--interval", "1s", "--podman-host", HOST]);
    let plain = Ctr::run(&[], &["sleep", "600"]);
    let pod = Pod::create();
    let in_pod = Ctr::run(&["--pod", &pod.name], &["sleep", "600"]);
    let page = exp.wait_for(
        "both Podman containers on the page with their names",
        Duration::from_secs(15),
        &in_pod.id,
        |p| {
            [&plain, &in_pod].iter().all(|c| {
                p.get(
                    "container_info",
                    &[("container_id", &c.id), ("container_name", &c.name)],
                )
                .is_some()
                    && p.cpu_seconds(&c.id).is_some()
            })
        },
    );
    // The pod's container really is in the pod's cgroup.
    let cgroup = fs::read_to_string(format!("/proc/{}/cgroup", in_pod.inspect("{{.State.Pid}}")))
        .expect("the pod container's /proc/<pid>/cgroup");
    assert!(
        cgroup.contains(&format!("/libpod_parent/{}/libpod-{}", pod.id, in_pod.id)),
        "{cgroup}"
    );
    for c in [&plain, &in_pod] {
        let (image, tag, image_id) = image_of(c);
        let info = page.series("container_info", &[("container_id", &c.id)]);
        assert_eq!(info.len(), 1, "{}", page.container_lines(&c.id));
        let l = &info[0].labels;
        let label = |k: &str| l.get(k).map(String::as_str);
        assert_eq!(label("container_image_name"), Some(image.as_str()), "{l:?}");
        assert_eq!(label("container_image_tags"), Some(tag.as_str()), "{l:?}");
        assert_eq!(
            label("container_image_id"),
            Some(image_id.as_str()),
            "{l:?}"
        );
        assert_eq!(label("container_runtime_name"), Some("podman"), "{l:?}");
        // Identity labels on every series of the container.
        for s in page
            .samples
            .iter()
            .filter(|s| s.labels.get("container_id") == Some(&c.id))
        {
            assert_eq!(s.labels.get("container_name"), Some(&c.name), "{s:?}");
            assert_eq!(
                s.labels.get("container_image_name").map(String::as_str),
                Some(image.as_str()),
                "{s:?}"
            );
        }
        assert_eq!(
            page.get("container_pids", &[("container_id", &c.id)]),
            Some(1.0),
            "`sleep` is one process:\n{}",
            page.container_lines(&c.id)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. The daemon: a short container's final sample, its events, its removal
// ---------------------------------------------------------------------------------------------

/// Waits until the exporter's log has a line with every one of `parts`.
fn wait_for_log(exp: &Exporter, what: &str, parts: &[&str], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if exp
            .log_text()
            .lines()
            .any(|l| parts.iter().all(|p| l.contains(p)))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no log line with {parts:?} within {timeout:?}; log tail:\n{}",
            exp.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_short_podman_container_shows_its_final_sample_and_leaves_after_removal() {
    require_podman();
    let exp = Exporter::start(&["--interval", "10s", "--podman-host", HOST]);
    wait_for_log(
        &exp,
        "the Podman follower",
        &["following Podman events"],
        Duration::from_secs(10),
    );

    // Start just after a tick, so the workload ends well before the next one. (The page is
    // empty until the first tick is done.)
    exp.wait_for("a first collection", Duration::from_secs(15), "", |p| {
        p.get("container_exporter_collections_total", &[])
            .is_some_and(|v| v >= 1.0)
    });
    let c0 = exp.collections();
    exp.wait_for("a tick", Duration::from_secs(15), "", |p| {
        p.value("container_exporter_collections_total", &[]) > c0
    });
    let out = TempDir::new();
    let volume = format!("{}:/out", out.0.display());
    let c = Ctr::run(
        &["-v", &volume],
        &[
            "time",
            "-p",
            "-o",
            "/out/time",
            "sh",
            "-c",
            "timeout 2 yes >/dev/null",
        ],
    );
    let started = Instant::now();
    // The exit status is busybox timeout's (the `yes` it stopped), nothing to check.
    podman_ok(&["wait", &c.id]);
    let lived = started.elapsed();
    let times = fs::read_to_string(out.0.join("time")).expect("the workload's time -p file");
    let own = time_p(&times).unwrap_or_else(|| panic!("no user/sys in {times:?}"));
    eprintln!("the workload used {own:.2} s of CPU and exited {lived:?} after podman run");
    assert!(own > 0.3, "the workload barely ran: {own} s ({times:?})");

    // Its exit arrives as Podman's `die` event (filtered as `died`).
    wait_for_log(
        &exp,
        "the die event",
        &["Podman event", &c.id, "die"],
        Duration::from_secs(10),
    );

    // The page published as soon as the exit was known (with its exit series), else the next
    // tick's: rendered after the exit, it carries the final sample.
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
            "the exited Podman container {} is not on the page rendered after its exit (no \
             final sample). Its lines:\n{}",
            c.id,
            page.container_lines(&c.id)
        )
    });
    eprintln!("final sample: {cpu:.3} s CPU (workload: {own:.2} s)");
    // The cgroup also holds what ran before `time` did (runc's init, the exec): a few tens of
    // milliseconds on top of the workload, whatever its length.
    assert!(
        (cpu - own).abs() <= own * 0.10 + 0.05,
        "final CPU time {cpu:.3} s is not within 10 % + 50 ms of the workload's {own:.2} s:\n{}",
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

    // Removed: Podman's `remove` event arrives, and the series leave the page.
    podman_ok(&["rm", &c.id]);
    let removed = Instant::now();
    wait_for_log(
        &exp,
        "the remove event",
        &["Podman event", &c.id, "remove"],
        Duration::from_secs(10),
    );
    exp.wait_for(
        "the removed container's series leave the page",
        Duration::from_secs(35),
        &c.id,
        |p| !p.has_container(&c.id),
    );
    eprintln!(
        "its series left the page {:?} after podman rm",
        removed.elapsed()
    );
}

/// A Podman container's non-zero exit (issue 16): Podman's `died` event (filtered as `died`,
/// delivered as `die`) says its status, and the final sample carries it, with Podman's restart
/// count; published as soon as the event came, between ticks.
#[test]
fn a_podman_containers_exit_is_on_its_final_sample() {
    require_podman();
    let exp = Exporter::start(&[
        "--interval",
        "30s",
        "--podman-host",
        HOST,
        "--docker-host",
        "off",
        "--cri-endpoint",
        "off",
    ]);
    wait_for_log(
        &exp,
        "the Podman follower",
        &["following Podman events"],
        Duration::from_secs(10),
    );
    let c = Ctr::run(&[], &["sh", "-c", "sleep 1; exit 5"]);
    let page = exp.wait_for("its exit", Duration::from_secs(20), &c.id, |p| {
        common::exits::assert_unique_series(p);
        !common::exits::on_page(p, &c.id).is_empty()
    });
    assert_eq!(
        common::exits::on_page(&page, &c.id),
        [common::exits::Seen::new("Error", Some(5), Some(0))]
    );
    assert_eq!(c.inspect("{{.State.ExitCode}}"), "5");
    let labels = common::exits::page_labels(&page, &c.id).unwrap();
    assert_eq!(
        labels.get("container_name").map(String::as_str),
        Some(c.name.as_str())
    );
    assert!(page.cpu_seconds(&c.id).is_some(), "with its final sample");
}
