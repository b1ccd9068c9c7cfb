//! A Prometheus server (Debian's `prometheus` package, `.ci/prometheus-up.sh`) started on a
//! loopback port with a scratch storage directory, and child processes with their logs; and the
//! scrape job the Prometheus Operator makes of a ServiceMonitor of `deploy/`, so that the tests
//! scrape the exporter exactly as the shipped ServiceMonitors say.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use serde_yaml_ng::Value as Yaml;

use super::{free_port, http_get, log_tail, terminate, unique_name, urlencode};

pub const PROMETHEUS_SETUP: &str = ".ci/prometheus-up.sh";

/// Fails with a message naming the setup script unless `prometheus` and `promtool` run.
pub fn require_prometheus() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let res = CHECK.get_or_init(|| {
        for bin in ["prometheus", "promtool"] {
            match Command::new(bin).arg("--version").output() {
                Ok(o) if o.status.success() => {}
                Ok(o) => {
                    return Err(format!(
                        "`{bin} --version` failed: {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    ));
                }
                Err(e) => return Err(format!("cannot run `{bin}`: {e}")),
            }
        }
        Ok(())
    });
    if let Err(e) = res {
        panic!(
            "Prometheus is not available for the Prometheus tests: {e}.\nRun \
             `{PROMETHEUS_SETUP}` as root (it installs Debian's prometheus package), then \
             re-run the tests."
        );
    }
}

/// A child process with its output in a log file; SIGTERM (then SIGKILL) when dropped.
pub struct Daemon {
    pub what: &'static str,
    pub child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` (which listens on `port`) and waits until `ready_path` answers 200.
    pub fn start(what: &'static str, mut cmd: Command, port: u16, ready_path: &str) -> Daemon {
        let log = std::env::temp_dir().join(format!("{}-{what}.log", unique_name()));
        let f = fs::File::create(&log).expect("create a log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let mut d = Daemon {
            what,
            child: Some(child),
            port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if matches!(http_get(port, ready_path), Ok(r) if r.status == 200) {
                return d;
            }
            if let Some(st) = d.child.as_mut().unwrap().try_wait().unwrap() {
                d.child = None;
                panic!("{what} exited at start ({st}); its log:\n{}", d.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not answer {ready_path} on port {port} within 30 s; its log:\n{}",
                d.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.log, 40)
    }

    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let r = http_get(self.port, path).unwrap_or_else(|e| {
            panic!(
                "GET {path} on {} failed: {e}; its log:\n{}",
                self.what,
                self.log_tail()
            )
        });
        (r.status, r.body)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} log, tail ---\n{}", self.what, self.log_tail());
        }
        if let Some(mut child) = self.child.take() {
            terminate(
                &mut child,
                Duration::from_secs(10),
                Duration::from_millis(50),
            );
        }
        if !std::thread::panicking() {
            let _ = fs::remove_file(&self.log);
        }
    }
}

pub struct Prometheus {
    pub daemon: Daemon,
    pub dir: PathBuf,
}

impl Prometheus {
    /// A Prometheus server on a loopback port, scraping `target` every second.
    pub fn start(target_port: u16) -> Prometheus {
        Prometheus::start_with(
            &format!(
                "  - job_name: container-exporter\n    static_configs:\n      \
                 - targets: ['127.0.0.1:{target_port}']\n"
            ),
            None,
        )
    }

    /// One with these scrape configs (the YAML list items under `scrape_configs:`, indented
    /// by two spaces), scraping and evaluating every second, with these recording or alerting
    /// rules (a rule file's YAML) when given.
    pub fn start_with(scrape_configs: &str, rules: Option<&str>) -> Prometheus {
        require_prometheus();
        let dir = std::env::temp_dir().join(format!("{}-prometheus", unique_name()));
        fs::create_dir_all(&dir).unwrap();
        let config = dir.join("prometheus.yml");
        let rule_files = match rules {
            Some(r) => {
                let path = dir.join("rules.yml");
                fs::write(&path, r).unwrap();
                format!("rule_files:\n  - {}\n", path.display())
            }
            None => String::new(),
        };
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 {rule_files}scrape_configs:\n{scrape_configs}"
            ),
        )
        .unwrap();
        let port = free_port();
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let daemon = Daemon::start("prometheus", cmd, port, "/-/ready");
        Prometheus { daemon, dir }
    }

    pub fn api(&self, path: &str) -> Value {
        let (status, body) = self.daemon.get(path);
        let v: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "GET {path}: not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        assert_eq!(status, 200, "GET {path}: {v}");
        assert_eq!(v["status"], "success", "GET {path}: {v}");
        v["data"].clone()
    }

    /// An instant query: the result vector.
    pub fn query(&self, q: &str) -> Vec<Value> {
        let data = self.api(&format!("/api/v1/query?query={}", urlencode(q)));
        assert_eq!(data["resultType"], "vector", "{q}: {data}");
        data["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `q` until it returns `n` series.
    pub fn wait_query(&self, q: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.query(q);
            if r.len() == n {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "{q}: {} series after 20 s, expected {n}: {r:?}\ntargets: {}",
                r.len(),
                self.api("/api/v1/targets")
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // The daemon field is dropped (stopped) after this body: stop it first, by hand.
        if let Some(mut child) = self.daemon.child.take() {
            terminate(
                &mut child,
                Duration::from_secs(10),
                Duration::from_millis(50),
            );
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub fn label<'a>(series: &'a Value, name: &str) -> Option<&'a str> {
    series["metric"][name].as_str()
}

/// The exporter's pod as the Prometheus Operator's service discovery would see it: what the
/// ServiceMonitor's relabelings get to read. Taken from `deploy/kubernetes/` (namespace, Service,
/// port and container names); the pod's name and its node are the test's.
pub struct ExporterPod {
    pub namespace: String,
    pub service: String,
    pub port_name: String,
    pub container: String,
    pub pod: String,
    pub node: String,
}

fn deploy_yaml(rel: &str) -> Yaml {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    // One document: serde_yaml_ng refuses a file of several.
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_str<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str()
        .unwrap_or_else(|| panic!("{what}: not a string: {y:?}"))
}

impl ExporterPod {
    /// The exporter's pod of `deploy/kubernetes/` on `node`.
    pub fn on(node: &str) -> ExporterPod {
        let svc = deploy_yaml("deploy/kubernetes/service.yaml");
        let ds = deploy_yaml("deploy/kubernetes/daemonset.yaml");
        let container = &ds["spec"]["template"]["spec"]["containers"][0];
        ExporterPod {
            namespace: yaml_str(&svc["metadata"]["namespace"], "service namespace").to_string(),
            service: yaml_str(&svc["metadata"]["name"], "service name").to_string(),
            port_name: yaml_str(&svc["spec"]["ports"][0]["name"], "service port").to_string(),
            container: yaml_str(&container["name"], "container name").to_string(),
            // A DaemonSet pod's name: the DaemonSet's and five random characters.
            pod: format!(
                "{}-x7k2p",
                yaml_str(&ds["metadata"]["name"], "daemonset name")
            ),
            node: node.to_string(),
        }
    }
}

/// A YAML scalar for the config: JSON's quoting is YAML's double-quoted style.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// One relabel config of a ServiceMonitor (camelCase, as the CRD has it) in Prometheus's words.
/// A field this translation does not know fails the test: it would otherwise be left out.
fn relabel_config(r: &Yaml, what: &str) -> String {
    let map = r
        .as_mapping()
        .unwrap_or_else(|| panic!("{what}: not a mapping: {r:?}"));
    let mut fields = Vec::new();
    for (k, v) in map {
        let k = yaml_str(k, what);
        let field = match k {
            "action" => format!("action: {}", quoted(&yaml_str(v, what).to_lowercase())),
            "sourceLabels" => format!(
                "source_labels: [{}]",
                v.as_sequence()
                    .unwrap_or_else(|| panic!("{what}: sourceLabels is not a list"))
                    .iter()
                    .map(|l| quoted(yaml_str(l, what)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "separator" => format!("separator: {}", quoted(yaml_str(v, what))),
            "targetLabel" => format!("target_label: {}", quoted(yaml_str(v, what))),
            "regex" => format!("regex: {}", quoted(yaml_str(v, what))),
            "replacement" => format!("replacement: {}", quoted(yaml_str(v, what))),
            "modulus" => format!(
                "modulus: {}",
                v.as_i64().unwrap_or_else(|| panic!("{what}: modulus"))
            ),
            other => panic!(
                "{what}: the tests cannot translate the relabeling field `{other}` into a scrape \
                 config (tests/common/prometheus.rs): teach them, or leave it out"
            ),
        };
        fields.push(field);
    }
    format!("      - {{{}}}\n", fields.join(", "))
}

/// The scrape job the Prometheus Operator generates for the one endpoint of the ServiceMonitor
/// in `deploy_path` (relative to the repository), with a static target (the exporter on
/// `127.0.0.1:port`) in place of Kubernetes service discovery: a YAML list item for
/// [`Prometheus::start_with`].
///
/// As the operator does for a Service's pod: the discovery labels of `pod` on the target, then
/// the operator's own relabelings (namespace, service, pod, container, job from the Service's
/// name, endpoint from the port's), then the endpoint's `relabelings`; its `metricRelabelings`
/// as `metric_relabel_configs`, `honorLabels` as `honor_labels`, `path` as `metrics_path`. The
/// endpoint's `interval` is not used: the tests scrape every second. A field of the endpoint
/// this does not translate fails the test.
pub fn service_monitor_job(deploy_path: &str, port: u16, pod: &ExporterPod) -> String {
    let sm = deploy_yaml(deploy_path);
    assert_eq!(
        yaml_str(&sm["kind"], "kind"),
        "ServiceMonitor",
        "{deploy_path}"
    );
    let endpoints = sm["spec"]["endpoints"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{deploy_path}: no endpoints"));
    assert_eq!(endpoints.len(), 1, "{deploy_path}: one endpoint");
    let ep = &endpoints[0];
    let mut honor_labels = false;
    let mut path = "/metrics".to_string();
    let mut relabel = String::new();
    let mut metric_relabel = String::new();
    for (k, v) in ep
        .as_mapping()
        .unwrap_or_else(|| panic!("{deploy_path}: endpoint"))
    {
        match yaml_str(k, deploy_path) {
            "port" => assert_eq!(
                yaml_str(v, "port"),
                pod.port_name,
                "{deploy_path}: the endpoint's port is not the Service's"
            ),
            "path" => path = yaml_str(v, "path").to_string(),
            "interval" => {}
            "honorLabels" => honor_labels = v.as_bool().expect("honorLabels: a boolean"),
            "relabelings" => {
                for (i, r) in v
                    .as_sequence()
                    .expect("relabelings: a list")
                    .iter()
                    .enumerate()
                {
                    relabel.push_str(&relabel_config(
                        r,
                        &format!("{deploy_path} relabelings[{i}]"),
                    ));
                }
            }
            "metricRelabelings" => {
                for (i, r) in v
                    .as_sequence()
                    .expect("metricRelabelings: a list")
                    .iter()
                    .enumerate()
                {
                    metric_relabel.push_str(&relabel_config(
                        r,
                        &format!("{deploy_path} metricRelabelings[{i}]"),
                    ));
                }
            }
            other => panic!(
                "{deploy_path}: the tests cannot translate the endpoint field `{other}` into a \
                 scrape config (tests/common/prometheus.rs): teach them, or leave it out"
            ),
        }
    }
    let ns = yaml_str(&sm["metadata"]["namespace"], "namespace");
    let name = yaml_str(&sm["metadata"]["name"], "name");
    let mut job = format!(
        "  - job_name: {job}\n    honor_labels: {honor_labels}\n    metrics_path: {path}\n    \
         static_configs:\n      - targets: ['127.0.0.1:{port}']\n        labels:\n          \
         __meta_kubernetes_namespace: {ns_l}\n          __meta_kubernetes_service_name: {svc}\n          \
         __meta_kubernetes_pod_name: {pod_l}\n          __meta_kubernetes_pod_container_name: {ctr}\n          \
         __meta_kubernetes_pod_node_name: {node}\n    relabel_configs:\n      \
         - {{source_labels: [__meta_kubernetes_namespace], target_label: namespace}}\n      \
         - {{source_labels: [__meta_kubernetes_service_name], target_label: service}}\n      \
         - {{source_labels: [__meta_kubernetes_pod_name], target_label: pod}}\n      \
         - {{source_labels: [__meta_kubernetes_pod_container_name], target_label: container}}\n      \
         - {{source_labels: [__meta_kubernetes_service_name], target_label: job}}\n      \
         - {{target_label: endpoint, replacement: {port_name}}}\n",
        job = quoted(&format!("serviceMonitor/{ns}/{name}/0")),
        path = quoted(&path),
        ns_l = quoted(&pod.namespace),
        svc = quoted(&pod.service),
        pod_l = quoted(&pod.pod),
        ctr = quoted(&pod.container),
        node = quoted(&pod.node),
        port_name = quoted(&pod.port_name),
    );
    job.push_str(&relabel);
    if !metric_relabel.is_empty() {
        job.push_str("    metric_relabel_configs:\n");
        job.push_str(&metric_relabel);
    }
    job
}
