//! The resource attributes that describe each container and pod (`container.*`, `k8s.*`,
//! `host.name`, and `OTEL_RESOURCE_ATTRIBUTES` merged underneath): built here, once, for every
//! output. OTLP sends them as they are, the snapshot prints them, and the Prometheus page
//! splits them into identity labels on every series and one info series.

use crate::collect::Described;
use crate::discovery::Kind;

/// Attributes shared by every container: `OTEL_RESOURCE_ATTRIBUTES` and `host.name`.
#[derive(Debug, Clone, Default)]
pub struct HostResource {
    pub attributes: Vec<(String, String)>,
}

/// One attribute's value: a string, or an array of strings (`container.image.tags`); in JSON,
/// a string or an array.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    Str(String),
    Strs(Vec<String>),
}

impl AttrValue {
    /// As one string (an array's items joined by `,`), for a Prometheus label.
    pub fn joined(&self) -> std::borrow::Cow<'_, str> {
        match self {
            AttrValue::Str(s) => s.as_str().into(),
            AttrValue::Strs(v) => v.join(",").into(),
        }
    }
}

/// What a resource attribute is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    Containers,
    Pods,
    Both,
}

/// One resource attribute: where it is, where it comes from, and whether it is one of the
/// identity labels every series of the Prometheus page carries (the others are on the info
/// series, `container_info` or `k8s_pod_info`). A key ending in `.` is a prefix
/// (`container.label.<key>`).
pub struct AttrDef {
    pub key: &'static str,
    pub on: On,
    /// Identity label on containers' series, on pods' series.
    pub identity: (bool, bool),
    pub source: &'static str,
}

/// The table's rows: `key on (identity on containers, on pods), source;`.
macro_rules! attributes {
    ($($key:literal $on:ident $identity:expr, $source:literal;)*) => {
        /// Every resource attribute, in the order they are written. The README's attribute
        /// reference comes from this table, and a test checks that every attribute written is
        /// in it.
        pub static ATTRIBUTES: &[AttrDef] = &[$(AttrDef {
            key: $key,
            on: On::$on,
            identity: $identity,
            source: $source,
        }),*];
    };
}

attributes! {
    "container.id" Containers (true, false), "the cgroup path (the full id)";
    "container.runtime.name" Containers (false, false),
        "the runtime as it names itself over the CRI (`containerd`, `cri-o`), else the cgroup path (`docker`, `containerd`, `cri-o`, `podman`)";
    "k8s.pod.uid" Both (false, true),
        "the cgroup path (`pod<uid>`, `kubepods-…-pod<uid>.slice`), else the `io.kubernetes.pod.uid` label";
    "container.name" Containers (true, false),
        "Docker/Podman `Name`; the CRI container's metadata name";
    "container.image.name" Containers (true, false),
        "the image reference without tag or digest (a CRI image id resolved to its first repo tag)";
    "container.image.id" Containers (false, false), "Docker/Podman `Image`; CRI `image_ref`";
    "k8s.pod.name" Both (true, true),
        "the CRI sandbox's metadata, else the `io.kubernetes.pod.name` label";
    "k8s.namespace.name" Both (true, true),
        "the CRI sandbox's metadata, else the `io.kubernetes.pod.namespace` label";
    "k8s.container.name" Containers (true, false),
        "the CRI container's metadata name, else the `io.kubernetes.container.name` label";
    "k8s.container.restart_count" Containers (false, false), "the CRI container's `attempt`";
    "container.image.tags" Containers (false, false),
        "the image reference's tag (`latest` when it names none); a string array in OTLP, comma-joined on the page";
    "container.label." Containers (false, false),
        "container labels whose key matches `--container-labels`";
    "k8s.pod.label." Pods (false, false), "pod labels (CRI) whose key matches `--pod-labels`";
    "host.name" Both (false, false), "`--host-name`, else the machine's hostname";
}

impl AttrDef {
    /// The table's row for an attribute key.
    pub fn of(key: &str) -> Option<&'static AttrDef> {
        ATTRIBUTES.iter().find(|a| {
            if a.key.ends_with('.') {
                key.starts_with(a.key) && key.len() > a.key.len()
            } else {
                a.key == key
            }
        })
    }

    /// Whether `key` is an identity label on series of `kind`.
    pub fn is_identity(key: &str, kind: Kind) -> bool {
        AttrDef::of(key).is_some_and(|a| match kind {
            Kind::Container => a.identity.0,
            Kind::Pod => a.identity.1,
        })
    }
}

/// The README's attribute reference, generated from [`ATTRIBUTES`].
pub fn markdown_table() -> String {
    let mut out =
        String::from("| attribute | on | Prometheus page | source |\n|---|---|---|---|\n");
    for a in ATTRIBUTES {
        let key = if a.key.ends_with('.') {
            format!("`{}<key>`", a.key)
        } else {
            format!("`{}`", a.key)
        };
        let on = match a.on {
            On::Containers => "containers",
            On::Pods => "pods",
            On::Both => "containers, pods",
        };
        let page = match (a.on, a.identity) {
            (On::Containers, (true, _)) | (On::Pods, (_, true)) | (On::Both, (true, true)) => {
                "every series"
            }
            (On::Containers, (false, _)) => "`container_info`",
            (On::Pods, (_, false)) => "`k8s_pod_info`",
            (On::Both, (true, false)) => "every series of a container; `k8s_pod_info`",
            (On::Both, (false, true)) => "every series of a pod; `container_info`",
            (On::Both, (false, false)) => "`container_info`, `k8s_pod_info`",
        };
        out.push_str(&format!("| {key} | {on} | {page} | {} |\n", a.source));
    }
    out.push_str(
        "| anything in `OTEL_RESOURCE_ATTRIBUTES` | containers, pods (OTLP) | – | merged underneath; never `service.name` |\n",
    );
    out
}

impl HostResource {
    /// `host_name` overrides the machine's hostname; `otel_resource_attributes` is the
    /// variable's raw value (W3C Baggage-style `key=value,key2=value2`, percent-encoded).
    pub fn new(host_name: Option<String>, otel_resource_attributes: Option<&str>) -> HostResource {
        let mut attributes = otel_resource_attributes
            .map(parse_resource_attributes)
            .unwrap_or_default();
        // The exporter's own identity never lands on container resources.
        attributes.retain(|(k, _)| k != "service.name" && k != "host.name");
        let host = host_name.or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
        });
        if let Some(h) = host {
            attributes.push(("host.name".to_string(), h));
        }
        HostResource { attributes }
    }

    /// The resource of one container or pod: its own attributes (from the cgroup path and the
    /// runtime's metadata) override the shared ones. Never `service.name`.
    ///
    /// A container has `container.id`, `container.runtime.name` and, when known, its name,
    /// image (name, tags, id), allowed labels (`container.label.<key>`) and Kubernetes
    /// identity (`k8s.pod.uid`, `k8s.pod.name`, `k8s.namespace.name`, `k8s.container.name`,
    /// `k8s.container.restart_count`). A pod has `k8s.pod.uid` and, when known, its name,
    /// namespace and allowed labels (`k8s.pod.label.<key>`).
    pub fn attributes(&self, d: &Described<'_>) -> Vec<(String, AttrValue)> {
        let mut own: Vec<(String, AttrValue)> = Vec::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                own.push((k.to_string(), AttrValue::Str(v.to_string())));
            }
        };
        let state = d.state;
        let meta = d.meta.as_deref();
        let pod = d.pod.as_deref();
        match state.kind {
            Kind::Container => {
                put("container.id", Some(&state.id));
                let runtime = meta
                    .and_then(|m| m.runtime_name.as_deref())
                    .unwrap_or(state.runtime.as_str());
                put("container.runtime.name", Some(runtime));
                let uid = state
                    .pod_uid
                    .as_deref()
                    .or(meta.and_then(|m| m.k8s_pod_uid.as_deref()));
                put("k8s.pod.uid", uid);
                if let Some(m) = meta {
                    put("container.name", m.name.as_deref());
                    put("container.image.name", m.image_name.as_deref());
                    put("container.image.id", m.image_id.as_deref());
                }
                let pod_name = meta
                    .and_then(|m| m.k8s_pod_name.as_deref())
                    .or(pod.and_then(|p| p.name.as_deref()));
                let namespace = meta
                    .and_then(|m| m.k8s_namespace_name.as_deref())
                    .or(pod.and_then(|p| p.namespace.as_deref()));
                put("k8s.pod.name", pod_name);
                put("k8s.namespace.name", namespace);
                if let Some(m) = meta {
                    put("k8s.container.name", m.k8s_container_name.as_deref());
                    if let Some(n) = m.k8s_container_restart_count {
                        put(
                            "k8s.container.restart_count",
                            Some(itoa::Buffer::new().format(n)),
                        );
                    }
                    if !m.image_tags.is_empty() {
                        own.push((
                            "container.image.tags".to_string(),
                            AttrValue::Strs(m.image_tags.clone()),
                        ));
                    }
                    for (k, v) in &m.labels {
                        own.push((format!("container.label.{k}"), AttrValue::Str(v.clone())));
                    }
                }
            }
            Kind::Pod => {
                put("k8s.pod.uid", Some(&state.id));
                if let Some(p) = pod {
                    put("k8s.pod.name", p.name.as_deref());
                    put("k8s.namespace.name", p.namespace.as_deref());
                    for (k, v) in &p.labels {
                        own.push((format!("k8s.pod.label.{k}"), AttrValue::Str(v.clone())));
                    }
                }
            }
        }
        let mut all: Vec<(String, AttrValue)> = self
            .attributes
            .iter()
            .filter(|(k, _)| k != "service.name" && !own.iter().any(|(o, _)| o == k))
            .map(|(k, v)| (k.clone(), AttrValue::Str(v.clone())))
            .collect();
        all.extend(own);
        all
    }
}

/// The exporter's own resource (the one its self-metrics are on), in the order it is written:
/// `OTEL_RESOURCE_ATTRIBUTES` without the three keys the exporter sets itself, then
/// `host.name` (from `host`), `service.name` and `service.version`: the exporter's own
/// resource in OTLP.
pub fn own_resource(
    host: &HostResource,
    service_name: &str,
    service_version: &str,
    otel_resource_attributes: Option<&str>,
) -> Vec<(String, String)> {
    let fixed = ["service.name", "service.version", "host.name"];
    let mut own: Vec<(String, String)> = otel_resource_attributes
        .map(parse_resource_attributes)
        .unwrap_or_default();
    own.retain(|(k, _)| !fixed.contains(&k.as_str()));
    if let Some((_, h)) = host.attributes.iter().find(|(k, _)| k == "host.name") {
        own.push(("host.name".to_string(), h.clone()));
    }
    own.push(("service.name".to_string(), service_name.to_string()));
    own.push(("service.version".to_string(), service_version.to_string()));
    own
}

/// Parses `OTEL_RESOURCE_ATTRIBUTES`: comma-separated `key=value`, values percent-decoded;
/// malformed pairs are skipped (as the specification asks).
pub fn parse_resource_attributes(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            if k.is_empty() {
                return None;
            }
            Some((k.to_string(), percent_decode(v.trim())?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otel_resource_attributes() {
        let a = parse_resource_attributes("deployment.environment=prod, team=a%2Cb,bad,=x,k=%zz");
        assert_eq!(
            a,
            vec![
                ("deployment.environment".to_string(), "prod".to_string()),
                ("team".to_string(), "a,b".to_string()),
            ]
        );
    }

    #[test]
    fn every_attribute_written_is_in_the_table() {
        use crate::collect::{ContainerState, Described};
        use crate::discovery::{Found, Runtime};
        use crate::metadata::{ContainerMeta, PodMeta};
        use std::sync::Arc;
        use std::time::{Duration, SystemTime};
        let host = HostResource::new(Some("node-1".into()), None);
        let found = |kind, id: &str| Found {
            id: id.to_string(),
            kind,
            runtime: Runtime::Containerd,
            pod_uid: Some("0f2b5a8c-3c5e-4f7e-9d1a-2b3c4d5e6f70".into()),
            rel: "kubepods/x".into(),
        };
        let meta = Arc::new(ContainerMeta {
            name: Some("web".into()),
            image_name: Some("busybox".into()),
            image_tags: vec!["1".into()],
            image_id: Some("sha256:1".into()),
            labels: vec![("team".into(), "a".into())],
            k8s_pod_name: Some("p".into()),
            k8s_namespace_name: Some("n".into()),
            k8s_container_name: Some("web".into()),
            k8s_pod_uid: Some("u".into()),
            k8s_container_restart_count: Some(2),
            runtime_name: Some("containerd".into()),
            ..ContainerMeta::default()
        });
        let pod = Arc::new(PodMeta {
            uid: "u".into(),
            name: Some("p".into()),
            namespace: Some("n".into()),
            labels: vec![("app".into(), "x".into())],
        });
        let state = |found| {
            ContainerState::with_samples(
                found,
                SystemTime::now(),
                Default::default(),
                Default::default(),
                Duration::from_secs(1),
            )
        };
        let c = state(found(Kind::Container, "c"));
        let p = state(found(Kind::Pod, "u"));
        // Which rows were written, on containers and on pods.
        let mut seen: Vec<(&'static str, Kind)> = Vec::new();
        for d in [
            Described {
                state: &c,
                meta: Some(meta.clone()),
                pod: Some(pod.clone()),
            },
            Described {
                state: &p,
                meta: None,
                pod: Some(pod.clone()),
            },
        ] {
            let attrs = host.attributes(&d);
            for (k, _) in attrs {
                let def = AttrDef::of(&k).unwrap_or_else(|| panic!("{k} is not in ATTRIBUTES"));
                let ok = match d.state.kind {
                    Kind::Container => def.on != On::Pods,
                    Kind::Pod => def.on != On::Containers,
                };
                assert!(ok, "{k} on a {:?}", d.state.kind);
                seen.push((def.key, d.state.kind));
            }
        }
        // And the other way round: with everything known, every row is written where it
        // says, so the table (and the README's reference made from it) has no row the code
        // forgot.
        for a in ATTRIBUTES {
            let kinds: &[Kind] = match a.on {
                On::Containers => &[Kind::Container],
                On::Pods => &[Kind::Pod],
                On::Both => &[Kind::Container, Kind::Pod],
            };
            for &kind in kinds {
                assert!(
                    seen.contains(&(a.key, kind)),
                    "{} is in ATTRIBUTES for a {kind:?} but was not written on one",
                    a.key
                );
            }
        }
    }

    #[test]
    fn own_resource_sets_its_identity_last() {
        let h = HostResource::new(Some("node-1".into()), None);
        let own = own_resource(
            &h,
            "ce",
            "1.2.3",
            Some("env=prod,service.name=x,host.name=other,service.version=0,team=a"),
        );
        let own: Vec<(&str, &str)> = own.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        assert_eq!(
            own,
            [
                ("env", "prod"),
                ("team", "a"),
                ("host.name", "node-1"),
                ("service.name", "ce"),
                ("service.version", "1.2.3"),
            ]
        );
    }

    #[test]
    fn service_name_is_not_a_container_attribute() {
        let h = HostResource::new(Some("node-1".into()), Some("service.name=x,env=dev"));
        assert_eq!(
            h.attributes,
            vec![
                ("env".to_string(), "dev".to_string()),
                ("host.name".to_string(), "node-1".to_string())
            ]
        );
    }
}
