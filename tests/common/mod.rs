//! Helpers shared by the integration tests that run real Docker containers, the real binary and
//! real HTTP servers: the `docker` CLI, the test image check, unique names, a container guard, a
//! temporary directory on the build disk, a minimal HTTP/1.1 GET client, busybox `time` output,
//! the stopping of child processes, and the `NOT TESTED` report of what a test could not test.
//!
//! Each test file has `mod common;`; not every file uses every helper.
#![allow(dead_code)]

pub mod bridge;
pub mod browser;
pub mod cgroups;
pub mod cri;
pub mod cri_api;
pub mod exits;
pub mod exporter;
pub mod otlp;
pub mod otlp_reference;
pub mod page;
pub mod private_root;
pub mod prometheus;
pub mod proxy;
pub mod tls;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The busybox test image, built by [`DOCKER_SETUP`].
pub const IMAGE: &str = "ce-busybox:test";
/// The script that installs and starts Docker and builds [`IMAGE`].
pub const DOCKER_SETUP: &str = ".ci/docker-up.sh";

// ---------------------------------------------------------------------------------------------
// Docker
// ---------------------------------------------------------------------------------------------

/// `docker [-H host] args…`; fails with a message naming the setup script if the client cannot
/// be run at all.
pub fn docker_at(host: Option<&str>, args: &[&str]) -> Output {
    // A daemon that stopped answering (Debian's Docker 20.10 can deadlock in libnetwork) fails
    // the test with its cause, rather than hanging it until CI's own limit; once seen, every
    // later call in this test binary fails at once.
    static WEDGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    const ANSWER_WITHIN: Duration = Duration::from_secs(300);
    let shown = format!("docker {}", args.join(" "));
    assert!(
        !WEDGED.load(Ordering::Relaxed),
        "`{shown}` not run: dockerd stopped answering earlier in this test binary"
    );
    let mut cmd = Command::new("docker");
    if let Some(h) = host {
        cmd.args(["-H", h]);
    }
    let child = cmd
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{shown}`: {e}; run {DOCKER_SETUP} as root first"));
    let pid = Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(ANSWER_WITHIN) {
        Ok(out) => out.unwrap_or_else(|e| panic!("`{shown}`: {e}")),
        Err(_) => {
            WEDGED.store(true, Ordering::Relaxed);
            let _ = kill(pid, Signal::SIGKILL);
            // dockerd writes its goroutines to /var/run/docker/goroutine-stacks-*.log.
            let _ = Command::new("pkill")
                .args(["-USR1", "-x", "dockerd"])
                .status();
            panic!(
                "`{shown}` got no answer within {ANSWER_WITHIN:?}: dockerd is wedged (its \
                 goroutine dump is in /var/run/docker/goroutine-stacks-*.log; restart it with \
                 {DOCKER_SETUP} after stopping it)"
            )
        }
    }
}

/// `docker args…` against the host's daemon.
pub fn docker(args: &[&str]) -> Output {
    docker_at(None, args)
}

/// Fails the test (it never skips) with a message naming the setup script unless dockerd
/// answers and the test image exists. Checked once per test binary.
pub fn require_docker() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let res = CHECK.get_or_init(|| {
        match Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output()
        {
            Err(e) => return Err(format!("cannot run the docker client: {e}")),
            Ok(o) if !o.status.success() => {
                return Err(format!(
                    "`docker info` failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Ok(_) => {}
        }
        if !docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE])
            .status
            .success()
        {
            return Err(format!("image {IMAGE} is missing"));
        }
        Ok(())
    });
    if let Err(e) = res {
        panic!(
            "Docker is not available for the integration tests (tests/{}.rs): {e}.\n\
             Run `{DOCKER_SETUP}` as root (it installs docker.io and busybox-static, starts \
             dockerd and builds {IMAGE}), then re-run the tests.",
            env!("CARGO_CRATE_NAME")
        );
    }
}

/// A name no other test (of this binary or another test binary) uses: `ce-<test file>-<pid>-<n>`.
pub fn unique_name() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "ce-{}-{}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A container, removed (with `docker rm -f -v`, by id once known) when dropped.
pub struct Container {
    pub name: String,
    pub id: String,
    pub host: Option<String>,
}

impl Container {
    /// `docker [-H host] run -d --network none --name <unique> <extra…> IMAGE <cmd…>` (without
    /// `--network none` when `extra` names a network).
    pub fn run_at(host: Option<&str>, extra: &[&str], cmd: &[&str]) -> Container {
        require_docker();
        // The guard first, so a half-created container is removed too.
        let mut c = Container {
            name: unique_name(),
            id: String::new(),
            host: host.map(str::to_string),
        };
        let mut args: Vec<&str> = vec!["run", "-d", "--name", &c.name];
        if !extra.contains(&"--network") {
            args.extend(["--network", "none"]);
        }
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        let out = docker_at(host, &args);
        assert!(
            out.status.success(),
            "`docker {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        c.id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            c.id.len() == 64 && c.id.bytes().all(|b| b.is_ascii_hexdigit()),
            "unexpected container id from docker run: {:?}",
            c.id
        );
        c
    }

    /// `docker run -d --network none --name <unique> <extra…> IMAGE <cmd…>` on the host's daemon.
    pub fn run(extra: &[&str], cmd: &[&str]) -> Container {
        Container::run_at(None, extra, cmd)
    }

    /// `docker run -d --network none --name <unique> <extra…> IMAGE sh -c <script>`.
    pub fn sh(extra: &[&str], script: &str) -> Container {
        Container::run(extra, &["sh", "-c", script])
    }

    /// stdout and stderr of the container, together.
    pub fn logs(&self) -> String {
        let out = docker_at(self.host.as_deref(), &["logs", &self.name]);
        let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
        s.push_str(&String::from_utf8_lossy(&out.stderr));
        s
    }

    /// Blocks until the container exited.
    pub fn wait_exit(&self) {
        let out = docker_at(self.host.as_deref(), &["wait", &self.name]);
        assert!(
            out.status.success(),
            "docker wait {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `docker rm -f -v`, checked.
    pub fn remove(&self) {
        let out = docker_at(self.host.as_deref(), &["rm", "-f", "-v", &self.name]);
        assert!(
            out.status.success(),
            "docker rm {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // By id once known (a test may rename the container); not `docker_at`, which panics.
        let target = if self.id.is_empty() {
            &self.name
        } else {
            &self.id
        };
        let mut cmd = Command::new("docker");
        if let Some(h) = &self.host {
            cmd.args(["-H", h]);
        }
        let _ = cmd.args(["rm", "-f", "-v", target]).output();
    }
}

// ---------------------------------------------------------------------------------------------
// What a test could not test
// ---------------------------------------------------------------------------------------------

/// Says loudly that `what` was not tested, and `why`: a banner (`NOT TESTED: <what>: <why>`)
/// written straight to the process's stderr, past the test harness's capture, so that
/// `cargo test` shows it for a test that passes too; and the same line, naming the test file,
/// appended to the file `CE_SKIP_REPORT` names when it is set. `.ci/run` sets it and prints the
/// file as its closing summary, so a skip is never silent.
///
/// Use it only where the CI machine cannot have the thing at all (another cgroup layout, for
/// example); where CI can have it, a test fails instead.
pub fn not_tested(what: &str, why: &str) {
    let line = format!(
        "NOT TESTED: {what}: {why} (tests/{}.rs)",
        env!("CARGO_CRATE_NAME")
    );
    let bar = "!".repeat(line.len().min(100));
    // Not `eprintln!`: the harness captures that for tests that pass.
    let _ = std::io::stderr().write_all(format!("\n{bar}\n{line}\n{bar}\n").as_bytes());
    if let Some(path) = std::env::var_os("CE_SKIP_REPORT").filter(|p| !p.is_empty()) {
        // One write of the whole line, with O_APPEND: lines of tests running at the same time
        // do not interleave.
        let appended = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = appended {
            panic!(
                "cannot append to CE_SKIP_REPORT={}: {e} (the skip would go unreported)",
                path.to_string_lossy()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Files and disks
// ---------------------------------------------------------------------------------------------

/// A directory under cargo's target tmpdir, removed when dropped. It sits on the build disk (a
/// real block device, which bind mounts written with `O_DIRECT` need), not on a /tmp that may be
/// tmpfs.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name());
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The whole disk (not the partition) holding `path`: ("MAJ:MIN", "/dev/<name>").
pub fn disk_of(path: &Path) -> (String, String) {
    let dev = fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .dev();
    // glibc's gnu_dev_major / gnu_dev_minor.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    let real = fs::canonicalize(&sys).unwrap_or_else(|e| {
        panic!(
            "{} is on device {major}:{minor}, which is not a block device ({}: {e}); \
             the test's block IO needs the build directory on a real disk",
            path.display(),
            sys.display()
        )
    });
    let disk = if real.join("partition").exists() {
        real.parent().unwrap().to_path_buf()
    } else {
        real
    };
    let majmin = fs::read_to_string(disk.join("dev"))
        .expect("read the disk's dev file")
        .trim()
        .to_string();
    let uevent = fs::read_to_string(disk.join("uevent")).expect("read the disk's uevent file");
    let name = uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(str::to_string)
        .unwrap_or_else(|| disk.file_name().unwrap().to_string_lossy().into_owned());
    let node = format!("/dev/{name}");
    assert!(
        Path::new(&node).exists(),
        "device node {node} (disk {majmin}) does not exist"
    );
    (majmin, node)
}

// ---------------------------------------------------------------------------------------------
// HTTP: a minimal HTTP/1.1 client, one connection per request
// ---------------------------------------------------------------------------------------------

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The read and write timeout of [`http_get`].
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// `GET path` on 127.0.0.1:`port`, with [`HTTP_TIMEOUT`] and no extra headers.
pub fn http_get(port: u16, path: &str) -> std::io::Result<Response> {
    http_request(port, path, &[], HTTP_TIMEOUT)
}

/// `GET path` on 127.0.0.1:`port` with `headers` and `Connection: close`, reading and writing
/// within `timeout`. A chunked body is dechunked; a body shorter than its `Content-Length` is an
/// error, a longer one is cut.
pub fn http_request(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers in the response"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body)?;
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if body.len() < len {
            return Err(std::io::Error::other(format!(
                "body cut short: {} of {len} bytes",
                body.len()
            )));
        }
        body.truncate(len);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The body of a `Transfer-Encoding: chunked` response.
fn dechunk(mut b: &[u8]) -> std::io::Result<Vec<u8>> {
    let bad = || std::io::Error::other("bad chunked body");
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_str = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16)
            .map_err(|_| bad())?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).ok_or_else(bad)?);
        b = b.get(size + 2..).ok_or_else(bad)?;
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (a query-string value).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Workloads and child processes
// ---------------------------------------------------------------------------------------------

/// busybox `time` output (`user\t0m 1.42s`): user + sys seconds, once both lines are there.
pub fn busybox_time(log: &str) -> Option<f64> {
    let field = |key: &str| -> Option<f64> {
        let line = log.lines().find(|l| l.starts_with(key))?;
        let t = line[key.len()..].trim();
        let (m, s) = t.split_once('m')?;
        let s = s.trim().strip_suffix('s')?;
        Some(m.trim().parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
    };
    Some(field("user")? + field("sys")?)
}

/// SIGTERM, then up to `grace` for the exit (polled every `poll`), then SIGKILL; reaps.
pub fn terminate(child: &mut Child, grace: Duration, poll: Duration) {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(poll);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `n` lines of a log file (empty if it cannot be read).
pub fn log_tail(path: &Path, n: usize) -> String {
    let log = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
