//! The Docker source's side of the skeleton: one list of the running containers (and one
//! inspect each) when it connects, then the `/events` stream, with one inspect per `start`,
//! `rename` or `update` event, and the exits the `die` and `oom` events say.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::errors::Error as ApiError;
use bollard::models::EventMessage;
use bollard::query_parameters::{EventsOptions, ListContainersOptionsBuilder};
use futures_util::{Stream, StreamExt};

use super::inspect::{
    DEFAULT_HOST, DockerError, Flavor, Inspected, PODMAN_DEFAULT_HOST, REQUEST_TIMEOUT, Run,
    event_time, inspect,
};
use crate::exit::RuntimeExit;
use crate::metadata::exits::ExitStore;
use crate::metadata::source::{self, Follow, Held, SourceStats, Words};
use crate::metadata::store::{ContainerMeta, MetadataStore};

/// The events stream is opened after the list, with `since` this far before the list began, so
/// an event that happened while listing is replayed rather than lost. Replays are harmless:
/// every event handler is idempotent. The margin also absorbs small clock skew with a remote
/// daemon (the local clock is used because `since` is compared with the daemon's).
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
        let docker = Docker::connect_with_host(host)
            .map_err(|e| DockerError::Call("connect", e))?
            .with_timeout(Duration::from_secs(3));
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| DockerError::Call("version", e))?;
        let v = docker
            .version()
            .await
            .map_err(|e| DockerError::Call("version", e))?;
        Ok(DockerVersion {
            version: v.version.unwrap_or_else(|| "?".into()),
            api_version: v.api_version.unwrap_or_else(|| "?".into()),
        })
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .unwrap_or(Err(DockerError::NoAnswer(PROBE_TIMEOUT)))
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
        // bollard speaks API 1.53 by default and Docker 20.10 (API 1.41) rejects that as "too
        // new": negotiate down on every connect, the daemon may have been up- or downgraded.
        let docker = Docker::connect_with_host(&self.words.endpoint)
            .map_err(|e| DockerError::Call("connect", e))?
            .with_timeout(REQUEST_TIMEOUT);
        SourceStats::count(&self.stats.calls);
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| DockerError::Call("version", e))?;
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
        // Owned ids and a cloned client (an Arc inside) per inspect: futures that borrow from
        // this frame make `run` not `Send` (higher-ranked lifetime inference), so it could not
        // be spawned.
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
        let oom = ran.as_ref().is_some_and(|r| r.oom);
        let restart_count = ran.as_ref().and_then(|r| r.run).map(|r| r.ended_at(died));
        if let Some(ran) = ran {
            ran.oom = false;
        }
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
        if running {
            self.held.keep(&full_id);
        } else {
            // Started and already exited (a short-lived container): keep its name for the
            // final sample, then let it go; no further event would remove it otherwise.
            self.held.remove_later(&full_id);
        }
    }
}
