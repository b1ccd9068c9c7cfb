//! What the metadata sources count about themselves ([`SourceStats`]), handed to the
//! self-metrics as [`MetadataStats`]: one row per [`Figure`], labelled by source.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

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
