//! Docker metadata, and Podman's through its Docker-compatible API ([`Flavor`]): [`run`] keeps
//! a store current with one list of the running containers (and one inspect each) at every
//! connect, then the `/events` stream, with one inspect per `start`, `rename` or `update`,
//! never a call per collection tick. A stopped container's entry stays for
//! [`DockerConfig::removal_delay`], so that its final sample still carries its name. The `die`
//! and `oom` events say why containers end (`docs/exits.md`); what Podman 4 does differently
//! is in `docs/architecture.md`, and next to the code that deals with it.
//! For Podman, one libpod inspect more says whether a container is a pod's infra container
//! (the compat inspect has no field for it).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::errors::Error as ApiError;
use bollard::models::{ContainerInspectResponse, EventMessage};
use bollard::query_parameters::{EventsOptions, ListContainersOptionsBuilder};
use futures_util::{Stream, StreamExt};

use crate::exit::RuntimeExit;
use crate::metadata::exits::ExitStore;
use crate::metadata::refs::{allowed, image_name_and_tags, parse_rfc3339};
use crate::metadata::source::{self, Follow, Held, SourceStats, Words};
use crate::metadata::store::{ContainerMeta, MetadataStore};

/// The events stream starts this far before the list began (by the local clock), so that an
/// event during the listing, or hidden by small clock skew, is replayed (harmless) not lost.
const SINCE_MARGIN: Duration = Duration::from_secs(5);
/// Inspect calls in flight while (re)listing: fast on a busy host without flooding the daemon.
const INSPECT_CONCURRENCY: usize = 8;
/// `check`'s bound on the whole probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

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

/// The host `run` would use for this setting: the flag, else `DOCKER_HOST`, else the
/// standard socket.
pub fn resolve_host(host: Option<&str>) -> String {
    host.map(str::to_owned)
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| DEFAULT_HOST.to_owned())
}

/// What the daemon says it is, for `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerVersion {
    pub version: String,
    pub api_version: String,
}

/// One-off reachability check for `check`: the daemon's version and API version, or why
/// it cannot be reached.
pub async fn probe(host: &str) -> Result<DockerVersion, DockerError> {
    let attempt = async {
        let docker = connect(host, Duration::from_secs(3), &AtomicU64::default()).await?;
        let v = (docker.version().await).map_err(|e| DockerError::Call("version", e))?;
        Ok(DockerVersion {
            version: v.version.unwrap_or_else(|| "?".into()),
            api_version: v.api_version.unwrap_or_else(|| "?".into()),
        })
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .unwrap_or(Err(DockerError::NoAnswer(PROBE_TIMEOUT)))
}

/// A client of the daemon at `host`, speaking its API version: bollard speaks 1.53 by default,
/// which Docker 20.10 (1.41) rejects as "too new", and the daemon may have been up- or downgraded.
async fn connect(host: &str, timeout: Duration, calls: &AtomicU64) -> Result<Docker, DockerError> {
    let docker = Docker::connect_with_host(host).map_err(|e| DockerError::Call("connect", e))?;
    SourceStats::count(calls);
    let negotiated = docker.with_timeout(timeout).negotiate_version().await;
    negotiated.map_err(|e| DockerError::Call("version", e))
}

/// Keeps `store` in sync with the Docker daemon until `shutdown` resolves. Never returns early
/// and never panics on daemon trouble: errors are counted in `stats`, logged, and retried.
pub async fn run(
    cfg: DockerConfig,
    store: MetadataStore,
    stats: Arc<SourceStats>,
    shutdown: impl Future<Output = ()>,
) {
    let host = match cfg.flavor {
        Flavor::Docker => resolve_host(cfg.host.as_deref()),
        Flavor::Podman => cfg
            .host
            .clone()
            .unwrap_or_else(|| PODMAN_DEFAULT_HOST.to_owned()),
    };
    let api = cfg.flavor.name();
    let unavailable =
        format!("{api} API unavailable; containers are reported by id until it returns, retrying");
    let follower = Follower {
        held: Held::new(store, cfg.removal_delay),
        words: Words {
            what: match cfg.flavor {
                Flavor::Docker => "Docker API",
                Flavor::Podman => "Podman API",
            },
            endpoint: host,
            lost: unavailable.clone(),
            absent: unavailable,
            following: format!("following {api} events"),
        },
        cfg,
        stats: stats.clone(),
    };
    source::run(follower, stats, shutdown).await
}

struct Follower {
    cfg: DockerConfig,
    /// Each held container's last run and whether an `oom` came since it started.
    held: Held<Ran>,
    stats: Arc<SourceStats>,
    words: Words,
}

/// What a held container's inspects and events said of its current run.
#[derive(Debug, Default)]
struct Ran {
    /// The run its last inspect saw: the run's `RestartCount` and when it started.
    run: Option<Run>,
    /// An `oom` event since its last start.
    oom: bool,
}

type Events = Pin<Box<dyn Stream<Item = Result<EventMessage, ApiError>> + Send>>;

struct Session {
    docker: Docker,
    events: Events,
}

impl Follow for Follower {
    type State = Ran;
    type Session = Session;
    type Wake = Option<Result<EventMessage, ApiError>>;
    type Error = DockerError;

    fn held(&mut self) -> &mut Held<Ran> {
        &mut self.held
    }

    /// Version negotiation, full resync, then the events stream from just before the list.
    async fn connect(&mut self) -> Result<Session, DockerError> {
        let docker = connect(&self.words.endpoint, REQUEST_TIMEOUT, &self.stats.calls).await?;
        let since = SystemTime::now()
            .checked_sub(SINCE_MARGIN)
            .unwrap_or(UNIX_EPOCH);
        self.resync(&docker)
            .await
            .map_err(|e| DockerError::Call("list containers", e))?;

        let since = since.duration_since(UNIX_EPOCH).unwrap_or_default();
        let actions = self.cfg.flavor.event_filter().iter().map(|s| s.to_string());
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            ("event".to_owned(), actions.collect()),
        ]);
        SourceStats::count(&self.stats.calls);
        let events = docker.events(Some(EventsOptions {
            since: Some(format!("{}.{:09}", since.as_secs(), since.subsec_nanos())),
            until: None,
            filters: Some(filters),
        }));
        Ok(Session {
            docker,
            events: Box::pin(events),
        })
    }

    async fn next(&mut self, session: &mut Session) -> Self::Wake {
        session.events.next().await
    }

    async fn handle(
        &mut self,
        session: &mut Session,
        wake: Option<Self::Wake>,
    ) -> Result<(), DockerError> {
        match wake {
            None => Ok(()),
            Some(Some(Ok(ev))) => {
                SourceStats::count(&self.stats.events);
                self.handle_event(&session.docker, ev).await;
                Ok(())
            }
            Some(Some(Err(e))) => Err(DockerError::Call("events", e)),
            Some(None) => Err(DockerError::EventsClosed),
        }
    }

    fn words(&self) -> &Words {
        &self.words
    }
}

impl Follower {
    /// Lists the running containers, inspects each, and schedules the removal of entries for
    /// containers that are no longer running (they stopped while we were disconnected).
    async fn resync(&mut self, docker: &Docker) -> Result<(), ApiError> {
        // Running (and paused) containers only: a stopped container has no cgroup, hence no
        // metrics to name, and a host can keep thousands of them.
        SourceStats::count(&self.stats.calls);
        let list = docker
            .list_containers(Some(ListContainersOptionsBuilder::new().all(false).build()))
            .await?;
        let ids: Vec<String> = list.into_iter().filter_map(|c| c.id).collect();
        let listed: HashSet<&str> = ids.iter().map(String::as_str).collect();
        self.held.remove_later_if(|id, _| !listed.contains(id));
        // Owned ids and a cloned client per inspect: borrowing futures make `run` not `Send`.
        let (flavor, host) = (self.cfg.flavor, self.words.endpoint.clone());
        let stats = self.stats.clone();
        let mut inspected = futures_util::stream::iter(ids)
            .map(|id| {
                let (docker, host, stats) = (docker.clone(), host.clone(), stats.clone());
                async move {
                    let res = inspect(&docker, flavor, &host, &id, &stats).await;
                    (id, res)
                }
            })
            .buffer_unordered(INSPECT_CONCURRENCY);
        while let Some((id, res)) = inspected.next().await {
            self.apply_inspect(&id, res);
        }
        Ok(())
    }

    async fn handle_event(&mut self, docker: &Docker, ev: EventMessage) {
        let Some(id) = ev.actor.as_ref().and_then(|a| a.id.clone()) else {
            return;
        };
        let action = ev.action.as_deref().unwrap_or("");
        tracing::debug!(%id, action, "{} event", self.cfg.flavor.name());
        match action {
            // A start may be new (or a restart): always take it. A rename or update of a
            // container we do not hold is of a stopped one: nothing to name.
            action @ ("start" | "rename" | "update")
                if action == "start" || self.held.holds(&id) =>
            {
                if action == "update" {
                    // `docker update` wrote new limits: the collector reads them next tick.
                    self.held.store().flag_limits_changed(&id);
                }
                let (flavor, host) = (self.cfg.flavor, &self.words.endpoint);
                let res = inspect(docker, flavor, host, &id, &self.stats).await;
                self.apply_inspect(&id, res);
            }
            "oom" => {
                if let Some(ran) = self.held.state_mut(&id) {
                    ran.oom = true;
                }
            }
            // Docker: `die`, `destroy`. Podman: `die` (filtered as `died`), `remove`.
            "die" | "died" => {
                let attrs = ev.actor.as_ref().and_then(|a| a.attributes.as_ref());
                self.record_exit(&id, attrs, event_time(ev.time, ev.time_nano));
                self.held.remove_later(&id);
            }
            "destroy" | "remove" => self.held.remove_later(&id),
            _ => {}
        }
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
        let ran = self.held.state_mut(id);
        let restart_count = ran.as_ref().and_then(|r| r.run).map(|r| r.ended_at(died));
        let oom = ran.is_some_and(|r| std::mem::take(&mut r.oom));
        let mut exit = RuntimeExit {
            // Podman has no `oom` event: its word says nothing of the OOM killer.
            oom: (self.cfg.flavor == Flavor::Docker).then_some(oom),
            restart_count,
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
                SourceStats::count(&self.stats.api_errors);
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
                SourceStats::count(&self.stats.api_errors);
                tracing::debug!(id, error = %e, "Podman libpod inspect failed");
            }
        }
        let run = Run::of(&resp);
        let ran = self.held.put(&full_id, meta, Ran::default());
        if let Some(r) = run
            && ran.run.map(|p| p.started_at) != Some(r.started_at)
        {
            // A new run: an `oom` before it was about an earlier one.
            ran.oom = false;
        }
        ran.run = run;
        // Started and already exited (a short-lived container): its name is kept for the
        // final sample, then let go; no further event would remove it otherwise.
        self.held.set_alive(&full_id, running);
    }
}

/// Per-request timeout until the response headers (so not cutting `/events`): bollard's 2 min
/// would let a hung daemon stall resynchronisation far longer than the backoff cap.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the Docker daemon listens when neither the configuration nor `DOCKER_HOST` says.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Where rootful Podman's service (`podman.socket`, or `podman system service`) listens.
pub const PODMAN_DEFAULT_HOST: &str = "unix:///run/podman/podman.sock";

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

    /// The events followed. Docker: `start` (new or restarted: name, image, StartedAt),
    /// `die`/`destroy` (schedule removal; `die` says the exit status), `oom` (before the `die`
    /// of a container the OOM killer hit), `rename` (name), `update` (re-inspect; cheap and
    /// rare); nothing else changes what is kept: create has no cgroup yet, kill/stop/restart
    /// are followed by die/start. Podman 4 names them in its filter otherwise: `died` (then
    /// delivered as Action `die`; filtering `die` matches nothing) and `remove` (it never sends
    /// `destroy`); it has no `oom` event, and no `update` in Podman 4.3.
    pub(crate) fn event_filter(self) -> &'static [&'static str] {
        match self {
            Flavor::Docker => &["start", "die", "destroy", "oom", "rename", "update"],
            Flavor::Podman => &["start", "died", "remove", "rename"],
        }
    }
}

/// Why a connection to the Docker Engine API (Docker's or Podman's) failed or ended.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// A call failed: `connect`, `version`, `list containers`, `events`.
    #[error("{0}: {1}")]
    Call(&'static str, #[source] ApiError),
    #[error("events: stream closed by the daemon")]
    EventsClosed,
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
}

/// Why Podman's libpod inspect (whether a container is a pod's infra container) failed.
#[derive(Debug, thiserror::Error)]
pub enum LibpodError {
    #[error("unexpected container id {0:?}")]
    BadId(String),
    #[error("{0}: only unix:// and tcp:// hosts are asked")]
    Scheme(String),
    #[error("GET {path}: {status}")]
    Status {
        path: String,
        status: hyper::StatusCode,
    },
    /// The socket could not be connected to, the request not made or its answer not read.
    #[error("GET {path}: {source}")]
    Request {
        path: String,
        #[source]
        source: BoxError,
    },
    #[error("timed out")]
    TimedOut,
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
            labels: allowed(all_labels.into_iter().flatten(), label_globs),
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

/// One run of a container, as an inspect saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// Its `RestartCount`.
    pub(crate) restart_count: u32,
    pub(crate) started_at: Option<SystemTime>,
}

impl Run {
    /// The run an inspect shows: the one running, or the last one. A container waiting to
    /// restart already counts the restart to come (Docker increments `RestartCount` when it
    /// decides to restart, before the `die` event).
    pub(crate) fn of(resp: &ContainerInspectResponse) -> Option<Run> {
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
    pub(crate) fn ended_at(self, died: Option<SystemTime>) -> u32 {
        match (self.started_at, died) {
            (Some(started), Some(died)) if started > died => self.restart_count.saturating_sub(1),
            _ => self.restart_count,
        }
    }
}

/// An inspect, and for Podman whether the container is a pod's infra container (`None`:
/// not asked, a Docker daemon).
pub(crate) struct Inspected {
    pub(crate) resp: ContainerInspectResponse,
    pub(crate) infra: Result<Option<bool>, LibpodError>,
}

pub(crate) async fn inspect(
    docker: &Docker,
    flavor: Flavor,
    host: &str,
    id: &str,
    stats: &SourceStats,
) -> Result<Inspected, ApiError> {
    SourceStats::count(&stats.calls);
    let resp = docker.inspect_container(id, None).await?;
    let infra = match flavor {
        Flavor::Docker => Ok(None),
        Flavor::Podman => {
            SourceStats::count(&stats.calls);
            let full_id = resp.id.as_deref().unwrap_or(id);
            tokio::time::timeout(REQUEST_TIMEOUT, podman_is_infra(host, full_id))
                .await
                .unwrap_or(Err(LibpodError::TimedOut))
                .map(Some)
        }
    };
    Ok(Inspected { resp, infra })
}

/// Whether Podman calls the container a pod's infra container: `IsInfra` of the libpod
/// inspect (`GET /v4.0.0/libpod/containers/<id>/json`), which the compat inspect has no
/// field for. bollard speaks only the Docker API, so this is one plain HTTP/1.1 request on
/// the same socket. A container gone meanwhile (404) is no infra container.
async fn podman_is_infra(host: &str, id: &str) -> Result<bool, LibpodError> {
    use http_body_util::{BodyExt, Empty};

    #[derive(serde::Deserialize)]
    struct LibpodInspect {
        #[serde(rename = "IsInfra", default)]
        is_infra: bool,
    }

    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(LibpodError::BadId(id.to_owned()));
    }
    let path = format!("/v4.0.0/libpod/containers/{id}/json");
    let failed = |source: BoxError| LibpodError::Request {
        path: path.clone(),
        source,
    };
    let req = hyper::Request::get(&path)
        .header(hyper::header::HOST, "podman")
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| failed(e.into()))?;
    let resp = if let Some(socket) = host.strip_prefix("unix://") {
        send(tokio::net::UnixStream::connect(socket).await, req).await
    } else if let Some(addr) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
    {
        let addr = addr.trim_end_matches('/');
        send(tokio::net::TcpStream::connect(addr).await, req).await
    } else {
        return Err(LibpodError::Scheme(host.to_owned()));
    }
    .map_err(failed)?;
    let status = resp.status();
    if status == hyper::StatusCode::NOT_FOUND {
        return Ok(false);
    }
    if !status.is_success() {
        return Err(LibpodError::Status { path, status });
    }
    let body = resp.into_body().collect().await;
    let body = body.map_err(|e| failed(e.into()))?.to_bytes();
    serde_json::from_slice::<LibpodInspect>(&body)
        .map(|i| i.is_infra)
        .map_err(|e| failed(e.into()))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One request on a fresh HTTP/1.1 connection.
async fn send<IO>(
    io: std::io::Result<IO>,
    req: hyper::Request<http_body_util::Empty<bytes::Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, BoxError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io?)).await?;
    // The connection task ends when the response is read and `sender` is dropped.
    tokio::spawn(conn);
    Ok(sender.send_request(req).await?)
}

/// When an event happened, by the daemon's clock.
pub(crate) fn event_time(secs: Option<i64>, nanos: Option<i64>) -> Option<SystemTime> {
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
    use std::collections::HashMap;

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
        let ms = |ms| Some(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(event_time(Some(1), Some(1_500_000_000)), ms(1500));
        assert_eq!(event_time(Some(2), None), ms(2000));
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
