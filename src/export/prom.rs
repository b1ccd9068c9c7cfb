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

pub use crate::collect::Described;
use crate::collect::{ContainerState, Show};
use crate::config::Naming;
use crate::discovery::Kind;
use crate::metadata::{ContainerMeta, PodMeta};
use crate::metrics::{
    CADVISOR, CadvisorFamily, Conv, Instrument, Metric, MetricDef, Select, Sink, Value,
    otel_to_prometheus,
};
use crate::resource::{AttrDef, HostResource};
use crate::telemetry::{ProcessStats, SELF_METRICS, Telemetry};

/// The Prometheus name of a metric (`name`: its name on containers or on pods): the
/// OpenTelemetry translation ([`otel_to_prometheus`]).
pub fn prom_name(name: &str, def: &MetricDef) -> String {
    // `container.pid.count` would translate to `container_pid_count`, which reads as the
    // `_count` series of a histogram or summary (promtool flags it): name it as cAdvisor-era
    // dashboards expect a process count to be named.
    if let Some(prefix) = name.strip_suffix(".pid.count") {
        return format!("{}_pids", prefix.replace('.', "_"));
    }
    otel_to_prometheus(name, def.unit, def.instrument)
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
    /// One metric of the table, on containers or on pods (each has its own names).
    Otel(Metric, Kind),
    /// A cAdvisor family: containers and pods alike (pods have `container=""`, as on the
    /// kubelet's `/metrics/cadvisor`).
    Cadvisor(&'static CadvisorFamily),
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
    pod: Option<Arc<PodMeta>>,
    /// `container_id="…",container_name="…",…` without braces.
    identity: Vec<u8>,
    /// The whole `container_info{…} 1` line.
    info: Vec<u8>,
    /// Render pass that last used it, to forget containers no longer shown.
    used_in: u64,
}

/// Label names two attributes of one container both map to (`com.example.team` and
/// `com-example-team` are both `container_label_com_example_team`), already warned about.
#[derive(Default)]
struct Collisions(std::collections::HashSet<String>);

impl Collisions {
    fn warn_once(&mut self, label: &str, dropped: &str, id: &str) {
        if self.0.len() < 1024 && self.0.insert(label.to_string()) {
            tracing::warn!(
                %id,
                "attribute {dropped:?} maps to the label {label} that an earlier attribute (in key \
                 order) already has: on the Prometheus page only the first is shown (OTLP has \
                 both); warned once per label name"
            );
        }
    }
}

pub struct PromRenderer {
    collisions: Collisions,
    families: Vec<Family>,
    naming: Naming,
    labels: HashMap<String, Labels>,
    host: HostResource,
    pass: u64,
}

impl PromRenderer {
    pub fn new(host_name: Option<String>, naming: Naming) -> PromRenderer {
        let header = |name: &str, help: &str, kind: &str| {
            let help = help.replace('\\', "\\\\").replace('\n', "\\n");
            format!("# HELP {name} {help}\n# TYPE {name} {kind}\n")
        };
        let families = match naming {
            Naming::Otel => [Kind::Container, Kind::Pod]
                .iter()
                .flat_map(|&subject| Metric::ALL.iter().map(move |&m| (m, subject)))
                // A metric pods do not have has no pod name.
                .filter(|&(metric, subject)| !metric.name(subject).is_empty())
                .map(|(metric, subject)| {
                    let def = metric.def();
                    let name = prom_name(metric.name(subject), def);
                    let kind = match def.instrument {
                        Instrument::Counter => "counter",
                        Instrument::UpDownCounter | Instrument::Gauge => "gauge",
                    };
                    Family {
                        source: Source::Otel(metric, subject),
                        header: header(&name, def.description, kind),
                        name,
                        attr_labels: def.attributes.iter().map(|a| a.replace('.', "_")).collect(),
                    }
                })
                .collect(),
            Naming::Cadvisor => CADVISOR
                .iter()
                .map(|f| Family {
                    source: Source::Cadvisor(f),
                    header: header(
                        f.name,
                        f.help,
                        match (&f.select, f.metric.def().instrument) {
                            (Select::Sample(_), _) => "gauge",
                            (_, Instrument::Counter) => "counter",
                            _ => "gauge",
                        },
                    ),
                    name: f.name.to_string(),
                    attr_labels: Vec::new(),
                })
                .collect(),
        };
        PromRenderer {
            collisions: Collisions::default(),
            families,
            naming,
            labels: HashMap::new(),
            host: HostResource {
                attributes: host_name
                    .map(|h| vec![("host.name".to_string(), h)])
                    .unwrap_or_default(),
            },
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
                Some(l) if c.same(&l.meta, &l.pod) => l.used_in = pass,
                _ => {
                    let mut l = build_labels(c, &self.host, self.naming, &mut self.collisions);
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
                    Source::Otel(m, kind) if *kind == state.kind => {
                        state.emit_metric(*m, now, &mut sink)
                    }
                    Source::Otel(..) => {}
                    Source::Cadvisor(c) => cadvisor_lines(c, state, now, &mut sink),
                }
            }
            if page.len() == body {
                page.truncate(start); // no samples: no header either
            }
        }
        for (kind, header) in [
            (
                Kind::Container,
                &b"# HELP container_info Who each container is: image, runtime, labels. Always 1.\n\
                   # TYPE container_info gauge\n"[..],
            ),
            (
                Kind::Pod,
                &b"# HELP k8s_pod_info Who each Kubernetes pod is: uid, name, namespace, labels. \
                   Always 1.\n# TYPE k8s_pod_info gauge\n"[..],
            ),
        ] {
            let mut any = false;
            for (state, labels) in &rows {
                // An earlier run that shows only its exit is described by the newer one.
                if state.kind == kind && state.show() == Show::All {
                    if !any {
                        page.extend_from_slice(header);
                        any = true;
                    }
                    page.extend_from_slice(&labels.info);
                }
            }
        }
        render_telemetry(page, telemetry, process);
    }
}

/// The label name of a resource attribute: `[a-zA-Z0-9_]`, dots and the rest to `_`.
fn label_name(key: &str) -> String {
    sanitize_label_name(key)
}

fn build_labels(
    d: &Described<'_>,
    host: &HostResource,
    naming: Naming,
    collisions: &mut Collisions,
) -> Labels {
    let state = d.state;
    let attrs = host.attributes(d);
    let get = |k: &str| {
        attrs
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.joined().into_owned())
    };
    let identity_keys: Vec<&str> = attrs
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| AttrDef::is_identity(k, state.kind))
        .collect();
    let mut identity = vec![b'{'];
    match naming {
        Naming::Otel => {
            for &k in &identity_keys {
                if let Some(v) = get(k) {
                    push_label(&mut identity, &label_name(k), &v);
                }
            }
        }
        Naming::Cadvisor => {
            // cAdvisor's: the cgroup path as `id`; `name` is the runtime's name for the
            // container (the container id under CRI runtimes, as the kubelet's cAdvisor has
            // it); `image` the reference with its tag.
            push_label(&mut identity, "id", &format!("/{}", state.rel.display()));
            let meta = d.meta.as_deref();
            let name = match state.kind {
                Kind::Pod => None,
                Kind::Container if meta.is_some_and(|m| m.runtime_name.is_some()) => {
                    Some(state.id.clone())
                }
                Kind::Container => get("container.name"),
            };
            let image = get("container.image.name").map(|i| {
                match meta.and_then(|m| m.image_tags.first()) {
                    Some(tag) => format!("{i}:{tag}"),
                    None => i,
                }
            });
            for (k, v) in [
                ("name", name),
                ("image", image),
                ("namespace", get("k8s.namespace.name")),
                ("pod", get("k8s.pod.name")),
                ("container", get("k8s.container.name")),
            ] {
                if let Some(v) = v {
                    push_label(&mut identity, k, &v);
                }
            }
        }
    }
    let mut info = match state.kind {
        Kind::Container => b"container_info".to_vec(),
        Kind::Pod => b"k8s_pod_info".to_vec(),
    };
    info.extend_from_slice(&identity);
    let mut used: std::collections::HashSet<String> =
        identity_keys.iter().map(|k| label_name(k)).collect();
    for (k, v) in &attrs {
        if identity_keys.contains(&k.as_str()) {
            continue;
        }
        let name = label_name(k);
        // Two keys that sanitize alike (`a.b`, `a-b`): the first, in key order, wins, and
        // the loss is said once per label name.
        if used.insert(name.clone()) {
            push_label(&mut info, &name, &v.joined());
        } else {
            collisions.warn_once(&name, k, &state.id);
        }
    }
    info.extend_from_slice(b"} 1\n");
    // The identity block is used inside other braces: drop its own opening brace.
    identity.remove(0);
    Labels {
        meta: d.meta.clone(),
        pod: d.pod.clone(),
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
    fn line<'l>(&mut self, labels: impl Iterator<Item = (&'l str, &'l str)>, value: Value) {
        let out = &mut *self.page;
        out.extend_from_slice(self.family.name.as_bytes());
        out.push(b'{');
        out.extend_from_slice(self.identity);
        for (name, v) in labels {
            push_label(out, name, v);
        }
        out.extend_from_slice(b"} ");
        push_value(out, value);
        out.push(b'\n');
    }
}

/// One container's lines of a cAdvisor family: its metric's points, picked, relabelled and
/// converted as the table says.
fn cadvisor_lines(
    f: &'static CadvisorFamily,
    state: &ContainerState,
    now: SystemTime,
    sink: &mut LineSink<'_>,
) {
    if let Select::Sample(raw) = f.select {
        if !state.shows(f.metric) {
            return;
        }
        if let Some(v) = state.sample().and_then(raw) {
            sink.line(f.fixed.iter().copied(), v);
        }
        return;
    }
    struct Cad<'s, 'p> {
        f: &'static CadvisorFamily,
        sink: &'s mut LineSink<'p>,
        now: f64,
        sum: Option<f64>,
    }
    impl Sink for Cad<'_, '_> {
        fn point(&mut self, _m: Metric, attrs: &[&str], value: Value) {
            match self.f.select {
                Select::Sum => {
                    *self.sum.get_or_insert(0.0) += value.as_f64();
                    return;
                }
                Select::Attr(i, want) if attrs.get(i) != Some(&want) => return,
                _ => {}
            }
            let value = match self.f.conv {
                Conv::Same => value,
                Conv::StartTime => Value::Double(self.now - value.as_f64()),
            };
            let out = &mut *self.sink.page;
            out.extend_from_slice(self.sink.family.name.as_bytes());
            out.push(b'{');
            out.extend_from_slice(self.sink.identity);
            for (name, v) in self.f.fixed {
                push_label(out, name, v);
            }
            for (label, v) in self.f.labels.iter().zip(attrs) {
                if let Some(label) = label {
                    push_label(out, label, v);
                }
            }
            out.extend_from_slice(b"} ");
            push_value(out, value);
            out.push(b'\n');
        }
    }
    let now_s = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut cad = Cad {
        f,
        sink,
        now: now_s,
        sum: None,
    };
    state.emit_metric(f.metric, now, &mut cad);
    if let Some(total) = cad.sum {
        cad.sink.line(f.fixed.iter().copied(), Value::Double(total));
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

/// The exporter's own metrics, from the one table ([`SELF_METRICS`]).
fn render_telemetry(page: &mut Vec<u8>, t: &Telemetry, p: &ProcessStats) {
    for m in SELF_METRICS {
        let start = page.len();
        let name = m.prometheus_name();
        let kind = match m.instrument {
            Instrument::Counter => "counter",
            Instrument::UpDownCounter | Instrument::Gauge => "gauge",
        };
        page.extend_from_slice(
            format!("# HELP {name} {}\n# TYPE {name} {kind}\n", m.description).as_bytes(),
        );
        let body = page.len();
        (m.emit)(t, p, &mut |attr, v| {
            page.extend_from_slice(name.as_bytes());
            if let (Some(key), Some(value)) = (m.attribute, attr) {
                page.push(b'{');
                push_label(page, key, value);
                page.push(b'}');
            }
            page.push(b' ');
            push_value(page, v);
            page.push(b'\n');
        });
        if page.len() == body {
            page.truncate(start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_otel_translation() {
        let name = |m: Metric| prom_name(m.def().name, m.def());
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
        assert_eq!(name(Metric::ExitCode), "container_exit_code");
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
