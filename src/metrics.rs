//! The one table of metric definitions (name, instrument, unit, attributes, description,
//! source files) and the code that turns a container's samples into data points.
//!
//! Every output (the snapshot, and the exporters built on it) and the README's metric
//! reference come from [`METRICS`]; a test fails when the README's table and this one differ.
//! The cAdvisor page's families, made from these metrics, are the page's own
//! (`export::cadvisor`).

use crate::cgroup::sample::{CgroupSample, IoDevice};
use crate::discovery::Kind;
use crate::disk::DiskSample;
use crate::exit::Exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instrument {
    /// Monotonic sum, cumulative since the container was first seen.
    Counter,
    /// Non-monotonic sum (a level that goes up and down).
    UpDownCounter,
    Gauge,
}

impl Instrument {
    pub fn as_str(self) -> &'static str {
        match self {
            Instrument::Counter => "Counter",
            Instrument::UpDownCounter => "UpDownCounter",
            Instrument::Gauge => "Gauge",
        }
    }
}

/// Whether the name comes from the OpenTelemetry semantic conventions or extends them in
/// the same style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Semconv,
    Ext,
}

#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    /// The name of the same metric on a Kubernetes pod's own resource (read from the pod's
    /// cgroup: the whole pod, sandbox and overhead included), per the semantic conventions'
    /// `k8s.pod.*` where they have one; empty for a metric pods do not have.
    pub pod_name: &'static str,
    pub origin: Origin,
    pub instrument: Instrument,
    /// Values are floating point (else integers).
    pub double: bool,
    pub unit: &'static str,
    /// Attribute keys, in the order `emit` passes their values.
    pub attributes: &'static [&'static str],
    pub description: &'static str,
    pub v2_source: &'static str,
    pub v1_source: &'static str,
}

macro_rules! metrics {
    ($( $id:ident => $name:literal, $pod:literal, $origin:ident, $inst:ident, $double:literal, $unit:literal,
        [$($attr:literal),*], $desc:literal, $v2:literal, $v1:literal; )*) => {
        /// Index of a metric in [`METRICS`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Metric { $($id),* }

        impl Metric {
            /// Every metric, in table order.
            pub const ALL: &[Metric] = &[$(Metric::$id),*];
        }

        pub static METRICS: &[MetricDef] = &[$(MetricDef {
            name: $name,
            pod_name: $pod,
            origin: Origin::$origin,
            instrument: Instrument::$inst,
            double: $double,
            unit: $unit,
            attributes: &[$($attr),*],
            description: $desc,
            v2_source: $v2,
            v1_source: $v1,
        }),*];
    };
}

metrics! {
    CpuTime => "container.cpu.time", "k8s.pod.cpu.time",
        Semconv, Counter, true, "s", ["cpu.mode"],
        "CPU time consumed, by mode.",
        "`cpu.stat` user_usec, system_usec",
        "`cpuacct.stat` user, system (USER_HZ), scaled to sum to `cpuacct.usage`; the unified `cpu.stat` on hybrid hosts";
    CpuUsage => "container.cpu.usage", "k8s.pod.cpu.usage", Semconv, Gauge, true, "{cpu}", [],
        "CPUs in use over the last interval (1 = one full CPU).",
        "Δ`cpu.stat` usage_usec ÷ Δt", "Δ`cpuacct.usage` ÷ Δt";
    CpuLimit => "container.cpu.limit", "k8s.pod.cpu.limit", Ext, UpDownCounter, true, "{cpu}", [],
        "CPU limit (CFS quota ÷ period); absent when unlimited.",
        "`cpu.max`", "`cpu.cfs_quota_us` ÷ `cpu.cfs_period_us`";
    CpuPeriods => "container.cpu.cfs.periods", "k8s.pod.cpu.cfs.periods",
        Ext, Counter, false, "{period}", [],
        "CFS enforcement periods that elapsed.", "`cpu.stat` nr_periods", "`cpu.stat` nr_periods";
    CpuThrottledPeriods => "container.cpu.cfs.throttled_periods", "k8s.pod.cpu.cfs.throttled_periods",
        Ext, Counter, false, "{period}", [],
        "CFS periods in which the container was throttled.",
        "`cpu.stat` nr_throttled", "`cpu.stat` nr_throttled";
    CpuThrottledTime => "container.cpu.cfs.throttled.time", "k8s.pod.cpu.cfs.throttled.time",
        Ext, Counter, true, "s", [],
        "Time the container was throttled.",
        "`cpu.stat` throttled_usec", "`cpu.stat` throttled_time (ns)";
    MemoryUsage => "container.memory.usage", "k8s.pod.memory.usage",
        Semconv, UpDownCounter, false, "By", [],
        "Memory charged to the container, page cache included.",
        "`memory.current`", "`memory.usage_in_bytes`";
    MemoryPeak => "container.memory.peak", "k8s.pod.memory.peak",
        Ext, UpDownCounter, false, "By", [],
        "The highest memory usage since the container started (the figure that survives its exit).",
        "`memory.peak` (kernel 5.19+)", "`memory.max_usage_in_bytes`";
    MemoryWorkingSet => "container.memory.working_set", "k8s.pod.memory.working_set",
        Semconv, UpDownCounter, false, "By", [],
        "Usage minus inactive file cache (what the kubelet evicts on).",
        "usage − `memory.stat` inactive_file", "usage − `memory.stat` total_inactive_file";
    MemoryRss => "container.memory.rss", "k8s.pod.memory.rss",
        Semconv, UpDownCounter, false, "By", [],
        "Anonymous memory (heap, stacks, tmpfs not included).",
        "`memory.stat` anon", "`memory.stat` total_rss";
    MemoryFile => "container.memory.file", "k8s.pod.memory.file",
        Ext, UpDownCounter, false, "By", [],
        "Page cache (file-backed memory, shmem included).",
        "`memory.stat` file", "`memory.stat` total_cache";
    MemoryAvailable => "container.memory.available", "k8s.pod.memory.available",
        Semconv, UpDownCounter, false, "By", [],
        "Limit minus working set; absent without a limit.",
        "limit − working set", "limit − working set";
    MemoryLimit => "container.memory.limit", "k8s.pod.memory.limit",
        Ext, UpDownCounter, false, "By", [],
        "Memory limit; absent when unlimited.", "`memory.max`", "`memory.limit_in_bytes`";
    MemorySwap => "container.memory.swap.usage", "k8s.pod.memory.swap.usage",
        Ext, UpDownCounter, false, "By", [],
        "Swap used by the container.", "`memory.swap.current`", "`memory.stat` total_swap";
    MemoryOomKills => "container.memory.oom_kills", "k8s.pod.memory.oom_kills",
        Ext, Counter, false, "{kill}", [],
        "Processes killed by the OOM killer in the container.",
        "`memory.events` oom_kill", "`memory.oom_control` oom_kill";
    PagingFaults => "container.paging.faults", "k8s.pod.paging.faults",
        Semconv, Counter, false, "{fault}", ["system.paging.fault.type"],
        "Page faults, by type.",
        "`memory.stat` pgmajfault, pgfault − pgmajfault", "`memory.stat` total_pgmajfault, total_pgfault − total_pgmajfault";
    PidCount => "container.pid.count", "k8s.pod.pid.count", Ext, UpDownCounter, false, "{task}", [],
        "Tasks (processes and threads) in the container.", "`pids.current`", "`pids.current`";
    PidLimit => "container.pid.limit", "k8s.pod.pid.limit", Ext, UpDownCounter, false, "{task}", [],
        "Task limit; absent when unlimited.", "`pids.max`", "`pids.max`";
    DiskIo => "container.disk.io", "k8s.pod.disk.io",
        Semconv, Counter, false, "By", ["disk.io.direction", "system.device"],
        "Bytes read and written on each block device.",
        "`io.stat` rbytes, wbytes", "`blkio.throttle.io_service_bytes_recursive` Read, Write";
    DiskOperations => "container.disk.operations", "k8s.pod.disk.operations",
        Ext, Counter, false, "{operation}", ["disk.io.direction", "system.device"],
        "Read and write operations on each block device.",
        "`io.stat` rios, wios", "`blkio.throttle.io_serviced_recursive` Read, Write";
    NetworkIo => "container.network.io", "k8s.pod.network.io",
        Semconv, Counter, false, "By", ["network.io.direction", "network.interface.name"],
        "Bytes received and transmitted on each interface of the container's network namespace.",
        "`/proc/<pid>/net/dev`", "`/proc/<pid>/net/dev`";
    NetworkPackets => "container.network.packet.count", "k8s.pod.network.packet.count",
        Ext, Counter, false, "{packet}", ["network.io.direction", "network.interface.name"],
        "Packets received and transmitted.", "`/proc/<pid>/net/dev`", "`/proc/<pid>/net/dev`";
    NetworkErrors => "container.network.errors", "k8s.pod.network.errors",
        Ext, Counter, false, "{error}", ["network.io.direction", "network.interface.name"],
        "Receive and transmit errors.", "`/proc/<pid>/net/dev`", "`/proc/<pid>/net/dev`";
    NetworkDropped => "container.network.packet.dropped", "k8s.pod.network.packet.dropped",
        Ext, Counter, false, "{packet}", ["network.io.direction", "network.interface.name"],
        "Packets dropped on receive and transmit.",
        "`/proc/<pid>/net/dev`", "`/proc/<pid>/net/dev`";
    CpuPressure => "container.cpu.pressure.stall.time", "k8s.pod.cpu.pressure.stall.time",
        Ext, Counter, true, "s", ["pressure.stall_type"],
        "Time some (or all) of the container's tasks were stalled waiting for CPU.",
        "`cpu.pressure` total", "the unified hierarchy's `cpu.pressure` where mounted";
    MemoryPressure => "container.memory.pressure.stall.time", "k8s.pod.memory.pressure.stall.time",
        Ext, Counter, true, "s", ["pressure.stall_type"],
        "Time some (or all) tasks were stalled waiting for memory.",
        "`memory.pressure` total", "the unified hierarchy's `memory.pressure` where mounted";
    IoPressure => "container.io.pressure.stall.time", "k8s.pod.io.pressure.stall.time",
        Ext, Counter, true, "s", ["pressure.stall_type"],
        "Time some (or all) tasks were stalled waiting for IO.",
        "`io.pressure` total", "the unified hierarchy's `io.pressure` where mounted";
    Uptime => "container.uptime", "k8s.pod.uptime", Semconv, Gauge, true, "s", [],
        "Time since the container's cgroup was created.",
        "now − cgroup creation", "now − cgroup creation";
    FsUsage => "container.filesystem.usage", "k8s.pod.filesystem.usage",
        Semconv, UpDownCounter, false, "By", [],
        "Disk space used as `du` counts it (`st_blocks` × 512, hard links once): the container's writable layer; on a pod, its ephemeral storage (every container's layer, the pod's logs, its emptyDir volumes), what the kubelet evicts on.",
        "`du` of the writable layer its runtime made (Docker's record of it, else overlay's `upperdir` of the root mount in `/proc/<pid>/mountinfo` of a process of the container, where a runtime keeps its layers), in the disk thread: every minute while the container uses CPU, every 10 min otherwise", "same";
    FsCapacity => "container.filesystem.capacity", "k8s.pod.filesystem.capacity",
        Semconv, UpDownCounter, false, "By", [],
        "Size of the filesystem holding the writable layer.",
        "`statvfs` of the layer: f_blocks × f_frsize", "same";
    FsAvailable => "container.filesystem.available", "k8s.pod.filesystem.available",
        Semconv, UpDownCounter, false, "By", [],
        "Space left on that filesystem for unprivileged writers (as `df` says).",
        "`statvfs` of the layer: f_bavail × f_frsize", "same";
    FsInodesUsed => "container.filesystem.inode.used", "k8s.pod.filesystem.inode.used",
        Ext, UpDownCounter, false, "{inode}", [],
        "Inodes used, as `du --inodes` counts them (files, directories, links once), of what `filesystem.usage` counts.",
        "the same walk", "same";
    FsInodesFree => "container.filesystem.inode.free", "k8s.pod.filesystem.inode.free",
        Ext, UpDownCounter, false, "{inode}", [],
        "Free inodes on the filesystem holding the writable layer.",
        "`statvfs` of the layer: f_ffree", "same";
    LogUsage => "container.log.filesystem.usage", "k8s.pod.log.filesystem.usage",
        Ext, UpDownCounter, false, "By", [],
        "Disk space of the container's log files, rotations included; on a pod, its whole log directory (every container, every restart).",
        "Docker's and Podman's `LogPath` and its rotations; the kubelet's `<pod logs>/<namespace>_<pod>_<uid>/<container>/`", "same";
    EphemeralUsage => "k8s.container.ephemeral_storage.usage", "k8s.pod.ephemeral_storage.usage",
        Semconv, UpDownCounter, false, "By", ["k8s.container.ephemeral_storage.fs_type"],
        "Kubernetes containers and pods: ephemeral storage by part, `rootfs` (writable layers) and `logs` (the conventions' two values); a pod's third part is `k8s.pod.empty_dir.usage`, and the three sum to what the kubelet compares with `ephemeral-storage` limits.",
        "the figures above", "same";
    EmptyDirUsage => "", "k8s.pod.empty_dir.usage", Ext, UpDownCounter, false, "By", [],
        "Pods only: their `emptyDir` volumes that are not memory-backed, summed (the part of the pod's ephemeral storage that is neither layers nor logs).",
        "`du` of each `<--kubelet-root>/pods/<uid>/volumes/kubernetes.io~empty-dir/<volume>/` (a memory-backed one is a tmpfs mount: not entered)", "same";
    ExitCode => "container.exit.code", "",
        Ext, Gauge, true, "1", ["container.exit.reason", "container.run", "container.restart_count"],
        "Why the container ended, on its final sample (or alone, when the runtime's word came after it): the exit status its runtime reported (0–255; 128 + n for signal n; NaN when only the kernel's OOM kill is known), the reason in Kubernetes' words (`Completed`, `Error`, `OOMKilled`), which run of the container id it was by the exporter's own count (`container.run`, from 1; `docker restart` leaves Docker's count unchanged) and the run's restart count (when the runtime keeps one).",
        "the runtime's status (Docker `die` event, Podman `died` event, CRI `ContainerStatus`); `OOMKilled` from `memory.events` oom_kill, oom_group_kill",
        "the runtime's status, as on v2; `OOMKilled` from `memory.oom_control` oom_kill";
}

impl Metric {
    pub fn def(self) -> &'static MetricDef {
        &METRICS[self as usize]
    }

    /// Its name on a container's resource, or on a pod's.
    pub fn name(self, kind: Kind) -> &'static str {
        match kind {
            Kind::Container => self.def().name,
            Kind::Pod => self.def().pod_name,
        }
    }
}

/// The OpenTelemetry-to-Prometheus translation of a name: dots to underscores, the unit as a
/// word (`s` → `seconds`, `By` → `bytes`, `1` → `ratio`; `{…}` annotations dropped), and
/// `_total` on monotonic counters.
pub fn otel_to_prometheus(name: &str, unit: &str, instrument: Instrument) -> String {
    let mut name = name.replace('.', "_");
    let unit = match unit {
        "s" => "seconds",
        "By" => "bytes",
        u if u.starts_with('{') => "",
        "1" => "",
        u => u,
    };
    if !unit.is_empty() && !name.ends_with(unit) {
        name.push('_');
        name.push_str(unit);
    }
    if instrument == Instrument::Counter {
        name.push_str("_total");
    }
    name
}

/// A data point's value; in JSON, a number (`null` for NaN).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    Int(u64),
    Double(f64),
}

impl Value {
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Int(v) => v as f64,
            Value::Double(v) => v,
        }
    }
}

/// Receives data points: the metric, its attribute values (in the order of
/// `MetricDef::attributes`) and the value.
pub trait Sink {
    fn point(&mut self, metric: Metric, attrs: &[&str], value: Value);
}

/// What `emit` needs besides the current sample.
pub struct Context<'a> {
    /// The CPU time (ns) of the previous sample of the same cgroup (same inode), and the
    /// seconds between the two.
    pub previous_cpu: Option<(u64, f64)>,
    /// Seconds since the cgroup was created.
    pub uptime: Option<f64>,
    /// The latest disk figures (from the disk thread), when known.
    pub disk: Option<&'a DiskSample>,
    /// Why it ended, on a final sample that knows.
    pub exit: Option<&'a Exit>,
}

pub(crate) fn ns_to_s(ns: u64) -> Value {
    Value::Double(ns as f64 / 1e9)
}

fn us_to_s(us: u64) -> Value {
    Value::Double(us as f64 / 1e6)
}

/// `MAJ:MIN` into a stack buffer (this runs per device per metric per tick: no `fmt`).
fn device_name(d: &IoDevice, buf: &mut [u8; 24]) -> usize {
    let (mut a, mut b) = (itoa::Buffer::new(), itoa::Buffer::new());
    let (major, minor) = (a.format(d.major).as_bytes(), b.format(d.minor).as_bytes());
    let n = major.len() + 1 + minor.len(); // at most 10 + 1 + 10 digits
    buf[..major.len()].copy_from_slice(major);
    buf[major.len()] = b':';
    buf[major.len() + 1..n].copy_from_slice(minor);
    n
}

fn int(sink: &mut dyn Sink, m: Metric, attrs: &[&str], v: Option<u64>) {
    if let Some(v) = v {
        sink.point(m, attrs, Value::Int(v));
    }
}

fn secs(sink: &mut dyn Sink, m: Metric, attrs: &[&str], v: Option<Value>) {
    if let Some(v) = v {
        sink.point(m, attrs, v);
    }
}

/// Turns one container's sample into data points, in the order of [`METRICS`]. Values the
/// kernel did not give are skipped.
pub fn emit(s: &CgroupSample, ctx: &Context<'_>, sink: &mut dyn Sink) {
    for &m in Metric::ALL {
        emit_metric(m, s, ctx, sink);
    }
}

/// The data points of one metric: outputs that write family by family (the Prometheus
/// page) call this per family, so nothing is buffered in between.
pub fn emit_metric(m: Metric, s: &CgroupSample, ctx: &Context<'_>, sink: &mut dyn Sink) {
    use Metric as M;
    let (cpu, mem) = (&s.cpu, &s.memory);
    let disk = |figure: fn(&DiskSample) -> Option<u64>| ctx.disk.and_then(figure);
    match m {
        M::CpuTime => {
            secs(sink, m, &["user"], cpu.user_ns.map(ns_to_s));
            secs(sink, m, &["system"], cpu.system_ns.map(ns_to_s));
        }
        M::CpuUsage => {
            if let (Some(now), Some((before, dt))) = (cpu.usage_ns, ctx.previous_cpu)
                && dt > 0.0
                && now >= before
            {
                sink.point(m, &[], Value::Double((now - before) as f64 / 1e9 / dt));
            }
        }
        M::CpuLimit => secs(sink, m, &[], cpu.limit_cpus().map(Value::Double)),
        M::CpuPeriods => int(sink, m, &[], cpu.periods),
        M::CpuThrottledPeriods => int(sink, m, &[], cpu.throttled_periods),
        M::CpuThrottledTime => secs(sink, m, &[], cpu.throttled_ns.map(ns_to_s)),
        M::MemoryUsage => int(sink, m, &[], mem.usage),
        M::MemoryPeak => int(sink, m, &[], mem.peak),
        M::MemoryWorkingSet => int(sink, m, &[], mem.working_set()),
        M::MemoryRss => int(sink, m, &[], mem.anon),
        M::MemoryFile => int(sink, m, &[], mem.file),
        M::MemoryAvailable => int(sink, m, &[], mem.available()),
        M::MemoryLimit => int(sink, m, &[], mem.limit),
        M::MemorySwap => int(sink, m, &[], mem.swap),
        M::MemoryOomKills => int(sink, m, &[], mem.oom_kills),
        M::PagingFaults => {
            if let Some(major) = mem.pgmajfault {
                int(sink, m, &["major"], Some(major));
                let minor = mem.pgfault.map(|all| all.saturating_sub(major));
                int(sink, m, &["minor"], minor);
            }
        }
        M::PidCount => int(sink, m, &[], s.pids.current),
        M::PidLimit => int(sink, m, &[], s.pids.limit),
        M::DiskIo | M::DiskOperations => {
            let mut dev = [0u8; 24];
            for d in &s.io {
                let n = device_name(d, &mut dev);
                let name = std::str::from_utf8(&dev[..n]).unwrap_or("");
                let (read, write) = match m {
                    M::DiskIo => (d.read_bytes, d.write_bytes),
                    _ => (d.read_ops, d.write_ops),
                };
                int(sink, m, &["read", name], read);
                int(sink, m, &["write", name], write);
            }
        }
        M::NetworkIo | M::NetworkPackets | M::NetworkErrors | M::NetworkDropped => {
            for i in &s.net {
                let (rx, tx) = match m {
                    M::NetworkIo => (i.rx_bytes, i.tx_bytes),
                    M::NetworkPackets => (i.rx_packets, i.tx_packets),
                    M::NetworkErrors => (i.rx_errors, i.tx_errors),
                    _ => (i.rx_dropped, i.tx_dropped),
                };
                let name = i.name.as_str();
                int(sink, m, &["receive", &name], Some(rx));
                int(sink, m, &["transmit", &name], Some(tx));
            }
        }
        M::CpuPressure | M::MemoryPressure | M::IoPressure => {
            let psi = match m {
                M::CpuPressure => s.cpu_pressure,
                M::MemoryPressure => s.memory_pressure,
                _ => s.io_pressure,
            };
            if let Some(psi) = psi {
                secs(sink, m, &["some"], psi.some_us.map(us_to_s));
                secs(sink, m, &["full"], psi.full_us.map(us_to_s));
            }
        }
        M::Uptime => secs(sink, m, &[], ctx.uptime.map(Value::Double)),
        // The disk figures come from the disk thread, not the cgroup files.
        M::FsUsage => int(sink, m, &[], disk(|d| d.usage.map(|u| u.bytes))),
        M::FsCapacity => int(sink, m, &[], disk(|d| d.fs.map(|f| f.capacity))),
        M::FsAvailable => int(sink, m, &[], disk(|d| d.fs.map(|f| f.available))),
        M::FsInodesUsed => int(sink, m, &[], disk(|d| d.usage.map(|u| u.inodes))),
        M::FsInodesFree => int(sink, m, &[], disk(|d| d.fs.map(|f| f.inodes_free))),
        M::LogUsage => int(sink, m, &[], disk(|d| d.logs.map(|u| u.bytes))),
        M::EphemeralUsage => {
            if let Some(d) = ctx.disk.filter(|d| d.kubernetes) {
                int(sink, m, &["rootfs"], d.rootfs.map(|u| u.bytes));
                int(sink, m, &["logs"], d.logs.map(|u| u.bytes));
            }
        }
        M::EmptyDirUsage => int(sink, m, &[], disk(|d| d.empty_dir.map(|u| u.bytes))),
        M::ExitCode => {
            if let Some(e) = ctx.exit {
                let value = Value::Double(e.code.map_or(f64::NAN, f64::from));
                let (mut run, mut n) = (itoa::Buffer::new(), itoa::Buffer::new());
                let (reason, run) = (e.reason.as_str(), run.format(e.run));
                match e.restart_count {
                    Some(r) => sink.point(m, &[reason, run, n.format(r)], value),
                    None => sink.point(m, &[reason, run], value),
                }
            }
        }
    }
}

/// The README's metric reference, generated from [`METRICS`].
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| name | on a pod | instrument | unit | attributes | description | cgroup v2 source | cgroup v1 source |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for m in METRICS {
        let attrs = (m.attributes.iter().map(|a| format!("`{a}`")))
            .reduce(|a, b| a + ", " + &b)
            .unwrap_or_else(|| "–".to_string());
        let kind = if m.double { " (double)" } else { "" };
        let origin = match m.origin {
            Origin::Semconv => "",
            Origin::Ext => " *(ext)*",
        };
        // A metric of only one of the two kinds has an empty name for the other.
        let (name, pod) = match (m.name.is_empty(), m.pod_name.is_empty()) {
            (true, _) => ("–".to_string(), format!("`{}`{origin}", m.pod_name)),
            (false, true) => (format!("`{}`{origin}", m.name), "–".to_string()),
            (false, false) => (format!("`{}`{origin}", m.name), format!("`{}`", m.pod_name)),
        };
        out.push_str(&format!(
            "| {name} | {pod} | {}{kind} | `{}` | {attrs} | {} | {} | {} |\n",
            m.instrument.as_str(),
            m.unit,
            m.description,
            m.v2_source,
            m.v1_source,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_index_matches_table() {
        assert_eq!(Metric::Uptime.def().name, "container.uptime");
        assert_eq!(Metric::CpuTime.def().name, "container.cpu.time");
        assert_eq!(
            Metric::NetworkDropped.def().name,
            "container.network.packet.dropped"
        );
    }

    #[test]
    fn device_names() {
        let mut buf = [0u8; 24];
        let d = IoDevice {
            major: u32::MAX,
            minor: 0,
            ..IoDevice::default()
        };
        let n = device_name(&d, &mut buf);
        assert_eq!(&buf[..n], b"4294967295:0");
    }

    /// The non-empty names `name` picks, after checking none repeats.
    fn unique(name: fn(&MetricDef) -> &'static str) -> Vec<&'static str> {
        let mut names: Vec<_> = METRICS.iter().map(name).filter(|n| !n.is_empty()).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        names
    }

    #[test]
    fn names_are_unique() {
        let names = unique(|m| m.name);
        let pods = unique(|m| m.pod_name);
        assert!(
            METRICS
                .iter()
                .all(|m| !(m.name.is_empty() && m.pod_name.is_empty()))
        );
        assert!(pods.iter().all(|n| n.starts_with("k8s.pod.")));
        assert!(
            names
                .iter()
                .all(|n| n.starts_with("container.") || n.starts_with("k8s.container."))
        );
    }
}
