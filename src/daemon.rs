//! The long-running exporter: a collector thread that owns every open cgroup file, polls
//! inotify with the next tick as its timeout, reads each final sample the moment its
//! `cgroup.events` says the last process left, and renders the page when a scrape asks for one
//! newer than the last (so on a quiet host an unscraped tick renders nothing); and a small
//! tokio runtime for the HTTP server and the runtimes' sources.
//! The poll also wakes when a runtime says why a container ended, so departures are published
//! between ticks (see `docs/architecture.md`, "Final samples" and "Exits").

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::cgroup::{Layout, ProcRoot};
use crate::cli::DaemonArgs;
use crate::collect::{Collector, Described, DiscoveryChanges, ErrorLog};
use crate::config::{HostArgs, Listen};
use crate::departures::{Departures, runtime_removal_delay};
use crate::discovery::watch::{WatchEvent, Watcher};
use crate::discovery::{self, Found, Kind};
use crate::export::http::{self, PageState};
use crate::export::otlp;
use crate::export::page::PageWriter;
use crate::export::prom::PromRenderer;
use crate::metadata::{ExitWord, Metadata, Source};
use crate::progress;
use crate::telemetry::{ProcessStats, Telemetry, add, set};

/// How long the collector thread may take to stop at shutdown.
const COLLECTOR_STOP_DEADLINE: Duration = Duration::from_secs(3);

/// How long pending OTLP requests may take to go out at shutdown.
const OTLP_FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// Runs until SIGTERM or SIGINT.
pub fn run(host: &HostArgs, args: &DaemonArgs) -> Result<(), Box<dyn std::error::Error>> {
    // Before the watchdog and the page exist, a hung --proc-root or --cgroup-root is bounded
    // here.
    let (cgroup_root, proc_path) = (host.cgroup_root.clone(), host.proc_root.clone());
    let (layout, proc_root) = progress::within(progress::COMMAND_BOUND, move || {
        Layout::detect(&cgroup_root, &proc_path).map(|l| (l, ProcRoot::new(&proc_path)))
    })??;
    if proc_root.host_netns.is_none() {
        tracing::warn!(
            proc_root = %host.proc_root.display(),
            "cannot identify the host's network namespace (<proc-root>/1/net/dev): containers in \
             the host network would show the host's network counters as their own"
        );
    }
    let host_name = crate::resource::HostResource::new(host.host_name.clone(), None)
        .attributes
        .into_iter()
        .find(|(k, _)| k == "host.name")
        .map(|(_, v)| v);
    tracing::info!(
        layout = %layout.kind,
        discovery_root = %layout.discovery_root().display(),
        interval = ?args.interval,
        "container-exporter starting"
    );

    let telemetry = Arc::new(Telemetry::default());
    // Liveness allows for a slow tick on a loaded host before it calls the collector stuck.
    let stall_after = args.interval * 3 + Duration::from_secs(30);
    let pages = Arc::new(PageState::new(stall_after, telemetry.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Thread names fit the kernel's 15 bytes (`comm`), so top, ps and /proc tell them apart:
        // ce-io, ce-collector, ce-disk, ce-reader, ce-metadata.
        .thread_name("ce-io")
        .enable_all()
        .build()?;
    let otlp = otlp::Exporter::start(
        &args.otlp,
        host_name.clone(),
        telemetry.clone(),
        runtime.handle(),
    )
    .map_err(|e| format!("OTLP: {}", crate::remote::error_chain(&e)))?;
    let otlp_flusher = otlp.as_ref().map(otlp::Exporter::flusher);
    let stop = crate::remote::Stop::default();

    {
        // Says what the collector is stuck on when ticks stop.
        let pages = pages.clone();
        runtime.spawn(progress::watchdog(
            stall_after,
            move || pages.quiet_for(),
            stop.stopped(),
        ));
    }

    let mut live = None;
    let serving = match args.prometheus_listen {
        Listen::On(addr) => {
            let mut opts = http::ServeOptions::from_args(&args.web)
                .map_err(|e| crate::remote::error_chain(&e))?;
            // The live view answers `/`, `/ui/*` and `/api/*` on the same listener.
            live = crate::live::LiveView::from_args(&args.live, args.interval)?.map(Arc::new);
            opts.routes = live.clone().map(|l| l as Arc<dyn http::Routes>);
            let listener = runtime.block_on(http::bind(addr))?;
            let scheme = match opts.web.as_ref().map(|w| w.current().tls.is_some()) {
                Some(true) => "https",
                _ => "http",
            };
            tracing::info!(%addr, scheme, "serving the Prometheus page on /metrics");
            if let Some(w) = &opts.web {
                runtime.spawn(http::web_config::watch(w.clone(), stop.stopped()));
            }
            runtime.spawn(http::serve(listener, pages.clone(), opts, stop.stopped()));
            true
        }
        Listen::Off => false,
    };

    // Names must outlive the container by as long as its final sample is shown.
    let removal_delay = runtime_removal_delay(args.exited_retention, args.interval, args.exit_wait);
    let store = crate::metadata::spawn_sources(
        &args.metadata,
        host,
        removal_delay,
        runtime.handle(),
        &|| stop.stopped(),
    );
    let _ = telemetry.metadata.set(store.stats());

    // Disk usage: walked in a thread of its own, read by the collector at each tick.
    let disk = match crate::disk::DiskConfig::from_args(host, &args.disk) {
        Some(cfg) => {
            let stats = Arc::new(crate::disk::DiskStats::default());
            let _ = telemetry.disk.set(stats.clone());
            Some(crate::disk::Disk::start(cfg, stats)?)
        }
        None => None,
    };
    let disk_stop = disk.clone();

    let shutdown = Arc::new(AtomicBool::new(false));
    // Wakes the collector's poll at shutdown, and when a runtime says why a container ended,
    // so it needs no periodic wake-up to notice either.
    let (wake_tx, wake_rx) = std::os::unix::net::UnixStream::pair()?;
    // An exit seen only at a tick (its `cgroup.events` unwatched) comes up to an interval late.
    store
        .exits
        .set_ttl(crate::metadata::exits::DEFAULT_TTL.max(args.interval * 2 + args.exit_wait));
    store.exits.set_waker(wake_tx.try_clone()?);
    // And when a scrape wants the page of the newest tick rendered.
    pages.set_waker(wake_tx.try_clone()?);
    // The host's CPUs and memory, for the cAdvisor page's `machine_*` (read once).
    let machine = match (serving, args.prometheus_names) {
        (true, crate::config::Naming::Cadvisor) => crate::host::machine::Machine::read(
            &host.proc_root,
            std::path::Path::new(crate::host::machine::CPU_ONLINE),
        ),
        _ => crate::host::machine::Machine::default(),
    };
    let collector = {
        let (shutdown, args) = (shutdown.clone(), args.clone());
        std::thread::Builder::new()
            .name("ce-collector".into())
            .spawn(move || {
                let naming = args.prometheus_names;
                let mut collector = Collector::new(layout, proc_root);
                if disk.is_some() {
                    collector.set_fd_budget(
                        crate::host::limits::descriptor_budget()
                            .saturating_sub(crate::disk::FD_RESERVE),
                    );
                }
                let mut c = CollectorLoop::new(
                    collector,
                    args,
                    Outputs {
                        page: serving.then(|| {
                            PageWriter::new(
                                PromRenderer::new(host_name, naming).with_machine(machine),
                                pages.clone(),
                            )
                        }),
                        pages,
                        otlp,
                        live,
                    },
                    telemetry,
                    store,
                    disk,
                );
                c.run(&shutdown, &wake_rx);
            })?
    };

    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    });
    shutdown.store(true, Ordering::Release);
    if let Some(d) = &disk_stop {
        d.stop();
    }
    let _ = std::io::Write::write(&mut &wake_tx, &[1]);
    stop.stop();
    // The collector notices within 250 ms, unless a read is stuck in the kernel (a hung
    // filesystem): then the process ends without it, since returning from `main` ends every
    // thread. Shutdown is bounded whatever a thread is blocked on.
    let deadline = Instant::now() + COLLECTOR_STOP_DEADLINE;
    while !collector.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut gave_up = None;
    if collector.is_finished() {
        let _ = collector.join();
    } else {
        let doing = progress::describe().unwrap_or_else(|| "outside any read".to_string());
        tracing::error!(
            "the collector did not stop within {COLLECTOR_STOP_DEADLINE:?}, stuck {doing}: \
             exiting without it"
        );
        gave_up = Some(format!(
            "shutdown gave up on the collector, stuck {doing} (a hung filesystem?)"
        ));
    }
    if let Some(f) = otlp_flusher {
        // Pending requests (the last tick's included) get a few seconds to go out.
        runtime.block_on(f.flush(OTLP_FLUSH_DEADLINE));
    }
    runtime.shutdown_timeout(Duration::from_secs(2));
    // Not a clean stop: the exit status says so (and a supervisor may look).
    gave_up.map_or(Ok(()), |e| Err(e.into()))
}

/// How long a new container of a Kubernetes pod waits for its CRI metadata before it is shown
/// by id anyway: long enough for one lookup, so that a pod's sandbox is never shown as an
/// application container, and a container never first appears without its names.
const CRI_GRACE: Duration = Duration::from_secs(10);

/// Whether a container is on the outputs. Pod sandboxes never are (their usage is their pod's).
/// A new container of a pod is held back while the CRI runtime is being asked about it.
fn shown(d: &Described<'_>, now: SystemTime, cri_connected: bool) -> bool {
    let state = d.state;
    if d.meta.as_deref().is_some_and(|m| m.sandbox) {
        return false;
    }
    let young = now
        .duration_since(state.created)
        .is_ok_and(|age| age < CRI_GRACE);
    !(state.kind == Kind::Container
        && state.pod_uid.is_some()
        && d.meta.is_none()
        && cri_connected
        && young)
}

/// What the disk thread needs to know of a shown container or pod.
pub fn roster_item(d: &Described<'_>, procs_root: &std::path::Path) -> crate::disk::RosterItem {
    let s = d.state;
    crate::disk::RosterItem {
        id: s.id.clone(),
        kind: s.kind,
        pod_uid: s.pod_uid.clone(),
        procs: procs_root.join(&s.rel).join("cgroup.procs"),
        cpu_ns: s.sample().and_then(|x| x.cpu.usage_ns),
        meta: d.meta.clone(),
        pod: d.pod.clone(),
    }
}

/// The containers and final samples on the outputs at `now`, and those held back (the pods'
/// sandboxes, which name a pod's network on the cAdvisor page; new containers of a pod waiting
/// for their names).
fn describe<'a>(
    collector: &'a Collector,
    departed: &'a Departures,
    store: &'a Metadata,
    now: SystemTime,
) -> (Vec<Described<'a>>, Vec<Described<'a>>) {
    let cri_connected = store.connected(Source::Cri);
    (collector.containers())
        .chain(departed.states())
        .map(|state| Described::new(state, store))
        .partition(|d| shown(d, now, cri_connected))
}

/// Where each tick's collection goes.
struct Outputs {
    /// The Prometheus page's writer, when the page is served.
    page: Option<PageWriter>,
    pages: Arc<PageState>,
    /// OTLP export, when configured: one request per tick.
    otlp: Option<otlp::Exporter>,
    /// The live view, when served: fed what the page shows.
    live: Option<Arc<crate::live::LiveView>>,
}

/// The collector thread's loop: inotify events, rescans and ticks, and what each tick hands
/// to the outputs.
struct CollectorLoop {
    collector: Collector,
    watcher: Option<Watcher>,
    outputs: Outputs,
    store: Metadata,
    telemetry: Arc<Telemetry>,
    args: DaemonArgs,
    departed: Departures,
    /// Containers whose `cgroup.events` could not be watched yet, until when to retry.
    pending_watch: HashMap<String, Instant>,
    generation: u64,
    events: Vec<WatchEvent>,
    /// Open errors already logged at warn level (bounded).
    logged_errors: std::collections::HashSet<String>,
    /// Read errors, logged at most once per file per ten minutes.
    error_log: ErrorLog,
    /// The disk thread, when disk usage is on.
    disk: Option<crate::disk::Disk>,
}

impl CollectorLoop {
    fn new(
        mut collector: Collector,
        args: DaemonArgs,
        outputs: Outputs,
        telemetry: Arc<Telemetry>,
        store: Metadata,
        disk: Option<crate::disk::Disk>,
    ) -> CollectorLoop {
        let layout = collector.layout();
        let watcher = (Watcher::new(layout.discovery_root(), layout.unified.as_deref()))
            .inspect_err(|e| {
                tracing::warn!(
                    "inotify is not available ({e}): new containers are found only by the \
                     rescan every {:?}, and exits are seen at the next tick",
                    args.rescan_interval
                )
            })
            .ok();
        // Limits are re-read so that a change shows within a minute (at once after a
        // runtime's `update` event).
        collector.set_limits_every(Duration::from_secs(60).saturating_sub(args.interval));
        let departed = Departures::new(
            args.exited_retention,
            outputs.page.is_some(),
            outputs.otlp.is_some(),
            args.exit_wait,
        );
        CollectorLoop {
            collector,
            watcher,
            outputs,
            store,
            telemetry,
            args,
            departed,
            pending_watch: HashMap::new(),
            generation: 0,
            events: Vec::new(),
            logged_errors: std::collections::HashSet::new(),
            error_log: ErrorLog::default(),
            disk,
        }
    }

    fn run(&mut self, shutdown: &AtomicBool, wake_fd: &std::os::unix::net::UnixStream) {
        // Drained after each wake-up; a writer finding it full knows a wake-up is pending.
        let _ = wake_fd.set_nonblocking(true);
        self.rescan();
        let mut next_tick = Instant::now();
        let mut next_rescan = Instant::now() + self.args.rescan_interval;
        while !shutdown.load(Ordering::Acquire) {
            let now = Instant::now();
            let mut wake = next_tick.min(next_rescan);
            if !self.pending_watch.is_empty() {
                wake = wake.min(now + Duration::from_millis(50));
            }
            if let Some(due) = self.collector.next_network_look() {
                wake = wake.min(due);
            }
            if let Some(due) = self.watcher.as_ref().and_then(Watcher::rescan_due) {
                wake = wake.min(due);
            }
            // A final sample waiting for its runtime's word, or ready to be published.
            if let Some(due) = self.departed.next_wake() {
                wake = wake.min(due);
            }
            // No periodic wake-up (each costs tens of µs on a VM): shutdown and the runtimes'
            // exits write to `wake`.
            let events = self.wait_for_events(wake.saturating_duration_since(now), wake_fd);
            drain(wake_fd);
            // What follows may change what the last output's page shows (a container found,
            // restarted, ended or removed, by inotify, by listing the directories it could not
            // watch, or by a rescan): a page not rendered yet is rendered first, as it stands,
            // so that a scrape between ticks gets the last output's page and never a mix of it
            // and what came after (at most one render per output).
            let now = Instant::now();
            let unwatched_due = (self.watcher.as_ref())
                .and_then(Watcher::rescan_due)
                .is_some_and(|due| now >= due);
            if (events || unwatched_due || !self.pending_watch.is_empty() || now >= next_rescan)
                && self.page_stale()
            {
                self.write_page();
            }
            if self.handle_events() {
                next_rescan = Instant::now();
            }
            self.retry_pending_watches();
            let now = Instant::now();
            self.collector.look_for_networks(now);
            if now >= next_rescan {
                self.rescan();
                next_rescan = now + self.args.rescan_interval;
            }
            if now >= next_tick {
                self.tick();
                next_tick += self.args.interval;
                if next_tick < Instant::now() {
                    // A tick took longer than the interval: skip, don't pile up.
                    next_tick = Instant::now() + self.args.interval;
                }
            } else {
                self.departed.resolve(&self.store.exits, now);
                if self.departed.publish_due(now) {
                    self.output(false);
                }
            }
            // Rendered on request only while nothing changed since the last output (else it was
            // rendered above, before the change, and the scrape has it).
            if self.outputs.pages.take_wanted() && self.page_stale() {
                self.write_page();
            }
        }
    }

    /// Whether the page served is older than the last output (a page is served at all).
    fn page_stale(&self) -> bool {
        self.outputs.page.is_some() && self.outputs.pages.generation() < self.generation
    }

    /// Renders the page of the last output, from the containers as that output left them:
    /// called only while nothing changed them since (see `run`).
    fn write_page(&mut self) {
        let Some(page) = self.outputs.page.as_mut() else {
            return;
        };
        let now = SystemTime::now();
        let (described, hidden) = describe(&self.collector, &self.departed, &self.store, now);
        page.write(self.generation, now, described, hidden, &self.telemetry);
    }

    /// Waits for inotify, the shutdown signal or `timeout`, rounded up to whole ms (rounded
    /// down, a wait shorter than 1 ms would spin until it is over). Returns whether inotify
    /// has events.
    fn wait_for_events(
        &mut self,
        timeout: Duration,
        wake: &std::os::unix::net::UnixStream,
    ) -> bool {
        use std::os::fd::AsFd;
        let ms = timeout.as_micros().div_ceil(1000);
        let ms = u16::try_from(ms).unwrap_or(u16::MAX);
        // The wake-up socket, and inotify's descriptor when there is one.
        let watch = self.watcher.as_ref().map_or(wake.as_fd(), |w| w.fd());
        let mut fds = [wake.as_fd(), watch].map(|fd| PollFd::new(fd, PollFlags::POLLIN));
        let n = 1 + usize::from(self.watcher.is_some());
        let _ = poll(&mut fds[..n], PollTimeout::from(ms));
        n == 2 && fds[1].revents().is_some_and(|r| !r.is_empty())
    }

    /// Applies what inotify reported. Returns true when events were lost (rescan now).
    fn handle_events(&mut self) -> bool {
        let Some(w) = self.watcher.as_mut() else {
            return false;
        };
        self.events.clear();
        w.read(&mut self.events);
        let mut overflow = false;
        let events = std::mem::take(&mut self.events);
        for ev in &events {
            match ev {
                WatchEvent::Found(f) => self.track(f.clone()),
                WatchEvent::Removed { id } => {
                    if self.collector.untrack(id) {
                        tracing::debug!(%id, "container removed");
                    }
                    self.unwatch(id);
                }
                WatchEvent::EventsChanged { id } => {
                    if self.collector.refresh(id).is_none() && !self.collector.is_tracked(id) {
                        self.unwatch(id);
                    }
                }
                WatchEvent::Overflow => {
                    add(&self.telemetry.discovery_overflows, 1);
                    tracing::warn!("inotify queue overflowed: rescanning the cgroup tree");
                    overflow = true;
                }
            }
        }
        self.events = events;
        self.collect_departures();
        overflow
    }

    fn track(&mut self, f: Found) {
        let (id, rel) = (f.id.clone(), f.rel.clone());
        // Watch first, then read: a change of `populated` between the two is then an event,
        // not a miss.
        self.watch(&id, &rel);
        let mut changes = DiscoveryChanges::default();
        let (kind, runtime) = (f.kind, f.runtime);
        self.collector.track(f, &mut changes);
        self.mark_watched(&id);
        self.count(&changes);
        if changes.added > 0 {
            tracing::debug!(%id, cgroup = %rel.display(), "container found");
            // Asks the sources that look ids up (one batched lookup, never a call per tick).
            self.store.want(kind, runtime, &id);
        }
        if !self.collector.is_tracked(&id) {
            self.unwatch(&id);
        }
    }

    fn watch(&mut self, id: &str, rel: &std::path::Path) {
        if let Some(w) = self.watcher.as_mut()
            && !w.watch_container(id, rel)
        {
            self.pending_watch
                .entry(id.to_string())
                .or_insert_with(|| Instant::now() + discovery::RETRY_AFTER_DISCOVERY);
        }
    }

    /// Tells the collector whether inotify reports the container's `cgroup.events` (then it
    /// is read only when it changes).
    fn mark_watched(&mut self, id: &str) {
        let watched = self.watcher.as_ref().is_some_and(|w| w.watches_events(id));
        self.collector.set_events_watched(id, watched);
    }

    fn unwatch(&mut self, id: &str) {
        self.pending_watch.remove(id);
        if let Some(w) = self.watcher.as_mut() {
            w.unwatch_container(id);
        }
    }

    fn retry_pending_watches(&mut self) {
        if self.pending_watch.is_empty() {
            return;
        }
        let now = Instant::now();
        let pending: Vec<(String, Instant)> = self.pending_watch.drain().collect();
        for (id, until) in pending {
            let rel = self
                .collector
                .tracked()
                .find(|(i, _)| *i == id)
                .map(|(_, r)| r.clone());
            let Some(rel) = rel else { continue };
            let done = self
                .watcher
                .as_mut()
                .is_none_or(|w| w.watch_container(&id, &rel));
            if done {
                // The hierarchy appeared: the container may have changed state meanwhile.
                self.mark_watched(&id);
                self.collector.refresh(&id);
            } else if now < until {
                self.pending_watch.insert(id, until);
            }
        }
        self.collect_departures();
    }

    fn rescan(&mut self) {
        add(&self.telemetry.discovery_rescans, 1);
        let found = match self.watcher.as_mut() {
            Some(w) => w.scan(),
            None => discovery::walk(self.collector.layout().discovery_root()),
        };
        let changes = self.collector.sync(found);
        self.count(&changes);
        let tracked: Vec<(String, std::path::PathBuf)> = self
            .collector
            .tracked()
            .map(|(i, r)| (i.to_string(), r.clone()))
            .collect();
        for (id, rel) in &tracked {
            self.watch(id, rel);
            self.mark_watched(id);
        }
        if let Some(w) = self.watcher.as_mut() {
            w.retain_containers(|id| tracked.iter().any(|(t, _)| t == id));
        }
        self.collect_departures();
    }

    fn count(&mut self, changes: &DiscoveryChanges) {
        add(&self.telemetry.discovery_added, changes.added as u64);
        for (id, error) in &changes.failed {
            // Once per container and error: the same failure, retried every tick, is debug.
            if self.logged_errors.len() >= 4096 {
                self.logged_errors.clear();
            }
            if self.logged_errors.insert(format!("{id}\x1f{error}")) {
                tracing::warn!(%id, "cannot open the container's cgroup files ({error}); trying again every tick");
            } else {
                tracing::debug!(%id, "still cannot open the container's cgroup files ({error})");
            }
        }
    }

    /// Moves the collector's fresh final samples into the departures, where they wait for
    /// their runtime's word (the CRI is asked) and are then shown.
    fn collect_departures(&mut self) {
        let now = Instant::now();
        for state in self.collector.take_departed() {
            add(&self.telemetry.final_samples, 1);
            tracing::debug!(id = %state.id, "final sample taken");
            // Whether its runtime can say why it ended (pods have no exit).
            let word = (state.kind == Kind::Container)
                .then(|| self.store.exit_word(state.runtime, &state.id))
                .flatten();
            let id = state.id.clone();
            if self
                .departed
                .add(state, word.is_some(), &self.store.exits, now)
                && word == Some(ExitWord::Asked)
            {
                self.store.exits.ask(&id, now + self.args.exit_wait);
            }
        }
    }

    fn tick(&mut self) {
        let started = Instant::now();
        for f in self.collector.take_unopened() {
            self.track(f);
        }
        for id in self.store.take_limits_changed() {
            self.collector.refresh_limits(&id);
        }
        self.collector.collect();
        if let Some(disk) = &self.disk {
            // One read lock for every container: the disk thread never holds it for longer
            // than one insert.
            let collector = &mut self.collector;
            disk.with_results(|r| collector.attach_disk(|s| r.get(&s.id).cloned()));
        }
        self.collect_departures();
        self.departed.resolve(&self.store.exits, Instant::now());

        self.departed
            .expire(self.outputs.pages.served_generation.load(Ordering::Acquire));
        // Counted before the outputs, so the page and the OTLP request of tick N say N (its
        // duration, which includes rendering them, can only be the previous tick's).
        add(&self.telemetry.collections, 1);
        self.output(true);
        set(
            &self.telemetry.last_collection_ns,
            started.elapsed().as_nanos() as u64,
        );
        // A file that stays malformed would otherwise log every tick: warn once per file per
        // ten minutes (the counters on the page count every error), debug in between.
        let now = Instant::now();
        for e in self.collector.take_errors() {
            match self.error_log.admit(&e.path, now) {
                Some(0) => tracing::warn!("{e}"),
                Some(n) => tracing::warn!("{e} (and {n} more times since the last warning)"),
                None => tracing::debug!("{e}"),
            }
        }
    }

    /// Hands the containers to the outputs: at a tick (`tick`) everything, the OTLP request
    /// with the exporter's own telemetry; between ticks (departures just ready) an OTLP request
    /// of the departures not yet sent. Either way the page's data is of a new generation: the
    /// page is rendered now if a scrape waits for it, else when one asks.
    fn output(&mut self, tick: bool) {
        self.generation += 1;
        let now = SystemTime::now();
        let live: std::collections::HashSet<&str> =
            self.collector.containers().map(|c| c.id.as_str()).collect();
        self.departed.mark(&live);
        let store = &self.store;
        let cri_connected = store.connected(Source::Cri);
        let (described, hidden) = describe(&self.collector, &self.departed, store, now);
        if tick && let Some(disk) = &self.disk {
            // The running containers, for the disk thread (it replaces its roster each tick).
            let procs_root = self.collector.layout().discovery_root();
            let roster = described
                .iter()
                .filter(|d| live.contains(d.state.id.as_str()))
                .map(|d| roster_item(d, procs_root))
                .collect();
            disk.submit(roster);
        }
        let t = &self.telemetry;
        let counts = self.departed.counts();
        set(&t.exits_code, counts.code);
        set(&t.exits_no_code, counts.no_code);
        set(&t.exits_timeout, counts.timeout);
        set(&t.exits_unasked, counts.unasked);
        set(&t.exits_late, counts.late);
        set(&t.exits_held, store.exits.len() as u64);
        set(&t.exits_waiting, self.departed.waiting() as u64);
        set(
            &t.containers_tracked,
            self.collector.containers().count() as u64,
        );
        let e = &self.collector.errors;
        set(&t.read_errors_io, e.io);
        set(&t.read_errors_malformed, e.malformed);
        set(&t.read_errors_truncated, e.truncated);
        set(&t.read_errors_open, e.open);
        // Every end, however it was noticed (inotify, a rescan, a read that found it gone).
        set(&t.discovery_removed, self.collector.removals);
        set(&t.dropped_devices, e.dropped_devices);
        set(&t.dropped_interfaces, e.dropped_interfaces);
        set(&t.containers_reopened, self.collector.reopening() as u64);
        let (all, per_tick) = self.collector.files_kept();
        set(&t.containers_files_all, all as u64);
        set(&t.containers_files_per_tick, per_tick as u64);
        if let Some(w) = &self.watcher {
            let (dirs, events) = w.watch_counts();
            set(&t.watches_dirs, dirs as u64);
            set(&t.watches_events, events as u64);
            let (dirs, events) = w.unwatched_counts();
            set(&t.unwatched_dirs, dirs as u64);
            set(&t.unwatched_events, events as u64);
        }
        if let Some(o) = self.outputs.otlp.as_mut() {
            let at = Instant::now();
            if tick {
                o.submit(now, &described, &self.telemetry, &ProcessStats::read());
                set(&t.last_otlp_encode_ns, at.elapsed().as_nanos() as u64);
            } else {
                let fresh: Vec<Described<'_>> = self
                    .departed
                    .unpublished()
                    .map(|state| Described::new(state, store))
                    .filter(|d| shown(d, now, cri_connected))
                    .collect();
                o.submit_departures(now, &fresh);
            }
        }
        if let Some(view) = &self.outputs.live {
            view.observe(tick, now, &described, &live);
        }
        if let Some(page) = self.outputs.page.as_mut() {
            let pages = &self.outputs.pages;
            pages.advance(self.generation);
            // Rendered now only for a scrape that waits; else when one asks (`run`).
            if pages.take_wanted() {
                page.write(self.generation, now, described, hidden, t);
            }
        }
        self.departed.rendered(self.generation, Instant::now());
    }
}

/// Empties the wake-up socket (it is non-blocking).
fn drain(wake: &std::os::unix::net::UnixStream) {
    let mut buf = [0u8; 256];
    while matches!(std::io::Read::read(&mut &*wake, &mut buf), Ok(n) if n > 0) {}
}
