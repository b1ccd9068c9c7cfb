//! The resource attributes that describe each container (`container.*`, `k8s.pod.uid`,
//! `host.name`, and `OTEL_RESOURCE_ATTRIBUTES` merged underneath).

use crate::collect::ContainerState;

/// Attributes shared by every container: `OTEL_RESOURCE_ATTRIBUTES` and `host.name`.
#[derive(Debug, Clone, Default)]
pub struct HostResource {
    pub attributes: Vec<(String, String)>,
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

    /// The resource of one container: its own attributes override the shared ones.
    pub fn for_container(&self, c: &ContainerState) -> Vec<(String, String)> {
        let mut own = vec![
            ("container.id".to_string(), c.id.clone()),
            (
                "container.runtime.name".to_string(),
                c.runtime.as_str().to_string(),
            ),
        ];
        if let Some(uid) = &c.pod_uid {
            own.push(("k8s.pod.uid".to_string(), uid.clone()));
        }
        let mut all: Vec<(String, String)> = self
            .attributes
            .iter()
            .filter(|(k, _)| !own.iter().any(|(o, _)| o == k))
            .cloned()
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
