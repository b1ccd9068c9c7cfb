//! The sources, one row each ([`SOURCES`]): its name, whether the flags turn it on and where
//! it connects, how it starts, what `check` says of it (whether its runtime answers, what it
//! is, and what to do when it does not), which containers it is asked about first, and how it
//! says why they end. `spawn_sources`, `Metadata`'s lookups and `check` all read the rows, so
//! a new runtime is its module and one row here.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::cri::{self, CriConfig};
use super::docker::{self, DockerConfig, Flavor};
use super::exits::ExitStore;
use super::kubelet_logs::{self, KubeletLogsConfig};
use super::stats::Figure::{self, ApiErrors, Calls, Connected, Events, Lookups, Reconnects};
use super::stats::SourceStats;
use super::store::MetadataStore;
use crate::config::{HostArgs, MetadataArgs, is_off};
use crate::discovery::{Found, Kind, Runtime};

/// A metadata source; its registry row is `SOURCES[source as usize]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    Docker,
    Cri,
    Podman,
    KubeletLogs,
}

impl Source {
    /// How many there are.
    pub const COUNT: usize = 4;

    /// Its registry row.
    pub fn def(self) -> &'static SourceDef {
        &SOURCES[self as usize]
    }
}

/// How a source says why containers ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitWord {
    /// Its events say it unasked (Docker's `die`).
    Events,
    /// It answers when asked ([`ExitStore::ask`]: the CRI's `ContainerStatus`).
    Asked,
}

/// What a source's start is given.
pub struct Start<'a> {
    pub args: &'a MetadataArgs,
    pub host: &'a HostArgs,
    /// Where the flags say to connect.
    pub endpoint: String,
    pub removal_delay: Duration,
    pub store: MetadataStore,
    pub stats: Arc<SourceStats>,
    pub exits: ExitStore,
    /// Resolves at shutdown.
    pub shutdown: SourceTask,
}

/// A source's task (and the future that ends it).
pub type SourceTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One metadata source.
pub struct SourceDef {
    pub source: Source,
    /// The value of the self-metrics' `source` attribute, and `check`'s topic.
    pub name: &'static str,
    /// Containers found under these runtimes' path patterns are looked up here first (the
    /// other sources follow in the registry's order).
    pub first_for: &'static [Runtime],
    /// Whether it describes pods too.
    pub pods: bool,
    /// Whether it looks up the ids discovery asks for ([`MetadataStore::want`]) instead of
    /// hearing of every container from its runtime.
    pub asked: bool,
    /// How it says why its containers ended, if it does.
    pub exits: Option<ExitWord>,
    /// The self-metrics it reports.
    pub figures: &'static [Figure],
    /// Where the flags say to connect; `None` when it is off (or its runtime is not here).
    pub endpoint: fn(&MetadataArgs, &HostArgs) -> Option<String>,
    /// Its task, following the runtime until shutdown.
    pub start: fn(Start<'_>) -> SourceTask,
    /// What `check` says of it, if it says anything.
    pub check: Option<fn(CheckInput<'_>) -> Option<SourceCheck>>,
}

/// Every source, in the order containers are looked up after the one their runtime names.
pub static SOURCES: [SourceDef; Source::COUNT] = [
    SourceDef {
        source: Source::Docker,
        name: "docker",
        first_for: &[Runtime::Docker],
        pods: false,
        asked: false,
        exits: Some(ExitWord::Events),
        figures: &[ApiErrors, Connected, Reconnects, Calls, Events],
        endpoint: |args, _| {
            let flag = args.docker_host.as_deref();
            (!flag.is_some_and(is_off)).then(|| docker::resolve_host(flag))
        },
        start: |s| start_docker(s, Flavor::Docker),
        check: Some(check_docker),
    },
    SourceDef {
        source: Source::Cri,
        name: "cri",
        first_for: &[Runtime::Containerd, Runtime::CriO],
        pods: true,
        asked: true,
        exits: Some(ExitWord::Asked),
        figures: &[ApiErrors, Connected, Reconnects, Calls, Lookups, Events],
        endpoint: |args, _| cri_endpoint(args),
        start: |s| {
            let cfg = CriConfig {
                endpoint: Some(s.endpoint),
                label_globs: s.args.label_globs(),
                pod_label_globs: s.args.pod_labels.clone(),
                removal_delay: s.removal_delay,
                exits: s.exits,
                ..Default::default()
            };
            Box::pin(cri::run(cfg, s.store, s.stats, s.shutdown))
        },
        check: Some(check_cri),
    },
    SourceDef {
        source: Source::Podman,
        name: "podman",
        first_for: &[Runtime::Podman],
        pods: false,
        asked: false,
        exits: Some(ExitWord::Events),
        figures: &[ApiErrors, Connected, Reconnects, Calls, Events],
        endpoint: |args, _| podman_host(args),
        start: |s| start_docker(s, Flavor::Podman),
        check: Some(check_podman),
    },
    SourceDef {
        source: Source::KubeletLogs,
        name: "kubelet_logs",
        first_for: &[],
        pods: true,
        asked: true,
        exits: None,
        figures: &[ApiErrors, Connected, Reconnects, Lookups],
        endpoint: |_, host| kubelet_logs_dir(host),
        start: |s| {
            let cfg = KubeletLogsConfig {
                container_logs_dir: s.host.container_logs_dir.clone(),
                pod_logs_dir: s.host.pod_logs_dir.clone(),
                host_root: s.host.host_root.clone(),
                removal_delay: s.removal_delay,
            };
            Box::pin(kubelet_logs::run(cfg, s.store, s.stats, s.shutdown))
        },
        check: None,
    },
];

fn start_docker(s: Start<'_>, flavor: Flavor) -> SourceTask {
    let cfg = DockerConfig {
        host: Some(s.endpoint),
        label_globs: s.args.label_globs(),
        removal_delay: s.removal_delay,
        flavor,
        exits: s.exits,
    };
    Box::pin(docker::run(cfg, s.store, s.stats, s.shutdown))
}

/// The Podman API to follow, if any: the flag, else the standard rootful socket when it
/// exists (a host without Podman gets no retry loop and no warning).
fn podman_host(args: &MetadataArgs) -> Option<String> {
    match args.podman_host.as_deref() {
        Some(h) if is_off(h) => None,
        Some(h) => Some(h.to_owned()),
        None => {
            let path = docker::PODMAN_DEFAULT_HOST.trim_start_matches("unix://");
            Path::new(path)
                .exists()
                .then(|| docker::PODMAN_DEFAULT_HOST.to_owned())
        }
    }
}

/// The CRI endpoint to follow, if any: the flag, else the first of the standard sockets that
/// exists (a node without a CRI runtime gets no retry loop and no warning).
fn cri_endpoint(args: &MetadataArgs) -> Option<String> {
    match args.cri_endpoint.as_deref() {
        Some(e) if is_off(e) => None,
        Some(e) => cri::resolve_endpoints(Some(e)).into_iter().next(),
        None => cri::DEFAULT_ENDPOINTS
            .iter()
            .find(|e| Path::new(e.trim_start_matches("unix://")).exists())
            .map(|e| e.to_string()),
    }
}

/// The kubelet's log layout to follow, if any: `--container-logs-dir` unless `off`, when it
/// exists below the host root (a host without Kubernetes gets no task).
fn kubelet_logs_dir(host: &HostArgs) -> Option<String> {
    let dir = &host.container_logs_dir;
    if dir.to_str().is_some_and(is_off) {
        return None;
    }
    let rel = dir.strip_prefix("/").unwrap_or(dir);
    host.host_root
        .join(rel)
        .is_dir()
        .then(|| dir.display().to_string())
}

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

fn check_docker(c: CheckInput<'_>) -> Option<SourceCheck> {
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

fn check_podman(c: CheckInput<'_>) -> Option<SourceCheck> {
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

fn check_cri(c: CheckInput<'_>) -> Option<SourceCheck> {
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
