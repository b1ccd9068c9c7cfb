//! The end of a container's life: its final sample (taken the moment its last process leaves,
//! see [`crate::collect`]) waits for the runtime's word on why it ended ([`ExitStore`], at most
//! `--exit-wait`), is published with it, between ticks if need be, and stays on the outputs
//! until delivered (a page holding it served, an OTLP request sent) or `--exited-retention`
//! passed. The rules and their timing (batches, runs of a restarted id, late words):
//! `docs/exits.md`; their bounds are the constants below.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use crate::collect::{ContainerState, Show};
use crate::discovery::Kind;
use crate::exit::{self, Exit, ExitReason, RuntimeExit};
use crate::metadata::exits::ExitStore;

/// How long a runtime's names of a stopped container are kept: the final sample is taken up to
/// an interval after the exit, waits for the runtime's word up to `exit_wait`, then for a scrape
/// for `exited_retention`, or for a late word for [`LATE_WINDOW`].
pub fn runtime_removal_delay(
    exited_retention: Duration,
    interval: Duration,
    exit_wait: Duration,
) -> Duration {
    exited_retention.max(LATE_WINDOW) + interval * 2 + exit_wait
}

/// The default bound on the wait for a runtime's word (`--exit-wait`).
pub const DEFAULT_EXIT_WAIT: Duration = Duration::from_secs(3);

/// How long a publication waits for more exits arriving at the same time.
pub const BATCH: Duration = Duration::from_millis(25);

/// Publications between ticks come at most this often (each renders the whole page), unless
/// a departure's bound is due.
pub const PUBLISH_GAP: Duration = Duration::from_secs(1);

/// Runs of one container id kept at most (a container restarting in a loop).
pub const MAX_RUNS: usize = 8;

/// How long after its final sample a departure that went out without its runtime's word still
/// takes it (and publishes its exit series then). The runtimes' words come seconds late when
/// many containers end at once (Docker's `die` events up to 10 s after 200 exits).
pub const LATE_WINDOW: Duration = Duration::from_secs(120);

/// Delivered final samples kept at most to listen for a late word (the oldest stop first).
pub const MAX_LISTENING: usize = 4096;

/// Container ids whose runs are counted at most; an id is forgotten [`LATE_WINDOW`] after it
/// was last running or departed.
pub const MAX_COUNTED_IDS: usize = 16_384;

/// How a departure got its exit, for the exporter's own telemetry.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExitCounts {
    /// With the runtime's exit status.
    pub code: u64,
    /// The runtime's word came without a usable status (outside 0–255, a failed call).
    pub no_code: u64,
    /// The runtime said nothing within the bound.
    pub timeout: u64,
    /// No runtime to ask (not configured, or not connected): the kernel's verdict alone.
    pub unasked: u64,
    /// Of `timeout`: the runtime's word came later, within [`LATE_WINDOW`], and the exit
    /// series was published then.
    pub late: u64,
}

/// A container that departed, waiting to be delivered.
struct Departure {
    state: ContainerState,
    /// When its final sample was taken.
    at: Instant,
    /// The first page generation (tick or publication) it was rendered in.
    rendered_in: Option<u64>,
    /// Waiting for its runtime's word until then; `None` once it has its exit (or none to
    /// wait for).
    waiting: Option<Instant>,
    /// When it stopped waiting.
    ready_at: Instant,
    /// The kernel's OOM verdict, from the final sample.
    kernel: Option<bool>,
    /// Which run of its id it is (the exporter's count).
    run: u32,
    /// Went out without its runtime's word: takes it until then.
    listening: Option<Instant>,
    /// Delivered while listening: kept, not shown.
    delivered: bool,
    /// Its runtime's word came after its final sample was delivered: its exit series alone.
    exit_only: bool,
    /// Its word came late: published batched, not at once.
    late: bool,
    /// A newer run of its id had begun by then: a word of a process that finished later is
    /// not this run's.
    next: Option<SystemTime>,
}

impl Departure {
    fn ready(&self) -> bool {
        self.waiting.is_none()
    }

    /// Ready and not yet delivered (a delivered one waits only for a late word).
    fn shown(&self) -> bool {
        self.ready() && !self.delivered
    }
}

/// The runs of one container id the exporter saw end.
struct Runs {
    count: u32,
    /// The cgroup of the last run counted.
    created: SystemTime,
    /// When it was last running, or departed.
    seen: Instant,
}

/// The departed containers still shown on the outputs, and those waiting to be.
pub struct Departures {
    list: Vec<Departure>,
    retention: Duration,
    /// The Prometheus page is served (else a tick's collection counts as delivery).
    serving: bool,
    /// OTLP is on: every final sample goes out in at least one request.
    otlp: bool,
    /// The bound on the wait for a runtime's word.
    wait: Duration,
    /// The last publication (tick or between ticks).
    published_at: Option<Instant>,
    counts: ExitCounts,
    /// The exporter's count of runs, per container id.
    runs: HashMap<String, Runs>,
}

impl Departures {
    pub fn new(retention: Duration, serving: bool, otlp: bool, wait: Duration) -> Departures {
        Departures {
            list: Vec::new(),
            retention,
            serving,
            otlp,
            wait,
            published_at: None,
            counts: ExitCounts::default(),
            runs: HashMap::new(),
        }
    }

    /// A final sample. `ask`: its runtime can be asked why it ended (a container, with a
    /// runtime connected), so it waits for the runtime's word in `exits` up to the bound. A
    /// container departs once per cgroup: the same run departing again (it had processes once
    /// more) replaces its first final sample.
    /// Returns whether it waits (for the caller to ask a runtime that must be asked).
    pub fn add(
        &mut self,
        state: ContainerState,
        ask: bool,
        exits: &ExitStore,
        now: Instant,
    ) -> bool {
        self.list
            .retain(|d| !(d.state.id == state.id && d.state.created == state.created));
        let runs = self.list.iter().filter(|d| d.state.id == state.id).count();
        if runs >= MAX_RUNS
            && let Some(oldest) = self
                .list
                .iter()
                .enumerate()
                .filter(|(_, d)| d.state.id == state.id)
                .min_by_key(|(_, d)| d.state.created)
                .map(|(i, _)| i)
        {
            self.list.remove(oldest);
        }
        // Earlier runs listening for a late word: theirs finished before this run began.
        for d in self.list.iter_mut() {
            if d.state.id == state.id && d.state.created < state.created {
                d.next = Some(d.next.map_or(state.created, |n| n.min(state.created)));
            }
        }
        let kernel = exit::kernel_oom(state.sample());
        let run = self.count_run(&state.id, state.created, now);
        let mut d = Departure {
            state,
            at: now,
            rendered_in: None,
            waiting: None,
            ready_at: now,
            kernel,
            run,
            listening: None,
            delivered: false,
            exit_only: false,
            late: false,
            next: None,
        };
        if d.state.kind == Kind::Container {
            match exits.take(&d.state.id, d.state.created) {
                Some(r) => self.settle(&mut d, Some(r), now),
                None if ask && !self.wait.is_zero() => d.waiting = Some(now + self.wait),
                None if ask => {
                    self.counts.timeout += 1;
                    self.settle(&mut d, None, now);
                    d.listening = Some(d.at + LATE_WINDOW);
                }
                None => {
                    self.counts.unasked += 1;
                    self.settle(&mut d, None, now);
                }
            }
        }
        let waits = d.waiting.is_some();
        self.list.push(d);
        waits
    }

    /// Which run of `id` the one whose cgroup was created at `created` is: one more than the
    /// last counted, unless it is that one departing again.
    fn count_run(&mut self, id: &str, created: SystemTime, now: Instant) -> u32 {
        if let Some(r) = self.runs.get_mut(id) {
            if r.created != created {
                r.count = r.count.saturating_add(1);
                r.created = created;
            }
            r.seen = now;
            return r.count;
        }
        if self.runs.len() >= MAX_COUNTED_IDS {
            self.forget_runs(now);
        }
        if self.runs.len() >= MAX_COUNTED_IDS
            && let Some(oldest) = (self.runs.iter())
                .min_by_key(|(_, r)| r.seen)
                .map(|(id, _)| id.clone())
        {
            self.runs.remove(&oldest);
        }
        let (count, seen) = (1, now);
        let runs = Runs {
            count,
            created,
            seen,
        };
        self.runs.insert(id.to_owned(), runs);
        count
    }

    /// Forgets the runs of ids neither running nor departed for [`LATE_WINDOW`].
    fn forget_runs(&mut self, now: Instant) {
        self.runs
            .retain(|_, r| now.saturating_duration_since(r.seen) < LATE_WINDOW);
    }

    /// Gives `d` its exit: the rule of [`crate::exit`] over the kernel's verdict and what the
    /// runtime said.
    fn settle(&mut self, d: &mut Departure, runtime: Option<RuntimeExit>, now: Instant) {
        // A late word was counted as a timeout already, and as late.
        if let Some(r) = runtime.as_ref().filter(|_| d.listening.is_none()) {
            if r.code.is_some() {
                self.counts.code += 1;
            } else {
                self.counts.no_code += 1;
                if r.invalid_code {
                    tracing::debug!(id = %d.state.id, "the runtime's exit status is outside 0–255: dropped");
                }
            }
        }
        let run = d.run;
        d.state
            .set_exit(exit::verdict(d.kernel, runtime.as_ref()).map(|e| Exit { run, ..e }));
        d.waiting = None;
        d.ready_at = now;
    }

    /// Takes the runtimes' words that arrived for waiting departures, and gives up on those
    /// whose bound passed; takes late words for those that went out without theirs. Returns
    /// whether any is now ready to publish.
    pub fn resolve(&mut self, exits: &ExitStore, now: Instant) -> bool {
        let mut any = false;
        let mut list = std::mem::take(&mut self.list);
        for d in list.iter_mut().filter(|d| d.listening.is_some()) {
            if d.listening.is_some_and(|until| until <= now) {
                d.listening = None;
            } else if let Some(r) = exits.take_run(&d.state.id, d.state.created, d.next) {
                self.counts.late += 1;
                tracing::debug!(id = %d.state.id, code = ?r.code, "the runtime's word on why it ended came after its final sample: its exit published now");
                self.settle(d, Some(r), now);
                (d.listening, d.late, d.rendered_in) = (None, true, None);
                // Its final sample delivered: the exit series alone.
                d.exit_only |= d.delivered;
                d.delivered = false;
                any = true;
            }
        }
        for d in list.iter_mut().filter(|d| !d.ready()) {
            if let Some(r) = exits.take(&d.state.id, d.state.created) {
                self.settle(d, Some(r), now);
                any = true;
            } else if d.waiting.is_some_and(|until| until <= now) {
                self.counts.timeout += 1;
                tracing::debug!(id = %d.state.id, "no word from the runtime on why it ended within the bound: published without it");
                self.settle(d, None, now);
                d.listening = Some(d.at + LATE_WINDOW);
                any = true;
            }
        }
        self.list = list;
        any
    }

    /// When the collector must look at the departures next: the earliest bound of those
    /// waiting, and the publication of those ready and not yet published.
    pub fn next_wake(&self) -> Option<Instant> {
        let waiting = self.list.iter().filter_map(|d| d.waiting).min();
        waiting.into_iter().chain(self.publish_at()).min()
    }

    /// When the ready departures not yet published are due between ticks.
    fn publish_at(&self) -> Option<Instant> {
        let fresh = (self.list.iter()).filter(|d| d.shown() && d.rendered_in.is_none());
        let mut at = fresh.clone().map(|d| d.ready_at).min()? + BATCH;
        // The last moment each may be published (a late word's: with the others that come
        // with it, at most a gap later).
        let due = fresh.map(|d| match d.late {
            true => d.ready_at + PUBLISH_GAP,
            false => (d.at + self.wait).max(d.ready_at),
        });
        if let Some(last) = self.published_at {
            at = at.max(last + PUBLISH_GAP);
        }
        Some(due.fold(at, Instant::min))
    }

    /// Whether ready departures are due to be published now (between ticks).
    pub fn publish_due(&self, now: Instant) -> bool {
        self.publish_at().is_some_and(|at| at <= now)
    }

    /// Before a tick's outputs: drops what was delivered (`served`: the newest page generation
    /// a scrape has served) or waited too long; one that still listens for a late word is kept,
    /// unshown, until its window passes. Forgets the runs of ids gone long enough.
    pub fn expire(&mut self, served: u64) {
        let (serving, otlp, retention) = (self.serving, self.otlp, self.retention);
        let now = Instant::now();
        self.list.retain_mut(|d| {
            let done = match d.rendered_in {
                Some(g) if !serving || g <= served => true,
                None if otlp || !d.ready() => false,
                _ => d.at.elapsed() >= retention,
            };
            if !done {
                return true;
            }
            d.delivered = true;
            d.listening.is_some_and(|until| until > now)
        });
        let mut ats: Vec<Instant> = (self.list.iter().filter(|d| d.delivered))
            .map(|d| d.at)
            .collect();
        if ats.len() > MAX_LISTENING {
            ats.sort_unstable();
            let cut = ats[ats.len() - MAX_LISTENING];
            self.list.retain(|d| !d.delivered || d.at >= cut);
        }
        self.forget_runs(now);
    }

    /// Before outputs: what each ready departure shows, given the ids running now. The newest
    /// run of an id that is not running shows everything; other runs show their exit series
    /// only, and nothing when it would repeat a newer run's labels (no restart count to tell
    /// them apart).
    pub fn mark(&mut self, live: &HashSet<&str>) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let ids = self.list.iter().map(|d| d.state.id.as_str());
        for id in ids.chain(live.iter().copied()) {
            if let Some(r) = self.runs.get_mut(id) {
                r.seen = now;
            }
        }
        for d in self.list.iter_mut() {
            // Running again: a word about a process that finishes from now on is the new run's.
            if d.listening.is_some() && d.next.is_none() && live.contains(d.state.id.as_str()) {
                d.next = Some(wall);
            }
        }
        let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, d) in self.list.iter().enumerate() {
            if d.shown() {
                by_id.entry(d.state.id.as_str()).or_default().push(i);
            }
        }
        let mut shows = vec![Show::Nothing; self.list.len()];
        for (id, mut runs) in by_id {
            runs.sort_by_key(|&i| std::cmp::Reverse(self.list[i].state.created));
            let mut labels: HashSet<(ExitReason, u32, Option<u32>)> = HashSet::new();
            for (n, &i) in runs.iter().enumerate() {
                let exit: Option<&Exit> = self.list[i].state.exit();
                let fresh = exit.is_some_and(|e| labels.insert((e.reason, e.run, e.restart_count)));
                shows[i] = if n == 0 && !live.contains(id) && !self.list[i].exit_only {
                    Show::All
                } else if fresh {
                    Show::ExitOnly
                } else {
                    Show::Nothing
                };
            }
        }
        for (d, show) in self.list.iter_mut().zip(shows) {
            d.state.set_show(show);
        }
    }

    /// After outputs: everything ready was in page (and request) `generation`.
    pub fn rendered(&mut self, generation: u64, now: Instant) {
        for d in self.list.iter_mut().filter(|d| d.shown()) {
            d.rendered_in.get_or_insert(generation);
        }
        self.published_at = Some(now);
    }

    /// The final samples to show (ready, with something to show), after [`mark`](Self::mark).
    pub fn states(&self) -> impl Iterator<Item = &ContainerState> {
        self.list
            .iter()
            .filter(|d| d.shown() && d.state.show() != Show::Nothing)
            .map(|d| &d.state)
    }

    /// Those of [`states`](Self::states) not yet published: what a publication between ticks
    /// sends over OTLP.
    pub fn unpublished(&self) -> impl Iterator<Item = &ContainerState> {
        self.list
            .iter()
            .filter(|d| d.shown() && d.rendered_in.is_none() && d.state.show() != Show::Nothing)
            .map(|d| &d.state)
    }

    /// How departures got their exits so far.
    pub fn counts(&self) -> ExitCounts {
        self.counts
    }

    /// Departures waiting for their runtime's word.
    pub fn waiting(&self) -> usize {
        self.list.iter().filter(|d| !d.ready()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::CgroupSample;
    use crate::discovery::{Found, Runtime};
    use std::time::SystemTime;

    const WAIT: Duration = Duration::from_secs(3);

    fn created(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    /// A final sample of container `id` whose cgroup was created at `at`: read after its last
    /// process left, with `oom_kills` kills counted.
    fn departed(id: &str, kind: Kind, at: SystemTime, oom_kills: u64) -> ContainerState {
        let mut s = CgroupSample {
            populated: Some(false),
            ..CgroupSample::default()
        };
        s.memory.oom_kills = Some(oom_kills);
        ContainerState::with_samples(
            Found {
                id: id.into(),
                kind,
                runtime: Runtime::Docker,
                pod_uid: None,
                rel: format!("docker/{id}").into(),
            },
            at,
            CgroupSample::default(),
            s,
            Duration::from_secs(1),
        )
    }

    /// A store for the runtimes' words, departures delivered by scrape (and by OTLP with
    /// `otlp`), and the start.
    fn setup(otlp: bool) -> (ExitStore, Departures, Instant) {
        let d = Departures::new(Duration::from_secs(300), true, otlp, WAIT);
        (ExitStore::new(), d, Instant::now())
    }

    /// Adds the final sample of container `id` (created at `created(s)`, no OOM kill).
    fn add(d: &mut Departures, x: &ExitStore, id: &str, s: u64, ask: bool, t: Instant) -> bool {
        d.add(departed(id, Kind::Container, created(s), 0), ask, x, t)
    }

    fn said(code: u8, restart_count: Option<u32>, finished: SystemTime) -> RuntimeExit {
        RuntimeExit {
            code: Some(code),
            oom: Some(false),
            restart_count,
            finished_at: Some(finished),
            ..RuntimeExit::default()
        }
    }

    /// What `d` shows once marked with no container running.
    fn marked(d: &mut Departures) -> Vec<(String, Show, Option<Exit>)> {
        d.mark(&HashSet::new());
        shown(d)
    }

    fn shown(d: &Departures) -> Vec<(String, Show, Option<Exit>)> {
        d.states()
            .map(|s| (s.id.clone(), s.show(), s.exit().copied()))
            .collect()
    }

    #[test]
    fn a_final_sample_waits_for_the_runtimes_word_and_goes_when_it_comes() {
        let (exits, mut d, t0) = setup(true);
        assert!(add(&mut d, &exits, "a", 0, true, t0));
        assert!(marked(&mut d).is_empty(), "not shown while waiting");
        assert_eq!(d.next_wake(), Some(t0 + WAIT));
        assert!(!d.resolve(&exits, t0 + Duration::from_millis(5)));
        exits.record("a", said(3, Some(0), created(10)));
        let t1 = t0 + Duration::from_millis(10);
        assert!(d.resolve(&exits, t1));
        // Published after the batch, well before the bound.
        assert_eq!(d.next_wake(), Some(t1 + BATCH));
        assert!(!d.publish_due(t1));
        assert!(d.publish_due(t1 + BATCH));
        let got = marked(&mut d);
        assert_eq!(got.len(), 1);
        let e = got[0].2.unwrap();
        assert_eq!(
            (e.reason, e.code, e.restart_count),
            (ExitReason::Error, Some(3), Some(0))
        );
        d.rendered(1, t1 + BATCH);
        assert_eq!(d.next_wake(), None);
        assert_eq!(d.unpublished().count(), 0);
        assert_eq!(d.counts().code, 1);
    }

    #[test]
    fn never_held_past_the_bound() {
        let (exits, mut d, t0) = setup(true);
        add(&mut d, &exits, "a", 0, true, t0);
        assert!(!d.resolve(&exits, t0 + WAIT - Duration::from_millis(1)));
        assert!(d.resolve(&exits, t0 + WAIT));
        // Due at once: its bound has come.
        assert!(d.publish_due(t0 + WAIT));
        d.mark(&HashSet::new());
        // Shown without an exit: no OOM kill, no code.
        assert_eq!(shown(&d), vec![("a".to_string(), Show::All, None)]);
        assert_eq!(d.counts().timeout, 1);
        d.rendered(1, t0 + WAIT);
        // Delivered, it is no longer shown, but still listens for its word.
        d.expire(1);
        assert!(marked(&mut d).is_empty());
        // The word arriving late is published then: its exit alone, counted as late.
        exits.record("a", said(3, Some(0), created(1)));
        let t1 = t0 + WAIT * 2;
        assert!(d.resolve(&exits, t1));
        assert_eq!(d.next_wake(), Some(t1 + BATCH));
        let got = marked(&mut d);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, Show::ExitOnly);
        let e = got[0].2.unwrap();
        assert_eq!((e.reason, e.code, e.run), (ExitReason::Error, Some(3), 1));
        assert_eq!(
            (d.counts().late, d.counts().code, d.counts().timeout),
            (1, 0, 1)
        );
        d.rendered(2, t1 + BATCH);
        d.expire(2);
        assert!(d.list.is_empty(), "delivered with its exit: gone");
    }

    #[test]
    fn a_late_word_before_delivery_goes_with_the_final_sample_and_none_after_the_window() {
        let (exits, mut d, t0) = setup(true);
        add(&mut d, &exits, "a", 0, true, t0);
        add(&mut d, &exits, "b", 0, true, t0);
        assert!(d.resolve(&exits, t0 + WAIT));
        d.mark(&HashSet::new());
        d.rendered(1, t0 + WAIT);
        // Not served yet: "a"'s word shows with its final sample, published again.
        exits.record("a", said(0, Some(0), created(1)));
        assert!(d.resolve(&exits, t0 + WAIT * 2));
        let a = marked(&mut d).into_iter().find(|s| s.0 == "a").unwrap();
        assert_eq!(
            (a.1, a.2.unwrap().reason),
            (Show::All, ExitReason::Completed)
        );
        assert_eq!(d.unpublished().count(), 1);
        // "b"'s word comes after the window: it lands on nothing, and "b" goes.
        exits.record("b", said(1, Some(0), created(1)));
        assert!(!d.resolve(&exits, t0 + LATE_WINDOW + Duration::from_secs(1)));
        d.rendered(2, t0 + WAIT * 2);
        d.expire(2);
        assert_eq!(d.list.len(), 0);
        assert_eq!(d.counts().late, 1);
    }

    #[test]
    fn a_late_word_of_a_restarted_container_goes_to_its_own_run() {
        let (exits, mut d, t0) = setup(false);
        // Run 1 (created at 0) went out without its word; run 2 (created at 6) departs, and
        // only its word (finished at 9) comes.
        add(&mut d, &exits, "a", 0, true, t0);
        d.resolve(&exits, t0 + WAIT);
        add(&mut d, &exits, "a", 6, true, t0 + WAIT);
        exits.record("a", said(137, Some(0), created(9)));
        assert!(d.resolve(&exits, t0 + WAIT * 2));
        let runs: Vec<(u32, Option<u8>)> = marked(&mut d)
            .iter()
            .filter_map(|s| s.2.map(|e| (e.run, e.code)))
            .collect();
        assert_eq!(runs, [(2, Some(137))]);
        assert_eq!(d.counts().late, 0);
    }

    #[test]
    fn the_word_before_the_final_sample() {
        let (exits, mut d, t0) = setup(false);
        exits.record("a", said(0, Some(0), created(5)));
        assert!(!add(&mut d, &exits, "a", 0, true, t0));
        assert_eq!(marked(&mut d)[0].2.unwrap().reason, ExitReason::Completed);
    }

    #[test]
    fn without_a_runtime_the_kernels_verdict_at_once() {
        let (exits, mut d, t0) = setup(false);
        let oom = departed("oom", Kind::Container, created(0), 1);
        assert!(!d.add(oom, false, &exits, t0));
        assert!(!add(&mut d, &exits, "ok", 0, false, t0));
        // A pod's own cgroup has no exit, even with an OOM kill in it.
        assert!(!d.add(departed("pod", Kind::Pod, created(0), 1), true, &exits, t0));
        let got = marked(&mut d);
        assert_eq!(got.len(), 3);
        let oom = got[0].2.unwrap();
        assert_eq!((oom.reason, oom.code), (ExitReason::OomKilled, None));
        assert_eq!(got[1].2, None);
        assert_eq!(got[2].2, None);
        assert_eq!(d.counts().unasked, 2);
        // Exits arriving at once are published together.
        assert_eq!(d.next_wake(), Some(t0 + BATCH));
    }

    #[test]
    fn every_run_ends_and_labels_never_repeat() {
        let (exits, mut d, t0) = setup(false);
        // Run 0 (created at 0) ended at 5; run 1 (created at 6) ended at 9.
        exits.record("a", said(4, Some(0), created(5)));
        add(&mut d, &exits, "a", 0, true, t0);
        exits.record("a", said(4, Some(1), created(9)));
        add(&mut d, &exits, "a", 6, true, t0);
        let mut got: Vec<(Show, Option<u32>)> = marked(&mut d)
            .iter()
            .map(|(_, s, e)| (*s, e.unwrap().restart_count))
            .collect();
        got.sort_by_key(|g| g.1);
        assert_eq!(
            got,
            [(Show::ExitOnly, Some(0)), (Show::All, Some(1))],
            "the newest run shows all, the older its exit"
        );
        // Run 2 is running: both earlier runs show their exits only.
        d.mark(&HashSet::from(["a"]));
        assert!(shown(&d).iter().all(|(_, s, _)| *s == Show::ExitOnly));
        assert_eq!(shown(&d).len(), 2);

        // Without restart counts (`docker restart`), the exporter's count of runs tells them
        // apart.
        let mut d = Departures::new(Duration::from_secs(300), true, false, WAIT);
        exits.record("b", said(4, None, created(5)));
        add(&mut d, &exits, "b", 0, true, t0);
        exits.record("b", said(4, None, created(9)));
        add(&mut d, &exits, "b", 6, true, t0);
        let mut runs: Vec<u32> = marked(&mut d).iter().map(|s| s.2.unwrap().run).collect();
        runs.sort();
        assert_eq!(runs, [1, 2]);
        // The same run departing twice keeps one departure.
        add(&mut d, &exits, "b", 6, false, t0);
        assert_eq!(d.list.len(), 2);
    }

    #[test]
    fn waiting_departures_are_never_expired_and_publications_are_spaced() {
        // Page served, OTLP off: delivery by scrape.
        let (exits, mut d, t0) = setup(false);
        add(&mut d, &exits, "w", 0, true, t0);
        add(&mut d, &exits, "r", 0, false, t0);
        d.mark(&HashSet::new());
        d.rendered(1, t0);
        d.expire(1);
        assert_eq!(
            d.list.len(),
            1,
            "the ready one was served; the waiting one stays"
        );
        assert_eq!(d.waiting(), 1);
        // Another exit right after a publication waits for the gap, unless its bound is
        // sooner.
        exits.record("w", said(1, None, created(1)));
        let t1 = t0 + Duration::from_millis(100);
        d.resolve(&exits, t1);
        assert_eq!(d.next_wake(), Some(t0 + PUBLISH_GAP));
        let bound = Duration::from_millis(200);
        let mut short = Departures::new(Duration::from_secs(300), true, false, bound);
        add(&mut short, &exits, "x", 0, false, t0);
        short.rendered(1, t0);
        add(&mut short, &exits, "y", 0, false, t1);
        assert_eq!(short.next_wake(), Some(t1 + bound));
    }
}
