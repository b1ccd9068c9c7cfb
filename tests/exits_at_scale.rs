//! 300 containers ending at once (issue 16, "Bad input and faults"): every final sample goes
//! out, each with its exit, on the page and over OTLP, none lost and none held past the bound.
//!
//! The containers are container-shaped cgroups on this machine's kernel
//! (`ce-test.slice/docker-<id>.scope`, one sleeping process each, killed together); the
//! exporter follows the real dockerd through the test's proxy (`tests/common/proxy.rs`), which
//! adds Docker's `die` event of each, with its own exit status, as they end. Apart from the
//! other tests: any exporter running meanwhile would wait for these containers' words.
//!
//! It needs root and `.ci/docker-up.sh`.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use common::cgroups::{TestCgroup, layout};
use common::exits::{self, Seen};
use common::exporter::Exporter;
use common::otlp::{Proto, Receiver};
use common::proxy::Proxy;
use common::require_docker;

#[test]
fn three_hundred_containers_ending_at_once() {
    require_docker();
    const N: usize = 300;
    let l = layout();
    // Container-shaped cgroups (`ce-test.slice/docker-<id>.scope`) with one sleeping
    // process each: Docker knows nothing of them, the proxy says how each ended.
    let mut cgroups: Vec<TestCgroup> = (0..N as u32).map(|i| TestCgroup::new(&l, i)).collect();
    for cg in &mut cgroups {
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"for f in "$@"; do echo $$ > "$f" || exit 99; done; exec sleep 600"#)
            .arg("sh")
            .args(cg.procs_files())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn sh");
        cg.children.push(child);
    }
    let proxy = Proxy::docker(Path::new("/var/run/docker.sock"));
    let rx = Receiver::start(Proto::Grpc);
    let endpoint = rx.endpoint();
    let url = proxy.url();
    let e = Exporter::start(&[
        "--interval",
        "1s",
        "--exit-wait",
        "10s",
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
    while proxy.live_streams() == 0 {
        assert!(Instant::now() < deadline, "not followed:\n{}", e.log_tail());
        std::thread::sleep(Duration::from_millis(20));
    }
    let ids: Vec<String> = cgroups.iter().map(|c| c.id.clone()).collect();
    e.wait_for("all running", Duration::from_secs(60), "", |p| {
        ids.iter().all(|id| p.has_container(id))
    });
    // All end at once; Docker's word on each follows.
    for cg in &mut cgroups {
        let _ = cg.children[0].kill();
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let ev = json!({
            "status": "die", "id": id, "from": "none", "Type": "container", "Action": "die",
            "Actor": {"ID": id, "Attributes": {"exitCode": (i % 256).to_string()}},
            "scope": "local", "time": now.as_secs(), "timeNano": now.as_nanos() as u64,
        });
        assert_eq!(proxy.inject(&ev), 1);
    }
    for cg in &mut cgroups {
        let _ = cg.children[0].wait();
    }
    // Every one's end, with its code: gathered over the pages (each leaves once served).
    let want: BTreeMap<&str, Seen> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            (
                id.as_str(),
                Seen::new("Error", Some((i % 256) as i64), None),
            )
        })
        .map(|(id, mut s)| {
            if s.code == Some(0) {
                s.reason = "Completed".into();
            }
            (id, s)
        })
        .collect();
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < N && Instant::now() < deadline {
        let p = e.metrics();
        exits::assert_unique_series(&p);
        for id in &ids {
            if let [s] = exits::on_page(&p, id).as_slice() {
                // With its final sample.
                assert!(
                    p.get("container_uptime_seconds", &[("container_id", id)])
                        .is_some()
                );
                seen.insert(id.clone(), s.clone());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let missing: Vec<&&str> = want.keys().filter(|id| !seen.contains_key(**id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {N} ends never shown, e.g. {:?}\n{}",
        missing.len(),
        missing.first(),
        e.log_tail()
    );
    for (id, s) in &seen {
        assert_eq!(Some(s), want.get(id.as_str()), "{id}");
    }
    // Over OTLP too, each on the resource with its final data points.
    let otlp: HashSet<String> =
        rx.wait_for("300 exits over OTLP", Duration::from_secs(30), |got| {
            let with: HashSet<String> = ids
                .iter()
                .filter(|id| {
                    exits::in_requests(got, id)
                        .iter()
                        .any(|(s, with_final)| *with_final && Some(s) == want.get(id.as_str()))
                })
                .cloned()
                .collect();
            (with.len() == N).then_some(with)
        });
    assert_eq!(otlp.len(), N);
    let page = e.metrics();
    assert!(page.value("container_exporter_final_samples_total", &[]) >= N as f64);
    assert!(page.value("container_exporter_exits_total", &[("outcome", "code")]) >= N as f64);
}
