//! The Grafana dashboard (`deploy/grafana/dashboards/containers.json`) against the real thing:
//! every PromQL query in it, run by a real Prometheus that scrapes the real exporter binary
//! every second while a real container works, must return data for that container.
//!
//! The container (image `ce-busybox:test`, `--network none`) has a CPU limit it runs into (so
//! throttling exists), a memory and a pids limit, writes with `O_DIRECT` to a disk that has a
//! blkio throttle rule (so block IO is counted on cgroup v1 too) and moves bytes over its own
//! loopback (busybox httpd and wget). The dashboard's variables get concrete values: the
//! container's name for `$container`, the exporter's scrape target for `$instance`.
//!
//! Needs root, a running dockerd with the test image (`.ci/docker-up.sh`) and the `prometheus`
//! binary on PATH (`.ci/prometheus-up.sh`). Without them the test fails; it does not skip.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

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
/// Scrapes before the first attempt: `rate()` needs two samples in its window.
const WARM_UP: Duration = Duration::from_secs(5);
/// How long every query has to return data, counted from Prometheus being ready.
const QUERY_DEADLINE: Duration = Duration::from_secs(45);

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

/// Runs an instant query: its result vector, or the error Prometheus gave.
fn query(port: u16, promql: &str) -> Result<Vec<Value>, String> {
    let r = http_get(port, &format!("/api/v1/query?query={}", urlencode(promql)))
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

/// Whether a series of an instant vector has a finite value.
fn finite(series: &Value) -> bool {
    series["value"][1]
        .as_str()
        .and_then(|v| v.parse::<f64>().ok())
        .is_some_and(f64::is_finite)
}

// ---------------------------------------------------------------------------------------------
// The dashboard
// ---------------------------------------------------------------------------------------------

/// One query of the dashboard: where it is, and its PromQL as written.
struct DashQuery {
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
            out.push(DashQuery {
                place: format!(
                    "panel {title:?} query {}",
                    t["refId"].as_str().unwrap_or("?")
                ),
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

    // The workload: CPU against a 0.2 CPU quota, O_DIRECT writes, loopback HTTP, limits.
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
        "mkdir -p /www && head -c 65536 /dev/zero > /www/blob && \
         httpd -p 127.0.0.1:8080 -h /www && \
         (while :; do :; done) & \
         while :; do \
           dd if=/dev/zero of=/data/f bs=64k count=16 oflag=direct 2>/dev/null; \
           wget -q -O /dev/null http://127.0.0.1:8080/blob; \
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

    // Prometheus, scraping it every second.
    let prom_port = free_port();
    let config = dir.0.join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: container-exporter\n    static_configs:\n      \
             - targets: [\"127.0.0.1:{exporter_port}\"]\n"
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
    let exprs: Vec<(String, String)> = queries
        .iter()
        .map(|q| (q.place.clone(), substitute(&q.expr, &vars)))
        .collect();

    std::thread::sleep(WARM_UP);
    let mut attempt = 0;
    loop {
        attempt += 1;
        exporter.assert_running();
        prometheus.assert_running();
        assert_container_running(&workload);
        let mut failures = Vec::new();

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
            match query(prom_port, &sel) {
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
        for (place, expr) in &exprs {
            match query(prom_port, expr) {
                Ok(r) if r.is_empty() => failures.push(format!("{place}: no data\n    {expr}")),
                // A series whose every value is NaN (a 0/0) is no data either.
                Ok(r) if !r.iter().any(finite) => failures.push(format!(
                    "{place}: only NaN or infinite values\n    {expr}\n    {}",
                    Value::Array(r)
                )),
                Ok(_) => {}
                Err(e) => failures.push(format!("{place}: {expr}\n    error: {e}")),
            }
        }
        if failures.is_empty() {
            eprintln!(
                "dashboard: all {} queries returned data for {} after {attempt} attempt(s), {:.1} s \
                 of scrapes ({:.1} s in all)",
                exprs.len(),
                workload.name,
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
                "{} of {} dashboard queries returned nothing after {:.0} s of 1 s scrapes \
                 ($container = {:?}, $instance = {instance:?}):\n\n{}\n\n\
                 the exporter's series for the container:\n{}\n\nthe exporter's log:\n{}",
                failures.len(),
                exprs.len(),
                prom_ready.elapsed().as_secs_f64(),
                workload.name,
                failures.join("\n"),
                ours.join("\n"),
                exporter.log_tail()
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}
