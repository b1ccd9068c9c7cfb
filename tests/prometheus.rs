//! The exporter's page against the real consumers (issue 4): a Prometheus server (Debian's
//! `prometheus` package) started here on loopback scrapes the exporter, and its HTTP API must
//! return the expected series; `promtool check metrics` must find no problems on the page.
//! Both run with a container whose allowed Docker label holds quotes, backslashes, a newline and
//! non-ASCII text, so the page's escaping is checked by Prometheus's own parsers (Docker does
//! not allow such characters in container names).
//!
//! They need root, a running dockerd with the test image (`.ci/docker-up.sh`) and the
//! `prometheus` and `promtool` binaries (`.ci/prometheus-up.sh`). Without them they fail (they
//! do not skip).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::prometheus::{Daemon, PROMETHEUS_SETUP, Prometheus, label, require_prometheus};
use common::{Container, free_port, require_docker};
/// `promtool check metrics` lint findings (not parse errors) accepted on the page: cAdvisor's
/// own name for the inodes a container's layer uses, a gauge that ends in `_total`, which the
/// cAdvisor page must keep to be a drop-in.
const KNOWN_LINTS: &[&str] =
    &["container_fs_inodes_total non-counter metrics should not have \"_total\" suffix"];
/// An allowed label value no container name could hold: a quote, a backslash, a real newline,
/// Latin-1 and CJK text.
const HOSTILE: &str = "quo\"te back\\slash new\nline é ü 中";

// ---------------------------------------------------------------------------------------------
// Prometheus
// ---------------------------------------------------------------------------------------------

/// The inside of a quoted label value on the page.
fn escaped(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

// ---------------------------------------------------------------------------------------------
// Child processes: the exporter and Prometheus
// ---------------------------------------------------------------------------------------------

fn start_exporter(extra: &[&str]) -> Daemon {
    require_docker();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_container-exporter"));
    cmd.args(["--prometheus-listen", &format!("127.0.0.1:{port}")])
        .args(["--log-level", "debug"])
        .args(extra)
        .env_remove("RUST_LOG");
    Daemon::start("container-exporter", cmd, port, "/healthz")
}

fn exporter_page(exp: &Daemon) -> String {
    let (status, body) = exp.get("/metrics");
    assert_eq!(status, 200);
    String::from_utf8(body).expect("the page is UTF-8")
}

/// Polls the exporter's page until `container_info` of `c` carries every one of `labels`
/// (name and already-escaped value) and its CPU time is there.
fn wait_on_page(exp: &Daemon, c: &Container, labels: &[(&str, String)]) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page = exporter_page(exp);
        let id = format!("container_id=\"{}\"", c.id);
        let info = page
            .lines()
            .find(|l| l.starts_with("container_info{") && l.contains(&id));
        let cpu = page
            .lines()
            .any(|l| l.starts_with("container_cpu_time_seconds_total{") && l.contains(&id));
        if let Some(info) = info
            && cpu
            && labels
                .iter()
                .all(|(k, v)| info.contains(&format!("{k}=\"{v}\"")))
        {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "container {} not on the exporter's page with {labels:?} within 15 s; its lines:\n{}",
            c.name,
            page.lines()
                .filter(|l| l.contains(&c.id))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------------
// 1 and 3. A real Prometheus scrapes the page: target up, series as expected, escaping exact
// ---------------------------------------------------------------------------------------------

#[test]
fn prometheus_scrapes_the_page_and_returns_the_expected_series() {
    require_prometheus();
    let exp = start_exporter(&["--interval", "1s", "--docker-labels", "ce.*"]);
    // Burns CPU (a fixed amount of work: half a million 1 KiB reads and writes; its own `time`
    // says how much CPU that took), then idles: the CPU time Prometheus returns is compared
    // with what the workload used.
    let plain = Container::sh(
        &["--label", "ce.team=blue"],
        "time sh -c 'dd if=/dev/zero of=/dev/null bs=1k count=500000 2>/dev/null'; \
         echo DONE; exec sleep 120",
    );
    let hostile = Container::run(
        &["--label", &format!("ce.hostile={HOSTILE}")],
        &["sleep", "120"],
    );
    wait_on_page(
        &exp,
        &plain,
        &[
            ("container_name", plain.name.clone()),
            ("container_label_ce_team", "blue".into()),
        ],
    );
    wait_on_page(
        &exp,
        &hostile,
        &[
            ("container_name", hostile.name.clone()),
            ("container_label_ce_hostile", escaped(HOSTILE)),
        ],
    );

    let prom = Prometheus::start(exp.port);
    // The target is healthy: Prometheus's own parser accepted the whole page, hostile label
    // value included.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let targets = prom.api("/api/v1/targets");
        let active = targets["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(active.len() <= 1, "{targets}");
        if let Some(t) = active.first() {
            if t["health"] == "up" {
                assert_eq!(t["lastError"], "", "{t}");
                break;
            }
            assert!(
                t["health"] != "down",
                "Prometheus cannot scrape the exporter: {t}"
            );
        }
        assert!(
            Instant::now() < deadline,
            "the target is not up after 20 s: {targets}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let up = prom.wait_query("up{job=\"container-exporter\"}", 1);
    assert_eq!(up[0]["value"][1], "1", "{up:?}");

    // CPU time of the running container: one series per mode, with its identity labels, and
    // together the CPU time the workload used.
    let burned = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = plain.logs();
            if log.lines().any(|l| l.trim() == "DONE") {
                break common::busybox_time(&log)
                    .unwrap_or_else(|| panic!("no busybox `time` figures in:\n{log}"));
            }
            assert!(
                Instant::now() < deadline,
                "the CPU burner never finished:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert!(burned > 0.1, "the workload burned only {burned} s");
    // 10 %, plus a little for the shell, runc's init and `time` itself, which the cgroup is
    // charged for and `time` does not see: 0.05 s below, 0.1 s above (a loaded CI machine
    // measured 0.076 s more than a 0.26 s workload: mostly system time of the start).
    let (lo, hi) = (burned * 0.9 - 0.05, burned * 1.1 + 0.1);
    let q = format!(
        "container_cpu_time_seconds_total{{container_name=\"{}\"}}",
        plain.name
    );
    // Prometheus has a scrape from after the burn once the total reaches the workload's.
    let total = |series: &[serde_json::Value]| -> f64 {
        series
            .iter()
            .map(|s| {
                s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or_else(|| panic!("not a number: {s}"))
            })
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let series = loop {
        let series = prom.wait_query(&q, 2);
        if total(&series) >= lo {
            break series;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never had the workload's CPU time ({burned} s): {series:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let cpu = total(&series);
    assert!(
        (lo..=hi).contains(&cpu),
        "user + system CPU time in Prometheus {cpu} s, the workload's own {burned} s (want \
         {lo}..{hi}): {series:?}"
    );
    let mut modes: Vec<&str> = series
        .iter()
        .map(|s| label(s, "cpu_mode").unwrap_or("?"))
        .collect();
    modes.sort();
    assert_eq!(modes, ["system", "user"], "{series:?}");
    for s in &series {
        assert_eq!(label(s, "container_id"), Some(plain.id.as_str()), "{s}");
        assert_eq!(label(s, "container_name"), Some(plain.name.as_str()), "{s}");
        assert_eq!(label(s, "container_image_name"), Some("ce-busybox"), "{s}");
        assert_eq!(label(s, "job"), Some("container-exporter"), "{s}");
        assert_eq!(
            label(s, "instance"),
            Some(format!("127.0.0.1:{}", exp.port).as_str()),
            "{s}"
        );
    }

    // container_info: the runtime, tags and allowed labels; the hostile value arrives intact.
    let info = prom.wait_query(
        &format!("container_info{{container_name=\"{}\"}}", plain.name),
        1,
    );
    let i = &info[0];
    assert_eq!(label(i, "container_runtime_name"), Some("docker"), "{i}");
    assert_eq!(label(i, "container_image_tags"), Some("test"), "{i}");
    assert_eq!(label(i, "container_label_ce_team"), Some("blue"), "{i}");
    assert_eq!(i["value"][1], "1", "{i}");
    let info = prom.wait_query(
        &format!("container_info{{container_name=\"{}\"}}", hostile.name),
        1,
    );
    assert_eq!(
        label(&info[0], "container_label_ce_hostile"),
        Some(HOSTILE),
        "the hostile label value did not survive the page: {}",
        info[0]
    );
    // Matching on the hostile value itself (PromQL string escapes) finds the same container.
    let q = format!(
        "container_info{{container_label_ce_hostile=\"{}\"}}",
        escaped(HOSTILE)
    );
    let by_value = prom.wait_query(&q, 1);
    assert_eq!(
        label(&by_value[0], "container_id"),
        Some(hostile.id.as_str())
    );
    // Still healthy after all these scrapes.
    let up = prom.query("up{job=\"container-exporter\"}");
    assert_eq!(up[0]["value"][1], "1", "{up:?}");
}

// ---------------------------------------------------------------------------------------------
// 2. promtool check metrics
// ---------------------------------------------------------------------------------------------

#[test]
fn promtool_check_metrics_finds_no_problems() {
    require_prometheus();
    let exp = start_exporter(&["--interval", "1s", "--docker-labels", "ce.*"]);
    let hostile = Container::run(
        &["--label", &format!("ce.hostile={HOSTILE}")],
        &["sleep", "120"],
    );
    let page = wait_on_page(
        &exp,
        &hostile,
        &[
            ("container_name", hostile.name.clone()),
            ("container_label_ce_hostile", escaped(HOSTILE)),
        ],
    );

    promtool_accepts(&page);
}

/// `promtool check metrics` finds no problem (no parse error, no lint) on `page`.
fn promtool_accepts(page: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run promtool: {e}; run {PROMETHEUS_SETUP}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "promtool check metrics: {} ({} bytes, {} lines)\n{said}",
        out.status,
        page.len(),
        page.lines().count()
    );
    // promtool exits 1 when the page does not parse (an error: always a failure) and 3 when it
    // only has lint problems. Lints already reported to the lead are listed in KNOWN_LINTS
    // until they decide; any other lint fails the test.
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(3),
        "promtool check metrics failed to parse the page ({}):\n{said}",
        out.status
    );
    let unknown: Vec<&str> = said
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !KNOWN_LINTS.contains(&l.trim()))
        .collect();
    assert!(
        unknown.is_empty(),
        "promtool check metrics found problems ({}):\n{}",
        out.status,
        unknown.join("\n")
    );
}

#[test]
fn the_cadvisor_page_answers_cadvisor_queries() {
    require_prometheus();
    let exp = start_exporter(&["--interval", "1s", "--prometheus-names", "cadvisor"]);
    let busy = Container::run(&["--memory", "64m"], &["sh", "-c", "yes >/dev/null"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let page = loop {
        let page = exporter_page(&exp);
        let named = format!("name=\"{}\"", busy.name);
        if page
            .lines()
            .any(|l| l.starts_with("container_cpu_usage_seconds_total{") && l.contains(&named))
        {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "not on the cAdvisor page:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        !page.contains("container_cpu_time_seconds_total"),
        "cAdvisor names only"
    );
    promtool_accepts(&page);

    let prom = Prometheus::start(exp.port);
    // What cAdvisor dashboards and kube-prometheus rules ask, by name.
    let name = &busy.name;
    let cpu = prom.wait_query(
        &format!("rate(container_cpu_usage_seconds_total{{name=\"{name}\",cpu=\"total\",image!=\"\"}}[5s])"),
        1,
    );
    let rate: f64 = cpu[0]["value"][1].as_str().unwrap().parse().unwrap();
    // A busy loop, not idle (idle is 0.000…); how much of a core it gets depends on the load.
    assert!(rate > 0.05, "a `yes` loop uses CPU: {cpu:?}");
    assert_eq!(label(&cpu[0], "image"), Some("ce-busybox:test"));
    assert_eq!(
        label(&cpu[0], "id"),
        Some(format!("/docker/{}", busy.id).as_str()),
        "{cpu:?}"
    );
    let limit = prom.wait_query(
        &format!("container_spec_memory_limit_bytes{{name=\"{name}\"}}"),
        1,
    );
    assert_eq!(limit[0]["value"][1], "67108864", "{limit:?}");
    for q in [
        "container_memory_working_set_bytes",
        "container_memory_rss",
        "container_threads",
        "container_start_time_seconds",
    ] {
        let r = prom.wait_query(&format!("{q}{{name=\"{name}\"}}"), 1);
        assert_eq!(r.len(), 1, "{q}: {r:?}");
    }
}
