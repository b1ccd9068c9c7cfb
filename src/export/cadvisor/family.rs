//! What a cAdvisor family is: its name and help, the metric of
//! [`METRICS`](crate::metrics::METRICS) it is made from,
//! which of that metric's points it shows ([`Select`]), how their attributes become labels
//! ([`Label`]) and their values cAdvisor's ([`Conv`]), its `# TYPE` ([`PromType`]), and when a
//! container has it at all. The rows themselves are in `cadvisor::table`.

use crate::cgroup::sample::CgroupSample;
use crate::disk::DiskSample;
use crate::host::machine::Machine;
use crate::metrics::{Instrument, Metric, Value};

/// A family of the cAdvisor-compatible page (`--prometheus-names cadvisor`): the names and
/// labels that cAdvisor dashboards and kube-prometheus rules query, made from the points of
/// one metric of [`METRICS`](crate::metrics::METRICS) (so every figure has one source and one
/// conversion).
///
/// Rows with the same name next to each other are one family: their lines go under one
/// `# HELP`/`# TYPE` (the first row's), and their `fixed` labels tell them apart
/// (`container_memory_failures_total`). The rows are written with `cadvisor_families!`
/// (`cadvisor::table`), which fills in the defaults (no fixed labels, same value, the metric's
/// type, always).
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
    /// The `# TYPE`.
    pub kind: PromType,
    /// Written only for the samples where this holds: cAdvisor writes the CFS counters only
    /// for containers with a CPU quota.
    pub when: fn(&CgroupSample) -> bool,
}

impl CadvisorFamily {
    /// Its `# TYPE`.
    pub fn prom_type(&self) -> &'static str {
        match (&self.kind, self.metric.def().instrument) {
            (PromType::Counter, _) | (PromType::OfMetric, Instrument::Counter) => "counter",
            _ => "gauge",
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

/// The `# TYPE` of a cAdvisor family.
pub enum PromType {
    /// `counter` for a Counter metric, else `gauge`.
    OfMetric,
    Gauge,
    Counter,
}

/// Interfaces cAdvisor leaves out of a container's network (by prefix, as it does): loopback,
/// and the host ends of veth pairs and bridges that show up in a host-network container.
pub const CADVISOR_IGNORED_INTERFACES: &[&str] = &["lo", "veth", "docker", "nerdctl"];
