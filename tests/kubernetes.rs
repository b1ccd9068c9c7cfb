//! Kubernetes for real (issue 10): a private containerd with its CRI plugin, driven the way
//! the kubelet drives it (`tests/common/cri.rs`), the real exporter binary reading the pods'
//! real cgroups, a real OTLP receiver and a real Prometheus.
//!
//! - two pods of two containers each: the page and the OTLP requests carry each container's
//!   namespace, pod, container name and image; the pods' own series exist; network counters
//!   appear once per pod, never on its containers; sandboxes are not containers;
//! - a container restarted as a new attempt gets its new id and restart count, and a removed
//!   pod's series leave the page;
//! - containerd stopped and started again under the exporter: collection never stops, and
//!   names return;
//! - without the CRI endpoint, containers are reported by id, with one clear warning;
//! - kube-prometheus's container recording rules and the `CPUThrottlingHigh` alert, in a real
//!   Prometheus scraping the cAdvisor page, return one series per namespace/pod/container.
//!
//! They need root, `.ci/containerd-up.sh` (containerd, runc, the CNI plugins and the test
//! images) and `.ci/prometheus-up.sh`.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cri::{BUSYBOX, Containerd, Net, Pod, Qos, TOOLS};
use common::exporter::Exporter;
use common::otlp::{Proto, Receiver, attr, points};
use common::page::Page;
use common::prometheus::{Prometheus, label};

/// Serves a file on the pod's loopback and fetches it in a loop; exits at once on SIGTERM.
const TRAFFIC: &str = "trap 'exit 0' TERM INT; mkdir -p /w && dd if=/dev/zero of=/w/f bs=1024 \
     count=64 2>/dev/null && httpd -p 8080 -h /w && while :; do wget -q -O /dev/null \
     http://127.0.0.1:8080/f; sleep 0.2; done";

fn exporter(cd: &Containerd, extra: &[&str]) -> Exporter {
    let mut args = vec![
        "--interval",
        "1s",
        "--cri-endpoint",
        cd.endpoint.as_str(),
        "--docker-host",
        "off",
        "--podman-host",
        "off",
    ];
    args.extend_from_slice(extra);
    Exporter::start_with_env(&args, &[])
}

/// The one `container_info` series of a container, if it is on the page.
fn info<'a>(page: &'a Page, id: &str) -> Option<&'a BTreeMap<String, String>> {
    match page
        .series("container_info", &[("container_id", id)])
        .as_slice()
    {
        [s] => Some(&s.labels),
        _ => None,
    }
}

/// Waits until every one of `ids` is on the page with its Kubernetes names.
fn wait_named(exp: &Exporter, ids: &[&str]) -> Page {
    exp.wait_for(
        "every container named",
        Duration::from_secs(30),
        ids[0],
        |p| {
            ids.iter().all(|id| {
                info(p, id).is_some_and(|l| l.contains_key("k8s_container_name"))
                    && p.cpu_seconds(id).is_some()
            })
        },
    )
}

struct Expect<'a> {
    id: &'a str,
    pod: &'a Pod,
    container: &'a str,
    image: &'a str,
    tag: &'a str,
}

#[test]
fn two_pods_of_two_containers_are_named_and_their_network_counted_once() {
    let cd = Containerd::start();
    let rx = Receiver::start(Proto::Http);
    let exp = exporter(
        &cd,
        &[
            "--pod-labels",
            "app",
            "--otlp-endpoint",
            &rx.endpoint(),
            "--otlp-protocol",
            "http/protobuf",
        ],
    );
    let web = cd.run_pod(
        "web-0",
        "shop",
        Qos::Burstable,
        Net::Pod,
        &[("app", "web"), ("secret", "s")],
    );
    let web_app = cd.create_container_cmd(&web, "app", BUSYBOX, 0, TRAFFIC);
    cd.start_container(&web_app);
    let web_side = cd.run_container(&web, "sidecar", TOOLS, 0);
    let job = cd.run_pod(
        "job-1",
        "batch",
        Qos::Guaranteed,
        Net::Pod,
        &[("app", "job")],
    );
    let job_work = cd.create_container_cmd(&job, "worker", BUSYBOX, 0, TRAFFIC);
    cd.start_container(&job_work);
    let job_help = cd.run_container(&job, "helper", TOOLS, 0);
    let expect = [
        Expect {
            id: &web_app,
            pod: &web,
            container: "app",
            image: "docker.io/library/busybox",
            tag: "ce-test",
        },
        Expect {
            id: &web_side,
            pod: &web,
            container: "sidecar",
            image: "registry.local:5000/ce/tools",
            tag: "v2",
        },
        Expect {
            id: &job_work,
            pod: &job,
            container: "worker",
            image: "docker.io/library/busybox",
            tag: "ce-test",
        },
        Expect {
            id: &job_help,
            pod: &job,
            container: "helper",
            image: "registry.local:5000/ce/tools",
            tag: "v2",
        },
    ];
    let ids: Vec<&str> = expect.iter().map(|e| e.id).collect();
    wait_named(&exp, &ids);
    // The pods' loopback traffic counted, on the pods.
    let page = exp.wait_for(
        "both pods' network counters",
        Duration::from_secs(20),
        &web.uid,
        |p| {
            [&web, &job].iter().all(|pod| {
                p.get(
                    "k8s_pod_network_io_bytes_total",
                    &[
                        ("k8s_pod_uid", &pod.uid),
                        ("network_interface_name", "lo"),
                        ("network_io_direction", "receive"),
                    ],
                )
                .is_some_and(|v| v > 0.0)
            })
        },
    );

    // Each container's identity on every series, the rest on its info series.
    for e in &expect {
        let l = info(&page, e.id).unwrap_or_else(|| panic!("{} not on the page", e.id));
        let want = [
            ("k8s_namespace_name", e.pod.namespace.as_str()),
            ("k8s_pod_name", e.pod.name.as_str()),
            ("k8s_container_name", e.container),
            ("container_name", e.container),
            ("container_image_name", e.image),
            ("container_image_tags", e.tag),
            ("k8s_pod_uid", e.pod.uid.as_str()),
            ("k8s_container_restart_count", "0"),
            ("container_runtime_name", "containerd"),
        ];
        for (k, v) in want {
            assert_eq!(
                l.get(k).map(String::as_str),
                Some(v),
                "{k} of {}: {l:?}",
                e.container
            );
        }
        assert!(
            l.get("container_image_id")
                .is_some_and(|i| i.starts_with("sha256:")),
            "{l:?}"
        );
        let cpu = page.series(
            "container_cpu_time_seconds_total",
            &[
                ("container_id", e.id),
                ("k8s_namespace_name", &e.pod.namespace),
                ("k8s_pod_name", &e.pod.name),
                ("k8s_container_name", e.container),
            ],
        );
        assert_eq!(cpu.len(), 2, "user and system, with the names: {cpu:?}");
        // Network once per pod: never on a container of a pod.
        let net = page
            .samples
            .iter()
            .filter(|s| s.name.starts_with("container_network_"))
            .filter(|s| s.labels.get("container_id").is_some_and(|v| v == e.id))
            .count();
        assert_eq!(net, 0, "{} has network series of its own", e.container);
    }

    // The pods: their own resources, with their names and allowed labels only.
    for pod in [&web, &job] {
        let pinfo = page.series("k8s_pod_info", &[("k8s_pod_uid", &pod.uid)]);
        assert_eq!(pinfo.len(), 1, "{pinfo:?}");
        let l = &pinfo[0].labels;
        assert_eq!(l.get("k8s_pod_name"), Some(&pod.name));
        assert_eq!(l.get("k8s_namespace_name"), Some(&pod.namespace));
        assert!(
            l.contains_key("k8s_pod_label_app") && !l.contains_key("k8s_pod_label_secret"),
            "{l:?}"
        );
        for m in [
            "k8s_pod_cpu_time_seconds_total",
            "k8s_pod_memory_usage_bytes",
            "k8s_pod_memory_working_set_bytes",
            "k8s_pod_pids",
        ] {
            assert!(
                !page
                    .series(m, &[("k8s_pod_uid", &pod.uid), ("k8s_pod_name", &pod.name)])
                    .is_empty(),
                "{m} of {}",
                pod.name
            );
        }
        // The pod's total holds its containers' (and its sandbox's).
        let pod_cpu: f64 = page
            .series(
                "k8s_pod_cpu_time_seconds_total",
                &[("k8s_pod_uid", &pod.uid)],
            )
            .iter()
            .map(|s| s.value)
            .sum();
        let containers_cpu: f64 = expect
            .iter()
            .filter(|e| e.pod.uid == pod.uid)
            .filter_map(|e| page.cpu_seconds(e.id))
            .sum();
        assert!(
            pod_cpu >= containers_cpu * 0.95,
            "{}: pod CPU {pod_cpu} s < its containers' {containers_cpu} s",
            pod.name
        );
        // Sandboxes are not containers.
        assert!(
            !page.has_container(&pod.sandbox_id),
            "the sandbox of {} is on the page",
            pod.name
        );
        // One set of network series per pod, on its interfaces.
        let lo_rx = page.series(
            "k8s_pod_network_io_bytes_total",
            &[
                ("k8s_pod_name", &pod.name),
                ("network_io_direction", "receive"),
            ],
        );
        let ifaces: Vec<&str> = lo_rx
            .iter()
            .map(|s| s.labels["network_interface_name"].as_str())
            .collect();
        assert!(
            ifaces.contains(&"lo") && ifaces.contains(&"eth0"),
            "{ifaces:?}"
        );
        let mut unique = ifaces.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ifaces.len(), "an interface twice: {ifaces:?}");
    }

    // The same in OTLP.
    let req = rx.wait_for(
        "a request with every container named",
        Duration::from_secs(20),
        |got| {
            got.iter()
                .rev()
                .find(|g| {
                    expect.iter().all(|e| {
                        g.request.resource_metrics.iter().any(|r| {
                            attr(r, "container.id").as_deref() == Some(e.id)
                                && attr(r, "k8s.container.name").is_some()
                        })
                    })
                })
                .map(|g| g.request.clone())
        },
    );
    for e in &expect {
        let r = req
            .resource_metrics
            .iter()
            .find(|r| attr(r, "container.id").as_deref() == Some(e.id))
            .unwrap();
        for (k, v) in [
            ("k8s.namespace.name", e.pod.namespace.as_str()),
            ("k8s.pod.name", e.pod.name.as_str()),
            ("k8s.pod.uid", e.pod.uid.as_str()),
            ("k8s.container.name", e.container),
            ("container.image.name", e.image),
            ("k8s.container.restart_count", "0"),
            ("container.runtime.name", "containerd"),
        ] {
            assert_eq!(attr(r, k).as_deref(), Some(v), "{k} of {}", e.container);
        }
        assert!(
            points(r, "container.network.io").is_empty(),
            "network on {}",
            e.container
        );
        assert_eq!(points(r, "container.cpu.time").len(), 2);
    }
    for pod in [&web, &job] {
        let r = req
            .resource_metrics
            .iter()
            .find(|r| {
                attr(r, "k8s.pod.uid").as_deref() == Some(pod.uid.as_str())
                    && attr(r, "container.id").is_none()
            })
            .unwrap_or_else(|| panic!("no resource for pod {}", pod.name));
        assert_eq!(attr(r, "k8s.pod.name").as_deref(), Some(pod.name.as_str()));
        assert_eq!(
            attr(r, "k8s.namespace.name").as_deref(),
            Some(pod.namespace.as_str())
        );
        assert!(attr(r, "k8s.pod.label.app").is_some());
        assert_eq!(points(r, "k8s.pod.cpu.time").len(), 2);
        assert!(!points(r, "k8s.pod.network.io").is_empty());
        assert!(!points(r, "k8s.pod.memory.working_set").is_empty());
    }
    assert!(
        req.resource_metrics.iter().all(|r| ![&web, &job]
            .iter()
            .any(|p| attr(r, "container.id").as_deref() == Some(p.sandbox_id.as_str()))),
        "a sandbox is a resource of its own"
    );
}

/// The file the server pod serves over `eth0`: 1 MiB and an odd remainder.
const SERVED_BYTES: u64 = (1 << 20) + 4321;
/// How many times the client pod fetches it.
const FETCHES: u64 = 8;
/// What an `eth0` carries besides the file, in either direction, for the whole test: per
/// fetch the TCP handshake and close, the request or response head (under 300 bytes), and the
/// Ethernet, IP and TCP headers of each segment (66 bytes on at most 1448 of data: 4.6 %, or
/// the data's ACKs the other way); and once, ARP and IPv6 neighbour and multicast chatter of a
/// new interface. 5 % of the payload, 4 KiB per fetch and 64 KiB in all bound it.
fn eth0_overhead(payload: u64) -> u64 {
    payload / 20 + FETCHES * 4096 + 64 * 1024
}

/// Whether the log of `container` in `pod` has a line that ends with `word` (the CRI log
/// format: `<time> stdout F <text>`).
fn logged(cd: &Containerd, pod: &Pod, container: &str, word: &str) -> bool {
    let log = cd
        .dir
        .join("pods")
        .join(format!("{}_{}_{}", pod.namespace, pod.name, pod.uid))
        .join(container)
        .join("0.log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .any(|l| l.ends_with(&format!(" {word}")))
}

fn wait_logged(cd: &Containerd, pod: &Pod, container: &str, word: &str) {
    // Only ends a wait for a workload that never gets there.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !logged(cd, pod, container, word) {
        assert!(
            !logged(cd, pod, container, "FAIL"),
            "{}/{container} failed before {word:?}",
            pod.name
        );
        assert!(
            Instant::now() < deadline,
            "{}/{container} never said {word:?}",
            pod.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A pod's `eth0` counters against the bytes the workload moved between two pods on the CNI
/// bridge: one serves a file, the other fetches it [`FETCHES`] times and stops. The server's
/// transmitted bytes and the client's received bytes are at least the files' bytes and at
/// most that plus the overhead; the other way, the requests and ACKs. Each pod's eth0 is the
/// other's only peer, so what one sent, the other received.
#[test]
fn a_pods_eth0_counts_the_bytes_moved_between_two_pods() {
    let cd = Containerd::start();
    let exp = exporter(&cd, &[]);
    let server = cd.run_pod("files-0", "net", Qos::BestEffort, Net::Pod, &[]);
    let (_, server_ip) = cd.sandbox_status(&server);
    assert!(!server_ip.is_empty(), "the server pod has no address");
    let serve = format!(
        "trap 'exit 0' TERM INT; mkdir -p /w && head -c {SERVED_BYTES} /dev/zero >/w/f \
         && httpd -p 8080 -h /w && echo serving || echo FAIL; \
         while :; do sleep 3600 & wait; done"
    );
    let s = cd.create_container_cmd(&server, "web", BUSYBOX, 0, &serve);
    cd.start_container(&s);
    wait_logged(&cd, &server, "web", "serving");

    let client = cd.run_pod("fetch-0", "net", Qos::BestEffort, Net::Pod, &[]);
    let fetch = format!(
        "trap 'exit 0' TERM INT; for i in $(seq {FETCHES}); do \
         wget -q -O /dev/null http://{server_ip}:8080/f || {{ echo FAIL; exit 1; }}; done; \
         echo fetched; while :; do sleep 3600 & wait; done"
    );
    let c = cd.create_container_cmd(&client, "get", BUSYBOX, 0, &fetch);
    cd.start_container(&c);
    wait_logged(&cd, &client, "get", "fetched");

    let payload = SERVED_BYTES * FETCHES;
    let eth0 = |p: &Page, pod: &Pod, direction: &str| -> u64 {
        p.get(
            "k8s_pod_network_io_bytes_total",
            &[
                ("k8s_pod_uid", &pod.uid),
                ("network_interface_name", "eth0"),
                ("network_io_direction", direction),
            ],
        )
        .unwrap_or(0.0) as u64
    };
    // The traffic is over: the page has it once its counters reach the payload.
    let page = exp.wait_for(
        "both pods' eth0 with the fetched files",
        Duration::from_secs(60),
        &server.uid,
        |p| eth0(p, &server, "transmit") >= payload && eth0(p, &client, "receive") >= payload,
    );
    let (server_tx, server_rx) = (
        eth0(&page, &server, "transmit"),
        eth0(&page, &server, "receive"),
    );
    let (client_tx, client_rx) = (
        eth0(&page, &client, "transmit"),
        eth0(&page, &client, "receive"),
    );
    eprintln!(
        "{FETCHES} fetches of {SERVED_BYTES} B ({payload} B): server eth0 tx {server_tx} rx \
         {server_rx}, client eth0 tx {client_tx} rx {client_rx}"
    );
    let most = payload + eth0_overhead(payload);
    for (what, v) in [
        ("server transmitted", server_tx),
        ("client received", client_rx),
    ] {
        assert!(
            (payload..=most).contains(&v),
            "{what} {v} B on eth0 for {FETCHES} files of {SERVED_BYTES} B: want {payload}..={most}"
        );
    }
    // The other way: at least each fetch's request line, at most the overhead (no file).
    let request = format!("GET /f HTTP/1.1\r\nHost: {server_ip}:8080\r\n\r\n").len() as u64;
    let least = FETCHES * request;
    for (what, v) in [
        ("client transmitted", client_tx),
        ("server received", server_rx),
    ] {
        assert!(
            (least..=eth0_overhead(payload)).contains(&v),
            "{what} {v} B on eth0 for {FETCHES} requests: want {least}..={}",
            eth0_overhead(payload)
        );
    }
    // One's only peer is the other: what one sent, the other received (bar the chatter).
    for (a, b, what) in [
        (server_tx, client_rx, "server tx vs client rx"),
        (client_tx, server_rx, "client tx vs server rx"),
    ] {
        assert!(
            a.abs_diff(b) <= 64 * 1024,
            "{what}: {a} B vs {b} B on the two ends of the same transfers"
        );
    }
    // Network once per pod: the containers have none of their own.
    for id in [&s, &c] {
        assert!(
            !page
                .samples
                .iter()
                .any(|x| x.name.starts_with("container_network_")
                    && x.labels.get("container_id") == Some(id)),
            "{id} has network series of its own"
        );
    }
}

#[test]
fn a_restarted_container_gets_its_new_id_and_count_and_a_removed_pod_leaves() {
    let cd = Containerd::start();
    let exp = exporter(&cd, &["--exited-retention", "5s"]);
    let pod = cd.run_pod("api-0", "shop", Qos::BestEffort, Net::Host, &[]);
    let first = cd.run_container(&pod, "api", BUSYBOX, 0);
    let page = wait_named(&exp, &[&first]);
    assert_eq!(
        info(&page, &first).unwrap()["k8s_container_restart_count"],
        "0"
    );

    // The kubelet restarts a container as a new one: attempt 1, a new id.
    cd.stop_container(&first);
    let second = cd.run_container(&pod, "api", BUSYBOX, 1);
    assert_ne!(first, second);
    let page = exp.wait_for(
        "the new attempt named, the old one gone",
        Duration::from_secs(30),
        &second,
        |p| {
            info(p, &second).is_some_and(|l| {
                l.get("k8s_container_restart_count").map(String::as_str) == Some("1")
            }) && !p.has_container(&first)
        },
    );
    let l = info(&page, &second).unwrap();
    assert_eq!(l["k8s_container_name"], "api");
    assert_eq!(l["k8s_pod_name"], "api-0");

    // The pod is deleted: every series of it and of its containers leaves.
    cd.remove_pod(&pod);
    exp.wait_for(
        "the removed pod's series gone",
        Duration::from_secs(30),
        &pod.uid,
        |p| {
            !p.has_container(&second)
                && p.samples
                    .iter()
                    .all(|s| s.labels.get("k8s_pod_uid").is_none_or(|u| *u != pod.uid))
        },
    );
}

#[test]
fn collection_goes_on_while_containerd_restarts_and_names_return() {
    let mut cd = Containerd::start();
    let exp = exporter(&cd, &[]);
    let pod = cd.run_pod("db-0", "data", Qos::BestEffort, Net::Host, &[]);
    let db = cd.run_container(&pod, "db", BUSYBOX, 0);
    wait_named(&exp, &[&db]);
    let connected = |p: &Page| {
        p.get(
            "container_exporter_metadata_connected",
            &[("source", "cri")],
        )
    };
    exp.wait_for("connected", Duration::from_secs(10), "", |p| {
        connected(p) == Some(1.0)
    });

    cd.stop();
    let at = exp
        .metrics()
        .value("container_exporter_collections_total", &[]);
    // Long enough for several reconnection attempts (250 ms, 500 ms, 1 s, … apart).
    let page = exp.wait_for(
        "three ticks and four failed attempts without containerd",
        Duration::from_secs(20),
        &db,
        |p| {
            p.value("container_exporter_collections_total", &[]) >= at + 3.0
                && connected(p) == Some(0.0)
                && p.value(
                    "container_exporter_metadata_api_errors_total",
                    &[("source", "cri")],
                ) >= 4.0
        },
    );
    // Still read, still named by what was known.
    assert!(page.cpu_seconds(&db).is_some());
    assert_eq!(info(&page, &db).unwrap()["k8s_container_name"], "db");

    cd.start_again();
    let later = cd.run_container(&pod, "cache", TOOLS, 0);
    let page = wait_named(&exp, &[&db, &later]);
    assert_eq!(info(&page, &later).unwrap()["k8s_container_name"], "cache");
    assert_eq!(connected(&page), Some(1.0));
    assert!(
        page.value(
            "container_exporter_metadata_api_errors_total",
            &[("source", "cri")]
        ) >= 1.0,
        "the outage is counted"
    );
    // One warning for the outage, not one per retry, and one line when it ends.
    let log = exp.log_text();
    assert_eq!(
        (
            log.matches("lost the CRI runtime").count(),
            log.matches("CRI runtime reachable again").count()
        ),
        (1, 1),
        "{}",
        exp.log_tail()
    );
}

#[test]
fn without_the_cri_endpoint_containers_are_reported_by_id_with_one_warning() {
    let cd = Containerd::start();
    let missing = format!("unix://{}/no-such.sock", cd.dir.display());
    let exp = Exporter::start_with_env(
        &[
            "--interval",
            "1s",
            "--cri-endpoint",
            &missing,
            "--docker-host",
            "off",
            "--podman-host",
            "off",
        ],
        &[],
    );
    let pod = cd.run_pod("lone-0", "shop", Qos::BestEffort, Net::Host, &[]);
    let c = cd.run_container(&pod, "lone", BUSYBOX, 0);
    let page = exp.wait_for("the container by id", Duration::from_secs(20), &c, |p| {
        p.cpu_seconds(&c).is_some()
    });
    let l = info(&page, &c).unwrap();
    assert_eq!(
        l.get("k8s_pod_uid"),
        Some(&pod.uid),
        "the pod uid from the cgroup path"
    );
    assert!(
        !l.contains_key("k8s_pod_name") && !l.contains_key("k8s_container_name"),
        "{l:?}"
    );
    // The sandbox cannot be told apart without the CRI: it is reported by id too, and the
    // pod's own cgroup is there.
    assert!(
        !page
            .series(
                "k8s_pod_cpu_time_seconds_total",
                &[("k8s_pod_uid", &pod.uid)]
            )
            .is_empty()
    );
    let at = page.value("container_exporter_collections_total", &[]);
    exp.wait_for("five more ticks", Duration::from_secs(20), "", |p| {
        p.value("container_exporter_collections_total", &[]) >= at + 5.0
    });
    let log = exp.log_text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("no-such.sock"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning for the outage:\n{log}");
}

/// kube-prometheus's recording rules for containers, and the `CPUThrottlingHigh` alert, as
/// its `kubernetes-mixin` writes them, without the `kube_pod_info` join (that needs
/// kube-state-metrics). The scrape job is labelled as the kubelet's cAdvisor job.
const RULES: &str = r#"groups:
  - name: k8s.rules.container
    rules:
      - record: node_namespace_pod_container:container_cpu_usage_seconds_total:sum_irate
        expr: sum by (cluster, namespace, pod, container) (irate(container_cpu_usage_seconds_total{job="kubelet", metrics_path="/metrics/cadvisor", image!=""}[5m]))
      - record: node_namespace_pod_container:container_memory_working_set_bytes
        expr: container_memory_working_set_bytes{job="kubelet", metrics_path="/metrics/cadvisor", image!=""}
      - record: node_namespace_pod_container:container_memory_rss
        expr: container_memory_rss{job="kubelet", metrics_path="/metrics/cadvisor", image!=""}
      - record: node_namespace_pod_container:container_memory_cache
        expr: container_memory_cache{job="kubelet", metrics_path="/metrics/cadvisor", image!=""}
      - record: node_namespace_pod_container:container_memory_swap
        expr: container_memory_swap{job="kubelet", metrics_path="/metrics/cadvisor", image!=""}
  - name: kubernetes-resources
    rules:
      - alert: CPUThrottlingHigh
        expr: |
          sum(increase(container_cpu_cfs_throttled_periods_total{container!="", job="kubelet", metrics_path="/metrics/cadvisor", }[5m])) without (id, metrics_path, name, image, endpoint, job, node)
            / on (cluster, namespace, pod, container, instance) group_left
          sum(increase(container_cpu_cfs_periods_total{job="kubelet", metrics_path="/metrics/cadvisor", }[5m])) without (id, metrics_path, name, image, endpoint, job, node)
            > ( 25 / 100 )
        for: 0s
        labels:
          severity: info
"#;

#[test]
fn kube_prometheus_rules_work_unchanged_on_the_cadvisor_page() {
    let cd = Containerd::start();
    let exp = exporter(&cd, &["--prometheus-names", "cadvisor"]);
    let web = cd.run_pod("web-1", "shop", Qos::Burstable, Net::Pod, &[]);
    let web_a = cd.run_container(&web, "app", BUSYBOX, 0);
    let web_b = cd.run_container(&web, "sidecar", TOOLS, 0);
    // A guaranteed pod has a CPU quota (10 % of a CPU): a busy loop in it is throttled.
    let job = cd.run_pod("job-2", "batch", Qos::Guaranteed, Net::Pod, &[]);
    let job_a = cd.create_container_cmd(
        &job,
        "burner",
        BUSYBOX,
        0,
        "trap 'exit 0' TERM; while :; do :; done",
    );
    cd.start_container(&job_a);
    let created = [
        ("shop", "web-1", "app"),
        ("shop", "web-1", "sidecar"),
        ("batch", "job-2", "burner"),
    ];
    // The scrape configuration the README gives, with a static target.
    let prom = Prometheus::start_with(
        &format!(
            "  - job_name: kubelet\n    metrics_path: /metrics\n    static_configs:\n      \
             - targets: ['127.0.0.1:{}']\n    relabel_configs:\n      - target_label: \
             metrics_path\n        replacement: /metrics/cadvisor\n",
            exp.port
        ),
        Some(RULES),
    );
    let _ = (&web_a, &web_b);
    for record in [
        "node_namespace_pod_container:container_cpu_usage_seconds_total:sum_irate",
        "node_namespace_pod_container:container_memory_working_set_bytes",
        "node_namespace_pod_container:container_memory_rss",
        "node_namespace_pod_container:container_memory_cache",
    ] {
        let q = format!("{record}{{namespace=~\"shop|batch\"}}");
        let deadline = Instant::now() + Duration::from_secs(40);
        let series = loop {
            let r = prom.query(&q);
            let keys: Vec<(String, String, String)> = r
                .iter()
                .map(|s| {
                    (
                        label(s, "namespace").unwrap_or("").to_string(),
                        label(s, "pod").unwrap_or("").to_string(),
                        label(s, "container").unwrap_or("").to_string(),
                    )
                })
                .collect();
            if keys.len() >= created.len() || Instant::now() >= deadline {
                break keys;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        let mut want: Vec<(String, String, String)> = created
            .iter()
            .map(|(n, p, c)| (n.to_string(), p.to_string(), c.to_string()))
            .collect();
        want.sort();
        let mut got = series.clone();
        got.sort();
        assert_eq!(
            got, want,
            "{record}: one series per namespace/pod/container created"
        );
    }
    // The burner is throttled above a quarter of its periods: the alert fires for it alone.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let alerts = prom.query("ALERTS{alertname=\"CPUThrottlingHigh\", alertstate=\"firing\"}");
        let who: Vec<(Option<&str>, Option<&str>)> = alerts
            .iter()
            .map(|a| (label(a, "pod"), label(a, "container")))
            .collect();
        if who.contains(&(Some("job-2"), Some("burner"))) {
            assert_eq!(who.len(), 1, "{who:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "CPUThrottlingHigh did not fire for the burner: {alerts:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn check_names_the_runtime_and_counts_the_named_containers() {
    let cd = Containerd::start();
    let pod = cd.run_pod("chk-0", "ops", Qos::BestEffort, Net::Host, &[]);
    let _a = cd.run_container(&pod, "a", BUSYBOX, 0);
    let check = |endpoint: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_container-exporter"))
            .args([
                "check",
                "--cri-endpoint",
                endpoint,
                "--docker-host",
                "off",
                "--podman-host",
                "off",
            ])
            .output()
            .expect("run check");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let report = check(&cd.endpoint);
    let cri = report
        .lines()
        .find(|l| l.contains(" cri "))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        cri.starts_with("ok") && cri.contains("containerd 1.") && cri.contains(&cd.endpoint),
        "{report}"
    );
    let names = report
        .lines()
        .find(|l| l.contains(" names "))
        .unwrap_or_else(|| panic!("{report}"));
    // Every container found on the host has a name (those of this containerd, and the other
    // tests' Docker containers have none here: Docker is off), and the sandbox is not counted.
    assert!(names.contains("sandboxes are not reported"), "{report}");

    let missing = format!("unix://{}/no-such.sock", cd.dir.display());
    let report = check(&missing);
    let cri = report
        .lines()
        .find(|l| l.contains(" cri "))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        cri.starts_with("warn") && cri.contains("no-such.sock"),
        "{report}"
    );
}
