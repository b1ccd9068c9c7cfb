//! The exporter's own counters (`container_exporter_*`), shared by the collector thread, the
//! HTTP server and the metadata tasks, and the one table of self-metrics ([`SELF_METRICS`])
//! that the Prometheus page, OTLP and the README's reference are all written from.
//!
//! To add a self-metric: a counter in [`Telemetry`] (or a field of [`ProcessStats`]), and a
//! row in [`SELF_METRICS`] whose `emit` reads it.
//!
//! Its length is the self-metric table: one row per metric, on purpose in one place.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use crate::metrics::{Instrument, Value, otel_to_prometheus};

#[derive(Debug, Default)]
pub struct Telemetry {
    pub collections: AtomicU64,
    /// Duration of the last collection tick (read + render), in nanoseconds.
    pub last_collection_ns: AtomicU64,
    pub containers_tracked: AtomicU64,
    pub read_errors_io: AtomicU64,
    pub read_errors_malformed: AtomicU64,
    pub read_errors_truncated: AtomicU64,
    pub read_errors_open: AtomicU64,
    pub dropped_devices: AtomicU64,
    pub dropped_interfaces: AtomicU64,
    pub discovery_added: AtomicU64,
    pub discovery_removed: AtomicU64,
    pub discovery_rescans: AtomicU64,
    pub discovery_overflows: AtomicU64,
    pub final_samples: AtomicU64,
    pub watches_dirs: AtomicU64,
    pub watches_events: AtomicU64,
    /// Directories that could not be watched (out of inotify watches): rescanned every few
    /// seconds instead.
    pub unwatched_dirs: AtomicU64,
    /// Containers whose `cgroup.events` could not be watched: their exit is seen at the
    /// next tick instead of at once.
    pub unwatched_events: AtomicU64,
    /// Containers read by open-read-close because the open-file limit leaves no room to keep
    /// their files open.
    pub containers_reopened: AtomicU64,
    /// Time the last tick spent rendering the page, and encoding the OTLP request
    /// (nanoseconds).
    pub last_render_ns: AtomicU64,
    pub last_otlp_encode_ns: AtomicU64,
    pub scrapes: AtomicU64,
    /// OTLP requests the receiver accepted (fully or partially).
    pub otlp_exports_succeeded: AtomicU64,
    /// OTLP requests that failed for good (permanent error, or given up while retrying).
    pub otlp_exports_failed: AtomicU64,
    /// OTLP send attempts repeated after a retryable failure.
    pub otlp_retries: AtomicU64,
    /// OTLP requests dropped unsent: the oldest of a full queue, or pending at shutdown.
    pub otlp_dropped_requests: AtomicU64,
    /// Data points the receiver rejected in partial-success responses.
    pub otlp_rejected_points: AtomicU64,
    /// Ticks with OTLP requests waiting in the queue (not counting the request being sent).
    pub otlp_queue_length: AtomicU64,
    /// The queue's bound in ticks (`--otlp-queue-size`); zero while OTLP is off.
    pub otlp_queue_capacity: AtomicU64,
    /// Values from the runtimes cut to `--attribute-value-length-limit` (labels left out for
    /// a longer key included); shared with the metadata stores.
    pub metadata_values_cut: Arc<AtomicU64>,
    /// Set when Docker metadata is enabled.
    pub docker: OnceLock<Arc<DockerStats>>,
    /// Set when Podman metadata is enabled.
    pub podman: OnceLock<Arc<DockerStats>>,
    /// Set when CRI metadata is enabled.
    pub cri: OnceLock<Arc<CriStats>>,
    /// Set when disk usage is on.
    pub disk: OnceLock<Arc<crate::disk::DiskStats>>,
    /// Containers that ended, by how their exit was known (see `departures::ExitCounts`).
    pub exits_code: AtomicU64,
    pub exits_no_code: AtomicU64,
    pub exits_timeout: AtomicU64,
    pub exits_unasked: AtomicU64,
    /// Runtimes' exits held for a final sample, and final samples waiting for an exit.
    pub exits_held: AtomicU64,
    pub exits_waiting: AtomicU64,
}

/// The Docker (or Podman) metadata source's counters, for the exporter's self-metrics.
#[derive(Debug, Default)]
pub struct DockerStats {
    /// Failed connects, lists, streams (including a stream the daemon closed) and inspects
    /// (other than "no such container").
    pub api_errors: AtomicU64,
    /// True while the store is in sync with a live events stream.
    pub connected: AtomicBool,
    /// Connections established after a failure (a daemon that came back, or one that was
    /// absent when the exporter started).
    pub reconnects: AtomicU64,
}

/// The CRI (containerd, CRI-O) metadata source's counters, for the exporter's self-metrics and
/// for the tests that count what metadata costs the runtime.
#[derive(Debug, Default)]
pub struct CriStats {
    /// Failed connects, calls and event streams (including a connection the runtime closed).
    pub api_errors: AtomicU64,
    /// True while connected and in sync.
    pub connected: AtomicBool,
    /// Connections established after a failure (a runtime that came back, or one that was
    /// absent when the exporter started).
    pub reconnects: AtomicU64,
    /// List calls made after a connection's initial listing: lookups of ids that discovery
    /// asked for, their retries, and periodic resyncs where the runtime has no events.
    pub lookups: AtomicU64,
    /// Every call sent to the runtime, the initial ones included.
    pub calls: AtomicU64,
    /// Messages received on the `GetContainerEvents` stream.
    pub events: AtomicU64,
}

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

fn flag(b: &AtomicBool) -> Value {
    Value::Int(u64::from(b.load(Relaxed)))
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

/// A source's counters, when the source is on.
fn source(s: &OnceLock<Arc<DockerStats>>) -> Option<&DockerStats> {
    s.get().map(|s| &**s)
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
        description: "Values from the container runtimes (names, image references, labels, pod labels) cut to --attribute-value-length-limit, and labels left out for a longer key or past --attribute-count-limit; counted when a container's or pod's description is stored (an unchanged one again is not counted).",
        emit: one!(|t: &Telemetry, _| Value::Int(t.metadata_values_cut.load(Relaxed))),
    },
    SelfMetricDef {
        name: "container_exporter.docker.api_errors",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{error}",
        attribute: None,
        description: "Docker API calls or event streams that failed (the exporter reconnects with backoff).",
        emit: |t, _, out| {
            if let Some(d) = source(&t.docker) {
                out(None, int(&d.api_errors));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.docker.connected",
        prom_name: None,
        instrument: Instrument::Gauge,
        unit: "1",
        attribute: None,
        description: "1 while the Docker event stream is connected.",
        emit: |t, _, out| {
            if let Some(d) = source(&t.docker) {
                out(None, flag(&d.connected));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.docker.reconnects",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{connection}",
        attribute: None,
        description: "Connections to Docker made again after a failure.",
        emit: |t, _, out| {
            if let Some(d) = source(&t.docker) {
                out(None, int(&d.reconnects));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.podman.api_errors",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{error}",
        attribute: None,
        description: "Podman API calls or event streams that failed (the exporter reconnects with backoff).",
        emit: |t, _, out| {
            if let Some(d) = source(&t.podman) {
                out(None, int(&d.api_errors));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.podman.connected",
        prom_name: None,
        instrument: Instrument::Gauge,
        unit: "1",
        attribute: None,
        description: "1 while the Podman event stream is connected.",
        emit: |t, _, out| {
            if let Some(d) = source(&t.podman) {
                out(None, flag(&d.connected));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.cri.api_errors",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{error}",
        attribute: None,
        description: "CRI calls or event streams that failed (the exporter reconnects with backoff).",
        emit: |t, _, out| {
            if let Some(c) = t.cri.get() {
                out(None, int(&c.api_errors));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.cri.connected",
        prom_name: None,
        instrument: Instrument::Gauge,
        unit: "1",
        attribute: None,
        description: "1 while the metadata from the CRI runtime is in sync.",
        emit: |t, _, out| {
            if let Some(c) = t.cri.get() {
                out(None, flag(&c.connected));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.cri.calls",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{call}",
        attribute: None,
        description: "Calls sent to the CRI runtime, the listing at every connect included (never one per tick).",
        emit: |t, _, out| {
            if let Some(c) = t.cri.get() {
                out(None, int(&c.calls));
            }
        },
    },
    SelfMetricDef {
        name: "container_exporter.cri.lookups",
        prom_name: None,
        instrument: Instrument::Counter,
        unit: "{call}",
        attribute: None,
        description: "CRI list calls made after the first sync, to name containers and pods discovery found.",
        emit: |t, _, out| {
            if let Some(c) = t.cri.get() {
                out(None, int(&c.lookups));
            }
        },
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

/// Reads a counter.
pub fn get(a: &AtomicU64) -> u64 {
    a.load(Relaxed)
}

pub fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Relaxed);
}

pub fn set(a: &AtomicU64, n: u64) {
    a.store(n, Relaxed);
}

/// This process's resource use, for the standard `process_*` metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub start_time_seconds: f64,
}

/// Where the descriptor count cannot be had from one `stat` (kernels before 6.2), counting
/// `/proc/self/fd` costs about 0.3 µs per descriptor (0.6 ms with 1,900 open), so the count is
/// taken at most this often and reused in between.
const FD_RECOUNT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// What [`ProcessStats::read`] keeps between calls: the start time (it never changes), a
/// kept-open `/proc/self/statm`, and the last descriptor count where it must be counted.
struct ProcessFiles {
    start_time_seconds: f64,
    statm: Option<std::fs::File>,
    page_size: u64,
    counted_fds: Option<(std::time::Instant, u64)>,
}

static PROCESS: std::sync::Mutex<Option<ProcessFiles>> = std::sync::Mutex::new(None);

impl ProcessStats {
    /// The process's figures, at the cost of a few syscalls: called once per tick, so it must
    /// not cost like the containers' reads. CPU from `getrusage` (all threads, µs), resident
    /// memory from a kept-open `/proc/self/statm`, open descriptors from the size the kernel
    /// reports for `/proc/self/fd` (Linux 6.2+; counted, at most every 30 s, before that).
    /// Fields that cannot be read stay zero.
    pub fn read() -> ProcessStats {
        let mut guard = PROCESS.lock().unwrap_or_else(|e| e.into_inner());
        let files = guard.get_or_insert_with(ProcessFiles::open);
        let mut s = ProcessStats {
            start_time_seconds: files.start_time_seconds,
            ..ProcessStats::default()
        };
        use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage};
        if let Ok(u) = getrusage(UsageWho::RUSAGE_SELF) {
            let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            s.cpu_seconds = secs(u.user_time()) + secs(u.system_time());
        }
        if let Some(statm) = &files.statm {
            let mut buf = [0u8; 128];
            if let Ok(n) = std::os::unix::fs::FileExt::read_at(statm, &mut buf, 0) {
                // "size resident shared text lib data dt", in pages.
                let resident = std::str::from_utf8(&buf[..n])
                    .ok()
                    .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok());
                s.resident_bytes = resident.unwrap_or(0) * files.page_size;
            }
        }
        s.open_fds = files.open_fds();
        if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) {
            s.max_fds = soft;
        }
        s
    }
}

impl ProcessFiles {
    fn open() -> ProcessFiles {
        let ticks = 100.0; // USER_HZ on every Linux architecture that matters here
        let start = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| {
                let after = stat.rsplit_once(')')?.1.to_string();
                // Fields after the command: state is [0], starttime [19] (clock ticks after boot).
                after.split_whitespace().nth(19)?.parse::<f64>().ok()
            });
        let start_time_seconds = match (boot_time(), start) {
            (Some(boot), Some(start)) => boot + start / ticks,
            _ => 0.0,
        };
        let page_size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map_or(4096, |p| p as u64);
        ProcessFiles {
            start_time_seconds,
            statm: std::fs::File::open("/proc/self/statm").ok(),
            page_size,
            counted_fds: None,
        }
    }

    fn open_fds(&mut self) -> u64 {
        // Linux 6.2+ reports the number of open descriptors as the size of /proc/self/fd
        // (0 before), which spares listing ~18 entries per container every tick.
        if let Ok(m) = std::fs::metadata("/proc/self/fd")
            && m.len() > 0
        {
            return m.len();
        }
        let now = std::time::Instant::now();
        match self.counted_fds {
            Some((at, n)) if now.duration_since(at) < FD_RECOUNT_EVERY => n,
            _ => {
                // Less the descriptor of the listing itself.
                let n = std::fs::read_dir("/proc/self/fd")
                    .map_or(0, |d| d.count().saturating_sub(1) as u64);
                self.counted_fds = Some((now, n));
                n
            }
        }
    }
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}
