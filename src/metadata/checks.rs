//! What `check` says of each source: whether its runtime answers, what it is, and what to do
//! when it does not.

use super::cri;
use super::docker;
use crate::config::MetadataArgs;
use crate::discovery::{Found, Kind, Runtime};

/// What `check` says of a source: how it stands, in words.
pub type SourceCheck = (CheckLevel, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckLevel {
    Ok,
    Note,
    Warn,
}

/// What a source's `check` is given.
pub struct CheckInput<'a> {
    pub args: &'a MetadataArgs,
    /// Where the flags say to connect, `None` when the source is off.
    pub endpoint: Option<String>,
    /// What discovery found.
    pub found: &'a [Found],
    /// Where to run the probe.
    pub rt: &'a tokio::runtime::Runtime,
}

pub(crate) fn docker(c: CheckInput<'_>) -> Option<SourceCheck> {
    let Some(url) = c.endpoint else {
        return Some((CheckLevel::Note, "off (--docker-host off)".into()));
    };
    Some(match c.rt.block_on(docker::probe(&url)) {
        Ok(v) => (
            CheckLevel::Ok,
            format!(
                "Docker {} (API {}) at {url}: names, images and labels",
                v.version, v.api_version
            ),
        ),
        Err(e)
            if c.args.docker_host.is_none()
                && !c.found.iter().any(|f| f.runtime == Runtime::Docker) =>
        {
            (
                CheckLevel::Note,
                format!("no Docker at {url} ({e}), and no Docker containers"),
            )
        }
        Err(e) => (
            CheckLevel::Warn,
            format!(
                "cannot reach Docker at {url} ({e}): metrics still work, but containers are \
             reported by id only. Mount the socket (-v /var/run/docker.sock:\
             /var/run/docker.sock:ro), set --docker-host, or --docker-host off"
            ),
        ),
    })
}

pub(crate) fn podman(c: CheckInput<'_>) -> Option<SourceCheck> {
    let Some(url) = c.endpoint else {
        return c
            .found
            .iter()
            .any(|f| f.runtime == Runtime::Podman)
            .then(|| {
                let text = "Podman containers found but no Podman API (start `podman system \
                            service` or podman.socket, and set --podman-host): they are \
                            reported by id";
                (CheckLevel::Warn, text.into())
            });
    };
    Some(match c.rt.block_on(docker::probe(&url)) {
        Ok(v) => (
            CheckLevel::Ok,
            format!(
                "Podman {} (Docker API {}) at {url}",
                v.version, v.api_version
            ),
        ),
        Err(e) => (
            CheckLevel::Warn,
            format!("cannot reach Podman at {url} ({e}): Podman containers are reported by id"),
        ),
    })
}

pub(crate) fn cri(c: CheckInput<'_>) -> Option<SourceCheck> {
    let Some(endpoint) = c.endpoint else {
        let in_pods = c
            .found
            .iter()
            .filter(|f| f.kind == Kind::Container && f.pod_uid.is_some())
            .count();
        return (in_pods > 0).then(|| {
            (
                CheckLevel::Warn,
                format!(
                    "{in_pods} Kubernetes containers found but no CRI socket ({}): they are \
                 reported by id and pod uid, without pod, namespace or container names. Mount \
                 the runtime's socket and set --cri-endpoint",
                    cri::DEFAULT_ENDPOINTS.join(", ")
                ),
            )
        });
    };
    Some(match c.rt.block_on(cri::probe(&endpoint)) {
        Ok(v) => (
            CheckLevel::Ok,
            format!(
                "{} {} (CRI {}) at {endpoint}: pod, namespace and container names",
                v.runtime_name, v.runtime_version, v.runtime_api_version
            ),
        ),
        Err(e) => (
            CheckLevel::Warn,
            format!(
                "cannot use the CRI at {endpoint} ({e}): Kubernetes containers are reported by id \
             and pod uid"
            ),
        ),
    })
}
