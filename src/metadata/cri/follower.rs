//! The CRI source's side of the skeleton: on connect `Version`, the full lists and the events
//! stream; then events, or batched lookups of what discovery asks for where the runtime has no
//! events; sandboxes and their pods; the stop events' exits.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic::Code;

use super::api;
use super::client::{Client, CriVersion, EventMsg, EventsTask};
use super::error::CriError;
use super::exits::{StatusLookup, exit_of};
use super::lookups::Lookups;
use super::view::{Ctr, Images, Sandbox, allowed, merge, nonempty};
use crate::metadata::exits::ExitStore;
use crate::metadata::refs::image_name_and_tags;
use crate::metadata::source::asks::{self, AbortOnDrop};
use crate::metadata::source::{self, Follow, Held, Words};
use crate::metadata::stats::SourceStats;
use crate::metadata::store::{ContainerMeta, MetadataStore, PodMeta};
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
/// Sandboxes asked for their image per pass of the loop, so that a node full of new pods does
/// not hold events up.
const SANDBOX_IMAGES_PER_PASS: usize = 16;

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
    let follower = Follower::new(cfg, endpoints, store, stats.clone());
    source::run(follower, stats, shutdown).await
}

struct Follower {
    cfg: CriConfig,
    endpoints: Vec<String>,
    /// Each id put in the store, `true` for sandboxes; and the pods.
    held: Held<bool>,
    stats: Arc<SourceStats>,
    words: Words,
    /// From `Version`, for `container.runtime.name` and the log.
    version: Option<CriVersion>,
    runtime_name: Option<String>,
    /// The runtime's sandboxes as last listed (or as events described them).
    sandboxes: HashMap<String, Sandbox>,
    images: Images,
    /// Sandbox id → its image (the "pause" image), once asked (`None`: the runtime did not
    /// say). Only for sandboxes in `sandboxes`, so bounded by them.
    sandbox_images: HashMap<String, Option<String>>,
    lookups: Lookups,
    said_no_events: bool,
}

struct Session {
    client: Client,
    events: EventsTask,
    events_on: bool,
    /// Whether the events say exits, for the asks' task.
    events_flag: Arc<AtomicBool>,
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

    fn held(&self) -> &Held<bool> {
        &self.held
    }

    fn held_mut(&mut self) -> &mut Held<bool> {
        &mut self.held
    }

    /// `Version`, the events stream, the full lists.
    async fn connect(&mut self) -> Result<Session, CriError> {
        let (client, version) = self.connect_any().await?;
        self.runtime_name = nonempty(&version.runtime_name);
        self.version = Some(version);
        // Subscribed before listing, so that what happens during the lists is not lost
        // (applying an event twice is harmless).
        let events = client.events();
        self.resync(&client, false).await?;
        self.absorb_wanted();
        let events_flag = Arc::new(AtomicBool::new(true));
        let asks = asks::serve(
            StatusLookup(client.clone()),
            self.cfg.exits.clone(),
            self.stats.clone(),
            events_flag.clone(),
        );
        Ok(Session {
            client,
            events,
            events_on: true,
            events_flag,
            resync_at: None,
            _asks: asks,
        })
    }

    async fn next(&mut self, session: &mut Session) -> Wake {
        let due = [self.lookups.next_retry(), session.resync_at]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            _ = session.client.closed.notified() => Wake::Closed,
            msg = session.events.rx.recv(), if session.events_on => Wake::Event(msg),
            _ = self.held.store().wanted() => Wake::Wanted,
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
                self.absorb_wanted();
            }
            Some(Wake::Timer) | None => {}
        }
        if session.resync_at.is_some_and(|at| at <= Instant::now()) {
            self.resync(&session.client, true).await?;
            session.resync_at = Some(Instant::now() + self.cfg.resync_interval);
        }
        self.lookup(&session.client).await?;
        self.name_sandboxes(&session.client).await;
        Ok(())
    }

    /// A sandbox's entry goes with what is known of it.
    fn forget(&mut self, id: &str, sandbox: bool) {
        if sandbox {
            self.sandboxes.remove(id);
        }
    }

    fn words(&self) -> &Words {
        &self.words
    }

    fn following(&self) -> String {
        match &self.version {
            Some(v) => format!(
                "following the CRI runtime ({} {})",
                v.runtime_name, v.runtime_version
            ),
            None => "following the CRI runtime".to_owned(),
        }
    }
}

impl Follower {
    fn new(
        cfg: CriConfig,
        endpoints: Vec<String>,
        store: MetadataStore,
        stats: Arc<SourceStats>,
    ) -> Follower {
        let words = Words {
            what: "CRI runtime",
            endpoint: endpoints.join(", "),
            lost: "lost the CRI runtime; Kubernetes containers are reported by id until it \
                   returns, retrying"
                .to_owned(),
            absent: "no CRI runtime (containerd, CRI-O) answers; Kubernetes pods and containers \
                     are reported by id and pod uid until one does (mount the runtime's socket, \
                     or set --cri-endpoint; `off` turns this off), retrying"
                .to_owned(),
        };
        Follower {
            held: Held::new(store, cfg.removal_delay),
            cfg,
            endpoints,
            stats,
            words,
            version: None,
            runtime_name: None,
            sandboxes: HashMap::new(),
            images: Images::default(),
            sandbox_images: HashMap::new(),
            lookups: Lookups::default(),
            said_no_events: false,
        }
    }

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
                SourceStats::count(&self.stats.events);
                self.apply_event(&session.client, *ev).await?;
            }
            Some(EventMsg::Ended(Some(s))) if s.code() == Code::Unimplemented => {
                session.events_on = false;
                session.events_flag.store(false, Ordering::Relaxed);
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
        self.apply_sandboxes(&sandboxes);
        let ctrs: Vec<Ctr> = containers.iter().map(Ctr::from_list).collect();
        self.apply_containers(client, &ctrs, true, counted).await?;
        self.settle_lookups();
        Ok(())
    }

    /// Asks for the images of ready sandboxes not asked about yet (one verbose
    /// `PodSandboxStatus` each, at most [`SANDBOX_IMAGES_PER_PASS`] per pass, once per
    /// sandbox): the cAdvisor page labels a pod's network with its sandbox's image, as the
    /// kubelet's cAdvisor does. A failed call only leaves the image unknown.
    async fn name_sandboxes(&mut self, client: &Client) {
        let sandboxes = &self.sandboxes;
        self.sandbox_images
            .retain(|id, _| sandboxes.contains_key(id));
        let ask: Vec<String> = self
            .sandboxes
            .values()
            .filter(|s| s.ready && !self.sandbox_images.contains_key(&s.id))
            .filter(|s| self.held.holds(&s.id))
            .map(|s| s.id.clone())
            .take(SANDBOX_IMAGES_PER_PASS)
            .collect();
        for id in ask {
            let image = match client.sandbox_image(&id).await {
                Ok(image) => image,
                Err(e) => {
                    tracing::debug!(sandbox = %id, "no sandbox image: {e}");
                    None
                }
            };
            self.sandbox_images.insert(id.clone(), image.clone());
            if let Some(reference) = image {
                let (image_name, image_tags) = image_name_and_tags(&reference);
                let meta = ContainerMeta {
                    image_name,
                    image_tags,
                    sandbox: true,
                    ..Default::default()
                };
                self.put(&id, meta, true);
            }
        }
    }

    /// Takes what discovery asked for: ids the store does not know become pending.
    fn absorb_wanted(&mut self) {
        let store = self.held.store();
        let known = |id: &str| store.contains(id) || store.get_pod(id).is_some();
        self.lookups.absorb(store.take_wanted(), known);
    }

    fn known(&self, id: &str) -> bool {
        let store = self.held.store();
        store.contains(id) || store.get_pod(id).is_some()
    }

    /// After a list: found ids leave the lookups; the others are retried later, or given up.
    fn settle_lookups(&mut self) {
        let store = self.held.store();
        let known = |id: &str| store.contains(id) || store.get_pod(id).is_some();
        self.lookups.settle(Instant::now(), known);
    }

    /// Lists for the pending ids that are due, if any: `ListContainers`, and `ListPodSandbox`
    /// only when a container list cannot answer (a sandbox or pod is asked for, or a listed
    /// container's sandbox is unknown).
    async fn lookup(&mut self, client: &Client) -> Result<(), CriError> {
        if !self.lookups.due(Instant::now()) {
            return Ok(());
        }
        let containers = client.list_containers().await?;
        SourceStats::count(&self.stats.lookups);
        let ctrs: Vec<Ctr> = containers.iter().map(Ctr::from_list).collect();
        let listed: HashSet<&str> = ctrs.iter().map(|c| c.id.as_str()).collect();
        let need_sandboxes = self.lookups.ids().any(|id| !listed.contains(id.as_str()))
            || ctrs
                .iter()
                .any(|c| c.alive && !self.sandboxes.contains_key(&c.sandbox_id));
        if need_sandboxes {
            let sandboxes = client.list_sandboxes().await?;
            SourceStats::count(&self.stats.lookups);
            self.apply_sandboxes(&sandboxes);
        }
        self.apply_containers(client, &ctrs, true, true).await?;
        self.settle_lookups();
        Ok(())
    }

    /// A full `ListPodSandbox`: replaces what is known of sandboxes, stores the ready ones (and
    /// gone ones discovery asked for), schedules the removal of the rest, then the pods.
    fn apply_sandboxes(&mut self, list: &[api::PodSandbox]) {
        let listed: HashMap<String, Sandbox> = list
            .iter()
            .filter(|s| !s.id.is_empty())
            .map(|s| (s.id.clone(), Sandbox::from_list(s)))
            .collect();
        let gone: Vec<String> = self
            .held
            .iter()
            .filter(|&(id, &is_sandbox)| is_sandbox && !listed.contains_key(id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.held.remove_later(&id);
        }
        self.sandboxes = listed;
        let ids: Vec<String> = self.sandboxes.keys().cloned().collect();
        for id in &ids {
            self.apply_sandbox(id);
        }
        self.refresh_pods(None);
    }

    fn apply_sandbox(&mut self, id: &str) {
        let Some(s) = self.sandboxes.get(id) else {
            return;
        };
        if !(s.ready || self.held.holds(id) || self.lookups.is_pending(id)) {
            return;
        }
        let ready = s.ready;
        let meta = ContainerMeta {
            labels: allowed(&s.labels, &self.cfg.label_globs),
            k8s_pod_name: nonempty(&s.name),
            k8s_namespace_name: nonempty(&s.namespace),
            k8s_pod_uid: nonempty(&s.uid),
            runtime_name: self.runtime_name.clone(),
            sandbox: true,
            ..Default::default()
        };
        self.put(id, meta, true);
        if ready {
            self.held.keep(id);
        } else {
            self.held.remove_later(id);
        }
    }

    /// Pods from the sandboxes: a pod is there while one of its sandboxes is ready. `only`
    /// limits the work to one pod (after an event).
    fn refresh_pods(&mut self, only: Option<&str>) {
        let mut best: HashMap<&str, &Sandbox> = HashMap::new();
        for s in self.sandboxes.values() {
            if s.uid.is_empty() || only.is_some_and(|u| u != s.uid) {
                continue;
            }
            let slot = best.entry(s.uid.as_str()).or_insert(s);
            if s.better_than(slot) {
                *slot = s;
            }
        }
        let mut present = Vec::new();
        let mut absent = Vec::new();
        for (uid, s) in &best {
            if s.ready || self.held.holds_pod(uid) || self.lookups.is_pending(uid) {
                self.held.put_pod(PodMeta {
                    uid: uid.to_string(),
                    name: nonempty(&s.name),
                    namespace: nonempty(&s.namespace),
                    labels: allowed(&s.labels, &self.cfg.pod_label_globs),
                });
                if s.ready {
                    present.push(uid.to_string());
                } else {
                    absent.push(uid.to_string());
                }
            }
        }
        for uid in self.held.pods() {
            if only.is_none_or(|u| u == uid) && !best.contains_key(uid.as_str()) {
                absent.push(uid.clone());
            }
        }
        for uid in present {
            self.held.keep_pod(&uid);
        }
        for uid in absent {
            self.held.remove_pod_later(&uid);
        }
    }

    /// Stores the containers that are alive (or asked for, or already held), naming their
    /// images first (one `ListImages` if an unknown image shows up). With `full` the list is
    /// the runtime's every container: held ones missing from it are gone.
    async fn apply_containers(
        &mut self,
        client: &Client,
        ctrs: &[Ctr],
        full: bool,
        counted: bool,
    ) -> Result<(), CriError> {
        self.name_images(client, ctrs, counted).await?;
        self.store_containers(ctrs, full);
        Ok(())
    }

    /// Whether a listed container goes in the store.
    fn stores(&self, c: &Ctr) -> bool {
        !c.id.is_empty() && (c.alive || self.held.holds(&c.id) || self.lookups.is_pending(&c.id))
    }

    /// `ListImages` when one of the containers to store has an image no name is known for.
    async fn name_images(
        &mut self,
        client: &Client,
        ctrs: &[Ctr],
        counted: bool,
    ) -> Result<(), CriError> {
        // Stored names never change (see `merge`): only the unnamed need the image list.
        let unnamed: Vec<&Ctr> = ctrs
            .iter()
            .filter(|c| self.stores(c))
            .filter(|c| {
                self.held
                    .store()
                    .get(&c.id)
                    .is_none_or(|m| m.image_name.is_none())
            })
            .collect();
        if self.images.worth_listing(unnamed.iter().copied()) {
            let images = client.list_images().await?;
            if counted {
                SourceStats::count(&self.stats.lookups);
            }
            self.images.replace(images);
            self.images.settle(unnamed.iter().copied());
        }
        Ok(())
    }

    fn store_containers(&mut self, ctrs: &[Ctr], full: bool) {
        let take: Vec<&Ctr> = ctrs.iter().filter(|c| self.stores(c)).collect();
        for c in take {
            let meta = self.describe(c);
            self.put(&c.id, meta, false);
            if c.alive {
                self.held.keep(&c.id);
            } else {
                self.held.remove_later(&c.id);
            }
        }
        if full {
            let listed: HashSet<&str> = ctrs.iter().map(|c| c.id.as_str()).collect();
            let gone: Vec<String> = self
                .held
                .iter()
                .filter(|&(id, &is_sandbox)| !is_sandbox && !listed.contains(id.as_str()))
                .map(|(id, _)| id.clone())
                .collect();
            for id in gone {
                self.held.remove_later(&id);
            }
        }
    }

    fn describe(&self, c: &Ctr) -> ContainerMeta {
        let sandbox = self.sandboxes.get(&c.sandbox_id);
        let label = |k: &str| c.labels.get(k).and_then(|v| nonempty(v));
        let from_sandbox = |f: fn(&Sandbox) -> &String| sandbox.and_then(|s| nonempty(f(s)));
        let (image_name, image_tags, image_id) = self.images.describe(c);
        ContainerMeta {
            name: nonempty(&c.name),
            image_name,
            image_tags,
            image_id,
            labels: allowed(&c.labels, &self.cfg.label_globs),
            k8s_pod_name: from_sandbox(|s| &s.name).or_else(|| label("io.kubernetes.pod.name")),
            k8s_namespace_name: from_sandbox(|s| &s.namespace)
                .or_else(|| label("io.kubernetes.pod.namespace")),
            k8s_container_name: nonempty(&c.name).or_else(|| label("io.kubernetes.container.name")),
            k8s_pod_uid: from_sandbox(|s| &s.uid).or_else(|| label("io.kubernetes.pod.uid")),
            k8s_container_restart_count: c.attempt,
            runtime_name: self.runtime_name.clone(),
            sandbox: c.labels.get("io.cri-containerd.kind").map(String::as_str) == Some("sandbox"),
            started_at: c.started_at,
            log_path: None,
        }
    }

    fn put(&mut self, id: &str, meta: ContainerMeta, is_sandbox: bool) {
        let meta = match self.held.store().get(id) {
            Some(old) => merge(&old, meta),
            None => meta,
        };
        self.held.put(id, meta, is_sandbox);
    }

    /// One event: its pod's sandbox and containers as they are now, then the event itself
    /// (a stop or deletion schedules the removal of what it is about).
    async fn apply_event(
        &mut self,
        client: &Client,
        ev: api::ContainerEventResponse,
    ) -> Result<(), CriError> {
        let ctrs = self.event_sandbox(&ev);
        self.name_images(client, &ctrs, true).await?;
        self.event_containers(&ev, &ctrs);
        Ok(())
    }

    /// The event's sandbox status; returns its containers' statuses.
    fn event_sandbox(&mut self, ev: &api::ContainerEventResponse) -> Vec<Ctr> {
        let mut sandbox_id = String::new();
        if let Some(ps) = &ev.pod_sandbox_status {
            let s = Sandbox::from_status(ps);
            if !s.id.is_empty() {
                sandbox_id = s.id.clone();
                let uid = s.uid.clone();
                self.sandboxes.insert(s.id.clone(), s);
                self.apply_sandbox(&sandbox_id);
                self.refresh_pods(Some(&uid));
            }
        }
        ev.containers_statuses
            .iter()
            .map(|c| Ctr::from_status(c, &sandbox_id))
            .collect()
    }

    fn event_containers(&mut self, ev: &api::ContainerEventResponse, ctrs: &[Ctr]) {
        self.store_containers(ctrs, false);
        let id = ev.container_id.as_str();
        let kind = api::ContainerEventType::try_from(ev.container_event_type).ok();
        if kind == Some(api::ContainerEventType::ContainerStoppedEvent)
            && let Some(st) = ev
                .containers_statuses
                .iter()
                .find(|c| c.id == id && c.finished_at > 0)
        {
            // The stop carries the exit: no status call needed.
            self.cfg.exits.record(id, exit_of(st));
        }
        match kind {
            Some(api::ContainerEventType::ContainerStoppedEvent)
            | Some(api::ContainerEventType::ContainerDeletedEvent) => {
                self.held.remove_later(id);
                if let Some(s) = self.sandboxes.get_mut(id) {
                    s.ready = false;
                    let uid = s.uid.clone();
                    if !self.held.holds(id)
                        && kind == Some(api::ContainerEventType::ContainerDeletedEvent)
                    {
                        self.sandboxes.remove(id);
                    }
                    self.refresh_pods(Some(&uid));
                }
            }
            _ => {
                // An event about something its statuses did not describe: look it up.
                if !self.known(id) {
                    self.lookups.ask(id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::UNIX_EPOCH;

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

    const ID: &str = "sha256:3da5578349ac6d5a0130915b135da86571ea7db380da2e2d2c6f189b81db3f54";

    /// The event sequence of a pod's life as containerd 1.7 sends it (each event carries the
    /// sandbox's status and its containers'), applied without a runtime: what the store holds
    /// after each, and that everything is gone, store and follower state alike, after the stops.
    #[test]
    fn events_follow_a_pod_through_its_life() {
        use api::ContainerEventType as T;
        let store = MetadataStore::new();
        let cfg = CriConfig {
            removal_delay: Duration::ZERO,
            pod_label_globs: vec!["app".into()],
            ..Default::default()
        };
        let mut f = Follower::new(cfg, Vec::new(), store.clone(), Arc::default());
        f.runtime_name = Some("containerd".into());
        let sandbox = |ready: bool| api::PodSandboxStatus {
            id: "s1".into(),
            metadata: Some(api::PodSandboxMetadata {
                name: "web-0".into(),
                uid: "u-1".into(),
                namespace: "prod".into(),
                attempt: 0,
            }),
            state: if ready {
                api::PodSandboxState::SandboxReady
            } else {
                api::PodSandboxState::SandboxNotready
            } as i32,
            created_at: 1,
            labels: BTreeMap::from([("app".into(), "web".into()), ("x".into(), "y".into())]),
        };
        let container = |state: api::ContainerState| api::ContainerStatus {
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            id: "c1".into(),
            metadata: Some(api::ContainerMetadata {
                name: "app".into(),
                attempt: 1,
            }),
            state: state as i32,
            created_at: 1,
            started_at: 0,
            // containerd's statuses give the image's first repo tag and its repo digest.
            image: Some(api::ImageSpec {
                image: "docker.io/library/busybox:1.36".into(),
                user_specified_image: String::new(),
            }),
            image_ref: "docker.io/library/busybox@sha256:abcd".into(),
            labels: BTreeMap::new(),
            image_id: ID.into(),
        };
        let mut apply = |id: &str, kind: T, ready: bool, c: Option<api::ContainerState>| {
            let ev = api::ContainerEventResponse {
                container_id: id.into(),
                container_event_type: kind as i32,
                created_at: 1,
                pod_sandbox_status: Some(sandbox(ready)),
                containers_statuses: c.map(container).into_iter().collect(),
            };
            let ctrs = f.event_sandbox(&ev);
            // Statuses name their images: no ListImages needed.
            assert!(!f.images.worth_listing(&ctrs));
            f.event_containers(&ev, &ctrs);
            source::follow::sweep(&mut f);
        };

        apply("s1", T::ContainerStartedEvent, true, None);
        let s = store.get("s1").unwrap();
        assert!(s.sandbox);
        assert_eq!(s.k8s_pod_name.as_deref(), Some("web-0"));
        let p = store.get_pod("u-1").unwrap();
        assert_eq!(p.namespace.as_deref(), Some("prod"));
        assert_eq!(p.labels, [("app".to_owned(), "web".to_owned())]);

        apply(
            "c1",
            T::ContainerCreatedEvent,
            true,
            Some(api::ContainerState::ContainerCreated),
        );
        apply(
            "c1",
            T::ContainerStartedEvent,
            true,
            Some(api::ContainerState::ContainerRunning),
        );
        let c = store.get("c1").unwrap();
        assert_eq!(c.name.as_deref(), Some("app"));
        assert_eq!(c.k8s_pod_name.as_deref(), Some("web-0"));
        assert_eq!(c.k8s_namespace_name.as_deref(), Some("prod"));
        assert_eq!(c.k8s_pod_uid.as_deref(), Some("u-1"));
        assert_eq!(c.k8s_container_restart_count, Some(1));
        assert_eq!(c.image_name.as_deref(), Some("docker.io/library/busybox"));
        assert_eq!(c.image_tags, ["1.36"]);
        assert_eq!(c.image_id.as_deref(), Some(ID));
        assert_eq!(c.runtime_name.as_deref(), Some("containerd"));
        assert_eq!(store.len(), 2);

        // The container stops: gone after the (zero) delay; the pod stays.
        apply(
            "c1",
            T::ContainerStoppedEvent,
            true,
            Some(api::ContainerState::ContainerExited),
        );
        assert!(store.get("c1").is_none());
        assert!(store.get("s1").is_some() && store.get_pod("u-1").is_some());
        // The sandbox stops, then is deleted (its status then no longer comes).
        apply("s1", T::ContainerStoppedEvent, false, None);
        assert!(store.is_empty() && store.get_pod("u-1").is_none());
        let ev = api::ContainerEventResponse {
            container_id: "s1".into(),
            container_event_type: T::ContainerDeletedEvent as i32,
            ..Default::default()
        };
        let ctrs = f.event_sandbox(&ev);
        f.event_containers(&ev, &ctrs);
        source::follow::sweep(&mut f);
        assert!(f.sandboxes.is_empty(), "{:?}", f.sandboxes);
        assert!(f.held.is_empty());
        assert!(f.lookups.is_empty());
    }

    /// containerd 1.7's stop event carries the container's exit: it goes to the exit store
    /// with no call; a stop without a finished status says nothing.
    #[test]
    fn a_stop_event_says_how_the_container_ended() {
        use api::ContainerEventType as T;
        let exits = ExitStore::new();
        let cfg = CriConfig {
            exits: exits.clone(),
            ..Default::default()
        };
        let mut f = Follower::new(cfg, Vec::new(), MetadataStore::new(), Arc::default());
        let status = |finished_at: i64, exit_code: i32, reason: &str| api::ContainerStatus {
            id: "c1".into(),
            metadata: Some(api::ContainerMetadata {
                name: "app".into(),
                attempt: 3,
            }),
            state: api::ContainerState::ContainerExited as i32,
            finished_at,
            exit_code,
            reason: reason.into(),
            ..Default::default()
        };
        let ev = |st: api::ContainerStatus| api::ContainerEventResponse {
            container_id: "c1".into(),
            container_event_type: T::ContainerStoppedEvent as i32,
            created_at: 1,
            pod_sandbox_status: None,
            containers_statuses: vec![st],
        };
        let e = ev(status(0, 0, ""));
        let ctrs = f.event_sandbox(&e);
        f.event_containers(&e, &ctrs);
        assert!(exits.is_empty(), "no exit before the runtime has one");
        let e = ev(status(1_700_000_000_000_000_000, 137, "OOMKilled"));
        let ctrs = f.event_sandbox(&e);
        f.event_containers(&e, &ctrs);
        let got = exits.take("c1", UNIX_EPOCH).unwrap();
        assert_eq!(got.code, Some(137));
        assert_eq!(got.oom, Some(true));
        assert_eq!(got.restart_count, Some(3));
        assert_eq!(
            got.finished_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        // An int32 status outside 0–255 is no exit status.
        let got = exit_of(&status(1, -1, "Error"));
        assert_eq!((got.code, got.invalid_code), (None, true));
    }
}
