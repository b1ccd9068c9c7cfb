//! The disk thread and its handle ([`Disk`]): the collector hands it the roster at each tick
//! and reads its latest figures, never waiting for a walk; [`measure_once`] does the same
//! work at once, for the commands.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::exchange::{DiskConfig, DiskStats, Results, RosterItem, SampleMap};
use super::monitor::Monitor;
use super::schedule::Pacer;

/// What the collector's side and the thread share.
struct Shared {
    roster: Mutex<Option<Vec<RosterItem>>>,
    wake: Condvar,
    results: Arc<RwLock<SampleMap>>,
    stop: AtomicBool,
}

/// The disk thread, from the collector's side: hand it the roster, read its results.
#[derive(Clone)]
pub struct Disk {
    shared: Arc<Shared>,
}

impl Disk {
    /// Starts the disk thread.
    pub fn start(cfg: DiskConfig, stats: Arc<DiskStats>) -> io::Result<Disk> {
        let shared = Arc::new(Shared {
            roster: Mutex::new(None),
            wake: Condvar::new(),
            results: Arc::new(RwLock::new(SampleMap::new())),
            stop: AtomicBool::new(false),
        });
        let mut m = Monitor::new(cfg, stats, Results::Shared(shared.results.clone()));
        let s = shared.clone();
        std::thread::Builder::new()
            .name("ce-disk".into())
            .spawn(move || run(&mut m, &s))?;
        Ok(Disk { shared })
    }

    /// The containers and pods to measure from now on (the latest roster replaces the one
    /// before, never queues behind it).
    pub fn submit(&self, roster: Vec<RosterItem>) {
        *self.shared.roster.lock().unwrap_or_else(|e| e.into_inner()) = Some(roster);
        self.shared.wake.notify_one();
    }

    /// Looks up results under one read lock (the disk thread only ever holds the write lock
    /// for one insert or removal).
    pub fn with_results<R>(&self, f: impl FnOnce(&SampleMap) -> R) -> R {
        let map = self
            .shared
            .results
            .read()
            .unwrap_or_else(|e| e.into_inner());
        f(&map)
    }

    /// Stops the thread (it ends within one slice).
    pub fn stop(&self) {
        self.shared.stop.store(true, Relaxed);
        self.shared.wake.notify_one();
    }
}

/// Measures every container and pod of `roster` once, walking each to the end, without a
/// budget (for `snapshot` and `check`).
pub fn measure_once(cfg: DiskConfig, roster: Vec<RosterItem>, stats: Arc<DiskStats>) -> SampleMap {
    let mut m = Monitor::new(cfg, stats, Results::Local(SampleMap::new()));
    m.apply(roster);
    m.measure_all()
}

fn thread_cpu_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// The thread's loop: the latest roster, the due jobs (looked for at most every second, or
/// when there is nothing to do), a slice, and the pause the budget asks for; with nothing to
/// do, a wait until the next job is due or a roster arrives.
fn run(m: &mut Monitor, shared: &Shared) {
    let mut pacer = Pacer::new(m.cpu_budget());
    let mut counted = thread_cpu_ns();
    let mut last_scan: Option<Instant> = None;
    while !shared.stop.load(Relaxed) {
        // Every CPU nanosecond of the thread is counted (roster, queue, walks); the budget
        // paces by the slices'.
        let now_cpu = thread_cpu_ns();
        m.stats()
            .cpu_ns
            .fetch_add(now_cpu.saturating_sub(counted), Relaxed);
        counted = now_cpu;
        let roster = shared
            .roster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(r) = roster {
            m.apply(r);
        }
        let now = Instant::now();
        if last_scan.is_none_or(|t| now >= t + Duration::from_secs(1)) || m.is_idle() {
            m.enqueue_due(now);
            last_scan = Some(now);
        }
        let before = thread_cpu_ns();
        let worked = m.slice();
        let wait = if worked {
            pacer.after_slice(thread_cpu_ns().saturating_sub(before))
        } else {
            pacer.idle();
            m.next_due(now)
                .map_or(Duration::from_secs(60), |d| {
                    d.saturating_duration_since(now)
                })
                .max(Duration::from_millis(10))
        };
        let guard = shared.roster.lock().unwrap_or_else(|e| e.into_inner());
        if worked {
            // A new roster does not cut a budget sleep short (it is read after it).
            drop(guard);
            if !wait.is_zero() && !shared.stop.load(Relaxed) {
                std::thread::sleep(wait.min(Duration::from_secs(5)));
            }
        } else if guard.is_none() && !shared.stop.load(Relaxed) {
            let _ = shared.wake.wait_timeout(guard, wait);
        }
    }
}
