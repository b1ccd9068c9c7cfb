//! What the collector and the disk thread hand each other: the roster in ([`RosterItem`]),
//! the latest figures out ([`DiskSample`], in [`Results`]), and the thread's counters for the
//! self-metrics ([`DiskStats`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use super::walk::{FsStat, Usage};
use crate::discovery::Kind;
use crate::metadata::{ContainerMeta, PodMeta};

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

impl RosterItem {
    /// A Kubernetes pod sandbox: no figures of its own (its pod has them).
    pub fn is_sandbox(&self) -> bool {
        self.meta.as_deref().is_some_and(|m| m.sandbox)
    }
}

/// What the outputs show of one container's (or pod's) disk. Each part is `None` when it is
/// not known (not walked yet, not on overlay, unreadable): never a guess.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskSample {
    /// `container.filesystem.usage`: a container's writable layer; on a pod
    /// (`k8s.pod.filesystem.usage`), its ephemeral storage: every container's layer, the pod's
    /// logs and its `emptyDir` volumes. Bytes and inodes.
    pub usage: Option<Usage>,
    /// The writable layer(s) alone (`k8s.*.ephemeral_storage.usage{fs_type="rootfs"}`).
    pub rootfs: Option<Usage>,
    /// Log files (a container's, or every log of a pod's).
    pub logs: Option<Usage>,
    /// A pod's `emptyDir` volumes that are not memory-backed.
    pub empty_dir: Option<Usage>,
    /// Kubernetes container or pod: the ephemeral-storage parts are shown.
    pub kubernetes: bool,
    /// `statvfs` of the filesystem holding the layer.
    pub fs: Option<FsStat>,
    /// That filesystem's device as cAdvisor names it (`/dev/vda1`).
    pub device: Option<Arc<str>>,
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

/// The latest figures by container id or pod uid.
pub type SampleMap = HashMap<String, Arc<DiskSample>>;

/// Where the disk thread publishes: the map the collector reads (the thread holds its write
/// lock for one insert or removal at a time), or a map of the caller's own
/// (`measure_once`).
pub enum Results {
    Shared(Arc<RwLock<SampleMap>>),
    Local(SampleMap),
}

impl Results {
    /// Publishes `sample` as the figures of `id`, or takes its figures away (`None`). An
    /// unchanged sample is left as it is.
    pub fn put(&mut self, id: &str, sample: Option<DiskSample>) {
        let mut guard;
        let map = match self {
            Results::Shared(shared) => {
                guard = shared.write().unwrap_or_else(|e| e.into_inner());
                &mut *guard
            }
            Results::Local(map) => map,
        };
        match sample {
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
}
