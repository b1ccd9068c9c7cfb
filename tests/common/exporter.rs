//! The exporter's real binary as a child process serving its page on a free loopback port,
//! with its log kept in a file (printed when a test fails).

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::page::Page;
use super::{
    HTTP_TIMEOUT, Response, free_port, http_request, log_tail, require_docker, terminate,
    unique_name,
};

/// A promised bound: SIGTERM ends the daemon, whatever it is doing. It waits 3 s for a stuck
/// collector and gives pending OTLP requests 5 s (README); 20 s is a wide margin for a loaded
/// machine, and ends a hang. How fast it usually exits is not asserted: that is speed.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(20);

pub struct Exporter {
    pub child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
    /// Started under a wrapper (strace, prlimit) in a process group of its own: the whole
    /// group is stopped, since strace detaches its tracee, still running, when it is killed.
    pub group: bool,
}

impl Exporter {
    /// Starts the daemon on a free loopback port with `extra` flags, and waits until its HTTP
    /// server answers. Fails unless Docker and the test image are there.
    pub fn start(extra: &[&str]) -> Exporter {
        require_docker();
        Exporter::start_with_env(extra, &[])
    }

    /// Starts the daemon with `extra` flags and variables, whether or not Docker runs.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Exporter {
        Exporter::start_as(extra, env, None)
    }

    /// Starts the daemon as user `uid` (group `uid` too, no supplementary groups) when given.
    pub fn start_as(extra: &[&str], env: &[(&str, &str)], uid: Option<u32>) -> Exporter {
        Exporter::start_inner(&[], extra, env, uid)
    }

    /// Starts the daemon through a wrapper command (`setpriv …`, `prlimit …`), which runs it
    /// with its arguments.
    pub fn start_under(wrapper: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Exporter {
        Exporter::start_inner(wrapper, extra, env, None)
    }

    fn start_inner(
        wrapper: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
        uid: Option<u32>,
    ) -> Exporter {
        for _attempt in 0..3 {
            let port = free_port();
            let log = std::env::temp_dir().join(format!("{}-exporter.log", unique_name()));
            let log_file = fs::File::create(&log).expect("create the exporter's log file");
            let listen = format!("127.0.0.1:{port}");
            let bin = env!("CARGO_BIN_EXE_container-exporter");
            let mut cmd = match wrapper.split_first() {
                Some((w, args)) => {
                    let mut c = Command::new(w);
                    c.args(args).arg(bin);
                    c
                }
                None => Command::new(bin),
            };
            if !wrapper.is_empty() {
                use std::os::unix::process::CommandExt;
                cmd.process_group(0);
            }
            if let Some(uid) = uid {
                use std::os::unix::process::CommandExt;
                // std drops the supplementary groups when root sets a uid.
                cmd.uid(uid).gid(uid);
            }
            let child = cmd
                .args(["--prometheus-listen", &listen, "--log-level", "debug"])
                .args(extra)
                .env_remove("RUST_LOG")
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .expect("start container-exporter");
            let mut e = Exporter {
                child: Some(child),
                port,
                log,
                group: !wrapper.is_empty(),
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if matches!(http_request(port, "/readyz", &[], HTTP_TIMEOUT), Ok(r) if r.status == 200)
                {
                    return e;
                }
                if let Some(status) = e.child.as_mut().unwrap().try_wait().unwrap() {
                    let log = e.log_text();
                    e.child = None;
                    if log.contains("cannot listen") {
                        break; // the port was taken meanwhile: another one
                    }
                    panic!("container-exporter exited at start ({status}); its log:\n{log}");
                }
                assert!(
                    Instant::now() < deadline,
                    "container-exporter did not answer on {listen} within 15 s; its log:\n{}",
                    e.log_text()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not find a free port for container-exporter in three attempts");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("exporter running").id()
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.log, 60)
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        http_request(self.port, path, headers, HTTP_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "GET {path} on the exporter failed: {e}; its log:\n{}",
                self.log_tail()
            )
        })
    }

    pub fn metrics(&self) -> Page {
        let r = self.get("/metrics", &[]);
        assert_eq!(r.status, 200, "/metrics: {}", r.text());
        Page::new(String::from_utf8(r.body).expect("the page is UTF-8"))
    }

    pub fn healthz(&self) -> u16 {
        self.get("/healthz", &[]).status
    }

    /// Polls the page until `ok` holds; fails with `what`, the last page's lines matching
    /// `focus` and the exporter's log otherwise.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        focus: &str,
        mut ok: impl FnMut(&Page) -> bool,
    ) -> Page {
        let deadline = Instant::now() + timeout;
        loop {
            let page = self.metrics();
            if ok(&page) {
                return page;
            }
            if Instant::now() >= deadline {
                let lines = if focus.is_empty() {
                    page.text.clone()
                } else {
                    page.container_lines(focus)
                };
                panic!(
                    "{what}: not within {timeout:?}.\nLast page ({focus}):\n{lines}\n\
                     Exporter log (tail):\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn collections(&self) -> f64 {
        self.metrics()
            .value("container_exporter_collections_total", &[])
    }

    /// Sends SIGTERM and waits for the exit: the status and how long it took. Fails the test
    /// if it has not exited within [`SHUTDOWN_BOUND`].
    pub fn stop(&mut self) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("exporter running");
        let started = Instant::now();
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return (st, started.elapsed());
            }
            if started.elapsed() > SHUTDOWN_BOUND {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "container-exporter did not exit within {SHUTDOWN_BOUND:?} of SIGTERM; its \
                     log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- container-exporter log ({}), tail ---\n{}",
                self.log.display(),
                self.log_tail()
            );
        }
        if let Some(mut child) = self.child.take() {
            let group = Pid::from_raw(-(child.id() as i32));
            if self.group {
                let _ = kill(group, Signal::SIGTERM);
            }
            terminate(
                &mut child,
                Duration::from_secs(5),
                Duration::from_millis(20),
            );
            if self.group {
                let _ = kill(group, Signal::SIGKILL);
            }
        }
        if !std::thread::panicking() {
            let _ = fs::remove_file(&self.log);
        }
    }
}
