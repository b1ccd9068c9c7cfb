//! The cAdvisor page's families: what a family is (its name and help, the metric of
//! [`METRICS`](crate::metrics::METRICS) it is made from, which points, which labels, which
//! conversion, which `# TYPE`), one row for each family the kubelet's `/metrics/cadvisor` writes
//! for a container or pod where the cgroup files hold it, the host's `machine_*` families, and
//! the README's table made from them. A new family is one row of `cadvisor_families!` (which
//! fills in the defaults); the page, its lines and the README's table follow.

use crate::cgroup::sample::{CgroupSample, Limit};
use crate::disk::DiskSample;
use crate::export::text::prom_type;
use crate::host::machine::Machine;
use crate::metrics::{Metric, Value, ns_to_s};

/// A family of the cAdvisor page, made from the points of one metric.
///
/// Rows with the same name next to each other are one family: their lines go under one
/// `# HELP`/`# TYPE` (the first row's), and their `fixed` labels tell them apart
/// (`container_memory_failures_total`).
pub struct CadvisorFamily {
    pub name: &'static str,
    pub help: &'static str,
    pub metric: Metric,
    pub select: Select,
    /// How each of the metric's attributes becomes cAdvisor's labels, in the order of
    /// [`MetricDef::attributes`](crate::metrics::MetricDef::attributes) ([`Label::Skip`] for
    /// the one `select` picks on).
    pub labels: &'static [Label],
    /// Labels cAdvisor always writes (`cpu="total"`), or that tell the rows of one family apart.
    pub fixed: &'static [(&'static str, &'static str)],
    pub conv: Conv,
    /// `# TYPE gauge` whatever the metric's instrument.
    pub gauge: bool,
    /// Written only for the samples of a cgroup with a CPU quota, as cAdvisor writes the CFS
    /// counters.
    pub under_quota: bool,
}

impl CadvisorFamily {
    /// Its `# TYPE`.
    pub fn prom_type(&self) -> &'static str {
        if self.gauge {
            "gauge"
        } else {
            prom_type(self.metric.def().instrument)
        }
    }

    /// A network family: on the page, a pod's lines carry its sandbox's identity.
    pub fn network(&self) -> bool {
        self.labels.iter().any(|l| matches!(l, Label::Interface))
    }
}

/// A host family of the cAdvisor page (`machine_*`): one line, no container labels.
pub struct MachineFamily {
    pub name: &'static str,
    pub help: &'static str,
    pub value: fn(&Machine) -> Option<u64>,
    /// Where it comes from, for the README.
    pub source: &'static str,
}

/// Which points of the metric a cAdvisor family shows.
pub enum Select {
    All,
    /// Those whose attribute at this index has this value.
    Attr(usize, &'static str),
    /// One point: the sum of all of them (cAdvisor's total CPU is user + system).
    Sum,
    /// A raw figure of the sample the metric is derived from, and where it comes from (for
    /// the README): cAdvisor's `container_spec_*` show the CFS quota and period in µs where
    /// the metric shows their quotient, and limits as 0 where the metric leaves out "no limit".
    Sample(fn(&CgroupSample) -> Option<Value>, &'static str),
    /// A figure of a container's disk sample, with cAdvisor's `device` label (the device of
    /// the filesystem holding the layer); containers only, as cAdvisor has none for a pod's
    /// own cgroup.
    Disk(fn(&DiskSample) -> Option<Value>),
}

/// How a metric attribute becomes labels of a cAdvisor family.
pub enum Label {
    /// Not written (the attribute `select` picks on).
    Skip,
    /// The value, under this name.
    Name(&'static str),
    /// The value with its first letter upper-case, under this name: blkio's operation names
    /// (`read` → `Read`).
    Title(&'static str),
    /// A network interface, as `interface`. The points of the interfaces cAdvisor leaves out
    /// (names starting with `lo`, `veth`, `docker` or `nerdctl`) are not written at all.
    Interface,
    /// A block device `MAJ:MIN`, as `device`: `/dev/<name>`, the name the kernel gives it in
    /// `/sys/dev/block/MAJ:MIN/uevent` (`MAJ:MIN` itself when it has none).
    Device,
    /// The same, and its numbers as `major` and `minor`.
    DeviceNumbers,
}

/// How a point's value becomes cAdvisor's.
pub enum Conv {
    Same,
    /// `now − value`, in seconds since the epoch: an uptime as a start time.
    StartTime,
    /// When the sample was taken, in whole seconds since the epoch (`container_last_seen`).
    LastSeen,
}

/// Interfaces cAdvisor leaves out of a container's network (by prefix, as it does): loopback,
/// and the host ends of veth pairs and bridges that show up in a host-network container.
pub const CADVISOR_IGNORED_INTERFACES: &[&str] = &["lo", "veth", "docker", "nerdctl"];

/// The host families of the cAdvisor page, read once at start.
pub static CADVISOR_MACHINE: &[MachineFamily] = &[
    MachineFamily {
        name: "machine_cpu_cores",
        help: "Number of logical CPU cores.",
        value: |m| m.cpu_cores,
        source: "logical CPUs online, `/sys/devices/system/cpu/online`",
    },
    MachineFamily {
        name: "machine_memory_bytes",
        help: "Amount of memory installed on the machine.",
        value: |m| m.memory_bytes,
        source: "`MemTotal` of the host's `/proc/meminfo`",
    },
];

const NONE: &[Label] = &[Label::Skip];
const NET: &[Label] = &[Label::Skip, Label::Interface];
const DISK: &[Label] = &[Label::Skip, Label::Device];
const BLKIO: &[Label] = &[Label::Title("operation"), Label::DeviceNumbers];

fn int_of(v: Option<u64>) -> Option<Value> {
    v.map(Value::Int)
}

fn zero_if_unlimited(l: Option<Limit>) -> Option<Value> {
    l.map(|l| Value::Int(l.or_zero()))
}

/// A row's optional part, or its default.
macro_rules! or_default {
    (, $default:expr) => {
        $default
    };
    ($value:expr, $default:expr) => {
        $value
    };
}

/// The table, one family a row: `"name" "help"`, then the metric, which of its points
/// ([`Select`]), their labels ([`Label`]s), and what differs from the defaults: `fixed`
/// labels (none), `conv` ([`Conv::Same`]), `gauge` (false: the metric's type), `under_quota`
/// (false).
macro_rules! cadvisor_families {
    ($(
        $name:literal $help:literal $metric:ident, $select:expr, $labels:expr
        $(, fixed $fixed:expr)? $(, conv $conv:expr)? $(, gauge $gauge:literal)?
        $(, under_quota $under_quota:literal)?;
    )*) => {
        /// The cAdvisor page, family by family: what the kubelet's `/metrics/cadvisor` writes
        /// for a container or pod, where the cgroup files hold it. The README's cAdvisor
        /// section says what differs from cAdvisor and what is left out, and why.
        /// `container_last_terminated_exitcode` is this exporter's own (cAdvisor has no exit
        /// status). The filesystem families (`container_fs_*` usage, limit and inodes) come
        /// from the disk thread.
        pub static CADVISOR: &[CadvisorFamily] = &[$(CadvisorFamily {
            name: $name,
            help: $help,
            metric: Metric::$metric,
            select: $select,
            labels: $labels,
            fixed: or_default!($($fixed)?, &[]),
            conv: or_default!($($conv)?, Conv::Same),
            gauge: or_default!($($gauge)?, false),
            under_quota: or_default!($($under_quota)?, false),
        }),*];
    };
}

cadvisor_families! {
    "container_cpu_usage_seconds_total" "Cumulative cpu time consumed in seconds."
        CpuTime, Select::Sum, NONE, fixed &[("cpu", "total")];
    "container_cpu_user_seconds_total" "Cumulative user cpu time consumed in seconds."
        CpuTime, Select::Attr(0, "user"), NONE;
    "container_cpu_system_seconds_total" "Cumulative system cpu time consumed in seconds."
        CpuTime, Select::Attr(0, "system"), NONE;
    "container_cpu_cfs_periods_total" "Number of elapsed enforcement period intervals."
        CpuPeriods, Select::All, &[], under_quota true;
    "container_cpu_cfs_throttled_periods_total" "Number of throttled period intervals."
        CpuThrottledPeriods, Select::All, &[], under_quota true;
    "container_cpu_cfs_throttled_seconds_total"
        "Total time duration the container has been throttled."
        CpuThrottledTime, Select::All, &[], under_quota true;
    "container_spec_cpu_quota" "CPU quota of the container."
        CpuLimit, Select::Sample(|s| s.cpu.quota_us.map(Value::Int),
            "`cpu.max` quota (µs); v1 `cpu.cfs_quota_us`"), &[];
    "container_spec_cpu_period" "CPU period of the container."
        CpuLimit, Select::Sample(|s| int_of(s.cpu.period_us),
            "`cpu.max` period (µs); v1 `cpu.cfs_period_us`"), &[];
    "container_memory_usage_bytes"
        "Current memory usage in bytes, including all memory regardless of when it was accessed."
        MemoryUsage, Select::All, &[];
    "container_memory_working_set_bytes" "Current working set in bytes."
        MemoryWorkingSet, Select::All, &[];
    "container_memory_rss" "Size of RSS in bytes."
        MemoryRss, Select::All, &[];
    "container_memory_cache" "Number of bytes of page cache memory."
        MemoryFile, Select::All, &[];
    "container_memory_swap" "Container swap usage in bytes."
        MemorySwap, Select::All, &[];
    "container_memory_max_usage_bytes" "Maximum memory usage recorded in bytes."
        MemoryPeak, Select::All, &[];
    "container_spec_memory_limit_bytes" "Memory limit for the container."
        MemoryLimit, Select::Sample(|s| zero_if_unlimited(s.spec.memory_limit),
            "`memory.max`; v1 `memory.limit_in_bytes`; 0 for none"), &[];
    "container_oom_events_total" "Count of out of memory events observed for the container."
        MemoryOomKills, Select::All, &[];
    "container_threads" "Number of threads running inside the container."
        PidCount, Select::All, &[];
    "container_threads_max"
        "Maximum number of threads allowed inside the container, infinity if value is zero."
        PidLimit, Select::Sample(|s| zero_if_unlimited(s.spec.pids_limit),
            "`pids.max`; 0 for none"), &[];
    "container_network_receive_bytes_total" "Cumulative count of bytes received."
        NetworkIo, Select::Attr(0, "receive"), NET;
    "container_network_transmit_bytes_total" "Cumulative count of bytes transmitted."
        NetworkIo, Select::Attr(0, "transmit"), NET;
    "container_network_receive_packets_total" "Cumulative count of packets received."
        NetworkPackets, Select::Attr(0, "receive"), NET;
    "container_network_transmit_packets_total" "Cumulative count of packets transmitted."
        NetworkPackets, Select::Attr(0, "transmit"), NET;
    "container_network_receive_errors_total"
        "Cumulative count of errors encountered while receiving."
        NetworkErrors, Select::Attr(0, "receive"), NET;
    "container_network_transmit_errors_total"
        "Cumulative count of errors encountered while transmitting."
        NetworkErrors, Select::Attr(0, "transmit"), NET;
    "container_network_receive_packets_dropped_total"
        "Cumulative count of packets dropped while receiving."
        NetworkDropped, Select::Attr(0, "receive"), NET;
    "container_network_transmit_packets_dropped_total"
        "Cumulative count of packets dropped while transmitting."
        NetworkDropped, Select::Attr(0, "transmit"), NET;
    "container_fs_reads_bytes_total" "Cumulative count of bytes read."
        DiskIo, Select::Attr(0, "read"), DISK;
    "container_fs_writes_bytes_total" "Cumulative count of bytes written."
        DiskIo, Select::Attr(0, "write"), DISK;
    "container_fs_reads_total" "Cumulative count of reads completed."
        DiskOperations, Select::Attr(0, "read"), DISK;
    "container_fs_writes_total" "Cumulative count of writes completed."
        DiskOperations, Select::Attr(0, "write"), DISK;
    "container_pressure_cpu_waiting_seconds_total"
        "Total time duration tasks in the container have waited due to CPU pressure."
        CpuPressure, Select::Attr(0, "some"), NONE;
    "container_pressure_cpu_stalled_seconds_total"
        "Total time duration no tasks in the container could make progress due to CPU congestion."
        CpuPressure, Select::Attr(0, "full"), NONE;
    "container_pressure_memory_waiting_seconds_total"
        "Total time duration tasks in the container have waited due to memory pressure."
        MemoryPressure, Select::Attr(0, "some"), NONE;
    "container_pressure_memory_stalled_seconds_total"
        "Total time duration no tasks in the container could make progress due to memory congestion."
        MemoryPressure, Select::Attr(0, "full"), NONE;
    "container_pressure_io_waiting_seconds_total"
        "Total time duration tasks in the container have waited due to IO pressure."
        IoPressure, Select::Attr(0, "some"), NONE;
    "container_pressure_io_stalled_seconds_total"
        "Total time duration no tasks in the container could make progress due to IO congestion."
        IoPressure, Select::Attr(0, "full"), NONE;
    "container_start_time_seconds" "Start time of the container since unix epoch in seconds."
        Uptime, Select::All, &[], conv Conv::StartTime;
    "container_last_seen" "Last time a container was seen by the exporter."
        Uptime, Select::All, &[], conv Conv::LastSeen;
    "container_spec_cpu_shares" "CPU share of the container."
        CpuLimit, Select::Sample(|s| int_of(s.cpu.shares),
            "`cpu.weight` as shares (2 + (weight − 1) × 262142 ÷ 9999); v1 `cpu.shares`"), &[];
    "container_spec_memory_reservation_limit_bytes" "Memory reservation limit for the container."
        MemoryLimit, Select::Sample(|s| zero_if_unlimited(s.spec.memory_reservation),
            "`memory.min`; v1 `memory.soft_limit_in_bytes`; 0 for none"), &[];
    "container_spec_memory_swap_limit_bytes" "Memory swap limit for the container."
        MemoryLimit, Select::Sample(|s| zero_if_unlimited(s.spec.memory_swap_limit),
            "`memory.swap.max` (swap alone); v1 `memory.memsw.limit_in_bytes` (memory and swap); 0 for none"),
            &[];
    "container_cpu_cfs_burst_periods_total" "Number of periods when burst occurs."
        CpuPeriods, Select::Sample(|s| int_of(s.cpu.bursts),
            "`cpu.stat` nr_bursts"), &[], under_quota true;
    "container_cpu_cfs_burst_seconds_total" "Total time duration the container has been bursted."
        CpuThrottledTime, Select::Sample(|s| s.cpu.burst_ns.map(ns_to_s),
            "`cpu.stat` burst_usec; v1 burst_time"), &[], under_quota true;
    "container_memory_mapped_file" "Size of memory mapped files in bytes."
        MemoryFile, Select::Sample(|s| int_of(s.memory.mapped_file),
            "`memory.stat` file_mapped; v1 total_mapped_file"), &[];
    "container_memory_total_active_file_bytes" "Current total active file in bytes."
        MemoryFile, Select::Sample(|s| int_of(s.memory.active_file),
            "`memory.stat` active_file; v1 total_active_file"), &[];
    "container_memory_total_inactive_file_bytes" "Current total inactive file in bytes."
        MemoryFile, Select::Sample(|s| int_of(s.memory.inactive_file),
            "`memory.stat` inactive_file; v1 total_inactive_file"), &[];
    // cAdvisor types it a counter, but a counter's name ends in `_total` (promtool says so):
    // a gauge here, which `rate()` takes the same.
    "container_memory_failcnt" "Number of memory usage hits limits."
        MemoryOomKills, Select::Sample(|s| int_of(s.memory.failcnt),
            "v1 `memory.failcnt` (none on v2)"), &[], gauge true;
    "container_memory_events_high_total"
        "Cumulative count of memory.high throttle events for the container."
        MemoryOomKills, Select::Sample(|s| int_of(s.memory.events_high),
            "`memory.events` high (v2 only)"), &[];
    "container_memory_events_max_total"
        "Cumulative count of memory.max limit hit events for the container."
        MemoryOomKills, Select::Sample(|s| int_of(s.memory.events_max),
            "`memory.events` max (v2 only)"), &[];
    // One family in four rows: the cgroup's own faults and its hierarchy's.
    "container_memory_failures_total" "Cumulative count of memory allocation failures."
        PagingFaults, Select::Sample(|s| int_of(s.memory.pgfault_own),
            "`memory.stat` pgfault; v1 pgfault"), &[],
            fixed &[("failure_type", "pgfault"), ("scope", "container")];
    "container_memory_failures_total" "Cumulative count of memory allocation failures."
        PagingFaults, Select::Sample(|s| int_of(s.memory.pgmajfault_own),
            "`memory.stat` pgmajfault; v1 pgmajfault"), &[],
            fixed &[("failure_type", "pgmajfault"), ("scope", "container")];
    "container_memory_failures_total" "Cumulative count of memory allocation failures."
        PagingFaults, Select::Sample(|s| int_of(s.memory.pgfault),
            "`memory.stat` pgfault; v1 total_pgfault"), &[],
            fixed &[("failure_type", "pgfault"), ("scope", "hierarchy")];
    "container_memory_failures_total" "Cumulative count of memory allocation failures."
        PagingFaults, Select::Sample(|s| int_of(s.memory.pgmajfault),
            "`memory.stat` pgmajfault; v1 total_pgmajfault"), &[],
            fixed &[("failure_type", "pgmajfault"), ("scope", "hierarchy")];
    "container_blkio_device_usage_total" "Blkio device bytes usage."
        DiskIo, Select::All, BLKIO;
    // Not cAdvisor's (it has none): named as kube-state-metrics names the last termination
    // (`kube_pod_container_status_last_terminated_exitcode`, `…_reason{reason}`), with that
    // `reason` label, on the container's final sample.
    "container_last_terminated_exitcode"
        "Exit status of a container that ended (on its final sample), with the reason (Completed, Error, OOMKilled), the run by the exporter's count and the run's restart count."
        ExitCode, Select::All, &[Label::Name("reason"), Label::Name("run"), Label::Name("restart_count")];
    // cAdvisor's usage is its `TotalUsageBytes`: the layer plus Docker's log directory.
    "container_fs_usage_bytes"
        "Number of bytes that are consumed by the container on this filesystem."
        FsUsage,
            Select::Disk(|d| d.rootfs.map(|r| Value::Int(r.bytes + d.logs.map_or(0, |l| l.bytes)))),
            &[];
    "container_fs_limit_bytes"
        "Number of bytes that can be consumed by the container on this filesystem."
        FsCapacity, Select::Disk(|d| d.rootfs.and(d.fs).map(|f| Value::Int(f.capacity))), &[];
    // cAdvisor's `Inodes` of a container is the inodes its layer uses.
    "container_fs_inodes_total" "Number of Inodes"
        FsInodesUsed, Select::Disk(|d| d.rootfs.map(|r| Value::Int(r.inodes))), &[];
    "container_fs_inodes_free" "Number of available Inodes"
        FsInodesFree, Select::Disk(|d| d.rootfs.and(d.fs).map(|f| Value::Int(f.inodes_free))), &[];
}

/// The README's cAdvisor page reference, generated from [`CADVISOR`] and
/// [`CADVISOR_MACHINE`].
pub fn cadvisor_markdown_table() -> String {
    let mut out =
        String::from("| family | type | labels besides the identity | from |\n|---|---|---|---|\n");
    for rows in CADVISOR.chunk_by(|a, b| a.name == b.name) {
        let f = &rows[0];
        let mut labels: Vec<String> = Vec::new();
        let mut from: Vec<String> = Vec::new();
        for r in rows {
            let fixed: Vec<String> = r
                .fixed
                .iter()
                .map(|(k, v)| format!("`{k}=\"{v}\"`"))
                .collect();
            let names = r.labels.iter().map(|l| match l {
                Label::Skip => &[],
                Label::Name(n) | Label::Title(n) => std::slice::from_ref(n),
                Label::Interface => &["interface"],
                Label::Device => &["device"],
                Label::DeviceNumbers => &["device", "major", "minor"],
            });
            // A filesystem family's `device` is the disk thread's.
            let disk = matches!(r.select, Select::Disk(_)).then_some(&["device"][..]);
            for n in names.chain(disk).flatten() {
                let n = format!("`{n}`");
                if !labels.contains(&n) {
                    labels.push(n);
                }
            }
            let def = r.metric.def();
            let what = match &r.select {
                Select::All => format!("`{}`", def.name),
                Select::Attr(at, v) => format!("`{}` {} = {v}", def.name, def.attributes[*at]),
                Select::Sum => format!("`{}`, summed", def.name),
                Select::Sample(_, source) => source.to_string(),
                Select::Disk(_) => format!(
                    "`{}` of the container's writable layer, from the disk thread; `device` is \
                     the source of the filesystem holding it",
                    def.name
                ),
            };
            let what = match r.conv {
                Conv::Same => what,
                Conv::StartTime => format!("now − {what}"),
                Conv::LastSeen => format!("when the sample was read ({what})"),
            };
            from.push(if fixed.is_empty() {
                what
            } else {
                format!("{}: {what}", fixed.join(", "))
            });
        }
        let when = if rows.iter().any(|r| r.under_quota) {
            " (under a CPU quota only)"
        } else {
            ""
        };
        let labels = if labels.is_empty() {
            "–".to_string()
        } else {
            labels.join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {} | {labels} | {}{when} |\n",
            f.name,
            f.prom_type(),
            from.join("<br>")
        ));
    }
    for m in CADVISOR_MACHINE {
        out.push_str(&format!(
            "| `{}` | gauge | – (no container labels) | {}, read at start |\n",
            m.name, m.source
        ));
    }
    out
}
