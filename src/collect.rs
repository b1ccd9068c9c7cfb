//! The tracked containers and one collection tick over all of them.
//!
//! A [`Collector`] owns a [`CgroupReader`] per container (its files kept open) and the last
//! two samples of each, so rates like `container.cpu.usage` can be computed. Identity is the
//! container id *and* its cgroup directory's inode: a container recreated under the same id
//! gets a fresh entry (its counters restart), never a negative or huge rate.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::cgroup::{CgroupReader, CgroupSample, Gone, Layout, OpenError, ProcRoot, ReadError};
use crate::discovery::{self, Found, Runtime};
use crate::metrics::{self, Context, Sink};

/// One tracked container.
#[derive(Debug)]
pub struct Container {
    pub id: String,
    pub runtime: Runtime,
    pub pod_uid: Option<String>,
    /// Path of the cgroup relative to the hierarchy mounts.
    pub rel: PathBuf,
    /// When the cgroup directory was created: the counters' start time.
    pub created: SystemTime,
    reader: CgroupReader,
    current: CgroupSample,
    current_at: Option<Instant>,
    previous: CgroupSample,
    previous_at: Option<Instant>,
}

impl Container {
    pub fn inode(&self) -> u64 {
        self.reader.inode
    }

    /// The latest sample, if one was read.
    pub fn sample(&self) -> Option<&CgroupSample> {
        self.current_at.map(|_| &self.current)
    }

    pub fn reader(&self) -> &CgroupReader {
        &self.reader
    }

    /// The latest sample's data points (nothing before the first read).
    pub fn emit(&self, now: SystemTime, sink: &mut dyn Sink) {
        let Some(at) = self.current_at else { return };
        let previous = self
            .previous_at
            .map(|p| (&self.previous, at.duration_since(p).as_secs_f64()));
        let uptime = now
            .duration_since(self.created)
            .ok()
            .map(|d| d.as_secs_f64());
        metrics::emit(&self.current, &Context { previous, uptime }, sink);
    }
}

/// What one discovery pass changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DiscoveryChanges {
    pub added: usize,
    pub removed: usize,
    /// Containers seen in the tree whose files could not be opened (the error is logged).
    pub failed: Vec<String>,
}

/// Counts of what went wrong while reading, by kind (see `ReadErrorKind::label`).
#[derive(Debug, Default, Clone)]
pub struct ReadErrorCounts {
    pub io: u64,
    pub malformed: u64,
    pub truncated: u64,
}

pub struct Collector {
    layout: Layout,
    proc_root: ProcRoot,
    containers: HashMap<String, Container>,
    buf: Vec<u8>,
    pub errors: ReadErrorCounts,
    /// The last few error messages, for logs and `check` (bounded).
    pub last_errors: Vec<String>,
}

const KEEP_ERRORS: usize = 16;

impl Collector {
    pub fn new(layout: Layout, proc_root: ProcRoot) -> Collector {
        Collector {
            layout,
            proc_root,
            containers: HashMap::new(),
            buf: vec![0; 64 * 1024],
            errors: ReadErrorCounts::default(),
            last_errors: Vec::new(),
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

    /// Tracks exactly the containers in `found`: new ones are opened, vanished ones (or a
    /// reused id whose directory has a new inode) are dropped, closing their files.
    pub fn sync(&mut self, found: Vec<Found>) -> DiscoveryChanges {
        let mut changes = DiscoveryChanges::default();
        let mut seen = std::collections::HashSet::with_capacity(found.len());
        for f in found {
            seen.insert(f.id.clone());
            self.track(f, &mut changes);
        }
        let before = self.containers.len();
        self.containers.retain(|id, _| seen.contains(id));
        changes.removed += before - self.containers.len();
        changes
    }

    /// Starts (or restarts, on a new inode) tracking one container.
    pub fn track(&mut self, f: Found, changes: &mut DiscoveryChanges) {
        let reader = match CgroupReader::open(&self.layout, &f.rel) {
            Ok(r) => r,
            Err(OpenError::Gone) => return,
            Err(e) => {
                self.note_error(e.to_string());
                changes.failed.push(f.id);
                return;
            }
        };
        match self.containers.entry(f.id.clone()) {
            Entry::Occupied(mut o) if o.get().inode() != reader.inode => {
                o.insert(Container::new(f, reader));
                changes.added += 1;
                changes.removed += 1;
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(v) => {
                v.insert(Container::new(f, reader));
                changes.added += 1;
            }
        }
    }

    /// One tick: re-reads every tracked container. Containers whose cgroup is gone are
    /// dropped (and returned), closing their files.
    pub fn collect(&mut self) -> Vec<Container> {
        let mut gone = Vec::new();
        let mut new_errors = Vec::new();
        for (id, c) in self.containers.iter_mut() {
            std::mem::swap(&mut c.current, &mut c.previous);
            c.previous_at = c.current_at;
            let result = c.reader.read(
                &self.proc_root,
                &mut self.buf,
                &mut c.current,
                &mut |e: ReadError| new_errors.push(e),
            );
            match result {
                Ok(()) => c.current_at = Some(Instant::now()),
                Err(Gone) => {
                    // Keep the last complete sample as the container's final one.
                    std::mem::swap(&mut c.current, &mut c.previous);
                    c.current_at = c.previous_at.take();
                    gone.push(id.clone());
                }
            }
        }
        for e in new_errors {
            match e.kind.label() {
                "io" => self.errors.io += 1,
                "truncated" => self.errors.truncated += 1,
                _ => self.errors.malformed += 1,
            }
            self.note_error(e.to_string());
        }
        gone.into_iter()
            .filter_map(|id| self.containers.remove(&id))
            .collect()
    }

    fn note_error(&mut self, message: String) {
        if self.last_errors.len() == KEEP_ERRORS {
            self.last_errors.remove(0);
        }
        self.last_errors.push(message);
    }

    pub fn containers(&self) -> impl Iterator<Item = &Container> {
        self.containers.values()
    }

    pub fn len(&self) -> usize {
        self.containers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
    }
}

impl Container {
    fn new(f: Found, reader: CgroupReader) -> Container {
        let (secs, nanos) = reader.created;
        let created = if secs >= 0 {
            SystemTime::UNIX_EPOCH + Duration::new(secs as u64, nanos.clamp(0, 999_999_999) as u32)
        } else {
            SystemTime::now()
        };
        Container {
            id: f.id,
            runtime: f.runtime,
            pod_uid: f.pod_uid,
            rel: f.rel,
            created,
            reader,
            current: CgroupSample::default(),
            current_at: None,
            previous: CgroupSample::default(),
            previous_at: None,
        }
    }
}
