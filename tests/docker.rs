//! Integration tests against a real Docker daemon and the real binary.
//!
//! Each test starts busybox containers (image `ce-busybox:test`, built by `.ci/docker-up.sh`) with
//! `--network none`, lets a workload finish, runs `container-exporter snapshot --format json` and
//! compares the figures with what the workload itself did. Containers are removed by a Drop guard.
//!
//! These tests need root and a running dockerd: run `.ci/docker-up.sh` first. Without Docker
//! they fail (they do not skip), so a CI host that lost its daemon cannot pass silently.

mod common;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{Container, TempDir, disk_of, docker};

const MIB: f64 = 1024.0 * 1024.0;
/// How long a workload may take to reach its DONE marker.
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------------

/// Waits until the container's log has a line equal to `DONE`; fails on `FAIL` or timeout.
fn wait_done(c: &Container) -> String {
    let start = Instant::now();
    loop {
        let logs = c.logs();
        if logs.lines().any(|l| l.trim() == "DONE") {
            return logs;
        }
        if logs.lines().any(|l| l.trim() == "FAIL") {
            panic!("workload in {} failed; its log:\n{logs}", c.name);
        }
        let state = docker(&["inspect", "-f", "{{.State.Running}}", &c.name]);
        if String::from_utf8_lossy(&state.stdout).trim() == "false" {
            panic!("container {} exited before DONE; its log:\n{logs}", c.name);
        }
        if start.elapsed() > WORKLOAD_TIMEOUT {
            panic!(
                "workload in {} not done after {WORKLOAD_TIMEOUT:?}; its log:\n{logs}",
                c.name
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
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
    // A fixed amount of work (a million 1 KiB reads and writes), not a fixed time: what CPU
    // `timeout 2 yes` gets depends on the machine's load (0.47 s once in CI).
    let c = Container::sh(
        &[],
        "time sh -c 'dd if=/dev/zero of=/dev/null bs=1k count=1000000 2>/dev/null'; \
         echo DONE; sleep 600",
    );
    let log = wait_done(&c);
    let truth = busybox_time_user_sys(&log);
    assert!(
        truth > 0.2,
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
    let c = Container::sh(
        &["-v", &vol, "--device-write-bps", &bps],
        "dd if=/dev/zero of=/data/f bs=1M count=32 oflag=direct || { echo FAIL; exit 1; }; \
         echo DONE; sleep 600",
    );
    wait_done(&c);
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
    // dd made 32 writes of 1 MiB (O_DIRECT): each is one operation at least (the block
    // layer may split one, never merge two), and none is smaller than a 4 KiB page.
    let ops = value(e, "container.disk.operations", "{operation}", &dev);
    assert_within(
        &format!("container.disk.operations write on {majmin} ({node}) for dd's 32 writes"),
        ops,
        32.0,
        (32 << 20) as f64 / 4096.0,
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
    let c = Container::sh(
        &[],
        "mkdir -p /tmp/www && dd if=/dev/zero of=/tmp/www/f bs=1M count=16 2>/dev/null \
           && httpd -p 8080 -h /tmp/www || { echo FAIL; exit 1; }; \
         n=0; until wget -q -O /dev/null http://127.0.0.1:8080/f; do \
           n=$((n+1)); [ $n -ge 20 ] && { echo FAIL; exit 1; }; sleep 1; done; \
         echo DONE; sleep 600",
    );
    wait_done(&c);

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
    let limited = Container::sh(
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
        "dd if=/dev/zero of=/m/f bs=1M count=32 2>/dev/null || { echo FAIL; exit 1; }; \
         echo DONE; exec sleep 600",
    );
    // Three processes: two sleeps in the background, and the shell that becomes the third.
    let unlimited = Container::sh(&[], "sleep 600 & sleep 600 & echo DONE; exec sleep 600");
    wait_done(&limited);
    wait_done(&unlimited);

    let snap = snapshot();

    let e = find(&snap, &limited);
    let mem = value(e, "container.memory.usage", "By", &[]);
    assert_within(
        "container.memory.usage holding 32 MiB",
        mem,
        32.0 * MIB,
        32.0 * MIB + 16.0 * MIB,
    );
    // One process: the shell, which became `sleep`.
    let pids = value(e, "container.pid.count", "{task}", &[]);
    assert_eq!(
        pids, 1.0,
        "container.pid.count of a container running one process"
    );
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
    assert_eq!(
        pids, 3.0,
        "container.pid.count of a container running three processes"
    );
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
