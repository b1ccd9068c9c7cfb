//! The live view's costs at 1,000 containers (issue #25), with the default history (15 min at
//! 10 s: 90 ticks): a tick's append with nobody watching; the overview a page asks for, all
//! kept history at first and one tick after (`since`), and its bytes, plain and gzip; the
//! store's size as it counts its heap (the rings, the rows, the clock).
//!
//! `cargo bench --bench live` (no root needed). The containers' values move every tick
//! (a random walk), so the payload compresses as a real one does, not as constants would.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use container_exporter::cgroup::sample::{
    CgroupSample, CpuSample, IfName, IoDevice, MemorySample, NetIface, PidsSample, Psi,
};
use container_exporter::collect::{ContainerState, Described};
use container_exporter::discovery::{Found, Kind, Runtime};
use container_exporter::live::api::{self, Setting};
use container_exporter::live::store::Store;
use container_exporter::metadata::ContainerMeta;
use divan::Bencher;

const CONTAINERS: usize = 1000;
const TICKS: usize = 90;
const INTERVAL: Duration = Duration::from_secs(10);

fn main() {
    divan::main();
}

/// A container's counters and levels, moved one tick on.
#[derive(Clone, Copy)]
struct Walk {
    seed: u64,
    cpu_ns: u64,
    mem: u64,
    rx: u64,
    tx: u64,
    read: u64,
    write: u64,
    psi: u64,
}

impl Walk {
    fn rand(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    fn step(&mut self) {
        self.cpu_ns += self.rand() % 4_000_000_000;
        self.mem = (self.mem + self.rand() % 4_000_000)
            .saturating_sub(2_000_000)
            .max(1 << 20);
        self.rx += self.rand() % 1_000_000;
        self.tx += self.rand() % 300_000;
        self.read += (self.rand() % 8 == 0) as u64 * (self.rand() % 50_000_000);
        self.write += self.rand() % 2_000_000;
        self.psi += self.rand() % 50_000;
    }

    fn sample(&self) -> CgroupSample {
        CgroupSample {
            cpu: CpuSample {
                usage_ns: Some(self.cpu_ns),
                user_ns: Some(self.cpu_ns / 3 * 2),
                system_ns: Some(self.cpu_ns / 3),
                quota_us: Some(200_000),
                period_us: Some(100_000),
                ..CpuSample::default()
            },
            memory: MemorySample {
                usage: Some(self.mem + (64 << 20)),
                inactive_file: Some(64 << 20),
                limit: Some(1 << 30),
                ..MemorySample::default()
            },
            pids: PidsSample {
                current: Some(5 + self.seed % 40),
                limit: Some(4096),
            },
            io: vec![IoDevice {
                major: 8,
                minor: 0,
                read_bytes: Some(self.read),
                write_bytes: Some(self.write),
                read_ops: Some(self.read / 4096),
                write_ops: Some(self.write / 4096),
            }],
            cpu_pressure: Some(Psi {
                some_us: Some(self.psi),
                full_us: Some(self.psi / 2),
            }),
            memory_pressure: Some(Psi {
                some_us: Some(self.psi / 10),
                full_us: Some(0),
            }),
            net: vec![NetIface {
                name: IfName::new(b"eth0"),
                rx_bytes: self.rx,
                rx_packets: self.rx / 800,
                rx_errors: 0,
                rx_dropped: 0,
                tx_bytes: self.tx,
                tx_packets: self.tx / 800,
                tx_errors: 0,
                tx_dropped: 0,
            }],
            populated: Some(true),
            ..CgroupSample::default()
        }
    }
}

struct Host {
    walks: Vec<Walk>,
    metas: Vec<Arc<ContainerMeta>>,
    ids: Vec<String>,
    now: SystemTime,
}

impl Host {
    fn new() -> Host {
        let ids: Vec<String> = (0..CONTAINERS)
            .map(|i| format!("{:064x}", i * 7919 + 1))
            .collect();
        Host {
            walks: (0..CONTAINERS as u64)
                .map(|i| Walk {
                    seed: i * 2654435761 + 1,
                    cpu_ns: 0,
                    mem: 50 << 20,
                    rx: 0,
                    tx: 0,
                    read: 0,
                    write: 0,
                    psi: 0,
                })
                .collect(),
            metas: (0..CONTAINERS)
                .map(|i| {
                    Arc::new(ContainerMeta {
                        name: Some(format!("service-{i}")),
                        image_name: Some("registry.example.com/team/service".into()),
                        image_tags: vec!["1.2.3".into()],
                        ..ContainerMeta::default()
                    })
                })
                .collect(),
            ids,
            now: SystemTime::now() - INTERVAL * TICKS as u32,
        }
    }

    /// The containers' states of the next tick (current and previous samples).
    fn tick(&mut self) -> Vec<ContainerState> {
        self.now += INTERVAL;
        (0..CONTAINERS)
            .map(|i| {
                let before = self.walks[i].sample();
                self.walks[i].step();
                ContainerState::with_samples(
                    Found {
                        id: self.ids[i].clone(),
                        kind: Kind::Container,
                        runtime: Runtime::Docker,
                        pod_uid: None,
                        rel: format!("docker/{}", self.ids[i]).into(),
                    },
                    SystemTime::now() - Duration::from_secs(3600),
                    before,
                    self.walks[i].sample(),
                    INTERVAL,
                )
            })
            .collect()
    }

    /// Feeds one tick into `store`.
    fn feed(&self, store: &mut Store, states: &[ContainerState]) {
        let described: Vec<Described<'_>> = states
            .iter()
            .zip(&self.metas)
            .map(|(state, meta)| Described {
                state,
                meta: Some(meta.clone()),
                pod: None,
            })
            .collect();
        let running: HashSet<&str> = self.ids.iter().map(String::as_str).collect();
        store.observe(true, self.now, &described, &running, &Default::default());
    }
}

fn setting() -> Setting {
    Setting {
        interval: INTERVAL,
        history: INTERVAL * TICKS as u32,
        epoch_ms: 0,
    }
}

/// A store with the whole default history at 1,000 containers.
fn full() -> (Host, Store) {
    let mut host = Host::new();
    let mut store = Store::new(TICKS, 100);
    for _ in 0..TICKS + 1 {
        let states = host.tick();
        host.feed(&mut store, &states);
    }
    (host, store)
}

fn gzip(b: &[u8]) -> usize {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(b).unwrap();
    enc.finish().unwrap().len()
}

/// The store's size, and what one tick's overview weighs (printed once).
#[divan::bench(sample_count = 1, sample_size = 1)]
fn sizes() {
    let (_, store) = full();
    let heap = store.heap_bytes();
    eprintln!(
        "store at {CONTAINERS} containers × {TICKS} ticks: {heap} bytes counted \
         ({:.2} MiB, {:.0} per container, {} per tick of one container)",
        heap as f64 / 1048576.0,
        heap as f64 / CONTAINERS as f64,
        4 * 10,
    );
    let s = setting();
    let seq = store.clock.seq();
    let max = api::max_rows(TICKS);
    let mut full_plain = 0;
    let mut full_gzip = 0;
    for offset in (0..CONTAINERS).step_by(max) {
        let q = format!("offset={offset}");
        let b = api::overview(&store, &s, Some(&q)).unwrap();
        full_plain += b.len();
        full_gzip += gzip(&b);
    }
    let mut upd_plain = 0;
    let mut upd_gzip = 0;
    for offset in (0..CONTAINERS).step_by(max) {
        let q = format!("offset={offset}&since={}", seq - 1);
        let b = api::overview(&store, &s, Some(&q)).unwrap();
        upd_plain += b.len();
        upd_gzip += gzip(&b);
    }
    eprintln!(
        "overview of {CONTAINERS} containers in {} requests of {max} rows: all history \
         {full_plain} bytes plain, {full_gzip} gzip; one tick (since) {upd_plain} plain, \
         {upd_gzip} gzip",
        CONTAINERS.div_ceil(max)
    );
}

/// A tick's append at 1,000 containers with nobody watching (the daemon's cost per tick).
#[divan::bench]
fn tick_append_1000(bencher: Bencher) {
    let (host, mut store) = full();
    let host = std::cell::RefCell::new(host);
    bencher
        .with_inputs(|| host.borrow_mut().tick())
        .bench_local_refs(|states| host.borrow().feed(&mut store, states));
}

/// The first overview a page asks for: every kept tick of every container (all pages).
#[divan::bench]
fn overview_all_history_1000(bencher: Bencher) {
    let (_, store) = full();
    let s = setting();
    let max = api::max_rows(TICKS);
    bencher.bench_local(|| {
        let mut n = 0;
        for offset in (0..CONTAINERS).step_by(max) {
            let q = format!("offset={offset}");
            n += api::overview(&store, &s, Some(&q)).unwrap().len();
        }
        n
    });
}

/// An update: the overview of one tick (`since`), every container (all pages).
#[divan::bench]
fn overview_one_tick_1000(bencher: Bencher) {
    let (_, store) = full();
    let s = setting();
    let since = store.clock.seq() - 1;
    let max = api::max_rows(TICKS);
    bencher.bench_local(|| {
        let mut n = 0;
        for offset in (0..CONTAINERS).step_by(max) {
            let q = format!("offset={offset}&since={since}");
            n += api::overview(&store, &s, Some(&q)).unwrap().len();
        }
        n
    });
}

/// The same update, gzip-compressed as the server sends it to a browser.
#[divan::bench]
fn overview_one_tick_1000_gzip(bencher: Bencher) {
    let (_, store) = full();
    let s = setting();
    let since = store.clock.seq() - 1;
    let max = api::max_rows(TICKS);
    bencher.bench_local(|| {
        let mut n = 0;
        for offset in (0..CONTAINERS).step_by(max) {
            let q = format!("offset={offset}&since={since}");
            n += gzip(&api::overview(&store, &s, Some(&q)).unwrap());
        }
        n
    });
}
