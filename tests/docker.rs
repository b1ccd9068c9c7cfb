//! Integration tests against a real Docker daemon and the real binary.
//!
//! Each test starts busybox containers (image `ce-busybox:test`, built by `.ci/docker-up.sh`) with
//! `--network none`, lets a workload finish, runs `container-exporter snapshot --format json` and
//! compares the figures with what the workload itself did. Containers are removed by a Drop guard.
//!
//! These tests need root and a running dockerd: run `.ci/docker-up.sh` first. Without Docker
//! they fail (they do not skip), so a CI host that lost its daemon cannot pass silently.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

const IMAGE: &str = "ce-busybox:test";
const MIB: f64 = 1024.0 * 1024.0;
/// How long a workload may take to reach its DONE marker.
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// Docker helpers
// ---------------------------------------------------------------------------------------------

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `docker {}`: {e}; run .ci/docker-up.sh as root first",
                args.join(" ")
            )
        })
}

/// Panics (fails the test) with a clear message unless dockerd answers and the test image exists.
fn require_docker() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let res = CHECK.get_or_init(|| {
        let info = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output();
        match info {
            Err(e) => return Err(format!("cannot run the docker client: {e}")),
            Ok(o) if !o.status.success() => {
                return Err(format!(
                    "`docker info` failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Ok(_) => {}
        }
        let img = docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE]);
        if !img.status.success() {
            return Err(format!("image {IMAGE} is missing"));
        }
        Ok(())
    });
    if let Err(e) = res {
        panic!(
            "Docker is not available for the integration tests: {e}.\n\
             Run `.ci/docker-up.sh` as root (it installs docker.io and busybox-static, starts dockerd \
             and builds {IMAGE}), then re-run the tests."
        );
    }
}

fn unique_name() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "ce-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A running container, removed (with `docker rm -f`) when dropped.
struct Container {
    name: String,
    id: String,
}

impl Container {
    /// `docker run -d --network none --name <unique> <extra...> IMAGE sh -c <script>`.
    fn run(extra: &[&str], script: &str) -> Container {
        require_docker();
        let name = unique_name();
        let mut args: Vec<&str> = vec!["run", "-d", "--network", "none", "--name", &name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
        let out = docker(&args);
        // Make the guard first so a half-created container is removed too.
        let mut c = Container {
            name: name.clone(),
            id: String::new(),
        };
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

    /// stdout and stderr of the container, together.
    fn logs(&self) -> String {
        let out = docker(&["logs", &self.name]);
        let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
        s.push_str(&String::from_utf8_lossy(&out.stderr));
        s
    }

    /// Waits until the container's log has a line equal to `DONE`; fails on `FAIL` or timeout.
    fn wait_done(&self) -> String {
        let start = Instant::now();
        loop {
            let logs = self.logs();
            if logs.lines().any(|l| l.trim() == "DONE") {
                return logs;
            }
            if logs.lines().any(|l| l.trim() == "FAIL") {
                panic!("workload in {} failed; its log:\n{logs}", self.name);
            }
            let state = docker(&["inspect", "-f", "{{.State.Running}}", &self.name]);
            if String::from_utf8_lossy(&state.stdout).trim() == "false" {
                panic!(
                    "container {} exited before DONE; its log:\n{logs}",
                    self.name
                );
            }
            if start.elapsed() > WORKLOAD_TIMEOUT {
                panic!(
                    "workload in {} not done after {WORKLOAD_TIMEOUT:?}; its log:\n{logs}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .output();
    }
}

/// A host directory for bind mounts, removed when dropped. Made under cargo's target tmpdir, which
/// sits on the build disk (a real block device), not on a /tmp that may be tmpfs.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
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
fn disk_of(path: &Path) -> (String, String) {
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
             the disk IO test needs the build directory on a real disk",
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
// The binary and its JSON
// ---------------------------------------------------------------------------------------------

fn snapshot() -> Value {
    let bin = env!("CARGO_BIN_EXE_container-exporter");
    let out = Command::new(bin)
        .args(["snapshot", "--format", "json"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "`container-exporter snapshot --format json` exited with {}:\nstderr: {}\nstdout: {stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("snapshot output is not JSON ({e}):\n{stdout}"));
    assert!(
        v.get("containers").is_some_and(Value::is_array),
        "no `containers` array in:\n{stdout}"
    );
    v
}

/// The snapshot's element for container `id`, checking the resource's fixed attributes.
fn find<'a>(snap: &'a Value, c: &Container) -> &'a Value {
    let containers = snap["containers"].as_array().unwrap();
    let found: Vec<&Value> = containers
        .iter()
        .filter(|e| e["resource"]["container.id"].as_str() == Some(c.id.as_str()))
        .collect();
    assert!(
        found.len() == 1,
        "container {} ({}) found {} times in the snapshot; ids seen: {:?}",
        c.name,
        c.id,
        found.len(),
        containers
            .iter()
            .map(|e| e["resource"]["container.id"].clone())
            .collect::<Vec<_>>()
    );
    let e = found[0];
    assert_eq!(
        e["resource"]["container.runtime.name"].as_str(),
        Some("docker"),
        "resource of {}: {}",
        c.name,
        e["resource"]
    );
    if let Some(n) = e["resource"].get("container.name") {
        assert_eq!(
            n.as_str(),
            Some(c.name.as_str()),
            "container.name of {}",
            c.id
        );
    }
    assert!(
        e["metrics"].is_array(),
        "no metrics array for {}: {e}",
        c.name
    );
    e
}

/// Metric points of `name` whose attributes include all of `attrs`.
fn points<'a>(e: &'a Value, name: &str, attrs: &[(&str, &str)]) -> Vec<&'a Value> {
    e["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"].as_str() == Some(name))
        .filter(|m| {
            attrs
                .iter()
                .all(|(k, v)| m["attributes"][*k].as_str() == Some(*v))
        })
        .collect()
}

/// The single value of `name` with `attrs`, checking its unit; fails if absent or repeated.
fn value(e: &Value, name: &str, unit: &str, attrs: &[(&str, &str)]) -> f64 {
    let p = points(e, name, attrs);
    assert!(
        p.len() == 1,
        "expected one point of {name} {attrs:?}, found {}; metrics of the container:\n{}",
        p.len(),
        serde_json::to_string_pretty(&e["metrics"]).unwrap()
    );
    assert_eq!(
        p[0]["unit"].as_str(),
        Some(unit),
        "unit of {name}: {}",
        p[0]
    );
    p[0]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("value of {name} is not a number: {}", p[0]))
}

fn assert_within(what: &str, got: f64, lo: f64, hi: f64) {
    assert!(
        got >= lo && got <= hi,
        "{what}: got {got}, expected within [{lo}, {hi}]"
    );
}

/// Parses busybox `time` output (`user\t0m 1.94s`, `sys\t0m 0.02s`) into user + sys seconds.
fn busybox_time_user_sys(log: &str) -> f64 {
    let field = |key: &str| -> f64 {
        let line = log
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no `{key}` line from busybox time in:\n{log}"));
        line.split_whitespace()
            .skip(1)
            .map(|tok| {
                let (num, mult) = if let Some(n) = tok.strip_suffix('h') {
                    (n, 3600.0)
                } else if let Some(n) = tok.strip_suffix('m') {
                    (n, 60.0)
                } else if let Some(n) = tok.strip_suffix('s') {
                    (n, 1.0)
                } else {
                    panic!("cannot parse `{line}`")
                };
                num.parse::<f64>()
                    .unwrap_or_else(|_| panic!("cannot parse `{line}`"))
                    * mult
            })
            .sum()
    };
    field("user") + field("sys")
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn cpu_time_matches_the_workload() {
    let c = Container::run(&[], "time timeout 2 yes >/dev/null; echo DONE; sleep 600");
    let log = c.wait_done();
    let truth = busybox_time_user_sys(&log);
    assert!(
        truth > 0.5,
        "the CPU burner used only {truth} s; log:\n{log}"
    );

    let snap = snapshot();
    let e = find(&snap, &c);
    let user = value(e, "container.cpu.time", "s", &[("cpu.mode", "user")]);
    let system = value(e, "container.cpu.time", "s", &[("cpu.mode", "system")]);
    let got = user + system;
    // 10 %, plus a little for the shell, runc's init and `time` itself.
    assert_within(
        &format!(
            "container.cpu.time user {user} + system {system} vs the workload's own {truth} s"
        ),
        got,
        truth * 0.9 - 0.05,
        truth * 1.1 + 0.05,
    );
    // The burner was idle during the snapshot, so the rate is near zero.
    let usage = value(e, "container.cpu.usage", "{cpu}", &[]);
    assert_within("container.cpu.usage of an idle container", usage, 0.0, 0.1);
}

#[test]
fn disk_write_bytes_match_dd() {
    let dir = TempDir::new();
    let (majmin, node) = disk_of(&dir.0);
    let vol = format!("{}:/data", dir.0.display());
    let bps = format!("{node}:10gb");
    // On cgroup v1 blkio the throttle files only count on a device that has had a throttle rule;
    // a limit far too high to matter makes the accounting live (FINDINGS.md).
    let c = Container::run(
        &["-v", &vol, "--device-write-bps", &bps],
        "dd if=/dev/zero of=/data/f bs=1M count=32 oflag=direct || { echo FAIL; exit 1; }; \
         echo DONE; sleep 600",
    );
    c.wait_done();
    let written = fs::metadata(dir.0.join("f"))
        .expect("dd's output file")
        .len();
    assert_eq!(written, 32 << 20, "dd wrote {written} bytes");

    let snap = snapshot();
    let e = find(&snap, &c);
    let dev = [
        ("disk.io.direction", "write"),
        ("system.device", majmin.as_str()),
    ];
    let bytes = value(e, "container.disk.io", "By", &dev);
    assert_within(
        &format!("container.disk.io write on {majmin} ({node})"),
        bytes,
        32.0 * MIB * 0.9,
        32.0 * MIB * 1.1,
    );
    let ops = value(e, "container.disk.operations", "{operation}", &dev);
    assert!(
        ops >= 1.0,
        "container.disk.operations write on {majmin}: {ops}"
    );
    // Any other device the container touched is reported under its own MAJ:MIN, never mixed in.
    for p in points(e, "container.disk.io", &[]) {
        let d = p["attributes"]["system.device"]
            .as_str()
            .unwrap_or_default();
        assert!(
            d.split_once(':')
                .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok()),
            "system.device is not MAJ:MIN: {p}"
        );
    }
}

#[test]
fn loopback_bytes_match_the_transfer() {
    let c = Container::run(
        &[],
        "mkdir -p /tmp/www && dd if=/dev/zero of=/tmp/www/f bs=1M count=16 2>/dev/null \
           && httpd -p 8080 -h /tmp/www || { echo FAIL; exit 1; }; \
         n=0; until wget -q -O /dev/null http://127.0.0.1:8080/f; do \
           n=$((n+1)); [ $n -ge 20 ] && { echo FAIL; exit 1; }; sleep 1; done; \
         echo DONE; sleep 600",
    );
    c.wait_done();

    let snap = snapshot();
    let e = find(&snap, &c);
    let rx = value(
        e,
        "container.network.io",
        "By",
        &[
            ("network.io.direction", "receive"),
            ("network.interface.name", "lo"),
        ],
    );
    // 16 MiB of body plus HTTP headers and TCP handshakes.
    assert_within(
        "container.network.io receive on lo",
        rx,
        16.0 * MIB,
        16.0 * MIB * 1.1,
    );
    let tx = value(
        e,
        "container.network.io",
        "By",
        &[
            ("network.io.direction", "transmit"),
            ("network.interface.name", "lo"),
        ],
    );
    assert_within(
        "container.network.io transmit on lo",
        tx,
        16.0 * MIB,
        16.0 * MIB * 1.1,
    );
    // --network none: lo is the only interface.
    for p in points(e, "container.network.io", &[]) {
        assert_eq!(
            p["attributes"]["network.interface.name"].as_str(),
            Some("lo"),
            "{p}"
        );
    }
}

#[test]
fn memory_pids_limits_and_resource() {
    // 32 MiB held in a tmpfs (shmem, charged to the container's memory cgroup).
    let limited = Container::run(
        &[
            "--memory",
            "256m",
            "--cpus",
            "1.5",
            "--pids-limit",
            "100",
            "--tmpfs",
            "/m:size=64m",
        ],
        "dd if=/dev/zero of=/m/f bs=1M count=32 2>/dev/null || { echo FAIL; exit 1; }; echo DONE; sleep 600",
    );
    let unlimited = Container::run(&[], "echo DONE; sleep 600");
    limited.wait_done();
    unlimited.wait_done();

    let snap = snapshot();

    let e = find(&snap, &limited);
    let mem = value(e, "container.memory.usage", "By", &[]);
    assert_within(
        "container.memory.usage holding 32 MiB",
        mem,
        32.0 * MIB,
        32.0 * MIB + 16.0 * MIB,
    );
    let pids = value(e, "container.pid.count", "{task}", &[]);
    assert!(pids >= 1.0, "container.pid.count: {pids}");
    assert_eq!(value(e, "container.memory.limit", "By", &[]), 256.0 * MIB);
    assert_eq!(value(e, "container.pid.limit", "{task}", &[]), 100.0);
    assert_within(
        "container.cpu.limit for --cpus 1.5",
        value(e, "container.cpu.limit", "{cpu}", &[]),
        1.499,
        1.501,
    );

    let e = find(&snap, &unlimited);
    let mem = value(e, "container.memory.usage", "By", &[]);
    assert!(
        mem > 0.0,
        "container.memory.usage of a sleeping container: {mem}"
    );
    let pids = value(e, "container.pid.count", "{task}", &[]);
    assert!(pids >= 1.0, "container.pid.count: {pids}");
    // Unlimited values are omitted, never exported as a number (METRICS.md).
    for name in [
        "container.memory.limit",
        "container.pid.limit",
        "container.cpu.limit",
    ] {
        assert!(
            points(e, name, &[]).is_empty(),
            "{name} exported for a container without that limit"
        );
    }
}

#[test]
fn busybox_time_parser() {
    let log =
        "Command terminated by signal 15\nreal\t0m 2.00s\nuser\t0m 1.94s\nsys\t0m 0.02s\nDONE\n";
    assert!((busybox_time_user_sys(log) - 1.96).abs() < 1e-9);
    assert!((busybox_time_user_sys("user\t1m 1.50s\nsys\t0m 0.50s\n") - 62.0).abs() < 1e-9);
}
