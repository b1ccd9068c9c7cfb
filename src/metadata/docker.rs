//! Docker metadata for the containers that discovery finds in the cgroup tree: name, image,
//! allowed labels and Kubernetes identity, the resource attributes a cgroup path cannot give.
//!
//! [`run`] keeps a [`MetadataStore`] current from the Docker Engine API with as few calls as
//! possible: one list of the running containers (and one inspect each) when it connects, then
//! the `/events` stream, with one inspect per `start`, `rename` or `update` event. It never calls
//! the stats API and never makes a call per collection tick; the exporters read the store, never
//! Docker. A daemon that is absent, down or restarting never blocks collection: the store simply
//! keeps what it knew (containers are still reported by id), [`run`] retries with a jittered
//! exponential backoff capped at 5 s, and re-lists on reconnect so that nothing that happened
//! while it was away is lost.
//!
//! Entries live while the container runs. When it stops (`die`, `destroy`, or missing from the
//! list after a reconnect) its entry stays for [`DockerConfig::removal_delay`] more, so that the
//! final sample the exporter takes of an exited container still carries its name, and is then
//! dropped: the store holds running containers plus recently stopped ones, never more.
//!
//! **Exits.** The same stream says why containers end, with no call of its own: `die` carries
//! the exit status (`exitCode`), `oom` comes before the `die` of a container the OOM killer
//! hit, and the `RestartCount` of the run that ended is the one the last inspect saw (less one
//! when that inspect already saw the next run, or the container waiting to restart). Each
//! `die` goes to the [`ExitStore`] for the container's final sample. A `die` replayed after a
//! reconnect is the same exit again (the store keeps one per run).
//!
//! Podman's Docker-compatible API is followed by the same code with [`Flavor::Podman`], for
//! what Podman 4 does differently there:
//! - its event filter names differ: an exit is filtered as `died` (and delivered with Action
//!   `die`; filtering `die` matches nothing), a removal is `remove` (it never sends
//!   `destroy`). With Docker's filter no exit or removal would ever arrive;
//! - its compat inspect cannot tell a pod's infra container (the helper that holds the pod's
//!   namespaces) from an application container: one more call per container, the libpod
//!   inspect's `IsInfra`, marks it [`ContainerMeta::sandbox`];
//! - it has no `oom` event (its inspect's `OOMKilled` and the kernel's count say it);
//! - `Config.Image` is the name Podman resolved (`localhost/app:1`,
//!   `docker.io/library/busybox:latest`), not what the user typed; it is kept as Podman
//!   reports it, as `podman ps` shows it.
//!
//! Version negotiation, list, inspect and the events stream are otherwise the same (Podman 4.3
//! says API 1.41, like Docker 20.10).
//!
//! A quarter of it is tests on real inspect responses.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::errors::Error as ApiError;
use bollard::models::{ContainerInspectResponse, EventMessage};
use bollard::query_parameters::{EventsOptions, ListContainersOptionsBuilder};
use futures_util::StreamExt;
use tokio::time::Instant;

use super::exits::{ExitStore, RuntimeExit};
use super::{ContainerMeta, MetadataStore, glob_match, image_name_and_tags, parse_rfc3339};
use crate::remote::{jitter, sleep_until_opt};
use crate::telemetry::DockerStats;

/// Where the Docker daemon listens when neither the configuration nor `DOCKER_HOST` says.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Where rootful Podman's service (`podman.socket`, or `podman system service`) listens.
pub const PODMAN_DEFAULT_HOST: &str = "unix:///run/podman/podman.sock";

/// Per-request timeout (list, inspect, version). bollard applies it until the response headers
/// arrive, so it does not cut the long-lived `/events` stream; bollard's own default (2 min)
/// would let a hung daemon stall resynchronisation far longer than the backoff cap.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The events stream is opened after the list, with `since` this far before the list began, so
/// an event that happened while listing is replayed rather than lost. Replays are harmless:
/// every event handler is idempotent. The margin also absorbs small clock skew with a remote
/// daemon (the local clock is used because `since` is compared with the daemon's).
const SINCE_MARGIN: Duration = Duration::from_secs(5);
/// Inspect calls in flight while (re)listing: fast on a busy host without flooding the daemon.
const INSPECT_CONCURRENCY: usize = 8;
/// `start` (new or restarted: name, image, StartedAt), `die`/`destroy` (schedule removal;
/// `die` says the exit status), `oom` (before the `die` of a container the OOM killer hit),
/// `rename` (name), `update` (re-inspect; cheap and rare). Nothing else changes what we keep:
/// create has no cgroup yet, kill/stop/restart are followed by die/start.
const EVENT_ACTIONS: [&str; 6] = ["start", "die", "destroy", "oom", "rename", "update"];
/// The same for Podman 4, in its filter's names: `died` is delivered as Action `die`, and a
/// removal is `remove`. (`update` events do not exist in Podman 4.3.)
const PODMAN_EVENT_ACTIONS: [&str; 4] = ["start", "died", "remove", "rename"];

/// Which daemon is at the other end of the Docker Engine API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    #[default]
    Docker,
    /// Podman's Docker-compatible service.
    Podman,
}

impl Flavor {
    /// For logs.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Docker => "Docker",
            Flavor::Podman => "Podman",
        }
    }

    fn event_filter(self) -> &'static [&'static str] {
        match self {
            Flavor::Docker => &EVENT_ACTIONS,
            Flavor::Podman => &PODMAN_EVENT_ACTIONS,
        }
    }
}

impl ContainerMeta {
    /// Builds the metadata from an inspect response. Returns the full container id and whether
    /// the container is running (paused counts as running: its cgroup still exists).
    pub fn from_inspect(
        resp: &ContainerInspectResponse,
        label_globs: &[String],
    ) -> Option<(String, ContainerMeta, bool)> {
        let id = resp.id.clone()?;
        let config = resp.config.as_ref();
        let (image_name, image_tags) = config
            .and_then(|c| c.image.as_deref())
            .map(image_name_and_tags)
            .unwrap_or_default();
        let all_labels = config.and_then(|c| c.labels.as_ref());
        let label = |key: &str| all_labels.and_then(|l| l.get(key)).cloned();
        let mut labels: Vec<(String, String)> = all_labels
            .into_iter()
            .flatten()
            .filter(|(k, _)| label_globs.iter().any(|g| glob_match(g, k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.sort();
        let state = resp.state.as_ref();
        let meta = ContainerMeta {
            name: resp
                .name
                .as_deref()
                .map(|n| n.strip_prefix('/').unwrap_or(n).to_owned())
                .filter(|n| !n.is_empty()),
            image_name,
            image_tags,
            image_id: resp.image.clone().filter(|i| !i.is_empty()),
            labels,
            k8s_pod_name: label("io.kubernetes.pod.name"),
            k8s_namespace_name: label("io.kubernetes.pod.namespace"),
            k8s_container_name: label("io.kubernetes.container.name"),
            k8s_pod_uid: label("io.kubernetes.pod.uid"),
            k8s_container_restart_count: None,
            runtime_name: None,
            // dockershim (and cri-dockerd) mark a pod's sandbox so.
            sandbox: label("io.kubernetes.docker.type").as_deref() == Some("podsandbox"),
            started_at: state
                .and_then(|s| s.started_at.as_deref())
                .and_then(parse_rfc3339),
            log_path: resp
                .log_path
                .as_deref()
                .filter(|p| p.starts_with('/'))
                .map(std::path::PathBuf::from),
        };
        let running = state.and_then(|s| s.running).unwrap_or(false);
        Some((id, meta, running))
    }
}

#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// `unix:///path` or `tcp://host:port`; `None` means `DOCKER_HOST`, else [`DEFAULT_HOST`].
    pub host: Option<String>,
    /// Glob patterns (`*`, `?`) of the label keys to keep; empty keeps none. The
    /// `io.kubernetes.*` identity labels feed the `k8s_*` fields whatever this says.
    pub label_globs: Vec<String>,
    /// How long a stopped container's entry is kept. It must cover the exporter's final sample
    /// of the container, which can come up to one interval after the exit: the daemon should
    /// use at least its interval plus a margin. Default 60 s.
    pub removal_delay: Duration,
    /// Docker, or Podman's compat API. With [`Flavor::Podman`], `host: None` means
    /// [`PODMAN_DEFAULT_HOST`].
    pub flavor: Flavor,
    /// Where the exits the events say go (for the containers' final samples).
    pub exits: ExitStore,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            host: None,
            label_globs: Vec::new(),
            removal_delay: Duration::from_secs(60),
            flavor: Flavor::Docker,
            exits: ExitStore::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The follower
// ---------------------------------------------------------------------------------------------

/// The host `run` would use for this setting: the flag, else `DOCKER_HOST`, else the
/// standard socket.
pub fn resolve_host(host: Option<&str>) -> String {
    host.map(str::to_owned)
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| DEFAULT_HOST.to_owned())
}

/// One-off reachability check for `check`: the daemon's version and API version, or why
/// it cannot be reached.
pub async fn probe(host: &str) -> Result<(String, String), String> {
    let docker = Docker::connect_with_host(host)
        .map_err(|e| e.to_string())?
        .with_timeout(Duration::from_secs(3));
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| e.to_string())?;
    let v = docker.version().await.map_err(|e| e.to_string())?;
    Ok((
        v.version.unwrap_or_else(|| "?".into()),
        v.api_version.unwrap_or_else(|| "?".into()),
    ))
}

/// Keeps `store` in sync with the Docker daemon until `shutdown` resolves. Never returns early
/// and never panics on daemon trouble: errors are counted in `stats`, logged, and retried.
pub async fn run(
    cfg: DockerConfig,
    store: MetadataStore,
    stats: Arc<DockerStats>,
    shutdown: impl Future<Output = ()>,
) {
    let host = match cfg.flavor {
        Flavor::Docker => resolve_host(cfg.host.as_deref()),
        Flavor::Podman => cfg
            .host
            .clone()
            .unwrap_or_else(|| PODMAN_DEFAULT_HOST.to_owned()),
    };
    let mut follower = Follower {
        cfg,
        store,
        stats: stats.clone(),
        removals: HashMap::new(),
        runs: HashMap::new(),
        ooms: HashSet::new(),
        lost: false,
    };
    tokio::select! {
        _ = shutdown => {}
        _ = follower.follow(&host) => {}
    }
    stats.connected.store(false, Ordering::Relaxed);
}

struct Follower {
    cfg: DockerConfig,
    store: MetadataStore,
    stats: Arc<DockerStats>,
    /// Pending removals: id → when to drop it. Only ids present in the store get one, so this
    /// is never larger than the store.
    removals: HashMap<String, Instant>,
    /// The run each held container is on, as its last inspect said: the run's `RestartCount`
    /// and when it started. Only ids in the store, so never larger than it.
    runs: HashMap<String, Run>,
    /// Held containers with an `oom` event since their last start.
    ooms: HashSet<String>,
    /// A connection failed since the last good one (for `reconnects` and log levels).
    lost: bool,
}

/// One run of a container, as an inspect saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    /// Its `RestartCount`.
    restart_count: u32,
    started_at: Option<SystemTime>,
}

impl Run {
    /// The run an inspect shows: the one running, or the last one. A container waiting to
    /// restart already counts the restart to come (Docker increments `RestartCount` when it
    /// decides to restart, before the `die` event).
    fn of(resp: &ContainerInspectResponse) -> Option<Run> {
        let count = u32::try_from(resp.restart_count?).ok()?;
        let state = resp.state.as_ref();
        let restarting = state.and_then(|s| s.restarting).unwrap_or(false);
        Some(Run {
            restart_count: count.saturating_sub(u32::from(restarting)),
            started_at: state
                .and_then(|s| s.started_at.as_deref())
                .and_then(parse_rfc3339),
        })
    }

    /// The restart count of the run that ended at `died`: this one, or the one before it when
    /// this one started after that (the inspect came after the restart).
    fn ended_at(self, died: Option<SystemTime>) -> u32 {
        match (self.started_at, died) {
            (Some(started), Some(died)) if started > died => self.restart_count.saturating_sub(1),
            _ => self.restart_count,
        }
    }
}

/// What woke the events loop.
enum Wake {
    Event(Option<Result<EventMessage, ApiError>>),
    RemovalDue,
}

impl Follower {
    /// Connect, sync, follow; on failure back off and start again. Never returns.
    async fn follow(&mut self, host: &str) {
        let mut backoff = BACKOFF_MIN;
        let mut ever_connected = false;
        loop {
            let err = self.session(host, &mut backoff, &mut ever_connected).await;
            self.stats.api_errors.fetch_add(1, Ordering::Relaxed);
            let was_connected = self.stats.connected.swap(false, Ordering::Relaxed);
            // One warning per outage, not one per retry every 5 s while the daemon is away.
            let api = self.cfg.flavor.name();
            if was_connected || (!ever_connected && !self.lost) {
                tracing::warn!(%host, error = %err, "{api} API unavailable; containers are reported by id until it returns, retrying");
            } else {
                tracing::debug!(%host, error = %err, "{api} API still unavailable");
            }
            self.lost = true;
            let delay = jitter(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
            self.sleep_sweeping(Instant::now() + delay).await;
        }
    }

    /// One connection: version negotiation, full resync, then the events stream until it fails.
    /// Returns why it ended.
    async fn session(
        &mut self,
        host: &str,
        backoff: &mut Duration,
        ever_connected: &mut bool,
    ) -> String {
        // bollard speaks API 1.53 by default and Docker 20.10 (API 1.41) rejects that as "too
        // new": negotiate down on every connect, the daemon may have been up- or downgraded.
        let docker = match Docker::connect_with_host(host) {
            Ok(d) => d.with_timeout(REQUEST_TIMEOUT),
            Err(e) => return format!("connect: {e}"),
        };
        let docker = match docker.negotiate_version().await {
            Ok(d) => d,
            Err(e) => return format!("version: {e}"),
        };
        let since = SystemTime::now()
            .checked_sub(SINCE_MARGIN)
            .unwrap_or(UNIX_EPOCH);
        if let Err(e) = self.resync(&docker, host).await {
            return format!("list containers: {e}");
        }
        self.stats.connected.store(true, Ordering::Relaxed);
        let api = self.cfg.flavor.name();
        if self.lost {
            self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%host, containers = self.store.len(), "{api} API reachable again");
            self.lost = false;
        } else if !*ever_connected {
            tracing::info!(%host, containers = self.store.len(), "following {api} events");
        }
        *ever_connected = true;
        *backoff = BACKOFF_MIN;

        let since = since.duration_since(UNIX_EPOCH).unwrap_or_default();
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            (
                "event".to_owned(),
                self.cfg
                    .flavor
                    .event_filter()
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
        ]);
        let events = docker.events(Some(EventsOptions {
            since: Some(format!("{}.{:09}", since.as_secs(), since.subsec_nanos())),
            until: None,
            filters: Some(filters),
        }));
        let mut events = std::pin::pin!(events);
        loop {
            let due = self.next_removal();
            let wake = tokio::select! {
                ev = events.next() => Wake::Event(ev),
                _ = sleep_until_opt(due) => Wake::RemovalDue,
            };
            match wake {
                Wake::Event(Some(Ok(ev))) => self.handle_event(&docker, host, ev).await,
                Wake::Event(Some(Err(e))) => return format!("events: {e}"),
                Wake::Event(None) => return "events: stream closed by the daemon".to_owned(),
                Wake::RemovalDue => self.sweep(),
            }
        }
    }

    /// Lists the running containers, inspects each, and schedules the removal of entries for
    /// containers that are no longer running (they stopped while we were disconnected).
    async fn resync(&mut self, docker: &Docker, host: &str) -> Result<(), ApiError> {
        // Running (and paused) containers only: a stopped container has no cgroup, hence no
        // metrics to name, and a host can keep thousands of them.
        let list = docker
            .list_containers(Some(ListContainersOptionsBuilder::new().all(false).build()))
            .await?;
        let ids: Vec<String> = list.into_iter().filter_map(|c| c.id).collect();
        let listed: HashSet<&str> = ids.iter().map(String::as_str).collect();
        for id in self.store.ids() {
            if !listed.contains(id.as_str()) {
                self.schedule_removal(&id);
            }
        }
        // Owned ids and a cloned client (an Arc inside) per inspect: futures that borrow from
        // this frame make `run` not `Send` (higher-ranked lifetime inference), so it could not
        // be spawned.
        let flavor = self.cfg.flavor;
        let mut inspected = futures_util::stream::iter(ids)
            .map(|id| {
                let docker = docker.clone();
                let host = host.to_owned();
                async move {
                    let res = inspect(&docker, flavor, &host, &id).await;
                    (id, res)
                }
            })
            .buffer_unordered(INSPECT_CONCURRENCY);
        while let Some((id, res)) = inspected.next().await {
            self.apply_inspect(&id, res);
        }
        Ok(())
    }

    async fn handle_event(&mut self, docker: &Docker, host: &str, ev: EventMessage) {
        let Some(id) = ev.actor.as_ref().and_then(|a| a.id.clone()) else {
            return;
        };
        let action = ev.action.as_deref().unwrap_or("");
        tracing::debug!(%id, action, "{} event", self.cfg.flavor.name());
        match action {
            // A start may be new (or a restart): always take it. A rename or update of a
            // container we do not hold is of a stopped one: nothing to name.
            action @ ("start" | "rename" | "update")
                if action == "start" || self.store.contains(&id) =>
            {
                if action == "update" {
                    // `docker update` wrote new limits: the collector reads them next tick.
                    self.store.flag_limits_changed(&id);
                }
                let res = inspect(docker, self.cfg.flavor, host, &id).await;
                self.apply_inspect(&id, res);
            }
            "oom" if self.store.contains(&id) => {
                self.ooms.insert(id.clone());
            }
            // Docker: `die`, `destroy`. Podman: `die` (filtered as `died`), `remove`.
            "die" | "died" => {
                let attrs = ev.actor.as_ref().and_then(|a| a.attributes.as_ref());
                self.record_exit(&id, attrs, event_time(ev.time, ev.time_nano));
                self.schedule_removal(&id);
            }
            "destroy" | "remove" => self.schedule_removal(&id),
            _ => {}
        }
        // Sweeping here too keeps removals on time under a steady stream of events.
        self.sweep();
    }

    /// A `die`: its exit status, the OOM verdict of an `oom` event since the start, and the
    /// ended run's restart count, for the container's final sample.
    fn record_exit(
        &mut self,
        id: &str,
        attrs: Option<&HashMap<String, String>>,
        died: Option<SystemTime>,
    ) {
        let attr = |k: &str| attrs.and_then(|a| a.get(k));
        // Docker says `exitCode`; Podman both that and `containerExitCode`.
        let raw = attr("exitCode").or_else(|| attr("containerExitCode"));
        let code = raw.and_then(|c| c.trim().parse::<i64>().ok());
        if raw.is_some() && code.is_none() {
            tracing::debug!(id, code = ?raw, "a die event with an exit status that is no number");
        }
        let mut exit = RuntimeExit {
            oom: match self.cfg.flavor {
                Flavor::Docker => Some(self.ooms.remove(id)),
                Flavor::Podman => None,
            },
            restart_count: self.runs.get(id).map(|r| r.ended_at(died)),
            finished_at: died,
            ..RuntimeExit::default()
        }
        .with_code(code);
        exit.invalid_code |= raw.is_some() && code.is_none();
        tracing::debug!(id, code = ?exit.code, oom = ?exit.oom, restart_count = ?exit.restart_count, "{} exit", self.cfg.flavor.name());
        self.cfg.exits.record(id, exit);
    }

    fn apply_inspect(&mut self, id: &str, res: Result<Inspected, ApiError>) {
        let Inspected { resp, infra } = match res {
            Ok(r) => r,
            // Gone between the event (or list) and the inspect: its destroy event follows.
            Err(ApiError::DockerResponseServerError {
                status_code: 404, ..
            }) => return,
            Err(e) => {
                // Counted but not fatal: if the daemon went away, the events stream fails too
                // and that triggers the reconnect.
                self.stats.api_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(id, error = %e, "Docker inspect failed");
                return;
            }
        };
        let Some((full_id, mut meta, running)) =
            ContainerMeta::from_inspect(&resp, &self.cfg.label_globs)
        else {
            return;
        };
        match infra {
            Ok(Some(infra)) => meta.sandbox |= infra,
            Ok(None) => {}
            Err(e) => {
                // Not marked then: an infra container looks like any other, nothing is lost.
                self.stats.api_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(id, error = %e, "Podman libpod inspect failed");
            }
        }
        let run = Run::of(&resp);
        self.store.insert(full_id.clone(), meta);
        match run {
            Some(run) => {
                if self.runs.insert(full_id.clone(), run).map(|r| r.started_at)
                    != Some(run.started_at)
                {
                    // A new run: an `oom` before it was about an earlier one.
                    self.ooms.remove(&full_id);
                }
            }
            None => {
                self.runs.remove(&full_id);
            }
        }
        if running {
            self.removals.remove(&full_id);
        } else {
            // Started and already exited (a short-lived container): keep its name for the
            // final sample, then let it go; no further event would remove it otherwise.
            self.schedule_removal(&full_id);
        }
    }

    /// Drops `id` after the removal delay. Keeps an earlier deadline (die, then destroy).
    fn schedule_removal(&mut self, id: &str) {
        if self.store.contains(id) {
            let at = Instant::now() + self.cfg.removal_delay;
            self.removals.entry(id.to_owned()).or_insert(at);
        }
    }

    fn next_removal(&self) -> Option<Instant> {
        self.removals.values().min().copied()
    }

    fn sweep(&mut self) {
        let now = Instant::now();
        let (store, runs, ooms) = (&self.store, &mut self.runs, &mut self.ooms);
        self.removals.retain(|id, at| {
            if *at <= now {
                store.remove(id);
                runs.remove(id);
                ooms.remove(id);
                false
            } else {
                true
            }
        });
    }

    /// Sleeps until `until`, still dropping entries on time while disconnected.
    async fn sleep_sweeping(&mut self, until: Instant) {
        loop {
            self.sweep();
            let wake = self.next_removal().map_or(until, |due| due.min(until));
            tokio::time::sleep_until(wake).await;
            if wake >= until {
                return;
            }
        }
    }
}

/// An inspect, and for Podman whether the container is a pod's infra container (`None`:
/// not asked, a Docker daemon).
struct Inspected {
    resp: ContainerInspectResponse,
    infra: Result<Option<bool>, String>,
}

async fn inspect(
    docker: &Docker,
    flavor: Flavor,
    host: &str,
    id: &str,
) -> Result<Inspected, ApiError> {
    let resp = docker.inspect_container(id, None).await?;
    let infra = match flavor {
        Flavor::Docker => Ok(None),
        Flavor::Podman => {
            let full_id = resp.id.as_deref().unwrap_or(id);
            tokio::time::timeout(REQUEST_TIMEOUT, podman_is_infra(host, full_id))
                .await
                .unwrap_or_else(|_| Err("timed out".to_owned()))
                .map(Some)
        }
    };
    Ok(Inspected { resp, infra })
}

/// Whether Podman calls the container a pod's infra container: `IsInfra` of the libpod
/// inspect (`GET /v4.0.0/libpod/containers/<id>/json`), which the compat inspect has no
/// field for. bollard speaks only the Docker API, so this is one plain HTTP/1.1 request on
/// the same socket. A container gone meanwhile (404) is no infra container.
async fn podman_is_infra(host: &str, id: &str) -> Result<bool, String> {
    use http_body_util::{BodyExt, Empty};

    #[derive(serde::Deserialize)]
    struct LibpodInspect {
        #[serde(rename = "IsInfra", default)]
        is_infra: bool,
    }

    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("unexpected container id {id:?}"));
    }
    let path = format!("/v4.0.0/libpod/containers/{id}/json");
    let req = hyper::Request::get(&path)
        .header(hyper::header::HOST, "podman")
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = if let Some(socket) = host.strip_prefix("unix://") {
        let io = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| format!("connect {socket}: {e}"))?;
        send(io, req).await?
    } else if let Some(addr) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
    {
        let io = tokio::net::TcpStream::connect(addr.trim_end_matches('/'))
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        send(io, req).await?
    } else {
        return Err(format!("{host}: only unix:// and tcp:// hosts are asked"));
    };
    let status = resp.status();
    if status == hyper::StatusCode::NOT_FOUND {
        return Ok(false);
    }
    if !status.is_success() {
        return Err(format!("GET {path}: {status}"));
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("GET {path}: {e}"))?
        .to_bytes();
    serde_json::from_slice::<LibpodInspect>(&body)
        .map(|i| i.is_infra)
        .map_err(|e| format!("GET {path}: {e}"))
}

/// One request on a fresh HTTP/1.1 connection.
async fn send<IO>(
    io: IO,
    req: hyper::Request<http_body_util::Empty<bytes::Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
    // The connection task ends when the response is read and `sender` is dropped.
    tokio::spawn(conn);
    sender.send_request(req).await.map_err(|e| e.to_string())
}

/// When an event happened, by the daemon's clock.
fn event_time(secs: Option<i64>, nanos: Option<i64>) -> Option<SystemTime> {
    let since_epoch = match (nanos, secs) {
        (Some(n), _) if n > 0 => Duration::from_nanos(n as u64),
        (_, Some(s)) if s > 0 => Duration::from_secs(s as u64),
        _ => return None,
    };
    UNIX_EPOCH.checked_add(since_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerConfig, ContainerState};

    /// Which run a `die` ended, from the last inspect: Docker counts a restart when it decides
    /// on it, before the `die`, and the inspect at a `start` may already see the next run.
    #[test]
    fn the_run_a_die_ended() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s);
        let resp =
            |count: i64, running: bool, restarting: bool, started: &str| ContainerInspectResponse {
                restart_count: Some(count),
                state: Some(ContainerState {
                    running: Some(running),
                    restarting: Some(restarting),
                    started_at: Some(started.into()),
                    ..Default::default()
                }),
                ..Default::default()
            };
        // Running its third run (restarted twice), started at 10; it dies at 20.
        let run = Run::of(&resp(2, true, false, "2023-11-14T22:13:30Z")).unwrap();
        assert_eq!(run.started_at, Some(at(10)));
        assert_eq!(run.ended_at(Some(at(20))), 2);
        // Seen while waiting to restart: the restart to come is counted already.
        let run = Run::of(&resp(3, true, true, "2023-11-14T22:13:30Z")).unwrap();
        assert_eq!(run.ended_at(Some(at(20))), 2);
        // Seen after the restart (started at 30): the die at 20 was the run before.
        let run = Run::of(&resp(3, true, false, "2023-11-14T22:13:50Z")).unwrap();
        assert_eq!(run.ended_at(Some(at(20))), 2);
        // No restart count (an old daemon): none.
        assert_eq!(Run::of(&ContainerInspectResponse::default()), None);
        assert_eq!(
            event_time(Some(1), Some(1_500_000_000)),
            Some(UNIX_EPOCH + Duration::from_millis(1500))
        );
        assert_eq!(
            event_time(Some(2), None),
            Some(UNIX_EPOCH + Duration::from_secs(2))
        );
        assert_eq!(event_time(None, Some(-5)), None);
    }

    #[test]
    fn meta_from_inspect() {
        let labels = HashMap::from([
            ("team".to_owned(), "a".to_owned()),
            ("secret".to_owned(), "x".to_owned()),
            ("io.kubernetes.pod.name".to_owned(), "web-0".to_owned()),
            ("io.kubernetes.pod.namespace".to_owned(), "prod".to_owned()),
            ("io.kubernetes.container.name".to_owned(), "app".to_owned()),
            ("io.kubernetes.pod.uid".to_owned(), "1-2-3".to_owned()),
        ]);
        let resp = ContainerInspectResponse {
            id: Some("c0ffee".into()),
            name: Some("/web".into()),
            image: Some("sha256:abc".into()),
            config: Some(ContainerConfig {
                image: Some("registry:5000/ns/app:1.2".into()),
                labels: Some(labels),
                ..Default::default()
            }),
            state: Some(ContainerState {
                running: Some(true),
                started_at: Some("2024-02-29T12:34:56Z".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (id, m, running) = ContainerMeta::from_inspect(&resp, &["team".into()]).unwrap();
        assert_eq!((id.as_str(), running), ("c0ffee", true));
        assert_eq!(m.name.as_deref(), Some("web"));
        assert_eq!(m.image_name.as_deref(), Some("registry:5000/ns/app"));
        assert_eq!(m.image_tags, ["1.2"]);
        assert_eq!(m.image_id.as_deref(), Some("sha256:abc"));
        assert_eq!(m.labels, [("team".to_owned(), "a".to_owned())]);
        assert_eq!(m.k8s_pod_name.as_deref(), Some("web-0"));
        assert_eq!(m.k8s_namespace_name.as_deref(), Some("prod"));
        assert_eq!(m.k8s_container_name.as_deref(), Some("app"));
        assert_eq!(m.k8s_pod_uid.as_deref(), Some("1-2-3"));
        assert_eq!(
            m.started_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_709_210_096))
        );

        // Sorted by key; nothing at all without an allow-list.
        let (_, m, _) =
            ContainerMeta::from_inspect(&resp, &["io.*".into(), "team".into()]).unwrap();
        let keys: Vec<&str> = m.labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "io.kubernetes.container.name",
                "io.kubernetes.pod.name",
                "io.kubernetes.pod.namespace",
                "io.kubernetes.pod.uid",
                "team"
            ]
        );
        let (_, m, _) = ContainerMeta::from_inspect(&resp, &[]).unwrap();
        assert!(m.labels.is_empty());
        assert_eq!(m.k8s_pod_name.as_deref(), Some("web-0"));

        // An inspect with almost nothing in it still works.
        let bare = ContainerInspectResponse {
            id: Some("x".into()),
            ..Default::default()
        };
        let (_, m, running) = ContainerMeta::from_inspect(&bare, &[]).unwrap();
        assert_eq!((m, running), (ContainerMeta::default(), false));
    }
}
