//! The collector's asks for how containers ended, served by the CRI's `ContainerStatus`
//! ([`Client::exit`]): when a container's cgroup empties, the collector asks
//! ([`ExitStore::ask`]) and one lookup says its exit, asked again a few times within the
//! collector's bound while the runtime has not noticed the exit yet, in tasks of their own, at
//! most [`LOOKUPS_AT_ONCE`] at once, each within the bound. Where the runtime's events say it
//! first, the lookup waits for them a moment ([`EVENT_GRACE`]) and is not made. A lookup that
//! fails leaves the kernel's verdict and no code.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::client::{AbortOnDrop, Client, LookupFailure};
use crate::exit::RuntimeExit;
use crate::metadata::exits::ExitStore;
use crate::metadata::source::SourceStats;

/// Lookups in flight at most (the rest wait their turn, within their bound).
pub const LOOKUPS_AT_ONCE: usize = 8;
/// Asked again after this (doubling, up to `RETRY_MAX`) while the runtime still says the
/// container runs: it learns of the exit a moment after the kernel.
const RETRY_MIN: Duration = Duration::from_millis(25);
const RETRY_MAX: Duration = Duration::from_millis(400);
/// With events, the stop event is waited for this long before a lookup is made.
pub const EVENT_GRACE: Duration = Duration::from_millis(500);

/// Serves the collector's asks for as long as the returned guard lives (a session): a task per
/// container (the asks themselves are bounded by the store). Each task ends by its container's
/// bound at the latest, and outlives the session it began in: a lookup that fails because the
/// connection went says so at once. `events_on`: the runtime's events say exits (then a lookup
/// waits for them a moment first).
pub(crate) fn serve(
    client: Client,
    exits: ExitStore,
    stats: Arc<SourceStats>,
    events_on: Arc<AtomicBool>,
) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(LOOKUPS_AT_ONCE));
        loop {
            exits.asked().await;
            for (id, until) in exits.take_asks() {
                tokio::spawn(exit_of(
                    client.clone(),
                    exits.clone(),
                    stats.clone(),
                    permits.clone(),
                    id,
                    Instant::from_std(until),
                    events_on.load(Relaxed),
                ));
            }
        }
    }))
}

/// Asks the runtime how the container `id` ended, until `until` (the collector's bound): once
/// the runtime has seen the exit, asked again shortly while it still says the container runs.
/// A lookup that fails says "no code" at once (the kernel's verdict goes out without waiting);
/// one that runs out of time says nothing, and the bound passes.
async fn exit_of(
    client: Client,
    exits: ExitStore,
    stats: Arc<SourceStats>,
    permits: Arc<Semaphore>,
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
    let mut retry = RETRY_MIN;
    loop {
        let Ok(Ok(permit)) = tokio::time::timeout_at(until, permits.acquire()).await else {
            return;
        };
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let asked = Instant::now();
        match client.exit(&id, left).await {
            Ok(Some(exit)) => {
                exits.record(&id, exit);
                return;
            }
            Ok(None) => {}
            Err(failure) => {
                SourceStats::count(&stats.api_errors);
                match failure {
                    LookupFailure::Failed(e) if asked.elapsed() < left => {
                        tracing::debug!(%id, error = %e, "exit lookup failed: the kernel's verdict alone");
                        exits.record(&id, RuntimeExit::default());
                    }
                    // Out of time: the bound has come; the final sample goes out without the
                    // runtime's word.
                    _ => tracing::debug!(%id, "exit lookup: no answer within the bound"),
                }
                return;
            }
        }
        drop(permit);
        let next = (Instant::now() + retry).min(until);
        tokio::time::sleep_until(next).await;
        if next >= until {
            return;
        }
        retry = (retry * 2).min(RETRY_MAX);
    }
}
