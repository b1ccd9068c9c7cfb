//! The one table of self-metrics ([`SELF_METRICS`]) that the Prometheus page, OTLP and the
//! README's reference are all written from. A new self-metric is one row of `self_metrics!`.

use std::sync::atomic::AtomicU64;

use super::counters::{Telemetry, get};
use super::process::ProcessStats;
use crate::metadata::Figure;
use crate::metrics::{Instrument, Value, otel_to_prometheus};

/// One self-metric: its OpenTelemetry name (the OTLP name; the page's is its translation,
/// unless `prom_name` says otherwise), how it is measured, and how its points are read.
pub struct SelfMetricDef {
    pub name: &'static str,
    /// The page's name where the translation would miss the Prometheus convention (the
    /// standard `process_*` metrics).
    pub prom_name: Option<&'static str>,
    pub instrument: Instrument,
    pub unit: &'static str,
    /// The key of the attribute its points carry, if any.
    pub attribute: Option<&'static str>,
    pub description: &'static str,
    /// Gives the points (attribute value, value); nothing when the metric does not apply
    /// (a source that is off, OTLP that is off).
    pub emit: fn(&Telemetry, &ProcessStats, &mut SelfPoint<'_>),
}

/// Receives one point of a self-metric: its attribute's value, if it has one, and the value.
pub type SelfPoint<'a> = dyn FnMut(Option<&'static str>, Value) + 'a;

impl SelfMetricDef {
    /// Its name on the Prometheus page.
    pub fn prometheus_name(&self) -> String {
        self.prom_name.map_or_else(
            || otel_to_prometheus(self.name, self.unit, self.instrument),
            str::to_string,
        )
    }
}

fn int(a: &AtomicU64) -> Value {
    Value::Int(get(a))
}

/// Nanoseconds, in seconds.
fn secs(ns: &AtomicU64) -> Value {
    Value::Double(get(ns) as f64 / 1e9)
}

/// One point per attribute value.
fn each(out: &mut SelfPoint<'_>, points: &[(&'static str, &AtomicU64)]) {
    for &(attr, a) in points {
        out(Some(attr), int(a));
    }
}

/// A figure of every metadata source that is on and reports it, labelled by source.
fn sources(t: &Telemetry, figure: Figure, out: &mut SelfPoint<'_>) {
    if let Some(m) = t.metadata.get() {
        for (source, v) in m.points(figure) {
            out(Some(source), Value::Int(v));
        }
    }
}

/// The OTLP metrics apply only while OTLP is on.
fn otlp_on(t: &Telemetry) -> bool {
    get(&t.otlp_queue_capacity) > 0
}

/// A row's optional part, or `None`.
macro_rules! or_none {
    () => {
        None
    };
    ($value:expr) => {
        Some($value)
    };
}

/// The table, one self-metric a row: `"name" Instrument "unit"`, then `["attribute"]` if its
/// points carry one, `as "prom_name"` where the page's name is not the translation, the
/// description, and how its points are read (`emit`).
macro_rules! self_metrics {
    ($(
        $name:literal $instrument:ident $unit:literal $([$attr:literal])? $(as $prom:literal)?
        $description:literal $emit:expr;
    )*) => {
        /// Every self-metric, in the order of the page.
        pub static SELF_METRICS: &[SelfMetricDef] = &[$(SelfMetricDef {
            name: $name,
            prom_name: or_none!($($prom)?),
            instrument: Instrument::$instrument,
            unit: $unit,
            attribute: or_none!($($attr)?),
            description: $description,
            emit: $emit,
        }),*];
    };
}

self_metrics! {
    "container_exporter.containers.tracked" UpDownCounter "{container}"
        "Containers being read each tick."
        |t, _, o| o(None, int(&t.containers_tracked));
    "container_exporter.collections" Counter "{collection}"
        "Collection ticks completed."
        |t, _, o| o(None, int(&t.collections));
    "container_exporter.collection.duration" Gauge "s"
        "Duration of the last collection tick (reading every container and writing the OTLP request; the page is rendered when a scrape asks)."
        |t, _, o| o(None, secs(&t.last_collection_ns));
    "container_exporter.read_errors" Counter "{error}" ["kind"]
        "cgroup files that could not be read (io), opened (open) or parsed (malformed, truncated)."
        |t, _, o| each(o, &[("io", &t.read_errors_io), ("open", &t.read_errors_open),
            ("malformed", &t.read_errors_malformed), ("truncated", &t.read_errors_truncated)]);
    "container_exporter.dropped_entries" Counter "{entry}" ["kind"]
        "Block devices and network interfaces left out of a container's sample past the caps (256 of each per container), summed over reads."
        |t, _, o| each(o, &[("device", &t.dropped_devices), ("interface", &t.dropped_interfaces)]);
    "container_exporter.discovery.events" Counter "{event}" ["event"]
        "Containers added and removed (each container's end once, however it was noticed: inotify, a rescan, a read that found it gone, a new directory under the same id), full rescans, and inotify queue overflows."
        |t, _, o| each(o, &[("added", &t.discovery_added), ("removed", &t.discovery_removed),
            ("rescan", &t.discovery_rescans), ("overflow", &t.discovery_overflows)]);
    "container_exporter.final_samples" Counter "{sample}"
        "Final samples taken when a container's last process left or its cgroup went."
        |t, _, o| o(None, int(&t.final_samples));
    "container_exporter.inotify.watches" UpDownCounter "{watch}" ["kind"]
        "inotify watches held, on directories and on cgroup.events files."
        |t, _, o| each(o, &[("directory", &t.watches_dirs), ("cgroup_events", &t.watches_events)]);
    "container_exporter.inotify.unwatched" UpDownCounter "{watch}" ["kind"]
        "Watches missing for want of inotify watches: directories (listed every 2 s instead) and cgroup.events files (exits then seen at the next tick)."
        |t, _, o| each(o, &[("directory", &t.unwatched_dirs), ("cgroup_events", &t.unwatched_events)]);
    "container_exporter.containers.reopened" UpDownCounter "{container}"
        "Containers whose files are opened, read and closed every tick because the open-file limit leaves no room to keep them open."
        |t, _, o| o(None, int(&t.containers_reopened));
    "container_exporter.containers.files" UpDownCounter "{container}" ["kept"]
        "Containers by which of their cgroup files stay open between reads: all, only those read every tick (descriptors are short: the others, read once a minute, are opened when due), or none (opened, read and closed every tick)."
        |t, _, o| each(o, &[("all", &t.containers_files_all), ("per_tick", &t.containers_files_per_tick), ("none", &t.containers_reopened)]);
    "container_exporter.cgroup.reads" Counter "{read}" ["file"]
        "Reads of each cgroup file, as <hierarchy>/<file> on cgroup v1 and hybrid hosts and <file> on cgroup v2, and of containers' net/dev and cgroup.procs (to find a process whose net/dev to open), counted as they are made: the system calls a tick costs (benches/floor.rs prices exactly these for its floor of the daemon's own reads)."
        |_, _, o| for (file, n) in crate::cgroup::reads::counts() { o(Some(file), Value::Int(n)) };
    "container_exporter.output.duration" Gauge "s" ["output"]
        "Time the last output took to write: the Prometheus page (its last render, done when a scrape asks for a page newer than the one at hand) and the OTLP request of the last tick (encode and compress)."
        |t, _, o| {
            o(Some("prometheus"), secs(&t.last_render_ns));
            o(Some("otlp"), secs(&t.last_otlp_encode_ns));
        };
    "container_exporter.scrapes" Counter "{request}"
        "Requests served on /metrics (up to the previous render)."
        |t, _, o| o(None, int(&t.scrapes));
    "container_exporter.metadata.values_cut" Counter "{value}"
        "Values from the runtimes cut to --attribute-value-length-limit, and labels left out (a longer key, or past --attribute-count-limit)."
        |t, _, o| if let Some(m) = t.metadata.get() { o(None, int(&m.values_cut)) };
    "container_exporter.metadata.api_errors" Counter "{error}" ["source"]
        "Failed calls to a runtime, event streams included."
        |t, _, o| sources(t, Figure::ApiErrors, o);
    "container_exporter.metadata.connected" Gauge "1" ["source"]
        "1 while a metadata source (docker, cri, podman, kubelet_logs) is in sync with its runtime."
        |t, _, o| sources(t, Figure::Connected, o);
    "container_exporter.metadata.reconnects" Counter "{connection}" ["source"]
        "Connections to a runtime made again after a failure."
        |t, _, o| sources(t, Figure::Reconnects, o);
    "container_exporter.metadata.calls" Counter "{call}" ["source"]
        "Calls sent to a runtime (none per tick)."
        |t, _, o| sources(t, Figure::Calls, o);
    "container_exporter.metadata.lookups" Counter "{lookup}" ["source"]
        "Listings after the first sync, to name what discovery found."
        |t, _, o| sources(t, Figure::Lookups, o);
    "container_exporter.metadata.events" Counter "{event}" ["source"]
        "Events received from a runtime."
        |t, _, o| sources(t, Figure::Events, o);
    "container_exporter.otlp.exports" Counter "{request}" ["outcome"]
        "OTLP requests the receiver accepted (success) or that failed for good (failure)."
        |t, _, o| if otlp_on(t) {
            each(o, &[("success", &t.otlp_exports_succeeded), ("failure", &t.otlp_exports_failed)])
        };
    "container_exporter.otlp.retries" Counter "{attempt}"
        "OTLP send attempts repeated after a retryable failure."
        |t, _, o| if otlp_on(t) { o(None, int(&t.otlp_retries)) };
    "container_exporter.otlp.dropped_requests" Counter "{request}"
        "OTLP requests dropped unsent: the oldest of a full queue, or pending at shutdown."
        |t, _, o| if otlp_on(t) { o(None, int(&t.otlp_dropped_requests)) };
    "container_exporter.otlp.rejected_points" Counter "{data_point}"
        "Data points the OTLP receiver rejected in partial-success responses."
        |t, _, o| if otlp_on(t) { o(None, int(&t.otlp_rejected_points)) };
    "container_exporter.otlp.queue.length" UpDownCounter "{tick}"
        "Ticks whose OTLP requests wait to be sent, each one request or more when cut to --otlp-max-request-size (not counting the request in flight)."
        |t, _, o| if otlp_on(t) { o(None, int(&t.otlp_queue_length)) };
    "container_exporter.otlp.queue.capacity" UpDownCounter "{tick}"
        "The bound of the OTLP queue, in ticks (--otlp-queue-size)."
        |t, _, o| if otlp_on(t) { o(None, int(&t.otlp_queue_capacity)) };
    "process.cpu.time" Counter "s" as "process_cpu_seconds_total"
        "Total user and system CPU time spent in seconds."
        |_, p, o| o(None, Value::Double(p.cpu_seconds));
    "process.memory.usage" UpDownCounter "By" as "process_resident_memory_bytes"
        "Resident memory size in bytes."
        |_, p, o| o(None, Value::Int(p.resident_bytes));
    "process.unix.file_descriptor.count" UpDownCounter "{file_descriptor}" as "process_open_fds"
        "Number of open file descriptors."
        |_, p, o| o(None, Value::Int(p.open_fds));
    "process.unix.file_descriptor.limit" UpDownCounter "{file_descriptor}" as "process_max_fds"
        "Maximum number of open file descriptors."
        |_, p, o| o(None, Value::Int(p.max_fds));
    "process.start_time" Gauge "s" as "process_start_time_seconds"
        "Start time of the process since unix epoch in seconds."
        |_, p, o| o(None, Value::Double(p.start_time_seconds));
    "container_exporter.disk.walks" Counter "{walk}" ["outcome"]
        "Walks of writable layers and emptyDir volumes finished: complete, or not published (denied: a directory could not be read; too_deep: nested past 64 levels; vanished: removed meanwhile)."
        |t, _, o| if let Some(d) = t.disk.get() {
            each(o, &[("complete", &d.walks_complete), ("denied", &d.walks_denied),
                ("too_deep", &d.walks_too_deep), ("vanished", &d.walks_vanished)])
        };
    "container_exporter.disk.entries" Counter "{entry}"
        "Directory entries the disk thread looked at (one fstatat each)."
        |t, _, o| if let Some(d) = t.disk.get() { o(None, int(&d.entries)) };
    "container_exporter.disk.cpu.time" Counter "s"
        "CPU time of the disk thread (user and system), which --disk-cpu-budget bounds."
        |t, _, o| if let Some(d) = t.disk.get() { o(None, secs(&d.cpu_ns)) };
    "container_exporter.disk.layers" UpDownCounter "{container}" ["state"]
        "Containers by what is known of their writable layer: found (overlay), unsupported (another root filesystem: no usage shown), unreachable (not below --host-root), untrusted (an overlay whose upper directory no runtime made: the container mounted it, never walked), pending (not looked at yet)."
        |t, _, o| if let Some(d) = t.disk.get() {
            each(o, &[("found", &d.layers_found), ("unsupported", &d.layers_unsupported),
                ("unreachable", &d.layers_unreachable), ("untrusted", &d.layers_untrusted),
                ("pending", &d.layers_pending)])
        };
    "container_exporter.disk.layer.lookups" Counter "{lookup}" ["by"]
        "Looks for a container's writable layer, by what answered: runtime (Docker's own record of the container's layer), mountinfo (a read of the root mount of one of its processes), host_namespace (its process shares the host's mount namespace: nothing read, looked at again later)."
        |t, _, o| if let Some(d) = t.disk.get() {
            each(o, &[("runtime", &d.lookups_runtime), ("mountinfo", &d.lookups_mountinfo),
                ("host_namespace", &d.lookups_host_namespace)])
        };
    "container_exporter.disk.lag" Gauge "s"
        "The longest a due walk has waited so far (0 when the disk thread keeps up): how much older than --disk-interval usage gets under --disk-cpu-budget."
        |t, _, o| if let Some(d) = t.disk.get() { o(None, secs(&d.lag_ns)) };
    "container_exporter.exits" Counter "{container}" ["outcome"]
        "Containers that ended, by what was known of why when their final sample went out: the runtime's exit status (code), its word without a usable status (no_code: outside 0–255, or a status call that failed), no word within --exit-wait (timeout), or no runtime to ask (unasked: the kernel's OOM verdict alone)."
        |t, _, o| each(o, &[("code", &t.exits_code), ("no_code", &t.exits_no_code),
            ("timeout", &t.exits_timeout), ("unasked", &t.exits_unasked)]);
    "container_exporter.exits.late" Counter "{container}"
        "Of the containers counted as timeout by container_exporter.exits: those whose runtime's word came later, within 2 minutes of the final sample; their exit series was published then (alone, when the final sample had been delivered)."
        |t, _, o| o(None, int(&t.exits_late));
    "container_exporter.exits.pending" UpDownCounter "{exit}" ["waiting_for"]
        "Exits the runtimes reported that wait for their container's final sample (final_sample; at most 4096, each at most 2 minutes or two intervals), and final samples waiting for their runtime's word (runtime; each at most --exit-wait)."
        |t, _, o| each(o, &[("final_sample", &t.exits_held), ("runtime", &t.exits_waiting)]);
}

/// The README's self-metric reference, generated from [`SELF_METRICS`].
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| OTLP name | Prometheus name | instrument | unit | attribute | description |\n\
         |---|---|---|---|---|---|\n",
    );
    for m in SELF_METRICS {
        let attr = m.attribute.map_or("–".to_string(), |a| format!("`{a}`"));
        out.push_str(&format!(
            "| `{}` | `{}` | {} | `{}` | {attr} | {} |\n",
            m.name,
            m.prometheus_name(),
            m.instrument.as_str(),
            m.unit,
            m.description
        ));
    }
    out
}
