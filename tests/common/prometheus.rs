//! A Prometheus server (Debian's `prometheus` package, `.ci/prometheus-up.sh`) started on a
//! loopback port with a scratch storage directory, and child processes with their logs.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

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
