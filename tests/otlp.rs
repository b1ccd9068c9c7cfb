//! OTLP export end to end (issue 5): the real binary sends to a receiver inside the test (a
//! tonic gRPC server implementing `MetricsService` and a hyper HTTP server for
//! `/v1/metrics`, both decoding with `opentelemetry-proto`'s types and recording headers),
//! with real Docker containers (image `ce-busybox:test`, `--network none`).
//!
//! - a container that burned a known CPU time arrives as one resource with its `container.*`
//!   attributes and `container.cpu.time` within 10 % of the workload's own `time`; gzip bodies
//!   and `OTEL_EXPORTER_OTLP_HEADERS` arrive; both protocols;
//! - a receiver that refuses (HTTP 503, gRPC UNAVAILABLE) for a while, then accepts: cumulative
//!   counters lose nothing, their start time is unchanged, the queue stays within its bound,
//!   retries and drops show in the self-metrics;
//! - a receiver that accepts connections and never answers: memory stays bounded, collection
//!   goes on, the Prometheus page stays fresh;
//! - a container that lives less than one interval: its final sample arrives (OTLP alone,
//!   Prometheus page off);
//! - a tick larger than `--otlp-max-request-size` arrives as several requests, each within a
//!   receiver that refuses larger ones as the Collector does, together every container once.
//!
//! They need root and a running dockerd with the test image: run `.ci/docker-up.sh` first.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;

use common::otlp::{Hanging, Proto, Receiver, attr, points, resource, self_resource};
use common::{Container, busybox_time, free_port, http_request, log_tail, terminate, unique_name};

// ---------------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------------

/// Waits for busybox `time`'s report in the logs of `c` and returns user + sys seconds.
fn burned(c: &Container, timeout: Duration) -> f64 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = busybox_time(&c.logs()) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "no `time` report in the logs of {}",
            c.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// user + system CPU seconds of a container resource, and the counter's start time.
fn cpu_time(r: &ResourceMetrics) -> Option<(f64, u64)> {
    let p = points(r, "container.cpu.time");
    if p.len() != 2 {
        return None;
    }
    assert_eq!(p[0].2, p[1].2, "one start time for both cpu modes");
    Some((p[0].1 + p[1].1, p[0].2))
}

fn self_value(req: &ExportMetricsServiceRequest, name: &str, attr: Option<&str>) -> f64 {
    points(self_resource(req), name)
        .into_iter()
        .filter(|p| attr.is_none_or(|a| p.0.iter().any(|x| x.contains(a))))
        .map(|p| p.1)
        .sum()
}

// ---------------------------------------------------------------------------------------------
// The exporter
// ---------------------------------------------------------------------------------------------

struct Exporter {
    child: Option<Child>,
    port: Option<u16>,
    log: std::path::PathBuf,
}

impl Exporter {
    /// Starts the binary; with `prometheus`, on a free port, waiting until it answers.
    fn start(prometheus: bool, args: &[&str], env: &[(&str, &str)]) -> Exporter {
        let port = prometheus.then(free_port);
        let listen = port.map_or("off".to_string(), |p| format!("127.0.0.1:{p}"));
        let log = std::env::temp_dir().join(format!("{}-exporter.log", unique_name()));
        let f = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_container-exporter"));
        cmd.args(["--prometheus-listen", &listen, "--log-level", "debug"])
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f);
        for (k, _) in std::env::vars() {
            if k.starts_with("OTEL_") || k.starts_with("CONTAINER_EXPORTER_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied());
        let child = cmd.spawn().expect("start container-exporter");
        let mut e = Exporter {
            child: Some(child),
            port,
            log,
        };
        if let Some(p) = port {
            let deadline = Instant::now() + Duration::from_secs(15);
            while http_get(p, "/healthz").is_err() {
                if let Some(st) = e.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!("the exporter exited at start ({st}):\n{}", e.log_tail());
                }
                assert!(
                    Instant::now() < deadline,
                    "the exporter does not answer:\n{}",
                    e.log_tail()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        e
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    fn log_tail(&self) -> String {
        log_tail(&self.log, 40)
    }

    /// A `name{labels} value` sample of the Prometheus page (the sum over label sets
    /// matching `labels`).
    fn page_value(&self, name: &str, labels: &str) -> f64 {
        let text = http_get(self.port.expect("page on"), "/metrics").expect("GET /metrics");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.split(['{', ' ']).next() == Some(name)
                    && (labels.is_empty() || l.contains(labels))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- exporter log (tail) ---\n{}", self.log_tail());
        }
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(8), Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The body of a 200 answer to `GET path` within 5 s; any other status is an error.
fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let r = http_request(port, path, &[], Duration::from_secs(5))?;
    if r.status != 200 {
        return Err(std::io::Error::other(format!("HTTP status {}", r.status)));
    }
    String::from_utf8(r.body).map_err(std::io::Error::other)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// A container's resource, cpu time within 10 % of its `time`, gzip, headers.
fn burned_cpu_arrives(proto: Proto) {
    let rx = Receiver::start(proto);
    let c = Container::sh(&[], "time timeout 2 yes >/dev/null; sleep 600");
    let endpoint = rx.endpoint();
    let e = Exporter::start(
        false,
        &[
            "--interval",
            "500ms",
            "--otlp-endpoint",
            &endpoint,
            "--otlp-protocol",
            rx.protocol(),
        ],
        &[
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-api-key=s3cr%20t,x-tenant=team-a",
            ),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=test,service.name=nope",
            ),
            ("OTEL_SERVICE_NAME", "ce-under-test"),
        ],
    );
    let burned = burned(&c, Duration::from_secs(20));
    // `timeout 2 yes` gets what CPU the machine gives it in 2 s: on a loaded machine, a few
    // tenths of a second.
    assert!(burned > 0.1, "the workload burned only {burned} s");
    // A request collected after the burn ended (a tick is 500 ms) that names the container.
    let since = Instant::now() + Duration::from_millis(700);
    let (cpu, attrs, headers) =
        rx.wait_for("the burned CPU time", Duration::from_secs(20), |got| {
            got.iter().rev().filter(|g| g.at > since).find_map(|g| {
                let r = resource(&g.request, &c.id)?;
                attr(r, "container.name")?;
                let (cpu, _) = cpu_time(r)?;
                let attrs: BTreeMap<&str, Option<String>> = [
                    "container.id",
                    "container.name",
                    "container.image.name",
                    "container.runtime.name",
                    "host.name",
                    "deployment.environment",
                    "service.name",
                ]
                .into_iter()
                .map(|k| (k, attr(r, k)))
                .collect();
                Some((cpu, attrs, g.headers.clone()))
            })
        });
    // 10 %, plus a little for the shell, runc's init and `time` itself, which the cgroup
    // counts and `time` does not (as tests/docker.rs): a fixed cost, not a share.
    assert!(
        (cpu - burned).abs() <= burned * 0.10 + 0.05,
        "container.cpu.time {cpu:.3} s vs {burned:.3} s burned"
    );
    assert_eq!(attrs["container.id"].as_deref(), Some(c.id.as_str()));
    assert_eq!(attrs["container.name"].as_deref(), Some(c.name.as_str()));
    assert_eq!(attrs["container.image.name"].as_deref(), Some("ce-busybox"));
    assert_eq!(attrs["container.runtime.name"].as_deref(), Some("docker"));
    assert!(attrs["host.name"].is_some());
    assert_eq!(attrs["deployment.environment"].as_deref(), Some("test"));
    assert_eq!(
        attrs["service.name"], None,
        "service.name on a container resource"
    );
    assert_eq!(headers.get("x-api-key").map(String::as_str), Some("s3cr t"));
    assert_eq!(headers.get("x-tenant").map(String::as_str), Some("team-a"));
    let encoding = match proto {
        Proto::Http => "content-encoding",
        Proto::Grpc => "grpc-encoding",
    };
    assert_eq!(
        headers.get(encoding).map(String::as_str),
        Some("gzip"),
        "{headers:?}"
    );
    let got = rx.shared.got.lock().unwrap();
    let last = &got.last().unwrap().request;
    let me = self_resource(last);
    assert_eq!(attr(me, "service.name").as_deref(), Some("ce-under-test"));
    assert!(attr(me, "service.version").is_some());
    assert!(self_value(last, "container_exporter.collections", None) > 0.0);
    // Every container resource is one container: no service.name, an id, a runtime.
    for r in last
        .resource_metrics
        .iter()
        .filter(|r| attr(r, "service.name").is_none())
    {
        assert!(attr(r, "container.id").is_some() && attr(r, "container.runtime.name").is_some());
    }
    // `--log-level debug` is the exporter's debug, not HTTP/2's and hyper's frame by frame.
    let log = std::fs::read_to_string(&e.log).unwrap();
    assert!(
        log.contains("DEBUG container_exporter"),
        "debug lines are logged"
    );
    let chatty: Vec<&str> = log
        .lines()
        .filter(|l| {
            [
                "h2::",
                "hyper::",
                "hyper_util::",
                "rustls::",
                "tonic::",
                "tower::",
            ]
            .iter()
            .any(|t| l.contains(&format!("DEBUG {t}")) || l.contains(&format!("TRACE {t}")))
        })
        .take(3)
        .collect();
    assert!(chatty.is_empty(), "library debug lines: {chatty:?}");
}

#[test]
fn burned_cpu_arrives_over_grpc() {
    burned_cpu_arrives(Proto::Grpc);
}

#[test]
fn burned_cpu_arrives_over_http() {
    burned_cpu_arrives(Proto::Http);
}

/// The time of a request's first data point: the tick it was collected in.
fn tick_of(req: &ExportMetricsServiceRequest) -> Option<u64> {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let m = req
        .resource_metrics
        .first()?
        .scope_metrics
        .first()?
        .metrics
        .first()?;
    match m.data.as_ref()? {
        Data::Gauge(g) => g.data_points.first().map(|p| p.time_unix_nano),
        Data::Sum(s) => s.data_points.first().map(|p| p.time_unix_nano),
        _ => None,
    }
}

/// Each container is one resource of 4 to 7 KiB here, the exporter's own about 8 KiB (its
/// self-metrics grew past the 8 KiB this test first used, and a receiver refuses a request
/// past its limit): a limit of 12 KiB makes a tick of six containers and the exporter's own
/// resource four requests or more.
fn a_large_tick_is_cut_to_the_receivers_limit(proto: Proto) {
    const LIMIT: usize = 12 * 1024;
    let rx = Receiver::start_with_limit(proto, Some(LIMIT));
    let cs: Vec<Container> = (0..6).map(|_| Container::sh(&[], "sleep 600")).collect();
    let endpoint = rx.endpoint();
    let e = Exporter::start(
        true,
        &[
            "--interval",
            "500ms",
            "--otlp-endpoint",
            &endpoint,
            "--otlp-protocol",
            rx.protocol(),
            "--otlp-max-request-size",
            &LIMIT.to_string(),
        ],
        &[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")],
    );
    // A whole tick: every request of it received, so a later tick has begun.
    let (tick, parts) = rx.wait_for(
        "a tick with every container",
        Duration::from_secs(20),
        |got| {
            let ticks: Vec<u64> = got.iter().filter_map(|g| tick_of(&g.request)).collect();
            let last = *ticks.iter().max()?;
            let mut done: Vec<u64> = ticks.iter().copied().filter(|t| *t < last).collect();
            done.dedup();
            done.into_iter().rev().find_map(|t| {
                let parts: Vec<&ExportMetricsServiceRequest> = got
                    .iter()
                    .filter(|g| tick_of(&g.request) == Some(t))
                    .map(|g| &g.request)
                    .collect();
                let all = cs
                    .iter()
                    .all(|c| parts.iter().any(|p| resource(p, &c.id).is_some()));
                all.then(|| (t, parts.into_iter().cloned().collect::<Vec<_>>()))
            })
        },
    );
    let got = rx.shared.got.lock().unwrap();
    let largest = got.iter().map(|g| g.bytes).max().unwrap();
    eprintln!(
        "{} requests in tick {tick}, {} received in all, the largest {largest} bytes",
        parts.len(),
        got.len()
    );
    assert!(largest <= LIMIT, "a request of {largest} bytes");
    assert!(parts.len() >= 4, "{} requests for a tick", parts.len());
    // Every resource of the tick once, the exporter's own last.
    let mut ids: Vec<String> = parts
        .iter()
        .flat_map(|p| &p.resource_metrics)
        .map(|r| {
            attr(r, "container.id")
                .or_else(|| attr(r, "service.name"))
                .unwrap()
        })
        .collect();
    assert_eq!(
        ids.pop().as_deref(),
        Some("container-exporter"),
        "own resource last"
    );
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a resource twice in one tick");
    drop(got);
    // Nothing was refused: every request was within the limit, and accepted.
    assert_eq!(rx.shared.too_large.load(Ordering::SeqCst), 0);
    assert_eq!(
        e.page_value(
            "container_exporter_otlp_exports_total",
            "outcome=\"failure\""
        ),
        0.0
    );
    assert!(
        e.page_value(
            "container_exporter_otlp_exports_total",
            "outcome=\"success\""
        ) >= 4.0
    );
}

#[test]
fn a_large_tick_is_cut_to_the_receivers_limit_over_grpc() {
    a_large_tick_is_cut_to_the_receivers_limit(Proto::Grpc);
}

#[test]
fn a_large_tick_is_cut_to_the_receivers_limit_over_http() {
    a_large_tick_is_cut_to_the_receivers_limit(Proto::Http);
}

/// Refuses until the queue (of 5, a tick every 200 ms) has overflowed and dropped a request,
/// then accepts.
fn outage_loses_no_counts(proto: Proto) {
    let rx = Receiver::start(proto);
    // A little CPU all along, so the counter moves during the outage.
    let c = Container::sh(
        &[],
        "while true; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 0.1; done",
    );
    let endpoint = rx.endpoint();
    let e = Exporter::start(
        true,
        &[
            "--interval",
            "200ms",
            "--otlp-endpoint",
            &endpoint,
            "--otlp-protocol",
            rx.protocol(),
            "--otlp-queue-size",
            "5",
        ],
        &[("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")],
    );
    let (before, start) = rx.wait_for(
        "a first request with the container",
        Duration::from_secs(15),
        |got| {
            got.iter()
                .rev()
                .find_map(|g| cpu_time(resource(&g.request, &c.id)?))
        },
    );
    rx.refuse(true);
    let outage = Instant::now();
    let mut max_queue = 0.0f64;
    let (mut before, mut last_time) = (before, 0u64);
    // The outage lasts until the receiver has refused requests (retries included) and the
    // full queue has dropped one: events, not a time. The deadline only ends a wait for them.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        max_queue = max_queue.max(e.page_value("container_exporter_otlp_queue_length", ""));
        let refused = rx.shared.refused.load(Ordering::SeqCst);
        let dropped = e.page_value("container_exporter_otlp_dropped_requests_total", "");
        if refused >= 2 && dropped >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the outage never overflowed the queue: {refused} refused, {dropped} dropped"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    {
        // What arrived before the refusal began counts as last known.
        let got = rx.shared.got.lock().unwrap();
        for g in got.iter() {
            if let Some(r) = resource(&g.request, &c.id)
                && let Some((v, _)) = cpu_time(r)
            {
                before = before.max(v);
                last_time = last_time.max(points(r, "container.cpu.time")[0].3);
            }
        }
    }
    let received_before = rx.shared.got.lock().unwrap().len();
    rx.refuse(false);
    let refused = rx.shared.refused.load(Ordering::SeqCst);
    assert!(refused >= 2, "the receiver refused only {refused} requests");
    let (after, after_start, time) = rx.wait_for(
        "an accepted request after the outage",
        Duration::from_secs(20),
        |got| {
            got[received_before..].iter().find_map(|g| {
                let r = resource(&g.request, &c.id)?;
                let (v, s) = cpu_time(r)?;
                Some((v, s, points(r, "container.cpu.time")[0].3))
            })
        },
    );
    assert!(
        after >= before,
        "cpu time went from {before} to {after} across the outage"
    );
    assert_eq!(after_start, start, "the counter's start time changed");
    assert!(time > last_time, "an old point was sent again");
    // The backlog drains oldest first: something collected during the outage arrives.
    let outage_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        - outage.elapsed().as_nanos() as u64;
    rx.wait_for(
        "points collected during the outage",
        Duration::from_secs(10),
        |got| {
            got[received_before..]
                .iter()
                .filter_map(|g| resource(&g.request, &c.id))
                .any(|r| points(r, "container.cpu.time")[0].3 > outage_ns + 500_000_000)
                .then_some(())
        },
    );
    assert!(
        max_queue <= 5.0,
        "queue length {max_queue} above its bound of 5"
    );
    assert_eq!(
        e.page_value("container_exporter_otlp_queue_capacity", ""),
        5.0
    );
    // The page is rendered each tick: poll until it shows the deliveries.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let retries = e.page_value("container_exporter_otlp_retries_total", "");
        let dropped = e.page_value("container_exporter_otlp_dropped_requests_total", "");
        let ok = e.page_value(
            "container_exporter_otlp_exports_total",
            "outcome=\"success\"",
        );
        if retries >= 1.0 && dropped >= 1.0 && ok >= 2.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "self-metrics after the outage: retries {retries}, dropped {dropped}, succeeded {ok}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The self resource says the same.
    let got = rx.shared.got.lock().unwrap();
    let last = &got.last().unwrap().request;
    assert!(self_value(last, "container_exporter.otlp.retries", None) >= 1.0);
    assert!(self_value(last, "container_exporter.otlp.queue.length", None) <= 5.0);
}

#[test]
fn outage_loses_no_counts_over_grpc() {
    outage_loses_no_counts(Proto::Grpc);
}

#[test]
fn outage_loses_no_counts_over_http() {
    outage_loses_no_counts(Proto::Http);
}

/// A receiver that accepts and never answers, over ~25 ticks of 200 ms.
#[test]
fn hanging_receiver_blocks_nothing() {
    let h = Hanging::start();
    let endpoint = format!("http://127.0.0.1:{}", h.port);
    let _c = Container::sh(&[], "sleep 600");
    let e = Exporter::start(
        true,
        &[
            "--interval",
            "200ms",
            "--otlp-endpoint",
            &endpoint,
            "--otlp-queue-size",
            "10",
        ],
        &[("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")],
    );
    std::thread::sleep(Duration::from_secs(1));
    let rss0 = e.rss_kib();
    let c0 = e.page_value("container_exporter_collections_total", "");
    let mut rss_max = rss0;
    let mut last = c0;
    for _ in 0..25 {
        std::thread::sleep(Duration::from_millis(200));
        rss_max = rss_max.max(e.rss_kib());
        let c = e.page_value("container_exporter_collections_total", "");
        assert!(c >= last);
        last = c;
        assert!(e.page_value("container_exporter_otlp_queue_length", "") <= 10.0);
    }
    assert!(
        last - c0 >= 15.0,
        "collections went from {c0} to {last} in 5 s at 200 ms"
    );
    assert!(
        rss_max < rss0 + 8 * 1024,
        "RSS grew from {rss0} KiB to {rss_max} KiB against a hanging receiver"
    );
    assert!(e.page_value("container_exporter_otlp_dropped_requests_total", "") >= 1.0);
    assert_eq!(
        e.page_value(
            "container_exporter_otlp_exports_total",
            "outcome=\"success\""
        ),
        0.0
    );
}

/// A container that lives ~1 s of a 6 s interval: its final sample arrives, with the
/// Prometheus page off.
#[test]
fn short_lived_container_final_sample_arrives() {
    let rx = Receiver::start(Proto::Http);
    let endpoint = rx.endpoint();
    let _e = Exporter::start(
        false,
        &["--interval", "6s", "--otlp-endpoint", &endpoint],
        &[],
    );
    rx.wait_for("a first request", Duration::from_secs(15), |got| {
        (!got.is_empty()).then_some(())
    });
    let c = Container::sh(&[], "time timeout 2 yes >/dev/null");
    let burned = burned(&c, Duration::from_secs(10));
    let cpu = rx.wait_for(
        "the short-lived container's final sample",
        Duration::from_secs(20),
        |got| {
            got.iter()
                .find_map(|g| cpu_time(resource(&g.request, &c.id)?).map(|c| c.0))
        },
    );
    assert!(
        (cpu - burned).abs() <= burned * 0.10 + 0.02,
        "final sample {cpu:.3} s vs {burned:.3} s burned"
    );
}
