//! Network counters of containers started while the exporter runs (issue 9), against a real
//! Docker daemon: the daemon runs with `--interval 1s`, then 20 containers start at once, each
//! moving bytes over its own loopback (busybox `httpd` and a `wget` loop, `--network none`),
//! next to one container in the host's network.
//!
//! The first process of a starting container is the runtime's init (`runc init`), still in the
//! host's network namespace for a moment. Taken at face value, that made about one container in
//! ten "host network" for good: no network series ever. So each container must have its
//! network series within two ticks of appearing on the page, and the host-network one must
//! have none. The round is repeated, so that the race cannot pass by luck.
//!
//! Needs root and a running dockerd with the test image: run `.ci/docker-up.sh` first.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::exporter::Exporter;
use common::page::Page;
use common::{Container, require_docker};

const INTERVAL: Duration = Duration::from_secs(1);
const CONTAINERS: usize = 20;
const ROUNDS: usize = 3;

/// Serves a 256 KiB file on the container's loopback and fetches it in a loop.
const WORKLOAD: &str = "mkdir -p /w && dd if=/dev/zero of=/w/f bs=1024 count=256 2>/dev/null \
     && httpd -p 8080 -h /w && while true; do wget -q -O /dev/null http://127.0.0.1:8080/f; \
     sleep 0.2; done";

fn network_series(page: &Page, id: &str) -> usize {
    page.samples
        .iter()
        .filter(|s| s.name.starts_with("container_network_"))
        .filter(|s| s.labels.get("container_id").is_some_and(|v| v == id))
        .count()
}

fn lo_received(page: &Page, id: &str) -> f64 {
    page.get(
        "container_network_io_bytes_total",
        &[
            ("container_id", id),
            ("network_interface_name", "lo"),
            ("network_io_direction", "receive"),
        ],
    )
    .unwrap_or(0.0)
}

#[test]
fn every_container_started_under_the_exporter_gets_its_network_counters() {
    require_docker();
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

        // When each was first on the page, and when it first had network series.
        let mut seen: HashMap<&str, Instant> = HashMap::new();
        let mut with_net: HashMap<&str, Instant> = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let page = loop {
            let page = exp.metrics();
            let now = Instant::now();
            for c in &started {
                if page.has_container(&c.id) {
                    seen.entry(&c.id).or_insert(now);
                    if page.has_lo_network(&c.id) {
                        with_net.entry(&c.id).or_insert(now);
                    }
                }
            }
            let all = started
                .iter()
                .all(|c| with_net.contains_key(c.id.as_str()) && lo_received(&page, &c.id) > 0.0);
            if all && page.cpu_seconds(&host_net.id).is_some() {
                break page;
            }
            if now >= deadline {
                let missing: Vec<String> = started
                    .iter()
                    .filter(|c| !with_net.contains_key(c.id.as_str()))
                    .map(|c| {
                        format!(
                            "{} (on the page: {})",
                            c.id,
                            seen.contains_key(c.id.as_str())
                        )
                    })
                    .collect();
                panic!(
                    "round {round}: {} of {CONTAINERS} containers have no network series after \
                     30 s: {missing:?}\nExporter log (tail):\n{}",
                    missing.len(),
                    exp.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };

        // Within two ticks of appearing (plus the page's own poll period).
        for c in &started {
            let lag = with_net[c.id.as_str()] - seen[c.id.as_str()];
            assert!(
                lag <= 2 * INTERVAL + Duration::from_millis(300),
                "round {round}: {} got its network series {lag:?} after it appeared on the page \
                 (interval {INTERVAL:?})",
                c.id
            );
        }
        eprintln!(
            "round {round}: {CONTAINERS} containers with network series; the slowest {:?} after \
             appearing",
            started
                .iter()
                .map(|c| with_net[c.id.as_str()] - seen[c.id.as_str()])
                .max()
                .unwrap()
        );

        // The container in the host's network has none, also a few ticks later.
        assert_eq!(
            network_series(&page, &host_net.id),
            0,
            "{}",
            page.container_lines(&host_net.id)
        );
        let later = exp.wait_for("three more ticks", Duration::from_secs(15), "", |p| {
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
        drop(started);
        drop(host_net);
    }
}
