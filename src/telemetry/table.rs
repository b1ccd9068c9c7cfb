//! The one table of self-metrics ([`SELF_METRICS`]) that the Prometheus page, OTLP and the
//! README's reference are all written from.

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

macro_rules! one {
    ($f:expr) => {
        |t: &Telemetry, p: &ProcessStats, out: &mut SelfPoint<'_>| {
            let _ = (t, p);
            #[allow(clippy::redundant_closure_call)]
            out(None, ($f)(t, p))
        }
    };
}

/// A figure of every metadata source that is on and reports it, labelled by source.
fn sources(t: &Telemetry, figure: Figure, out: &mut SelfPoint<'_>) {
    if let Some(m) = t.metadata.get() {
        for (source, v) in m.points(figure) {
            out(Some(source), Value::Int(v));
        }
    }
}

/// Every self-metric, in the order of the page.
pub static SELF_METRICS: &[SelfMetricDef] = &[
    SelfMetricDef {
        name: "container_exporter.containers.tracked",
        prom_name: None,
        instrument: Instrument::UpDownCounter,
        unit: "{container}",
        attribute: None,
        description: "Containers being read each tick.",
        emit: one!(|t: &Telemetry, _| int(&t.containers_tracked)),
    },
    SelfMetricDef {
        name: "container_exporter.collections",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{collection}",
        attribute: None,
        description: "Collection ticks completed.",
        emit: one!(|t: &Telemetry, _| int(&t.collections)),
    },
    SelfMetricDef {
        name: "container_exporter.collection.duration",
        prom_name: None,
        instrument: Instrument::Gauge,
        unit: "s",
        attribute: None,
        description: "Duration of the last collection tick (reading every container and rendering).",
        emit: one!(|t: &Telemetry, _| Value::Double(get(&t.last_collection_ns) as f64 / 1e9)),
    },
    SelfMetricDef {
        name: "container_exporter.read_errors",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{error}",
        attribute: Some("kind"),
        description: "cgroup files that could not be read (io), opened (open) or parsed (malformed, truncated).",
        emit: |t, _, out| {
            out(Some("io"), int(&t.read_errors_io));
            out(Some("open"), int(&t.read_errors_open));
            out(Some("malformed"), int(&t.read_errors_malformed));
            out(Some("truncated"), int(&t.read_errors_truncated));
        },
    },
    SelfMetricDef {
        name: "container_exporter.dropped_entries",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{entry}",
        attribute: Some("kind"),
        description: "Block devices and network interfaces left out of a container's sample past the caps (256 of each per container), summed over reads.",
        emit: |t, _, out| {
            out(Some("device"), int(&t.dropped_devices));
            out(Some("interface"), int(&t.dropped_interfaces));
        },
    },
    SelfMetricDef {
        name: "container_exporter.discovery.events",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{event}",
        attribute: Some("event"),
        description: "Containers added and removed (each container's end once, however it was noticed: inotify, a rescan, a read that found it gone, a new directory under the same id), full rescans, and inotify queue overflows.",
        emit: |t, _, out| {
            out(Some("added"), int(&t.discovery_added));
            out(Some("removed"), int(&t.discovery_removed));
            out(Some("rescan"), int(&t.discovery_rescans));
            out(Some("overflow"), int(&t.discovery_overflows));
        },
    },
    SelfMetricDef {
        name: "container_exporter.final_samples",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{sample}",
        attribute: None,
        description: "Final samples taken when a container's last process left or its cgroup went.",
        emit: one!(|t: &Telemetry, _| int(&t.final_samples)),
    },
    SelfMetricDef {
        name: "container_exporter.inotify.watches",
        prom_name: None,
        instrument: Instrument::UpDownCounter,
        unit: "{watch}",
        attribute: Some("kind"),
        description: "inotify watches held, on directories and on cgroup.events files.",
        emit: |t, _, out| {
            out(Some("directory"), int(&t.watches_dirs));
            out(Some("cgroup_events"), int(&t.watches_events));
        },
    },
    SelfMetricDef {
        name: "container_exporter.inotify.unwatched",
        prom_name: None,
        instrument: Instrument::UpDownCounter,
        unit: "{watch}",
        attribute: Some("kind"),
        description: "Watches missing for want of inotify watches: directories (listed every 2 s instead) and cgroup.events files (exits then seen at the next tick).",
        emit: |t, _, out| {
            out(Some("directory"), int(&t.unwatched_dirs));
            out(Some("cgroup_events"), int(&t.unwatched_events));
        },
    },
    SelfMetricDef {
        name: "container_exporter.containers.reopened",
        prom_name: None,
        instrument: Instrument::UpDownCounter,
        unit: "{container}",
        attribute: None,
        description: "Containers whose files are opened, read and closed every tick because the open-file limit leaves no room to keep them open.",
        emit: one!(|t: &Telemetry, _| int(&t.containers_reopened)),
    },
    SelfMetricDef {
        name: "container_exporter.output.duration",
        prom_name: None,
        instrument: Instrument::Gauge,
        unit: "s",
        attribute: Some("output"),
        description: "Time the last tick spent writing each output: the Prometheus page (render) and the OTLP request (encode and compress).",
        emit: |t, _, out| {
            out(
                Some("prometheus"),
                Value::Double(get(&t.last_render_ns) as f64 / 1e9),
            );
            out(
                Some("otlp"),
                Value::Double(get(&t.last_otlp_encode_ns) as f64 / 1e9),
            );
        },
    },
    SelfMetricDef {
        name: "container_exporter.scrapes",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{request}",
        attribute: None,
        description: "Requests served on /metrics (up to the previous render).",
        emit: one!(|t: &Telemetry, _| int(&t.scrapes)),
    },
    SelfMetricDef {
        name: "container_exporter.metadata.values_cut",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{value}",
        attribute: None,
        description: "Values from the runtimes cut to --attribute-value-length-limit, and labels left out (a longer key, or past --attribute-count-limit).",
        emit: |t, _, out| {
            if let Some(m) = t.metadata.get() {
                out(None, int(&m.values_cut));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.metadata.api_errors",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{error}",
        attribute: Some("source"),
        description: "Failed calls to a runtime, event streams included.",
        emit: |t, _, out| sources(t, Figure::ApiErrors, out),
    },
    SelfMetricDef {
        name: "container_exporter.metadata.connected",
        prom_name: None,
        instrument: Instrument::Gauge,
        unit: "1",
        attribute: Some("source"),
        description: "1 while a metadata source (docker, cri, podman, kubelet_logs) is in sync with its runtime.",
        emit: |t, _, out| sources(t, Figure::Connected, out),
    },
    SelfMetricDef {
        name: "container_exporter.metadata.reconnects",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{connection}",
        attribute: Some("source"),
        description: "Connections to a runtime made again after a failure.",
        emit: |t, _, out| sources(t, Figure::Reconnects, out),
    },
    SelfMetricDef {
        name: "container_exporter.metadata.calls",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{call}",
        attribute: Some("source"),
        description: "Calls sent to a runtime (none per tick).",
        emit: |t, _, out| sources(t, Figure::Calls, out),
    },
    SelfMetricDef {
        name: "container_exporter.metadata.lookups",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{lookup}",
        attribute: Some("source"),
        description: "Listings after the first sync, to name what discovery found.",
        emit: |t, _, out| sources(t, Figure::Lookups, out),
    },
    SelfMetricDef {
        name: "container_exporter.metadata.events",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{event}",
        attribute: Some("source"),
        description: "Events received from a runtime.",
        emit: |t, _, out| sources(t, Figure::Events, out),
    },
    SelfMetricDef {
        name: "container_exporter.otlp.exports",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{request}",
        attribute: Some("outcome"),
        description: "OTLP requests the receiver accepted (success) or that failed for good (failure).",
        emit: |t, _, out| {
            if get(&t.otlp_queue_capacity) > 0 {
                out(Some("success"), int(&t.otlp_exports_succeeded));
                out(Some("failure"), int(&t.otlp_exports_failed));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.otlp.retries",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{attempt}",
        attribute: None,
        description: "OTLP send attempts repeated after a retryable failure.",
        emit: |t, _, out| {
            if get(&t.otlp_queue_capacity) > 0 {
                out(None, int(&t.otlp_retries));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.otlp.dropped_requests",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{request}",
        attribute: None,
        description: "OTLP requests dropped unsent: the oldest of a full queue, or pending at shutdown.",
        emit: |t, _, out| {
            if get(&t.otlp_queue_capacity) > 0 {
                out(None, int(&t.otlp_dropped_requests));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.otlp.rejected_points",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{data_point}",
        attribute: None,
        description: "Data points the OTLP receiver rejected in partial-success responses.",
        emit: |t, _, out| {
            if get(&t.otlp_queue_capacity) > 0 {
                out(None, int(&t.otlp_rejected_points));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.otlp.queue.length",
        prom_name: None,
        instrument: Instrument::UpDownCounter,
        unit: "{tick}",
        attribute: None,
        description: "Ticks whose OTLP requests wait to be sent, each one request or more when cut to --otlp-max-request-size (not counting the request in flight).",
        emit: |t, _, out| {
            if get(&t.otlp_queue_capacity) > 0 {
                out(None, int(&t.otlp_queue_length));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.otlp.queue.capacity",
        prom_name: None,
        instrument: Instrument::UpDownCounter,
        unit: "{tick}",
        attribute: None,
        description: "The bound of the OTLP queue, in ticks (--otlp-queue-size).",
        emit: |t, _, out| {
            if get(&t.otlp_queue_capacity) > 0 {
                out(None, int(&t.otlp_queue_capacity));
            }
        },
    },
    SelfMetricDef {
        name: "process.cpu.time",
        prom_name: Some("process_cpu_seconds_total"),
        instrument: Instrument::Counter,
        unit: "s",
        attribute: None,
        description: "Total user and system CPU time spent in seconds.",
        emit: one!(|_, p: &ProcessStats| Value::Double(p.cpu_seconds)),
    },
    SelfMetricDef {
        name: "process.memory.usage",
        prom_name: Some("process_resident_memory_bytes"),
        instrument: Instrument::UpDownCounter,
        unit: "By",
        attribute: None,
        description: "Resident memory size in bytes.",
        emit: one!(|_, p: &ProcessStats| Value::Int(p.resident_bytes)),
    },
    SelfMetricDef {
        name: "process.unix.file_descriptor.count",
        prom_name: Some("process_open_fds"),
        instrument: Instrument::UpDownCounter,
        unit: "{file_descriptor}",
        attribute: None,
        description: "Number of open file descriptors.",
        emit: one!(|_, p: &ProcessStats| Value::Int(p.open_fds)),
    },
    SelfMetricDef {
        name: "process.unix.file_descriptor.limit",
        prom_name: Some("process_max_fds"),
        instrument: Instrument::UpDownCounter,
        unit: "{file_descriptor}",
        attribute: None,
        description: "Maximum number of open file descriptors.",
        emit: one!(|_, p: &ProcessStats| Value::Int(p.max_fds)),
    },
    SelfMetricDef {
        name: "process.start_time",
        prom_name: Some("process_start_time_seconds"),
        instrument: Instrument::Gauge,
        unit: "s",
        attribute: None,
        description: "Start time of the process since unix epoch in seconds.",
        emit: one!(|_, p: &ProcessStats| Value::Double(p.start_time_seconds)),
    },
    SelfMetricDef {
        name: "container_exporter.disk.walks",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{walk}",
        attribute: Some("outcome"),
        description: "Walks of writable layers and emptyDir volumes finished: complete, or not published (denied: a directory could not be read; too_deep: nested past 64 levels; vanished: removed meanwhile).",
        emit: |t, _, out| {
            if let Some(d) = t.disk.get() {
                out(Some("complete"), int(&d.walks_complete));
                out(Some("denied"), int(&d.walks_denied));
                out(Some("too_deep"), int(&d.walks_too_deep));
                out(Some("vanished"), int(&d.walks_vanished));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.disk.entries",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{entry}",
        attribute: None,
        description: "Directory entries the disk thread looked at (one fstatat each).",
        emit: |t, _, out| {
            if let Some(d) = t.disk.get() {
                out(None, int(&d.entries));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.disk.cpu.time",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "s",
        attribute: None,
        description: "CPU time of the disk thread (user and system), which --disk-cpu-budget bounds.",
        emit: |t, _, out| {
            if let Some(d) = t.disk.get() {
                out(None, Value::Double(get(&d.cpu_ns) as f64 / 1e9));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.disk.layers",
        prom_name: None,
        instrument: Instrument::UpDownCounter,
        unit: "{container}",
        attribute: Some("state"),
        description: "Containers by what is known of their writable layer: found (overlay), unsupported (another root filesystem: no usage shown), unreachable (not below --host-root), pending (not looked at yet).",
        emit: |t, _, out| {
            if let Some(d) = t.disk.get() {
                out(Some("found"), int(&d.layers_found));
                out(Some("unsupported"), int(&d.layers_unsupported));
                out(Some("unreachable"), int(&d.layers_unreachable));
                out(Some("pending"), int(&d.layers_pending));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.disk.lag",
        prom_name: None,
        instrument: Instrument::Gauge,
        unit: "s",
        attribute: None,
        description: "The longest a due walk has waited so far (0 when the disk thread keeps up): how much older than --disk-interval usage gets under --disk-cpu-budget.",
        emit: |t, _, out| {
            if let Some(d) = t.disk.get() {
                out(None, Value::Double(get(&d.lag_ns) as f64 / 1e9));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.exits",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{container}",
        attribute: Some("outcome"),
        description: "Containers that ended, by what was known of why when their final sample went out: the runtime's exit status (code), its word without a usable status (no_code: outside 0–255, or a status call that failed), no word within --exit-wait (timeout), or no runtime to ask (unasked: the kernel's OOM verdict alone).",
        emit: |t, _, out| {
            out(Some("code"), int(&t.exits_code));
            out(Some("no_code"), int(&t.exits_no_code));
            out(Some("timeout"), int(&t.exits_timeout));
            out(Some("unasked"), int(&t.exits_unasked));
        },
    },
    SelfMetricDef {
        name: "container_exporter.exits.pending",
        prom_name: None,
        instrument: Instrument::UpDownCounter,
        unit: "{exit}",
        attribute: Some("waiting_for"),
        description: "Exits the runtimes reported that wait for their container's final sample (final_sample; at most 4096, each at most 2 minutes or two intervals), and final samples waiting for their runtime's word (runtime; each at most --exit-wait).",
        emit: |t, _, out| {
            out(Some("final_sample"), int(&t.exits_held));
            out(Some("runtime"), int(&t.exits_waiting));
        },
    },
];

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
