//! Every series of a container someone is looking at: a container's own view shows each of
//! its data points (`metrics::emit`, the same as `/metrics`), counters as rates, from the
//! moment it was first viewed. Only the containers viewed within [`WATCH_FOR`] are followed,
//! at most [`MAX_WATCHED`] of them, so nobody watching costs nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use super::history::{Clock, Ring};
use super::series::unix;
use crate::collect::ContainerState;
use crate::metrics::{Instrument, Metric, Sink, Value};

/// How long a container stays followed after its view last asked for it.
pub const WATCH_FOR: Duration = Duration::from_secs(120);

/// Containers followed at once; the one viewed longest ago makes room.
pub const MAX_WATCHED: usize = 8;

/// Series of one container at most (interfaces and devices are bounded by the reader).
const MAX_SERIES: usize = 512;

/// One data point's series: its metric and attribute values.
#[derive(Debug)]
pub struct DetailSeries {
    pub metric: Metric,
    /// The attribute values, in the order of the metric's attributes.
    pub attrs: Vec<String>,
    /// A counter: shown per second.
    rate: bool,
    /// The counter's last value and when (unix seconds).
    last: (f64, f64),
    pub ring: Ring,
}

/// The series of one followed container.
#[derive(Debug, Default)]
pub struct Detail {
    pub series: Vec<DetailSeries>,
    /// Where the next point is expected (points come in the same order every tick).
    cursor: usize,
    at: f64,
    clock_seq: u64,
}

/// Metrics whose points are not charted: the limits (drawn as lines from the overview's
/// ring), the series the overview keeps already (with their whole history), the uptime and the
/// exit (the view says both in words).
fn charted(m: Metric) -> bool {
    use Metric as M;
    !matches!(
        m,
        M::CpuLimit
            | M::MemoryLimit
            | M::PidLimit
            | M::CpuUsage
            | M::MemoryWorkingSet
            | M::PidCount
            | M::Uptime
            | M::ExitCode
    )
}

struct Feed<'a> {
    detail: &'a mut Detail,
    clock: &'a Clock,
}

impl Sink for Feed<'_> {
    fn point(&mut self, metric: Metric, attrs: &[&str], value: Value) {
        if !charted(metric) {
            return;
        }
        let d = &mut *self.detail;
        let same = |s: &DetailSeries| {
            s.metric == metric
                && s.attrs.len() == attrs.len()
                && s.attrs.iter().zip(attrs).all(|(a, b)| a == b)
        };
        let i = match d.series.get(d.cursor) {
            Some(s) if same(s) => d.cursor,
            _ => match d.series.iter().position(same) {
                Some(i) => i,
                None if d.series.len() < MAX_SERIES => {
                    d.series.push(DetailSeries {
                        metric,
                        attrs: attrs.iter().map(|a| a.to_string()).collect(),
                        rate: metric.def().instrument == Instrument::Counter,
                        last: (f64::NAN, f64::NAN),
                        ring: Ring::default(),
                    });
                    d.series.len() - 1
                }
                None => return,
            },
        };
        d.cursor = i + 1;
        let s = &mut d.series[i];
        let v = value.as_f64();
        let shown = if s.rate {
            let (at, before) = s.last;
            let dt = d.at - at;
            s.last = (d.at, v);
            if dt > 0.0 && v >= before {
                (v - before) / dt
            } else {
                f64::NAN
            }
        } else {
            v
        };
        s.ring.push(self.clock, &[shown as f32]);
    }
}

impl Detail {
    /// Appends the container's data points of this tick.
    pub fn append(&mut self, clock: &Clock, state: &ContainerState, now: SystemTime) {
        if self.clock_seq == clock.seq() {
            return;
        }
        self.clock_seq = clock.seq();
        self.cursor = 0;
        self.at = state.sampled_at(now).map_or(f64::NAN, unix);
        state.emit(
            now,
            &mut Feed {
                detail: self,
                clock,
            },
        );
    }

    pub fn heap_bytes(&self) -> usize {
        self.series
            .iter()
            .map(|s| {
                s.ring.heap_bytes()
                    + size_of::<DetailSeries>()
                    + s.attrs.iter().map(String::len).sum::<usize>()
            })
            .sum()
    }
}

/// The containers followed, by id, with when their view last asked.
#[derive(Default)]
pub struct Watched {
    pub details: HashMap<String, Detail>,
}

impl Watched {
    /// Follows exactly the containers viewed within [`WATCH_FOR`] of `now` (newest first, at
    /// most [`MAX_WATCHED`]); the others' series are dropped.
    pub fn sync(&mut self, views: &HashMap<String, Instant>, now: Instant) {
        let mut recent: Vec<(&String, &Instant)> = views
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) < WATCH_FOR)
            .collect();
        recent.sort_by_key(|(_, at)| std::cmp::Reverse(**at));
        recent.truncate(MAX_WATCHED);
        self.details
            .retain(|id, _| recent.iter().any(|(r, _)| *r == id));
        for (id, _) in recent {
            self.details.entry(id.clone()).or_default();
        }
    }
}
