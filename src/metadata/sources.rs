//! The sources, one row each ([`SOURCES`]): its name, whether the flags turn it on and where
//! it connects, how it starts, what `check` says of it (whether its runtime answers, what it
//! is, and what to do when it does not), which containers it is asked about first, and how it
//! says why they end; and what reads the rows: [`spawn_sources`] starts the sources the flags
//! turn on, [`check_sources`] asks them for `check`, [`Metadata`] looks them up together. A new
//! runtime is its module below this one (`sources/<runtime>.rs`), its `mod` line, its row, and
//! the flag for where it connects ([`Endpoints`]), all here.

pub mod cri;
pub mod docker;
pub mod kubelet_logs;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use self::cri::CriConfig;
use self::docker::{DockerConfig, Flavor};
use self::kubelet_logs::KubeletLogsConfig;
use super::args::LabelArgs;
use super::exits::ExitStore;
use super::source::Figure::{self, ApiErrors, Calls, Connected, Events, Lookups, Reconnects};
use super::source::{MetadataStats, SourceStats};
use super::store::{ContainerMeta, MetadataStore, PodMeta, ValueLimit};
use crate::config::{HostArgs, is_off};
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

/// The registry's rows, one field of [`SourceDef`] after the other: `Source "name"
/// [first_for] pods asked exits, [figures], endpoint, start, check;`.
macro_rules! sources {
    ($($source:ident $name:literal [$($first:ident),*] $pods:literal $asked:literal $exits:expr,
        [$($figure:ident),*], $endpoint:expr, $start:expr, $check:expr;)*) => {
        /// Every source, in the order containers are looked up after the one their runtime
        /// names.
        pub static SOURCES: [SourceDef; Source::COUNT] = [$(SourceDef {
            source: Source::$source,
            name: $name,
            first_for: &[$(Runtime::$first),*],
            pods: $pods,
            asked: $asked,
            exits: $exits,
            figures: &[$($figure),*],
            endpoint: $endpoint,
            start: $start,
            check: $check,
        }),*];
    };
}

/// The metadata flags: where names, images and labels come from (the container runtimes'
/// APIs), and which labels are shown. Metrics never depend on them: a runtime that is absent or
/// down only means containers are reported by id.
#[derive(Debug, Clone, Default, Args)]
pub struct MetadataArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,

    #[command(flatten)]
    pub labels: LabelArgs,
}

/// Where each runtime's API is: a flag per source, read by its row's `endpoint`.
#[derive(Debug, Clone, Default, Args)]
pub struct Endpoints {
    /// Docker API for container names, images and labels: `unix:///path`, `tcp://host:port`,
    /// or `off`. Default: `DOCKER_HOST`, else the standard socket. Metrics never depend on
    /// it: without Docker, containers are reported by id.
    #[arg(long, env = "CONTAINER_EXPORTER_DOCKER_HOST", value_name = "URL")]
    pub docker_host: Option<String>,

    /// The container runtime interface (CRI) of a Kubernetes node, for pod, namespace and
    /// container names, images and restart counts: `unix:///path`, or `off`. Default: the
    /// first of containerd's `/run/containerd/containerd.sock` and CRI-O's
    /// `/var/run/crio/crio.sock` that exists. Metrics never depend on it: without it,
    /// Kubernetes containers are reported by id and pod uid.
    #[arg(long, env = "CONTAINER_EXPORTER_CRI_ENDPOINT", value_name = "URL")]
    pub cri_endpoint: Option<String>,

    /// Podman's Docker-compatible API for the names, images and labels of Podman containers
    /// (`podman system service`, or `podman.socket`): `unix:///path`, `tcp://host:port`, or
    /// `off`. Default: `unix:///run/podman/podman.sock` when that socket exists. The
    /// `--container-labels` allow-list applies to Podman's labels too.
    #[arg(long, env = "CONTAINER_EXPORTER_PODMAN_HOST", value_name = "URL")]
    pub podman_host: Option<String>,
}

sources! {
    Docker "docker" [Docker] false false Some(ExitWord::Events),
        [ApiErrors, Connected, Reconnects, Calls, Events],
        |args, _| {
            let flag = args.endpoints.docker_host.as_deref();
            (!flag.is_some_and(is_off)).then(|| docker::resolve_host(flag))
        },
        |s| start_docker(s, Flavor::Docker), Some(check_docker);
    Cri "cri" [Containerd, CriO] true true Some(ExitWord::Asked),
        [ApiErrors, Connected, Reconnects, Calls, Lookups, Events],
        |args, _| cri_endpoint(args), start_cri, Some(check_cri);
    Podman "podman" [Podman] false false Some(ExitWord::Events),
        [ApiErrors, Connected, Reconnects, Calls, Events],
        |args, _| podman_host(args), |s| start_docker(s, Flavor::Podman), Some(check_podman);
    KubeletLogs "kubelet_logs" [] true true None, [ApiErrors, Connected, Reconnects, Lookups],
        |_, host| kubelet_logs_dir(host), start_kubelet_logs, None;
}

fn start_cri(s: Start<'_>) -> SourceTask {
    let cfg = CriConfig {
        endpoint: Some(s.endpoint),
        label_globs: s.args.labels.label_globs(),
        pod_label_globs: s.args.labels.pod_labels.clone(),
        removal_delay: s.removal_delay,
        exits: s.exits,
        ..Default::default()
    };
    Box::pin(cri::run(cfg, s.store, s.stats, s.shutdown))
}

fn start_kubelet_logs(s: Start<'_>) -> SourceTask {
    let cfg = KubeletLogsConfig {
        container_logs_dir: s.host.container_logs_dir.clone(),
        pod_logs_dir: s.host.pod_logs_dir.clone(),
        host_root: s.host.host_root.clone(),
        removal_delay: s.removal_delay,
    };
    Box::pin(kubelet_logs::run(cfg, s.store, s.stats, s.shutdown))
}

fn start_docker(s: Start<'_>, flavor: Flavor) -> SourceTask {
    let cfg = DockerConfig {
        host: Some(s.endpoint),
        label_globs: s.args.labels.label_globs(),
        removal_delay: s.removal_delay,
        flavor,
        exits: s.exits,
    };
    Box::pin(docker::run(cfg, s.store, s.stats, s.shutdown))
}

/// The Podman API to follow, if any: the flag, else the standard rootful socket when it
/// exists (a host without Podman gets no retry loop and no warning).
fn podman_host(args: &MetadataArgs) -> Option<String> {
    match args.endpoints.podman_host.as_deref() {
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
    match args.endpoints.cri_endpoint.as_deref() {
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
    let below = kubelet_logs::below(&host.host_root, dir);
    below.is_dir().then(|| dir.display().to_string())
}

/// What `check` says of a source: how it stands, in words.
pub type SourceCheck = (CheckLevel, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckLevel {
    Ok,
    Note,
    Warn,
}

impl CheckLevel {
    fn says(self, text: impl Into<String>) -> SourceCheck {
        (self, text.into())
    }
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
        return Some(CheckLevel::Note.says("off (--docker-host off)"));
    };
    let quiet = c.args.endpoints.docker_host.is_none()
        && !c.found.iter().any(|f| f.runtime == Runtime::Docker);
    Some(match c.rt.block_on(docker::probe(&url)) {
        Ok(v) => CheckLevel::Ok.says(format!(
            "Docker {} (API {}) at {url}: names, images and labels",
            v.version, v.api_version
        )),
        Err(e) if quiet => CheckLevel::Note.says(format!(
            "no Docker at {url} ({e}), and no Docker containers"
        )),
        Err(e) => CheckLevel::Warn.says(format!(
            "cannot reach Docker at {url} ({e}): metrics still work, but containers are \
             reported by id only. Mount the socket (-v /var/run/docker.sock:\
             /var/run/docker.sock:ro), set --docker-host, or --docker-host off"
        )),
    })
}

fn check_podman(c: CheckInput<'_>) -> Option<SourceCheck> {
    let Some(url) = c.endpoint else {
        let text = "Podman containers found but no Podman API (start `podman system service` or \
                    podman.socket, and set --podman-host): they are reported by id";
        return c
            .found
            .iter()
            .any(|f| f.runtime == Runtime::Podman)
            .then(|| CheckLevel::Warn.says(text));
    };
    Some(match c.rt.block_on(docker::probe(&url)) {
        Ok(v) => CheckLevel::Ok.says(format!(
            "Podman {} (Docker API {}) at {url}",
            v.version, v.api_version
        )),
        Err(e) => CheckLevel::Warn.says(format!(
            "cannot reach Podman at {url} ({e}): Podman containers are reported by id"
        )),
    })
}

fn check_cri(c: CheckInput<'_>) -> Option<SourceCheck> {
    let Some(endpoint) = c.endpoint else {
        let in_pods = (c.found.iter())
            .filter(|f| f.kind == Kind::Container && f.pod_uid.is_some())
            .count();
        let sockets = cri::DEFAULT_ENDPOINTS.join(", ");
        return (in_pods > 0).then(|| {
            CheckLevel::Warn.says(format!(
                "{in_pods} Kubernetes containers found but no CRI socket ({sockets}): they are \
                 reported by id and pod uid, without pod, namespace or container names. Mount \
                 the runtime's socket and set --cri-endpoint"
            ))
        });
    };
    Some(match c.rt.block_on(cri::probe(&endpoint)) {
        Ok(v) => CheckLevel::Ok.says(format!(
            "{} {} (CRI {}) at {endpoint}: pod, namespace and container names",
            v.runtime_name, v.runtime_version, v.runtime_api_version
        )),
        Err(e) => CheckLevel::Warn.says(format!(
            "cannot use the CRI at {endpoint} ({e}): Kubernetes containers are reported by id \
             and pod uid"
        )),
    })
}

/// Every source's store, and the lookups the outputs use. Each source owns its store (a
/// resync of one never drops another's entries); a container is looked up first in the store
/// of the source its runtime names, then in the others in the registry's order (Docker as a
/// Kubernetes runtime through cri-dockerd puts Docker containers under CRI-style paths), the
/// kubelet's log layout last, for nodes whose CRI socket does not answer.
#[derive(Clone, Default)]
pub struct Metadata {
    stores: [MetadataStore; Source::COUNT],
    /// What the runtimes say about how containers ended, for their final samples.
    pub exits: ExitStore,
    stats: MetadataStats,
}

impl Metadata {
    /// The store `source` fills.
    pub fn store(&self, source: Source) -> &MetadataStore {
        &self.stores[source as usize]
    }

    /// What a runtime says about the container `id`, found under `runtime`'s path pattern.
    pub fn container(&self, runtime: Runtime, id: &str) -> Option<Arc<ContainerMeta>> {
        let first = first_for(runtime);
        first
            .into_iter()
            .chain((0..SOURCES.len()).filter(|&i| Some(i) != first))
            .find_map(|i| self.stores[i].get(id))
    }

    /// What the runtimes say about the pod `uid`.
    pub fn pod(&self, uid: &str) -> Option<Arc<PodMeta>> {
        (0..SOURCES.len())
            .filter(|&i| SOURCES[i].pods)
            .find_map(|i| self.stores[i].get_pod(uid))
    }

    /// Asks the sources that look ids up for a container or pod that discovery found and they
    /// do not know (one batched lookup, never a call per tick), in the registry's order until
    /// one knows it. Containers are asked for only when their runtime's own source is one that
    /// is asked; the others hear of every container from their runtime.
    pub fn want(&self, kind: Kind, runtime: Runtime, id: &str) {
        let known: fn(&MetadataStore, &str) -> bool = match kind {
            Kind::Pod => |s, id| s.get_pod(id).is_some(),
            Kind::Container if first_for(runtime).is_some_and(|i| SOURCES[i].asked) => {
                |s, id| s.get(id).is_some()
            }
            Kind::Container => return,
        };
        for i in (0..SOURCES.len()).filter(|&i| SOURCES[i].asked) {
            if known(&self.stores[i], id) {
                return;
            }
            self.stores[i].want(id);
        }
    }

    /// The containers whose runtime changed their limits since the last call (emptied).
    pub fn take_limits_changed(&self) -> Vec<String> {
        let stores = self.stores.iter();
        stores
            .flat_map(MetadataStore::take_limits_changed)
            .collect()
    }

    /// Whether `source` is on and in sync with its runtime.
    pub fn connected(&self, source: Source) -> bool {
        self.stats
            .get(source.def().name)
            .is_some_and(SourceStats::is_connected)
    }

    /// How the runtime of the container `id`, found under `runtime`'s path pattern, says why
    /// it ended, if it can now: its source is connected (and, where the source is asked, knows
    /// it as a container: containerd's own namespaces are not the CRI's, and a pod's sandbox
    /// has no exit shown).
    pub fn exit_word(&self, runtime: Runtime, id: &str) -> Option<ExitWord> {
        let i = first_for(runtime)?;
        let def = &SOURCES[i];
        let word = def.exits?;
        let known = match word {
            ExitWord::Events => true,
            ExitWord::Asked => self.stores[i].get(id).is_some_and(|m| !m.sandbox),
        };
        (known && self.connected(def.source)).then_some(word)
    }

    /// The sources' counters, for the self-metrics.
    pub fn stats(&self) -> MetadataStats {
        self.stats.clone()
    }
}

/// The index of the source looked up first for `runtime`.
fn first_for(runtime: Runtime) -> Option<usize> {
    SOURCES.iter().position(|s| s.first_for.contains(&runtime))
}

/// Starts every source the flags turn on, on `runtime` (each following its runtime until
/// `shutdown` resolves), and returns the stores they fill. A source whose runtime is absent
/// keeps retrying quietly, and containers are reported by id.
pub fn spawn_sources<F>(
    args: &MetadataArgs,
    host: &HostArgs,
    removal_delay: Duration,
    runtime: &tokio::runtime::Handle,
    shutdown: &dyn Fn() -> F,
) -> Metadata
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut stats = MetadataStats::default();
    let limit = ValueLimit::new(
        args.labels.attribute_value_length_limit.0 as usize,
        args.labels.attribute_count_limit as usize,
        stats.values_cut.clone(),
    );
    let mut on = Vec::new();
    for (i, def) in SOURCES.iter().enumerate() {
        if let Some(endpoint) = (def.endpoint)(args, host) {
            on.push((i, endpoint, stats.add(def.name, def.figures)));
        }
    }
    // Every store's values are cut to `limit`, which counts in `stats.values_cut`.
    let metadata = Metadata {
        stores: std::array::from_fn(|_| MetadataStore::with_limit(limit.clone())),
        exits: ExitStore::new(),
        stats,
    };
    for (i, endpoint, stats) in on {
        let task = (SOURCES[i].start)(Start {
            args,
            host,
            endpoint,
            removal_delay,
            store: metadata.stores[i].clone(),
            stats,
            exits: metadata.exits.clone(),
            shutdown: Box::pin(shutdown()),
        });
        runtime.spawn(task);
    }
    metadata
}

/// What every source with a probe says, in the registry's order, by the source's name (for
/// `check`).
pub fn check_sources(
    args: &MetadataArgs,
    host: &HostArgs,
    found: &[Found],
    rt: &tokio::runtime::Runtime,
) -> Vec<(&'static str, SourceCheck)> {
    SOURCES
        .iter()
        .filter_map(|def| {
            let check = def.check?;
            let input = CheckInput {
                args,
                endpoint: (def.endpoint)(args, host),
                found,
                rt,
            };
            check(input).map(|c| (def.name, c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_its_sources() {
        for (i, def) in SOURCES.iter().enumerate() {
            assert_eq!(def.source as usize, i, "{}", def.name);
        }
        // Each runtime is looked up first in one source.
        for r in [
            Runtime::Docker,
            Runtime::Podman,
            Runtime::Containerd,
            Runtime::CriO,
        ] {
            let firsts = SOURCES.iter().filter(|s| s.first_for.contains(&r)).count();
            assert_eq!(firsts, 1, "{r}");
        }
    }

    #[test]
    fn lookups_go_to_the_runtimes_source_first() {
        let m = Metadata::default();
        let named = |n: &str| ContainerMeta {
            name: Some(n.into()),
            ..Default::default()
        };
        m.store(Source::Docker).insert("c".into(), named("docker"));
        m.store(Source::Podman).insert("c".into(), named("podman"));
        m.store(Source::Cri).insert("c".into(), named("cri"));
        m.store(Source::KubeletLogs)
            .insert("c".into(), named("kubelet"));
        let name = |r| m.container(r, "c").and_then(|c| c.name.clone());
        assert_eq!(name(Runtime::Docker).as_deref(), Some("docker"));
        assert_eq!(name(Runtime::Podman).as_deref(), Some("podman"));
        assert_eq!(name(Runtime::Containerd).as_deref(), Some("cri"));
        m.store(Source::Cri).remove("c");
        // Then the others in the registry's order, the kubelet's logs last.
        assert_eq!(name(Runtime::CriO).as_deref(), Some("docker"));
        m.store(Source::Docker).remove("c");
        m.store(Source::Podman).remove("c");
        assert_eq!(name(Runtime::CriO).as_deref(), Some("kubelet"));

        // Asks go to the CRI, then the kubelet's logs, for pods and CRI containers only.
        m.want(Kind::Container, Runtime::Docker, "d");
        assert!(m.store(Source::Cri).take_wanted().is_empty());
        m.want(Kind::Container, Runtime::Containerd, "e");
        assert_eq!(m.store(Source::Cri).take_wanted(), ["e"]);
        assert_eq!(m.store(Source::KubeletLogs).take_wanted(), ["e"]);
        m.store(Source::Cri).insert_pod(PodMeta {
            uid: "p".into(),
            ..Default::default()
        });
        m.want(Kind::Pod, Runtime::Containerd, "p");
        assert!(m.store(Source::KubeletLogs).take_wanted().is_empty());
        assert_eq!(m.pod("p").map(|p| p.uid.clone()).as_deref(), Some("p"));
    }
}
