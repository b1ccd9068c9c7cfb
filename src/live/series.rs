//! The ten series every container keeps in its ring, and how each is read from the data points
//! the outputs write (`metrics::emit_metric`: the very values of `/metrics`), counters turned
//! into rates against the previous tick.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::collect::ContainerState;
use crate::discovery::Kind;
use crate::metrics::{Metric, Sink, Value};

/// One series of the overview: its key in the API, the metric it comes from, and its unit
/// (after a counter becomes a rate).
pub struct SeriesDef {
    pub key: &'static str,
    pub metric: &'static str,
    pub unit: &'static str,
}

/// The series, in the order of a ring's values and of the API's `points`.
pub const SERIES: [SeriesDef; 10] = [
    def("cpu", "container.cpu.usage", "{cpu}"),
    def("memory", "container.memory.working_set", "By"),
    def("net_rx", "container.network.io", "By/s"),
    def("net_tx", "container.network.io", "By/s"),
    def("block_read", "container.disk.io", "By/s"),
    def("block_write", "container.disk.io", "By/s"),
    def("disk", "container.filesystem.usage", "By"),
    def("pids", "container.pid.count", "{task}"),
    def("cpu_pressure", "container.cpu.pressure.stall.time", "1"),
    def(
        "memory_pressure",
        "container.memory.pressure.stall.time",
        "1",
    ),
];

const fn def(key: &'static str, metric: &'static str, unit: &'static str) -> SeriesDef {
    SeriesDef { key, metric, unit }
}

/// How many values a container appends per tick.
pub const N: usize = SERIES.len();

/// The limits shown as lines: CPUs, memory bytes, tasks.
pub const LIMITS: [&str; 3] = ["cpu", "memory", "pids"];

/// The counters behind the rates, as last read (`NaN`: not read), and when.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    at: f64,
    totals: [f64; 6],
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            at: f64::NAN,
            totals: [f64::NAN; 6],
        }
    }
}

/// What one container's data points say this tick.
#[derive(Default)]
struct Read {
    gauges: [Option<f64>; 5],
    totals: [Option<f64>; 6],
    limits: [Option<f64>; 3],
}

fn add(slot: &mut Option<f64>, v: Value) {
    *slot = Some(slot.unwrap_or(0.0) + v.as_f64());
}

impl Sink for Read {
    fn point(&mut self, metric: Metric, attrs: &[&str], value: Value) {
        use Metric as M;
        let first = attrs.first().copied().unwrap_or("");
        let slot = match (metric, first) {
            (M::CpuUsage, _) => &mut self.gauges[0],
            (M::MemoryWorkingSet, _) => &mut self.gauges[1],
            (M::FsUsage, _) => &mut self.gauges[2],
            (M::LogUsage, _) => &mut self.gauges[3],
            (M::PidCount, _) => &mut self.gauges[4],
            (M::NetworkIo, "receive") => &mut self.totals[0],
            (M::NetworkIo, _) => &mut self.totals[1],
            (M::DiskIo, "read") => &mut self.totals[2],
            (M::DiskIo, _) => &mut self.totals[3],
            (M::CpuPressure, "some") => &mut self.totals[4],
            (M::MemoryPressure, "some") => &mut self.totals[5],
            (M::CpuLimit, _) => &mut self.limits[0],
            (M::MemoryLimit, _) => &mut self.limits[1],
            (M::PidLimit, _) => &mut self.limits[2],
            _ => return,
        };
        add(slot, value);
    }
}

/// The metrics the ten series and the limits are read from.
const READ: [Metric; 12] = [
    Metric::CpuUsage,
    Metric::MemoryWorkingSet,
    Metric::FsUsage,
    Metric::LogUsage,
    Metric::PidCount,
    Metric::NetworkIo,
    Metric::DiskIo,
    Metric::CpuPressure,
    Metric::MemoryPressure,
    Metric::CpuLimit,
    Metric::MemoryLimit,
    Metric::PidLimit,
];

/// Seconds since the epoch.
pub fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The ten values of `state`'s latest sample (`NaN` where it has none) and its limits; the
/// rates are against `prev`, which becomes this sample's counters.
pub fn read(state: &ContainerState, now: SystemTime, prev: &mut Counters) -> ([f32; N], [f32; 3]) {
    let mut r = Read::default();
    for &m in &READ {
        state.emit_metric(m, now, &mut r);
    }
    let at = state.sampled_at(now).map_or(f64::NAN, unix);
    let dt = at - prev.at;
    let rate = |i: usize| -> f64 {
        match r.totals[i] {
            Some(v) if dt > 0.0 && v >= prev.totals[i] => (v - prev.totals[i]) / dt,
            _ => f64::NAN,
        }
    };
    let g = |o: Option<f64>| o.unwrap_or(f64::NAN) as f32;
    // A pod's filesystem usage is its ephemeral storage, its logs included.
    let disk = match (state.kind, r.gauges[2], r.gauges[3]) {
        (Kind::Pod, fs, _) => fs,
        (_, None, None) => None,
        (_, fs, logs) => Some(fs.unwrap_or(0.0) + logs.unwrap_or(0.0)),
    };
    let values = [
        g(r.gauges[0]),
        g(r.gauges[1]),
        rate(0) as f32,
        rate(1) as f32,
        rate(2) as f32,
        rate(3) as f32,
        g(disk),
        g(r.gauges[4]),
        rate(4) as f32,
        rate(5) as f32,
    ];
    if at > prev.at || prev.at.is_nan() {
        *prev = Counters {
            at,
            totals: r.totals.map(|t| t.unwrap_or(f64::NAN)),
        };
    }
    (values, r.limits.map(g))
}
