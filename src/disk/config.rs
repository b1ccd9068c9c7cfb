//! The disk thread's settings: where the host's files are, the cadence and the CPU budget,
//! from the daemon's flags (`crate::config::DiskArgs`) or the defaults the commands use.

use std::path::PathBuf;
use std::time::Duration;

use super::logs;

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
            cpu_budget: 0.05,
            kubelet_root: PathBuf::from(logs::KUBELET_ROOT),
            pod_logs_dir: PathBuf::from(logs::POD_LOGS_DIR),
        }
    }
}
