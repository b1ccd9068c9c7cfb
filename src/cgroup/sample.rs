//! Typed values read from one container's cgroup files at one instant.
//!
//! Every field is an `Option`: a value the kernel did not give (file absent, key absent,
//! controller not enabled, line malformed) stays `None` and is not exported, never a silent
//! zero. Limits the kernel reports as unlimited are `None` too. Units are the kernel's base
//! units converted once here: CPU in nanoseconds, memory in bytes, pressure in microseconds.
//! A sample is reused from tick to tick (`clear` keeps the vectors' capacity).

use std::fmt;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct CpuSample {
    /// Total CPU time (v2 `cpu.stat` usage_usec, v1 `cpuacct.usage`).
    pub usage_ns: Option<u64>,
    pub user_ns: Option<u64>,
    pub system_ns: Option<u64>,
    pub periods: Option<u64>,
    pub throttled_periods: Option<u64>,
    pub throttled_ns: Option<u64>,
    /// CFS burst (kernel 5.14+): periods in which the container used its burst allowance, and
    /// the time it ran beyond its quota in them.
    pub bursts: Option<u64>,
    pub burst_ns: Option<u64>,
    /// CFS quota and period in µs; quota `None` when unlimited.
    pub quota_us: Option<u64>,
    pub period_us: Option<u64>,
    /// The CPU weight as v1 `cpu.shares` (2–262144; v2 `cpu.weight` 1–10000 converted as
    /// cAdvisor converts it): what cAdvisor shows as `container_spec_cpu_shares`.
    pub shares: Option<u64>,
}

impl CpuSample {
    /// The CPU limit in CPUs (quota ÷ period), when there is one.
    pub fn limit_cpus(&self) -> Option<f64> {
        match (self.quota_us, self.period_us) {
            (Some(q), Some(p)) if p > 0 => Some(q as f64 / p as f64),
            _ => None,
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct MemorySample {
    pub usage: Option<u64>,
    /// The highest usage since the cgroup was created (v2 `memory.peak`, kernel 5.19+;
    /// v1 `memory.max_usage_in_bytes`): what a container that already exited used.
    pub peak: Option<u64>,
    pub limit: Option<u64>,
    pub anon: Option<u64>,
    pub file: Option<u64>,
    pub inactive_file: Option<u64>,
    pub swap: Option<u64>,
    pub oom_kills: Option<u64>,
    /// Times the whole cgroup was killed as one by the OOM killer (v2 `memory.events`
    /// oom_group_kill, kernel 5.17+; its members are counted in `oom_kills` too).
    pub oom_group_kills: Option<u64>,
    /// Page faults of the cgroup and its descendants (v1 `total_pgfault`, v2 `pgfault`).
    pub pgfault: Option<u64>,
    pub pgmajfault: Option<u64>,
    /// Page faults of the cgroup's own tasks only (v1 `pgfault`; v2, always hierarchical,
    /// `pgfault` again): cAdvisor's `scope="container"`.
    pub pgfault_own: Option<u64>,
    pub pgmajfault_own: Option<u64>,
    /// Page cache mapped into processes (v1 `total_mapped_file`, v2 `file_mapped`).
    pub mapped_file: Option<u64>,
    /// Active page cache (v1 `total_active_file`, v2 `active_file`).
    pub active_file: Option<u64>,
    /// Times usage hit the limit (v1 `memory.failcnt`; v2 has no such counter).
    pub failcnt: Option<u64>,
    /// v2 `memory.events` `high` (throttled above `memory.high`) and `max` (usage about to go
    /// over `memory.max`).
    pub events_high: Option<u64>,
    pub events_max: Option<u64>,
}

impl MemorySample {
    /// Usage minus inactive file cache, floored at zero (what the kubelet evicts on). Absent
    /// unless both parts were read: without `memory.stat` (unreadable, malformed, cut before
    /// `inactive_file`) usage alone would pass for the working set, overstating it by the whole
    /// page cache.
    pub fn working_set(&self) -> Option<u64> {
        Some(self.usage?.saturating_sub(self.inactive_file?))
    }

    pub fn available(&self) -> Option<u64> {
        Some(self.limit?.saturating_sub(self.working_set()?))
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct PidsSample {
    pub current: Option<u64>,
    pub limit: Option<u64>,
}

/// A limit as the kernel wrote it: a value, or its "no limit" (`max`, v1's `-1` or the
/// page-rounded huge value): a single-value file's content.
pub use crate::host::text::Single as Limit;

/// The limits as read, unlimited included, for the cAdvisor page, which shows "no limit" as 0
/// where the OpenTelemetry metrics leave the point out (`None` here: the file was not read).
/// Read with the limits, and kept between their reads.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct SpecSample {
    /// v2 `memory.max`, v1 `memory.limit_in_bytes`.
    pub memory_limit: Option<Limit>,
    /// v2 `memory.min`, v1 `memory.soft_limit_in_bytes`: cAdvisor's reservation.
    pub memory_reservation: Option<Limit>,
    /// v2 `memory.swap.max` (swap alone), v1 `memory.memsw.limit_in_bytes` (memory and swap
    /// together): cAdvisor's swap limit, file for file.
    pub memory_swap_limit: Option<Limit>,
    /// `pids.max`.
    pub pids_limit: Option<Limit>,
}

/// Block IO of one device.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IoDevice {
    pub major: u32,
    pub minor: u32,
    pub read_bytes: Option<u64>,
    pub write_bytes: Option<u64>,
    pub read_ops: Option<u64>,
    pub write_ops: Option<u64>,
}

/// Pressure stall totals (µs) of one resource.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Psi {
    pub some_us: Option<u64>,
    pub full_us: Option<u64>,
}

/// An interface name held inline (IFNAMSIZ is 16 with the NUL), so a sample of a
/// container's interfaces allocates nothing after the first tick.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IfName {
    len: u8,
    bytes: [u8; 15],
}

impl IfName {
    /// Longer names (impossible from a real kernel) are cut; bytes that are not UTF-8
    /// are replaced when shown. The `net/dev` parser never passes such names, nor names with
    /// control bytes.
    pub fn new(name: &[u8]) -> IfName {
        let len = name.len().min(15);
        let mut bytes = [0u8; 15];
        bytes[..len].copy_from_slice(&name[..len]);
        IfName {
            len: len as u8,
            bytes,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Network counters of one interface in the container's network namespace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetIface {
    pub name: IfName,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Everything read from one container in one tick.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CgroupSample {
    pub cpu: CpuSample,
    pub memory: MemorySample,
    pub pids: PidsSample,
    pub spec: SpecSample,
    pub io: Vec<IoDevice>,
    pub cpu_pressure: Option<Psi>,
    pub memory_pressure: Option<Psi>,
    pub io_pressure: Option<Psi>,
    /// Empty when the container shares the host's network namespace (its counters would be
    /// the host's) or no process could be found: a namespace of its own always has `lo`.
    pub net: Vec<NetIface>,
    /// `cgroup.events` populated: false once the last process has left.
    pub populated: Option<bool>,
    /// Devices left out of `io` because the file listed more than
    /// `parse::MAX_DEVICES` (counted once per file that lists them).
    pub io_dropped: u32,
    /// Interfaces left out of `net`: more than `parse::MAX_INTERFACES`,
    /// or a name that cannot be shown as it is (control bytes, not UTF-8).
    pub net_dropped: u32,
}

impl CgroupSample {
    /// Forget every value but keep allocations for the next read.
    pub fn clear(&mut self) {
        let mut io = std::mem::take(&mut self.io);
        let mut net = std::mem::take(&mut self.net);
        io.clear();
        net.clear();
        *self = CgroupSample {
            io,
            net,
            ..CgroupSample::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_set_needs_both_parts() {
        // Defect 10b: without memory.stat, working set was reported equal to usage.
        let m = MemorySample {
            usage: Some(100),
            limit: Some(1000),
            ..MemorySample::default()
        };
        assert_eq!(m.working_set(), None);
        assert_eq!(m.available(), None);
        let m = MemorySample {
            inactive_file: Some(30),
            ..m
        };
        assert_eq!(m.working_set(), Some(70));
        assert_eq!(m.available(), Some(930));
        let m = MemorySample { usage: None, ..m };
        assert_eq!(m.working_set(), None);
        // More inactive cache than usage (the two files are read at different instants).
        let m = MemorySample {
            usage: Some(10),
            inactive_file: Some(30),
            ..MemorySample::default()
        };
        assert_eq!(m.working_set(), Some(0));
    }
}
