//! The floor of the side-by-side benchmark (`benches/side-by-side.sh`): a plain loop that
//! `pread`s, once per interval, the very files a running daemon holds open, while that daemon
//! runs in the same window, and the on-CPU time of both.
//!
//! The file set is taken from `/proc/<daemon>/fd` (every regular file under the cgroup root,
//! and every `/proc/<pid>/net/dev`), reopened through those links, so nothing here re-spells
//! the exporter's file plan. Only `cgroup.procs` is left out by default (`--skip`): the daemon
//! reads it only to find a process for `net/dev`, never per tick.
//!
//! CPU is the sum over all threads of `/proc/<pid>/task/*/schedstat` (on-CPU nanoseconds),
//! for the daemon and for this loop alike, sampled at the start and the end of each round.
//! The loop does one `pread` per file at offset 0 into a 64 KiB buffer, as the daemon's reads
//! do for every file that fits, and nothing else: no parsing, no output.
//!
//! `cargo bench --bench floor -- --pid PID [--interval 1s] [--seconds 40] [--rounds 3]
//!  [--page 127.0.0.1:9464] [--containers N] [--cgroup-root /sys/fs/cgroup]
//!  [--skip cgroup.procs]`

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Args {
    pid: u32,
    interval: Duration,
    seconds: u64,
    rounds: usize,
    page: Option<String>,
    containers: Option<u64>,
    cgroup_root: PathBuf,
    skip: Vec<String>,
}

fn duration(s: &str) -> Duration {
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = n.parse().expect("a duration like 1s or 500ms");
    match unit {
        "ms" => Duration::from_secs_f64(n / 1000.0),
        "s" => Duration::from_secs_f64(n),
        "m" => Duration::from_secs_f64(n * 60.0),
        u => panic!("unknown unit {u}"),
    }
}

fn args() -> Args {
    let mut a = Args {
        pid: 0,
        interval: Duration::from_secs(1),
        seconds: 40,
        rounds: 3,
        page: None,
        containers: None,
        cgroup_root: PathBuf::from("/sys/fs/cgroup"),
        skip: vec!["cgroup.procs".into()],
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--pid" => a.pid = v().parse().expect("--pid"),
            "--interval" => a.interval = duration(&v()),
            "--seconds" => a.seconds = v().parse().expect("--seconds"),
            "--rounds" => a.rounds = v().parse().expect("--rounds"),
            "--page" => a.page = Some(v()),
            "--containers" => a.containers = Some(v().parse().expect("--containers")),
            "--cgroup-root" => a.cgroup_root = PathBuf::from(v()),
            "--skip" => {
                a.skip = v()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            // What cargo bench passes to every bench binary.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(a.pid > 0, "--pid PID of the running daemon is required");
    a
}

/// On-CPU nanoseconds of every live thread of `pid`, by thread id and name (names are cut
/// at 15 bytes, so the id tells the threads apart).
fn cpu_by_thread(pid: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let p = t.path();
        let ns = fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        let name = fs::read_to_string(p.join("comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let tid = t.file_name().to_string_lossy().into_owned();
        out.insert(format!("{tid}:{name}"), ns);
    }
    out
}

fn total(m: &BTreeMap<String, u64>) -> u64 {
    m.values().sum()
}

/// The daemon's own counters from its page (one plain HTTP/1.0 GET), or `None`.
fn page_value(addr: &str, name: &str) -> Option<f64> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The files the daemon holds open that a tick reads: regular files under the cgroup root
/// and `net/dev` of container processes, minus the skipped names. Reopened through
/// `/proc/<pid>/fd/<n>`, so each is exactly the daemon's file (same cgroup, same namespace).
fn daemon_files(a: &Args) -> (Vec<(String, File)>, BTreeMap<String, usize>, usize) {
    let mut files = Vec::new();
    let mut by_name = BTreeMap::new();
    let mut skipped = 0;
    let dir = format!("/proc/{}/fd", a.pid);
    for e in fs::read_dir(&dir)
        .expect("the daemon's /proc/PID/fd")
        .flatten()
    {
        let Ok(target) = fs::read_link(e.path()) else {
            continue;
        };
        // procfs never caches `net` dentries, so their links read "… (deleted)".
        let target = PathBuf::from(
            target
                .to_string_lossy()
                .trim_end_matches(" (deleted)")
                .to_string(),
        );
        let is_net_dev = target.starts_with("/proc") && target.ends_with("net/dev");
        if !target.starts_with(&a.cgroup_root) && !is_net_dev {
            continue;
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = if is_net_dev {
            "net/dev".to_string()
        } else {
            name
        };
        if a.skip.contains(&name) {
            skipped += 1;
            continue;
        }
        let Ok(f) = File::open(e.path()) else {
            continue;
        };
        if !f.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        *by_name.entry(name.clone()).or_insert(0) += 1;
        files.push((name, f));
    }
    (files, by_name, skipped)
}

struct Round {
    daemon_ns: u64,
    floor_ns: u64,
    daemon_ticks: f64,
    floor_ticks: u64,
    wall: Duration,
    threads: BTreeMap<String, u64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn main() {
    let a = args();
    let pid = a.pid.to_string();
    let (files, by_name, skipped) = daemon_files(&a);
    let containers = a
        .containers
        .or_else(|| {
            a.page
                .as_deref()
                .and_then(|p| page_value(p, "container_exporter_containers_tracked"))
                .map(|v| v as u64)
        })
        .expect("--containers N or --page ADDR");
    let names: Vec<String> = by_name.iter().map(|(n, c)| format!("{n} {c}")).collect();
    println!(
        "floor file set: {} files from /proc/{pid}/fd ({skipped} skipped: {}), {:.1} per container",
        files.len(),
        a.skip.join(","),
        files.len() as f64 / containers.max(1) as f64
    );
    println!("  {}", names.join(", "));
    println!(
        "containers {containers}, interval {:?}, {} rounds of {} s",
        a.interval, a.rounds, a.seconds
    );

    let mut buf = vec![0u8; 64 * 1024];
    let me = std::process::id().to_string();
    let mut rounds = Vec::new();
    for r in 0..a.rounds {
        let ticks0 = a
            .page
            .as_deref()
            .and_then(|p| page_value(p, "container_exporter_collections_total"));
        let d0 = cpu_by_thread(&pid);
        let f0 = total(&cpu_by_thread(&me));
        let start = Instant::now();
        let mut n = 0u64;
        let mut next = start;
        while start.elapsed() < Duration::from_secs(a.seconds) {
            let mut bytes = 0usize;
            for (_, f) in &files {
                bytes += f.read_at(&mut buf, 0).unwrap_or(0);
            }
            std::hint::black_box(bytes);
            n += 1;
            next += a.interval;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let f1 = total(&cpu_by_thread(&me));
        let d1 = cpu_by_thread(&pid);
        let wall = start.elapsed();
        let ticks1 = a
            .page
            .as_deref()
            .and_then(|p| page_value(p, "container_exporter_collections_total"));
        let daemon_ticks = match (ticks0, ticks1) {
            (Some(t0), Some(t1)) if t1 > t0 => t1 - t0,
            _ => wall.as_secs_f64() / a.interval.as_secs_f64(),
        };
        let threads = d1
            .iter()
            .map(|(k, v)| (k.clone(), v.saturating_sub(d0.get(k).copied().unwrap_or(0))))
            .collect();
        let round = Round {
            daemon_ns: total(&d1).saturating_sub(total(&d0)),
            floor_ns: f1 - f0,
            daemon_ticks,
            floor_ticks: n,
            wall,
            threads,
        };
        report(r + 1, &round, containers);
        rounds.push(round);
    }
    let per_tick = |ns: u64, ticks: f64| ns as f64 / ticks / 1e6;
    let d = median(
        rounds
            .iter()
            .map(|r| per_tick(r.daemon_ns, r.daemon_ticks))
            .collect(),
    );
    let f = median(
        rounds
            .iter()
            .map(|r| per_tick(r.floor_ns, r.floor_ticks as f64))
            .collect(),
    );
    let ratio = median(
        rounds
            .iter()
            .map(|r| {
                per_tick(r.daemon_ns, r.daemon_ticks) / per_tick(r.floor_ns, r.floor_ticks as f64)
            })
            .collect(),
    );
    let ratios: Vec<String> = rounds
        .iter()
        .map(|r| {
            format!(
                "{:.2}",
                per_tick(r.daemon_ns, r.daemon_ticks) / per_tick(r.floor_ns, r.floor_ticks as f64)
            )
        })
        .collect();
    let c = containers.max(1) as f64;
    per_file(&files, a.interval, &mut buf);
    println!(
        "median: daemon {d:.3} ms per tick ({:.1} µs per container), floor {f:.3} ms per tick \
         ({:.1} µs per container), ratio {ratio:.2} (rounds: {})",
        d * 1e3 / c,
        f * 1e3 / c,
        ratios.join(" ")
    );
}

/// What one read of each kind of file costs, at the same cadence (a separate pass after the
/// rounds, since timing each read adds to the loop's own cost).
fn per_file(files: &[(String, File)], interval: Duration, buf: &mut [u8]) {
    let mut cost: BTreeMap<&str, (Duration, u64, usize)> = BTreeMap::new();
    for _ in 0..5 {
        let start = Instant::now();
        for (name, f) in files {
            let t = Instant::now();
            let n = f.read_at(buf, 0).unwrap_or(0);
            let e = cost.entry(name.as_str()).or_default();
            e.0 += t.elapsed();
            e.1 += 1;
            e.2 = e.2.max(n);
        }
        if let Some(wait) = interval.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let mut rows: Vec<(&str, f64, usize)> = cost
        .into_iter()
        .map(|(name, (d, n, bytes))| (name, d.as_secs_f64() * 1e6 / n as f64, bytes))
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let rows: Vec<String> = rows
        .iter()
        .map(|(name, us, bytes)| format!("{name} {us:.2} µs ({bytes} B)"))
        .collect();
    println!(
        "one read of each file (mean over 5 passes): {}",
        rows.join(", ")
    );
}

fn report(n: usize, r: &Round, containers: u64) {
    let c = containers.max(1) as f64;
    let d = r.daemon_ns as f64 / r.daemon_ticks / 1e6;
    let f = r.floor_ns as f64 / r.floor_ticks as f64 / 1e6;
    let mut busy: Vec<(&String, &u64)> = r.threads.iter().filter(|(_, ns)| **ns > 0).collect();
    busy.sort_by(|a, b| b.1.cmp(a.1));
    let threads: Vec<String> = busy
        .into_iter()
        .map(|(name, ns)| format!("{name} {:.3}", *ns as f64 / r.daemon_ticks / 1e6))
        .collect();
    println!(
        "round {n}: {:.1} s; daemon {d:.3} ms/tick {:.1} µs/container ({:.0} ticks; ms/tick by \
         thread: {}); floor {f:.3} ms/tick {:.1} µs/container ({} ticks); ratio {:.2}; daemon \
         {:.3} % of a core",
        r.wall.as_secs_f64(),
        d * 1e3 / c,
        r.daemon_ticks,
        threads.join(", "),
        f * 1e3 / c,
        r.floor_ticks,
        d / f,
        100.0 * r.daemon_ns as f64 / r.wall.as_nanos() as f64,
    );
}
