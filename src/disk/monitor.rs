//! The disk thread: which container or pod to walk when, within a CPU budget, and the shared
//! results the collector reads at each tick.
//!
//! **Cadence.** A container is walked when it is first seen, then again once
//! [`DiskConfig::interval`] (default 1 min) has passed *and* its CPU time moved since the
//! last walk began: a container that ran no instruction wrote nothing (its log lines, written
//! by the runtime, come from its own writes to stdout too). Every container is also walked at
//! least every [`DiskConfig::idle_interval`] (default 10 min), for what is written from outside
//! (`docker cp`, a host process, the kubelet compressing a rotated log). Block IO counters
//! cannot serve as the "it wrote" signal: cgroup v1 does not charge buffered writes to the
//! writer. A pod's `emptyDir` volumes and its log directory follow the pod's CPU time the
//! same way.
//!
//! **Faster where it is cheap.** A container (or pod) whose last walk counted at most
//! [`CHEAP_ENTRIES`] entries is walked again after a sixth of the interval (10 s by default,
//! never less than a second) when its CPU time moved, as long as the disk thread has spare:
//! its own CPU time over the last [`SPARE_WINDOW`] was at most a tenth of its budget (0.5 % of
//! a core by default). So on a host of a few dozen containers of small layers a working
//! container's figure is seconds old, and a host with many of them (or large ones) falls back
//! to the interval by itself, paying no more than that tenth for the faster cadence.
//!
//! **Budget.** Work is done in slices of at most [`SLICE_ENTRIES`] entries or [`SLICE_TIME`];
//! once a slice's worth of CPU time has been used (one big slice, or many small walks), the
//! thread sleeps so that its CPU time (`CLOCK_THREAD_CPUTIME_ID`, kernel time included) stays
//! within [`DiskConfig::cpu_budget`] of one CPU. A slice that ends mid-walk
//! leaves the walk paused, and the next slice goes to another job, round robin: a layer of
//! 200,000 files is walked a slice at a time while small containers (a whole walk in one
//! slice) keep their cadence. At most [`MAX_IN_PROGRESS`] walks are paused at once (each holds
//! descriptors, see [`walk`](super::walk)); a new walk that does not finish in its first slice
//! while that many are paused is dropped and waits until one finishes (marked large: it is not
//! started again before then). So a container whose walk fits in one slice waits at most one
//! slice per paused walk plus one per container due before it; the longest wait of a due job is
//! `container_exporter.disk.lag` on the page.
//!
//! **Bounds.** Tracked containers and pods are exactly the latest roster (the collector's
//! containers), results likewise; the queue holds each of them at most once; warnings are
//! remembered per container and per filesystem type, at most 4,096.
//!
//! Long because it is one state machine: the roster, the jobs, the slices and the results, with
//! the tests of its cadence.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::logs::{self, LogPlace};
use super::walk::{self, FsStat, Incomplete, Progress, Usage, Walk};
use super::{DiskConfig, DiskSample};
use crate::discovery::Kind;
use crate::host::block;
use crate::host::mountinfo::{self, RootMount};
use crate::metadata::{ContainerMeta, PodMeta};

/// Entries a slice looks at, at most.
pub const SLICE_ENTRIES: u64 = 4096;
/// Time a slice may take, at most (checked every few dozen entries).
pub const SLICE_TIME: Duration = Duration::from_millis(5);
/// A walk that counted at most this many entries (about a millisecond of work) makes its
/// container "cheap": walked again at [`DiskConfig::fast_interval`] while the thread has spare.
pub const CHEAP_ENTRIES: u64 = 512;
/// The window over which the thread's CPU time says whether it has spare for the faster
/// cadence.
pub const SPARE_WINDOW: Duration = Duration::from_secs(30);
/// Walks paused at once, at most.
pub const MAX_IN_PROGRESS: usize = 2;
/// Descriptors kept back for the disk thread from the collector's budget: the host root, and
/// the paused and current walks' open directories (one per level; real layers are a few dozen
/// levels deep at most). A pathological tree can take more, up to
/// `(MAX_IN_PROGRESS + 1) × (walk::MAX_DEPTH + 1)`; a walk that then meets `EMFILE` is not
/// published and is tried again later, and the collector, short of a descriptor, reads the
/// container it was opening by open-read-close: nothing is lost.
pub const FD_RESERVE: usize = 64;
/// How long a container whose process still has the host's root (a runtime's init that has
/// not entered the container yet) is looked at again before it is taken as having no layer.
const LOCATE_FOR: Duration = Duration::from_secs(60);
/// The first wait before such a container is looked at again, doubled each time (1, 2, 4, …
/// 32 s: six reads of a mountinfo in a minute, not sixty).
const LOCATE_RETRY: Duration = Duration::from_secs(1);
const WARNED_MAX: usize = 4096;

/// What the collector tells the disk thread about one container or pod, at each tick.
#[derive(Debug, Clone)]
pub struct RosterItem {
    /// Container id, or a pod's uid.
    pub id: String,
    pub kind: Kind,
    pub pod_uid: Option<String>,
    /// The cgroup's `cgroup.procs`: a process of the container, whose root mount names the
    /// layer.
    pub procs: PathBuf,
    /// CPU time used so far (ns); `None` when not known (then taken as moving).
    pub cpu_ns: Option<u64>,
    pub meta: Option<Arc<ContainerMeta>>,
    pub pod: Option<Arc<PodMeta>>,
}

/// The disk thread's counters, for the exporter's self-metrics.
#[derive(Debug, Default)]
pub struct DiskStats {
    /// Walks finished, by outcome.
    pub walks_complete: AtomicU64,
    pub walks_denied: AtomicU64,
    pub walks_too_deep: AtomicU64,
    pub walks_vanished: AtomicU64,
    /// Directory entries looked at (`fstatat` calls).
    pub entries: AtomicU64,
    /// The disk thread's CPU time (ns).
    pub cpu_ns: AtomicU64,
    /// Containers by what is known of their writable layer (gauges).
    pub layers_found: AtomicU64,
    pub layers_unsupported: AtomicU64,
    pub layers_unreachable: AtomicU64,
    pub layers_pending: AtomicU64,
    /// The longest a due job has waited, or is waiting (ns): the budget keeping up or not.
    pub lag_ns: AtomicU64,
}

struct Shared {
    roster: Mutex<Option<Vec<RosterItem>>>,
    wake: Condvar,
    results: RwLock<HashMap<String, Arc<DiskSample>>>,
    stop: AtomicBool,
}

/// The disk thread, from the collector's side: hand it the roster, read its results.
#[derive(Clone)]
pub struct Disk {
    shared: Arc<Shared>,
}

impl Disk {
    /// Starts the disk thread.
    pub fn start(cfg: DiskConfig, stats: Arc<DiskStats>) -> io::Result<Disk> {
        let shared = Arc::new(Shared {
            roster: Mutex::new(None),
            wake: Condvar::new(),
            results: RwLock::new(HashMap::new()),
            stop: AtomicBool::new(false),
        });
        let mut m = Monitor::new(cfg, stats, Output::Shared(shared.clone()));
        let s = shared.clone();
        std::thread::Builder::new()
            .name("container-exporter-disk".into())
            .spawn(move || m.run(&s))?;
        Ok(Disk { shared })
    }

    /// The containers and pods to measure from now on (the latest roster replaces the one
    /// before, never queues behind it).
    pub fn submit(&self, roster: Vec<RosterItem>) {
        *self.shared.roster.lock().unwrap_or_else(|e| e.into_inner()) = Some(roster);
        self.shared.wake.notify_one();
    }

    /// Looks up results under one read lock (the disk thread only ever holds the write lock
    /// for one insert or removal).
    pub fn with_results<R>(&self, f: impl FnOnce(&HashMap<String, Arc<DiskSample>>) -> R) -> R {
        let map = self
            .shared
            .results
            .read()
            .unwrap_or_else(|e| e.into_inner());
        f(&map)
    }

    /// The latest figures of one container or pod.
    pub fn get(&self, id: &str) -> Option<Arc<DiskSample>> {
        self.with_results(|m| m.get(id).cloned())
    }

    /// Stops the thread (it ends within one slice).
    pub fn stop(&self) {
        self.shared.stop.store(true, Relaxed);
        self.shared.wake.notify_one();
    }
}

/// Measures every container and pod of `roster` once, walking each to the end, without a
/// budget (for `snapshot` and `check`).
pub fn measure_once(
    cfg: DiskConfig,
    roster: Vec<RosterItem>,
    stats: Arc<DiskStats>,
) -> HashMap<String, Arc<DiskSample>> {
    let mut m = Monitor::new(cfg, stats, Output::Local(HashMap::new()));
    m.apply(roster);
    let now = Instant::now();
    // Containers first, so that pods sum known layers.
    let mut keys: Vec<Key> = m.containers.keys().cloned().map(Key::Layer).collect();
    keys.extend(m.pods.keys().cloned().map(Key::Pod));
    for key in keys {
        let mut job = match m.start(&key, now) {
            Some(j) => j,
            None => continue,
        };
        let far = Instant::now() + Duration::from_secs(86_400);
        while job.walk.step(u64::MAX, far) == Progress::Paused {}
        m.finish(job);
    }
    // Pods again: their sums need every container's layer.
    let pods: Vec<String> = m.pods.keys().cloned().collect();
    for uid in pods {
        m.publish_pod(&uid);
    }
    match m.out {
        Output::Local(map) => map,
        Output::Shared(_) => HashMap::new(),
    }
}

/// What is known of a container's writable layer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layer {
    /// Not looked for yet, or its process had not entered the container yet: looked for
    /// again at `next_try`.
    Pending { since: Instant, next_try: Instant },
    /// The `upperdir` (a host path).
    Found(PathBuf),
    /// Its root is not overlay (the filesystem type).
    Unsupported(String),
    /// Found in mountinfo but not reachable below `--host-root`, or no process to ask.
    Unreachable(String),
}

struct Ctr {
    item: RosterItem,
    layer: Layer,
    /// CPU time when the last finished walk began, and when that was.
    cpu_at_walk: Option<u64>,
    walked_at: Option<Instant>,
    rootfs: Option<Usage>,
    logs: Option<Usage>,
    fs: Option<FsStat>,
    device: Option<Arc<str>>,
    /// When it became due (for the lag figure), while queued or walked.
    due_since: Option<Instant>,
    large: bool,
}

struct Pod {
    item: RosterItem,
    cpu_at_walk: Option<u64>,
    walked_at: Option<Instant>,
    empty_dir: Option<Usage>,
    logs: Option<Usage>,
    log_dir: Option<PathBuf>,
    fs: Option<FsStat>,
    device: Option<Arc<str>>,
    due_since: Option<Instant>,
    large: bool,
}

impl Ctr {
    /// What its last walks counted (layer and logs), to tell a cheap one.
    fn last_walk(&self) -> Option<Usage> {
        sum(self.rootfs, self.logs)
    }
}

impl Pod {
    /// What its last walks counted (volumes and logs).
    fn last_walk(&self) -> Option<Usage> {
        sum(self.empty_dir, self.logs)
    }
}

fn sum(a: Option<Usage>, b: Option<Usage>) -> Option<Usage> {
    match (a, b) {
        (None, None) => None,
        (a, b) => {
            let mut u = a.unwrap_or_default();
            u += b.unwrap_or_default();
            Some(u)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Layer(String),
    Pod(String),
}

/// A walk being done for a job.
struct Job {
    key: Key,
    walk: Walk,
    started: Instant,
    cpu_at_start: Option<u64>,
    /// Entries already counted in the stats.
    counted: u64,
    /// A pod's `emptyDir` walk counts its root directory, which is not a volume.
    minus_root: Usage,
}

enum Output {
    Shared(Arc<Shared>),
    Local(HashMap<String, Arc<DiskSample>>),
}

impl Output {
    fn put(&mut self, id: &str, s: Option<DiskSample>) {
        match self {
            Output::Shared(sh) => {
                let mut map = sh.results.write().unwrap_or_else(|e| e.into_inner());
                match s {
                    Some(s) => {
                        if map.get(id).is_none_or(|old| **old != s) {
                            map.insert(id.to_owned(), Arc::new(s));
                        }
                    }
                    None => {
                        map.remove(id);
                    }
                }
            }
            Output::Local(map) => match s {
                Some(s) => {
                    map.insert(id.to_owned(), Arc::new(s));
                }
                None => {
                    map.remove(id);
                }
            },
        }
    }
}

struct Monitor {
    cfg: DiskConfig,
    host: Option<OwnedFd>,
    host_root_mount: Option<RootMount>,
    containers: HashMap<String, Ctr>,
    pods: HashMap<String, Pod>,
    queue: VecDeque<Key>,
    queued: HashSet<Key>,
    paused: VecDeque<Job>,
    /// Alternates between paused walks and new jobs.
    turn: bool,
    devices: HashMap<u64, Arc<str>>,
    warned: HashSet<String>,
    stats: Arc<DiskStats>,
    out: Output,
    last_scan: Option<Instant>,
    /// The disk thread used at most a tenth of its budget over the last window: cheap
    /// containers are walked at the faster cadence.
    spare: bool,
    /// The current window: when it began, and the thread's CPU time then.
    window: Option<(Instant, u64)>,
}

fn thread_cpu_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

impl Monitor {
    fn new(cfg: DiskConfig, stats: Arc<DiskStats>, out: Output) -> Monitor {
        let host = nix::fcntl::open(
            &cfg.host_root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        let host = match host {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::warn!(
                    host_root = %cfg.host_root.display(),
                    "cannot open the host's root ({e}): no disk usage (mount the host's / \
                     read-only and point --host-root at it)"
                );
                None
            }
        };
        let host_root_mount = host_root_mount(&cfg.proc_root);
        Monitor {
            cfg,
            host,
            host_root_mount,
            containers: HashMap::new(),
            pods: HashMap::new(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            paused: VecDeque::new(),
            turn: false,
            devices: HashMap::new(),
            warned: HashSet::new(),
            stats,
            out,
            last_scan: None,
            spare: false,
            window: None,
        }
    }

    /// Whether the thread has spare for the faster cadence: its CPU time over the last
    /// [`SPARE_WINDOW`] (its first window: none, the first pass walks everything).
    fn refresh_spare(&mut self, now: Instant) {
        let cpu = self.stats.cpu_ns.load(Relaxed);
        match self.window {
            None => self.window = Some((now, cpu)),
            Some((since, at)) => {
                let span = now.saturating_duration_since(since);
                if span >= SPARE_WINDOW {
                    let share = cpu.saturating_sub(at) as f64 / span.as_nanos() as f64;
                    self.spare = share <= self.cfg.cpu_budget / 10.0;
                    self.window = Some((now, cpu));
                }
            }
        }
    }

    /// How long after its last walk a job whose CPU moved is due: the interval, or the faster
    /// one when its last walk was cheap and the thread has spare.
    fn working_interval(&self, last: Option<Usage>) -> Duration {
        match last {
            Some(u) if self.spare && u.inodes <= CHEAP_ENTRIES => self.cfg.fast_interval(),
            _ => self.cfg.interval,
        }
    }

    fn run(&mut self, shared: &Shared) {
        let budget = self.cfg.cpu_budget.clamp(0.001, 1.0);
        let mut counted = thread_cpu_ns();
        let mut debt = 0u64;
        while !shared.stop.load(Relaxed) {
            // Every CPU nanosecond of the thread is counted (roster, queue, walks); the budget
            // paces by the slices'.
            let now_cpu = thread_cpu_ns();
            self.stats
                .cpu_ns
                .fetch_add(now_cpu.saturating_sub(counted), Relaxed);
            counted = now_cpu;
            let roster = shared
                .roster
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(r) = roster {
                self.apply(r);
            }
            let now = Instant::now();
            if self
                .last_scan
                .is_none_or(|t| now >= t + Duration::from_secs(1))
                || (self.queue.is_empty() && self.paused.is_empty())
            {
                self.enqueue_due(now);
                self.last_scan = Some(now);
            }
            let before = thread_cpu_ns();
            let worked = self.slice();
            // CPU used since the last pause: paused for once it reaches a slice's worth, so that
            // a run of small walks pays one sleep, not one each.
            debt += thread_cpu_ns().saturating_sub(before);
            let wait = if worked {
                if debt < SLICE_TIME.as_nanos() as u64 {
                    Duration::ZERO
                } else {
                    // Sleep so that the CPU time is `budget` of the time it covers.
                    let w = Duration::from_nanos((debt as f64 * (1.0 / budget - 1.0)) as u64);
                    debt = 0;
                    w
                }
            } else {
                debt = 0;
                self.next_due(now)
                    .map_or(Duration::from_secs(60), |d| {
                        d.saturating_duration_since(now)
                    })
                    .max(Duration::from_millis(10))
            };
            let guard = shared.roster.lock().unwrap_or_else(|e| e.into_inner());
            if worked {
                // A new roster does not cut a budget sleep short (it is read after it).
                drop(guard);
                if !wait.is_zero() {
                    let stop = shared.stop.load(Relaxed);
                    if !stop {
                        std::thread::sleep(wait.min(Duration::from_secs(5)));
                    }
                }
            } else if guard.is_none() && !shared.stop.load(Relaxed) {
                let _ = shared.wake.wait_timeout(guard, wait);
            }
        }
    }

    /// Replaces the tracked set with `roster`: new ones are due at once, gone ones forgotten
    /// (with their results and any walk in progress).
    fn apply(&mut self, roster: Vec<RosterItem>) {
        let now = Instant::now();
        let mut seen_c = HashSet::with_capacity(roster.len());
        let mut seen_p = HashSet::new();
        for item in roster {
            match item.kind {
                Kind::Container => {
                    seen_c.insert(item.id.clone());
                    match self.containers.get_mut(&item.id) {
                        Some(c) => {
                            let names_changed = c.item.meta != item.meta;
                            c.item = item;
                            if names_changed {
                                // The log place may be known now (names arrive after the
                                // cgroup): measure the logs at the next walk, soon.
                                if c.logs.is_none() {
                                    c.walked_at = None;
                                }
                            }
                        }
                        None => {
                            self.containers.insert(
                                item.id.clone(),
                                Ctr {
                                    item,
                                    layer: Layer::Pending {
                                        since: now,
                                        next_try: now,
                                    },
                                    cpu_at_walk: None,
                                    walked_at: None,
                                    rootfs: None,
                                    logs: None,
                                    fs: None,
                                    device: None,
                                    due_since: None,
                                    large: false,
                                },
                            );
                        }
                    }
                }
                Kind::Pod => {
                    seen_p.insert(item.id.clone());
                    match self.pods.get_mut(&item.id) {
                        Some(p) => {
                            if p.item.pod != item.pod && p.log_dir.is_none() {
                                p.walked_at = None;
                            }
                            p.item = item;
                        }
                        None => {
                            self.pods.insert(
                                item.id.clone(),
                                Pod {
                                    item,
                                    cpu_at_walk: None,
                                    walked_at: None,
                                    empty_dir: None,
                                    logs: None,
                                    log_dir: None,
                                    fs: None,
                                    device: None,
                                    due_since: None,
                                    large: false,
                                },
                            );
                        }
                    }
                }
            }
        }
        let gone_c: Vec<String> = self
            .containers
            .keys()
            .filter(|k| !seen_c.contains(*k))
            .cloned()
            .collect();
        let mut touched_pods = HashSet::new();
        for id in gone_c {
            if let Some(c) = self.containers.remove(&id)
                && let Some(u) = c.item.pod_uid
            {
                touched_pods.insert(u);
            }
            self.out.put(&id, None);
            self.forget(&Key::Layer(id));
        }
        let gone_p: Vec<String> = self
            .pods
            .keys()
            .filter(|k| !seen_p.contains(*k))
            .cloned()
            .collect();
        for uid in gone_p {
            self.pods.remove(&uid);
            self.out.put(&uid, None);
            self.forget(&Key::Pod(uid));
        }
        for uid in touched_pods {
            self.publish_pod(&uid);
        }
        self.count_layers();
    }

    fn forget(&mut self, key: &Key) {
        if self.queued.remove(key) {
            self.queue.retain(|k| k != key);
        }
        self.paused.retain(|j| &j.key != key);
    }

    fn count_layers(&self) {
        let (mut found, mut unsupported, mut unreachable, mut pending) = (0, 0, 0, 0);
        for c in self.containers.values() {
            if c.item.meta.as_deref().is_some_and(|m| m.sandbox) {
                continue;
            }
            match c.layer {
                Layer::Found(_) => found += 1,
                Layer::Unsupported(_) => unsupported += 1,
                Layer::Unreachable(_) => unreachable += 1,
                Layer::Pending { .. } => pending += 1,
            }
        }
        let s = &self.stats;
        s.layers_found.store(found, Relaxed);
        s.layers_unsupported.store(unsupported, Relaxed);
        s.layers_unreachable.store(unreachable, Relaxed);
        s.layers_pending.store(pending, Relaxed);
    }

    /// Whether something last walked at `walked_at` with CPU time `cpu_at_walk` is due now.
    fn is_due(
        &self,
        walked_at: Option<Instant>,
        cpu_at_walk: Option<u64>,
        cpu_now: Option<u64>,
        last: Option<Usage>,
        now: Instant,
    ) -> bool {
        let Some(at) = walked_at else { return true };
        let age = now.saturating_duration_since(at);
        if age >= self.cfg.idle_interval {
            return true;
        }
        let moved = match (cpu_at_walk, cpu_now) {
            (Some(a), Some(b)) => a != b,
            _ => true,
        };
        moved && age >= self.working_interval(last)
    }

    /// When the next job falls due (for the idle wait; a new roster, every tick, wakes the
    /// thread too).
    fn next_due(&self, now: Instant) -> Option<Instant> {
        let due_at = |walked_at: Option<Instant>,
                      cpu_a: Option<u64>,
                      cpu_b: Option<u64>,
                      last: Option<Usage>| {
            match walked_at {
                None => now,
                Some(w) => {
                    let moved = !matches!((cpu_a, cpu_b), (Some(a), Some(b)) if a == b);
                    if moved {
                        w + self.working_interval(last)
                    } else {
                        // Its CPU may move any time: looked at again with the next roster.
                        w + self.cfg.idle_interval
                    }
                }
            }
        };
        let containers = self.containers.values().filter_map(|c| match c.layer {
            Layer::Found(_) => Some(due_at(
                c.walked_at,
                c.cpu_at_walk,
                c.item.cpu_ns,
                c.last_walk(),
            )),
            Layer::Pending { next_try, .. } => Some(next_try),
            _ => None,
        });
        let pods = self
            .pods
            .values()
            .map(|p| due_at(p.walked_at, p.cpu_at_walk, p.item.cpu_ns, p.last_walk()));
        containers.chain(pods).min()
    }

    /// Queues every due job that is not queued or being walked, and updates the lag figure.
    fn enqueue_due(&mut self, now: Instant) {
        self.refresh_spare(now);
        let mut due = Vec::new();
        for (id, c) in &self.containers {
            let wanted = match c.layer {
                Layer::Found(_) => true,
                Layer::Pending { next_try, .. } => now >= next_try,
                // Logs are still worth measuring without a layer.
                Layer::Unsupported(_) | Layer::Unreachable(_) => c.item.meta.is_some(),
            };
            if wanted
                && self.is_due(
                    c.walked_at,
                    c.cpu_at_walk,
                    c.item.cpu_ns,
                    c.last_walk(),
                    now,
                )
            {
                due.push(Key::Layer(id.clone()));
            }
        }
        for (uid, p) in &self.pods {
            if self.is_due(
                p.walked_at,
                p.cpu_at_walk,
                p.item.cpu_ns,
                p.last_walk(),
                now,
            ) {
                due.push(Key::Pod(uid.clone()));
            }
        }
        for key in due {
            if self.queued.contains(&key) || self.paused.iter().any(|j| j.key == key) {
                continue;
            }
            match &key {
                Key::Layer(id) => {
                    if let Some(c) = self.containers.get_mut(id) {
                        c.due_since.get_or_insert(now);
                    }
                }
                Key::Pod(uid) => {
                    if let Some(p) = self.pods.get_mut(uid) {
                        p.due_since.get_or_insert(now);
                    }
                }
            }
            self.queued.insert(key.clone());
            self.queue.push_back(key);
        }
        let lag = self
            .containers
            .values()
            .filter_map(|c| c.due_since)
            .chain(self.pods.values().filter_map(|p| p.due_since))
            .map(|d| now.saturating_duration_since(d))
            .max()
            .unwrap_or_default();
        self.stats.lag_ns.store(lag.as_nanos() as u64, Relaxed);
    }

    fn is_large(&self, key: &Key) -> bool {
        match key {
            Key::Layer(id) => self.containers.get(id).is_some_and(|c| c.large),
            Key::Pod(uid) => self.pods.get(uid).is_some_and(|p| p.large),
        }
    }

    fn set_large(&mut self, key: &Key, large: bool) {
        match key {
            Key::Layer(id) => {
                if let Some(c) = self.containers.get_mut(id) {
                    c.large = large;
                }
            }
            Key::Pod(uid) => {
                if let Some(p) = self.pods.get_mut(uid) {
                    p.large = large;
                }
            }
        }
    }

    /// One slice of work: a paused walk or a new job, in turn. Returns whether there was
    /// anything to do.
    fn slice(&mut self) -> bool {
        let until = Instant::now() + SLICE_TIME;
        self.turn = !self.turn;
        let room = self.paused.len() < MAX_IN_PROGRESS;
        let take_new = (self.turn || self.paused.is_empty()) && !self.queue.is_empty();
        if take_new {
            // Large jobs wait while the paused walks fill every place.
            let pos = self.queue.iter().position(|k| room || !self.is_large(k));
            if let Some(pos) = pos {
                let key = self.queue.remove(pos).expect("a position of the queue");
                self.queued.remove(&key);
                let Some(mut job) = self.start(&key, Instant::now()) else {
                    return true;
                };
                match job.walk.step(SLICE_ENTRIES, until) {
                    Progress::Done => self.finish(job),
                    Progress::Paused if self.paused.len() < MAX_IN_PROGRESS => {
                        self.count_entries(&mut job);
                        self.set_large(&key, true);
                        self.paused.push_back(job);
                    }
                    Progress::Paused => {
                        // No place to keep it: drop the walk (and its descriptors), and let
                        // it wait for a place.
                        self.count_entries(&mut job);
                        self.set_large(&key, true);
                        self.queued.insert(key.clone());
                        self.queue.push_back(key);
                    }
                }
                return true;
            }
        }
        if let Some(mut job) = self.paused.pop_front() {
            match job.walk.step(SLICE_ENTRIES, until) {
                Progress::Done => self.finish(job),
                Progress::Paused => {
                    self.count_entries(&mut job);
                    self.paused.push_back(job);
                }
            }
            return true;
        }
        false
    }

    fn count_entries(&self, job: &mut Job) {
        self.stats
            .entries
            .fetch_add(job.walk.entries - job.counted, Relaxed);
        job.counted = job.walk.entries;
    }

    /// Begins a job: finds the layer if need be, opens the walk. `None` when there is
    /// nothing to walk (its result, logs only or none, is published at once).
    fn start(&mut self, key: &Key, now: Instant) -> Option<Job> {
        match key {
            Key::Layer(id) => {
                self.locate(id, now);
                let c = self.containers.get(id)?;
                let cpu = c.item.cpu_ns;
                let sandbox = c.item.meta.as_deref().is_some_and(|m| m.sandbox);
                let path = match &c.layer {
                    Layer::Found(p) if !sandbox => p.clone(),
                    Layer::Pending { since, .. } => {
                        // Looked for again after twice as long as it has been looked for.
                        let since = *since;
                        let waited = now.saturating_duration_since(since);
                        if let Some(c) = self.containers.get_mut(id) {
                            c.layer = Layer::Pending {
                                since,
                                next_try: now + waited.max(LOCATE_RETRY),
                            };
                            c.due_since = None;
                        }
                        return None;
                    }
                    _ => {
                        self.finish_container(id, now, cpu, None);
                        return None;
                    }
                };
                let host = self.host.as_ref()?;
                match Walk::open_in(host, &path) {
                    Ok(walk) => Some(Job {
                        key: key.clone(),
                        walk,
                        started: now,
                        cpu_at_start: cpu,
                        counted: 0,
                        minus_root: Usage::default(),
                    }),
                    Err(e) => {
                        // The container went (its layer with it), or the host root is wrong.
                        if let Some(c) = self.containers.get_mut(id) {
                            c.layer = Layer::Unreachable(format!("{}: {e}", path.display()));
                        }
                        self.warn_unreachable(id);
                        self.count_layers();
                        self.finish_container(id, now, cpu, None);
                        None
                    }
                }
            }
            Key::Pod(uid) => {
                let p = self.pods.get(uid)?;
                let cpu = p.item.cpu_ns;
                let host = self.host.as_ref()?;
                let root = logs::empty_dir_root(&self.cfg.kubelet_root, uid);
                let walk = root.as_ref().and_then(|r| Walk::open_in(host, r).ok());
                match walk {
                    Some(walk) => {
                        // The `kubernetes.io~empty-dir` directory itself is no volume.
                        let minus_root = root
                            .as_deref()
                            .and_then(|r| own_usage(host, r))
                            .unwrap_or_default();
                        Some(Job {
                            key: key.clone(),
                            walk,
                            started: now,
                            cpu_at_start: cpu,
                            counted: 0,
                            minus_root,
                        })
                    }
                    None => {
                        // No `emptyDir` directory: none when the pod's own directory exists
                        // (the kubelet makes it for every pod), unknown otherwise.
                        let pod_dir = logs::pod_dir(&self.cfg.kubelet_root, uid);
                        let exists = pod_dir
                            .as_deref()
                            .is_some_and(|d| walk::open_dir_in(host, d).is_ok());
                        let empty = exists.then_some(Usage::default());
                        self.finish_pod(uid, now, cpu, empty, None);
                        None
                    }
                }
            }
        }
    }

    fn finish(&mut self, mut job: Job) {
        self.count_entries(&mut job);
        let (vanished, mounts) = (job.walk.vanished, job.walk.mounts_skipped);
        let result = job.walk.finish();
        let key = job.key.clone();
        self.set_large(&key, false);
        let s = &self.stats;
        let result = match result {
            Ok(r) => {
                s.walks_complete.fetch_add(1, Relaxed);
                Some(r)
            }
            Err(why) => {
                match why {
                    Incomplete::Denied(_) => s.walks_denied.fetch_add(1, Relaxed),
                    Incomplete::TooDeep => s.walks_too_deep.fetch_add(1, Relaxed),
                    Incomplete::Vanished | Incomplete::Descriptors => {
                        s.walks_vanished.fetch_add(1, Relaxed)
                    }
                };
                if why != Incomplete::Vanished {
                    self.warn_incomplete(&key, &why);
                }
                None
            }
        };
        tracing::trace!(?key, vanished, mounts, "disk walk done");
        match &key {
            Key::Layer(id) => self.finish_container(id, job.started, job.cpu_at_start, result),
            Key::Pod(uid) => {
                let r = result.map(|(mut u, fs)| {
                    u.bytes = u.bytes.saturating_sub(job.minus_root.bytes);
                    u.inodes = u.inodes.saturating_sub(job.minus_root.inodes);
                    (u, fs)
                });
                let (u, fs) = match r {
                    Some((u, fs)) => (Some(u), Some(fs)),
                    None => (None, None),
                };
                self.finish_pod(uid, job.started, job.cpu_at_start, u, fs)
            }
        }
    }

    /// Records a container's walk (or that there is none to make), measures its logs, and
    /// publishes. A walk that could not finish leaves no figure, not a stale one.
    fn finish_container(
        &mut self,
        id: &str,
        started: Instant,
        cpu: Option<u64>,
        layer: Option<(Usage, FsStat)>,
    ) {
        let logs = self.measure_logs(id);
        let device = layer.as_ref().map(|(_, fs)| self.device(fs.dev));
        let Some(c) = self.containers.get_mut(id) else {
            return;
        };
        c.walked_at = Some(started);
        c.cpu_at_walk = cpu;
        c.due_since = None;
        c.logs = logs;
        match layer {
            Some((u, fs)) => {
                c.rootfs = Some(u);
                c.fs = Some(fs);
                c.device = device;
            }
            None => {
                c.rootfs = None;
                c.fs = None;
                c.device = None;
            }
        }
        let sample = DiskSample {
            usage: c.rootfs,
            rootfs: c.rootfs,
            logs: c.logs,
            empty_dir: None,
            kubernetes: c.item.pod_uid.is_some(),
            fs: c.fs,
            device: c.device.clone(),
        };
        let sandbox = c.item.meta.as_deref().is_some_and(|m| m.sandbox);
        let pod = c.item.pod_uid.clone();
        let empty = sample.usage.is_none() && sample.logs.is_none();
        self.out.put(id, (!empty && !sandbox).then_some(sample));
        if let Some(uid) = pod {
            self.publish_pod(&uid);
        }
    }

    fn finish_pod(
        &mut self,
        uid: &str,
        started: Instant,
        cpu: Option<u64>,
        empty_dir: Option<Usage>,
        fs: Option<FsStat>,
    ) {
        let logs = self.measure_pod_logs(uid);
        let device = fs.map(|f| self.device(f.dev));
        let Some(p) = self.pods.get_mut(uid) else {
            return;
        };
        p.walked_at = Some(started);
        p.cpu_at_walk = cpu;
        p.due_since = None;
        p.empty_dir = empty_dir;
        p.logs = logs;
        if fs.is_some() {
            p.fs = fs;
            p.device = device;
        }
        self.publish_pod(uid);
    }

    /// A pod's figures: its containers' layers (all of them known, or no sum), its logs and
    /// its volumes.
    fn publish_pod(&mut self, uid: &str) {
        let Some(p) = self.pods.get(uid) else {
            return;
        };
        let mut rootfs = Some(Usage::default());
        let mut any = false;
        let (mut fs, mut device) = (p.fs, p.device.clone());
        for c in self.containers.values() {
            if c.item.pod_uid.as_deref() != Some(uid)
                || c.item.meta.as_deref().is_some_and(|m| m.sandbox)
            {
                continue;
            }
            any = true;
            match (&mut rootfs, c.rootfs) {
                (Some(sum), Some(u)) => *sum += u,
                _ => rootfs = None,
            }
            if fs.is_none() {
                fs = c.fs;
                device = c.device.clone();
            }
        }
        let rootfs = rootfs.filter(|_| any);
        let usage = match (rootfs, p.logs, p.empty_dir) {
            (Some(mut a), Some(b), Some(c)) => {
                a += b;
                a += c;
                Some(a)
            }
            _ => None,
        };
        let sample = DiskSample {
            usage,
            rootfs,
            logs: p.logs,
            empty_dir: p.empty_dir,
            kubernetes: true,
            fs,
            device,
        };
        let empty = sample.rootfs.is_none() && sample.logs.is_none() && sample.empty_dir.is_none();
        self.out.put(uid, (!empty).then_some(sample));
    }

    /// The container's log files: Docker's and Podman's file and rotations, or the CRI
    /// container's directory in the kubelet's layout. `None` when the runtime names none.
    fn measure_logs(&mut self, id: &str) -> Option<Usage> {
        let c = self.containers.get(id)?;
        let meta = c.item.meta.as_deref()?;
        let place = logs::place(meta, c.item.pod_uid.as_deref(), &self.cfg.pod_logs_dir)?;
        let host = self.host.as_ref()?;
        match place {
            LogPlace::File(f) => {
                let dir = f.parent()?;
                let name = f.file_name()?;
                walk::files_with_prefix(host, dir, std::os::unix::ffi::OsStrExt::as_bytes(name))
                    .ok()
            }
            LogPlace::Dir(d) => self.walk_small(&d),
        }
    }

    /// The pod's log directory in the kubelet's layout (every container's, every restart's).
    fn measure_pod_logs(&mut self, uid: &str) -> Option<Usage> {
        let p = self.pods.get(uid)?;
        let dir = match &p.log_dir {
            Some(d) => Some(d.clone()),
            None => self.find_pod_log_dir(uid),
        };
        let dir = dir?;
        if let Some(p) = self.pods.get_mut(uid) {
            p.log_dir = Some(dir.clone());
        }
        self.walk_small(&dir)
    }

    /// `<pod logs>/<namespace>_<name>_<uid>`: from the pod's names, else the one entry of the
    /// pod log directory that ends in `_<uid>`.
    fn find_pod_log_dir(&self, uid: &str) -> Option<PathBuf> {
        let p = self.pods.get(uid)?;
        if let Some(m) = p.item.pod.as_deref()
            && let (Some(ns), Some(name)) = (&m.namespace, &m.name)
        {
            return Some(logs::pod_log_dir(&self.cfg.pod_logs_dir, ns, name, uid));
        }
        let host = self.host.as_ref()?;
        let fd = walk::open_dir_in(host, &self.cfg.pod_logs_dir).ok()?;
        let suffix = format!("_{uid}");
        let dir = nix::dir::Dir::from_fd(fd).ok()?;
        for e in dir.into_iter().flatten() {
            let name = e.file_name().to_bytes();
            if name.ends_with(suffix.as_bytes()) {
                let name = std::ffi::OsStr::new(std::str::from_utf8(name).ok()?);
                return Some(self.cfg.pod_logs_dir.join(name));
            }
        }
        None
    }

    /// A whole walk of a small directory (logs), at once.
    fn walk_small(&mut self, dir: &Path) -> Option<Usage> {
        let host = self.host.as_ref()?;
        let walk = Walk::open_in(host, dir).ok()?;
        let (u, _) = walk.run().ok()?;
        self.stats.entries.fetch_add(u.inodes, Relaxed);
        Some(u)
    }

    /// Finds the layer of a container not located yet, from one of its processes.
    fn locate(&mut self, id: &str, now: Instant) {
        let Some(c) = self.containers.get(id) else {
            return;
        };
        let Layer::Pending { since, .. } = c.layer else {
            return;
        };
        let waited = now.saturating_duration_since(since) >= LOCATE_FOR;
        let host_root = self.host_root_mount.as_ref();
        let layer = match find_layer(&self.cfg.proc_root, &c.item.procs, host_root) {
            Found::Overlay(up) => Some(Layer::Found(up)),
            Found::NotOverlay(fstype) => Some(Layer::Unsupported(fstype)),
            // Not in the container yet (its runtime's init), or a container that shares the
            // host's root: looked at again for a while.
            Found::HostRoot => waited.then(|| Layer::Unsupported("the host's root".into())),
            Found::NoProcess => waited.then(|| Layer::Unreachable("no process to look at".into())),
        };
        let Some(layer) = layer else {
            return;
        };
        if let Layer::Unsupported(fstype) = &layer {
            let key = format!("fstype\x1f{fstype}");
            if self.remember(key) {
                tracing::info!(
                    %id,
                    fstype,
                    "a container's root filesystem is {fstype}, not overlay: containers like it \
                     get no writable-layer usage (only overlay's upper directory is the \
                     container's own data; logged once per filesystem type)"
                );
            }
        }
        if let Some(c) = self.containers.get_mut(id) {
            c.layer = layer;
        }
        self.count_layers();
    }

    fn remember(&mut self, key: String) -> bool {
        if self.warned.len() >= WARNED_MAX {
            self.warned.clear();
        }
        self.warned.insert(key)
    }

    fn warn_unreachable(&mut self, id: &str) {
        let Some(Layer::Unreachable(why)) = self.containers.get(id).map(|c| c.layer.clone()) else {
            return;
        };
        if self.remember(format!("unreachable\x1f{id}")) {
            tracing::warn!(
                %id,
                host_root = %self.cfg.host_root.display(),
                "cannot open the container's writable layer ({why}): no disk usage for it. \
                 Is the host's / mounted at --host-root?"
            );
        }
    }

    fn warn_incomplete(&mut self, key: &Key, why: &Incomplete) {
        let (what, id) = match key {
            Key::Layer(id) => ("the writable layer of container", id),
            Key::Pod(uid) => ("the emptyDir volumes of pod", uid),
        };
        if self.remember(format!("incomplete\x1f{id}")) {
            let hint = match why {
                Incomplete::Denied(_) => {
                    " (the exporter needs CAP_DAC_READ_SEARCH to read every container's files)"
                }
                _ => "",
            };
            tracing::warn!(
                "{what} {id}: {why}{hint}; its usage is not shown while that lasts (warned once)"
            );
        }
    }

    /// cAdvisor's name for the filesystem `dev`: the source of its mount in the exporter's
    /// mountinfo, else `/dev/<name>` from sysfs, else `MAJ:MIN`.
    fn device(&mut self, dev: u64) -> Arc<str> {
        if let Some(d) = self.devices.get(&dev) {
            return d.clone();
        }
        let (maj, min) = mountinfo::split_dev(dev);
        let name = std::fs::read(self.cfg.proc_root.join("self/mountinfo"))
            .ok()
            .and_then(|m| mountinfo::source_of(&m, (maj, min)))
            .filter(|s| s.starts_with('/'))
            .or_else(|| block::dev_name(Path::new(block::SYS_DEV_BLOCK), &format!("{maj}:{min}")))
            .unwrap_or_else(|| format!("{maj}:{min}"));
        let name: Arc<str> = name.into();
        if self.devices.len() < 256 {
            self.devices.insert(dev, name.clone());
        }
        name
    }
}

/// Where a container's root filesystem is, from one of its processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// overlay: the `upperdir` (a host path).
    Overlay(PathBuf),
    /// Another filesystem type: no usage of the container's own.
    NotOverlay(String),
    /// The process has the host's root (it has not entered the container yet).
    HostRoot,
    /// No process, or its mountinfo could not be read.
    NoProcess,
}

/// The root mount of the first process in `procs` (a `cgroup.procs`), compared with the host's
/// (`host_root`, pid 1's).
pub fn find_layer(proc_root: &Path, procs: &Path, host_root: Option<&RootMount>) -> Found {
    let Some(pid) = first_pid(procs) else {
        return Found::NoProcess;
    };
    let info = std::fs::read(proc_root.join(pid.to_string()).join("mountinfo"));
    match info.ok().and_then(|m| mountinfo::root_mount(&m)) {
        None => Found::NoProcess,
        Some(root) if host_root.is_some_and(|h| h.same_as(&root)) => Found::HostRoot,
        Some(root) => match root.upperdir {
            Some(up) => Found::Overlay(up),
            None => Found::NotOverlay(root.fstype),
        },
    }
}

/// pid 1's root mount: the host's, for [`find_layer`].
pub fn host_root_mount(proc_root: &Path) -> Option<RootMount> {
    std::fs::read(proc_root.join("1/mountinfo"))
        .ok()
        .and_then(|m| mountinfo::root_mount(&m))
}

/// The space and inode of a directory itself (not what is in it).
fn own_usage(host: &OwnedFd, dir: &Path) -> Option<Usage> {
    let fd = walk::open_dir_in(host, dir).ok()?;
    let st = nix::sys::stat::fstat(std::os::fd::AsFd::as_fd(&fd)).ok()?;
    Some(Usage {
        bytes: (st.st_blocks.max(0) as u64) * 512,
        inodes: 1,
    })
}

/// The first pid in a `cgroup.procs` file.
fn first_pid(procs: &Path) -> Option<u32> {
    let text = std::fs::read(procs).ok()?;
    text.split(|&b| b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok()?.trim().parse().ok())
        .find(|&p: &u32| p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ce-monitor-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn item(id: &str, cpu: u64) -> RosterItem {
        RosterItem {
            id: id.into(),
            kind: Kind::Container,
            pod_uid: None,
            procs: PathBuf::from("/nonexistent/cgroup.procs"),
            cpu_ns: Some(cpu),
            meta: None,
            pod: None,
        }
    }

    fn monitor(interval: u64, idle: u64) -> Monitor {
        let cfg = DiskConfig {
            interval: Duration::from_secs(interval),
            idle_interval: Duration::from_secs(idle),
            ..DiskConfig::default()
        };
        Monitor::new(
            cfg,
            Arc::new(DiskStats::default()),
            Output::Local(HashMap::new()),
        )
    }

    fn found(m: &mut Monitor, id: &str, dir: &Path) {
        m.containers.get_mut(id).unwrap().layer = Layer::Found(dir.to_path_buf());
    }

    fn result(m: &Monitor, id: &str) -> Option<Usage> {
        match &m.out {
            Output::Local(map) => map.get(id).and_then(|s| s.usage),
            Output::Shared(_) => None,
        }
    }

    #[test]
    fn a_small_layer_waits_one_slice_per_walk_in_progress_not_a_whole_big_walk() {
        let big = tmp("big");
        for d in 0..10 {
            std::fs::create_dir(big.join(format!("d{d}"))).unwrap();
            for f in 0..1000 {
                std::fs::write(big.join(format!("d{d}/f{f}")), b"x").unwrap();
            }
        }
        let small = tmp("small");
        std::fs::write(small.join("f"), vec![1u8; 10_000]).unwrap();
        let mut m = monitor(60, 600);
        m.apply(vec![item("big", 1), item("small", 1)]);
        found(&mut m, "big", &big);
        found(&mut m, "small", &small);
        // The big one first in the queue.
        m.queue.push_back(Key::Layer("big".into()));
        m.queued.insert(Key::Layer("big".into()));
        assert!(m.slice());
        assert_eq!(m.paused.len(), 1, "the big walk did not fit one slice");
        m.enqueue_due(Instant::now());
        let mut slices = 0;
        while result(&m, "small").is_none() {
            assert!(m.slice());
            slices += 1;
        }
        assert!(slices <= 2, "{slices} slices before the small layer's turn");
        assert!(
            result(&m, "big").is_none(),
            "the big walk is still under way"
        );
        while m.slice() {}
        assert_eq!(result(&m, "big").map(|u| u.inodes), Some(1 + 10 + 10_000));
        std::fs::remove_dir_all(&big).unwrap();
        std::fs::remove_dir_all(&small).unwrap();
    }

    #[test]
    fn walked_again_when_the_cpu_moved_after_the_interval_and_when_idle_after_the_idle_one() {
        let dir = tmp("cadence");
        let mut m = monitor(60, 600);
        m.apply(vec![item("busy", 1), item("idle", 1)]);
        found(&mut m, "busy", &dir);
        found(&mut m, "idle", &dir);
        let t0 = Instant::now();
        m.enqueue_due(t0);
        while m.slice() {}
        assert!(result(&m, "busy").is_some() && result(&m, "idle").is_some());
        // Walked at t0 with CPU 1. The busy one's CPU moves; the idle one's does not.
        m.apply(vec![item("busy", 2), item("idle", 1)]);
        let due = |m: &Monitor, id: &str, at: Instant| {
            let c = &m.containers[id];
            m.is_due(c.walked_at, c.cpu_at_walk, c.item.cpu_ns, c.last_walk(), at)
        };
        let (s, i) = ("busy", "idle");
        let at = |secs| t0 + Duration::from_secs(secs);
        assert!(!due(&m, s, at(59)) && due(&m, s, at(61)));
        assert!(!due(&m, i, at(61)) && !due(&m, i, at(599)) && due(&m, i, at(601)));
        assert_eq!(
            m.next_due(t0),
            Some(m.containers[s].walked_at.unwrap() + Duration::from_secs(60))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_cheap_container_is_walked_faster_while_the_thread_has_spare() {
        let small = tmp("cheap-small");
        std::fs::write(small.join("f"), b"x").unwrap();
        let big = tmp("cheap-big");
        for f in 0..CHEAP_ENTRIES + 10 {
            std::fs::write(big.join(format!("f{f}")), b"").unwrap();
        }
        let mut m = monitor(60, 600);
        m.apply(vec![item("small", 1), item("big", 1)]);
        found(&mut m, "small", &small);
        found(&mut m, "big", &big);
        let t0 = Instant::now();
        m.enqueue_due(t0);
        while m.slice() {}
        m.apply(vec![item("small", 2), item("big", 2)]);
        let due = |m: &Monitor, id: &str, secs: u64| {
            let c = &m.containers[id];
            let at = c.walked_at.unwrap() + Duration::from_secs(secs);
            m.is_due(c.walked_at, c.cpu_at_walk, c.item.cpu_ns, c.last_walk(), at)
        };
        // No window measured yet: the first pass is no proof of spare.
        assert!(!m.spare && !due(&m, "small", 11));
        // A quiet window: spare. The small one is due after a sixth of the interval, the
        // big one (more entries than a cheap walk) after the interval.
        let t1 = m.window.unwrap().0 + SPARE_WINDOW;
        m.refresh_spare(t1);
        assert!(m.spare);
        assert!(!due(&m, "small", 9) && due(&m, "small", 11));
        assert!(!due(&m, "big", 59) && due(&m, "big", 61));
        // A window in which the thread used more than a tenth of its budget: no spare.
        m.stats.cpu_ns.fetch_add(
            (SPARE_WINDOW.as_nanos() as f64 * m.cfg.cpu_budget / 5.0) as u64,
            Relaxed,
        );
        m.refresh_spare(t1 + SPARE_WINDOW);
        assert!(!m.spare && !due(&m, "small", 59) && due(&m, "small", 61));
        // Idle containers are not walked faster, spare or not.
        m.spare = true;
        m.apply(vec![item("small", 1), item("big", 1)]);
        assert!(!due(&m, "small", 11) && !due(&m, "small", 599) && due(&m, "small", 601));
        std::fs::remove_dir_all(&small).unwrap();
        std::fs::remove_dir_all(&big).unwrap();
    }

    #[test]
    fn a_container_without_a_process_is_looked_for_with_backoff_not_in_a_loop() {
        let mut m = monitor(60, 600);
        m.apply(vec![item("ghost", 1)]);
        let t0 = Instant::now();
        m.enqueue_due(t0);
        assert!(m.slice(), "looked for at once");
        m.enqueue_due(t0);
        assert!(!m.slice(), "not again within the second");
        m.enqueue_due(Instant::now() + LOCATE_RETRY * 2);
        assert!(m.slice(), "looked for again after a second");
        let Layer::Pending { since, .. } = m.containers["ghost"].layer else {
            panic!()
        };
        let later = since + Duration::from_secs(8);
        assert!(m.start(&Key::Layer("ghost".into()), later).is_none());
        let Layer::Pending { next_try, .. } = m.containers["ghost"].layer else {
            panic!()
        };
        assert_eq!(next_try, later + Duration::from_secs(8), "the wait doubles");
        // Past LOCATE_FOR it is given up as having no process to look at.
        m.enqueue_due(t0 + LOCATE_FOR + LOCATE_RETRY * 2);
        let c = &m.containers["ghost"];
        let Layer::Pending { since, .. } = c.layer else {
            panic!("{:?}", c.layer)
        };
        m.locate("ghost", since + LOCATE_FOR);
        assert!(matches!(m.containers["ghost"].layer, Layer::Unreachable(_)));
        assert_eq!(m.next_due(t0), None);
    }
}
