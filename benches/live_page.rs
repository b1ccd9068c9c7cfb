//! The live view's page in headless Chromium at 1,000 containers (issue #25): the browser's
//! script time for the first load and for each update (DevTools `Performance.getMetrics`
//! `ScriptDuration`, and the page's own `live-update` measure, which includes the fetches),
//! the bytes of an update as the browser received them (Resource Timing: on the wire, gzip,
//! and decoded), and the exporter's own CPU per tick with the page open and with nobody
//! watching (its `/proc/<pid>/stat`).
//!
//! The containers are `benches/fake-containers.sh`'s (cgroups with a sleeping process each, no
//! runtime to name them), the history 90 ticks as at the default 15 min and 10 s, at a 2 s
//! interval so that it fills in 3 minutes. An update is one round of the page's requests (one
//! after each tick, unless the last one is still under way). Needs root, `.ci/chromium-up.sh`, and a release build
//! (`cargo bench --bench live_page`). It prints the figures; it asserts nothing about time.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::TempDir;
use common::browser::Browser;
use common::exporter::Exporter;
use serde_json::{Value, json};

const CONTAINERS: usize = 1000;
const TICKS: u64 = 90;
const UPDATES: u64 = 10;

/// The fake containers, removed when dropped.
struct Fakes(TempDir);

impl Fakes {
    fn create(n: usize) -> Fakes {
        let dir = TempDir::new();
        let state = dir.0.join("fake");
        let ok = Command::new("benches/fake-containers.sh")
            .args(["create", &n.to_string(), state.to_str().unwrap()])
            .env("ID_PREFIX", "ce5ca1e5")
            .env("LIFETIME", "900")
            .status()
            .expect("run benches/fake-containers.sh");
        let fakes = Fakes(dir);
        assert!(ok.success(), "benches/fake-containers.sh create failed");
        fakes
    }
}

impl Drop for Fakes {
    fn drop(&mut self) {
        let state = self.0.0.join("fake");
        if Path::new(&state).exists() {
            let _ = Command::new("benches/fake-containers.sh")
                .args(["remove", state.to_str().unwrap()])
                .status();
        }
    }
}

/// The exporter's CPU time so far, in seconds (utime + stime).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn overview(e: &Exporter) -> Value {
    let r = e.get("/api/v1/overview?limit=1", &[]);
    serde_json::from_slice(&r.body).unwrap()
}

/// Waits for the exporter's tick `seq` (its API's `seq`).
fn wait_seq(e: &Exporter, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while overview(e)["seq"].as_u64().unwrap() < seq {
        assert!(
            Instant::now() < deadline,
            "no tick {seq}:\n{}",
            e.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn metric(b: &Browser, name: &str) -> f64 {
    let m = b.cdp("Performance.getMetrics", json!({}));
    m["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .and_then(|x| x["value"].as_f64())
        .unwrap_or_else(|| panic!("no {name} in {m}"))
}

fn page_seq(b: &Browser) -> u64 {
    b.eval("return Number(document.body.dataset.seq || 0)", json!([]))
        .as_u64()
        .unwrap()
}

fn main() {
    // `cargo bench` passes `--bench`; this runs whatever the arguments.
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "needs root (fake cgroups)"
    );
    let fakes = Fakes::create(CONTAINERS);
    let mut e = Exporter::start_with_env(
        &[
            "--interval",
            "2s",
            "--live-history",
            "180s",
            "--docker-host",
            "off",
            "--podman-host",
            "off",
            "--cri-endpoint",
            "off",
        ],
        &[],
    );
    let pid = e.pid();
    let total = overview(&e)["total"].as_u64().unwrap();
    eprintln!("tracked: {total} (the fake containers and whatever else runs here)");
    wait_seq(&e, TICKS + 2);
    let total = overview(&e)["total"].as_u64().unwrap();
    assert!(total >= CONTAINERS as u64, "only {total} rows");

    // Nobody watching: the exporter's CPU per tick.
    let seq0 = overview(&e)["seq"].as_u64().unwrap();
    let cpu0 = cpu_seconds(pid);
    wait_seq(&e, seq0 + 20);
    let seq1 = overview(&e)["seq"].as_u64().unwrap();
    let idle = (cpu_seconds(pid) - cpu0) / (seq1 - seq0) as f64;

    // The page opens: the first load (every row's whole history).
    let b = Browser::start(1600, 1000);
    b.cdp("Performance.enable", json!({}));
    let script0 = metric(&b, "ScriptDuration");
    b.goto(&format!("http://127.0.0.1:{}/", e.port));
    b.wait_for(
        "every row in the table",
        Duration::from_secs(120),
        "return document.body.dataset.ready === '1' && \
         Number(document.querySelector('.table-box').dataset.rows) >= arguments[0]",
        json!([CONTAINERS]),
    );
    let first_script = metric(&b, "ScriptDuration") - script0;
    let first_update = b.eval(
        "return performance.getEntriesByName('live-update')[0].duration",
        json!([]),
    );

    // Updates with the page open.
    b.eval(
        "performance.clearResourceTimings(); performance.clearMeasures('live-update'); return 1",
        json!([]),
    );
    let script1 = metric(&b, "ScriptDuration");
    let task1 = metric(&b, "TaskDuration");
    let cpu1 = cpu_seconds(pid);
    let s1 = page_seq(&b);
    b.wait_for(
        "the page's updates",
        Duration::from_secs(120),
        "return Number(document.body.dataset.seq) >= arguments[0]",
        json!([s1 + UPDATES]),
    );
    let s2 = page_seq(&b);
    let ticks = (s2 - s1) as f64;
    let watched = (cpu_seconds(pid) - cpu1) / ticks;
    let script_all = metric(&b, "ScriptDuration") - script1;
    let task_all = metric(&b, "TaskDuration") - task1;
    let timings = b.eval(
        "const u = performance.getEntriesByName('live-update').map(m => m.duration).sort((a, b) => a - b);\
         const r = performance.getEntriesByType('resource').filter(x => x.name.includes('/api/v1/overview'));\
         return { updates: u, requests: r.length,\
                  wire: r.reduce((s, x) => s + x.transferSize, 0),\
                  encoded: r.reduce((s, x) => s + x.encodedBodySize, 0),\
                  decoded: r.reduce((s, x) => s + x.decodedBodySize, 0) };",
        json!([]),
    );
    let updates: Vec<f64> = timings["updates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let n = updates.len().max(1) as f64;
    let per = |k: &str| timings[k].as_f64().unwrap() / n;
    let script = script_all / n;
    let task = task_all / n;
    let median = updates.get(updates.len() / 2).copied().unwrap_or(f64::NAN);

    println!("live view at {total} containers, {TICKS} ticks of history:");
    println!(
        "  exporter CPU per tick: {:.1} ms with nobody watching, {:.1} ms with the page open \
         ({ticks} ticks, {n} updates)",
        idle * 1e3,
        watched * 1e3
    );
    println!(
        "  first load: script {:.0} ms, the update (fetches included) {:.0} ms",
        first_script * 1e3,
        first_update.as_f64().unwrap_or(f64::NAN)
    );
    println!(
        "  per update: script {:.1} ms, main-thread tasks {:.1} ms, `live-update` median {median:.1} ms; \
         {:.1} requests, {:.0} B decoded, {:.0} B gzip body, {:.0} B on the wire",
        script * 1e3,
        task * 1e3,
        timings["requests"].as_f64().unwrap() / n,
        per("decoded"),
        per("encoded"),
        per("wire"),
    );
    drop(b);
    e.stop();
    drop(fakes);
}
