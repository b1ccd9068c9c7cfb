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

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::errors::Error as ApiError;
use bollard::models::{ContainerInspectResponse, EventMessage};
use bollard::query_parameters::{EventsOptions, ListContainersOptionsBuilder};
use futures_util::StreamExt;
use tokio::time::Instant;

/// Where the Docker daemon listens when neither the configuration nor `DOCKER_HOST` says.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

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
/// `start` (new or restarted: name, image, StartedAt), `die`/`destroy` (schedule removal),
/// `rename` (name), `update` (re-inspect; cheap and rare). Nothing else changes what we keep:
/// create has no cgroup yet, kill/stop/restart are followed by die/start.
const EVENT_ACTIONS: [&str; 5] = ["start", "die", "destroy", "rename", "update"];

// ---------------------------------------------------------------------------------------------
// What is kept
// ---------------------------------------------------------------------------------------------

/// What Docker knows about a container, for its resource attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerMeta {
    /// Docker `Name` without the leading `/` (`container.name`).
    pub name: Option<String>,
    /// `Config.Image` without tag or digest (`container.image.name`), as the user wrote it:
    /// `busybox` stays `busybox`, not `docker.io/library/busybox`.
    pub image_name: Option<String>,
    /// The tag of `Config.Image`, `["latest"]` when it names none, as the OpenTelemetry
    /// Collector's docker receivers do (`container.image.tags`).
    pub image_tags: Vec<String>,
    /// `Image`, the image id `sha256:…` (`container.image.id`).
    pub image_id: Option<String>,
    /// Labels whose key matches one of [`DockerConfig::label_globs`], sorted by key.
    pub labels: Vec<(String, String)>,
    /// `io.kubernetes.pod.name`, whatever the allow-list says (`k8s.pod.name`).
    pub k8s_pod_name: Option<String>,
    /// `io.kubernetes.pod.namespace` (`k8s.namespace.name`).
    pub k8s_namespace_name: Option<String>,
    /// `io.kubernetes.container.name` (`k8s.container.name`).
    pub k8s_container_name: Option<String>,
    /// `io.kubernetes.pod.uid` (`k8s.pod.uid`).
    pub k8s_pod_uid: Option<String>,
    /// `State.StartedAt`; `None` for a container that never started (Docker's zero time).
    pub started_at: Option<SystemTime>,
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
            started_at: state
                .and_then(|s| s.started_at.as_deref())
                .and_then(parse_rfc3339),
        };
        let running = state.and_then(|s| s.running).unwrap_or(false);
        Some((id, meta, running))
    }
}

/// Shared map from full container id to its metadata, written by [`run`] and read by the
/// exporters every tick (a read lock and an `Arc` clone per lookup).
///
/// [`generation`](Self::generation) grows on every change, so a renderer can cache each
/// container's label block and rebuild it only when the number moved. Read the generation
/// *before* the entries: a change racing with the read then shows as a new generation on the
/// next tick instead of being cached as current.
#[derive(Clone, Default)]
pub struct MetadataStore {
    inner: Arc<StoreInner>,
}

#[derive(Default)]
struct StoreInner {
    map: RwLock<HashMap<String, Arc<ContainerMeta>>>,
    generation: AtomicU64,
}

impl MetadataStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The metadata of a container by full id, if Docker knows it.
    pub fn get(&self, id: &str) -> Option<Arc<ContainerMeta>> {
        self.read().get(id).cloned()
    }

    /// Bumped after every insert, change or removal.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Inserts or replaces an entry; the generation moves only if something changed, so that
    /// replayed events do not make every renderer rebuild its cache. Public for tests and
    /// benchmarks that need a filled store without a daemon.
    pub fn insert(&self, id: String, meta: ContainerMeta) -> bool {
        let mut map = self.write();
        if map.get(&id).is_some_and(|old| **old == meta) {
            return false;
        }
        map.insert(id, Arc::new(meta));
        self.inner.generation.fetch_add(1, Ordering::Release);
        true
    }

    /// Removes an entry; returns whether there was one.
    pub fn remove(&self, id: &str) -> bool {
        let mut map = self.write();
        let removed = map.remove(id).is_some();
        if removed {
            self.inner.generation.fetch_add(1, Ordering::Release);
        }
        removed
    }

    fn contains(&self, id: &str) -> bool {
        self.read().contains_key(id)
    }

    fn ids(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    // A panic while holding the lock cannot leave the map half-updated (each write is a single
    // insert or remove), so a poisoned lock is still usable: never let it take the exporter down.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<ContainerMeta>>> {
        self.inner.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<ContainerMeta>>> {
        self.inner.map.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Counters for the exporter's self-metrics.
#[derive(Debug, Default)]
pub struct DockerStats {
    /// Failed connects, lists, streams (including a stream the daemon closed) and inspects
    /// (other than "no such container").
    pub api_errors: AtomicU64,
    /// True while the store is in sync with a live events stream.
    pub connected: AtomicBool,
    /// Connections established after a failure (a daemon that came back, or one that was
    /// absent when the exporter started).
    pub reconnects: AtomicU64,
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
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            host: None,
            label_globs: Vec::new(),
            removal_delay: Duration::from_secs(60),
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
    let host = resolve_host(cfg.host.as_deref());
    let mut follower = Follower {
        cfg,
        store,
        stats: stats.clone(),
        removals: HashMap::new(),
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
    /// A connection failed since the last good one (for `reconnects` and log levels).
    lost: bool,
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
            if was_connected || (!ever_connected && !self.lost) {
                tracing::warn!(%host, error = %err, "Docker API unavailable; containers are reported by id until it returns, retrying");
            } else {
                tracing::debug!(%host, error = %err, "Docker API still unavailable");
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
        if let Err(e) = self.resync(&docker).await {
            return format!("list containers: {e}");
        }
        self.stats.connected.store(true, Ordering::Relaxed);
        if self.lost {
            self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%host, containers = self.store.len(), "Docker API reachable again");
            self.lost = false;
        } else if !*ever_connected {
            tracing::info!(%host, containers = self.store.len(), "following Docker events");
        }
        *ever_connected = true;
        *backoff = BACKOFF_MIN;

        let since = since.duration_since(UNIX_EPOCH).unwrap_or_default();
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            (
                "event".to_owned(),
                EVENT_ACTIONS.iter().map(|s| s.to_string()).collect(),
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
                Wake::Event(Some(Ok(ev))) => self.handle_event(&docker, ev).await,
                Wake::Event(Some(Err(e))) => return format!("events: {e}"),
                Wake::Event(None) => return "events: stream closed by the daemon".to_owned(),
                Wake::RemovalDue => self.sweep(),
            }
        }
    }

    /// Lists the running containers, inspects each, and schedules the removal of entries for
    /// containers that are no longer running (they stopped while we were disconnected).
    async fn resync(&mut self, docker: &Docker) -> Result<(), ApiError> {
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
        let mut inspected = futures_util::stream::iter(ids)
            .map(|id| {
                let docker = docker.clone();
                async move {
                    let res = docker.inspect_container(&id, None).await;
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
        let Some(id) = ev.actor.and_then(|a| a.id) else {
            return;
        };
        match ev.action.as_deref().unwrap_or("") {
            // A start may be new (or a restart): always take it. A rename or update of a
            // container we do not hold is of a stopped one: nothing to name.
            action @ ("start" | "rename" | "update")
                if action == "start" || self.store.contains(&id) =>
            {
                let res = docker.inspect_container(&id, None).await;
                self.apply_inspect(&id, res);
            }
            "die" | "destroy" => self.schedule_removal(&id),
            _ => {}
        }
        // Sweeping here too keeps removals on time under a steady stream of events.
        self.sweep();
    }

    fn apply_inspect(&mut self, id: &str, res: Result<ContainerInspectResponse, ApiError>) {
        let resp = match res {
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
        let Some((full_id, meta, running)) =
            ContainerMeta::from_inspect(&resp, &self.cfg.label_globs)
        else {
            return;
        };
        self.store.insert(full_id.clone(), meta);
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
        let store = &self.store;
        self.removals.retain(|id, at| {
            if *at <= now {
                store.remove(id);
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

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A delay between `d / 2` and `d`, so that many exporters on a cluster do not reconnect to
/// their daemons (or a shared remote one) in lockstep. std's RandomState is random enough for
/// this and saves a dependency.
fn jitter(d: Duration) -> Duration {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let frac = (h.finish() % 1024) as u32;
    d / 2 + (d / 2) * frac / 1024
}

// ---------------------------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------------------------

/// Shell-style match of a whole string: `*` matches any run of characters (also none), `?`
/// exactly one; everything else matches itself. Linear backtracking over the last `*`, so no
/// pattern can blow up.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // After the last `*`: where in the pattern to resume and how much of the text it has eaten.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi + 1, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((resume, eaten)) = star {
            // Let the `*` swallow one more character and retry from just after it.
            pi = resume;
            ti = eaten + 1;
            star = Some((resume, eaten + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// An image reference split into its parts, borrowed from the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Everything before the tag and digest, registry and port included.
    pub name: &'a str,
    pub tag: Option<&'a str>,
    /// `sha256:…` after an `@`.
    pub digest: Option<&'a str>,
}

/// Splits a reference as written in `Config.Image` (`[registry[:port]/]path[:tag][@digest]`).
/// The tag is what follows the last `:` only when that colon comes after the last `/`;
/// otherwise the colon is a registry port (`registry:5000/app`). Returns `None` for an empty
/// reference and for an image id (`sha256:<hex>` or 64 hex digits), which names no image.
pub fn split_image_ref(reference: &str) -> Option<ImageRef<'_>> {
    let r = reference.trim();
    if r.is_empty() || is_image_id(r) {
        return None;
    }
    let (named, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d).filter(|d| !d.is_empty())),
        None => (r, None),
    };
    let last_slash = named.rfind('/');
    let (name, tag) = match named.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            (&named[..colon], Some(&named[colon + 1..]))
        }
        _ => (named, None),
    };
    if name.is_empty() {
        return None;
    }
    Some(ImageRef {
        name,
        tag: tag.filter(|t| !t.is_empty()),
        digest,
    })
}

/// `container.image.name` and `container.image.tags` from `Config.Image`. No tag gives
/// `["latest"]` (even with a digest), the OpenTelemetry Collector's convention, so dashboards
/// moved over from its docker receiver keep working.
pub fn image_name_and_tags(reference: &str) -> (Option<String>, Vec<String>) {
    match split_image_ref(reference) {
        Some(r) => (
            Some(r.name.to_owned()),
            vec![r.tag.unwrap_or("latest").to_owned()],
        ),
        None => (None, Vec::new()),
    }
}

fn is_image_id(r: &str) -> bool {
    let hex = r.strip_prefix("sha256:").unwrap_or(r);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses an RFC 3339 time as Docker writes it (`2024-05-01T10:20:30.123456789Z`, or with a
/// `+02:00` offset). Times before 1970, such as Docker's zero time `0001-01-01T00:00:00Z` for
/// "never started", give `None`.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().all(u8::is_ascii_digit).then(|| {
            part.iter()
                .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, min, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            // Digits beyond nanoseconds are dropped.
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b":") => {
            let off = num(i + 1, 2)? * 3600 + num(i + 4, 2)? * 60;
            if sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerConfig, ContainerState};

    #[test]
    fn glob() {
        assert!(glob_match("team", "team"));
        assert!(!glob_match("team", "teams"));
        assert!(!glob_match("team", "tea"));
        assert!(glob_match("io.*", "io.kubernetes.pod.name"));
        assert!(glob_match("io.*", "io."));
        assert!(!glob_match("io.*", "io"));
        assert!(glob_match("*", ""));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*.version", "org.opencontainers.image.version"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(glob_match("a*b*c", "abcbc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("**a", "bbba"));
        assert!(glob_match("*?", "x"));
        assert!(!glob_match("*?", ""));
        // `?` is one character, not one byte.
        assert!(glob_match("caf?", "café"));
        // A `*` in the text is just a character.
        assert!(glob_match("a*", "a*"));
        assert!(!glob_match("a\\*", "ab"));
        // Backtracking stays linear-ish on a hostile pattern.
        let long = "a".repeat(5000);
        assert!(!glob_match("*a*a*a*a*a*b", &long));
    }

    fn split(r: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
        split_image_ref(r).map(|i| (i.name, i.tag, i.digest))
    }

    #[test]
    fn image_refs() {
        assert_eq!(split("busybox"), Some(("busybox", None, None)));
        assert_eq!(split("busybox:1.36"), Some(("busybox", Some("1.36"), None)));
        assert_eq!(
            split("library/busybox:1"),
            Some(("library/busybox", Some("1"), None))
        );
        assert_eq!(
            split("docker.io/library/busybox:latest"),
            Some(("docker.io/library/busybox", Some("latest"), None))
        );
        assert_eq!(
            split("registry:5000/ns/app:1.2"),
            Some(("registry:5000/ns/app", Some("1.2"), None))
        );
        assert_eq!(
            split("registry:5000/ns/app"),
            Some(("registry:5000/ns/app", None, None))
        );
        assert_eq!(
            split("localhost:5000/app"),
            Some(("localhost:5000/app", None, None))
        );
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            split(&format!("ghcr.io/o/app@{d}")),
            Some(("ghcr.io/o/app", None, Some(d)))
        );
        assert_eq!(
            split(&format!("registry:5000/app:v2@{d}")),
            Some(("registry:5000/app", Some("v2"), Some(d)))
        );
        // Image ids name no image.
        assert_eq!(split(d), None);
        assert_eq!(split(&d[7..]), None);
        assert_eq!(split(""), None);
        assert_eq!(split(":tag"), None);
        // A trailing colon is no tag.
        assert_eq!(split("app:"), Some(("app", None, None)));

        assert_eq!(
            image_name_and_tags("registry:5000/ns/app:1.2"),
            (Some("registry:5000/ns/app".into()), vec!["1.2".into()])
        );
        assert_eq!(
            image_name_and_tags("busybox"),
            (Some("busybox".into()), vec!["latest".into()])
        );
        assert_eq!(
            image_name_and_tags(&format!("app@{d}")),
            (Some("app".into()), vec!["latest".into()])
        );
        assert_eq!(image_name_and_tags(d), (None, vec![]));
    }

    #[test]
    fn rfc3339() {
        let t = |s| parse_rfc3339(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap());
        assert_eq!(t("1970-01-01T00:00:00Z"), Some(Duration::ZERO));
        assert_eq!(
            t("2024-02-29T12:34:56.123456789Z"),
            Some(Duration::new(1_709_210_096, 123_456_789))
        );
        assert_eq!(
            t("2024-02-29T12:34:56.5Z"),
            Some(Duration::new(1_709_210_096, 500_000_000))
        );
        assert_eq!(
            t("2024-02-29T14:34:56+02:00"),
            Some(Duration::new(1_709_210_096, 0))
        );
        assert_eq!(
            t("2024-02-29T10:04:56-02:30"),
            Some(Duration::new(1_709_210_096, 0))
        );
        assert_eq!(
            t("2024-02-29T12:34:56.1234567891Z"),
            Some(Duration::new(1_709_210_096, 123_456_789))
        );
        assert_eq!(t("0001-01-01T00:00:00Z"), None); // Docker's "never started"
        assert_eq!(t("2024-02-29T12:34:56"), None);
        assert_eq!(t("2024-02-29T12:34:56.Z"), None);
        assert_eq!(t("2024-13-01T00:00:00Z"), None);
        assert_eq!(t("garbage"), None);
        assert_eq!(t(""), None);
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

    #[test]
    fn store_generation_moves_only_on_change() {
        let s = MetadataStore::new();
        let g0 = s.generation();
        let meta = ContainerMeta {
            name: Some("a".into()),
            ..Default::default()
        };
        assert!(s.insert("id".into(), meta.clone()));
        let g1 = s.generation();
        assert!(g1 > g0);
        assert!(!s.insert("id".into(), meta.clone()));
        assert_eq!(s.generation(), g1);
        assert_eq!(s.get("id").unwrap().name.as_deref(), Some("a"));
        assert!(s.remove("id"));
        assert!(s.generation() > g1);
        assert!(!s.remove("id"));
        assert!(s.is_empty());
    }

    #[test]
    fn jitter_within_bounds() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(4));
            assert!(
                d >= Duration::from_secs(2) && d <= Duration::from_secs(4),
                "{d:?}"
            );
        }
    }
}
