//! The names in the tables against the OpenTelemetry semantic conventions' own registry, at
//! the version pinned in `.ci/semconv-requirements.txt` (the Python package
//! `opentelemetry-semantic-conventions`, installed by `.ci/semconv-up.sh`; the registry is read
//! by `tests/semconv/registry.py`).
//!
//! Every metric of [`METRICS`] (its container name, its pod name and its attributes) and every
//! resource attribute of [`ATTRIBUTES`] is held against the registry, so a row added to either
//! table is covered without touching this file:
//!
//! - a name the conventions define must not be deprecated there, and a metric must have the
//!   registry's instrument and unit; a row marked semconv must be defined there;
//! - a name they do not define is an extension, and must not collide with one they do: not the
//!   same name (a row marked *(ext)* whose name the conventions define is such a collision), not
//!   a namespace of a defined name, not under a defined name;
//! - a template attribute (`container.label.<key>`) must be a template there;
//! - every value the metrics write for an enumerated attribute (`cpu.mode`, `disk.io.direction`,
//!   …) must be one of its members, and not a deprecated one.
//!
//! Names on the page differ from the registry's only as the OpenTelemetry-to-Prometheus
//! translation says, so they are not checked again here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use container_exporter::cgroup::CgroupSample;
use container_exporter::cgroup::sample::{IfName, IoDevice, NetIface, Psi};
use container_exporter::metrics::{self, Context, METRICS, Metric, Origin, Sink, Value};
use container_exporter::resource::ATTRIBUTES;
use container_exporter::telemetry::SELF_METRICS;
use serde_json::Value as Json;

const SETUP: &str = ".ci/semconv-up.sh";
const REQUIREMENTS: &str = ".ci/semconv-requirements.txt";

/// The virtualenv's python, where `.ci/semconv-up.sh` makes it.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("CONTAINER_EXPORTER_SEMCONV_PYTHON") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("CE_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|d| Path::new(&d).join("container-exporter"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/container-exporter"))
        })
        .expect("HOME is not set");
    cache.join("semconv-venv/bin/python")
}

/// The pinned version of the package, from the requirements file.
fn pinned() -> String {
    let req = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(REQUIREMENTS))
        .expect(REQUIREMENTS);
    req.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("opentelemetry-semantic-conventions==")
        })
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the requirements pin opentelemetry-semantic-conventions")
        .to_string()
}

struct Registry {
    metrics: serde_json::Map<String, Json>,
    attributes: serde_json::Map<String, Json>,
}

impl Registry {
    fn load() -> Registry {
        let py = python();
        assert!(
            py.exists(),
            "{} does not exist: run {SETUP} first (it installs the pinned registry)",
            py.display()
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/semconv/registry.py");
        let out = Command::new(&py)
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; run {SETUP}", py.display()));
        assert!(
            out.status.success(),
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut all: serde_json::Map<String, Json> =
            serde_json::from_slice(&out.stdout).expect("the registry as JSON");
        let version = all["version"].as_str().unwrap_or_default().to_string();
        assert_eq!(
            version,
            pinned(),
            "the registry installed is not the one {REQUIREMENTS} pins: run {SETUP}"
        );
        let take = |all: &mut serde_json::Map<String, Json>, k: &str| match all.remove(k) {
            Some(Json::Object(m)) => m,
            _ => panic!("the registry has no {k}"),
        };
        let metrics = take(&mut all, "metrics");
        let attributes = take(&mut all, "attributes");
        // A registry read wrongly (nothing found) would let every name pass as an extension.
        for (name, table) in [
            ("container.cpu.time", &metrics),
            ("container.id", &attributes),
        ] {
            assert!(table.contains_key(name), "the registry read has no {name}");
        }
        Registry {
            metrics,
            attributes,
        }
    }

    /// Every name the conventions define, metric or attribute (a template by its prefix).
    fn names(&self) -> impl Iterator<Item = &str> {
        self.metrics
            .keys()
            .chain(self.attributes.keys())
            .map(String::as_str)
    }

    /// Why the extension `name` collides with the registry, if it does.
    fn collision(&self, name: &str) -> Option<String> {
        for defined in self.names() {
            if defined == name {
                return Some(format!("`{defined}` is defined by the conventions"));
            }
            if defined.starts_with(name) && defined[name.len()..].starts_with('.') {
                return Some(format!(
                    "it is a namespace of `{defined}`, which they define"
                ));
            }
            let template = self
                .attributes
                .get(defined)
                .is_some_and(|a| a["template"] == true);
            if !template && name.starts_with(defined) && name[defined.len()..].starts_with('.') {
                return Some(format!("it is under `{defined}`, which they define"));
            }
        }
        None
    }
}

fn deprecated(entry: &Json) -> Option<&str> {
    entry["deprecated"].as_str()
}

/// Records the attribute values the metrics write.
#[derive(Default)]
struct Values(BTreeMap<(&'static str, String), Vec<&'static str>>);

impl Sink for Values {
    fn point(&mut self, metric: Metric, attrs: &[&str], _value: Value) {
        let def = metric.def();
        for (key, value) in def.attributes.iter().zip(attrs) {
            let users = self.0.entry((key, value.to_string())).or_default();
            if !users.contains(&def.name) {
                users.push(def.name);
            }
        }
    }
}

/// A sample with every figure the metrics are made from, so that every attribute value the
/// code writes is written.
fn full_sample() -> CgroupSample {
    let mut s = CgroupSample::default();
    let c = &mut s.cpu;
    (c.usage_ns, c.user_ns, c.system_ns) = (Some(2_000), Some(1_000), Some(1_000));
    (c.periods, c.throttled_periods, c.throttled_ns) = (Some(1), Some(1), Some(1));
    (c.quota_us, c.period_us) = (Some(50_000), Some(100_000));
    let m = &mut s.memory;
    (m.usage, m.peak, m.limit, m.anon, m.file) = (Some(9), Some(9), Some(99), Some(1), Some(1));
    (m.inactive_file, m.swap, m.oom_kills) = (Some(1), Some(1), Some(1));
    (m.pgfault, m.pgmajfault) = (Some(2), Some(1));
    (s.pids.current, s.pids.limit) = (Some(1), Some(9));
    s.io.push(IoDevice {
        major: 8,
        minor: 0,
        read_bytes: Some(1),
        write_bytes: Some(1),
        read_ops: Some(1),
        write_ops: Some(1),
    });
    let psi = Some(Psi {
        some_us: Some(1),
        full_us: Some(1),
    });
    (s.cpu_pressure, s.memory_pressure, s.io_pressure) = (psi, psi, psi);
    s.net.push(NetIface {
        name: IfName::new(b"eth0"),
        rx_bytes: 1,
        rx_packets: 1,
        rx_errors: 1,
        rx_dropped: 1,
        tx_bytes: 1,
        tx_packets: 1,
        tx_errors: 1,
        tx_dropped: 1,
    });
    s
}

#[test]
fn names_match_the_semantic_conventions_registry() {
    let reg = Registry::load();
    let mut problems: Vec<String> = Vec::new();
    let (mut defined, mut extensions) = (Vec::new(), Vec::new());

    for m in METRICS {
        for (name, on) in [(m.name, "container"), (m.pod_name, "pod")] {
            // A metric with no pod form (the exit code) has an empty pod name.
            if name.is_empty() {
                continue;
            }
            match reg.metrics.get(name) {
                Some(entry) => {
                    defined.push(name);
                    if let Some(note) = deprecated(entry) {
                        problems.push(format!("metric `{name}` is deprecated: {note}"));
                    }
                    let inst = entry["instrument"].as_str().unwrap_or("?");
                    let unit = entry["unit"].as_str().unwrap_or("?");
                    if inst != m.instrument.as_str() {
                        problems.push(format!(
                            "metric `{name}` is a {} here, a {inst} in the conventions",
                            m.instrument.as_str()
                        ));
                    }
                    if unit != m.unit {
                        problems.push(format!(
                            "metric `{name}` has unit `{}` here, `{unit}` in the conventions",
                            m.unit
                        ));
                    }
                    if on == "container" && m.origin == Origin::Ext && deprecated(entry).is_none() {
                        problems.push(format!(
                            "metric `{name}` is marked (ext), but the conventions define it: \
                             mark it Semconv"
                        ));
                    }
                }
                None => {
                    extensions.push(name);
                    if on == "container" && m.origin == Origin::Semconv {
                        problems.push(format!(
                            "metric `{name}` is marked Semconv, but the conventions do not define it"
                        ));
                    }
                    if let Some(why) = reg.collision(name) {
                        problems.push(format!("extension metric `{name}` collides: {why}"));
                    }
                }
            }
        }
        for &key in m.attributes {
            check_attribute(
                &reg,
                key,
                false,
                &format!("attribute of `{}`", m.name),
                &mut problems,
            );
        }
    }

    // The exporter's own `process.*` metrics (on its own resource) follow the process
    // conventions: no deprecated name, and the instrument and unit of a defined one.
    for m in SELF_METRICS
        .iter()
        .filter(|m| m.name.starts_with("process."))
    {
        let name = m.name;
        match reg.metrics.get(name) {
            Some(entry) => {
                if let Some(note) = deprecated(entry) {
                    problems.push(format!("self-metric `{name}` is deprecated: {note}"));
                }
                let inst = entry["instrument"].as_str().unwrap_or("?");
                let unit = entry["unit"].as_str().unwrap_or("?");
                if inst != m.instrument.as_str() || unit != m.unit {
                    problems.push(format!(
                        "self-metric `{name}` is a {} in `{}` here, a {inst} in `{unit}` in the \
                         conventions",
                        m.instrument.as_str(),
                        m.unit
                    ));
                }
            }
            None => {
                if let Some(why) = reg.collision(name) {
                    problems.push(format!("self-metric `{name}` collides: {why}"));
                }
            }
        }
    }

    for a in ATTRIBUTES {
        let (key, template) = match a.key.strip_suffix('.') {
            Some(prefix) => (prefix, true),
            None => (a.key, false),
        };
        check_attribute(&reg, key, template, "resource attribute", &mut problems);
    }

    // The values the metrics write for enumerated attributes.
    let sample = full_sample();
    let mut values = Values::default();
    // Every disk figure of a Kubernetes container, so the `fs_type` values are written.
    let used = container_exporter::disk::Usage {
        bytes: 4096,
        inodes: 1,
    };
    let disk = container_exporter::disk::DiskSample {
        usage: Some(used),
        rootfs: Some(used),
        logs: Some(used),
        empty_dir: Some(used),
        kubernetes: true,
        fs: Some(container_exporter::disk::FsStat::default()),
        device: None,
    };
    let ctx = Context {
        previous_cpu: sample.cpu.usage_ns.map(|ns| (ns, 1.0)),
        uptime: Some(1.0),
        exit: None,
        disk: Some(&disk),
    };
    metrics::emit(&sample, &ctx, &mut values);
    for ((key, value), users) in &values.0 {
        let Some(members) = reg
            .attributes
            .get(*key)
            .and_then(|a| a["values"].as_object())
        else {
            continue;
        };
        if members.is_empty() {
            continue;
        }
        match members.get(value) {
            None => problems.push(format!(
                "`{key}` = `{value}` (written by {users:?}) is not one of its values in the \
                 conventions: {:?}",
                members.keys().collect::<Vec<_>>()
            )),
            Some(Json::String(note)) => problems.push(format!(
                "`{key}` = `{value}` (written by {users:?}) is deprecated: {note}"
            )),
            Some(_) => {}
        }
    }

    eprintln!(
        "registry {}: {} metric names defined there and matching, {} extensions: {extensions:?}",
        pinned(),
        defined.len(),
        extensions.len()
    );
    assert!(
        problems.is_empty(),
        "names that disagree with the semantic conventions {}:\n  {}",
        pinned(),
        problems.join("\n  ")
    );
}

fn check_attribute(
    reg: &Registry,
    key: &str,
    template: bool,
    what: &str,
    problems: &mut Vec<String>,
) {
    match reg.attributes.get(key) {
        Some(entry) => {
            if let Some(note) = deprecated(entry) {
                problems.push(format!("{what} `{key}` is deprecated: {note}"));
            }
            let theirs = entry["template"] == true;
            if theirs != template {
                problems.push(format!(
                    "{what} `{key}` is {} here but {} in the conventions",
                    if template {
                        "a template (`<key>` after it)"
                    } else {
                        "a plain attribute"
                    },
                    if theirs {
                        "a template"
                    } else {
                        "a plain attribute"
                    },
                ));
            }
        }
        None => {
            if let Some(why) = reg.collision(key) {
                problems.push(format!("extension {what} `{key}` collides: {why}"));
            }
        }
    }
}
