//! Disk usage of every container and Kubernetes pod: the container's writable layer, its log
//! files, and a pod's ephemeral storage (its containers' layers and logs plus its `emptyDir`
//! volumes), as `du` counts them, worked out off the collection tick in a thread of its own.
//!
//! - [`walk`]: `du` in slices, bounded in memory by depth.
//! - [`logs`]: where each runtime writes a container's logs, and the kubelet's directories.
//! - [`monitor`]: the thread: which container to walk when, within a CPU budget, and the
//!   shared results the collector reads at each tick.
//!
//! The collector never waits for any of it: at each tick it hands the disk thread the list of
//! what it tracks ([`RosterItem`]: id, cgroup, CPU time, names) and reads back the latest
//! figures ([`DiskSample`]) from a map bounded by the containers it tracks. The disk thread
//! opens nothing of the collector's.

pub mod logs;
pub mod monitor;
pub mod walk;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use monitor::{Disk, DiskStats, RosterItem};
pub use walk::{FsStat, Usage};

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
    /// Share of one CPU the disk thread may use (0.05 = 5 %).
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
    /// (see [`monitor`]'s "faster where it is cheap").
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
            cpu_budget: 0.05,
            kubelet_root: PathBuf::from(logs::KUBELET_ROOT),
            pod_logs_dir: PathBuf::from(logs::POD_LOGS_DIR),
        }
    }
}
