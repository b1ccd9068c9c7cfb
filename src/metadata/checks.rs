//! What `check` says of each source: whether its runtime answers, what it is, and what to do
//! when it does not.

use super::cri;
use super::docker;
use crate::config::MetadataArgs;
use crate::discovery::{Found, Kind, Runtime};

/// What `check` says of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCheck {
    pub level: CheckLevel,
    pub text: String,
}

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
        return Some(SourceCheck::note("off (--docker-host off)"));
    };
    Some(match c.rt.block_on(docker::probe(&url)) {
        Ok(v) => SourceCheck::ok(format!(
            "Docker {} (API {}) at {url}: names, images and labels",
            v.version, v.api_version
        )),
        Err(e)
            if c.args.docker_host.is_none()
                && !c.found.iter().any(|f| f.runtime == Runtime::Docker) =>
        {
            SourceCheck::note(format!(
                "no Docker at {url} ({e}), and no Docker containers"
            ))
        }
        Err(e) => SourceCheck::warn(format!(
            "cannot reach Docker at {url} ({e}): metrics still work, but containers are \
             reported by id only. Mount the socket (-v /var/run/docker.sock:\
             /var/run/docker.sock:ro), set --docker-host, or --docker-host off"
        )),
    })
}

pub(crate) fn podman(c: CheckInput<'_>) -> Option<SourceCheck> {
    let Some(url) = c.endpoint else {
        return c
            .found
            .iter()
            .any(|f| f.runtime == Runtime::Podman)
            .then(|| {
                SourceCheck::warn(
                    "Podman containers found but no Podman API (start `podman system service` \
                     or podman.socket, and set --podman-host): they are reported by id",
                )
            });
    };
    Some(match c.rt.block_on(docker::probe(&url)) {
        Ok(v) => SourceCheck::ok(format!(
            "Podman {} (Docker API {}) at {url}",
            v.version, v.api_version
        )),
        Err(e) => SourceCheck::warn(format!(
            "cannot reach Podman at {url} ({e}): Podman containers are reported by id"
        )),
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
            SourceCheck::warn(format!(
                "{in_pods} Kubernetes containers found but no CRI socket ({}): they are \
                 reported by id and pod uid, without pod, namespace or container names. Mount \
                 the runtime's socket and set --cri-endpoint",
                cri::DEFAULT_ENDPOINTS.join(", ")
            ))
        });
    };
    Some(match c.rt.block_on(cri::probe(&endpoint)) {
        Ok(v) => SourceCheck::ok(format!(
            "{} {} (CRI {}) at {endpoint}: pod, namespace and container names",
            v.runtime_name, v.runtime_version, v.runtime_api_version
        )),
        Err(e) => SourceCheck::warn(format!(
            "cannot use the CRI at {endpoint} ({e}): Kubernetes containers are reported by id \
             and pod uid"
        )),
    })
}

impl SourceCheck {
    fn ok(text: impl Into<String>) -> SourceCheck {
        SourceCheck {
            level: CheckLevel::Ok,
            text: text.into(),
        }
    }

    fn note(text: impl Into<String>) -> SourceCheck {
        SourceCheck {
            level: CheckLevel::Note,
            text: text.into(),
        }
    }

    fn warn(text: impl Into<String>) -> SourceCheck {
        SourceCheck {
            level: CheckLevel::Warn,
            text: text.into(),
        }
    }
}
