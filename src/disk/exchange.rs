//! What the disk thread is given and gives back: its settings ([`DiskConfig`]), the roster in
//! ([`RosterItem`]), the latest figures out ([`DiskSample`], in [`Results`]), and its counters
//! for the self-metrics ([`DiskStats`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::walk::{FsStat, Usage};
use crate::discovery::Kind;
use crate::metadata::{ContainerMeta, PodMeta};

/// The disk thread's settings (from the daemon's flags).
#[derive(Debug, Clone)]
pub struct DiskConfig {
    /// Where the host's `/` is (`--host-root`): paths the runtimes give (layers, logs) are
    /// host paths, read below this.
    pub host_root: PathBuf,
    /// The host's procfs (`--proc-root`).
    pub proc_root: PathBuf,
    /// A container that used CPU since its last walk is walked again this long after it.
    pub interval: Duration,
    /// Every container is walked at least this often (writes from outside it).
    pub idle_interval: Duration,
    /// Share of one CPU the disk thread may use (0.02 = 2 %).
    pub cpu_budget: f64,
    /// The kubelet's root (`/var/lib/kubelet`): pods' `emptyDir` volumes.
    pub kubelet_root: PathBuf,
    /// The kubelet's pod log directory (`/var/log/pods`).
    pub pod_logs_dir: PathBuf,
}

impl DiskConfig {
    /// The daemon's settings; `None` when disk usage is off (`--disk-interval off`).
    pub fn from_args(
        host: &crate::config::HostArgs,
        disk: &crate::config::DiskArgs,
    ) -> Option<DiskConfig> {
        Some(DiskConfig {
            interval: disk.disk_interval.0?,
            idle_interval: disk.disk_idle_interval,
            cpu_budget: disk.disk_cpu_budget,
            ..DiskConfig::for_host(host)
        })
    }

    /// How long after its last walk a cheap container (a small layer) that used CPU is walked
    /// again while the disk thread has spare: a sixth of the interval, at least a second
    /// (the schedule's "faster where it is cheap").
    pub fn fast_interval(&self) -> Duration {
        (self.interval / 6)
            .max(Duration::from_secs(1))
            .min(self.interval)
    }

    /// The paths of `host`, the default cadence and budget.
    pub fn for_host(host: &crate::config::HostArgs) -> DiskConfig {
        DiskConfig {
            host_root: host.host_root.clone(),
            proc_root: host.proc_root.clone(),
            kubelet_root: host.kubelet_root.clone(),
            pod_logs_dir: host.pod_logs_dir.clone(),
            ..DiskConfig::default()
        }
    }
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig {
            host_root: PathBuf::from("/"),
            proc_root: PathBuf::from("/proc"),
            interval: Duration::from_secs(60),
            idle_interval: Duration::from_secs(600),
            cpu_budget: 0.02,
            // The kubelet's defaults (`--root-dir`, `podLogsDir`).
            kubelet_root: PathBuf::from("/var/lib/kubelet"),
            pod_logs_dir: PathBuf::from("/var/log/pods"),
        }
    }
}

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
    /// Containers whose root names an upper directory no runtime made (gauge).
    pub layers_untrusted: AtomicU64,
    /// Looks for a container's layer, by how they were answered: Docker's record, a read of
    /// the process's mountinfo, or its mount namespace alone (the host's: nothing to read).
    pub lookups_runtime: AtomicU64,
    pub lookups_mountinfo: AtomicU64,
    pub lookups_host_namespace: AtomicU64,
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
