//! What the outputs read of each container: its state ([`ContainerState`]: identity, the last
//! sample and the CPU time of the one before, its disk figures and exit, what it shows), kept
//! after the container is gone,
//! and the same with what its runtime says ([`Described`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::cgroup::CgroupSample;
use crate::discovery::{Found, Kind, Runtime};
use crate::disk::DiskSample;
use crate::exit::Exit;
use crate::metadata::{ContainerMeta, Metadata, PodMeta};
use crate::metrics::{self, Context, Metric, Sink};

/// What is known about one container, without its open files: enough to emit its data
/// points, also after it is gone.
#[derive(Debug, Clone)]
pub struct ContainerState {
    /// The container id, or a pod's uid.
    pub id: String,
    /// A container, or a Kubernetes pod's own cgroup (the whole pod).
    pub kind: Kind,
    pub runtime: Runtime,
    pub pod_uid: Option<String>,
    /// Path of the cgroup relative to the hierarchy mounts.
    pub rel: PathBuf,
    /// When the cgroup directory was created: the counters' start time.
    pub created: SystemTime,
    pub(super) current: CgroupSample,
    pub(super) current_at: Option<Instant>,
    /// The CPU time (ns) of the sample before `current`, for the usage rate: all that the
    /// outputs need of it (a whole sample per container would be 1 KB of 1,000 kept for it).
    pub(super) previous_cpu_ns: Option<u64>,
    pub(super) previous_at: Option<Instant>,
    /// The latest disk figures (writable layer, logs, a pod's ephemeral storage) from the disk
    /// thread, attached at each tick; `None` before the first walk or with disk usage off.
    pub disk: Option<Arc<DiskSample>>,
    /// Why it ended (a final sample that knows; see [`crate::departures`]).
    exit: Option<Exit>,
    show: Show,
}

/// What a state shows on the outputs. A container's final sample shows everything, unless a
/// newer run of the same container id is shown (its other series would have the same labels):
/// then only its exit series, told apart by its restart count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Show {
    #[default]
    All,
    ExitOnly,
    Nothing,
}

impl ContainerState {
    /// The latest sample, if one was read.
    pub fn sample(&self) -> Option<&CgroupSample> {
        self.current_at.map(|_| &self.current)
    }

    /// Why it ended, when this is a final sample that knows.
    pub fn exit(&self) -> Option<&Exit> {
        self.exit.as_ref()
    }

    pub fn set_exit(&mut self, exit: Option<Exit>) {
        self.exit = exit;
    }

    pub fn show(&self) -> Show {
        self.show
    }

    pub fn set_show(&mut self, show: Show) {
        self.show = show;
    }

    /// Whether the data points of `m` are shown.
    pub fn shows(&self, m: Metric) -> bool {
        match self.show {
            Show::All => true,
            Show::ExitOnly => m == Metric::ExitCode,
            Show::Nothing => false,
        }
    }

    /// When the latest sample was read, on the clock of `now` (taken at the same moment).
    pub fn sampled_at(&self, now: SystemTime) -> Option<SystemTime> {
        let at = self.current_at?;
        Some(now.checked_sub(at.elapsed()).unwrap_or(now))
    }

    /// The latest sample's data points (nothing before the first read).
    pub fn emit(&self, now: SystemTime, sink: &mut dyn Sink) {
        match self.show {
            Show::All => {
                if let Some(ctx) = self.context(now) {
                    metrics::emit(&self.current, &ctx, sink);
                }
            }
            Show::ExitOnly => self.emit_metric(Metric::ExitCode, now, sink),
            Show::Nothing => {}
        }
    }

    /// The latest sample's data points of one metric.
    pub fn emit_metric(&self, m: Metric, now: SystemTime, sink: &mut dyn Sink) {
        if self.shows(m)
            && let Some(ctx) = self.context(now)
        {
            metrics::emit_metric(m, &self.current, &ctx, sink);
        }
    }

    fn context(&self, now: SystemTime) -> Option<Context<'_>> {
        let at = self.current_at?;
        let previous_cpu = self
            .previous_at
            .zip(self.previous_cpu_ns)
            .map(|(p, ns)| (ns, at.duration_since(p).as_secs_f64()));
        let uptime = now
            .duration_since(self.created)
            .ok()
            .map(|d| d.as_secs_f64());
        Some(Context {
            previous_cpu,
            uptime,
            disk: self.disk.as_deref(),
            exit: self.exit.as_ref(),
        })
    }

    /// A state made from given samples, `interval` apart (for benchmarks and tests of the
    /// outputs).
    pub fn with_samples(
        f: Found,
        created: SystemTime,
        previous: CgroupSample,
        current: CgroupSample,
        interval: Duration,
    ) -> ContainerState {
        let now = Instant::now();
        ContainerState {
            id: f.id,
            kind: f.kind,
            runtime: f.runtime,
            pod_uid: f.pod_uid,
            rel: f.rel,
            created,
            current,
            current_at: Some(now),
            previous_cpu_ns: previous.cpu.usage_ns,
            previous_at: now.checked_sub(interval),
            disk: None,
            exit: None,
            show: Show::All,
        }
    }

    pub(super) fn new(f: Found, created: (i64, i64)) -> ContainerState {
        let (secs, nanos) = created;
        let created = if secs >= 0 {
            SystemTime::UNIX_EPOCH + Duration::new(secs as u64, nanos.clamp(0, 999_999_999) as u32)
        } else {
            SystemTime::now()
        };
        let empty = CgroupSample::default;
        ContainerState {
            current_at: None,
            previous_at: None,
            ..ContainerState::with_samples(f, created, empty(), empty(), Duration::ZERO)
        }
    }
}

/// A container or pod as the outputs see it: its state, and what its runtime says about it
/// (both `Arc`s change identity whenever their content changes, so outputs cache what they
/// derive from them by pointer).
#[derive(Clone)]
pub struct Described<'a> {
    pub state: &'a ContainerState,
    /// The container's metadata (Docker, Podman or CRI), when a source knows it.
    pub meta: Option<Arc<ContainerMeta>>,
    /// Its pod's metadata (for a pod, or a container in one), when a CRI source knows it.
    pub pod: Option<Arc<PodMeta>>,
}

impl<'a> Described<'a> {
    /// `state` with what the metadata sources know of it (and of its pod).
    pub fn new(state: &'a ContainerState, metadata: &Metadata) -> Described<'a> {
        let (meta, pod) = match state.kind {
            Kind::Container => (
                metadata.container(state.runtime, &state.id),
                state.pod_uid.as_deref().and_then(|u| metadata.pod(u)),
            ),
            Kind::Pod => (None, metadata.pod(&state.id)),
        };
        Described { state, meta, pod }
    }

    /// Whether `meta` and `pod` are the very ones this was described with.
    pub fn same(&self, meta: &Option<Arc<ContainerMeta>>, pod: &Option<Arc<PodMeta>>) -> bool {
        fn same<T>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
            a.as_ref().map(Arc::as_ptr) == b.as_ref().map(Arc::as_ptr)
        }
        same(&self.meta, meta) && same(&self.pod, pod)
    }
}
