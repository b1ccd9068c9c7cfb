//! Disk usage flags: how old a container's figures may get, and the disk thread's CPU share.

use std::time::Duration;

use clap::Args;

use super::values::{DurationOrOff, parse_duration, parse_duration_or_off, parse_share};

/// Disk usage: each container's writable layer and logs, each pod's ephemeral storage,
/// measured as `du` does in a thread of its own.
#[derive(Debug, Clone, Args)]
pub struct DiskArgs {
    /// How old a container's disk usage may get while it is working: a container whose CPU
    /// time moved since its layer was last measured is measured again this long after (as
    /// cAdvisor's one minute); one whose last walk was small (512 entries at most) after a
    /// sixth of it (at least 1 s) while the disk thread uses under a tenth of its budget.
    /// `off` turns disk usage off (nothing is walked).
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_DISK_INTERVAL",
        default_value = "1m",
        value_parser = parse_duration_or_off,
        value_name = "DURATION"
    )]
    pub disk_interval: DurationOrOff,

    /// How old a container's disk usage may get while it is idle: every container is measured
    /// at least this often, for what is written from outside it (`docker cp`, the host, a log
    /// rotation). A container that used no CPU cannot have written otherwise.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_DISK_IDLE_INTERVAL",
        default_value = "10m",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub disk_idle_interval: Duration,

    /// The share of one CPU the disk thread may use, as `2%` or `0.02`. Walks are cut into
    /// slices of a few milliseconds with pauses between them to keep within it; on a host with
    /// more files than that allows in `--disk-interval`, usage gets older instead
    /// (`container_exporter_disk_lag_seconds` says by how much). A small container's write
    /// shows as soon at 1 % as at 10 %: the budget sets how often the largest layers are
    /// walked (2 %: about 10,000 entries a second, a layer of half a million files a minute).
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_DISK_CPU_BUDGET",
        default_value = "2%",
        value_parser = parse_share,
        value_name = "SHARE"
    )]
    pub disk_cpu_budget: f64,
}
