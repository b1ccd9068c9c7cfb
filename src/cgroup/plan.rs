//! The files read from each container's cgroup, one row per file: where it lives, on which
//! layouts, how often it must be read, and how its bytes become fields of the sample. The
//! reader opens, keeps and re-reads what this table says; tests and benchmarks take their
//! file lists from it too.
//!
//! To read one more cgroup file: a row in [`PLAN`] whose parser fills fields of
//! [`CgroupSample`] (`single!` for a one-value file, else a function of a few lines over
//! [`parse::flat_keyed`] or [`parse::single`]), and, if a metric shows them, its row in
//! `metrics.rs`. The row is all the reader needs: a file whose [`Cadence`] skips it at some
//! reads is read when due, and in between its last content is parsed again, so its fields keep
//! their values (see [`Cadence::kept`]).

use super::layout::{Layout, LayoutKind};
use super::parse::{self, BlkioKind, ParseError, Single};
use super::sample::{CgroupSample, Limit, Psi};
use std::path::Path;

/// The hierarchies: each is named as its field of [`Layout`], and so is the directory of its
/// files in `testdata/` captures (`cpu/cpu.stat`).
macro_rules! hierarchies {
    ($($hier:ident $field:ident),*) => {
        /// Which mount a file lives in.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Hier { $($hier),* }

        impl Hier {
            pub const ALL: [Hier; 6] = [$(Hier::$hier),*];

            /// Its mount in `layout`, if the host has it.
            pub fn mount(self, layout: &Layout) -> Option<&Path> {
                match self { $(Hier::$hier => layout.$field.as_deref()),* }
            }

            /// The directory of a v1 controller's files in `testdata/` captures.
            pub fn dir(self) -> &'static str {
                match self { $(Hier::$hier => stringify!($field)),* }
            }
        }
    };
}

hierarchies!(Unified unified, Cpu cpu, Cpuacct cpuacct, Memory memory, Blkio blkio, Pids pids);

/// Where a row applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layouts {
    /// Pure cgroup v2.
    V2,
    /// Hybrid and pure v1 (its unified rows are read where a cgroup2 is mounted).
    V1,
}

/// How often a file must be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// At every read.
    Tick,
    /// A limit: with the limits (every `OpenOptions::limits_every`, or at once when the
    /// runtime says they changed).
    Limit,
    /// `cgroup.events`: at every read, unless an inotify watch reports each change of it.
    Events,
    /// v1 `cpu.stat`: at every read under a CFS quota (its counters move only then), else
    /// with the limits.
    UnderQuota,
    /// v1 `memory.failcnt`: at every read under a memory limit, else with the limits (without
    /// one it cannot move: `docs/performance.md`).
    UnderMemoryLimit,
    /// v1 blkio: at every read once it accounts a device (it lists one only after some
    /// cgroup had a throttle rule on it), else with the limits.
    OnceCounting,
    /// v2 `memory.swap.current`: at every read, but with the limits while the container may
    /// not swap (`memory.swap.max` 0) and uses none (then it cannot move:
    /// `docs/performance.md`).
    UnlessSwapOff,
}

impl Cadence {
    /// Whether a file of this cadence, at a read that skips it, stands in with its content as
    /// last read (its fields keep their values). v1 blkio is skipped only while it accounts
    /// nothing, so it has nothing to keep.
    pub fn kept(self) -> bool {
        match self {
            Cadence::Limit
            | Cadence::Events
            | Cadence::UnderQuota
            | Cadence::UnderMemoryLimit
            | Cadence::UnlessSwapOff => true,
            Cadence::Tick | Cadence::OnceCounting => false,
        }
    }
}

/// What the parsers of one read leave for after the last file: v1 `cpuacct.stat`'s USER_HZ
/// ticks, to split the exact `cpuacct.usage` (see [`finish`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Partial {
    v1_ticks: (Option<u64>, Option<u64>),
}

/// Parses one file's bytes into the sample.
pub type Parser = fn(&[u8], &mut CgroupSample, &mut Partial) -> Result<(), ParseError>;

/// One file of the plan.
#[derive(Debug)]
pub struct FileDef {
    pub hier: Hier,
    pub name: &'static str,
    pub layouts: Layouts,
    pub cadence: Cadence,
    /// CPU time of v1's `cpuacct`, read only where the unified `cpu.stat` (the exact split)
    /// is not there.
    pub cpu_fallback: bool,
    pub parse: Parser,
}

impl FileDef {
    /// The unified hierarchy's `cpu.stat`, which makes the `cpu_fallback` rows unneeded.
    pub fn exact_cpu(&self) -> bool {
        self.hier == Hier::Unified && self.name == "cpu.stat"
    }
}

/// v1 reports "no limit" as the largest page-aligned page-counter value
/// (`PAGE_COUNTER_MAX * PAGE_SIZE`, 0x7FFFFFFFFFFFF000 on 4 KiB pages); anything from
/// 2^62 up is no real limit on any machine.
const V1_UNLIMITED: u64 = 1 << 62;

/// A v1 memory limit: its page-rounded huge value means none.
fn v1_limit(s: Single) -> Limit {
    match s {
        Single::Value(v) if v < V1_UNLIMITED => Limit::Value(v),
        _ => Limit::Unlimited,
    }
}

/// v2 `cpu.weight` (1–10000) as v1 `cpu.shares` (2–262144), the inverse of the runtimes'
/// shares-to-weight mapping, as cAdvisor converts it for `container_spec_cpu_shares`.
pub fn weight_to_shares(weight: u64) -> Option<u64> {
    (1..=10_000)
        .contains(&weight)
        .then(|| 2 + (weight - 1) * 262_142 / 9_999)
}

fn psi(buf: &[u8], slot: &mut Option<Psi>) -> Result<(), ParseError> {
    let mut p = Psi::default();
    let r = parse::pressure(buf, &mut p);
    if p.some_us.is_some() || p.full_us.is_some() {
        *slot = Some(p);
    }
    r
}

fn cpu_stat_v2(buf: &[u8], out: &mut CgroupSample, _: &mut Partial) -> Result<(), ParseError> {
    let cpu = &mut out.cpu;
    parse::flat_keyed(buf, |k, v| match k {
        b"usage_usec" => cpu.usage_ns = Some(v.saturating_mul(1000)),
        b"user_usec" => cpu.user_ns = Some(v.saturating_mul(1000)),
        b"system_usec" => cpu.system_ns = Some(v.saturating_mul(1000)),
        b"nr_periods" => cpu.periods = Some(v),
        b"nr_throttled" => cpu.throttled_periods = Some(v),
        b"throttled_usec" => cpu.throttled_ns = Some(v.saturating_mul(1000)),
        b"nr_bursts" => cpu.bursts = Some(v),
        b"burst_usec" => cpu.burst_ns = Some(v.saturating_mul(1000)),
        _ => {}
    })
}

fn cpu_max(buf: &[u8], out: &mut CgroupSample, _: &mut Partial) -> Result<(), ParseError> {
    let (quota, period) = parse::cpu_max(buf)?;
    out.cpu.quota_us = quota.value();
    out.cpu.period_us = Some(period);
    Ok(())
}

fn cpu_weight(buf: &[u8], out: &mut CgroupSample, _: &mut Partial) -> Result<(), ParseError> {
    let weight = parse::single(buf)?.value();
    out.cpu.shares = weight.and_then(weight_to_shares);
    match (weight, out.cpu.shares) {
        (Some(_), None) => Err(ParseError::malformed(1, "cpu.weight is outside 1-10000")),
        _ => Ok(()),
    }
}

fn memory_stat_v2(buf: &[u8], out: &mut CgroupSample, _: &mut Partial) -> Result<(), ParseError> {
    let mem = &mut out.memory;
    // Always hierarchical: the cgroup's own faults are these too.
    parse::flat_keyed(buf, |k, v| match k {
        b"anon" => mem.anon = Some(v),
        b"file" => mem.file = Some(v),
        b"active_file" => mem.active_file = Some(v),
        b"inactive_file" => mem.inactive_file = Some(v),
        b"file_mapped" => mem.mapped_file = Some(v),
        b"pgfault" => (mem.pgfault, mem.pgfault_own) = (Some(v), Some(v)),
        b"pgmajfault" => (mem.pgmajfault, mem.pgmajfault_own) = (Some(v), Some(v)),
        _ => {}
    })
}

/// v2 `memory.events` and v1 `memory.oom_control` (which has only `oom_kill` of these).
fn memory_events(buf: &[u8], out: &mut CgroupSample, _: &mut Partial) -> Result<(), ParseError> {
    let mem = &mut out.memory;
    parse::flat_keyed(buf, |k, v| match k {
        b"oom_kill" => mem.oom_kills = Some(v),
        b"oom_group_kill" => mem.oom_group_kills = Some(v),
        b"high" => mem.events_high = Some(v),
        b"max" => mem.events_max = Some(v),
        _ => {}
    })
}

fn io_stat(buf: &[u8], out: &mut CgroupSample, _: &mut Partial) -> Result<(), ParseError> {
    parse::io_stat(buf, &mut out.io, &mut out.io_dropped)
}

fn cgroup_events(buf: &[u8], out: &mut CgroupSample, _: &mut Partial) -> Result<(), ParseError> {
    let populated = &mut out.populated;
    parse::flat_keyed(buf, |k, v| {
        if k == b"populated" {
            *populated = Some(v != 0);
        }
    })
}

fn cpuacct_stat(buf: &[u8], _: &mut CgroupSample, partial: &mut Partial) -> Result<(), ParseError> {
    let ticks = &mut partial.v1_ticks;
    parse::flat_keyed(buf, |k, v| match k {
        b"user" => ticks.0 = Some(v),
        b"system" => ticks.1 = Some(v),
        _ => {}
    })
}

fn cpu_stat_v1(buf: &[u8], out: &mut CgroupSample, _: &mut Partial) -> Result<(), ParseError> {
    let cpu = &mut out.cpu;
    parse::flat_keyed(buf, |k, v| match k {
        b"nr_periods" => cpu.periods = Some(v),
        b"nr_throttled" => cpu.throttled_periods = Some(v),
        b"throttled_time" => cpu.throttled_ns = Some(v),
        b"nr_bursts" => cpu.bursts = Some(v),
        b"burst_time" => cpu.burst_ns = Some(v),
        _ => {}
    })
}

fn memory_stat_v1(buf: &[u8], out: &mut CgroupSample, _: &mut Partial) -> Result<(), ParseError> {
    let mem = &mut out.memory;
    parse::flat_keyed(buf, |k, v| match k {
        b"total_rss" => mem.anon = Some(v),
        b"total_cache" => mem.file = Some(v),
        b"total_active_file" => mem.active_file = Some(v),
        b"total_inactive_file" => mem.inactive_file = Some(v),
        b"total_mapped_file" => mem.mapped_file = Some(v),
        b"total_swap" => mem.swap = Some(v),
        b"total_pgfault" => mem.pgfault = Some(v),
        b"total_pgmajfault" => mem.pgmajfault = Some(v),
        b"pgfault" => mem.pgfault_own = Some(v),
        b"pgmajfault" => mem.pgmajfault_own = Some(v),
        _ => {}
    })
}

/// A single-value file into one field of the sample (`max` is `None`).
macro_rules! single {
    ($($field:ident).+) => {
        |b, out, _| {
            out$(.$field)+ = parse::single(b)?.value();
            Ok(())
        }
    };
}

/// A limit into its field of `spec`, as written or through `$limit` ([`v1_limit`], where v1's
/// huge value means none), and, for a limit the metrics show too, its value into that field of
/// the sample (`None` for no limit).
macro_rules! spec {
    ($field:ident $(, $limit:ident)? $(=> $($value:ident).+)?) => {
        |b, out, _| {
            let l = parse::single(b)?;
            $(let l = $limit(l);)?
            $(out$(.$value)+ = l.value();)?
            out.spec.$field = Some(l);
            Ok(())
        }
    };
}

/// A v1 blkio file of one counter into the sample's devices.
macro_rules! blkio {
    ($kind:ident) => {
        |b, out, _| parse::blkio(b, BlkioKind::$kind, &mut out.io, &mut out.io_dropped)
    };
}

/// A pressure file into its field of the sample.
macro_rules! pressure {
    ($field:ident) => {
        |b, out, _| psi(b, &mut out.$field)
    };
}

/// The plan from rows of `hierarchy "file" layouts cadence => parser;`. The `Cpuacct` rows are
/// the `cpu_fallback` ones.
macro_rules! plan {
    ($($hier:ident $name:literal $layouts:ident $cadence:ident => $parse:expr;)*) => {
        &[$(FileDef {
            hier: Hier::$hier,
            name: $name,
            layouts: Layouts::$layouts,
            cadence: Cadence::$cadence,
            cpu_fallback: matches!(Hier::$hier, Hier::Cpuacct),
            parse: $parse,
        }),*]
    };
}

/// Every file read, for both layout families, in the order they are read.
pub static PLAN: &[FileDef] = plan! {
    // Pure v2.
    Unified "cpu.stat"                    V2 Tick       => cpu_stat_v2;
    Unified "cpu.max"                     V2 Limit      => cpu_max;
    Unified "memory.current"              V2 Tick       => single!(memory.usage);
    Unified "memory.max"                  V2 Limit      => spec!(memory_limit => memory.limit);
    Unified "memory.stat"                 V2 Tick       => memory_stat_v2;
    Unified "memory.peak"                 V2 Tick       => single!(memory.peak);
    Unified "memory.events"               V2 Tick       => memory_events;
    Unified "memory.swap.current"         V2 UnlessSwapOff => single!(memory.swap);
    Unified "pids.current"                V2 Tick       => single!(pids.current);
    Unified "pids.max"                    V2 Limit      => spec!(pids_limit => pids.limit);
    Unified "io.stat"                     V2 Tick       => io_stat;
    Unified "cpu.pressure"                V2 Tick       => pressure!(cpu_pressure);
    Unified "memory.pressure"             V2 Tick       => pressure!(memory_pressure);
    Unified "io.pressure"                 V2 Tick       => pressure!(io_pressure);
    Unified "cgroup.events"               V2 Events     => cgroup_events;
    Unified "cpu.weight"                  V2 Limit      => cpu_weight;
    Unified "memory.min"                  V2 Limit      => spec!(memory_reservation);
    Unified "memory.swap.max"             V2 Limit      => spec!(memory_swap_limit);
    // Hybrid (the unified rows) and pure v1.
    Unified "cpu.stat"                    V1 Tick       => cpu_stat_v2;
    Unified "cpu.pressure"                V1 Tick       => pressure!(cpu_pressure);
    Unified "memory.pressure"             V1 Tick       => pressure!(memory_pressure);
    Unified "io.pressure"                 V1 Tick       => pressure!(io_pressure);
    Unified "cgroup.events"               V1 Events     => cgroup_events;
    Cpuacct "cpuacct.usage"               V1 Tick       => single!(cpu.usage_ns);
    Cpuacct "cpuacct.stat"                V1 Tick       => cpuacct_stat;
    Cpu "cpu.stat"                        V1 UnderQuota => cpu_stat_v1;
    Cpu "cpu.cfs_quota_us"                V1 Limit      => single!(cpu.quota_us);
    Cpu "cpu.cfs_period_us"               V1 Limit      => single!(cpu.period_us);
    Cpu "cpu.shares"                      V1 Limit      => single!(cpu.shares);
    Memory "memory.usage_in_bytes"        V1 Tick       => single!(memory.usage);
    Memory "memory.limit_in_bytes"        V1 Limit      => spec!(memory_limit, v1_limit => memory.limit);
    Memory "memory.stat"                  V1 Tick       => memory_stat_v1;
    Memory "memory.failcnt"               V1 UnderMemoryLimit => single!(memory.failcnt);
    Memory "memory.soft_limit_in_bytes"   V1 Limit      => spec!(memory_reservation, v1_limit);
    Memory "memory.memsw.limit_in_bytes"  V1 Limit      => spec!(memory_swap_limit, v1_limit);
    Memory "memory.max_usage_in_bytes"    V1 Tick       => single!(memory.peak);
    Memory "memory.oom_control"           V1 Tick       => memory_events;
    Pids "pids.current"                   V1 Tick       => single!(pids.current);
    Pids "pids.max"                       V1 Limit      => spec!(pids_limit => pids.limit);
    Blkio "blkio.throttle.io_service_bytes_recursive" V1 OnceCounting => blkio!(Bytes);
    Blkio "blkio.throttle.io_serviced_recursive" V1 OnceCounting => blkio!(Ops);
};

/// The rows of [`PLAN`] for a layout.
pub fn files(kind: LayoutKind) -> impl Iterator<Item = &'static FileDef> {
    files_of(PLAN, kind)
}

/// The rows of `plan` for a layout.
pub fn files_of(
    plan: &'static [FileDef],
    kind: LayoutKind,
) -> impl Iterator<Item = &'static FileDef> {
    let want = match kind {
        LayoutKind::V2 => Layouts::V2,
        LayoutKind::Hybrid | LayoutKind::V1 => Layouts::V1,
    };
    plan.iter().filter(move |f| f.layouts == want)
}

/// After the last file of a read: v1 `cpuacct.stat` is in USER_HZ ticks, so the exact
/// `cpuacct.usage` is split in its proportion, and user + system add up to the total.
pub fn finish(out: &mut CgroupSample, partial: Partial) {
    if let ((Some(user), Some(system)), Some(usage)) = (partial.v1_ticks, out.cpu.usage_ns) {
        let total = u128::from(user) + u128::from(system);
        let user_ns = (u128::from(usage) * u128::from(user))
            .checked_div(total)
            .map_or(0, |v| v as u64);
        out.cpu.user_ns = Some(user_ns);
        out.cpu.system_ns = Some(usage - user_ns);
    }
}

/// Parses a set of files (kernel file name, content) as the reader would, for fixtures,
/// fuzzing and parser benchmarks. `v1` selects the v1 rows for the names both families use
/// (`cpu.stat`, `memory.stat`); the unified hierarchy's `cpu.stat` on a hybrid host is
/// passed as `unified/cpu.stat`. Returns the problems by file name.
pub fn parse_files<'a>(
    v1: bool,
    files: &[(&'a str, &[u8])],
    out: &mut CgroupSample,
) -> Vec<(&'a str, ParseError)> {
    out.clear();
    let mut partial = Partial::default();
    let mut problems = Vec::new();
    let layouts = if v1 { Layouts::V1 } else { Layouts::V2 };
    for &(name, content) in files {
        let def = match name.strip_prefix("unified/") {
            Some(n) => PLAN
                .iter()
                .find(|f| f.layouts == Layouts::V1 && f.hier == Hier::Unified && f.name == n),
            None => PLAN.iter().find(|f| {
                f.layouts == layouts && f.name == name && !(v1 && f.hier == Hier::Unified)
            }),
        }
        .or_else(|| {
            // The unified files of a hybrid host by their bare name (pressure, events).
            PLAN.iter().find(|f| f.layouts == layouts && f.name == name)
        });
        let result = match def {
            Some(def) => (def.parse)(content, out, &mut partial),
            None => Err(ParseError::malformed(0, "not a file this exporter reads")),
        };
        if let Err(e) = result {
            problems.push((name, e));
        }
    }
    finish(out, partial);
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_file_and_layout() {
        for layouts in [Layouts::V2, Layouts::V1] {
            let mut seen: Vec<(Hier, &str)> = PLAN
                .iter()
                .filter(|f| f.layouts == layouts)
                .map(|f| (f.hier, f.name))
                .collect();
            let n = seen.len();
            seen.sort_by_key(|(h, n)| (h.dir(), *n));
            seen.dedup();
            assert_eq!(seen.len(), n, "{layouts:?}");
        }
        assert!(
            PLAN.iter()
                .filter(|f| f.cpu_fallback)
                .all(|f| f.hier == Hier::Cpuacct)
        );
    }
}
