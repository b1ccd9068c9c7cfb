//! One collection tick over every tracked container: the [`Collector`] brings the tracked
//! set in line with what discovery finds (a container recreated under the same id, told apart
//! by its directory's inode, starts afresh), reads each container that still has processes,
//! and hands out each departed container's final sample once ([`Collector::take_departed`]),
//! so outputs show the last seconds of every container, even one that lived less than an
//! interval. What a tracked container's reads said of its processes (whether it ran, whether
//! it exited) decides when a sample is its final one; read errors are counted by kind and
//! logged at most once per file per ten minutes.
//!
//! How many descriptors the containers' files may hold, and which files stay open when they
//! run short, is [`super::fds`]'s.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fds::{FdBudget, Holder};
use super::state::ContainerState;
use crate::cgroup::parse::ErrorKind;
use crate::cgroup::{
    CgroupReader, CgroupSample, Gone, Layout, NetSource, OpenError, ProcRoot, ReadError,
    ReadErrorKind,
};
use crate::discovery::{self, Found, Kind};
use crate::disk::DiskSample;

/// What one discovery pass changed.
#[derive(Debug, Default)]
pub struct DiscoveryChanges {
    pub added: usize,
    pub removed: usize,
    /// Containers seen in the tree whose files could not be opened, by id, with why (naming
    /// the file). They are tried again at every tick until they open or their cgroup goes.
    pub failed: Vec<(String, OpenError)>,
}

pub struct Collector {
    layout: Layout,
    proc_root: ProcRoot,
    containers: HashMap<String, Box<Tracked>>,
    /// Found but not opened (an error other than "gone"): tried again at every tick. Bounded
    /// by the cgroups that exist: a rescan that no longer finds one drops it.
    unopened: HashMap<String, Found>,
    departed: Vec<ContainerState>,
    buf: Vec<u8>,
    /// The sample being read, swapped with the container's current one when complete.
    scratch: CgroupSample,
    pub errors: ReadErrorCounts,
    /// Containers whose end was seen, each counted once however it was noticed: a rescan or
    /// inotify that no longer finds its directory, a read that finds it gone, a new
    /// directory under the same id.
    pub removals: u64,
    /// The read errors since the last [`take_errors`](Self::take_errors).
    tick_errors: Vec<ReadError>,
    fds: FdBudget,
    limits_every: Duration,
    /// Starting containers whose network namespace is looked for between ticks.
    net_looks: Vec<NetLook>,
}

/// A starting container seen in the host's network namespace (most likely its runtime's init):
/// its first process may end before the next tick, and only a `net/dev` opened while it lives
/// gives the final sample its network, so it is looked for between ticks, at doubling waits.
#[derive(Debug)]
struct NetLook {
    id: String,
    next: Instant,
    step: Duration,
}

/// How long after a container is found its network namespace is looked for between ticks: on a
/// loaded host, a runtime's init can stay in the host's namespace for seconds (3 s was too
/// short with 30 containers starting at once on 2 CPUs).
const NET_LOOK_FOR: Duration = Duration::from_secs(10);
/// The first wait between two looks; each is twice the last, up to [`NET_LOOK_STEP_MAX`]: about
/// 35 looks in all for a container that does use the host's network.
const NET_LOOK_FIRST: Duration = Duration::from_millis(10);
const NET_LOOK_STEP_MAX: Duration = Duration::from_millis(320);
/// Containers looked for at once, at most: in a larger burst of starts, the rest are looked at
/// at each tick only.
const NET_LOOKS_MAX: usize = 512;

/// Errors [`Collector::last_errors`] gives at most.
const KEEP_ERRORS: usize = 16;

/// How long limits are trusted by default between two reads (the daemon sets it so that a
/// change shows within a minute at its interval).
pub const LIMITS_EVERY: Duration = Duration::from_secs(50);

impl Collector {
    pub fn new(layout: Layout, proc_root: ProcRoot) -> Collector {
        Collector {
            layout,
            proc_root,
            containers: HashMap::new(),
            unopened: HashMap::new(),
            departed: Vec::new(),
            buf: vec![0; 64 * 1024],
            scratch: CgroupSample::default(),
            errors: ReadErrorCounts::default(),
            removals: 0,
            tick_errors: Vec::new(),
            fds: FdBudget::new(),
            limits_every: LIMITS_EVERY,
            net_looks: Vec::new(),
        }
    }

    /// How long a container's limits are trusted between two reads (zero: every read).
    pub fn set_limits_every(&mut self, every: Duration) {
        self.limits_every = every;
    }

    /// Sets how many descriptors the containers' files may hold (by default the open-file
    /// limit less [`crate::host::limits::FD_RESERVE`]).
    pub fn set_fd_budget(&mut self, budget: usize) {
        self.fds.budget = budget;
    }

    /// Containers read by open-read-close because the descriptor budget is spent.
    pub fn reopening(&self) -> usize {
        self.fds.reopening
    }

    /// Containers that keep every file open, and those that keep only the files read every
    /// tick (the others are [`reopening`](Self::reopening)).
    pub fn files_kept(&self) -> (usize, usize) {
        let tracked = self.containers.len();
        let all = self.fds.kept_all.min(tracked);
        (all, tracked.saturating_sub(all + self.fds.reopening))
    }

    /// Whether the container's `cgroup.events` is watched by inotify: then it is read only
    /// when an event says it changed ([`refresh`](Self::refresh)), not every tick.
    pub fn set_events_watched(&mut self, id: &str, watched: bool) {
        if let Some(t) = self.containers.get_mut(id) {
            t.reader.set_events_watched(watched);
        }
    }

    /// Reads a container's limits again at the next tick (its runtime changed them).
    pub fn refresh_limits(&mut self, id: &str) {
        if let Some(t) = self.containers.get_mut(id) {
            t.reader.refresh_limits();
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Walks the cgroup tree and brings the tracked set in line with it.
    pub fn discover(&mut self) -> DiscoveryChanges {
        let found = discovery::walk(self.layout.discovery_root());
        self.sync(found)
    }

    /// Tracks exactly the containers in `found`: new ones are opened, vanished ones depart
    /// (with their last sample), a reused id whose directory has a new inode restarts.
    pub fn sync(&mut self, found: Vec<Found>) -> DiscoveryChanges {
        let mut changes = DiscoveryChanges::default();
        let mut seen = std::collections::HashSet::with_capacity(found.len());
        for f in found {
            seen.insert(f.id.clone());
            self.track(f, &mut changes);
        }
        self.unopened.retain(|id, _| seen.contains(id));
        let vanished: Vec<String> = self
            .containers
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for id in vanished {
            if self.untrack(&id) {
                changes.removed += 1;
            }
        }
        changes
    }

    /// Starts (or restarts, on a new inode) tracking one container, and reads it once so
    /// it has a baseline (and its `populated` state) from the start.
    pub fn track(&mut self, f: Found, changes: &mut DiscoveryChanges) {
        // A pod's containers share its network namespace: its counters are reported once, on
        // the pod, so that summing by pod does not multiply them.
        let net = match (f.kind, &f.pod_uid) {
            (Kind::Pod, _) => NetSource::Children,
            (Kind::Container, Some(_)) => NetSource::Skip,
            (Kind::Container, None) => NetSource::Own,
        };
        let options = self
            .fds
            .options(self.limits_every, &mut self.containers, &self.layout);
        let reader = match CgroupReader::open_with(&self.layout, &f.rel, options) {
            Ok(r) => r.with_net_source(net),
            Err(OpenError::Gone) => {
                self.unopened.remove(&f.id);
                return;
            }
            Err(e) => {
                // Counted here, logged by whoever asked (once per container and error).
                self.errors.open += 1;
                changes.failed.push((f.id.clone(), e));
                self.unopened.insert(f.id.clone(), f);
                return;
            }
        };
        self.unopened.remove(&f.id);
        let id = f.id.clone();
        match self.containers.entry(f.id.clone()) {
            Entry::Occupied(mut o) if o.get().reader.inode == reader.inode => {
                // Already tracked. Events may have been lost (an inotify overflow makes a
                // rescan): `cgroup.events` is read again, and an exited container is looked
                // at at once, in case it has processes once more.
                o.get_mut().reader.events_changed();
                if o.get().exited {
                    self.refresh(&id);
                }
                return;
            }
            Entry::Occupied(mut o) => {
                self.fds.opened(&reader, &options);
                let old = o.insert(Box::new(Tracked::new(f, reader)));
                self.fds.closed(&old.reader);
                if !old.exited && old.state.current_at.is_some() {
                    self.departed.push(old.state);
                }
                self.removals += 1;
                changes.removed += 1;
                changes.added += 1;
            }
            Entry::Vacant(v) => {
                self.fds.opened(&reader, &options);
                v.insert(Box::new(Tracked::new(f, reader)));
                changes.added += 1;
            }
        }
        self.refresh(&id);
    }

    /// Stops tracking a container whose cgroup is gone; its last sample departs unless it
    /// already did. Returns whether it was tracked.
    pub fn untrack(&mut self, id: &str) -> bool {
        let Some(mut t) = self.containers.remove(id) else {
            return false;
        };
        self.removals += 1;
        self.fds.closed(&t.reader);
        if !t.exited && t.state.current_at.is_some() && t.has_run() {
            // Discovery saw the cgroup go before a read did.
            t.keep_last_network(&mut self.buf);
            self.departed.push(t.state);
        }
        true
    }

    /// Reads one container now (its `cgroup.events` changed). When its last process has
    /// left, this is its final sample: it departs, its network descriptor is closed, and it
    /// is no longer read until it has processes again. Returns `populated`, if known.
    pub fn refresh(&mut self, id: &str) -> Option<bool> {
        let t = self.containers.get_mut(id)?;
        let held = t.reader.held();
        t.retry_missing(&self.layout, Instant::now());
        t.reader.events_changed();
        let result = t.read(
            &self.proc_root,
            &mut self.buf,
            &mut self.scratch,
            &mut self.tick_errors,
            &mut self.errors,
        );
        // What it opened (a hierarchy's directory that appeared) counts at once: in a surge
        // of new containers between two ticks, the next one's room depends on it.
        self.fds.held = (self.fds.held + t.reader.held()).saturating_sub(held);
        if result.is_err() {
            self.untrack(id);
            return None;
        }
        let t = self.containers.get_mut(id)?;
        let populated = t.state.current.populated;
        if t.observe() {
            self.departed.push(t.state.clone());
        }
        if t.starting_in_host_network() {
            self.look_for_network(id);
        }
        populated
    }

    /// Looks for a starting container's network namespace between ticks, unless already
    /// looking (or looking for too many).
    fn look_for_network(&mut self, id: &str) {
        if self.net_looks.len() < NET_LOOKS_MAX && !self.net_looks.iter().any(|l| l.id == id) {
            self.net_looks.push(NetLook {
                id: id.to_string(),
                next: Instant::now() + NET_LOOK_FIRST,
                step: NET_LOOK_FIRST,
            });
        }
    }

    /// When the next look for a starting container's network namespace is due.
    pub fn next_network_look(&self) -> Option<Instant> {
        self.net_looks.iter().map(|l| l.next).min()
    }

    /// Looks for the network namespaces of starting containers that are due: each is looked
    /// for until found, until the container ends, or for [`NET_LOOK_FOR`] after it was found.
    pub fn look_for_networks(&mut self, now: Instant) {
        let (proc_root, buf, containers) = (&self.proc_root, &mut self.buf, &mut self.containers);
        self.net_looks.retain_mut(|l| {
            if l.next > now {
                return true;
            }
            let Some(t) = containers.get_mut(&l.id) else {
                return false;
            };
            if t.exited || now.duration_since(t.found_at) >= NET_LOOK_FOR {
                return false;
            }
            if !t.reader.look_for_network(proc_root, buf) {
                return false;
            }
            l.step = (l.step * 2).min(NET_LOOK_STEP_MAX);
            l.next = now + l.step;
            true
        });
    }

    /// The containers whose files could not be opened, to [`track`](Self::track) again (those
    /// that fail again come back).
    pub fn take_unopened(&mut self) -> Vec<Found> {
        self.unopened.drain().map(|(_, f)| f).collect()
    }

    /// One tick: re-reads every tracked container that still has processes. Containers
    /// whose cgroup is gone depart with their last complete sample.
    pub fn collect(&mut self) {
        let mut gone = Vec::new();
        let mut starting = Vec::new();
        let now = Instant::now();
        for (id, t) in self.containers.iter_mut() {
            t.retry_missing(&self.layout, now);
            if t.exited {
                continue;
            }
            let result = t.read(
                &self.proc_root,
                &mut self.buf,
                &mut self.scratch,
                &mut self.tick_errors,
                &mut self.errors,
            );
            if self.fds.lean {
                // What is read every tick may have changed (a quota set, a device counted).
                t.reader.trim(&self.layout, &t.state.rel);
            }
            match result {
                // An exit whose event was lost is caught here, one tick late.
                Ok(()) if t.observe() => self.departed.push(t.state.clone()),
                Ok(()) if t.starting_in_host_network() => starting.push(id.clone()),
                Ok(()) => {}
                Err(Gone) => gone.push(id.clone()),
            }
        }
        for id in starting {
            self.look_for_network(&id);
        }
        for id in gone {
            self.untrack(&id);
        }
        self.fds.balance(&mut self.containers, &self.layout);
    }

    /// The containers that departed since the last call, each with its final sample.
    pub fn take_departed(&mut self) -> Vec<ContainerState> {
        std::mem::take(&mut self.departed)
    }

    /// The read errors since the last call, each with the file it is about: for a log that
    /// limits itself per file ([`ErrorLog`](super::ErrorLog)).
    pub fn take_errors(&mut self) -> Vec<ReadError> {
        std::mem::take(&mut self.tick_errors)
    }

    /// The last few read errors not yet taken, for a one-off command's log.
    pub fn last_errors(&self) -> &[ReadError] {
        &self.tick_errors[self.tick_errors.len().saturating_sub(KEEP_ERRORS)..]
    }

    /// The containers that currently have processes (or whose state is not known).
    pub fn containers(&self) -> impl Iterator<Item = &ContainerState> {
        self.containers
            .values()
            .filter(|t| t.shown())
            .map(|t| &t.state)
    }

    /// Sets each shown container's disk figures (from the disk thread's results).
    pub fn attach_disk(
        &mut self,
        mut lookup: impl FnMut(&ContainerState) -> Option<Arc<DiskSample>>,
    ) {
        for t in self.containers.values_mut() {
            if t.shown() {
                t.state.disk = lookup(&t.state);
            }
        }
    }

    /// Every tracked cgroup, running or exited, by id and relative path.
    pub fn tracked(&self) -> impl Iterator<Item = (&str, &PathBuf)> {
        self.containers
            .iter()
            .map(|(id, t)| (id.as_str(), &t.state.rel))
    }

    pub fn is_tracked(&self, id: &str) -> bool {
        self.containers.contains_key(id)
    }

    /// The kept-open descriptors of every tracked container (for the benchmark's floor).
    pub fn readers(&self) -> impl Iterator<Item = &CgroupReader> {
        self.containers.values().map(|t| &t.reader)
    }
}

/// A container being read every tick.
#[derive(Debug)]
pub(super) struct Tracked {
    pub state: ContainerState,
    pub reader: CgroupReader,
    /// It ran and its last process left (`populated 0`): its final sample was taken; it is
    /// no longer read or shown, until it has processes again or its cgroup goes.
    pub exited: bool,
    /// `cgroup.events` said `populated 1` at some read.
    seen_running: bool,
    /// Until when to retry hierarchies whose directory did not exist yet at open.
    retry_until: Option<Instant>,
    /// When it was found.
    found_at: Instant,
}

impl Holder for Tracked {
    fn reader(&self) -> &CgroupReader {
        &self.reader
    }

    fn reader_mut(&mut self) -> (&mut CgroupReader, &Path, bool) {
        (&mut self.reader, &self.state.rel, self.exited)
    }
}

impl Tracked {
    /// Reads the container into `scratch` (the collector's one spare sample): on success it
    /// becomes current, and the old one, with its buffers, the spare for the next read; when
    /// the container is gone, the last complete sample stays current.
    pub fn read(
        &mut self,
        proc_root: &ProcRoot,
        buf: &mut Vec<u8>,
        scratch: &mut CgroupSample,
        errors: &mut Vec<ReadError>,
        counts: &mut ReadErrorCounts,
    ) -> Result<(), Gone> {
        let s = &mut self.state;
        match self.reader.read(proc_root, buf, scratch, &mut |e| {
            counts.count(&e);
            errors.push(e);
        }) {
            Ok(()) => {
                std::mem::swap(&mut s.current, scratch);
                s.previous_cpu_ns = scratch.cpu.usage_ns;
                s.previous_at = s.current_at;
                s.current_at = Some(Instant::now());
                counts.dropped_devices += u64::from(s.current.io_dropped);
                counts.dropped_interfaces += u64::from(s.current.net_dropped);
                Ok(())
            }
            Err(Gone) => {
                // The partial read is dropped; the last complete sample is the final one.
                s.previous_at = None;
                self.keep_last_network(buf);
                Err(Gone)
            }
        }
    }

    /// Its last sample, about to be its final one with its cgroup gone, gets the network
    /// counters of now where `net/dev` is still open (its namespace outlives the cgroup's
    /// files while it is): bytes moved after the last read are not lost.
    fn keep_last_network(&mut self, buf: &mut Vec<u8>) {
        if self.state.current_at.is_some() {
            (self.reader).read_kept_network(buf, &mut self.state.current);
        }
    }

    /// It has run: seen populated, or it has used CPU. A cgroup made but never entered has
    /// no final sample to give. Tasks counted in the `pids` controller say so only on pure
    /// v1: where `cgroup.events` is read, a runtime may have attached the process to the v1
    /// controllers and not yet to the unified hierarchy (whose `cpu.stat` is the CPU read
    /// there), and `populated 0` then means "not started yet", not "exited".
    pub fn has_run(&self) -> bool {
        let s = &self.state.current;
        self.seen_running
            || s.cpu.usage_ns.is_some_and(|u| u > 0)
            || (s.populated.is_none() && s.pids.current.is_some_and(|p| p > 0))
    }

    /// Opens the files of hierarchies whose directory was missing at discovery, for a few
    /// seconds after it.
    pub fn retry_missing(&mut self, layout: &Layout, now: Instant) {
        let Some(until) = self.retry_until else {
            return;
        };
        match self.reader.retry_missing(layout, &self.state.rel) {
            Ok(true) if now < until => {}
            Ok(true) => {
                self.retry_until = None;
                // Absent from a hierarchy can be a runtime's choice; something else in the
                // directory's place never is, and its values would be missing unsaid.
                let odd = self.reader.not_directories(layout, &self.state.rel);
                if !odd.is_empty() {
                    tracing::warn!(
                        id = %self.state.id,
                        paths = ?odd,
                        "not a directory where the container's cgroup directory should be: \
                         the values of those hierarchies are not reported for it"
                    );
                }
            }
            _ => self.retry_until = None,
        }
    }

    /// Applies what the latest read says about the container's processes. Returns true when
    /// that read is its final sample: it ran, and now no process is left.
    pub fn observe(&mut self) -> bool {
        match self.state.current.populated {
            Some(true) => {
                self.seen_running = true;
                self.exited = false;
                false
            }
            Some(false) if !self.exited && self.has_run() => {
                self.exited = true;
                self.reader.close_net();
                true
            }
            _ => false,
        }
    }

    /// Shown on the outputs: running, or not known not to be (v1 has no `populated`). A
    /// container created but not yet entered is tracked and read, but not shown.
    pub fn shown(&self) -> bool {
        !self.exited && self.state.current.populated != Some(false)
    }

    pub fn new(f: Found, reader: CgroupReader) -> Tracked {
        Tracked {
            state: ContainerState::new(f, reader.created),
            reader,
            exited: false,
            seen_running: false,
            retry_until: Some(Instant::now() + discovery::RETRY_AFTER_DISCOVERY),
            found_at: Instant::now(),
        }
    }

    /// Found moments ago, running, and without a network namespace of its own yet: seen in the
    /// host's (perhaps only its runtime's init so far), or no process listed yet where it is
    /// looked for (a runtime joins one hierarchy after another).
    fn starting_in_host_network(&self) -> bool {
        !self.exited
            && self.state.current.populated != Some(false)
            && self.reader.network_unresolved()
            && self.found_at.elapsed() < NET_LOOK_FOR
    }
}

/// Logs problems with files at most once per file per [`ErrorLog::EVERY`]: the first one at
/// once, later ones with how many were left out. A file that stays broken does not log every
/// tick, and every broken file gets its line (counters on the page count every error).
#[derive(Default)]
pub struct ErrorLog {
    /// File → when it was last logged, and errors left out since.
    logged: HashMap<PathBuf, (Instant, u64)>,
}

impl ErrorLog {
    pub const EVERY: Duration = Duration::from_secs(600);
    /// Files remembered at most; beyond, the oldest entries go (the next error of a file
    /// forgotten is logged again, which is harmless).
    const MAX: usize = 8192;

    /// Whether to log this error now at warning level, and how many errors of the same file
    /// were left out since its last line.
    pub fn admit(&mut self, file: &Path, now: Instant) -> Option<u64> {
        if let Some((at, left_out)) = self.logged.get_mut(file) {
            if now.duration_since(*at) < Self::EVERY {
                *left_out += 1;
                return None;
            }
            let n = std::mem::take(left_out);
            *at = now;
            return Some(n);
        }
        if self.logged.len() >= Self::MAX {
            self.logged
                .retain(|_, (at, _)| now.duration_since(*at) < Self::EVERY);
            if self.logged.len() >= Self::MAX {
                self.logged.clear();
            }
        }
        self.logged.insert(file.to_path_buf(), (now, 0));
        Some(0)
    }
}

/// Counts of what went wrong while reading, by kind.
#[derive(Debug, Default, Clone)]
pub struct ReadErrorCounts {
    pub io: u64,
    pub malformed: u64,
    pub truncated: u64,
    pub open: u64,
    /// Block devices and network interfaces left out of samples past the per-container caps
    /// (summed over reads: a container with 300 devices adds 44 each tick).
    pub dropped_devices: u64,
    pub dropped_interfaces: u64,
}

impl ReadErrorCounts {
    /// Counts one read error by its kind.
    pub fn count(&mut self, e: &ReadError) {
        match &e.kind {
            ReadErrorKind::Io(_) => self.io += 1,
            ReadErrorKind::Parse(p) if p.kind == ErrorKind::Truncated => self.truncated += 1,
            ReadErrorKind::Parse(_) => self.malformed += 1,
        }
    }
}
