//! The end of a container's life, in one place: its final sample (taken by the collector the
//! moment its last process leaves, see [`crate::collect`]) is kept on the outputs until it has
//! been delivered, and the runtimes' names for it are kept as long as that can take.
//!
//! A departed container leaves the outputs once a Prometheus page holding it was served (or,
//! with the page off, once it was in one collection), but never before it went out in one
//! OTLP request when OTLP is on; nobody coming for it within `--exited-retention` lets it go
//! anyway. The metadata sources keep a stopped container's names for
//! [`runtime_removal_delay`], which covers that whole wait.

use std::time::{Duration, Instant};

use crate::collect::ContainerState;

/// How long a runtime's names of a stopped container are kept: the final sample can wait for
/// a scrape for `exited_retention`, and is taken up to an interval after the exit.
pub fn runtime_removal_delay(exited_retention: Duration, interval: Duration) -> Duration {
    exited_retention + interval * 2
}

/// A container that departed, waiting to be delivered.
struct Departure {
    state: ContainerState,
    at: Instant,
    /// The first page generation (tick) it was rendered in.
    rendered_in: Option<u64>,
}

/// The departed containers still shown on the outputs.
pub struct Departures {
    list: Vec<Departure>,
    retention: Duration,
    /// The Prometheus page is served (else a tick's collection counts as delivery).
    serving: bool,
    /// OTLP is on: every final sample goes out in at least one request.
    otlp: bool,
}

impl Departures {
    pub fn new(retention: Duration, serving: bool, otlp: bool) -> Departures {
        Departures {
            list: Vec::new(),
            retention,
            serving,
            otlp,
        }
    }

    /// A final sample. A container departs once per cgroup; a quick restart under the same id
    /// keeps only the newest final sample (one series per label set).
    pub fn add(&mut self, state: ContainerState) {
        self.list.retain(|d| d.state.id != state.id);
        self.list.push(Departure {
            state,
            at: Instant::now(),
            rendered_in: None,
        });
    }

    /// Before a tick's outputs: drops what was delivered (`served`: the newest page generation
    /// a scrape has served) or waited too long.
    pub fn expire(&mut self, served: u64) {
        let (serving, otlp, retention) = (self.serving, self.otlp, self.retention);
        self.list.retain(|d| match d.rendered_in {
            Some(g) if !serving || g <= served => false,
            None if otlp => true,
            _ => d.at.elapsed() < retention,
        });
    }

    /// After a tick's outputs: everything held was in page (and request) `generation`.
    pub fn rendered(&mut self, generation: u64) {
        for d in &mut self.list {
            d.rendered_in.get_or_insert(generation);
        }
    }

    /// The final samples to show.
    pub fn states(&self) -> impl Iterator<Item = &ContainerState> {
        self.list.iter().map(|d| &d.state)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}
