//! Why containers ended when Docker's word is late, early, lost, malformed or about nothing the
//! exporter saw (issue 16, "Bad input and faults"). Each loses no final sample: it goes out with
//! its exit when the word comes within the bound, and without it at the bound otherwise, never
//! later; a word after the bound publishes the exit then (issue 24). (300 containers ending at
//! once: `tests/exits_at_scale.rs`; 200 real ones whose words come late: `tests/exits_late.rs`.)
//!
//! Between the exporter and the real dockerd sits a unix-socket proxy of the test's
//! (`tests/common/proxy.rs`) that can hold back, drop or rewrite the `/events` stream's events,
//! cut the stream, or add events of its own; everything else is real: the daemon, its
//! containers, their cgroups.
//!
//! The final samples are watched over OTLP (a real receiver): every request carries its time,
//! so a container's resource in a request made after Docker says it finished is its final
//! sample, and nothing is delivered away by looking (a scrape of the page would).
//!
//! They need root and `.ci/docker-up.sh`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use common::cgroups::layout;
use common::exits::{self, Seen};
use common::exporter::Exporter;
use common::otlp::{Proto, Receiver, attr};
use common::proxy::{Proxy, Verdict};
use common::{Container, docker, require_docker};

const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// The exporter, following Docker through `proxy`, sending OTLP to a receiver.
struct Rig {
    rx: Receiver,
    e: Exporter,
}

fn rig(proxy: &Proxy, exit_wait: &str) -> Rig {
    require_docker();
    let rx = Receiver::start(Proto::Grpc);
    let (url, endpoint) = (proxy.url(), rx.endpoint());
    let e = Exporter::start(&[
        "--interval",
        "1s",
        "--exit-wait",
        exit_wait,
        "--docker-host",
        &url,
        "--podman-host",
        "off",
        "--cri-endpoint",
        "off",
        "--otlp-endpoint",
        &endpoint,
        "--otlp-protocol",
        rx.protocol(),
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while proxy.live_streams() == 0 || !e.log_text().contains("following Docker events") {
        assert!(
            Instant::now() < deadline,
            "Docker not followed through the proxy:\n{}",
            e.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Rig { rx, e }
}

/// Whether an event is container `id`'s `die`.
fn is_die_of(ev: &Value, id: &str) -> bool {
    ev["Action"] == "die" && ev["Actor"]["ID"].as_str() == Some(id)
}

/// When Docker says the container finished.
fn finished_at(c: &Container) -> SystemTime {
    let out = docker(&["inspect", "-f", "{{.State.FinishedAt}}", &c.name]);
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    container_exporter::metadata::parse_rfc3339(&s).unwrap_or_else(|| panic!("FinishedAt {s:?}"))
}

fn request_time(r: &opentelemetry_proto::tonic::metrics::v1::ResourceMetrics) -> SystemTime {
    let ns = r
        .scope_metrics
        .iter()
        .flat_map(|s| &s.metrics)
        .find_map(|m| match &m.data {
            Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Sum(s)) => {
                s.data_points.first().map(|p| p.time_unix_nano)
            }
            Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Gauge(g)) => {
                g.data_points.first().map(|p| p.time_unix_nano)
            }
            _ => None,
        })
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// Every resource of `id` sent after `after` (its final sample, sent as many times as it is
/// kept), with the time it was sent and its exits.
fn finals(rig: &Rig, id: &str, after: SystemTime) -> Vec<(SystemTime, Vec<Seen>)> {
    let got = rig.rx.shared.got.lock().unwrap();
    got.iter()
        .flat_map(|g| &g.request.resource_metrics)
        .filter(|r| attr(r, "container.id").as_deref() == Some(id))
        .map(|r| (request_time(r), exits::in_resource(r).0))
        .filter(|(t, _)| *t > after)
        .collect()
}

/// Waits for container `c`'s final sample over OTLP (the container has exited). Every copy of
/// it must carry an exit when `with_exit`, and none otherwise. Returns the exits of the first
/// copy and how long after Docker's finish it was sent.
///
/// Its 60 s only end a wait for a final sample that never comes: where a test holds the
/// runtime's word back until the final sample is out, a final sample held for the word never
/// comes.
fn final_sample(rig: &Rig, c: &Container, with_exit: bool) -> (Vec<Seen>, Duration) {
    // A tick right at the exit may still have read the container running.
    const MARGIN: Duration = Duration::from_millis(500);
    let finished = finished_at(c) + MARGIN;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let f = finals(rig, &c.id, finished);
        if let Some((first, seen)) = f.iter().min_by_key(|(t, _)| *t) {
            for (_, s) in &f {
                assert_eq!(
                    !s.is_empty(),
                    with_exit,
                    "{}: a final sample with exits {s:?}, all: {f:?}",
                    c.name
                );
            }
            let took = first.duration_since(finished).unwrap_or_default();
            return (seen.clone(), took + MARGIN);
        }
        assert!(
            Instant::now() < deadline,
            "{}: no final sample over OTLP\n{}",
            c.name,
            rig.e.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the exporter has taken Docker's `die` of `c` (its log says so), then until a
/// copy of `c`'s exit went out after that: a word later than the bound is not lost (issue
/// 24), its exit series follows the final sample. Every copy sent after the die carries it.
fn late_exit(rig: &Rig, c: &Container, want: &Seen) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !rig
        .e
        .log_text()
        .contains(&format!("id={} action=\"die\"", c.id))
    {
        assert!(
            Instant::now() < deadline,
            "{}: the exporter never got its die:\n{}",
            c.name,
            rig.e.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let taken = SystemTime::now();
    loop {
        let f = finals(rig, &c.id, taken);
        if !f.is_empty() {
            for (_, s) in &f {
                assert_eq!(s, std::slice::from_ref(want), "{}: {f:?}", c.name);
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}: no copy of its exit after its die:\n{}",
            c.name,
            rig.e.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let late = rig.e.metrics();
    assert!(late.value("container_exporter_exits_late_total", &[]) >= 1.0);
}

/// Waits until the container is running and known to the exporter (its `start` came).
fn running(rig: &Rig, c: &Container) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !rig
        .e
        .log_text()
        .contains(&format!("id={} action=\"start\"", c.id))
    {
        assert!(Instant::now() < deadline, "{}: no start", c.name);
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn events_about_containers_never_seen_do_not_grow_the_exporter() {
    let proxy = Proxy::docker(Path::new(DOCKER_SOCKET));
    let rig = rig(&proxy, "3s");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    for i in 0..6000u64 {
        let id = format!("{:064x}", 0xdead_0000_u64 + i);
        let ev = json!({
            "status": "die", "id": id, "from": "nowhere", "Type": "container", "Action": "die",
            "Actor": {"ID": id, "Attributes": {"exitCode": (i % 256).to_string(), "name": format!("ghost-{i}")}},
            "scope": "local", "time": now.as_secs(), "timeNano": now.as_nanos() as u64,
        });
        assert_eq!(proxy.inject(&ev), 1);
    }
    // A real container ends right after: its exit is among the newest, and kept.
    let c = Container::sh(&[], "sleep 1; exit 3");
    running(&rig, &c);
    c.wait_exit();
    let (seen, _) = final_sample(&rig, &c, true);
    assert_eq!(seen, [Seen::new("Error", Some(3), Some(0))]);
    let page = rig
        .e
        .wait_for("the ghosts counted", Duration::from_secs(10), "", |p| {
            p.get(
                "container_exporter_exits_pending",
                &[("waiting_for", "final_sample")],
            ) >= Some(4000.0)
        });
    let held = page.value(
        "container_exporter_exits_pending",
        &[("waiting_for", "final_sample")],
    );
    assert!(held <= 4096.0, "exits held: {held}");
    // None of them is anybody's exit.
    assert!(
        page.series("container_exit_code", &[])
            .iter()
            .all(|s| !s.labels["container_id"].starts_with("00000000000000000000"))
    );
}

#[test]
fn a_die_after_the_cgroup_emptied_within_the_bound() {
    let proxy = Proxy::docker(Path::new(DOCKER_SOCKET));
    let target = Arc::new(Mutex::new(String::new()));
    let t = target.clone();
    proxy.on_event(move |ev| {
        if is_die_of(&ev, &t.lock().unwrap()) {
            Verdict::Delay(Duration::from_millis(1500), ev)
        } else {
            Verdict::Pass(ev)
        }
    });
    // The word comes 1.5 s late, well within a 20 s bound however loaded the machine.
    let rig = rig(&proxy, "20s");
    let c = Container::sh(&[], "sleep 1; exit 3");
    *target.lock().unwrap() = c.id.clone();
    running(&rig, &c);
    c.wait_exit();
    // Never sent without its exit: it waited for the late word (which cannot come before
    // 1.5 s after Docker's finish: a lower bound no slowness can break).
    let (seen, took) = final_sample(&rig, &c, true);
    assert_eq!(seen, [Seen::new("Error", Some(3), Some(0))]);
    assert!(
        took >= Duration::from_millis(1000),
        "{took:?}: before the word?"
    );
}

#[test]
fn a_die_later_than_the_bound_never_holds_the_final_sample() {
    let proxy = Proxy::docker(Path::new(DOCKER_SOCKET));
    let target = Arc::new(Mutex::new(String::new()));
    // The word is held back until the test lets it go, after the final sample is out.
    let held: Arc<Mutex<Option<Value>>> = Arc::default();
    let (t, h) = (target.clone(), held.clone());
    proxy.on_event(move |ev| {
        if is_die_of(&ev, &t.lock().unwrap()) {
            *h.lock().unwrap() = Some(ev);
            Verdict::Drop
        } else {
            Verdict::Pass(ev)
        }
    });
    let rig = rig(&proxy, "1s");
    let c = Container::sh(&[], "sleep 1; exit 3");
    *target.lock().unwrap() = c.id.clone();
    running(&rig, &c);
    c.wait_exit();
    // Out at the bound, without an exit (no OOM kill, no code), while the word is held back:
    // a final sample held for the word would never come.
    let (_, took) = final_sample(&rig, &c, false);
    eprintln!("final sample out {took:?} after the exit (bound 1 s), its die held back");
    // The word arrives, late: its exit follows (no longer lost, issue 24).
    let die = held
        .lock()
        .unwrap()
        .take()
        .expect("the proxy held back the container's die");
    assert_eq!(proxy.inject(&die), 1, "the die sent on the events stream");
    late_exit(&rig, &c, &Seen::new("Error", Some(3), Some(0)));
    let page = rig.e.metrics();
    assert!(page.value("container_exporter_exits_total", &[("outcome", "timeout")]) >= 1.0);
}

/// Moves a process of the test's into every hierarchy of a Docker container's cgroup, so that
/// the cgroup stays populated after the container's own processes are gone.
fn hold_cgroup(id: &str) -> Child {
    let child = Command::new("sleep")
        .arg("60")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut moved = 0;
    for dir in cgroup_dirs(id) {
        if std::fs::write(dir.join("cgroup.procs"), child.id().to_string()).is_ok() {
            moved += 1;
        }
    }
    assert!(moved > 0, "no cgroup of {id} to join");
    child
}

fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for m in common::cgroups::mounts(&layout()) {
        let d = m.join("docker").join(id);
        if d.is_dir() {
            out.push(d);
        }
    }
    out
}

#[test]
fn a_die_before_the_cgroup_empties() {
    let proxy = Proxy::docker(Path::new(DOCKER_SOCKET));
    // A long bound (30 s): the final sample must go at once, not at the bound.
    let rig = rig(&proxy, "30s");
    let c = Container::sh(&[], "sleep 2; exit 3");
    running(&rig, &c);
    let mut holder = hold_cgroup(&c.id);
    c.wait_exit();
    // Docker said it died; the cgroup still has the test's process: no final sample yet, and
    // the exit is held for it.
    let page = rig
        .e
        .wait_for("the exit held", Duration::from_secs(10), &c.id, |p| {
            p.get(
                "container_exporter_exits_pending",
                &[("waiting_for", "final_sample")],
            ) >= Some(1.0)
        });
    assert!(exits::on_page(&page, &c.id).is_empty());
    assert!(page.has_container(&c.id), "still populated, still shown");
    // Still held over two more ticks (counted): the exit waits for the cgroup, not a tick.
    let ticks = page.value("container_exporter_collections_total", &[]);
    let page = rig
        .e
        .wait_for("two more ticks", Duration::from_secs(60), &c.id, |p| {
            p.value("container_exporter_collections_total", &[]) >= ticks + 2.0
        });
    assert!(exits::on_page(&page, &c.id).is_empty());
    assert!(page.has_container(&c.id), "still populated, still shown");
    let emptied = SystemTime::now();
    let _ = holder.kill();
    let _ = holder.wait();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (at, seen) = loop {
        let f = finals(&rig, &c.id, emptied);
        if let Some(first) = f.into_iter().min_by_key(|(t, _)| *t) {
            break first;
        }
        assert!(Instant::now() < deadline, "{}", rig.e.log_tail());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(seen, [Seen::new("Error", Some(3), Some(0))]);
    // A promised bound: at once, nothing was left to wait for; not at the 30 s bound. Half
    // the bound is a margin no loaded machine needs.
    let took = at.duration_since(emptied).unwrap_or_default();
    assert!(took < Duration::from_secs(15), "{took:?}, bound 30 s");
    for d in cgroup_dirs(&c.id) {
        let _ = std::fs::remove_dir(d);
    }
}

#[test]
fn a_stream_that_drops_in_the_middle_of_an_exit() {
    // Cut as the die passes, back 300 ms later: the reconnect replays the die.
    let proxy = Arc::new(Proxy::docker(Path::new(DOCKER_SOCKET)));
    let target = Arc::new(Mutex::new(String::new()));
    let (t, p2) = (target.clone(), Arc::downgrade(&proxy));
    proxy.on_event(move |ev| {
        let Some(p) = p2.upgrade() else {
            return Verdict::Pass(ev);
        };
        if is_die_of(&ev, &t.lock().unwrap()) && p.streams_opened() == 1 {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                p.restore();
            });
            Verdict::DropAndCut
        } else {
            Verdict::Pass(ev)
        }
    });
    // The reconnect (backoff from 250 ms) replays the die well within a 20 s bound.
    let rig1 = rig(&proxy, "20s");
    let c = Container::sh(&[], "sleep 1; exit 3");
    *target.lock().unwrap() = c.id.clone();
    running(&rig1, &c);
    c.wait_exit();
    let (seen, _) = final_sample(&rig1, &c, true);
    assert_eq!(seen, [Seen::new("Error", Some(3), Some(0))]);
    assert!(
        proxy.streams_opened() >= 2,
        "the stream was cut and opened again"
    );
    drop(rig1);

    // Cut for longer than the bound: the final sample goes out without its exit, and the
    // die replayed after the reconnect, late, publishes its exit then.
    let proxy = Proxy::docker(Path::new(DOCKER_SOCKET));
    let target = Arc::new(Mutex::new(String::new()));
    let held: Arc<Mutex<Option<Value>>> = Arc::default();
    let (t, h) = (target.clone(), held.clone());
    proxy.on_event(move |ev| {
        if is_die_of(&ev, &t.lock().unwrap()) {
            *h.lock().unwrap() = Some(ev);
            Verdict::DropAndCut
        } else {
            Verdict::Pass(ev)
        }
    });
    let rig2 = rig(&proxy, "1s");
    let c = Container::sh(&[], "sleep 1; exit 3");
    *target.lock().unwrap() = c.id.clone();
    running(&rig2, &c);
    c.wait_exit();
    // Out at the bound (1 s) while the stream is still cut: a final sample held for the word
    // would never come (the test restores the stream only after).
    let (_, took) = final_sample(&rig2, &c, false);
    eprintln!("final sample out {took:?} after the exit (bound 1 s), the stream cut");
    assert!(proxy.is_cut());
    *target.lock().unwrap() = String::new();
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.streams_opened() < 2 {
        assert!(Instant::now() < deadline, "no reconnect");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The die, late: Docker replays it on the new stream when the reconnect came within its
    // 5 s `since` margin; the test sends it on the new stream too, so that it comes however
    // long the reconnect took (taking it twice is harmless). Once the exporter has it, every
    // copy sent after carries its exit.
    let die = held
        .lock()
        .unwrap()
        .take()
        .expect("the proxy dropped the container's die");
    while proxy.live_streams() == 0 {
        assert!(Instant::now() < deadline, "no live events stream");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(proxy.inject(&die) >= 1, "the die sent on the new stream");
    late_exit(&rig2, &c, &Seen::new("Error", Some(3), Some(0)));
}

#[test]
fn exit_codes_outside_0_255_are_dropped() {
    let proxy = Proxy::docker(Path::new(DOCKER_SOCKET));
    let rewrite: Arc<Mutex<BTreeMap<String, &'static str>>> = Arc::default();
    let r = rewrite.clone();
    proxy.on_event(move |mut ev| {
        let id = ev["Actor"]["ID"].as_str().unwrap_or("").to_string();
        if ev["Action"] == "die"
            && let Some(code) = r.lock().unwrap().get(&id)
        {
            ev["Actor"]["Attributes"]["exitCode"] = Value::String(code.to_string());
        }
        Verdict::Pass(ev)
    });
    // A long bound (30 s): the word comes, so each final sample goes at once, not at it.
    let rig = rig(&proxy, "30s");
    let cs: Vec<(Container, &'static str)> = ["300", "-1", "x"]
        .into_iter()
        .map(|code| {
            let c = Container::sh(&[], "sleep 2; exit 3");
            rewrite.lock().unwrap().insert(c.id.clone(), code);
            (c, code)
        })
        .collect();
    for (c, _) in &cs {
        running(&rig, c);
    }
    for (c, code) in &cs {
        c.wait_exit();
        // Out at once (the word came), without an exit: no status, no OOM kill. A promised
        // bound: not at the 30 s bound; half of it is a margin no loaded machine needs.
        let (_, took) = final_sample(&rig, c, false);
        assert!(
            took < Duration::from_secs(15),
            "{code}: {took:?}, bound 30 s"
        );
    }
    rig.e.wait_for("counted", Duration::from_secs(60), "", |p| {
        p.get("container_exporter_exits_total", &[("outcome", "no_code")]) >= Some(3.0)
    });
}
