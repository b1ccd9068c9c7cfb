//! The loop every source runs: connect (and list everything), follow the runtime until the
//! connection fails, then back off and start again, for as long as the exporter runs; due
//! removals are swept throughout, connected or not. A source supplies the runtime's side
//! ([`Follow`]); the counting and the log lines of connections are the same for every source.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::Instant;

use super::held::Held;
use crate::metadata::stats::SourceStats;
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

    fn held(&self) -> &Held<Self::State>;
    fn held_mut(&mut self) -> &mut Held<Self::State>;

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
    let mut ever_connected = false;
    // A connection failed since the last good one (for `reconnects` and the log's levels).
    let mut lost = false;
    loop {
        let err = session(f, stats, &mut backoff, &mut ever_connected, &mut lost).await;
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
async fn session<F: Follow>(
    f: &mut F,
    stats: &SourceStats,
    backoff: &mut Backoff,
    ever_connected: &mut bool,
    lost: &mut bool,
) -> F::Error {
    let mut session = match f.connect().await {
        Ok(s) => s,
        Err(e) => return e,
    };
    stats.connected.store(true, Relaxed);
    let (endpoint, containers, pods) = (&f.words().endpoint, f.held().len(), f.held().pod_count());
    if *lost {
        SourceStats::count(&stats.reconnects);
        tracing::info!(%endpoint, containers, pods, "{} reachable again", f.words().what);
        *lost = false;
    } else if !*ever_connected {
        tracing::info!(%endpoint, containers, pods, "{}", f.words().following);
    }
    *ever_connected = true;
    backoff.reset();
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
    for (id, state) in f.held_mut().sweep() {
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
