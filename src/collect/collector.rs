//! One collection tick over every tracked container: the [`Collector`] brings the tracked
//! set in line with what discovery finds (a container recreated under the same id, told apart
//! by its directory's inode, starts afresh), reads each container that still has processes,
//! and hands out each departed container's final sample once ([`Collector::take_departed`]),
//! so outputs show the last seconds of every container, even one that lived less than an
//! interval.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::budget::FdBudget;
use super::state::ContainerState;
use super::tracked::{ReadErrorCounts, Tracked};
use crate::cgroup::{CgroupReader, Gone, Layout, NetSource, OpenError, ProcRoot, ReadError};
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
    containers: HashMap<String, Tracked>,
    /// Found but not opened (an error other than "gone"): tried again at every tick. Bounded
    /// by the cgroups that exist: a rescan that no longer finds one drops it.
    unopened: HashMap<String, Found>,
    departed: Vec<ContainerState>,
    buf: Vec<u8>,
    pub errors: ReadErrorCounts,
    /// Containers whose end was seen, each counted once however it was noticed: a rescan or
    /// inotify that no longer finds its directory, a read that finds it gone, a new
    /// directory under the same id.
    pub removals: u64,
    /// The read errors since the last [`take_errors`](Self::take_errors).
    tick_errors: Vec<ReadError>,
    fds: FdBudget,
    limits_every: Duration,
}

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
            errors: ReadErrorCounts::default(),
            removals: 0,
            tick_errors: Vec::new(),
            fds: FdBudget::new(),
            limits_every: LIMITS_EVERY,
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
                let old = o.insert(Tracked::new(f, reader));
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
                v.insert(Tracked::new(f, reader));
                changes.added += 1;
            }
        }
        self.refresh(&id);
    }

    /// Stops tracking a container whose cgroup is gone; its last sample departs unless it
    /// already did. Returns whether it was tracked.
    pub fn untrack(&mut self, id: &str) -> bool {
        match self.containers.remove(id) {
            Some(t) => {
                self.removals += 1;
                self.fds.closed(&t.reader);
                if !t.exited && t.state.current_at.is_some() && t.has_run() {
                    self.departed.push(t.state);
                }
                true
            }
            None => false,
        }
    }

    /// Reads one container now (its `cgroup.events` changed). When its last process has
    /// left, this is its final sample: it departs, its network descriptor is closed, and it
    /// is no longer read until it has processes again. Returns `populated`, if known.
    pub fn refresh(&mut self, id: &str) -> Option<bool> {
        let t = self.containers.get_mut(id)?;
        t.retry_missing(&self.layout, Instant::now());
        t.reader.events_changed();
        let result = t.read(
            &self.proc_root,
            &mut self.buf,
            &mut self.tick_errors,
            &mut self.errors,
        );
        if result.is_err() {
            self.untrack(id);
            return None;
        }
        let t = self.containers.get_mut(id)?;
        let populated = t.state.current.populated;
        if t.observe() {
            self.departed.push(t.state.clone());
        }
        populated
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
        let now = Instant::now();
        for (id, t) in self.containers.iter_mut() {
            t.retry_missing(&self.layout, now);
            if t.exited {
                continue;
            }
            let result = t.read(
                &self.proc_root,
                &mut self.buf,
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
                Ok(()) => {}
                Err(Gone) => gone.push(id.clone()),
            }
        }
        for id in gone {
            self.untrack(&id);
        }
        self.fds.balance(&mut self.containers);
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
