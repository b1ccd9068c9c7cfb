//! The floor of the side-by-side benchmark (`benches/side-by-side.sh`): a plain loop that
//! `pread`s, once per interval, the very files a running daemon holds open, while that daemon
//! runs in the same window, and the on-CPU time of both.
//!
//! The file set is taken from `/proc/<daemon>/fd` (every regular file under the cgroup root,
//! and every `/proc/<pid>/net/dev`), reopened through those links, so nothing here re-spells
//! the exporter's file plan. Only `cgroup.procs` is left out of it by default (`--skip`): the
//! daemon reads it only to find a process for `net/dev`, not every tick. Skipped files are
//! still read, in a pass of their own that is not counted in this floor, to price the reads
//! the daemon makes of them for the floor below.
//!
//! A second, stricter floor prices exactly the reads the daemon made in the same round: its
//! own count of reads per file (`container_exporter_cgroup_reads_total{file}` on its page,
//! counted where the reads are made), each at what a `pread` of that kind of file cost this
//! loop in the same round (its thread's CPU time over the files of that name, divided by their
//! reads). The open-files floor reads every file every tick; the daemon skips the files that
//! cannot have changed, so the reads floor is below it, and the closer comparison.
//!
//! CPU is the sum over all threads of `/proc/<pid>/task/*/schedstat` (on-CPU nanoseconds),
//! for the daemon and for this loop alike (less the skipped files' pass), sampled at the start
//! and the end of each round. Checked once against `strace -c -f -e pread64` of the daemon:
//! see docs/performance.md.
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

/// The daemon's page (one plain HTTP/1.0 GET), or `None`.
fn page(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// One of the daemon's own counters from its page, or `None`.
fn page_value(addr: &str, name: &str) -> Option<f64> {
    page(addr)?
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The files the daemon holds open that a tick reads: regular files under the cgroup root
/// and `net/dev` of container processes, minus the skipped names, which come apart (they are
/// read only to price the daemon's reads of them). Reopened through `/proc/<pid>/fd/<n>`, so
/// each is exactly the daemon's file (same cgroup, same namespace).
type Files = Vec<(String, File)>;

fn daemon_files(a: &Args) -> (Files, BTreeMap<String, usize>, Files) {
    let mut files = Vec::new();
    let mut by_name = BTreeMap::new();
    let mut skipped = Vec::new();
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
        let skip = a.skip.contains(&name);
        let name = if is_net_dev {
            "net/dev".to_string()
        } else if name == "cgroup.procs" {
            // Counted whichever hierarchy's it is.
            name
        } else {
            counted_name(&a.cgroup_root, &target, &name)
        };
        let Ok(f) = File::open(e.path()) else {
            continue;
        };
        if !f.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        if skip {
            skipped.push((name, f));
            continue;
        }
        *by_name.entry(name.clone()).or_insert(0) += 1;
        files.push((name, f));
    }
    files.sort_by(|x, y| x.0.cmp(&y.0));
    skipped.sort_by(|x, y| x.0.cmp(&y.0));
    (files, by_name, skipped)
}

/// `files` (sorted by name) as runs of one name.
fn groups_of(files: &[(String, File)]) -> Vec<(String, std::ops::Range<usize>)> {
    let mut out: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    for (i, (name, _)) in files.iter().enumerate() {
        match out.last_mut() {
            Some((n, r)) if n == name => r.end = i + 1,
            _ => out.push((name.clone(), i..i + 1)),
        }
    }
    out
}

/// A file's name as the daemon counts its reads: `<hierarchy>/<file>` on cgroup v1 and
/// hybrid hosts (a controller's directory, of which a joint mount like `cpu,cpuacct` gives
/// the controller the file is named after), `<file>` on cgroup v2.
fn counted_name(root: &std::path::Path, target: &std::path::Path, name: &str) -> String {
    let first = target
        .strip_prefix(root)
        .ok()
        .and_then(|rel| rel.components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    let v1_dir = |d: &str| {
        [
            "unified", "cpu", "cpuacct", "memory", "blkio", "pids", "cpuset", "devices",
        ]
        .contains(&d)
    };
    let hier = first.split(',').find(|c| {
        v1_dir(c) && (first.split(',').count() == 1 || name.starts_with(&format!("{c}.")))
    });
    match hier {
        Some(h) => format!("{h}/{name}"),
        None => name.to_string(),
    }
}

/// The daemon's reads per file, from its page (`container_exporter_cgroup_reads_total`).
fn daemon_reads(addr: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Some(body) = page(addr) else {
        return out;
    };
    for l in body.lines() {
        let Some(rest) = l.strip_prefix("container_exporter_cgroup_reads_total{file=\"") else {
            continue;
        };
        if let Some((file, v)) = rest.split_once("\"} ")
            && let Ok(v) = v.trim().parse()
        {
            out.insert(file.to_string(), v);
        }
    }
    out
}

/// This thread's on-CPU time.
fn thread_cpu_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

struct Round {
    daemon_ns: u64,
    floor_ns: u64,
    daemon_ticks: f64,
    floor_ticks: u64,
    wall: Duration,
    threads: BTreeMap<String, u64>,
    /// The reads floor's nanoseconds over the round, if the daemon's page counts reads.
    reads_floor_ns: Option<f64>,
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
    let (files, by_name, priced_only) = daemon_files(&a);
    let skipped = priced_only.len();
    // Each name's reads timed apart, for the reads floor; the skipped files are read too, in
    // their own timed pass whose time is not the open-files floor's.
    let groups = groups_of(&files);
    let extra = groups_of(&priced_only);
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
        let reads0 = a.page.as_deref().map(daemon_reads);
        let d0 = cpu_by_thread(&pid);
        let f0 = total(&cpu_by_thread(&me));
        let start = Instant::now();
        let mut n = 0u64;
        let mut next = start;
        let mut group_ns = vec![0u64; groups.len() + extra.len()];
        let mut extra_ns = 0;
        while start.elapsed() < Duration::from_secs(a.seconds) {
            let mut bytes = 0usize;
            let all =
                (groups.iter().map(|g| (g, &files))).chain(extra.iter().map(|g| (g, &priced_only)));
            for (g, ((_, range), set)) in all.enumerate() {
                let t = thread_cpu_ns();
                for (_, f) in &set[range.clone()] {
                    bytes += f.read_at(&mut buf, 0).unwrap_or(0);
                }
                let ns = thread_cpu_ns().saturating_sub(t);
                group_ns[g] += ns;
                if g >= groups.len() {
                    extra_ns += ns;
                }
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
        let reads1 = a.page.as_deref().map(daemon_reads);
        let reads_floor_ns = match (reads0, reads1) {
            (Some(r0), Some(r1)) if !r1.is_empty() => {
                let mut unpriced = Vec::new();
                let mut ns = 0.0;
                for (file, v1) in &r1 {
                    let made = v1 - r0.get(file).copied().unwrap_or(0.0);
                    let all = groups.iter().chain(&extra);
                    match all.clone().position(|(name, _)| name == file) {
                        Some(g) if made > 0.0 => {
                            let len = all.clone().nth(g).map_or(1, |(_, r)| r.len());
                            let one = group_ns[g] as f64 / (len as f64 * n as f64);
                            ns += made * one;
                        }
                        _ if made > 0.0 => unpriced.push(format!("{file} {made}")),
                        _ => {}
                    }
                }
                if !unpriced.is_empty() {
                    println!(
                        "  reads of files not held open, left out of the reads floor: {}",
                        unpriced.join(", ")
                    );
                }
                Some(ns)
            }
            _ => None,
        };
        let threads = d1
            .iter()
            .map(|(k, v)| (k.clone(), v.saturating_sub(d0.get(k).copied().unwrap_or(0))))
            .collect();
        let round = Round {
            daemon_ns: total(&d1).saturating_sub(total(&d0)),
            floor_ns: (f1 - f0).saturating_sub(extra_ns),
            daemon_ticks,
            floor_ticks: n,
            wall,
            threads,
            reads_floor_ns,
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
    let strict: Vec<(f64, f64)> = rounds
        .iter()
        .filter_map(|r| {
            let floor = r.reads_floor_ns? / r.daemon_ticks / 1e6;
            Some((floor, per_tick(r.daemon_ns, r.daemon_ticks) / floor))
        })
        .collect();
    if !strict.is_empty() {
        let rf = median(strict.iter().map(|s| s.0).collect());
        let rr = median(strict.iter().map(|s| s.1).collect());
        let each: Vec<String> = strict.iter().map(|s| format!("{:.2}", s.1)).collect();
        println!(
            "median: floor of the daemon's own reads {rf:.3} ms per tick ({:.1} µs per \
             container), ratio {rr:.2} (rounds: {})",
            rf * 1e3 / c,
            each.join(" ")
        );
    }
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
    let strict = r.reads_floor_ns.map_or(String::new(), |ns| {
        let rf = ns / r.daemon_ticks / 1e6;
        format!(
            "; floor of its own reads {rf:.3} ms/tick {:.1} µs/container, ratio {:.2}",
            rf * 1e3 / c,
            d / rf
        )
    });
    println!(
        "round {n}: {:.1} s; daemon {d:.3} ms/tick {:.1} µs/container ({:.0} ticks; ms/tick by \
         thread: {}); floor {f:.3} ms/tick {:.1} µs/container ({} ticks); ratio {:.2}; daemon \
         {:.3} % of a core{strict}",
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
