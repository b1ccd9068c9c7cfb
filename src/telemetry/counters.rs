//! The exporter's own counters, shared by the collector thread, the HTTP server and the OTLP
//! task; the lower layers own theirs (the metadata sources, the disk thread) and hand their
//! handles here.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use crate::disk::DiskStats;
use crate::metadata::MetadataStats;

/// What each counter means: its row in [`super::SELF_METRICS`]; the docs here add only what
/// the row does not say.
#[derive(Debug, Default)]
pub struct Telemetry {
    pub collections: AtomicU64,
    /// Duration of the last collection tick (read + render), in nanoseconds.
    pub last_collection_ns: AtomicU64,
    pub containers_tracked: AtomicU64,
    pub read_errors_io: AtomicU64,
    pub read_errors_malformed: AtomicU64,
    pub read_errors_truncated: AtomicU64,
    pub read_errors_open: AtomicU64,
    pub dropped_devices: AtomicU64,
    pub dropped_interfaces: AtomicU64,
    pub discovery_added: AtomicU64,
    pub discovery_removed: AtomicU64,
    pub discovery_rescans: AtomicU64,
    pub discovery_overflows: AtomicU64,
    pub final_samples: AtomicU64,
    pub watches_dirs: AtomicU64,
    pub watches_events: AtomicU64,
    /// Directories that could not be watched (out of inotify watches): rescanned every few
    /// seconds instead.
    pub unwatched_dirs: AtomicU64,
    /// Containers whose `cgroup.events` could not be watched: their exit is seen at the
    /// next tick instead of at once.
    pub unwatched_events: AtomicU64,
    pub containers_reopened: AtomicU64,
    /// Containers that keep every cgroup file open, and those that keep only the files read
    /// every tick (descriptors are short); the rest are `containers_reopened`.
    pub containers_files_all: AtomicU64,
    pub containers_files_per_tick: AtomicU64,
    /// Time the last tick spent rendering the page, and encoding the OTLP request
    /// (nanoseconds).
    pub last_render_ns: AtomicU64,
    pub last_otlp_encode_ns: AtomicU64,
    pub scrapes: AtomicU64,
    pub otlp_exports_succeeded: AtomicU64,
    pub otlp_exports_failed: AtomicU64,
    pub otlp_retries: AtomicU64,
    pub otlp_dropped_requests: AtomicU64,
    pub otlp_rejected_points: AtomicU64,
    /// Ticks with OTLP requests waiting in the queue (not counting the request being sent).
    pub otlp_queue_length: AtomicU64,
    /// The queue's bound in ticks (`--otlp-queue-size`); zero while OTLP is off.
    pub otlp_queue_capacity: AtomicU64,
    /// The metadata sources' counters, set once they are started.
    pub metadata: OnceLock<MetadataStats>,
    /// Set when disk usage is on.
    pub disk: OnceLock<Arc<DiskStats>>,
    /// Containers that ended, by how their exit was known (see `departures::ExitCounts`).
    pub exits_code: AtomicU64,
    pub exits_no_code: AtomicU64,
    pub exits_timeout: AtomicU64,
    pub exits_unasked: AtomicU64,
    /// Of the timeouts, those whose runtime's word came later (see `departures::LATE_WINDOW`).
    pub exits_late: AtomicU64,
    /// Runtimes' exits held for a final sample, and final samples waiting for an exit.
    pub exits_held: AtomicU64,
    pub exits_waiting: AtomicU64,
}

/// Reads a counter.
pub fn get(a: &AtomicU64) -> u64 {
    a.load(Relaxed)
}

pub fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Relaxed);
}

pub fn set(a: &AtomicU64, n: u64) {
    a.store(n, Relaxed);
}
