//! `container_exporter_discovery_events_total{event="removed"}` counts every container's end
//! once, however the exporter notices it (issue 18: after 300 containers came and went it
//! said 295). Real churn on real cgroupfs: rounds of container-shaped cgroups, each with a
//! process, stopped the way a runtime stops a container (its process killed, then its
//! directory removed from every hierarchy at once), so the end is noticed sometimes by the
//! inotify removal, sometimes by a read that finds the cgroup gone (a tick's, or the final
//! read that `populated 0` triggers). The race is tested by repeating the round.
//!
//! The exporter sees only the test's own cgroups (a private root bind-mounted from the real
//! hierarchies), so other tests' containers do not move its counts. Needs root.

mod common;

use std::time::{Duration, Instant};

use common::cgroups::{TestCgroup, read_line};
use common::exporter::Exporter;
use common::page::Page;
use common::private_root::PrivateRoot;

const ROUNDS: u32 = 6;
const PER_ROUND: u32 = 25;

fn events(p: &Page, event: &str) -> f64 {
    p.get(
        "container_exporter_discovery_events_total",
        &[("event", event)],
    )
    .unwrap_or(0.0)
}

#[test]
fn every_container_that_ends_is_counted_removed_once() {
    let root = PrivateRoot::new();
    let layout = root.layout();
    let exp = Exporter::start_with_env(
        &[
            // Short ticks, so ends often fall during one.
            "--interval",
            "100ms",
            "--docker-host",
            "off",
            "--cri-endpoint",
            "off",
            "--podman-host",
            "off",
            "--cgroup-root",
            &root.root.display().to_string(),
        ],
        &[],
    );
    let mut started = 0.0;
    for round in 0..ROUNDS {
        let mut cgroups: Vec<TestCgroup> = (0..PER_ROUND)
            .map(|i| TestCgroup::new(&layout, round * 1000 + i))
            .collect();
        for cg in &mut cgroups {
            let child = cg.spawn_perl("$| = 1; print qq(ready\\n); sleep 120;");
            assert_eq!(read_line(child), "ready");
        }
        started += f64::from(PER_ROUND);
        exp.wait_for(
            "every container of the round tracked",
            Duration::from_secs(15),
            "container_exporter_discovery",
            |p| {
                events(p, "added") == started
                    && p.value("container_exporter_containers_tracked", &[]) == f64::from(PER_ROUND)
            },
        );
        // Stopped as a runtime stops them: the processes killed, then the directories
        // removed from every hierarchy.
        drop(cgroups);
        let deadline = Instant::now() + Duration::from_secs(15);
        let page = loop {
            let p = exp.metrics();
            let settled = p.value("container_exporter_containers_tracked", &[]) == 0.0
                && events(&p, "removed") >= started;
            if settled || Instant::now() > deadline {
                break p;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        // A few more ticks: a container counted twice would show now.
        std::thread::sleep(Duration::from_millis(500));
        let page_after = exp.metrics();
        let (added, removed) = (events(&page_after, "added"), events(&page_after, "removed"));
        assert_eq!(
            (added, removed),
            (started, started),
            "round {round}: {started} containers came and went, the exporter counts {added} \
             added and {removed} removed (tracked: {})",
            page.value("container_exporter_containers_tracked", &[])
        );
        eprintln!("round {round}: {removed} removed of {added} added");
    }
}

/// A container restarted under the same id gets a new cgroup directory (a new inode): the
/// old one's end is one removal and the new one one addition, whichever way the exporter
/// notices (inotify's delete and create, a read of the old files finding them gone, or a
/// rescan seeing a new inode).
#[test]
fn a_restart_under_the_same_id_is_one_removal_and_one_addition() {
    const RESTARTS: u32 = 12;
    let root = PrivateRoot::new();
    let layout = root.layout();
    let exp = Exporter::start_with_env(
        &[
            "--interval",
            "100ms",
            "--docker-host",
            "off",
            "--cri-endpoint",
            "off",
            "--podman-host",
            "off",
            "--cgroup-root",
            &root.root.display().to_string(),
        ],
        &[],
    );
    let start = |tag| {
        let mut cg = TestCgroup::new(&layout, tag);
        let child = cg.spawn_perl("$| = 1; print qq(ready\\n); sleep 120;");
        assert_eq!(read_line(child), "ready");
        cg
    };
    let mut cg = start(7);
    let id = cg.id.clone();
    for n in 1..=RESTARTS {
        exp.wait_for(
            "the container on the page",
            Duration::from_secs(10),
            &id,
            |p| p.has_container(&id) && events(p, "added") >= f64::from(n),
        );
        drop(cg);
        cg = start(7);
        assert_eq!(cg.id, id);
    }
    let page = exp.wait_for(
        "every restart counted",
        Duration::from_secs(10),
        "container_exporter_discovery",
        |p| p.has_container(&id) && events(p, "added") >= f64::from(RESTARTS + 1),
    );
    std::thread::sleep(Duration::from_millis(500));
    let after = exp.metrics();
    let (added, removed) = (events(&after, "added"), events(&after, "removed"));
    assert_eq!(
        (added, removed),
        (f64::from(RESTARTS + 1), f64::from(RESTARTS)),
        "{RESTARTS} restarts of one container: {added} added, {removed} removed\n{}",
        page.container_lines("container_exporter_discovery")
    );
    drop(cg);
}
