//! The containers that ended, newest first, bounded in number: when each ended, why (its exit
//! as its final sample shows it), its final CPU time and memory peak, and who it was. A row
//! stays after the container, and its runtime's names, are gone.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use crate::collect::Described;
use crate::discovery::Runtime;
use crate::exit::Exit;
use crate::metadata::{ContainerMeta, PodMeta};

/// One run of a container that ended.
#[derive(Debug, Clone)]
pub struct EndedRow {
    pub id: String,
    pub runtime: Runtime,
    pub pod_uid: Option<String>,
    /// When the run started (its cgroup's creation): with `id`, which run this is.
    pub created: SystemTime,
    /// When its final sample was taken: the moment its last process left, or its cgroup went.
    pub ended: SystemTime,
    /// Why, when its runtime or the kernel said (see `crate::exit`).
    pub exit: Option<Exit>,
    /// Total CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// The kernel's `memory.peak` (v1 `max_usage_in_bytes`); without it, the highest working
    /// set in its history.
    pub memory_peak: Option<f64>,
    pub meta: Option<Arc<ContainerMeta>>,
    pub pod: Option<Arc<PodMeta>>,
    /// The tick it was first listed at.
    pub seq: u64,
}

impl EndedRow {
    /// The row of a final sample; `seen_peak`: the highest working set kept for it.
    pub fn new(d: &Described<'_>, now: SystemTime, seen_peak: Option<f32>, seq: u64) -> EndedRow {
        let s = d.state;
        let sample = s.sample();
        EndedRow {
            id: s.id.clone(),
            runtime: s.runtime,
            pod_uid: s.pod_uid.clone(),
            created: s.created,
            ended: s.sampled_at(now).unwrap_or(now),
            exit: s.exit().copied(),
            cpu_seconds: sample
                .and_then(|x| x.cpu.usage_ns)
                .map(|ns| ns as f64 / 1e9),
            memory_peak: sample
                .and_then(|x| x.memory.peak)
                .map(|p| p as f64)
                .or(seen_peak.map(f64::from)),
            meta: d.meta.clone(),
            pod: d.pod.clone(),
            seq,
        }
    }
}

/// The newest `capacity` ended runs.
pub struct Ended {
    capacity: usize,
    rows: VecDeque<EndedRow>,
}

impl Ended {
    pub fn new(capacity: usize) -> Ended {
        Ended {
            capacity,
            rows: VecDeque::new(),
        }
    }

    /// This run's row, if it is listed.
    pub fn run_mut(&mut self, id: &str, created: SystemTime) -> Option<&mut EndedRow> {
        (self.rows.iter_mut()).find(|r| r.id == id && r.created == created)
    }

    /// Lists a run (newest first); the oldest beyond the capacity leave.
    pub fn add(&mut self, row: EndedRow) {
        if self.capacity == 0 {
            return;
        }
        self.rows.push_front(row);
        self.rows.truncate(self.capacity);
    }

    /// Whether any run of `id` is listed.
    pub fn lists(&self, id: &str) -> bool {
        self.rows.iter().any(|r| r.id == id)
    }

    /// The rows, newest first.
    pub fn rows(&self) -> impl Iterator<Item = &EndedRow> {
        self.rows.iter()
    }

    /// The runs of `id`, newest first.
    pub fn runs<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a EndedRow> {
        self.rows.iter().filter(move |r| r.id == id)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}
