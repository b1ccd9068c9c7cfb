//! The exporter's own counters (`container_exporter_*`), shared by the collector thread, the
//! HTTP server and the Docker task, and rendered with every page.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

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
    pub discovery_added: AtomicU64,
    pub discovery_removed: AtomicU64,
    pub discovery_rescans: AtomicU64,
    pub discovery_overflows: AtomicU64,
    pub final_samples: AtomicU64,
    pub watches_dirs: AtomicU64,
    pub watches_events: AtomicU64,
    pub scrapes: AtomicU64,
    /// OTLP requests the receiver accepted (fully or partially).
    pub otlp_exports_succeeded: AtomicU64,
    /// OTLP requests that failed for good (permanent error, or given up while retrying).
    pub otlp_exports_failed: AtomicU64,
    /// OTLP send attempts repeated after a retryable failure.
    pub otlp_retries: AtomicU64,
    /// OTLP requests dropped unsent: the oldest of a full queue, or pending at shutdown.
    pub otlp_dropped_requests: AtomicU64,
    /// Data points the receiver rejected in partial-success responses.
    pub otlp_rejected_points: AtomicU64,
    /// OTLP requests waiting in the queue (not counting the one being sent).
    pub otlp_queue_length: AtomicU64,
    /// The queue's bound (`--otlp-queue-size`); zero while OTLP is off.
    pub otlp_queue_capacity: AtomicU64,
    /// Set when Docker metadata is enabled.
    pub docker: OnceLock<Arc<DockerStats>>,
    /// Set when CRI metadata is enabled.
    pub cri: OnceLock<Arc<CriStats>>,
}

/// The Docker (or Podman) metadata source's counters, for the exporter's self-metrics.
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

/// The CRI (containerd, CRI-O) metadata source's counters, for the exporter's self-metrics and
/// for the tests that count what metadata costs the runtime.
#[derive(Debug, Default)]
pub struct CriStats {
    /// Failed connects, calls and event streams (including a connection the runtime closed).
    pub api_errors: AtomicU64,
    /// True while connected and in sync.
    pub connected: AtomicBool,
    /// Connections established after a failure (a runtime that came back, or one that was
    /// absent when the exporter started).
    pub reconnects: AtomicU64,
    /// List calls made after a connection's initial listing: lookups of ids that discovery
    /// asked for, their retries, and periodic resyncs where the runtime has no events.
    pub lookups: AtomicU64,
    /// Every call sent to the runtime, the initial ones included.
    pub calls: AtomicU64,
    /// Messages received on the `GetContainerEvents` stream.
    pub events: AtomicU64,
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

/// This process's resource use, for the standard `process_*` metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub start_time_seconds: f64,
}

impl ProcessStats {
    /// From `/proc/self`; fields that cannot be read stay zero.
    pub fn read() -> ProcessStats {
        let mut s = ProcessStats::default();
        let ticks = 100.0; // USER_HZ on every Linux architecture that matters here
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
            && let Some(after) = stat.rsplit_once(')').map(|(_, a)| a)
        {
            let f: Vec<&str> = after.split_whitespace().collect();
            // Fields after the command: state is [0]; utime [11], stime [12], starttime [19],
            // rss pages [21].
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            s.cpu_seconds = (num(11) + num(12)) / ticks;
            s.resident_bytes = (num(21) * 4096.0) as u64;
            if let Some(boot) = boot_time() {
                s.start_time_seconds = boot + num(19) / ticks;
            }
        }
        s.open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
        if let Ok((soft, _)) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        {
            s.max_fds = soft;
        }
        s
    }
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}
