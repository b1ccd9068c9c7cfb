//! The CRI source's side of the skeleton: on connect `Version`, the full lists and the events
//! stream; then events, or batched lookups of what discovery asks for where the runtime has no
//! events; sandboxes and their pods; the stop events' exits.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic::Code;

use super::api;
use super::asks;
use super::client::{AbortOnDrop, Client, CriError, CriVersion, EventMsg, EventsTask};
use super::node::Node;
use super::view::{Ctr, nonempty};
use crate::metadata::exits::ExitStore;
use crate::metadata::source::{self, Follow, Held, SourceStats, Words};
use crate::metadata::store::MetadataStore;
use crate::remote::sleep_until_opt;

/// Where containerd and CRI-O listen by default, tried in this order when no endpoint is set.
pub const DEFAULT_ENDPOINTS: &[&str] = &[
    "unix:///run/containerd/containerd.sock",
    "unix:///var/run/crio/crio.sock",
];

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Asks arriving within this of the first are answered by the same list: a new pod's sandbox,
/// containers and pod cgroup appear within milliseconds of each other.
const BATCH_DELAY: Duration = Duration::from_millis(30);

#[derive(Debug, Clone)]
pub struct CriConfig {
    /// `unix:///path` (or a bare `/path`); `None` tries [`DEFAULT_ENDPOINTS`] in order.
    pub endpoint: Option<String>,
    /// Glob patterns (`*`, `?`) of the container label keys kept in [`ContainerMeta::labels`];
    /// empty keeps none. Names come from the CRI metadata whatever this says.
    pub label_globs: Vec<String>,
    /// Glob patterns of the pod label keys kept in [`PodMeta::labels`] (the sandbox's labels,
    /// which the kubelet sets to the pod's).
    pub pod_label_globs: Vec<String>,
    /// How long a gone container's, sandbox's or pod's entry is kept. It must cover the
    /// exporter's final sample, which can come up to one interval after the exit: the daemon
    /// should use at least its interval plus a margin. Default 60 s.
    pub removal_delay: Duration,
    /// Runtimes without `GetContainerEvents` only: a full list this often, so that removals
    /// are seen even when nothing new is asked for. Default 60 s.
    pub resync_interval: Duration,
    /// Where containers' exits go, and the collector's asks for them come from.
    pub exits: ExitStore,
}

impl Default for CriConfig {
    fn default() -> Self {
        CriConfig {
            endpoint: None,
            label_globs: Vec::new(),
            pod_label_globs: Vec::new(),
            removal_delay: Duration::from_secs(60),
            resync_interval: Duration::from_secs(60),
            exits: ExitStore::new(),
        }
    }
}

/// The endpoints [`run`] tries for this setting: the flag (a bare `/path` becomes
/// `unix:///path`), else [`DEFAULT_ENDPOINTS`]; none for `off`.
pub fn resolve_endpoints(flag: Option<&str>) -> Vec<String> {
    match flag.map(str::trim) {
        None | Some("") => DEFAULT_ENDPOINTS.iter().map(|e| e.to_string()).collect(),
        Some(f) if f.eq_ignore_ascii_case("off") => Vec::new(),
        Some(f) if f.starts_with('/') => vec![format!("unix://{f}")],
        Some(f) => vec![f.to_owned()],
    }
}

/// One-off check for `check`: the runtime's name and versions, or why it cannot be reached.
pub async fn probe(endpoint: &str) -> Result<CriVersion, CriError> {
    let stats = Arc::new(SourceStats::default());
    let attempt = async {
        let client = Client::connect(endpoint, stats).await?;
        client.version().await
    };
    match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
        Ok(r) => r,
        Err(_) => Err(CriError::NoAnswer {
            endpoint: endpoint.to_owned(),
            within: PROBE_TIMEOUT,
        }),
    }
}

/// Keeps `store` in sync with the CRI runtime until `shutdown` resolves. Never returns early
/// and never panics on runtime trouble: errors are counted in `stats`, logged, and retried.
/// With the endpoint `off` it does nothing until shutdown.
pub async fn run(
    cfg: CriConfig,
    store: MetadataStore,
    stats: Arc<SourceStats>,
    shutdown: impl Future<Output = ()>,
) {
    let endpoints = resolve_endpoints(cfg.endpoint.as_deref());
    if endpoints.is_empty() {
        shutdown.await;
        return;
    }
    let words = Words {
        what: "CRI runtime",
        endpoint: endpoints.join(", "),
        lost: "lost the CRI runtime; Kubernetes containers are reported by id until it returns, \
               retrying"
            .to_owned(),
        absent: "no CRI runtime (containerd, CRI-O) answers; Kubernetes pods and containers are \
                 reported by id and pod uid until one does (mount the runtime's socket, or set \
                 --cri-endpoint; `off` turns this off), retrying"
            .to_owned(),
        following: String::new(),
    };
    let (globs, pods) = (cfg.label_globs.clone(), cfg.pod_label_globs.clone());
    let node = Node::new(store, cfg.removal_delay, globs, pods, cfg.exits.clone());
    let follower = Follower {
        node,
        cfg,
        endpoints,
        stats: stats.clone(),
        words,
        said_no_events: false,
    };
    source::run(follower, stats, shutdown).await
}

struct Follower {
    cfg: CriConfig,
    endpoints: Vec<String>,
    node: Node,
    stats: Arc<SourceStats>,
    words: Words,
    said_no_events: bool,
}

struct Session {
    client: Client,
    events: EventsTask,
    /// Whether the runtime has events (then they say exits: for the asks' task too).
    events_on: Arc<AtomicBool>,
    /// Runtimes without events: when to list everything again.
    resync_at: Option<Instant>,
    /// The collector's asks are served by a task of their own, so that a slow list never
    /// holds them up; it ends with the session (the connection is gone).
    _asks: AbortOnDrop,
}

/// What woke a session.
enum Wake {
    Closed,
    Event(Option<EventMsg>),
    Wanted,
    Timer,
}

impl Follow for Follower {
    type State = bool;
    type Session = Session;
    type Wake = Wake;
    type Error = CriError;

    fn held(&mut self) -> &mut Held<bool> {
        &mut self.node.held
    }

    /// `Version`, the events stream, the full lists.
    async fn connect(&mut self) -> Result<Session, CriError> {
        let (client, version) = self.connect_any().await?;
        self.node.runtime_name = nonempty(&version.runtime_name);
        let (name, v) = (&version.runtime_name, &version.runtime_version);
        self.words.following = format!("following the CRI runtime ({name} {v})");
        // Subscribed before listing, so that what happens during the lists is not lost
        // (applying an event twice is harmless).
        let events = client.events();
        self.resync(&client, false).await?;
        self.node.absorb_wanted();
        let events_on = Arc::new(AtomicBool::new(true));
        let asks = asks::serve(
            client.clone(),
            self.cfg.exits.clone(),
            self.stats.clone(),
            events_on.clone(),
        );
        Ok(Session {
            client,
            events,
            events_on,
            resync_at: None,
            _asks: asks,
        })
    }

    async fn next(&mut self, session: &mut Session) -> Wake {
        let due = [self.node.lookups.next_retry(), session.resync_at]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            _ = session.client.closed.notified() => Wake::Closed,
            msg = session.events.rx.recv(), if session.events_on.load(Ordering::Relaxed) => {
                Wake::Event(msg)
            }
            _ = self.node.held.store().wanted() => Wake::Wanted,
            _ = sleep_until_opt(due) => Wake::Timer,
        }
    }

    /// What woke the session, then a full list if one is due, the lookups that are due, and
    /// the images of new sandboxes.
    async fn handle(&mut self, session: &mut Session, wake: Option<Wake>) -> Result<(), CriError> {
        match wake {
            Some(Wake::Closed) => return Err(CriError::Closed),
            Some(Wake::Event(msg)) => self.event(session, msg).await?,
            Some(Wake::Wanted) => {
                tokio::time::sleep(BATCH_DELAY).await;
                self.node.absorb_wanted();
            }
            Some(Wake::Timer) | None => {}
        }
        if session.resync_at.is_some_and(|at| at <= Instant::now()) {
            self.resync(&session.client, true).await?;
            session.resync_at = Some(Instant::now() + self.cfg.resync_interval);
        }
        self.lookup(&session.client).await?;
        // The images of known sandboxes that a pass left unasked (past the limit of a pass).
        let known = self
            .node
            .sandboxes
            .values()
            .map(|s| (s.id.as_str(), s.ready));
        let ask = self.node.sandboxes_to_name(known);
        self.name_sandboxes(&session.client, ask).await;
        Ok(())
    }

    fn forget(&mut self, id: &str, sandbox: bool) {
        self.node.forget(id, sandbox);
    }

    fn words(&self) -> &Words {
        &self.words
    }
}

impl Follower {
    /// The first endpoint that connects and answers `Version`.
    async fn connect_any(&self) -> Result<(Client, CriVersion), CriError> {
        let mut errors = Vec::new();
        for e in &self.endpoints {
            let attempt = async {
                let client = Client::connect(e, self.stats.clone()).await?;
                let v = client.version().await?;
                Ok::<_, CriError>((client, v))
            };
            match attempt.await {
                Ok(ok) => return Ok(ok),
                Err(err) => errors.push(err),
            }
        }
        Err(match errors.len() {
            1 => errors.remove(0),
            _ => CriError::Endpoints(errors),
        })
    }

    /// A message of the events stream.
    async fn event(
        &mut self,
        session: &mut Session,
        msg: Option<EventMsg>,
    ) -> Result<(), CriError> {
        match msg {
            Some(EventMsg::Opened) => {
                tracing::debug!(endpoint = %session.client.endpoint, "following CRI container events");
            }
            Some(EventMsg::Event(ev)) => {
                // Its pod's sandbox and containers as they are now, then the event itself (a
                // stop or deletion schedules the removal of what it is about).
                SourceStats::count(&self.stats.events);
                if let Some(ps) = &ev.pod_sandbox_status {
                    let ready = ps.state == api::PodSandboxState::SandboxReady as i32;
                    let ask = self.node.sandboxes_to_name([(ps.id.as_str(), ready)]);
                    self.name_sandboxes(&session.client, ask).await;
                }
                let ctrs = self.node.event_sandbox(&ev);
                self.name_images(&session.client, &ctrs, true).await?;
                self.node.event_containers(&ev, &ctrs);
            }
            Some(EventMsg::Ended(Some(s))) if s.code() == Code::Unimplemented => {
                session.events_on.store(false, Ordering::Relaxed);
                session.resync_at = Some(Instant::now() + self.cfg.resync_interval);
                if !self.said_no_events {
                    self.said_no_events = true;
                    tracing::info!(endpoint = %session.client.endpoint, "the runtime has no GetContainerEvents: listing when discovery finds a container it does not know, and every {:?}", self.cfg.resync_interval);
                }
            }
            Some(EventMsg::Ended(Some(status))) => {
                return Err(CriError::Call {
                    call: "GetContainerEvents",
                    status,
                });
            }
            Some(EventMsg::Ended(None)) | None => return Err(CriError::EventsEnded),
        }
        Ok(())
    }

    /// Full lists: every sandbox and container, removal for what is gone.
    async fn resync(&mut self, client: &Client, counted: bool) -> Result<(), CriError> {
        let sandboxes = client.list_sandboxes().await?;
        let containers = client.list_containers().await?;
        if counted {
            self.stats.lookups.fetch_add(2, Ordering::Relaxed);
        }
        self.apply_sandboxes(client, &sandboxes).await;
        let ctrs: Vec<Ctr> = containers.iter().map(Ctr::from_list).collect();
        self.store_all(client, &ctrs, counted).await
    }

    /// Stores what a full `ListContainers` says (naming images first); the ids it shows leave
    /// the lookups.
    async fn store_all(
        &mut self,
        client: &Client,
        ctrs: &[Ctr],
        counted: bool,
    ) -> Result<(), CriError> {
        self.name_images(client, ctrs, counted).await?;
        self.node.store_containers(ctrs, true);
        self.node.settle_lookups();
        Ok(())
    }

    /// What a full `ListPodSandbox` says ([`Node::apply_sandboxes`]), the images of its new
    /// sandboxes asked for first.
    async fn apply_sandboxes(&mut self, client: &Client, list: &[api::PodSandbox]) {
        let ready = api::PodSandboxState::SandboxReady as i32;
        let listed = list.iter().map(|s| (s.id.as_str(), s.state == ready));
        let ask = self.node.sandboxes_to_name(listed);
        self.name_sandboxes(client, ask).await;
        self.node.apply_sandboxes(list);
    }

    /// Asks for the images of the sandboxes `ids` ([`Node::sandboxes_to_name`]), one verbose
    /// `PodSandboxStatus` each: the cAdvisor page labels a pod's network with its sandbox's
    /// image, as the kubelet's cAdvisor does. Called before a list or event stores the
    /// sandboxes, so that their first series carry the image (a label that came later would
    /// start a new series). A failed call only leaves the image unknown.
    async fn name_sandboxes(&mut self, client: &Client, ids: Vec<String>) {
        for id in ids {
            let image = match client.sandbox_image(&id).await {
                Ok(image) => image,
                Err(e) => {
                    tracing::debug!(sandbox = %id, "no sandbox image: {e}");
                    None
                }
            };
            self.node.name_sandbox(&id, image);
        }
    }

    /// Lists for the pending ids that are due, if any: `ListContainers`, and `ListPodSandbox`
    /// only when a container list cannot answer (a sandbox or pod is asked for, or a listed
    /// container's sandbox is unknown).
    async fn lookup(&mut self, client: &Client) -> Result<(), CriError> {
        if !self.node.lookups.due(Instant::now()) {
            return Ok(());
        }
        let containers = client.list_containers().await?;
        SourceStats::count(&self.stats.lookups);
        let ctrs: Vec<Ctr> = containers.iter().map(Ctr::from_list).collect();
        let listed: HashSet<&str> = ctrs.iter().map(|c| c.id.as_str()).collect();
        let need_sandboxes = self
            .node
            .lookups
            .ids()
            .any(|id| !listed.contains(id.as_str()))
            || ctrs
                .iter()
                .any(|c| c.alive && !self.node.sandboxes.contains_key(&c.sandbox_id));
        if need_sandboxes {
            let sandboxes = client.list_sandboxes().await?;
            SourceStats::count(&self.stats.lookups);
            self.apply_sandboxes(client, &sandboxes).await;
        }
        self.store_all(client, &ctrs, true).await
    }

    /// `ListImages` when one of the containers to store has an image no name is known for.
    async fn name_images(
        &mut self,
        client: &Client,
        ctrs: &[Ctr],
        counted: bool,
    ) -> Result<(), CriError> {
        let unnamed = self.node.unnamed(ctrs);
        if self.node.images.worth_listing(unnamed.iter().copied()) {
            let images = client.list_images().await?;
            if counted {
                SourceStats::count(&self.stats.lookups);
            }
            self.node.images.replace(images);
            self.node.images.settle(unnamed.iter().copied());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(resolve_endpoints(None), DEFAULT_ENDPOINTS);
        assert_eq!(resolve_endpoints(Some(" ")), DEFAULT_ENDPOINTS);
        assert!(resolve_endpoints(Some("off")).is_empty());
        assert!(resolve_endpoints(Some("OFF")).is_empty());
        assert_eq!(
            resolve_endpoints(Some("/run/k3s/containerd/containerd.sock")),
            ["unix:///run/k3s/containerd/containerd.sock"]
        );
        assert_eq!(
            resolve_endpoints(Some("unix:///x.sock")),
            ["unix:///x.sock"]
        );
    }
}
