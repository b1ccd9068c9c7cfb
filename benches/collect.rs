//! Per-container collection cost over real cgroups, against the floor measured in the same
//! run: a plain loop of `pread`s at offset 0 over the very same kept-open descriptors, with
//! no parsing. The ratio collect ÷ floor is the figure that matters on a noisy machine.
//!
//! It measures the first seconds of the containers, when their limits are read at every read
//! as the floor reads them (the daemon then reads them once a minute).
//!
//! Needs root (it creates cgroups): `cargo bench --bench collect` as root. It makes
//! `CE_BENCH_CONTAINERS` (default 50) container-shaped cgroups
//! (`ce-bench.slice/docker-<id>.scope`) in every mounted hierarchy, each holding one
//! sleeping process (so `net/dev` is read too), and removes them at exit.
//!
//! Parsers alone are measured on the real v1 and v2 fixture files as well.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, OnceLock};

use container_exporter::cgroup::plan::parse_files;
use container_exporter::cgroup::{CgroupSample, Layout, LayoutKind, ProcRoot, plan};
use container_exporter::collect::Collector;
use divan::{Bencher, counter::ItemsCount};

struct Fixture {
    collector: Mutex<Collector>,
    dirs: Vec<PathBuf>,
    children: Mutex<Vec<Child>>,
    count: usize,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn fixture() -> &'static Fixture {
    FIXTURE.get().expect("set up in main")
}

fn set_up() -> Fixture {
    let count: usize = std::env::var("CE_BENCH_CONTAINERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let layout =
        Layout::detect(Path::new("/sys/fs/cgroup"), Path::new("/proc")).expect("cgroup layout");
    let mut mounts: Vec<PathBuf> = [
        &layout.unified,
        &layout.cpu,
        &layout.cpuacct,
        &layout.memory,
        &layout.blkio,
        &layout.pids,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    mounts.sort();
    mounts.dedup();
    let mut dirs = Vec::new();
    let mut children = Vec::new();
    for i in 0..count {
        let id = format!("{:064x}", 0xbe_u128 << 64 | i as u128);
        let rel = format!("ce-bench.slice/docker-{id}.scope");
        let procs: Vec<String> = mounts
            .iter()
            .map(|m| {
                let d = m.join(&rel);
                fs::create_dir_all(&d).expect("create cgroup (run as root)");
                dirs.push(d.clone());
                d.join("cgroup.procs").to_string_lossy().into_owned()
            })
            .collect();
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"for f in "$@"; do echo $$ > "$f"; done; exec sleep 3600"#)
            .arg("sh")
            .args(procs)
            .spawn()
            .expect("spawn sleep");
        children.push(child);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let root = layout.discovery_root().to_path_buf();
    let mut collector = Collector::new(layout, ProcRoot::new(Path::new("/proc")));
    // Only the bench's own cgroups: on a shared host other containers come and go.
    let ours: Vec<_> = container_exporter::discovery::walk(&root)
        .into_iter()
        .filter(|f| f.rel.starts_with("ce-bench.slice"))
        .collect();
    collector.sync(ours);
    collector.collect();
    collector.collect();
    let ours = collector
        .containers()
        .filter(|c| c.rel.starts_with("ce-bench.slice"))
        .count();
    assert_eq!(ours, count, "every bench cgroup is tracked");
    Fixture {
        collector: Mutex::new(collector),
        dirs,
        children: Mutex::new(children),
        count,
    }
}

fn tear_down(f: &Fixture) {
    for c in f.children.lock().unwrap().iter_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    for d in f.dirs.iter().rev() {
        let _ = fs::remove_dir(d);
    }
    for d in &f.dirs {
        if let Some(p) = d.parent() {
            let _ = fs::remove_dir(p);
        }
    }
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("benches/collect: needs root to create cgroups (run cargo bench as root)");
        std::process::exit(1);
    }
    let f = FIXTURE.get_or_init(set_up);
    let total: usize = f
        .collector
        .lock()
        .unwrap()
        .readers()
        .map(|r| r.raw_files().count())
        .sum();
    eprintln!(
        "{} containers tracked, {} files per container on average",
        f.count,
        total as f64 / f.count as f64
    );
    divan::main();
    tear_down(f);
}

/// The floor: the same preads on the same descriptors, no parsing, no bookkeeping.
#[divan::bench]
fn floor_pread_loop(bencher: Bencher) {
    let f = fixture();
    let collector = f.collector.lock().unwrap();
    let files: Vec<&fs::File> = collector.readers().flat_map(|r| r.raw_files()).collect();
    let mut buf = vec![0u8; 64 * 1024];
    bencher.counter(ItemsCount::new(f.count)).bench_local(|| {
        let mut bytes = 0;
        for file in &files {
            bytes += file.read_at(&mut buf, 0).unwrap_or(0);
        }
        bytes
    });
}

/// One collection tick: read and parse every file of every tracked container.
#[divan::bench]
fn collect_tick(bencher: Bencher) {
    let f = fixture();
    let mut collector = f.collector.lock().unwrap();
    bencher
        .counter(ItemsCount::new(f.count))
        .bench_local(|| collector.collect());
}

fn fixture_exists(dir: &str, name: &str) -> bool {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(dir)
        .join(name)
        .is_file()
}

fn fixture_files(dir: &str, names: &[&str]) -> Vec<(String, Vec<u8>)> {
    names
        .iter()
        .map(|n| {
            let p = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata")
                .join(dir)
                .join(n);
            (
                Path::new(n)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                fs::read(p).unwrap(),
            )
        })
        .collect()
}

/// Parsing alone, on the real v2 files of one container: every file of the plan that the
/// capture has.
#[divan::bench]
fn parse_v2_container(bencher: Bencher) {
    let names: Vec<String> = plan::files(LayoutKind::V2)
        .map(|f| f.name.to_string())
        .filter(|n| fixture_exists("linux-6.1-cgroup-v2", n))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let files = fixture_files("linux-6.1-cgroup-v2", &names);
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    let mut sample = CgroupSample::default();
    bencher.bench_local(|| parse_files(false, &refs, &mut sample).len());
}

/// Parsing alone, on the real v1 files of one container: every v1 controller file of the
/// plan that the capture has (`<controller>/<file>`).
#[divan::bench]
fn parse_v1_container(bencher: Bencher) {
    let names: Vec<String> = plan::files(LayoutKind::V1)
        .filter(|f| f.hier != plan::Hier::Unified)
        .map(|f| format!("{}/{}", f.hier.dir(), f.name))
        .filter(|n| fixture_exists("linux-6.18-cgroup-v1", n))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let files = fixture_files("linux-6.18-cgroup-v1", &names);
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    let mut sample = CgroupSample::default();
    bencher.bench_local(|| parse_files(true, &refs, &mut sample).len());
}
