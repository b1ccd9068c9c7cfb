//! The Grafana dashboard (`deploy/grafana/dashboards/containers.json`) against the real thing:
//! every PromQL query in it, run by a real Prometheus that scrapes the real exporter binary
//! every second while a real container works, must return for that container what the
//! container did, within stated tolerances: not merely some data.
//!
//! The container (image `ce-busybox:test`, `--network none`) has a CPU limit it runs into (so
//! throttling exists), a memory and a pids limit, and works in rounds: each writes 1 MiB with
//! `O_DIRECT` (16 writes of 64 KiB) to a disk that has a blkio throttle rule (so block IO is
//! counted on cgroup v1 too), fetches a 64 KiB file over its own loopback (busybox httpd and
//! wget), and notes the time it ended in a file the test reads. Each rate the dashboard shows
//! is compared with the rounds that ended in the query's window; CPU with the limit it runs
//! into; limits with those given; uptime with the container's start; the exporter's memory with
//! its own `VmRSS`. A query the test has no expectation for fails it. The dashboard's variables
//! get concrete values: the container's name for `$container`, the exporter's scrape target for
//! `$instance`. Prometheus scrapes the exporter as the shipped ServiceMonitor of
//! `deploy/prometheus-operator/otel/` has the Prometheus Operator scrape it (its relabelings,
//! translated from the file by `common::prometheus::service_monitor_job`).
//!
//! Needs root, a running dockerd with the test image (`.ci/docker-up.sh`) and the `prometheus`
//! binary on PATH (`.ci/prometheus-up.sh`). Without them the test fails; it does not skip.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::prometheus::{ExporterPod, service_monitor_job};
use common::{
    Container, TempDir, disk_of, docker, free_port, http_get, log_tail, require_docker, urlencode,
};

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/grafana/dashboards/containers.json"
);
/// What Grafana's built-in interval variables become. Prometheus scrapes every second here, so
/// a 10 s window holds about ten samples: enough for every `rate()`.
const BUILTINS: &[(&str, &str)] = &[
    ("__rate_interval", "10s"),
    ("__interval", "2s"),
    ("__range", "1m"),
];
/// The `$__rate_interval` above, in seconds: the window the rates are compared over.
const WINDOW: f64 = 10.0;
/// How far behind now the queries are evaluated: a tick (1 s) and a scrape (1 s) after the
/// workload's bytes, the counters have them.
const LAG: f64 = 2.0;
/// Scrapes before the first attempt: the rates' window is full only after `WINDOW + LAG`.
const WARM_UP: Duration = Duration::from_secs(13);
/// How long every query has to return what the workload did, from Prometheus being ready.
const QUERY_DEADLINE: Duration = Duration::from_secs(60);
/// The OpenTelemetry page's ServiceMonitor, whose relabelings the test's scrape job has.
const SERVICE_MONITOR: &str = "deploy/prometheus-operator/otel/servicemonitor.yaml";

/// What one round of the workload moves: bytes written with O_DIRECT, in how many writes, and
/// the file fetched over `lo`.
const ROUND_WRITE_BYTES: f64 = (16 * 65536) as f64;
const ROUND_WRITES: f64 = 16.0;
const ROUND_FETCH_BYTES: f64 = 65536.0;
const CPU_LIMIT: f64 = 0.2;
const MEMORY_LIMIT: f64 = (64 << 20) as f64;
const PIDS_LIMIT: f64 = 50.0;

// ---------------------------------------------------------------------------------------------
// Helpers: processes, tools, the workload container
// ---------------------------------------------------------------------------------------------

/// A child process, killed when dropped; its output goes to `log`.
struct Proc {
    what: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(what: &'static str, cmd: &mut Command, log: PathBuf) -> Proc {
        let f = fs::File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
        Proc { what, child, log }
    }

    fn log_tail(&self) -> String {
        log_tail(&self.log, 30)
    }

    /// Fails the test if the process has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}); the end of its log:\n{}",
                self.what,
                self.log_tail()
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails the test (it never skips) unless dockerd answers, the test image exists and the
/// `prometheus` binary runs.
fn require_tools() {
    require_docker();
    let prom = Command::new("prometheus").arg("--version").output();
    assert!(
        matches!(&prom, Ok(o) if o.status.success()),
        "the `prometheus` binary is not on PATH ({prom:?}): run .ci/prometheus-up.sh as root \
         (it installs Debian's prometheus package), then re-run the test"
    );
}

/// Fails the test if the container has stopped, with its log.
fn assert_container_running(c: &Container) {
    let out = docker(&["inspect", "-f", "{{.State.Running}}", &c.name]);
    if String::from_utf8_lossy(&out.stdout).trim() != "true" {
        let logs = docker(&["logs", &c.name]);
        panic!(
            "container {} stopped; its log:\n{}{}",
            c.name,
            String::from_utf8_lossy(&logs.stdout),
            String::from_utf8_lossy(&logs.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// Runs an instant query, at `time` (Unix seconds) when given: its result vector, or the error
/// Prometheus gave.
fn query(port: u16, promql: &str, time: Option<f64>) -> Result<Vec<Value>, String> {
    let at = time.map(|t| format!("&time={t:.3}")).unwrap_or_default();
    let r = http_get(
        port,
        &format!("/api/v1/query?query={}{at}", urlencode(promql)),
    )
    .map_err(|e| format!("HTTP: {e}"))?;
    let (status, body) = (r.status, r.text());
    let v: Value = serde_json::from_str(&body)
        .map_err(|e| format!("HTTP {status}, not JSON ({e}): {body}"))?;
    if v["status"] != "success" {
        return Err(format!(
            "HTTP {status}: {} {}",
            v["errorType"].as_str().unwrap_or(""),
            v["error"].as_str().unwrap_or(&body)
        ));
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// A series' value (NaN when it has none).
fn value_of(series: &Value) -> f64 {
    series["value"][1]
        .as_str()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------------------
// The dashboard
// ---------------------------------------------------------------------------------------------

/// One query of the dashboard: where it is, and its PromQL as written.
struct DashQuery {
    title: String,
    ref_id: String,
    place: String,
    expr: String,
}

fn collect_panels(panels: &[Value], out: &mut Vec<DashQuery>) {
    for p in panels {
        let title = p["title"].as_str().unwrap_or("(untitled)");
        if let Some(nested) = p["panels"].as_array() {
            collect_panels(nested, out); // a collapsed row keeps its panels inside
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_default().trim().to_string();
            assert!(
                !expr.is_empty(),
                "panel {title:?} query {} has no `expr`",
                t["refId"]
            );
            let ref_id = t["refId"].as_str().unwrap_or("?").to_string();
            out.push(DashQuery {
                title: title.to_string(),
                place: format!("panel {title:?} query {ref_id}"),
                ref_id,
                expr,
            });
        }
    }
}

/// Replaces Grafana's `$name`, `${name}` (and `${name:format}`) and `[[name]]` with their
/// values; panics on a variable it has no value for.
fn substitute(expr: &str, vars: &[(String, String)]) -> String {
    let value = |name: &str| -> &str {
        vars.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no value for template variable `{name}` in {expr}"))
    };
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(body) = tail.strip_prefix("${") {
            let end = body.find('}').expect("unclosed ${ in a query");
            let name = body[..end].split(':').next().unwrap();
            out.push_str(value(name));
            rest = &body[end + 1..];
        } else if let Some(body) = tail.strip_prefix("[[") {
            let end = body.find("]]").expect("unclosed [[ in a query");
            out.push_str(value(body[..end].split(':').next().unwrap()));
            rest = &body[end + 2..];
        } else if tail.starts_with('$')
            && tail[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        {
            let body = &tail[1..];
            let end = body.find(|c: char| !is_name(c)).unwrap_or(body.len());
            out.push_str(value(&body[..end]));
            rest = &body[end..];
        } else {
            // `$1` in label_replace, a `[` of a range: not a variable.
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// `label_values(selector, label)` of a query variable: (selector, label).
fn label_values(q: &str) -> Option<(String, String)> {
    let inner = q.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (sel, label) = inner.rsplit_once(',')?;
    Some((sel.trim().to_string(), label.trim().to_string()))
}

// ---------------------------------------------------------------------------------------------
// What the workload did, and what each query must then show
// ---------------------------------------------------------------------------------------------

/// What the test knows of the workload without the exporter, for queries evaluated at one time.
struct Truth {
    /// Rounds that ended in the rate window (`WINDOW` seconds up to the query's time).
    rounds: f64,
    /// Seconds since the workload's first line ran.
    uptime: f64,
    /// The exporter's own resident memory, from its `/proc/<pid>/status`.
    exporter_rss: f64,
}

/// Seconds since boot: the clock the workload notes its rounds in (`/proc/uptime` is not
/// namespaced).
fn uptime_now() -> f64 {
    fs::read_to_string("/proc/uptime")
        .expect("/proc/uptime")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("/proc/uptime's first field")
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn vm_rss(pid: u32) -> f64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("the exporter's status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .expect("VmRSS")
        * 1024.0
}

/// The workload's notes: the uptime at its start, and at the end of each round.
fn notes(data: &std::path::Path) -> (Option<f64>, Vec<f64>) {
    let read = |name: &str| -> Vec<f64> {
        fs::read_to_string(data.join(name))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    (read("started").first().copied(), read("rounds"))
}

/// The values a query must have: for each series whose labels include `with` (every series when
/// empty; at least one must match), a value within `lo..=hi`, for the reason given.
struct Expect {
    with: Vec<(&'static str, &'static str)>,
    lo: f64,
    hi: f64,
    why: String,
}

fn within(lo: f64, hi: f64, why: impl Into<String>) -> Expect {
    Expect {
        with: Vec::new(),
        lo,
        hi,
        why: why.into(),
    }
}

fn labelled(with: &[(&'static str, &'static str)], lo: f64, hi: f64, why: &str) -> Expect {
    Expect {
        with: with.to_vec(),
        lo,
        hi,
        why: why.into(),
    }
}

/// A rate the rounds explain: `per_round` of something each round, over the window, within a
/// round either side (where the window cuts) and 40 % (Prometheus's extrapolation, the tick's
/// lag; measured here: 0.84 to 0.86 of the rounds' figure), and never zero. Tight enough to
/// catch a unit or a direction counted twice, or half of what was done.
fn per_rounds(t: &Truth, per_round: f64, what: &str) -> (f64, f64, String) {
    let lo = ((t.rounds - 1.0).max(0.0) * per_round / WINDOW * 0.6).max(f64::MIN_POSITIVE);
    let hi = (t.rounds + 1.0) * per_round / WINDOW * 1.4;
    let why = format!(
        "{} rounds ended in the {WINDOW} s window, each {what} ({per_round} per round)",
        t.rounds
    );
    (lo, hi, why)
}

/// What each query of the dashboard must show, by panel title and query: `None` for a query
/// the test has no expectation for, which fails it (add one when adding a panel).
fn expectations(title: &str, ref_id: &str, t: &Truth) -> Option<Vec<Expect>> {
    let rate = |per_round, what: &str| {
        let (lo, hi, why) = per_rounds(t, per_round, what);
        within(lo, hi, why)
    };
    let e = match (title, ref_id) {
        ("Containers", "A") => vec![within(1.0, 1.0, "one container is named so")],
        ("Collection tick", "A") => {
            vec![within(1e-6, 1.0, "a tick is shorter than the 1 s interval")]
        }
        // The exporter reads every container on this shared host, not only the workload; an
        // error elsewhere (a test's broken cgroup) is not the workload's doing.
        ("cgroup read errors", "A") => vec![within(0.0, f64::INFINITY, "a rate is never negative")],
        ("Exporter memory", "A") => vec![within(
            t.exporter_rss / 2.0,
            t.exporter_rss * 2.0,
            format!("the exporter's VmRSS is {} bytes now", t.exporter_rss),
        )],
        // A busy loop under a 0.2 CPU quota uses the quota (less when the shared host starves
        // it: half at worst), never more than a scrape's worth above it.
        ("CPU usage (cores) and limit", "A") => vec![within(
            CPU_LIMIT * 0.5,
            CPU_LIMIT * 1.25,
            "a busy loop runs into the 0.2 CPU quota",
        )],
        // Per mode: the loop's time is user time.
        ("CPU usage by mode", "A") => vec![
            labelled(
                &[("cpu_mode", "user")],
                CPU_LIMIT * 0.4,
                CPU_LIMIT * 1.25,
                "the busy loop is user time",
            ),
            labelled(
                &[("cpu_mode", "system")],
                0.0,
                CPU_LIMIT * 1.25,
                "within the quota",
            ),
        ],
        ("CPU usage (cores) and limit", "B") => vec![within(CPU_LIMIT, CPU_LIMIT, "--cpus 0.2")],
        ("CPU usage, % of limit", "A") => vec![within(0.5, 1.25, "the busy loop uses its quota")],
        ("Throttled periods", "A") => vec![within(
            0.3,
            1.0,
            "a busy loop under a quota is throttled in most periods",
        )],
        // Throttled time is summed over the CPUs the group was throttled on.
        ("Throttled time", "A") => vec![within(
            1e-6,
            2.0,
            "the busy loop is throttled; at most one second per second per CPU",
        )],
        ("Memory usage and working set vs limit", "A") => {
            vec![within(
                1.0,
                MEMORY_LIMIT,
                "some memory, under the 64 MiB limit",
            )]
        }
        ("Memory usage and working set vs limit", "B") => {
            vec![within(
                1.0,
                MEMORY_LIMIT,
                "some working set, under the 64 MiB limit",
            )]
        }
        ("Memory usage and working set vs limit", "C") => {
            vec![within(MEMORY_LIMIT, MEMORY_LIMIT, "--memory 64m")]
        }
        ("Working set, % of limit", "A") => vec![within(1e-9, 1.0, "under the limit")],
        ("Anonymous memory and page cache", "A") => vec![within(
            1.0,
            MEMORY_LIMIT,
            "the shell's and httpd's own memory",
        )],
        // Page cache is charged to whoever first read a page (FINDINGS): possibly none here.
        ("Anonymous memory and page cache", "B") => {
            vec![within(0.0, MEMORY_LIMIT, "under the limit")]
        }
        ("Page faults", "A") => vec![
            labelled(
                &[("system_paging_fault_type", "minor")],
                1e-9,
                f64::INFINITY,
                "every round starts dd and wget, which fault their pages in",
            ),
            labelled(
                &[("system_paging_fault_type", "major")],
                0.0,
                f64::INFINITY,
                "a rate is never negative",
            ),
        ],
        ("OOM kills", "A") => vec![within(0.0, 0.0, "nothing came near the limit")],
        // Over `lo` every byte is sent and received: both directions see the file each round
        // (and the request and TCP's headers, which the tolerance covers).
        ("Network traffic", "A") => vec![rate(ROUND_FETCH_BYTES, "fetching a 64 KiB file over lo")],
        ("Network traffic", "B") => vec![rate(ROUND_FETCH_BYTES, "fetching a 64 KiB file over lo")],
        // A connection of a few packets each way per round: 4 at least, 40 at most.
        ("Network packets, drops and errors", "A") => {
            let (lo, _, why) = per_rounds(t, 4.0, "a connection over lo");
            let (_, hi, _) = per_rounds(t, 40.0, "a connection over lo");
            vec![
                labelled(&[("network_io_direction", "receive")], lo, hi, &why),
                labelled(&[("network_io_direction", "transmit")], lo, hi, &why),
            ]
        }
        ("Network packets, drops and errors", "B") => vec![within(0.0, 0.0, "nothing drops on lo")],
        ("Network packets, drops and errors", "C") => vec![within(0.0, 0.0, "no errors on lo")],
        // O_DIRECT writes only; the reads of a few binaries, cached after the first round.
        ("Disk throughput", "A") => vec![within(
            0.0,
            ROUND_WRITE_BYTES / WINDOW,
            "the workload reads nothing from disk",
        )],
        ("Disk throughput", "B") => vec![rate(ROUND_WRITE_BYTES, "writing 1 MiB with O_DIRECT")],
        ("Disk operations", "A") => {
            let (lo, hi, why) = per_rounds(t, ROUND_WRITES, "16 O_DIRECT writes of 64 KiB");
            vec![
                // The block layer may split a write it cannot take whole: up to twice as many.
                labelled(&[("disk_io_direction", "write")], lo, hi * 2.0, &why),
                labelled(
                    &[("disk_io_direction", "read")],
                    0.0,
                    ROUND_WRITES / WINDOW,
                    "the workload reads nothing from disk",
                ),
            ]
        }
        // The shell, httpd and the busy loop; dd, wget or sleep besides while they run.
        ("Tasks vs limit", "A") => vec![within(
            3.0,
            8.0,
            "sh, httpd, the busy loop, and dd, wget or sleep",
        )],
        ("Tasks vs limit", "B") => vec![within(PIDS_LIMIT, PIDS_LIMIT, "--pids-limit 50")],
        ("Uptime", "A") => vec![within(
            t.uptime - 3.0,
            t.uptime + 5.0,
            format!(
                "its first line ran {:.1} s before the query's time",
                t.uptime
            ),
        )],
        // Stall shares: at most all of the time.
        ("CPU pressure", "A") | ("IO pressure", "A") => {
            vec![within(0.0, 1.0, "a share of the time")]
        }
        ("memory pressure", "A") => vec![within(
            0.0,
            0.2,
            "far from its memory limit, it hardly stalls on memory",
        )],
        _ => return None,
    };
    Some(e)
}

/// Whether a query's result holds what `want` says; the complaint otherwise.
fn compare(result: &[Value], want: &[Expect]) -> Result<(), String> {
    for w in want {
        let matching: Vec<&Value> = result
            .iter()
            .filter(|s| {
                w.with
                    .iter()
                    .all(|(k, v)| s["metric"][*k].as_str() == Some(*v))
            })
            .collect();
        if matching.is_empty() {
            return Err(format!("no series with {:?} ({})", w.with, w.why));
        }
        for s in matching {
            let v = value_of(s);
            if !(v >= w.lo && v <= w.hi) {
                return Err(format!(
                    "{} is {v}, not within {}..={} ({})",
                    s["metric"], w.lo, w.hi, w.why
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

#[test]
fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let started = Instant::now();
    let dash: Value = serde_json::from_str(
        &fs::read_to_string(DASHBOARD).unwrap_or_else(|e| panic!("read {DASHBOARD}: {e}")),
    )
    .unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"));
    let mut queries = Vec::new();
    collect_panels(dash["panels"].as_array().expect("no panels"), &mut queries);
    assert!(queries.len() >= 10, "only {} queries", queries.len());
    let variables: Vec<&Value> = dash["templating"]["list"]
        .as_array()
        .expect("no templating.list")
        .iter()
        .collect();
    require_tools();

    // The workload: CPU against a 0.2 CPU quota, and rounds of O_DIRECT writes and loopback
    // HTTP noted in data/rounds (the uptime each ended at), under limits.
    let dir = TempDir::new();
    let data = dir.0.join("data");
    fs::create_dir_all(&data).unwrap();
    let vol = format!("{}:/data", data.display());
    let bps = format!("{}:10gb", disk_of(&data).1);
    let workload = Container::sh(
        &[
            "--cpus",
            "0.2",
            "--memory",
            "64m",
            "--pids-limit",
            "50",
            "--device-write-bps",
            &bps,
            "-v",
            &vol,
        ],
        "read up rest < /proc/uptime; echo $up > /data/started; \
         mkdir -p /www && head -c 65536 /dev/zero > /www/blob && \
         httpd -p 127.0.0.1:8080 -h /www && \
         (while :; do :; done) & \
         while :; do \
           dd if=/dev/zero of=/data/f bs=64k count=16 oflag=direct 2>/dev/null; \
           wget -q -O /dev/null http://127.0.0.1:8080/blob; \
           read up rest < /proc/uptime; echo $up >> /data/rounds; \
           sleep 0.5; \
         done",
    );

    // The exporter, reading every second.
    let exporter_port = free_port();
    let mut exporter = Proc::spawn(
        "container-exporter",
        Command::new(env!("CARGO_BIN_EXE_container-exporter"))
            .args(["--interval", "1s", "--prometheus-listen"])
            .arg(format!("127.0.0.1:{exporter_port}"))
            .env_remove("RUST_LOG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
        dir.0.join("exporter.log"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(http_get(exporter_port, "/readyz"), Ok(r) if r.status == 200) {
        exporter.assert_running();
        assert!(
            Instant::now() < deadline,
            "container-exporter not ready on port {exporter_port} within 20 s; its log:\n{}",
            exporter.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Prometheus, scraping it every second as the shipped ServiceMonitor says.
    let prom_port = free_port();
    let config = dir.0.join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n{}",
            service_monitor_job(SERVICE_MONITOR, exporter_port, &ExporterPod::on("node-1"))
        ),
    )
    .unwrap();
    let mut prometheus = Proc::spawn(
        "prometheus",
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}")),
        dir.0.join("prometheus.log"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(http_get(prom_port, "/-/ready"), Ok(r) if r.status == 200) {
        prometheus.assert_running();
        assert!(
            Instant::now() < deadline,
            "prometheus not ready on port {prom_port} within 30 s; its log:\n{}",
            prometheus.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let prom_ready = Instant::now();
    eprintln!(
        "dashboard: {} queries; exporter on :{exporter_port}, prometheus on :{prom_port}, ready \
         after {:.1} s",
        queries.len(),
        started.elapsed().as_secs_f64()
    );

    // Concrete values for the variables: this exporter, this container.
    let instance = format!("127.0.0.1:{exporter_port}");
    let mut vars: Vec<(String, String)> = BUILTINS
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    for v in &variables {
        let name = v["name"].as_str().expect("a variable without a name");
        let value = match name {
            "instance" => instance.clone(),
            "container" => workload.name.clone(),
            "datasource" => "prometheus".to_string(),
            other => panic!("the test has no value for dashboard variable `{other}`"),
        };
        vars.push((name.to_string(), value));
    }
    let exprs: Vec<(&DashQuery, String)> = queries
        .iter()
        .map(|q| (q, substitute(&q.expr, &vars)))
        .collect();
    // Every query has an expectation, whatever the workload did.
    let none = Truth {
        rounds: 0.0,
        uptime: 0.0,
        exporter_rss: 0.0,
    };
    let unexpected: Vec<&str> = queries
        .iter()
        .filter(|q| expectations(&q.title, &q.ref_id, &none).is_none())
        .map(|q| q.place.as_str())
        .collect();
    assert!(
        unexpected.is_empty(),
        "the test does not know what these dashboard queries should show: {unexpected:?}; say \
         it in `expectations`"
    );

    std::thread::sleep(WARM_UP);
    let mut attempt = 0;
    loop {
        attempt += 1;
        exporter.assert_running();
        prometheus.assert_running();
        assert_container_running(&workload);
        let mut failures = Vec::new();
        // The time the queries are evaluated at, and what the workload did up to it.
        let (wall, up) = (now_unix(), uptime_now());
        let at = wall - LAG;
        let (first_line, rounds) = notes(&data);
        let truth = Truth {
            rounds: rounds
                .iter()
                .filter(|&&r| r > up - LAG - WINDOW && r <= up - LAG)
                .count() as f64,
            uptime: first_line.map_or(f64::NAN, |s| up - LAG - s),
            exporter_rss: vm_rss(exporter.child.id()),
        };

        // Query variables: `label_values(selector, label)` must list the label's values, and
        // the container variable must offer this container.
        for v in &variables {
            if v["type"] != "query" {
                continue;
            }
            let name = v["name"].as_str().unwrap();
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .or(v["definition"].as_str())
                .unwrap_or_default();
            let (sel, label) = label_values(q)
                .unwrap_or_else(|| panic!("variable `{name}`: not a label_values() query: {q}"));
            let sel = substitute(&sel, &vars);
            let want = vars.iter().find(|(n, _)| n == name).unwrap().1.clone();
            match query(prom_port, &sel, Some(at)) {
                Ok(r) => {
                    let values: Vec<&str> = r
                        .iter()
                        .filter_map(|s| s["metric"][&label].as_str())
                        .collect();
                    if !values.contains(&want.as_str()) {
                        failures.push(format!(
                            "variable `{name}` = label_values({sel}, {label}) offers {values:?}, \
                             not {want:?}"
                        ));
                    }
                }
                Err(e) => failures.push(format!("variable `{name}`: {sel}\n    error: {e}")),
            }
        }
        for (q, expr) in &exprs {
            let place = &q.place;
            let want = expectations(&q.title, &q.ref_id, &truth).expect("checked above");
            match query(prom_port, expr, Some(at)) {
                Ok(r) if r.is_empty() => failures.push(format!("{place}: no data\n    {expr}")),
                Ok(r) => {
                    if let Err(e) = compare(&r, &want) {
                        failures.push(format!("{place}: {e}\n    {expr}"));
                    }
                }
                Err(e) => failures.push(format!("{place}: {expr}\n    error: {e}")),
            }
        }
        if failures.is_empty() {
            eprintln!(
                "dashboard: all {} queries showed what {} did ({} rounds in the last {WINDOW} s) \
                 after {attempt} attempt(s), {:.1} s of scrapes ({:.1} s in all)",
                exprs.len(),
                workload.name,
                truth.rounds,
                prom_ready.elapsed().as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
            return;
        }
        if prom_ready.elapsed() > QUERY_DEADLINE {
            let page = http_get(exporter_port, "/metrics")
                .map(|r| r.text())
                .unwrap_or_default();
            let ours: Vec<&str> = page
                .lines()
                .filter(|l| l.contains(&format!("container_name=\"{}\"", workload.name)))
                .collect();
            panic!(
                "{} of {} dashboard queries did not show what the workload did after {:.0} s of \
                 1 s scrapes ($container = {:?}, $instance = {instance:?}; {} rounds ended in \
                 the {WINDOW} s window):\n\n{}\n\n\
                 the exporter's series for the container:\n{}\n\nthe exporter's log:\n{}",
                failures.len(),
                exprs.len(),
                prom_ready.elapsed().as_secs_f64(),
                workload.name,
                truth.rounds,
                failures.join("\n"),
                ours.join("\n"),
                exporter.log_tail()
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}
