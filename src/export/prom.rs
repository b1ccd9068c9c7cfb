//! The Prometheus page: rendered once per tick from the collection, straight into reused
//! buffers, and served from memory by `export::http` (a scrape never reads a cgroup file).
//!
//! Names follow the OpenTelemetry-to-Prometheus translation: dots become underscores, the
//! unit is appended as a word (`s` → `seconds`, `By` → `bytes`; `{…}` annotations are
//! dropped) and monotonic counters end in `_total`. Each series carries the container's
//! identity labels; everything else about the container is on one `container_info` series.
//! No sample carries a timestamp.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::collect::ContainerState;
use crate::config::Naming;
use crate::export::cadvisor;
use crate::metadata::ContainerMeta;
use crate::metrics::{Instrument, Metric, MetricDef, Sink, Value};
use crate::telemetry::{ProcessStats, Telemetry, get};

/// The Prometheus name of a metric.
pub fn prom_name(def: &MetricDef) -> String {
    // `container.pid.count` would translate to `container_pid_count`, which reads as the
    // `_count` series of a histogram or summary (promtool flags it): name it as cAdvisor-era
    // dashboards expect a process count to be named.
    if def.name == "container.pid.count" {
        return "container_pids".to_string();
    }
    let mut name = def.name.replace('.', "_");
    let unit = match def.unit {
        "s" => "seconds",
        "By" => "bytes",
        u if u.starts_with('{') => "",
        "1" => "ratio",
        u => u,
    };
    if !unit.is_empty() && !name.ends_with(unit) {
        name.push('_');
        name.push_str(unit);
    }
    if def.instrument == Instrument::Counter {
        name.push_str("_total");
    }
    name
}

/// Appends `s` as the inside of a quoted label value: `\`, `"` and newline escaped.
pub fn escape_label_value(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// A label name from arbitrary text: `[a-zA-Z0-9_]`, anything else becomes `_`.
pub fn sanitize_label_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn push_label(out: &mut Vec<u8>, name: &str, value: &str) {
    if out.last().is_some_and(|&b| b != b'{') {
        out.push(b',');
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    escape_label_value(out, value);
    out.push(b'"');
}

fn push_value(out: &mut Vec<u8>, v: Value) {
    match v {
        Value::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        Value::Double(d) if d.is_finite() => {
            out.extend_from_slice(ryu::Buffer::new().format_finite(d).as_bytes())
        }
        Value::Double(d) if d.is_nan() => out.extend_from_slice(b"NaN"),
        Value::Double(d) if d > 0.0 => out.extend_from_slice(b"+Inf"),
        Value::Double(_) => out.extend_from_slice(b"-Inf"),
    }
}

/// Where a family's samples come from.
enum Source {
    Otel(Metric),
    Cadvisor(&'static cadvisor::Family),
}

struct Family {
    source: Source,
    name: String,
    /// `# HELP` and `# TYPE` lines.
    header: String,
    /// Attribute label names (dots to underscores), in `MetricDef::attributes` order.
    attr_labels: Vec<String>,
}

/// A container's label blocks, rebuilt only when its metadata changes.
struct Labels {
    meta: Option<Arc<ContainerMeta>>,
    /// `container_id="…",container_name="…",…` without braces.
    identity: Vec<u8>,
    /// The whole `container_info{…} 1` line.
    info: Vec<u8>,
    /// Render pass that last used it, to forget containers no longer shown.
    used_in: u64,
}

/// What the renderer needs to describe one container.
pub struct Described<'a> {
    pub state: &'a ContainerState,
    pub meta: Option<Arc<ContainerMeta>>,
}

pub struct PromRenderer {
    families: Vec<Family>,
    naming: Naming,
    labels: HashMap<String, Labels>,
    host_name: Option<String>,
    pass: u64,
}

impl PromRenderer {
    pub fn new(host_name: Option<String>, naming: Naming) -> PromRenderer {
        let header = |name: &str, help: &str, kind: &str| {
            let help = help.replace('\\', "\\\\").replace('\n', "\\n");
            format!("# HELP {name} {help}\n# TYPE {name} {kind}\n")
        };
        let families = match naming {
            Naming::Otel => Metric::ALL
                .iter()
                .map(|&metric| {
                    let def = metric.def();
                    let name = prom_name(def);
                    let kind = match def.instrument {
                        Instrument::Counter => "counter",
                        Instrument::UpDownCounter | Instrument::Gauge => "gauge",
                    };
                    Family {
                        source: Source::Otel(metric),
                        header: header(&name, def.description, kind),
                        name,
                        attr_labels: def.attributes.iter().map(|a| a.replace('.', "_")).collect(),
                    }
                })
                .collect(),
            Naming::Cadvisor => cadvisor::FAMILIES
                .iter()
                .map(|f| Family {
                    source: Source::Cadvisor(f),
                    header: header(f.name, f.help, f.kind),
                    name: f.name.to_string(),
                    attr_labels: Vec::new(),
                })
                .collect(),
        };
        PromRenderer {
            families,
            naming,
            labels: HashMap::new(),
            host_name,
            pass: 0,
        }
    }

    /// Renders the page for these containers and the exporter's own telemetry into `page`
    /// (cleared first; pass the previous page's buffer back to avoid reallocating). Family
    /// by family, straight into the page: nothing is buffered in between.
    pub fn render<'a>(
        &mut self,
        page: &mut Vec<u8>,
        now: SystemTime,
        containers: impl IntoIterator<Item = Described<'a>>,
        telemetry: &Telemetry,
        process: &ProcessStats,
    ) {
        self.pass += 1;
        let pass = self.pass;
        let containers: Vec<Described<'a>> = containers.into_iter().collect();
        for c in &containers {
            let id = c.state.id.as_str();
            match self.labels.get_mut(id) {
                Some(l) if same_meta(&l.meta, &c.meta) => l.used_in = pass,
                _ => {
                    let mut l = build_labels(
                        c.state,
                        c.meta.clone(),
                        self.host_name.as_deref(),
                        self.naming,
                    );
                    l.used_in = pass;
                    self.labels.insert(id.to_string(), l);
                }
            }
        }
        // Forget label blocks of containers no longer rendered: bounded by what is live.
        self.labels.retain(|_, l| l.used_in == pass);
        let rows: Vec<(&ContainerState, &Labels)> = containers
            .iter()
            .map(|c| (c.state, &self.labels[c.state.id.as_str()]))
            .collect();

        page.clear();
        for f in &self.families {
            let start = page.len();
            page.extend_from_slice(f.header.as_bytes());
            let body = page.len();
            for (state, labels) in &rows {
                let mut sink = LineSink {
                    page,
                    family: f,
                    identity: &labels.identity,
                };
                match &f.source {
                    Source::Otel(m) => state.emit_metric(*m, now, &mut sink),
                    Source::Cadvisor(c) => {
                        (c.emit)(state, now, &mut |extra, v| sink.line(extra, v))
                    }
                }
            }
            if page.len() == body {
                page.truncate(start); // no samples: no header either
            }
        }
        if !rows.is_empty() {
            page.extend_from_slice(
                b"# HELP container_info Who each container is: image, runtime, labels. Always 1.\n\
                  # TYPE container_info gauge\n",
            );
            for (_, labels) in &rows {
                page.extend_from_slice(&labels.info);
            }
        }
        render_telemetry(page, telemetry, process);
    }
}

fn same_meta(a: &Option<Arc<ContainerMeta>>, b: &Option<Arc<ContainerMeta>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

fn build_labels(
    state: &ContainerState,
    meta: Option<Arc<ContainerMeta>>,
    host: Option<&str>,
    naming: Naming,
) -> Labels {
    let m = meta.as_deref();
    let mut identity = vec![b'{'];
    let opt = |v: Option<&String>| v.filter(|s| !s.is_empty()).cloned();
    let name = m.and_then(|m| opt(m.name.as_ref()));
    let image = m.and_then(|m| opt(m.image_name.as_ref()));
    let ns = m.and_then(|m| opt(m.k8s_namespace_name.as_ref()));
    let pod = m.and_then(|m| opt(m.k8s_pod_name.as_ref()));
    let kc = m.and_then(|m| opt(m.k8s_container_name.as_ref()));
    match naming {
        Naming::Otel => {
            push_label(&mut identity, "container_id", &state.id);
            for (k, v) in [
                ("container_name", &name),
                ("container_image_name", &image),
                ("k8s_namespace_name", &ns),
                ("k8s_pod_name", &pod),
                ("k8s_container_name", &kc),
            ] {
                if let Some(v) = v {
                    push_label(&mut identity, k, v);
                }
            }
        }
        Naming::Cadvisor => {
            // cAdvisor's: the cgroup path as `id`, the image reference with its tag.
            push_label(&mut identity, "id", &format!("/{}", state.rel.display()));
            let image_ref = image
                .as_ref()
                .map(|i| match m.and_then(|m| m.image_tags.first()) {
                    Some(tag) => format!("{i}:{tag}"),
                    None => i.clone(),
                });
            for (k, v) in [
                ("name", &name),
                ("image", &image_ref),
                ("namespace", &ns),
                ("pod", &pod),
                ("container", &kc),
            ] {
                if let Some(v) = v {
                    push_label(&mut identity, k, v);
                }
            }
        }
    }
    let mut info = b"container_info".to_vec();
    info.extend_from_slice(&identity);
    let pod_uid = m
        .and_then(|m| opt(m.k8s_pod_uid.as_ref()))
        .or_else(|| state.pod_uid.clone());
    let tags = m.map(|m| m.image_tags.join(",")).filter(|t| !t.is_empty());
    let extra = [
        ("container_image_tags", tags),
        (
            "container_image_id",
            m.and_then(|m| opt(m.image_id.as_ref())),
        ),
        (
            "container_runtime_name",
            Some(state.runtime.as_str().to_string()),
        ),
        ("k8s_pod_uid", pod_uid),
        ("host_name", host.map(str::to_string)),
    ];
    for (k, v) in extra {
        if let Some(v) = v {
            push_label(&mut info, k, &v);
        }
    }
    if let Some(m) = m {
        let mut used = std::collections::HashSet::new();
        for (k, v) in &m.labels {
            let name = format!("container_label_{}", sanitize_label_name(k));
            // Two keys that sanitize alike (`a.b`, `a-b`): the first, in key order, wins.
            if used.insert(name.clone()) {
                push_label(&mut info, &name, v);
            }
        }
    }
    info.extend_from_slice(b"} 1\n");
    // The identity block is used inside other braces: drop its own opening brace.
    identity.remove(0);
    Labels {
        meta,
        identity,
        info,
        used_in: 0,
    }
}

struct LineSink<'a> {
    page: &'a mut Vec<u8>,
    family: &'a Family,
    identity: &'a [u8],
}

impl LineSink<'_> {
    /// One sample with labels given by name (the cAdvisor families).
    fn line(&mut self, extra: &[(&str, &str)], value: Value) {
        let out = &mut *self.page;
        out.extend_from_slice(self.family.name.as_bytes());
        out.push(b'{');
        out.extend_from_slice(self.identity);
        for (name, v) in extra {
            push_label(out, name, v);
        }
        out.extend_from_slice(b"} ");
        push_value(out, value);
        out.push(b'\n');
    }
}

impl Sink for LineSink<'_> {
    fn point(&mut self, _metric: Metric, attrs: &[&str], value: Value) {
        let out = &mut *self.page;
        out.extend_from_slice(self.family.name.as_bytes());
        out.push(b'{');
        out.extend_from_slice(self.identity);
        for (name, v) in self.family.attr_labels.iter().zip(attrs) {
            push_label(out, name, v);
        }
        out.extend_from_slice(b"} ");
        push_value(out, value);
        out.push(b'\n');
    }
}

fn family(
    page: &mut Vec<u8>,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[(&[(&str, &str)], Value)],
) {
    page.extend_from_slice(format!("# HELP {name} {help}\n# TYPE {name} {kind}\n").as_bytes());
    for (labels, v) in samples {
        page.extend_from_slice(name.as_bytes());
        if !labels.is_empty() {
            page.push(b'{');
            for (k, val) in *labels {
                push_label(page, k, val);
            }
            page.push(b'}');
        }
        page.push(b' ');
        push_value(page, *v);
        page.push(b'\n');
    }
}

fn render_telemetry(page: &mut Vec<u8>, t: &Telemetry, p: &ProcessStats) {
    use std::sync::atomic::Ordering::Relaxed;
    let int = |a: &std::sync::atomic::AtomicU64| Value::Int(get(a));
    family(
        page,
        "container_exporter_containers_tracked",
        "gauge",
        "Containers being read each tick.",
        &[(&[], int(&t.containers_tracked))],
    );
    family(
        page,
        "container_exporter_collections_total",
        "counter",
        "Collection ticks completed.",
        &[(&[], int(&t.collections))],
    );
    family(
        page,
        "container_exporter_collection_duration_seconds",
        "gauge",
        "Duration of the last collection tick (reading every container and rendering).",
        &[(&[], Value::Double(get(&t.last_collection_ns) as f64 / 1e9))],
    );
    family(
        page,
        "container_exporter_read_errors_total",
        "counter",
        "cgroup files that could not be read (io), opened (open) or parsed (malformed, truncated).",
        &[
            (&[("kind", "io")], int(&t.read_errors_io)),
            (&[("kind", "open")], int(&t.read_errors_open)),
            (&[("kind", "malformed")], int(&t.read_errors_malformed)),
            (&[("kind", "truncated")], int(&t.read_errors_truncated)),
        ],
    );
    family(
        page,
        "container_exporter_discovery_events_total",
        "counter",
        "Containers added and removed, full rescans, and inotify queue overflows.",
        &[
            (&[("event", "added")], int(&t.discovery_added)),
            (&[("event", "removed")], int(&t.discovery_removed)),
            (&[("event", "rescan")], int(&t.discovery_rescans)),
            (&[("event", "overflow")], int(&t.discovery_overflows)),
        ],
    );
    family(
        page,
        "container_exporter_final_samples_total",
        "counter",
        "Final samples taken when a container's last process left or its cgroup went.",
        &[(&[], int(&t.final_samples))],
    );
    family(
        page,
        "container_exporter_inotify_watches",
        "gauge",
        "inotify watches held, on directories and on cgroup.events files.",
        &[
            (&[("kind", "directory")], int(&t.watches_dirs)),
            (&[("kind", "cgroup_events")], int(&t.watches_events)),
        ],
    );
    family(
        page,
        "container_exporter_inotify_unwatched",
        "gauge",
        "Watches missing for want of inotify watches: directories (listed every 2 s instead) and cgroup.events files (exits then seen at the next tick).",
        &[
            (&[("kind", "directory")], int(&t.unwatched_dirs)),
            (&[("kind", "cgroup_events")], int(&t.unwatched_events)),
        ],
    );
    family(
        page,
        "container_exporter_containers_reopened",
        "gauge",
        "Containers whose files are opened, read and closed every tick because the open-file limit leaves no room to keep them open.",
        &[(&[], int(&t.containers_reopened))],
    );
    family(
        page,
        "container_exporter_output_duration_seconds",
        "gauge",
        "Time the last tick spent writing each output: the Prometheus page (render) and the OTLP request (encode and compress).",
        &[
            (
                &[("output", "prometheus")],
                Value::Double(get(&t.last_render_ns) as f64 / 1e9),
            ),
            (
                &[("output", "otlp")],
                Value::Double(get(&t.last_otlp_encode_ns) as f64 / 1e9),
            ),
        ],
    );
    family(
        page,
        "container_exporter_scrapes_total",
        "counter",
        "Requests served on /metrics (up to the previous render).",
        &[(&[], int(&t.scrapes))],
    );
    if let Some(d) = t.docker.get() {
        family(
            page,
            "container_exporter_docker_api_errors_total",
            "counter",
            "Docker API calls or event streams that failed (the exporter reconnects with backoff).",
            &[(&[], int(&d.api_errors))],
        );
        family(
            page,
            "container_exporter_docker_connected",
            "gauge",
            "1 while the Docker event stream is connected.",
            &[(&[], Value::Int(u64::from(d.connected.load(Relaxed))))],
        );
    }
    if get(&t.otlp_queue_capacity) > 0 {
        family(
            page,
            "container_exporter_otlp_exports_total",
            "counter",
            "OTLP requests the receiver accepted (success) or that failed for good (failure).",
            &[
                (&[("outcome", "success")], int(&t.otlp_exports_succeeded)),
                (&[("outcome", "failure")], int(&t.otlp_exports_failed)),
            ],
        );
        family(
            page,
            "container_exporter_otlp_retries_total",
            "counter",
            "OTLP send attempts repeated after a retryable failure.",
            &[(&[], int(&t.otlp_retries))],
        );
        family(
            page,
            "container_exporter_otlp_dropped_requests_total",
            "counter",
            "OTLP requests dropped unsent: the oldest of a full queue, or pending at shutdown.",
            &[(&[], int(&t.otlp_dropped_requests))],
        );
        family(
            page,
            "container_exporter_otlp_rejected_points_total",
            "counter",
            "Data points the OTLP receiver rejected in partial-success responses.",
            &[(&[], int(&t.otlp_rejected_points))],
        );
        family(
            page,
            "container_exporter_otlp_queue_length",
            "gauge",
            "OTLP requests waiting to be sent (not counting the one in flight).",
            &[(&[], int(&t.otlp_queue_length))],
        );
        family(
            page,
            "container_exporter_otlp_queue_capacity",
            "gauge",
            "The bound of the OTLP queue (--otlp-queue-size).",
            &[(&[], int(&t.otlp_queue_capacity))],
        );
    }
    family(
        page,
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        &[(&[], Value::Double(p.cpu_seconds))],
    );
    family(
        page,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        &[(&[], Value::Int(p.resident_bytes))],
    );
    family(
        page,
        "process_open_fds",
        "gauge",
        "Number of open file descriptors.",
        &[(&[], Value::Int(p.open_fds))],
    );
    family(
        page,
        "process_max_fds",
        "gauge",
        "Maximum number of open file descriptors.",
        &[(&[], Value::Int(p.max_fds))],
    );
    family(
        page,
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        &[(&[], Value::Double(p.start_time_seconds))],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_otel_translation() {
        let name = |m: Metric| prom_name(m.def());
        assert_eq!(name(Metric::CpuTime), "container_cpu_time_seconds_total");
        assert_eq!(name(Metric::CpuUsage), "container_cpu_usage");
        assert_eq!(name(Metric::MemoryUsage), "container_memory_usage_bytes");
        assert_eq!(name(Metric::DiskIo), "container_disk_io_bytes_total");
        assert_eq!(
            name(Metric::CpuThrottledPeriods),
            "container_cpu_cfs_throttled_periods_total"
        );
        assert_eq!(
            name(Metric::CpuPressure),
            "container_cpu_pressure_stall_time_seconds_total"
        );
        assert_eq!(name(Metric::Uptime), "container_uptime_seconds");
        assert_eq!(name(Metric::PidCount), "container_pids");
        assert_eq!(name(Metric::PidLimit), "container_pid_limit");
    }

    #[test]
    fn hostile_label_values_are_escaped() {
        let mut out = Vec::new();
        escape_label_value(&mut out, "a\"b\\c\nd é");
        assert_eq!(out, "a\\\"b\\\\c\\nd é".as_bytes());
        assert_eq!(
            sanitize_label_name("io.kubernetes/pod-name"),
            "io_kubernetes_pod_name"
        );
        assert_eq!(sanitize_label_name("1x"), "_1x");
    }
}
