//! Who is walked when, within what budget: the cadence of each container and pod, the queue
//! of due jobs and paused walks, and the pacing that keeps the thread within its CPU share
//! (the rules, their reasons and their figures: `docs/disk.md`, "When, and at what cost").
//!
//! A container or pod is due once [`DiskConfig::interval`] has passed and its CPU time moved
//! since its last walk began (a sixth of that when its last walk was cheap, [`CHEAP_ENTRIES`],
//! and the thread has spare over [`SPARE_WINDOW`]), and always after
//! [`DiskConfig::idle_interval`]. Work goes in slices of [`SLICE_ENTRIES`] or [`SLICE_TIME`],
//! paced by [`Pacer`], round robin between new jobs and the at most [`MAX_IN_PROGRESS`] paused
//! walks.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::exchange::DiskConfig;
use super::jobs::{Job, Key};
use super::walk::Usage;

/// Entries a slice looks at, at most.
pub const SLICE_ENTRIES: u64 = 4096;
/// Time a slice may take, at most (checked every few dozen entries).
pub const SLICE_TIME: Duration = Duration::from_millis(5);
/// A walk that counted at most this many entries (about a millisecond of work) makes its
/// container "cheap": walked again at [`DiskConfig::fast_interval`] while the thread has spare.
pub const CHEAP_ENTRIES: u64 = 512;
/// The window over which the thread's CPU time says whether it has spare for the faster
/// cadence.
pub const SPARE_WINDOW: Duration = Duration::from_secs(30);
/// Walks paused at once, at most.
pub const MAX_IN_PROGRESS: usize = 2;
/// Descriptors kept back for the disk thread from the collector's budget: the host root, and
/// the paused and current walks' open directories (one per level). A pathological tree can
/// take more, up to `(MAX_IN_PROGRESS + 1) × (walk::MAX_DEPTH + 1)`: a walk that meets
/// `EMFILE` is tried again later, and the collector reads by open-read-close: nothing is lost.
pub const FD_RESERVE: usize = 64;

/// When a container or pod was last walked, and since when it waits for its next walk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Walked {
    /// When the last finished walk began, and the CPU time then.
    pub at: Option<Instant>,
    pub cpu: Option<u64>,
    /// When it became due (for the lag figure), while queued or walked.
    pub due_since: Option<Instant>,
}

/// When each container or pod is due, from its last walk and its CPU time.
pub struct Cadence {
    interval: Duration,
    fast_interval: Duration,
    idle_interval: Duration,
    cpu_budget: f64,
    /// The disk thread used at most a tenth of its budget over the last window: cheap
    /// containers are walked at the faster cadence.
    pub(super) spare: bool,
    /// The current window: when it began, and the thread's CPU time then.
    pub(super) window: Option<(Instant, u64)>,
}

impl Cadence {
    pub fn new(cfg: &DiskConfig) -> Cadence {
        Cadence {
            interval: cfg.interval,
            fast_interval: cfg.fast_interval(),
            idle_interval: cfg.idle_interval,
            cpu_budget: cfg.cpu_budget,
            spare: false,
            window: None,
        }
    }

    /// Whether the thread has spare for the faster cadence: its CPU time (`cpu_ns` so far)
    /// over the last [`SPARE_WINDOW`] (its first window: none, the first pass walks
    /// everything).
    pub fn refresh_spare(&mut self, cpu_ns: u64, now: Instant) {
        match self.window {
            None => self.window = Some((now, cpu_ns)),
            Some((since, at)) => {
                let span = now.saturating_duration_since(since);
                if span >= SPARE_WINDOW {
                    let share = cpu_ns.saturating_sub(at) as f64 / span.as_nanos() as f64;
                    self.spare = share <= self.cpu_budget / 10.0;
                    self.window = Some((now, cpu_ns));
                }
            }
        }
    }

    /// When something last walked as `walked` says, whose CPU time is `cpu_now` and whose last
    /// walks counted `last`, is due: its last walk's start and the wait after it (`None`: never
    /// walked, due at once). Whose CPU did not move waits the idle interval (it may move any
    /// time: the thread looks again with the next roster).
    pub fn wait(
        &self,
        walked: &Walked,
        cpu_now: Option<u64>,
        last: Option<Usage>,
    ) -> Option<(Instant, Duration)> {
        let moved = !matches!((walked.cpu, cpu_now), (Some(a), Some(b)) if a == b);
        let wait = match last {
            _ if !moved => self.idle_interval,
            // Its CPU moved: the interval, or the faster one when its last walk was cheap and
            // the thread has spare.
            Some(u) if self.spare && u.inodes <= CHEAP_ENTRIES => self.fast_interval,
            _ => self.interval,
        };
        Some((walked.at?, wait.min(self.idle_interval)))
    }
}

/// The jobs due, in order, and the walks paused mid-way.
#[derive(Default)]
pub struct Queue {
    due: VecDeque<Key>,
    queued: HashSet<Key>,
    paused: VecDeque<Job>,
    /// Jobs whose walk did not fit in one slice, until it finishes.
    large: HashSet<Key>,
    /// Alternates between paused walks and new jobs.
    turn: bool,
}

/// Whose turn a slice is. Lives for one slice and is never stored: its size is no matter.
#[allow(clippy::large_enum_variant)]
pub enum Turn {
    /// A due job, to start.
    New(Key),
    /// A paused walk, to go on with.
    Paused(Job),
}

impl Queue {
    /// Queues `key` unless it is queued or being walked already; returns whether it was.
    pub fn push(&mut self, key: Key) -> bool {
        if self.queued.contains(&key) || self.paused.iter().any(|j| j.key == key) {
            return false;
        }
        self.queued.insert(key.clone());
        self.due.push_back(key);
        true
    }

    /// Forgets `key`: out of the queue, its walk in progress dropped.
    pub fn forget(&mut self, key: &Key) {
        if self.queued.remove(key) {
            self.due.retain(|k| k != key);
        }
        self.paused.retain(|j| &j.key != key);
        self.large.remove(key);
    }

    /// Nothing queued and nothing paused.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty() && self.paused.is_empty()
    }

    /// Walks paused now.
    pub fn paused(&self) -> usize {
        self.paused.len()
    }

    /// The next slice's work: a new job and a paused walk in turn. A large job (one whose walk
    /// did not fit in a slice) waits while the paused walks fill every place.
    pub fn take_turn(&mut self) -> Option<Turn> {
        self.turn = !self.turn;
        let room = self.paused.len() < MAX_IN_PROGRESS;
        if self.turn || self.paused.is_empty() {
            let pos = self
                .due
                .iter()
                .position(|k| room || !self.large.contains(k));
            if let Some(key) = pos.and_then(|p| self.due.remove(p)) {
                self.queued.remove(&key);
                return Some(Turn::New(key));
            }
        }
        self.paused.pop_front().map(Turn::Paused)
    }

    /// Keeps a new job's walk that did not finish its first slice, marked large; with no place
    /// for it, drops the walk (and its descriptors) and queues the job again, to wait for one.
    pub fn pause_new(&mut self, job: Job) {
        self.large.insert(job.key.clone());
        if self.paused.len() < MAX_IN_PROGRESS {
            self.paused.push_back(job);
        } else {
            self.push(job.key.clone());
        }
    }

    /// Keeps a paused walk that did not finish this slice either, behind the others.
    pub fn pause_again(&mut self, job: Job) {
        self.paused.push_back(job);
    }

    /// `key`'s walk finished: it is no longer large.
    pub fn finished(&mut self, key: &Key) {
        self.large.remove(key);
    }
}

/// Keeps the thread's CPU time within its share of one CPU: once the slices since the last
/// pause used a slice's worth, a pause that makes them the budget's share of the time they
/// cover (so a run of small walks pays one sleep, not one each).
pub struct Pacer {
    budget: f64,
    debt: u64,
}

impl Pacer {
    pub fn new(cpu_budget: f64) -> Pacer {
        Pacer {
            budget: cpu_budget.clamp(0.001, 1.0),
            debt: 0,
        }
    }

    /// How long to sleep after a slice that used `cpu_ns` of CPU time.
    pub fn after_slice(&mut self, cpu_ns: u64) -> Duration {
        self.debt += cpu_ns;
        if self.debt < SLICE_TIME.as_nanos() as u64 {
            return Duration::ZERO;
        }
        let wait = Duration::from_nanos((self.debt as f64 * (1.0 / self.budget - 1.0)) as u64);
        self.debt = 0;
        wait
    }

    /// Nothing was done: the debt is paid by the idle wait.
    pub fn idle(&mut self) {
        self.debt = 0;
    }
}
