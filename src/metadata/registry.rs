//! The sources, one row each ([`SOURCES`]): its name, whether the flags turn it on and where
//! it connects, how it starts, what `check` says of it, which containers it is asked about
//! first, and how it says why they end. `spawn_sources`, `Metadata`'s lookups and `check` all
//! read the rows, so a new runtime is its module and one row here.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::checks::{self, CheckInput, SourceCheck};
use super::cri::{self, CriConfig};
use super::docker::{self, DockerConfig, Flavor};
use super::exits::ExitStore;
use super::kubelet_logs::{self, KubeletLogsConfig};
use super::stats::{Figure, SourceStats};
use super::store::MetadataStore;
use crate::config::{HostArgs, MetadataArgs, is_off};
use crate::discovery::Runtime;

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

/// What a source on the Docker Engine API counts: it makes no lookups.
const DOCKER_API_FIGURES: &[Figure] = &[
    Figure::ApiErrors,
    Figure::Connected,
    Figure::Reconnects,
    Figure::Calls,
    Figure::Events,
];

/// Every source, in the order containers are looked up after the one their runtime names.
pub static SOURCES: [SourceDef; Source::COUNT] = [
    SourceDef {
        source: Source::Docker,
        name: "docker",
        first_for: &[Runtime::Docker],
        pods: false,
        asked: false,
        exits: Some(ExitWord::Events),
        figures: DOCKER_API_FIGURES,
        endpoint: |args, _| {
            let flag = args.docker_host.as_deref();
            (!flag.is_some_and(is_off)).then(|| docker::resolve_host(flag))
        },
        start: |s| start_docker(s, Flavor::Docker),
        check: Some(checks::docker),
    },
    SourceDef {
        source: Source::Cri,
        name: "cri",
        first_for: &[Runtime::Containerd, Runtime::CriO],
        pods: true,
        asked: true,
        exits: Some(ExitWord::Asked),
        figures: &[
            Figure::ApiErrors,
            Figure::Connected,
            Figure::Reconnects,
            Figure::Calls,
            Figure::Lookups,
            Figure::Events,
        ],
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
        check: Some(checks::cri),
    },
    SourceDef {
        source: Source::Podman,
        name: "podman",
        first_for: &[Runtime::Podman],
        pods: false,
        asked: false,
        exits: Some(ExitWord::Events),
        figures: DOCKER_API_FIGURES,
        endpoint: |args, _| podman_host(args),
        start: |s| start_docker(s, Flavor::Podman),
        check: Some(checks::podman),
    },
    SourceDef {
        source: Source::KubeletLogs,
        name: "kubelet_logs",
        first_for: &[],
        pods: true,
        asked: true,
        exits: None,
        figures: &[
            Figure::ApiErrors,
            Figure::Connected,
            Figure::Reconnects,
            Figure::Lookups,
        ],
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
pub fn podman_host(args: &MetadataArgs) -> Option<String> {
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
pub fn cri_endpoint(args: &MetadataArgs) -> Option<String> {
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
pub fn kubelet_logs_dir(host: &HostArgs) -> Option<String> {
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
