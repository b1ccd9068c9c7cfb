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

/// One attribute's value: a string, or an array of strings (`container.image.tags`).
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Attributes that say which container or pod a series is (on every series of the Prometheus
/// page); every other attribute goes on the info series.
pub const IDENTITY: &[&str] = &[
    "container.id",
    "container.name",
    "container.image.name",
    "k8s.pod.uid",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
];

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

    /// Only `host.name` (what the Prometheus page carries of the host).
    pub fn host_name_only(&self) -> HostResource {
        HostResource {
            attributes: self
                .attributes
                .iter()
                .filter(|(k, _)| k == "host.name")
                .cloned()
                .collect(),
        }
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
