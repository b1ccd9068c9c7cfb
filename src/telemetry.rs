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
    /// Directories that could not be watched (out of inotify watches): rescanned every few
    /// seconds instead.
    pub unwatched_dirs: AtomicU64,
    /// Containers whose `cgroup.events` could not be watched: their exit is seen at the
    /// next tick instead of at once.
    pub unwatched_events: AtomicU64,
    /// Containers read by open-read-close because the open-file limit leaves no room to keep
    /// their files open.
    pub containers_reopened: AtomicU64,
    /// Time the last tick spent rendering the page, and encoding the OTLP request
    /// (nanoseconds).
    pub last_render_ns: AtomicU64,
    pub last_otlp_encode_ns: AtomicU64,
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

/// Where the descriptor count cannot be had from one `stat` (kernels before 6.2), counting
/// `/proc/self/fd` costs about 0.3 µs per descriptor (0.6 ms with 1,900 open), so the count is
/// taken at most this often and reused in between.
const FD_RECOUNT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// What [`ProcessStats::read`] keeps between calls: the start time (it never changes), a
/// kept-open `/proc/self/statm`, and the last descriptor count where it must be counted.
struct ProcessFiles {
    start_time_seconds: f64,
    statm: Option<std::fs::File>,
    page_size: u64,
    counted_fds: Option<(std::time::Instant, u64)>,
}

static PROCESS: std::sync::Mutex<Option<ProcessFiles>> = std::sync::Mutex::new(None);

impl ProcessStats {
    /// The process's figures, at the cost of a few syscalls: called once per tick, so it must
    /// not cost like the containers' reads. CPU from `getrusage` (all threads, µs), resident
    /// memory from a kept-open `/proc/self/statm`, open descriptors from the size the kernel
    /// reports for `/proc/self/fd` (Linux 6.2+; counted, at most every 30 s, before that).
    /// Fields that cannot be read stay zero.
    pub fn read() -> ProcessStats {
        let mut guard = PROCESS.lock().unwrap_or_else(|e| e.into_inner());
        let files = guard.get_or_insert_with(ProcessFiles::open);
        let mut s = ProcessStats {
            start_time_seconds: files.start_time_seconds,
            ..ProcessStats::default()
        };
        use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage};
        if let Ok(u) = getrusage(UsageWho::RUSAGE_SELF) {
            let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            s.cpu_seconds = secs(u.user_time()) + secs(u.system_time());
        }
        if let Some(statm) = &files.statm {
            let mut buf = [0u8; 128];
            if let Ok(n) = std::os::unix::fs::FileExt::read_at(statm, &mut buf, 0) {
                // "size resident shared text lib data dt", in pages.
                let resident = std::str::from_utf8(&buf[..n])
                    .ok()
                    .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok());
                s.resident_bytes = resident.unwrap_or(0) * files.page_size;
            }
        }
        s.open_fds = files.open_fds();
        if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) {
            s.max_fds = soft;
        }
        s
    }
}

impl ProcessFiles {
    fn open() -> ProcessFiles {
        let ticks = 100.0; // USER_HZ on every Linux architecture that matters here
        let start = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| {
                let after = stat.rsplit_once(')')?.1.to_string();
                // Fields after the command: state is [0], starttime [19] (clock ticks after boot).
                after.split_whitespace().nth(19)?.parse::<f64>().ok()
            });
        let start_time_seconds = match (boot_time(), start) {
            (Some(boot), Some(start)) => boot + start / ticks,
            _ => 0.0,
        };
        let page_size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map_or(4096, |p| p as u64);
        ProcessFiles {
            start_time_seconds,
            statm: std::fs::File::open("/proc/self/statm").ok(),
            page_size,
            counted_fds: None,
        }
    }

    fn open_fds(&mut self) -> u64 {
        // Linux 6.2+ reports the number of open descriptors as the size of /proc/self/fd
        // (0 before), which spares listing ~18 entries per container every tick.
        if let Ok(m) = std::fs::metadata("/proc/self/fd")
            && m.len() > 0
        {
            return m.len();
        }
        let now = std::time::Instant::now();
        match self.counted_fds {
            Some((at, n)) if now.duration_since(at) < FD_RECOUNT_EVERY => n,
            _ => {
                // Less the descriptor of the listing itself.
                let n = std::fs::read_dir("/proc/self/fd")
                    .map_or(0, |d| d.count().saturating_sub(1) as u64);
                self.counted_fds = Some((now, n));
                n
            }
        }
    }
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}
