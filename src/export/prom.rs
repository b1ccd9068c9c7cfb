//! The Prometheus page: rendered from the newest tick's collection when a scrape asks for it
//! ([`super::page`]), straight into a reused buffer handed out in pieces (compressed as they
//! come), and served from memory by `export::http` (a scrape never reads a cgroup file).
//! Names follow the OpenTelemetry-to-Prometheus translation ([`otel_to_prometheus`]); each
//! series carries the container's identity labels, everything else about it is on one
//! `container_info` series (`docs/metrics.md`). With `--prometheus-names cadvisor` the same pass
//! writes cAdvisor's families and labels ([`super::cadvisor`]). The text format's pieces are
//! [`super::text`]'s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

pub use crate::collect::Described;
use crate::collect::{ContainerState, Show};
use crate::config::Naming;
use crate::discovery::Kind;
use crate::host::block::BlockNames;
use crate::host::machine::Machine;
use crate::metadata::{ContainerMeta, PodMeta};
use crate::metrics::{Metric, MetricDef, otel_to_prometheus};
use crate::resource::{AttrDef, HostResource};
use crate::telemetry::{ProcessStats, SELF_METRICS, Telemetry};

use super::cadvisor::{CADVISOR, CadvisorFamily, cadvisor_lines, machine_lines};
use super::text::{LineSink, header, label_name, prom_type, push_label, push_value};

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
    /// A cAdvisor network family: a pod's lines carry its sandbox's identity.
    net: bool,
}

/// A Kubernetes pod's sandbox (its "pause" container), whose identity the cAdvisor page gives
/// the pod's network series, as the kubelet's cAdvisor does (it reports a pod's network on the
/// sandbox, the one container of the pod with a network namespace of its own).
struct Sandbox {
    id: String,
    /// Its cgroup, relative to the hierarchies' mounts.
    rel: std::path::PathBuf,
    meta: Option<Arc<ContainerMeta>>,
}

/// A container's label blocks, rebuilt only when its metadata changes.
struct Labels {
    meta: Option<Arc<ContainerMeta>>,
    pod: Option<Arc<PodMeta>>,
    /// The sandbox `net_identity` was built from (id, metadata), for a pod on the cAdvisor page.
    sandbox: Option<(String, Option<Arc<ContainerMeta>>)>,
    /// `container_id="…",container_name="…",…` without braces.
    identity: Vec<u8>,
    /// A pod's identity on the cAdvisor page's network series: its sandbox's.
    net_identity: Option<Vec<u8>>,
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
    /// The cAdvisor page's `device` names.
    devices: BlockNames,
    /// The cAdvisor page's `machine_*` lines, written once.
    machine: Vec<u8>,
    /// The sandboxes of the pods on the page, by pod uid (cAdvisor page only; replaced at
    /// every [`set_sandboxes`](Self::set_sandboxes), so bounded by the pods that exist).
    sandboxes: HashMap<String, Sandbox>,
}

impl PromRenderer {
    pub fn new(host_name: Option<String>, naming: Naming) -> PromRenderer {
        let families = match naming {
            Naming::Otel => [Kind::Container, Kind::Pod]
                .iter()
                .flat_map(|&subject| Metric::ALL.iter().map(move |&m| (m, subject)))
                // A metric pods do not have has no pod name.
                .filter(|&(metric, subject)| !metric.name(subject).is_empty())
                .map(|(metric, subject)| {
                    let def = metric.def();
                    let name = prom_name(metric.name(subject), def);
                    Family {
                        source: Source::Otel(metric, subject),
                        header: header(&name, def.description, prom_type(def.instrument)),
                        name,
                        attr_labels: def.attributes.iter().map(|a| a.replace('.', "_")).collect(),
                        net: false,
                    }
                })
                .collect(),
            Naming::Cadvisor => CADVISOR
                .iter()
                .map(|f| Family {
                    source: Source::Cadvisor(f),
                    header: header(f.name, f.help, f.prom_type()),
                    name: f.name.to_string(),
                    attr_labels: Vec::new(),
                    net: f.network(),
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
            devices: BlockNames::default(),
            machine: Vec::new(),
            sandboxes: HashMap::new(),
        }
    }

    /// The host's CPUs and memory as the cAdvisor page's `machine_cpu_cores` and
    /// `machine_memory_bytes` (nothing on the OpenTelemetry page: the host's own metrics are a
    /// host agent's).
    pub fn with_machine(mut self, m: Machine) -> PromRenderer {
        self.machine = match self.naming {
            Naming::Cadvisor => machine_lines(&m),
            Naming::Otel => Vec::new(),
        };
        self
    }

    /// Where the cAdvisor page finds block device names (`/sys/dev/block` unless set).
    pub fn with_block_names(mut self, names: BlockNames) -> PromRenderer {
        self.devices = names;
        self
    }

    /// The pods' sandboxes as this tick has them (the containers marked `sandbox`, which are
    /// not on the page themselves): on the cAdvisor page a pod's network series carry its
    /// sandbox's `id`, `name` and `image`, as the kubelet's do. Without one (no CRI names, or
    /// the OpenTelemetry page), they carry the pod's.
    pub fn set_sandboxes<'a>(&mut self, sandboxes: impl IntoIterator<Item = Described<'a>>) {
        self.sandboxes.clear();
        if self.naming != Naming::Cadvisor {
            return;
        }
        for d in sandboxes {
            let Some(meta) = d.meta.as_ref().filter(|m| m.sandbox) else {
                continue;
            };
            let Some(uid) = d.state.pod_uid.as_ref().or(meta.k8s_pod_uid.as_ref()) else {
                continue;
            };
            self.sandboxes
                .entry(uid.clone())
                .or_insert_with(|| Sandbox {
                    id: d.state.id.clone(),
                    rel: d.state.rel.clone(),
                    meta: d.meta.clone(),
                });
        }
    }

    /// Renders the page for these containers and the exporter's own telemetry into `page`
    /// (cleared first). Family by family, straight into the page: nothing is buffered in
    /// between.
    pub fn render<'a>(
        &mut self,
        page: &mut Vec<u8>,
        now: SystemTime,
        containers: impl IntoIterator<Item = Described<'a>>,
        telemetry: &Telemetry,
        process: &ProcessStats,
    ) {
        self.render_with(page, &mut |_, _| {}, now, containers, telemetry, process);
    }

    /// Renders as [`render`](Self::render), handing the page to `spill` in pieces: after each
    /// family (`false`) and at the end (`true`); what `spill` takes out of the buffer is not
    /// seen again. The daemon compresses the pieces as they come, so that the whole page is
    /// never held uncompressed.
    pub fn render_with<'a>(
        &mut self,
        page: &mut Vec<u8>,
        spill: &mut dyn FnMut(&mut Vec<u8>, bool),
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
            let sandbox = match c.state.kind {
                Kind::Pod => self.sandboxes.get(id),
                Kind::Container => None,
            };
            match self.labels.get_mut(id) {
                Some(l) if c.same(&l.meta, &l.pod) && same_sandbox(&l.sandbox, sandbox) => {
                    l.used_in = pass
                }
                _ => {
                    let mut l =
                        build_labels(c, sandbox, &self.host, self.naming, &mut self.collisions);
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
        // Rows of one name next to each other are one family: one header for them all.
        for group in self.families.chunk_by(|a, b| a.name == b.name) {
            let start = page.len();
            page.extend_from_slice(group[0].header.as_bytes());
            let body = page.len();
            for f in group {
                for (state, labels) in &rows {
                    let identity = match (&labels.net_identity, state.kind) {
                        (Some(net), Kind::Pod) if f.net => net,
                        _ => &labels.identity,
                    };
                    let mut sink = LineSink {
                        page,
                        name: &f.name,
                        attr_labels: &f.attr_labels,
                        identity,
                    };
                    match &f.source {
                        Source::Otel(m, kind) if *kind == state.kind => {
                            state.emit_metric(*m, now, &mut sink)
                        }
                        Source::Otel(..) => {}
                        Source::Cadvisor(c) => {
                            cadvisor_lines(c, state, now, &mut sink, &mut self.devices)
                        }
                    }
                }
            }
            if page.len() == body {
                page.truncate(start); // no samples: no header either
            }
            spill(page, false);
        }
        page.extend_from_slice(&self.machine);
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
            spill(page, false);
        }
        render_telemetry(page, telemetry, process);
        spill(page, true);
    }
}

/// Whether a pod's label blocks were built with this sandbox (the same one, described the
/// same).
fn same_sandbox(
    built: &Option<(String, Option<Arc<ContainerMeta>>)>,
    now: Option<&Sandbox>,
) -> bool {
    match (built, now) {
        (None, None) => true,
        (Some((id, meta)), Some(s)) => {
            *id == s.id && meta.as_ref().map(Arc::as_ptr) == s.meta.as_ref().map(Arc::as_ptr)
        }
        _ => false,
    }
}

/// Appends the labels that have a value.
fn push_labels<'a>(out: &mut Vec<u8>, labels: impl IntoIterator<Item = (&'a str, Option<String>)>) {
    for (k, v) in labels {
        if let Some(v) = v {
            push_label(out, k, &v);
        }
    }
}

/// The image reference cAdvisor writes as `image`: the name with its tag.
fn image_ref(name: Option<String>, meta: Option<&ContainerMeta>) -> Option<String> {
    name.map(|i| match meta.and_then(|m| m.image_tags.first()) {
        Some(tag) => format!("{i}:{tag}"),
        None => i,
    })
}

fn build_labels(
    d: &Described<'_>,
    sandbox: Option<&Sandbox>,
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
    let mut used: std::collections::HashSet<String> =
        identity_keys.iter().map(|k| label_name(k)).collect();
    let mut identity = vec![b'{'];
    let mut net_identity = None;
    // Attributes written on every series besides the identity keys (the cAdvisor page's
    // container labels): not on the info series again.
    let mut on_every_series: Vec<&str> = Vec::new();
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
            let image = image_ref(get("container.image.name"), meta);
            let (namespace, pod) = (get("k8s.namespace.name"), get("k8s.pod.name"));
            push_labels(
                &mut identity,
                [
                    ("name", name),
                    ("image", image),
                    ("namespace", namespace.clone()),
                    ("pod", pod.clone()),
                    ("container", get("k8s.container.name")),
                ],
            );
            // The runtime's labels that the allow-list lets through, on every series as
            // cAdvisor writes them (`container_label_<key>`), not only on `container_info`.
            for (k, v) in &attrs {
                if k.starts_with("container.label.") {
                    let name = label_name(k);
                    if used.insert(name.clone()) {
                        push_label(&mut identity, &name, &v.joined());
                        on_every_series.push(k);
                    } else {
                        collisions.warn_once(&name, k, &state.id);
                    }
                }
            }
            // A pod's network, as the kubelet shows it: on its sandbox.
            if let (Kind::Pod, Some(s)) = (state.kind, sandbox) {
                let sm = s.meta.as_deref();
                let mut net = Vec::new();
                push_label(&mut net, "id", &format!("/{}", s.rel.display()));
                let name = match sm {
                    Some(m) if m.runtime_name.is_none() => m.name.clone(),
                    _ => Some(s.id.clone()),
                };
                let image = image_ref(sm.and_then(|m| m.image_name.clone()), sm);
                let labels = [("namespace", namespace), ("pod", pod)];
                push_labels(&mut net, [("name", name), ("image", image)]);
                push_labels(&mut net, labels);
                net_identity = Some(net);
            }
        }
    }
    let mut info = match state.kind {
        Kind::Container => b"container_info".to_vec(),
        Kind::Pod => b"k8s_pod_info".to_vec(),
    };
    info.extend_from_slice(&identity);
    for (k, v) in &attrs {
        if identity_keys.contains(&k.as_str()) || on_every_series.contains(&k.as_str()) {
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
        sandbox: sandbox.map(|s| (s.id.clone(), s.meta.clone())),
        identity,
        net_identity,
        info,
        used_in: 0,
    }
}

/// The exporter's own metrics, from the one table ([`SELF_METRICS`]).
fn render_telemetry(page: &mut Vec<u8>, t: &Telemetry, p: &ProcessStats) {
    for m in SELF_METRICS {
        let start = page.len();
        let name = m.prometheus_name();
        page.extend_from_slice(header(&name, m.description, prom_type(m.instrument)).as_bytes());
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
}
