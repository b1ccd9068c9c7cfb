//! The runtimes' word on how containers ended, carried from the metadata tasks to the
//! collector thread, which joins it to the container's final sample (`docs/exits.md`). The two
//! meet in either order, so an exit is kept by container id until a final sample takes it, and
//! the collector is woken (a byte on the socket pair that wakes it at shutdown) whenever one
//! arrives. An exit is taken only by the final sample of a cgroup created before the runtime
//! says the process finished: restart policies reuse the id, and a late word about one run
//! must never land on the next. Bounds: [`MAX_EXITS`] (the oldest go first), [`MAX_RUNS`] per
//! id, each kept at most the store's time to live (let go when it passes, whether or not the
//! store is full); [`MAX_ASKS`] ids waiting to be asked about.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use super::store::lock;
use crate::exit::RuntimeExit;

/// Exits held at most.
pub const MAX_EXITS: usize = 4096;
/// Exits held per container id at most (runs of a restarting container not yet taken).
pub const MAX_RUNS: usize = 4;
/// Containers at most waiting for a `ContainerStatus` call.
pub const MAX_ASKS: usize = 4096;
/// How long an exit waits for its final sample by default: an exit seen at a tick (when
/// `cgroup.events` could not be watched) comes up to an interval late.
pub const DEFAULT_TTL: Duration = Duration::from_secs(120);

#[derive(Debug)]
struct Entry {
    id: String,
    exit: RuntimeExit,
    at: Instant,
}

#[derive(Default, Debug)]
struct Inner {
    /// In the order they came: the oldest first.
    exits: Mutex<VecDeque<Entry>>,
    /// Id → until when its `ContainerStatus` is worth asking.
    asks: Mutex<HashMap<String, Instant>>,
    asked: tokio::sync::Notify,
    waker: OnceLock<UnixStream>,
    /// Time to live in ms (0: [`DEFAULT_TTL`]).
    ttl_ms: AtomicU64,
    /// Exits dropped unseen (too many, or too old).
    dropped: AtomicU64,
}

/// The shared store of exits (cheap to clone: one `Arc`).
#[derive(Clone, Default, Debug)]
pub struct ExitStore {
    inner: Arc<Inner>,
}

impl ExitStore {
    pub fn new() -> ExitStore {
        ExitStore::default()
    }

    /// How long an exit waits for its final sample (the daemon makes it cover an interval).
    pub fn set_ttl(&self, ttl: Duration) {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.inner.ttl_ms.store(ms, Ordering::Relaxed);
    }

    fn ttl(&self) -> Duration {
        match self.inner.ttl_ms.load(Ordering::Relaxed) {
            0 => DEFAULT_TTL,
            ms => Duration::from_millis(ms),
        }
    }

    /// The collector's end of its wake-up socket: written (one byte, never blocking) when an
    /// exit arrives.
    pub fn set_waker(&self, socket: UnixStream) {
        let _ = socket.set_nonblocking(true);
        let _ = self.inner.waker.set(socket);
    }

    fn wake(&self) {
        if let Some(s) = self.inner.waker.get() {
            // A full socket already holds a wake-up: nothing is lost by a failed write.
            let _ = (&*s).write(&[1]);
        }
    }

    /// A runtime's word on `id`'s end. Replaces what was said of the same run (a replayed
    /// event), and wakes the collector.
    pub fn record(&self, id: &str, exit: RuntimeExit) {
        if id.is_empty() {
            return;
        }
        let ttl = self.ttl();
        {
            let mut exits = lock(&self.inner.exits);
            let now = Instant::now();
            let same_run = |e: &Entry| {
                e.id == id && e.exit.finished_at.is_some() && e.exit.finished_at == exit.finished_at
            };
            let mut dropped = 0;
            if let Some(i) = exits.iter().position(same_run) {
                // A replayed event: the same run again.
                exits.remove(i);
            } else if exits.iter().filter(|e| e.id == id).count() >= MAX_RUNS {
                let oldest = exits.iter().position(|e| e.id == id);
                exits.remove(oldest.expect("held"));
                dropped = 1;
            } else if exits.len() >= MAX_EXITS {
                let before = exits.len();
                exits.retain(|e| now.duration_since(e.at) < ttl);
                if exits.len() >= MAX_EXITS {
                    exits.pop_front();
                }
                dropped = before - exits.len();
            }
            (self.inner.dropped).fetch_add(dropped as u64, Ordering::Relaxed);
            let id = id.to_owned();
            exits.push_back(Entry { id, exit, at: now });
        }
        self.wake();
    }

    /// Takes what was said about the run of `id` whose cgroup was created at `created`: the
    /// earliest exit not older than that cgroup (an exit without a time matches any).
    pub fn take(&self, id: &str, created: SystemTime) -> Option<RuntimeExit> {
        self.take_run(id, created, None)
    }

    /// [`take`](Self::take), for a run known to have ended before `next` (when a newer run of
    /// `id` began): an exit that finished at or after `next` is not this run's.
    pub fn take_run(
        &self,
        id: &str,
        created: SystemTime,
        next: Option<SystemTime>,
    ) -> Option<RuntimeExit> {
        let mut exits = lock(&self.inner.exits);
        self.prune(&mut exits);
        let of_run = |f: SystemTime| f >= created && next.is_none_or(|n| f < n);
        let pick = (exits.iter().enumerate())
            .filter(|(_, e)| e.id == id && e.exit.finished_at.is_none_or(of_run))
            .min_by_key(|(_, e)| e.exit.finished_at)
            .map(|(i, _)| i);
        pick.and_then(|i| exits.remove(i)).map(|e| e.exit)
    }

    /// Lets go of the exits held longer than the time to live (counted as dropped).
    fn prune(&self, exits: &mut VecDeque<Entry>) {
        let (ttl, now) = (self.ttl(), Instant::now());
        // In the order they came: the expired ones are at the front.
        let expired = exits
            .iter()
            .take_while(|e| now.duration_since(e.at) >= ttl)
            .count();
        exits.drain(..expired);
        (self.inner.dropped).fetch_add(expired as u64, Ordering::Relaxed);
    }

    /// Whether something was said about `id` (for a source deciding whether to ask).
    pub fn has(&self, id: &str) -> bool {
        lock(&self.inner.exits).iter().any(|e| e.id == id)
    }

    /// Exits held, once those held past the time to live are let go: what waits for a final
    /// sample.
    pub fn len(&self) -> usize {
        let mut exits = lock(&self.inner.exits);
        self.prune(&mut exits);
        exits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Exits dropped before a final sample took them (too many held, or held too long).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// For the collector: asks the CRI source for `id`'s status (its cgroup just emptied),
    /// worth asking until `until`.
    pub fn ask(&self, id: &str, until: Instant) {
        let mut asks = lock(&self.inner.asks);
        if asks.len() >= MAX_ASKS {
            let now = Instant::now();
            asks.retain(|_, u| *u > now);
        }
        if asks.len() < MAX_ASKS {
            asks.insert(id.to_owned(), until);
            self.inner.asked.notify_one();
        }
    }

    /// For the CRI source: what was asked since the last call, still worth asking.
    pub fn take_asks(&self) -> Vec<(String, Instant)> {
        let mut asks = lock(&self.inner.asks);
        let now = Instant::now();
        asks.drain().filter(|(_, until)| *until > now).collect()
    }

    /// For the CRI source: resolves when something is asked (at once if something was asked
    /// before the call).
    pub async fn asked(&self) {
        self.inner.asked.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    fn exit(code: u8, finished: u64) -> RuntimeExit {
        RuntimeExit {
            code: Some(code),
            finished_at: Some(at(finished)),
            ..RuntimeExit::default()
        }
    }

    #[test]
    fn an_exit_waits_for_its_run_and_never_lands_on_the_next() {
        let s = ExitStore::new();
        // Run 0's cgroup was created at 0 and ended at 5; run 1's was created at 6.
        s.record("a", exit(4, 5));
        assert_eq!(s.take("a", at(6)), None, "run 0's exit is not run 1's");
        assert_eq!(s.take("a", at(0)).unwrap().code, Some(4));
        assert!(s.is_empty());
        // Two runs' exits held at once go to their own runs, earliest first.
        s.record("a", exit(4, 9));
        s.record("a", exit(5, 5));
        assert_eq!(s.len(), 2);
        assert_eq!(s.take("a", at(0)).unwrap().code, Some(5));
        assert_eq!(s.take("a", at(6)).unwrap().code, Some(4));
        assert_eq!(s.take("a", at(0)), None);
        // A replayed event replaces its first copy.
        s.record("b", exit(1, 3));
        s.record("b", exit(1, 3));
        assert_eq!(s.len(), 1);
        // An exit without a time matches any run.
        s.record("c", RuntimeExit::default().with_code(Some(2)));
        assert_eq!(s.take("c", at(100)).unwrap().code, Some(2));
    }

    #[test]
    fn bounded_by_count_runs_and_age() {
        let s = ExitStore::new();
        for i in 0..MAX_EXITS + 500 {
            s.record(&format!("never-seen-{i}"), exit(1, i as u64));
        }
        assert_eq!(s.len(), MAX_EXITS);
        assert_eq!(s.dropped(), 500);
        // The newest stay.
        assert!(s.has(&format!("never-seen-{}", MAX_EXITS + 499)));
        assert!(!s.has("never-seen-0"));
        for i in 0..10 {
            s.record("restarting", exit(1, 10_000 + i));
        }
        assert!(s.len() <= MAX_EXITS);
        let mut runs = 0;
        while s.take("restarting", at(0)).is_some() {
            runs += 1;
        }
        assert_eq!(runs, MAX_RUNS);

        let s = ExitStore::new();
        s.set_ttl(Duration::from_millis(1));
        s.record("old", exit(1, 1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(s.take("old", at(0)), None);
        assert!(s.is_empty());
        assert_eq!(s.dropped(), 1);
        // Exits no final sample ever asks for leave too: what is held is what waits.
        for i in 0..10 {
            s.record(&format!("never-{i}"), exit(1, i));
        }
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(s.len(), 0);
        assert_eq!(s.dropped(), 11);
    }

    #[test]
    fn a_run_known_to_have_ended_takes_no_later_word() {
        let s = ExitStore::new();
        // Run 0 (created at 0) has no word yet; run 1 began at 6 and ended at 9.
        s.record("a", exit(137, 9));
        assert_eq!(s.take_run("a", at(0), Some(at(6))), None);
        assert_eq!(s.take_run("a", at(6), None).unwrap().code, Some(137));
        s.record("a", exit(3, 5));
        assert_eq!(s.take_run("a", at(0), Some(at(6))).unwrap().code, Some(3));
    }

    #[test]
    fn an_exit_wakes_the_collector() {
        let s = ExitStore::new();
        let (tx, rx) = UnixStream::pair().unwrap();
        s.set_waker(tx);
        s.record("a", exit(0, 1));
        rx.set_nonblocking(true).unwrap();
        let mut b = [0u8; 8];
        assert_eq!(std::io::Read::read(&mut &rx, &mut b).unwrap(), 1);
    }

    #[test]
    fn asks_are_bounded_and_expire() {
        let s = ExitStore::new();
        let later = Instant::now() + Duration::from_secs(5);
        for i in 0..MAX_ASKS + 10 {
            s.ask(&format!("c{i}"), later);
        }
        s.ask("gone", Instant::now());
        let asks = s.take_asks();
        assert_eq!(asks.len(), MAX_ASKS);
        assert!(s.take_asks().is_empty());
    }
}
