//! The disk thread's state and what one slice of its work does: the containers and pods of
//! the latest roster, what is known of each (its layer, its last walks' figures), and the
//! steps of a job, from finding the layer to publishing the figures.
//!
//! [`schedule`](super::schedule) says who is due and whose turn a slice is,
//! [`jobs`](super::jobs) opens and finishes the walks, [`layer`](super::layer) finds the
//! layers, and the thread runs the slices within the budget.
//!
//! **Bounds.** Tracked containers and pods are exactly the latest roster (the collector's
//! containers), results likewise; the queue holds each of them at most once; warnings are
//! remembered per container and per filesystem type, at most [`WARNED_MAX`].

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::exchange::{DiskConfig, DiskSample, DiskStats, Results, RosterItem, SampleMap};
use super::jobs::{self, Job, Key, NoVolumes};
use super::layer::{self, DeviceNames, Layer, Unreachable};
use super::schedule::{Cadence, Queue, SLICE_ENTRIES, SLICE_TIME, Turn, Walked};
use super::walk::{self, FsStat, Incomplete, Progress, Usage};
use crate::discovery::Kind;

/// What is known of a container (`K` is its [`Layer`]) or a pod (`K` is its log directory,
/// once known): its roster item and what its last walks counted.
struct Known<K> {
    item: RosterItem,
    walked: Walked,
    /// What its job walked: a container's writable layer, a pod's `emptyDir` volumes.
    walk: Option<Usage>,
    logs: Option<Usage>,
    fs: Option<FsStat>,
    device: Option<Arc<str>>,
    place: K,
}

type Ctr = Known<Layer>;
type Pod = Known<Option<PathBuf>>;

impl<K> Known<K> {
    fn new(item: RosterItem, place: K) -> Known<K> {
        Known {
            item,
            walked: Walked::default(),
            walk: None,
            logs: None,
            fs: None,
            device: None,
            place,
        }
    }

    /// When it falls due, seen at `now` ([`Cadence::wait`]).
    fn due_at(&self, cadence: &Cadence, now: Instant) -> Instant {
        let last = sum(self.walk, self.logs);
        let wait = cadence.wait(&self.walked, self.item.cpu_ns, last);
        wait.map_or(now, |(at, wait)| at + wait)
    }

    /// Whether it is due at `now`.
    fn is_due(&self, cadence: &Cadence, now: Instant) -> bool {
        let last = sum(self.walk, self.logs);
        let wait = cadence.wait(&self.walked, self.item.cpu_ns, last);
        wait.is_none_or(|(at, wait)| now.saturating_duration_since(at) >= wait)
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

pub struct Monitor {
    cfg: DiskConfig,
    host: Option<OwnedFd>,
    view: layer::HostView,
    containers: HashMap<String, Ctr>,
    pods: HashMap<String, Pod>,
    queue: Queue,
    cadence: Cadence,
    devices: DeviceNames,
    warnings: Warnings,
    stats: Arc<DiskStats>,
    out: Results,
}

impl Monitor {
    pub fn new(cfg: DiskConfig, stats: Arc<DiskStats>, out: Results) -> Monitor {
        let host = match walk::open_root(&cfg.host_root) {
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
        Monitor {
            view: layer::HostView::new(&cfg.proc_root, &cfg.host_root),
            cadence: Cadence::new(&cfg),
            cfg,
            host,
            containers: HashMap::new(),
            pods: HashMap::new(),
            queue: Queue::default(),
            devices: DeviceNames::default(),
            warnings: Warnings::default(),
            stats,
            out,
        }
    }

    pub fn stats(&self) -> &DiskStats {
        &self.stats
    }

    pub fn cpu_budget(&self) -> f64 {
        self.cfg.cpu_budget
    }

    /// Nothing queued and no walk paused.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// Walks every container and pod to the end, at once (no slices, no budget), and returns
    /// their figures.
    pub fn measure_all(mut self) -> SampleMap {
        let now = Instant::now();
        // Containers first, so that pods sum known layers.
        let mut keys: Vec<Key> = self.containers.keys().cloned().map(Key::Layer).collect();
        keys.extend(self.pods.keys().cloned().map(Key::Pod));
        for key in keys {
            if let Some(mut job) = self.start(&key, now) {
                let far = Instant::now() + Duration::from_secs(86_400);
                while job.walk.step(u64::MAX, far) == Progress::Paused {}
                self.finish(job);
            }
        }
        // Pods again: their sums need every container's layer.
        let pods: Vec<String> = self.pods.keys().cloned().collect();
        for uid in pods {
            self.publish_pod(&uid);
        }
        match self.out {
            Results::Local(map) => map,
            Results::Shared(_) => SampleMap::new(),
        }
    }

    /// Replaces the tracked set with `roster`: new ones are due at once, gone ones forgotten
    /// (with their results and any walk in progress).
    pub fn apply(&mut self, roster: Vec<RosterItem>) {
        let now = Instant::now();
        let mut seen_c = HashSet::with_capacity(roster.len());
        let mut seen_p = HashSet::new();
        for item in roster {
            match item.kind {
                Kind::Container => {
                    seen_c.insert(item.id.clone());
                    let Some(c) = self.containers.get_mut(&item.id) else {
                        self.containers
                            .insert(item.id.clone(), Ctr::new(item, Layer::pending(now)));
                        continue;
                    };
                    // The log place may be known now (names arrive after the cgroup): measure
                    // the logs at the next walk, soon.
                    if c.item.meta != item.meta && c.logs.is_none() {
                        c.walked.at = None;
                    }
                    c.item = item;
                }
                Kind::Pod => {
                    seen_p.insert(item.id.clone());
                    let Some(p) = self.pods.get_mut(&item.id) else {
                        self.pods.insert(item.id.clone(), Pod::new(item, None));
                        continue;
                    };
                    if p.item.pod != item.pod && p.place.is_none() {
                        p.walked.at = None;
                    }
                    p.item = item;
                }
            }
        }
        let gone_c = self.containers.keys().filter(|id| !seen_c.contains(*id));
        let gone_p = self.pods.keys().filter(|uid| !seen_p.contains(*uid));
        let gone: Vec<Key> = (gone_c.cloned().map(Key::Layer))
            .chain(gone_p.cloned().map(Key::Pod))
            .collect();
        let mut touched_pods = HashSet::new();
        for key in gone {
            let id = match &key {
                Key::Layer(id) => {
                    touched_pods.extend(self.containers.remove(id).and_then(|c| c.item.pod_uid));
                    id
                }
                Key::Pod(uid) => {
                    self.pods.remove(uid);
                    uid
                }
            };
            self.out.put(id, None);
            self.queue.forget(&key);
        }
        for uid in touched_pods {
            self.publish_pod(&uid);
        }
        self.count_layers();
    }

    fn count_layers(&self) {
        let (mut found, mut unsupported, mut unreachable, mut pending) = (0, 0, 0, 0);
        let mut untrusted = 0;
        for c in self.containers.values().filter(|c| !c.item.is_sandbox()) {
            match c.place {
                Layer::Found(_) => found += 1,
                Layer::Unsupported(_) => unsupported += 1,
                Layer::Unreachable(_) => unreachable += 1,
                Layer::Pending { .. } => pending += 1,
                Layer::Untrusted(_) => untrusted += 1,
            }
        }
        let s = &self.stats;
        s.layers_found.store(found, Relaxed);
        s.layers_unsupported.store(unsupported, Relaxed);
        s.layers_unreachable.store(unreachable, Relaxed);
        s.layers_pending.store(pending, Relaxed);
        s.layers_untrusted.store(untrusted, Relaxed);
    }

    /// When the next job falls due (for the idle wait; a new roster, every tick, wakes the
    /// thread too).
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        let cadence = &self.cadence;
        let containers = self.containers.values().filter_map(|c| match c.place {
            Layer::Found(_) => Some(c.due_at(cadence, now)),
            Layer::Pending { next_try, .. } => Some(next_try),
            _ => None,
        });
        let pods = self.pods.values().map(|p| p.due_at(cadence, now));
        containers.chain(pods).min()
    }

    /// Queues every due job that is not queued or being walked, and updates the lag figure.
    pub fn enqueue_due(&mut self, now: Instant) {
        self.cadence
            .refresh_spare(self.stats.cpu_ns.load(Relaxed), now);
        let cadence = &self.cadence;
        for (id, c) in &mut self.containers {
            let wanted = match c.place {
                Layer::Found(_) => true,
                Layer::Pending { next_try, .. } => now >= next_try,
                // Logs are still worth measuring without a layer.
                Layer::Unsupported(_) | Layer::Unreachable(_) | Layer::Untrusted(_) => {
                    c.item.meta.is_some()
                }
            };
            if wanted && c.is_due(cadence, now) && self.queue.push(Key::Layer(id.clone())) {
                c.walked.due_since.get_or_insert(now);
            }
        }
        for (uid, p) in &mut self.pods {
            if p.is_due(cadence, now) && self.queue.push(Key::Pod(uid.clone())) {
                p.walked.due_since.get_or_insert(now);
            }
        }
        let lag = self
            .containers
            .values()
            .map(|c| c.walked.due_since)
            .chain(self.pods.values().map(|p| p.walked.due_since))
            .flatten()
            .map(|d| now.saturating_duration_since(d))
            .max()
            .unwrap_or_default();
        self.stats.lag_ns.store(lag.as_nanos() as u64, Relaxed);
    }

    /// One slice of work: a paused walk or a new job, in turn. Returns whether there was
    /// anything to do.
    pub fn slice(&mut self) -> bool {
        let until = Instant::now() + SLICE_TIME;
        let (mut job, new) = match self.queue.take_turn() {
            None => return false,
            Some(Turn::New(key)) => match self.start(&key, Instant::now()) {
                Some(job) => (job, true),
                None => return true,
            },
            Some(Turn::Paused(job)) => (job, false),
        };
        match job.walk.step(SLICE_ENTRIES, until) {
            Progress::Done => self.finish(job),
            Progress::Paused => {
                job.count_entries(&self.stats);
                if new {
                    self.queue.pause_new(job);
                } else {
                    self.queue.pause_again(job);
                }
            }
        }
        true
    }

    /// Begins a job: finds the layer if need be, opens the walk. `None` when there is
    /// nothing to walk (its result, logs only or none, is published at once).
    fn start(&mut self, key: &Key, now: Instant) -> Option<Job> {
        match key {
            Key::Layer(id) => {
                self.locate(id, now);
                let c = self.containers.get_mut(id)?;
                let cpu = c.item.cpu_ns;
                let path = match &c.place {
                    Layer::Found(p) if !c.item.is_sandbox() => p.clone(),
                    Layer::Pending { since, .. } => {
                        c.place = Layer::retried(*since, now);
                        c.walked.due_since = None;
                        return None;
                    }
                    _ => {
                        self.finish_container(id, now, cpu, None);
                        return None;
                    }
                };
                let host = self.host.as_ref()?;
                match Job::layer(host, id, &path, now, cpu) {
                    Ok(job) => Some(job),
                    Err(errno) => {
                        // The container went (its layer with it), or the host root is wrong.
                        let why = Unreachable::Open { path, errno };
                        self.warnings.unreachable(id, &why, &self.cfg.host_root);
                        c.place = Layer::Unreachable(why);
                        self.count_layers();
                        self.finish_container(id, now, cpu, None);
                        None
                    }
                }
            }
            Key::Pod(uid) => {
                let cpu = self.pods.get(uid)?.item.cpu_ns;
                let host = self.host.as_ref()?;
                match Job::pod_volumes(host, &self.cfg.kubelet_root, uid, now, cpu) {
                    Ok(job) => Some(job),
                    Err(none) => {
                        let empty = match none {
                            NoVolumes::None => Some(Usage::default()),
                            NoVolumes::Unknown => None,
                        };
                        self.finish_pod(uid, now, cpu, empty, None);
                        None
                    }
                }
            }
        }
    }

    fn finish(&mut self, job: Job) {
        let (started, cpu) = (job.started, job.cpu_at_start);
        let (key, result) = job.finish(&self.stats);
        self.queue.finished(&key);
        let result = match result {
            Ok(r) => Some(r),
            Err(why) => {
                if why != Incomplete::Vanished {
                    self.warnings.incomplete(&key, &why);
                }
                None
            }
        };
        match &key {
            Key::Layer(id) => self.finish_container(id, started, cpu, result),
            Key::Pod(uid) => {
                let (u, fs) = result.unzip();
                self.finish_pod(uid, started, cpu, u, fs)
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
        let c = self.containers.get(id);
        let logs = match (c.and_then(|c| c.item.meta.as_deref()), &self.host) {
            (Some(meta), Some(host)) => {
                let pod_uid = c.and_then(|c| c.item.pod_uid.as_deref());
                jobs::container_logs(host, meta, pod_uid, &self.cfg.pod_logs_dir, &self.stats)
            }
            _ => None,
        };
        let device = layer
            .as_ref()
            .map(|(_, fs)| self.devices.name(&self.cfg.proc_root, fs.dev));
        let Some(c) = self.containers.get_mut(id) else {
            return;
        };
        c.walked = Walked {
            at: Some(started),
            cpu,
            due_since: None,
        };
        c.logs = logs;
        let (rootfs, fs) = layer.unzip();
        (c.walk, c.fs, c.device) = (rootfs, fs, device);
        let sample = DiskSample {
            usage: c.walk,
            rootfs: c.walk,
            logs: c.logs,
            empty_dir: None,
            kubernetes: c.item.pod_uid.is_some(),
            fs: c.fs,
            device: c.device.clone(),
        };
        let sandbox = c.item.is_sandbox();
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
        let device = fs.map(|f| self.devices.name(&self.cfg.proc_root, f.dev));
        let Some(p) = self.pods.get_mut(uid) else {
            return;
        };
        p.walked = Walked {
            at: Some(started),
            cpu,
            due_since: None,
        };
        p.walk = empty_dir;
        p.logs = logs;
        if fs.is_some() {
            p.fs = fs;
            p.device = device;
        }
        self.publish_pod(uid);
    }

    /// The pod's log directory in the kubelet's layout (every container's, every restart's).
    fn measure_pod_logs(&mut self, uid: &str) -> Option<Usage> {
        let p = self.pods.get_mut(uid)?;
        if p.place.is_none() {
            let (host, dir) = (self.host.as_ref(), &self.cfg.pod_logs_dir);
            p.place = jobs::pod_log_dir(host, dir, uid, p.item.pod.as_deref());
        }
        jobs::walk_small(self.host.as_ref()?, p.place.as_ref()?, &self.stats)
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
            if c.item.pod_uid.as_deref() != Some(uid) || c.item.is_sandbox() {
                continue;
            }
            any = true;
            match (&mut rootfs, c.walk) {
                (Some(sum), Some(u)) => *sum += u,
                _ => rootfs = None,
            }
            if fs.is_none() {
                fs = c.fs;
                device = c.device.clone();
            }
        }
        let rootfs = rootfs.filter(|_| any);
        let usage = match (rootfs, p.logs, p.walk) {
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
            empty_dir: p.walk,
            kubernetes: true,
            fs,
            device,
        };
        let empty = sample.rootfs.is_none() && sample.logs.is_none() && sample.empty_dir.is_none();
        self.out.put(uid, (!empty).then_some(sample));
    }

    /// Finds the layer of a container not located yet, from one of its processes.
    fn locate(&mut self, id: &str, now: Instant) {
        let Some(c) = self.containers.get(id) else {
            return;
        };
        let Layer::Pending { since, .. } = c.place else {
            return;
        };
        let host = self.host.as_ref();
        let found = layer::locate(&self.view, host, id, &c.item.procs, &self.stats);
        let Some(layer) = Layer::located(found, since, now) else {
            return;
        };
        if let Layer::Untrusted(up) = &layer {
            self.warnings.untrusted(id, up);
        }
        if let Layer::Unsupported(fstype) = &layer {
            self.warnings.not_overlay(id, fstype);
        }
        if let Some(c) = self.containers.get_mut(id) {
            c.place = layer;
        }
        self.count_layers();
    }
}

/// Warnings remembered, at most.
const WARNED_MAX: usize = 4096;

/// The thread's warnings, each logged once: per container (a layer that cannot be opened,
/// a walk that cannot finish) or per filesystem type (a root that is not overlay). Past
/// [`WARNED_MAX`] they are all forgotten and may be logged again.
#[derive(Default)]
struct Warnings {
    seen: HashSet<Warned>,
}

/// What was warned about.
#[derive(PartialEq, Eq, Hash)]
enum Warned {
    /// A root filesystem type other than overlay.
    NotOverlay(String),
    /// A container's layer that does not open.
    Unreachable(String),
    /// A container's or pod's walk that could not finish.
    Incomplete(Key),
}

impl Warnings {
    /// Whether `key` is new (to log once).
    fn once(&mut self, key: Warned) -> bool {
        if self.seen.len() >= WARNED_MAX {
            self.seen.clear();
        }
        self.seen.insert(key)
    }

    /// Container `id`'s root is `fstype`, not overlay.
    fn not_overlay(&mut self, id: &str, fstype: &str) {
        if self.once(Warned::NotOverlay(fstype.to_owned())) {
            tracing::info!(
                %id,
                fstype,
                "a container's root filesystem is {fstype}, not overlay: containers like it \
                 get no writable-layer usage (only overlay's upper directory is the \
                 container's own data; logged once per filesystem type)"
            );
        }
    }

    /// Container `id`'s root names `upper`, an upper directory no runtime made.
    fn untrusted(&mut self, id: &str, upper: &Path) {
        if self.once(Warned::Unreachable(id.to_owned())) {
            tracing::warn!(
                %id,
                upper = %upper.display(),
                "the container's root is an overlay whose upper directory is not a layer its \
                 runtime made (the container mounted it itself): not walked, no writable-layer \
                 usage for it"
            );
        }
    }

    /// Container `id`'s writable layer does not open below `host_root`.
    fn unreachable(&mut self, id: &str, why: &Unreachable, host_root: &Path) {
        if self.once(Warned::Unreachable(id.to_owned())) {
            tracing::warn!(
                %id,
                host_root = %host_root.display(),
                "cannot open the container's writable layer ({why}): no disk usage for it. \
                 Is the host's / mounted at --host-root?"
            );
        }
    }

    /// The walk of `key` could not finish.
    fn incomplete(&mut self, key: &Key, why: &Incomplete) {
        let (what, id) = match key {
            Key::Layer(id) => ("the writable layer of container", id),
            Key::Pod(uid) => ("the emptyDir volumes of pod", uid),
        };
        if self.once(Warned::Incomplete(key.clone())) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::layer::{LOCATE_FOR, LOCATE_RETRY};
    use crate::disk::schedule::{CHEAP_ENTRIES, SPARE_WINDOW};
    use crate::host::fs::test_dir;

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
            Results::Local(HashMap::new()),
        )
    }

    fn found(m: &mut Monitor, id: &str, dir: &Path) {
        m.containers.get_mut(id).unwrap().place = Layer::Found(dir.to_path_buf());
    }

    fn result(m: &Monitor, id: &str) -> Option<Usage> {
        match &m.out {
            Results::Local(map) => map.get(id).and_then(|s| s.usage),
            Results::Shared(_) => None,
        }
    }

    #[test]
    fn a_small_layer_waits_one_slice_per_walk_in_progress_not_a_whole_big_walk() {
        let big = test_dir("monitor-big");
        for d in 0..10 {
            std::fs::create_dir(big.join(format!("d{d}"))).unwrap();
            for f in 0..1000 {
                std::fs::write(big.join(format!("d{d}/f{f}")), b"x").unwrap();
            }
        }
        let small = test_dir("monitor-small");
        std::fs::write(small.join("f"), vec![1u8; 10_000]).unwrap();
        let mut m = monitor(60, 600);
        m.apply(vec![item("big", 1), item("small", 1)]);
        found(&mut m, "big", &big);
        found(&mut m, "small", &small);
        // The big one first in the queue.
        m.queue.push(Key::Layer("big".into()));
        assert!(m.slice());
        assert_eq!(m.queue.paused(), 1, "the big walk did not fit one slice");
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
        let dir = test_dir("monitor-cadence");
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
        let due = |m: &Monitor, id: &str, at: Instant| m.containers[id].is_due(&m.cadence, at);
        let (s, i) = ("busy", "idle");
        let at = |secs| t0 + Duration::from_secs(secs);
        assert!(!due(&m, s, at(59)) && due(&m, s, at(61)));
        assert!(!due(&m, i, at(61)) && !due(&m, i, at(599)) && due(&m, i, at(601)));
        assert_eq!(
            m.next_due(t0),
            Some(m.containers[s].walked.at.unwrap() + Duration::from_secs(60))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_cheap_container_is_walked_faster_while_the_thread_has_spare() {
        let small = test_dir("monitor-cheap-small");
        std::fs::write(small.join("f"), b"x").unwrap();
        let big = test_dir("monitor-cheap-big");
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
            c.is_due(&m.cadence, c.walked.at.unwrap() + Duration::from_secs(secs))
        };
        // No window measured yet: the first pass is no proof of spare.
        assert!(!m.cadence.spare && !due(&m, "small", 11));
        // A quiet window: spare. The small one is due after a sixth of the interval, the
        // big one (more entries than a cheap walk) after the interval.
        let t1 = m.cadence.window.unwrap().0 + SPARE_WINDOW;
        m.cadence.refresh_spare(m.stats.cpu_ns.load(Relaxed), t1);
        assert!(m.cadence.spare);
        assert!(!due(&m, "small", 9) && due(&m, "small", 11));
        assert!(!due(&m, "big", 59) && due(&m, "big", 61));
        // A window in which the thread used more than a tenth of its budget: no spare.
        m.stats.cpu_ns.fetch_add(
            (SPARE_WINDOW.as_nanos() as f64 * m.cfg.cpu_budget / 5.0) as u64,
            Relaxed,
        );
        m.cadence
            .refresh_spare(m.stats.cpu_ns.load(Relaxed), t1 + SPARE_WINDOW);
        assert!(!m.cadence.spare && !due(&m, "small", 59) && due(&m, "small", 61));
        // Idle containers are not walked faster, spare or not.
        m.cadence.spare = true;
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
        let Layer::Pending { since, .. } = m.containers["ghost"].place else {
            panic!()
        };
        let later = since + Duration::from_secs(8);
        assert!(m.start(&Key::Layer("ghost".into()), later).is_none());
        let Layer::Pending { next_try, .. } = m.containers["ghost"].place else {
            panic!()
        };
        assert_eq!(next_try, later + Duration::from_secs(8), "the wait doubles");
        // Past LOCATE_FOR it is given up as having no process to look at.
        m.enqueue_due(t0 + LOCATE_FOR + LOCATE_RETRY * 2);
        let c = &m.containers["ghost"];
        let Layer::Pending { since, .. } = c.place else {
            panic!("{:?}", c.place)
        };
        m.locate("ghost", since + LOCATE_FOR);
        assert!(matches!(m.containers["ghost"].place, Layer::Unreachable(_)));
        assert_eq!(m.next_due(t0), None);
    }
}
