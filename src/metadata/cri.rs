//! Kubernetes names for the containers and pods that discovery finds in the cgroup tree, from
//! the node's container runtime over the CRI (`runtime.v1.RuntimeService` and `ImageService`,
//! gRPC on a unix socket): containerd and CRI-O, the runtimes of nearly every cluster. A cgroup
//! path gives a container id and a pod uid; the runtime knows the pod's name and namespace, the
//! container's name, restart count and image.
//!
//! [`run`] keeps a [`MetadataStore`] current with as few calls as possible, and never one per
//! collection tick:
//! - On connect: `Version` (the runtime's name, for `container.runtime.name`),
//!   `ListPodSandbox`, `ListContainers`, and `ListImages` when a container's image is an id
//!   (the kubelet creates containers with the image id, so a name takes one lookup; the
//!   answer is cached and asked again only when an unknown image shows up).
//! - Once per new ready sandbox, a verbose `PodSandboxStatus` for its image (the "pause"
//!   image; containerd says it), which the cAdvisor page puts on the pod's network series
//!   as the kubelet's cAdvisor does.
//! - Then `GetContainerEvents`, where the runtime has it (containerd 1.7+, CRI-O 1.26+): each
//!   event carries its pod's sandbox and container statuses, so it costs no call.
//! - Where it has not (Debian's containerd 1.6 answers UNIMPLEMENTED): when discovery asks
//!   for ids the store does not know ([`MetadataStore::want`]), the asks of a few tens of ms
//!   are batched into one `ListContainers` (plus `ListPodSandbox` only when a sandbox or pod is
//!   among them, or a container's sandbox is unknown). Runtimes create a sandbox's cgroup
//!   before their lists show it (containerd lists a sandbox only once `RunPodSandbox` is done),
//!   so ids still unknown are asked again with backoff for up to [`LOOKUP_GIVE_UP`], then left
//!   alone for [`GIVE_UP_TTL`]; a full list every [`CriConfig::resync_interval`] (default 60 s,
//!   the kubelet itself lists every second) notices removals.
//!
//! Entries: every sandbox under its id (`sandbox: true`, the pod's identity) and its pod under
//! the pod uid ([`PodMeta`]); every container under its id. The CRI metadata is the contract,
//! so pod names come from the sandbox's `PodSandboxMetadata`; the `io.kubernetes.*` labels are
//! only the fallback for a container whose sandbox is unknown. A container's fields never
//! change once stored (CRI containers are immutable, a restart is a new container with a new
//! id), so lists and events, which describe images slightly differently, cannot make its labels
//! flap. Entries missing from a full list, exited, or stopped by an event stay for
//! [`CriConfig::removal_delay`] (the final sample of an exited container still has its name),
//! then go: the store holds what the runtime has, plus the recently gone.
//!
//! Exits: when a container's cgroup empties, the collector asks ([`ExitStore::ask`]) and one
//! `ContainerStatus` says its `exit_code`, `reason` and `finished_at` (asked again, a few times
//! within the collector's bound, while the runtime has not noticed the exit yet), in tasks of
//! their own, at most [`STATUS_CALLS`] at once, each within the bound. Where the runtime has
//! `GetContainerEvents`, its stop event carries the same status and no call is made (unless the
//! event is late). A call that fails leaves the kernel's verdict and no code.
//!
//! A runtime that is absent, down or restarting never blocks anything: the store keeps what it
//! knew (containers are reported by id), one warning per outage names the socket and what to
//! mount, and [`run`] retries with jittered backoff capped at 5 s. A closed connection is seen
//! at once (the socket's end of file), without a call; the reconnect re-lists everything.
//!
//! Long because it is one follower with one state: connect, list, events, batched lookups with
//! retries, removals; the messages, the client and the views of CRI objects are in `cri_api`,
//! `cri_client` and `cri_view`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tonic::Code;

use super::cri_api as api;
use super::cri_client::{Client, EventMsg, status_text};
use super::cri_view::{Ctr, Images, Sandbox, allowed, merge, nonempty};
use super::exits::{ExitStore, RuntimeExit};
use super::{ContainerMeta, MetadataStore, PodMeta};
use crate::remote::{jitter, sleep_until_opt};
use crate::telemetry::CriStats;

/// Where containerd and CRI-O listen by default, tried in this order when no endpoint is set.
pub const DEFAULT_ENDPOINTS: &[&str] = &[
    "unix:///run/containerd/containerd.sock",
    "unix:///var/run/crio/crio.sock",
];

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Asks arriving within this of the first are answered by the same list: a new pod's sandbox,
/// containers and pod cgroup appear within milliseconds of each other.
const BATCH_DELAY: Duration = Duration::from_millis(30);
/// Retries of an id a list did not show: 100 ms, 200 ms, … capped at 5 s.
const LOOKUP_RETRY_MIN: Duration = Duration::from_millis(100);
const LOOKUP_RETRY_MAX: Duration = Duration::from_secs(5);
/// An id no list has shown for this long is not the runtime's (a container of another runtime,
/// or one that came and went): it is dropped, about a dozen lists after it was first asked.
pub const LOOKUP_GIVE_UP: Duration = Duration::from_secs(30);
/// …and asks for it are ignored this long, so that a discovery that asks for an unknown id on
/// every tick costs one retry series per id, not one list per tick.
pub const GIVE_UP_TTL: Duration = Duration::from_secs(600);
/// Bounds on ids being retried and ids given up (the store bounds the asks themselves).
const MAX_PENDING: usize = 4096;
/// Sandboxes asked for their image per pass of the loop, so that a node full of new pods does
/// not hold events up.
const SANDBOX_IMAGES_PER_PASS: usize = 16;
const MAX_GIVEN_UP: usize = 16384;
/// `ContainerStatus` calls in flight at most (the rest wait their turn, within their bound).
pub const STATUS_CALLS: usize = 8;
/// Asked again after this (doubling, up to `STATUS_RETRY_MAX`) while the runtime still says
/// the container runs: it learns of the exit a moment after the kernel.
const STATUS_RETRY_MIN: Duration = Duration::from_millis(25);
const STATUS_RETRY_MAX: Duration = Duration::from_millis(400);
/// With events, the stop event is waited for this long before a status call is made.
const EVENT_GRACE: Duration = Duration::from_millis(500);

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

pub use super::cri_client::CriVersion;

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
pub async fn probe(endpoint: &str) -> Result<CriVersion, String> {
    let stats = Arc::new(CriStats::default());
    let attempt = async {
        let client = Client::connect(endpoint, stats).await?;
        client.version().await
    };
    match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{endpoint}: no answer within {PROBE_TIMEOUT:?} (is the runtime hung?)"
        )),
    }
}

/// Discovery gives pod uids with dashes; a systemd slice name has them as underscores.
fn normalize_wanted(id: String) -> String {
    if id.len() == 36 && id.contains('_') && !id.contains('-') {
        id.replace('_', "-")
    } else {
        id
    }
}

// ---------------------------------------------------------------------------------------------
// The follower
// ---------------------------------------------------------------------------------------------

/// Keeps `store` in sync with the CRI runtime until `shutdown` resolves. Never returns early
/// and never panics on runtime trouble: errors are counted in `stats`, logged, and retried.
/// With the endpoint `off` it does nothing until shutdown.
pub async fn run(
    cfg: CriConfig,
    store: MetadataStore,
    stats: Arc<CriStats>,
    shutdown: impl Future<Output = ()>,
) {
    let endpoints = resolve_endpoints(cfg.endpoint.as_deref());
    if endpoints.is_empty() {
        shutdown.await;
        return;
    }
    let mut follower = Follower::new(cfg, store, stats.clone());
    tokio::select! {
        _ = shutdown => {}
        _ = follower.follow(&endpoints) => {}
    }
    stats.connected.store(false, Ordering::Relaxed);
}

/// An id that discovery asked for and no list has shown yet.
struct Pending {
    since: Instant,
    next: Instant,
    tries: u32,
}

struct Follower {
    cfg: CriConfig,
    store: MetadataStore,
    stats: Arc<CriStats>,
    /// From `Version`, for `container.runtime.name`.
    runtime_name: Option<String>,
    /// The runtime's sandboxes as last listed (or as events described them).
    sandboxes: HashMap<String, Sandbox>,
    /// Ids this follower put in the store: `true` for sandboxes.
    held: HashMap<String, bool>,
    pods_held: HashSet<String>,
    /// Pending removals: id → when. Only stored entries get one, so these never outgrow the
    /// store.
    removals: HashMap<String, Instant>,
    pod_removals: HashMap<String, Instant>,
    images: Images,
    /// Sandbox id → its image (the "pause" image), once asked (`None`: the runtime did not
    /// say). Only for sandboxes in `sandboxes`, so bounded by them.
    sandbox_images: HashMap<String, Option<String>>,
    pending: HashMap<String, Pending>,
    given_up: HashMap<String, Instant>,
    /// A connection failed since the last good one (for `reconnects` and log levels).
    lost: bool,
    said_no_events: bool,
}

impl Follower {
    fn new(cfg: CriConfig, store: MetadataStore, stats: Arc<CriStats>) -> Follower {
        Follower {
            cfg,
            store,
            stats,
            runtime_name: None,
            sandboxes: HashMap::new(),
            held: HashMap::new(),
            pods_held: HashSet::new(),
            removals: HashMap::new(),
            pod_removals: HashMap::new(),
            images: Images::default(),
            sandbox_images: HashMap::new(),
            pending: HashMap::new(),
            given_up: HashMap::new(),
            lost: false,
            said_no_events: false,
        }
    }

    /// Connect, sync, follow; on failure back off and start again. Never returns.
    async fn follow(&mut self, endpoints: &[String]) {
        let mut backoff = BACKOFF_MIN;
        let mut ever_connected = false;
        loop {
            let err = self
                .session(endpoints, &mut backoff, &mut ever_connected)
                .await;
            self.stats.api_errors.fetch_add(1, Ordering::Relaxed);
            let was_connected = self.stats.connected.swap(false, Ordering::Relaxed);
            let tried = endpoints.join(", ");
            // One warning per outage, not one per retry every 5 s while the runtime is away.
            if was_connected {
                tracing::warn!(endpoint = %tried, error = %err, "lost the CRI runtime; Kubernetes containers are reported by id until it returns, retrying");
            } else if !ever_connected && !self.lost {
                tracing::warn!(endpoint = %tried, error = %err, "no CRI runtime (containerd, CRI-O) answers; Kubernetes pods and containers are reported by id and pod uid until one does (mount the runtime's socket, or set --cri-endpoint; `off` turns this off), retrying");
            } else {
                tracing::debug!(endpoint = %tried, error = %err, "CRI runtime still unavailable");
            }
            self.lost = true;
            let delay = jitter(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
            self.sleep_sweeping(Instant::now() + delay).await;
        }
    }

    /// The first endpoint that connects and answers `Version`.
    async fn connect_any(&self, endpoints: &[String]) -> Result<(Client, CriVersion), String> {
        let mut errors = Vec::new();
        for e in endpoints {
            let attempt = async {
                let client = Client::connect(e, self.stats.clone()).await?;
                let v = client.version().await?;
                Ok::<_, String>((client, v))
            };
            match attempt.await {
                Ok(ok) => return Ok(ok),
                Err(err) => errors.push(err),
            }
        }
        Err(errors.join("; "))
    }

    /// One connection: `Version`, the full lists, then events or asks until it fails.
    /// Returns why it ended.
    async fn session(
        &mut self,
        endpoints: &[String],
        backoff: &mut Duration,
        ever_connected: &mut bool,
    ) -> String {
        let (client, version) = match self.connect_any(endpoints).await {
            Ok(c) => c,
            Err(e) => return e,
        };
        let endpoint = client.endpoint.clone();
        self.runtime_name = nonempty(&version.runtime_name);
        // Subscribed before listing, so that what happens during the lists is not lost
        // (applying an event twice is harmless).
        let mut events = client.events();
        let mut events_on = true;
        if let Err(e) = self.resync(&client, false).await {
            return format!("{endpoint}: {e}");
        }
        self.stats.connected.store(true, Ordering::Relaxed);
        let (pods, containers) = (self.pods_held.len(), self.held.len());
        if self.lost {
            self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%endpoint, pods, containers, "CRI runtime reachable again");
            self.lost = false;
        } else if !*ever_connected {
            tracing::info!(%endpoint, runtime = %version.runtime_name, version = %version.runtime_version, pods, containers, "following the CRI runtime");
        }
        *ever_connected = true;
        *backoff = BACKOFF_MIN;

        let mut resync_at: Option<Instant> = None;
        self.absorb_wanted();
        // The collector's asks are served by a task of their own, so that a slow list never
        // holds them up; it ends with the session (the connection is gone).
        let events_flag = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let _asks = AbortOnDrop(tokio::spawn(serve_asks(
            client.clone(),
            self.cfg.exits.clone(),
            self.stats.clone(),
            events_flag.clone(),
        )));
        loop {
            if let Err(e) = self.lookup(&client).await {
                return format!("{endpoint}: {e}");
            }
            self.name_sandboxes(&client).await;
            let due = [self.next_retry(), self.next_removal(), resync_at]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                _ = client.closed.notified() => {
                    return format!("{endpoint}: the runtime closed the connection");
                }
                msg = events.rx.recv(), if events_on => match msg {
                    Some(EventMsg::Opened) => {
                        tracing::debug!(%endpoint, "following CRI container events");
                    }
                    Some(EventMsg::Event(ev)) => {
                        self.stats.events.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = self.apply_event(&client, *ev).await {
                            return format!("{endpoint}: {e}");
                        }
                    }
                    Some(EventMsg::Ended(Some(s))) if s.code() == Code::Unimplemented => {
                        events_on = false;
                        events_flag.store(false, Ordering::Relaxed);
                        resync_at = Some(Instant::now() + self.cfg.resync_interval);
                        if !self.said_no_events {
                            self.said_no_events = true;
                            tracing::info!(%endpoint, "the runtime has no GetContainerEvents: listing when discovery finds a container it does not know, and every {:?}", self.cfg.resync_interval);
                        }
                    }
                    Some(EventMsg::Ended(Some(s))) => {
                        return format!("{endpoint}: GetContainerEvents: {}", status_text(&s));
                    }
                    Some(EventMsg::Ended(None)) | None => {
                        return format!("{endpoint}: the runtime ended the events stream");
                    }
                },
                _ = self.store.wanted() => {
                    tokio::time::sleep(BATCH_DELAY).await;
                    self.absorb_wanted();
                }

                _ = sleep_until_opt(due) => {}
            }
            self.sweep();
            if resync_at.is_some_and(|at| at <= Instant::now()) {
                if let Err(e) = self.resync(&client, true).await {
                    return format!("{endpoint}: {e}");
                }
                resync_at = Some(Instant::now() + self.cfg.resync_interval);
            }
        }
    }

    /// Full lists: every sandbox and container, removal for what is gone.
    async fn resync(&mut self, client: &Client, counted: bool) -> Result<(), String> {
        let sandboxes = client.list_sandboxes().await?;
        let containers = client.list_containers().await?;
        if counted {
            self.stats.lookups.fetch_add(2, Ordering::Relaxed);
        }
        self.apply_sandboxes(&sandboxes);
        let ctrs: Vec<Ctr> = containers.iter().map(Ctr::from_list).collect();
        self.apply_containers(client, &ctrs, true, counted).await?;
        self.settle_pending(Instant::now());
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
            .filter(|s| self.store.contains(&s.id))
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
                let (image_name, image_tags) = super::image_name_and_tags(&reference);
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
        let now = Instant::now();
        if self.given_up.len() >= MAX_GIVEN_UP / 2 {
            self.given_up.retain(|_, until| *until > now);
        }
        for id in self.store.take_wanted() {
            let id = normalize_wanted(id);
            let asked_off = self.given_up.get(&id).is_some_and(|until| *until > now);
            if id.is_empty() || asked_off || self.known(&id) || self.pending.contains_key(&id) {
                continue;
            }
            if self.pending.len() >= MAX_PENDING {
                break;
            }
            self.pending.insert(
                id,
                Pending {
                    since: now,
                    next: now,
                    tries: 0,
                },
            );
        }
    }

    fn known(&self, id: &str) -> bool {
        self.store.contains(id) || self.store.get_pod(id).is_some()
    }

    fn next_retry(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.next).min()
    }

    /// Lists for the pending ids that are due, if any: `ListContainers`, and `ListPodSandbox`
    /// only when a container list cannot answer (a sandbox or pod is asked for, or a listed
    /// container's sandbox is unknown).
    async fn lookup(&mut self, client: &Client) -> Result<(), String> {
        let now = Instant::now();
        if !self.pending.values().any(|p| p.next <= now) {
            return Ok(());
        }
        let containers = client.list_containers().await?;
        self.stats.lookups.fetch_add(1, Ordering::Relaxed);
        let ctrs: Vec<Ctr> = containers.iter().map(Ctr::from_list).collect();
        let listed: HashSet<&str> = ctrs.iter().map(|c| c.id.as_str()).collect();
        let need_sandboxes = self.pending.keys().any(|id| !listed.contains(id.as_str()))
            || ctrs
                .iter()
                .any(|c| c.alive && !self.sandboxes.contains_key(&c.sandbox_id));
        if need_sandboxes {
            let sandboxes = client.list_sandboxes().await?;
            self.stats.lookups.fetch_add(1, Ordering::Relaxed);
            self.apply_sandboxes(&sandboxes);
        }
        self.apply_containers(client, &ctrs, true, true).await?;
        self.settle_pending(Instant::now());
        Ok(())
    }

    /// After a list: found ids leave `pending`; the others are retried later, or given up.
    fn settle_pending(&mut self, now: Instant) {
        let store = &self.store;
        let given_up = &mut self.given_up;
        self.pending.retain(|id, p| {
            if store.contains(id) || store.get_pod(id).is_some() {
                return false;
            }
            if p.next > now {
                return true;
            }
            if now.duration_since(p.since) >= LOOKUP_GIVE_UP {
                tracing::debug!(
                    id,
                    "the CRI runtime does not know this id; not asking again for a while"
                );
                if given_up.len() < MAX_GIVEN_UP {
                    given_up.insert(id.clone(), now + GIVE_UP_TTL);
                }
                return false;
            }
            p.tries += 1;
            let wait = LOOKUP_RETRY_MIN
                .saturating_mul(1 << p.tries.min(16))
                .min(LOOKUP_RETRY_MAX);
            p.next = now + wait;
            true
        });
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
            self.schedule_removal(&id);
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
        if !(s.ready || self.held.contains_key(id) || self.pending.contains_key(id)) {
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
            self.removals.remove(id);
        } else {
            self.schedule_removal(id);
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
            if s.ready || self.pods_held.contains(*uid) || self.pending.contains_key(*uid) {
                self.store.insert_pod(PodMeta {
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
        for uid in &self.pods_held {
            if only.is_none_or(|u| u == uid) && !best.contains_key(uid.as_str()) {
                absent.push(uid.clone());
            }
        }
        let at = Instant::now() + self.cfg.removal_delay;
        for uid in present {
            self.pod_removals.remove(&uid);
            self.pods_held.insert(uid);
        }
        for uid in absent {
            self.pods_held.insert(uid.clone());
            self.pod_removals.entry(uid).or_insert(at);
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
    ) -> Result<(), String> {
        self.name_images(client, ctrs, counted).await?;
        self.store_containers(ctrs, full);
        Ok(())
    }

    /// Whether a listed container goes in the store.
    fn stores(&self, c: &Ctr) -> bool {
        !c.id.is_empty()
            && (c.alive || self.held.contains_key(&c.id) || self.pending.contains_key(&c.id))
    }

    /// `ListImages` when one of the containers to store has an image no name is known for.
    async fn name_images(
        &mut self,
        client: &Client,
        ctrs: &[Ctr],
        counted: bool,
    ) -> Result<(), String> {
        // Stored names never change (see `merge`): only the unnamed need the image list.
        let unnamed: Vec<&Ctr> = ctrs
            .iter()
            .filter(|c| self.stores(c))
            .filter(|c| self.store.get(&c.id).is_none_or(|m| m.image_name.is_none()))
            .collect();
        if self.images.worth_listing(unnamed.iter().copied()) {
            let images = client.list_images().await?;
            if counted {
                self.stats.lookups.fetch_add(1, Ordering::Relaxed);
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
                self.removals.remove(&c.id);
            } else {
                self.schedule_removal(&c.id);
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
                self.schedule_removal(&id);
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
        let meta = match self.store.get(id) {
            Some(old) => merge(&old, meta),
            None => meta,
        };
        self.store.insert(id.to_owned(), meta);
        self.held.entry(id.to_owned()).or_insert(is_sandbox);
    }

    /// One event: its pod's sandbox and containers as they are now, then the event itself
    /// (a stop or deletion schedules the removal of what it is about).
    async fn apply_event(
        &mut self,
        client: &Client,
        ev: api::ContainerEventResponse,
    ) -> Result<(), String> {
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
                self.schedule_removal(id);
                if let Some(s) = self.sandboxes.get_mut(id) {
                    s.ready = false;
                    let uid = s.uid.clone();
                    if !self.held.contains_key(id)
                        && kind == Some(api::ContainerEventType::ContainerDeletedEvent)
                    {
                        self.sandboxes.remove(id);
                    }
                    self.refresh_pods(Some(&uid));
                }
            }
            _ => {
                // An event about something its statuses did not describe: look it up.
                if !id.is_empty() && !self.known(id) && !self.pending.contains_key(id) {
                    let now = Instant::now();
                    self.pending.insert(
                        id.to_owned(),
                        Pending {
                            since: now,
                            next: now,
                            tries: 0,
                        },
                    );
                }
            }
        }
    }

    /// Drops `id` after the removal delay. Keeps an earlier deadline (stop, then delete).
    fn schedule_removal(&mut self, id: &str) {
        if self.store.contains(id) {
            let at = Instant::now() + self.cfg.removal_delay;
            self.removals.entry(id.to_owned()).or_insert(at);
        }
    }

    fn next_removal(&self) -> Option<Instant> {
        self.removals
            .values()
            .chain(self.pod_removals.values())
            .min()
            .copied()
    }

    fn sweep(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .removals
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.removals.remove(&id);
            self.store.remove(&id);
            if self.held.remove(&id) == Some(true) {
                self.sandboxes.remove(&id);
            }
        }
        let due: Vec<String> = self
            .pod_removals
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in due {
            self.pod_removals.remove(&uid);
            self.store.remove_pod(&uid);
            self.pods_held.remove(&uid);
        }
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

/// What a container's status says about its end (once it has one: `finished_at` set).
fn exit_of(st: &api::ContainerStatus) -> RuntimeExit {
    RuntimeExit {
        oom: Some(st.reason == "OOMKilled"),
        restart_count: st.metadata.as_ref().map(|m| m.attempt),
        finished_at: u64::try_from(st.finished_at)
            .ok()
            .filter(|&ns| ns > 0)
            .map(|ns| std::time::UNIX_EPOCH + Duration::from_nanos(ns)),
        ..RuntimeExit::default()
    }
    .with_code(Some(i64::from(st.exit_code)))
}

/// Aborts a task when dropped (a session's helpers end with it).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves the collector's asks for as long as the session lasts: a `ContainerStatus` task per
/// container (at most [`STATUS_CALLS`] calls at once; the asks themselves are bounded by the
/// store). Each task ends by its container's bound at the latest, and outlives the session it
/// began in: a call that fails because the connection went says so at once.
async fn serve_asks(
    client: Client,
    exits: ExitStore,
    stats: Arc<CriStats>,
    events_on: Arc<std::sync::atomic::AtomicBool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(STATUS_CALLS));
    loop {
        exits.asked().await;
        for (id, until) in exits.take_asks() {
            tokio::spawn(exit_status(
                client.clone(),
                exits.clone(),
                stats.clone(),
                permits.clone(),
                id,
                Instant::from_std(until),
                events_on.load(Ordering::Relaxed),
            ));
        }
    }
}

/// Asks the runtime how the container `id` ended, until `until` (the collector's bound): one
/// `ContainerStatus` once the runtime has seen the exit, asked again shortly while it still
/// says the container runs. With events, the stop event is given a moment to say it first. A
/// call that fails says "no code" at once (the kernel's verdict goes out without waiting); one
/// that times out says nothing, and the bound passes.
async fn exit_status(
    client: Client,
    exits: ExitStore,
    stats: Arc<CriStats>,
    permits: Arc<tokio::sync::Semaphore>,
    id: String,
    until: Instant,
    events_on: bool,
) {
    if events_on {
        tokio::time::sleep_until(until.min(Instant::now() + EVENT_GRACE)).await;
        if exits.has(&id) {
            return;
        }
    }
    let mut retry = STATUS_RETRY_MIN;
    loop {
        let Ok(Ok(permit)) = tokio::time::timeout_at(until, permits.acquire()).await else {
            return;
        };
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let asked = Instant::now();
        match client.container_status(&id, left).await {
            Ok(st) if st.finished_at > 0 => {
                exits.record(&id, exit_of(&st));
                return;
            }
            Ok(_) => {}
            // Out of time (tonic says Cancelled when its own deadline passes): the bound has
            // come; the final sample goes out without the runtime's word.
            Err(s) if asked.elapsed() >= left || s.code() == Code::DeadlineExceeded => {
                stats.api_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%id, "ContainerStatus: no answer within the bound");
                return;
            }
            Err(s) => {
                stats.api_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%id, error = %status_text(&s), "ContainerStatus failed: the kernel's verdict alone");
                exits.record(&id, RuntimeExit::default());
                return;
            }
        }
        drop(permit);
        let next = (Instant::now() + retry).min(until);
        tokio::time::sleep_until(next).await;
        if next >= until {
            return;
        }
        retry = (retry * 2).min(STATUS_RETRY_MAX);
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

    #[test]
    fn wanted_ids() {
        assert_eq!(
            normalize_wanted("0b0e6b0c_8c51_4d43_9a3f_0d5a7b0b6c1e".into()),
            "0b0e6b0c-8c51-4d43-9a3f-0d5a7b0b6c1e"
        );
        let id = "a".repeat(64);
        assert_eq!(normalize_wanted(id.clone()), id);
    }

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
        let mut f = Follower::new(cfg, store.clone(), Arc::new(CriStats::default()));
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
            f.sweep();
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
        f.sweep();
        assert!(f.sandboxes.is_empty(), "{:?}", f.sandboxes);
        assert!(f.held.is_empty() && f.pods_held.is_empty());
        assert!(f.removals.is_empty() && f.pod_removals.is_empty());
        assert!(f.pending.is_empty());
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
        let mut f = Follower::new(cfg, MetadataStore::new(), Arc::new(CriStats::default()));
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

    #[test]
    fn messages_decode_what_they_encode() {
        use prost::Message;
        // A sandbox status and a container status as a containerd 1.7 event carries them.
        let ev = api::ContainerEventResponse {
            container_id: "c1".into(),
            container_event_type: api::ContainerEventType::ContainerStartedEvent as i32,
            created_at: 1,
            pod_sandbox_status: Some(api::PodSandboxStatus {
                id: "s1".into(),
                metadata: Some(api::PodSandboxMetadata {
                    name: "web-0".into(),
                    uid: "u-1".into(),
                    namespace: "prod".into(),
                    attempt: 0,
                }),
                state: api::PodSandboxState::SandboxReady as i32,
                created_at: 1,
                labels: BTreeMap::from([("app".into(), "web".into())]),
            }),
            containers_statuses: vec![api::ContainerStatus {
                finished_at: 0,
                exit_code: 0,
                reason: String::new(),
                id: "c1".into(),
                metadata: Some(api::ContainerMetadata {
                    name: "app".into(),
                    attempt: 2,
                }),
                state: api::ContainerState::ContainerRunning as i32,
                created_at: 1,
                started_at: 1_700_000_000_000_000_000,
                image: Some(api::ImageSpec {
                    image: "docker.io/library/busybox:1.36".into(),
                    user_specified_image: String::new(),
                }),
                image_ref: "docker.io/library/busybox@sha256:abcd".into(),
                labels: BTreeMap::new(),
                image_id: ID.into(),
            }],
        };
        let bytes = ev.encode_to_vec();
        let back = api::ContainerEventResponse::decode(&bytes[..]).unwrap();
        assert_eq!(back, ev);
        let c = Ctr::from_status(&back.containers_statuses[0], "s1");
        assert_eq!(
            (c.name.as_str(), c.attempt, c.alive),
            ("app", Some(2), true)
        );
        assert_eq!(
            c.started_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        let s = Sandbox::from_status(back.pod_sandbox_status.as_ref().unwrap());
        assert!(s.ready);
        assert_eq!((s.uid.as_str(), s.name.as_str()), ("u-1", "web-0"));
        // Garbage is an error, not a panic.
        assert!(api::ContainerEventResponse::decode(&[0xff, 0xff, 0xff][..]).is_err());
    }
}
