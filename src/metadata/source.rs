//! The skeleton every metadata source runs on: connect (and list everything), follow the
//! runtime until the connection fails, then back off (with jitter) and start again, one warning
//! per outage, for as long as the exporter runs; the entries it holds ([`Held`]) and their
//! removal after the delay, swept throughout, connected or not: an entry of a container that is
//! gone stays for the removal delay (its final sample still carries its names), then goes, with
//! the source's state for it. A runtime plugs in by implementing [`Follow`]; the counting
//! ([`SourceStats`], handed to the self-metrics as [`MetadataStats`]: one row per [`Figure`],
//! labelled by source) and the log lines of connections are the same for every source.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

use super::store::{ContainerMeta, MetadataStore, PodMeta};
use crate::remote::{Backoff, sleep_until_opt};

/// Retries after a failed connection: 250 ms, doubling (jittered) up to 5 s.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A runtime's side of a source: how to connect, what to wait for, what to do with it.
///
/// The methods return `Send` futures so that [`run`] can be spawned.
pub(crate) trait Follow: Send {
    /// The source's own state for each container id it holds, dropped with the entry.
    type State: Send;
    /// One live connection.
    type Session: Send;
    /// What woke a session: an event, an ask, a timer of the source's own.
    type Wake: Send;
    type Error: Display + Send;

    fn held(&mut self) -> &mut Held<Self::State>;

    /// Connects and brings the store in line with the runtime (every connect lists
    /// everything: what happened while away is not lost).
    fn connect(&mut self) -> impl Future<Output = Result<Self::Session, Self::Error>> + Send;

    /// Waits for the next thing to do. Cancel safe: a removal that comes due interrupts it.
    fn next(&mut self, session: &mut Self::Session) -> impl Future<Output = Self::Wake> + Send;

    /// Does it (`None`: right after connecting, and when a removal came due). An error ends
    /// the session.
    fn handle(
        &mut self,
        session: &mut Self::Session,
        wake: Option<Self::Wake>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The entry `id` was dropped; `state` was its state. For state kept elsewhere.
    fn forget(&mut self, id: &str, state: Self::State) {
        let _ = (id, state);
    }

    /// How the log lines name the source and where it connects.
    fn words(&self) -> &Words;
}

/// How the log lines of a source's connections read.
pub(crate) struct Words {
    /// The source in "… reachable again", "… still unavailable": `Docker API`.
    pub(crate) what: &'static str,
    /// Where it connects (the socket, the URL, the directory).
    pub(crate) endpoint: String,
    /// The warning when a connection is lost: what goes missing meanwhile.
    pub(crate) lost: String,
    /// The warning when it has never answered: also what to do about it.
    pub(crate) absent: String,
    /// The first line once connected.
    pub(crate) following: String,
}

/// Follows the runtime until `shutdown` resolves: never returns before, and never panics on
/// runtime trouble (errors are counted in `stats`, logged once per outage, and retried).
pub(crate) async fn run<F: Follow>(
    mut follower: F,
    stats: Arc<SourceStats>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::select! {
        _ = shutdown => {}
        _ = follow(&mut follower, &stats) => {}
    }
    stats.connected.store(false, Relaxed);
}

async fn follow<F: Follow>(f: &mut F, stats: &SourceStats) {
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    // `lost`: a connection failed since the last good one (for `reconnects` and the log's levels).
    let (mut ever_connected, mut lost) = (false, false);
    loop {
        let err = match f.connect().await {
            Ok(session) => {
                stats.connected.store(true, Relaxed);
                let (containers, pods) = (f.held().len(), f.held().pod_count());
                let w = f.words();
                let endpoint = &w.endpoint;
                if lost {
                    SourceStats::count(&stats.reconnects);
                    tracing::info!(%endpoint, containers, pods, "{} reachable again", w.what);
                } else if !ever_connected {
                    tracing::info!(%endpoint, containers, pods, "{}", w.following);
                }
                (ever_connected, lost) = (true, false);
                backoff.reset();
                serve(f, session).await
            }
            Err(e) => e,
        };
        SourceStats::count(&stats.api_errors);
        let was_connected = stats.connected.swap(false, Relaxed);
        let w = f.words();
        // One warning per outage, not one per retry every 5 s while the runtime is away.
        if was_connected {
            tracing::warn!(endpoint = %w.endpoint, error = %err, "{}", w.lost);
        } else if !ever_connected && !lost {
            tracing::warn!(endpoint = %w.endpoint, error = %err, "{}", w.absent);
        } else {
            tracing::debug!(endpoint = %w.endpoint, error = %err, "{} still unavailable", w.what);
        }
        lost = true;
        sleep_sweeping(f, Instant::now() + backoff.next_delay()).await;
    }
}

/// One connection, until it fails; returns why.
async fn serve<F: Follow>(f: &mut F, mut session: F::Session) -> F::Error {
    let mut wake = None;
    loop {
        if let Err(e) = f.handle(&mut session, wake).await {
            return e;
        }
        sweep(f);
        let due = f.held().next_removal();
        wake = tokio::select! {
            w = f.next(&mut session) => Some(w),
            _ = sleep_until_opt(due) => None,
        };
    }
}

/// Drops the entries whose removal is due, and the source's state for them.
pub(crate) fn sweep<F: Follow>(f: &mut F) {
    for (id, state) in f.held().sweep() {
        f.forget(&id, state);
    }
}

/// Sleeps until `until`, still dropping entries on time while disconnected.
async fn sleep_sweeping<F: Follow>(f: &mut F, until: Instant) {
    loop {
        sweep(f);
        let wake = f.held().next_removal().map_or(until, |due| due.min(until));
        tokio::time::sleep_until(wake).await;
        if wake >= until {
            return;
        }
    }
}

/// A source's store and what goes with its entries. `S` is the source's own state for each
/// container id it holds (Docker's last run of the container; whether a CRI id is a sandbox).
pub(crate) struct Held<S> {
    store: MetadataStore,
    removal_delay: Duration,
    /// The ids this source put in the store, with their state: the store's keys.
    ids: HashMap<String, S>,
    /// Pending removals: id → when. Only held ids get one, so this never outgrows the store.
    removals: HashMap<String, Instant>,
    pods: HashSet<String>,
    pod_removals: HashMap<String, Instant>,
}

impl<S> Held<S> {
    pub(crate) fn new(store: MetadataStore, removal_delay: Duration) -> Held<S> {
        Held {
            store,
            removal_delay,
            ids: HashMap::new(),
            removals: HashMap::new(),
            pods: HashSet::new(),
            pod_removals: HashMap::new(),
        }
    }

    pub(crate) fn store(&self) -> &MetadataStore {
        &self.store
    }

    /// Stores `meta` under `id`; its state is `new` unless the id was held already. Returns the
    /// id's state.
    pub(crate) fn put(&mut self, id: &str, meta: ContainerMeta, new: S) -> &mut S {
        self.store.insert(id.to_owned(), meta);
        self.ids.entry(id.to_owned()).or_insert(new)
    }

    pub(crate) fn holds(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    pub(crate) fn state_mut(&mut self, id: &str) -> Option<&mut S> {
        self.ids.get_mut(id)
    }

    /// Containers held.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// `id` is alive: no removal; or it is not: dropped after the removal delay.
    pub(crate) fn set_alive(&mut self, id: &str, alive: bool) {
        if alive {
            self.removals.remove(id);
        } else {
            self.remove_later(id);
        }
    }

    /// Drops `id` after the removal delay, if it is held. Keeps an earlier deadline (a stop,
    /// then a deletion).
    pub(crate) fn remove_later(&mut self, id: &str) {
        if self.ids.contains_key(id) {
            let at = Instant::now() + self.removal_delay;
            self.removals.entry(id.to_owned()).or_insert(at);
        }
    }

    /// Drops after the removal delay every id held that `gone` says is gone (what a full list
    /// of the runtime no longer shows).
    pub(crate) fn remove_later_if(&mut self, gone: impl Fn(&str, &S) -> bool) {
        let at = Instant::now() + self.removal_delay;
        for (id, state) in &self.ids {
            if gone(id, state) {
                self.removals.entry(id.clone()).or_insert(at);
            }
        }
    }

    /// Stores the pod `meta`, alive (no removal) or not (dropped after the removal delay).
    pub(crate) fn put_pod(&mut self, meta: PodMeta, alive: bool) {
        let uid = meta.uid.clone();
        self.pods.insert(uid.clone());
        self.store.insert_pod(meta);
        if alive {
            self.pod_removals.remove(&uid);
        } else {
            let at = Instant::now() + self.removal_delay;
            self.pod_removals.entry(uid).or_insert(at);
        }
    }

    pub(crate) fn holds_pod(&self, uid: &str) -> bool {
        self.pods.contains(uid)
    }

    pub(crate) fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// The same for pods.
    pub(crate) fn remove_pods_later_if(&mut self, gone: impl Fn(&str) -> bool) {
        let at = Instant::now() + self.removal_delay;
        for uid in self.pods.iter().filter(|uid| gone(uid)) {
            self.pod_removals.entry(uid.clone()).or_insert(at);
        }
    }

    /// When the next removal is due.
    pub(crate) fn next_removal(&self) -> Option<Instant> {
        self.removals
            .values()
            .chain(self.pod_removals.values())
            .min()
            .copied()
    }

    /// Drops what is due from the store; returns the containers dropped, with their state.
    pub(crate) fn sweep(&mut self) -> Vec<(String, S)> {
        let now = Instant::now();
        let mut dropped = Vec::new();
        let (store, ids) = (&self.store, &mut self.ids);
        self.removals.retain(|id, at| {
            if *at > now {
                return true;
            }
            store.remove(id);
            if let Some(state) = ids.remove(id) {
                dropped.push((id.clone(), state));
            }
            false
        });
        let pods = &mut self.pods;
        self.pod_removals.retain(|uid, at| {
            if *at > now {
                return true;
            }
            store.remove_pod(uid);
            pods.remove(uid);
            false
        });
        dropped
    }

    /// Nothing held and nothing scheduled.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
            && self.removals.is_empty()
            && self.pods.is_empty()
            && self.pod_removals.is_empty()
    }
}

/// One source's counters. The skeleton counts connections and their failures; each source
/// counts its calls, lookups and events where it has them (its registry row says which it
/// reports).
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Failed connects, calls and event streams (including a stream the runtime closed), and
    /// failed lookups other than "no such container".
    pub api_errors: AtomicU64,
    /// True while the store is in sync with a live runtime.
    pub connected: AtomicBool,
    /// Connections made after a failure (a runtime that came back, or one that was absent
    /// when the exporter started).
    pub reconnects: AtomicU64,
    /// Every call sent to the runtime, the listing at every connect included.
    pub calls: AtomicU64,
    /// Lookups made after a connection's first listing: of ids that discovery asked for,
    /// their retries, and periodic listings.
    pub lookups: AtomicU64,
    /// Events received from the runtime.
    pub events: AtomicU64,
}

/// One of the figures of [`SourceStats`], for the self-metric that shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    ApiErrors,
    Connected,
    Reconnects,
    Calls,
    Lookups,
    Events,
}

impl SourceStats {
    /// The figure's value now (a flag reads 0 or 1).
    pub fn get(&self, f: Figure) -> u64 {
        match f {
            Figure::ApiErrors => self.api_errors.load(Relaxed),
            Figure::Connected => u64::from(self.connected.load(Relaxed)),
            Figure::Reconnects => self.reconnects.load(Relaxed),
            Figure::Calls => self.calls.load(Relaxed),
            Figure::Lookups => self.lookups.load(Relaxed),
            Figure::Events => self.events.load(Relaxed),
        }
    }

    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Relaxed)
    }
}

/// The counters of every source that is on, and of the values cut to the length bound: what
/// metadata hands to the self-metrics. Cheap to clone (`Arc`s).
#[derive(Debug, Clone, Default)]
pub struct MetadataStats {
    /// In the registry's order.
    sources: Vec<SourceCounters>,
    /// Values from the runtimes cut to `--attribute-value-length-limit` (labels left out for a
    /// longer key or past `--attribute-count-limit`).
    pub values_cut: Arc<AtomicU64>,
}

#[derive(Debug, Clone)]
struct SourceCounters {
    /// The `source` attribute's value.
    name: &'static str,
    figures: &'static [Figure],
    stats: Arc<SourceStats>,
}

impl MetadataStats {
    /// Counters for the source `name`, now on, which reports `figures` (the same counters if it
    /// was on already). Sources are added in the registry's order.
    pub fn add(&mut self, name: &'static str, figures: &'static [Figure]) -> Arc<SourceStats> {
        if let Some(c) = self.sources.iter().find(|c| c.name == name) {
            return c.stats.clone();
        }
        let stats = Arc::new(SourceStats::default());
        self.sources.push(SourceCounters {
            name,
            figures,
            stats: stats.clone(),
        });
        stats
    }

    /// The counters of the source `name`, if it is on.
    pub fn get(&self, name: &str) -> Option<&SourceStats> {
        self.sources
            .iter()
            .find(|c| c.name == name)
            .map(|c| &*c.stats)
    }

    /// `figure` of every source that is on and reports it, by the source's name.
    pub fn points(&self, figure: Figure) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.sources
            .iter()
            .filter(move |c| c.figures.contains(&figure))
            .map(move |c| (c.name, c.stats.get(figure)))
    }
}
