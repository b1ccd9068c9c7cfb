//! The rings: one clock of tick times shared by every container, and per container a ring of
//! `f32` values per series, indexed by the tick's sequence number, so that a container's value
//! at tick `seq` is in slot `seq % capacity` of each of its series.
//!
//! A ring is allocated at its first value, holds `series × capacity` `f32`s (40 bytes per
//! tick for the ten series of the overview), and forgets nothing but what the capacity pushes
//! out; ticks a container missed read as `NaN`.

use std::ops::RangeInclusive;

/// The tick times, oldest pushed out first.
pub struct Clock {
    capacity: usize,
    /// The newest tick's sequence number (1 for the first tick; 0 before any).
    seq: u64,
    /// Unix seconds of each kept tick, at `seq % capacity`.
    times: Box<[f64]>,
}

impl Clock {
    /// A clock keeping `capacity` ticks (at least one).
    pub fn new(capacity: usize) -> Clock {
        let capacity = capacity.max(1);
        Clock {
            capacity,
            seq: 0,
            times: vec![f64::NAN; capacity].into_boxed_slice(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The newest tick (0 before the first).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// A new tick at `at` (unix seconds): its sequence number.
    pub fn tick(&mut self, at: f64) -> u64 {
        self.seq += 1;
        self.times[self.slot(self.seq)] = at;
        self.seq
    }

    fn slot(&self, seq: u64) -> usize {
        (seq % self.capacity as u64) as usize
    }

    /// The oldest tick still kept.
    pub fn oldest(&self) -> u64 {
        self.seq.saturating_sub(self.capacity as u64 - 1).max(1)
    }

    /// Whether tick `seq` is still kept.
    pub fn keeps(&self, seq: u64) -> bool {
        seq >= self.oldest() && seq <= self.seq && seq > 0
    }

    /// The ticks after `since` that are still kept (all of them without `since`); empty before
    /// the first tick or when nothing is newer.
    pub fn after(&self, since: Option<u64>) -> RangeInclusive<u64> {
        let from = since.map_or(1, |s| s + 1).max(self.oldest());
        from..=self.seq
    }

    /// Unix seconds of tick `seq`, if kept.
    pub fn time(&self, seq: u64) -> Option<f64> {
        self.keeps(seq).then(|| self.times[self.slot(seq)])
    }
}

/// One container's values of `series` series, on the clock's ticks.
#[derive(Debug, Default)]
pub struct Ring {
    /// `series × capacity` values, series after series; empty until the first push.
    values: Box<[f32]>,
    /// The first and the newest tick pushed (0: none).
    first: u64,
    last: u64,
}

impl Ring {
    /// The values of tick `clock.seq()`, one per series. Ticks missed since the last push
    /// become `NaN`.
    pub fn push(&mut self, clock: &Clock, values: &[f32]) {
        let cap = clock.capacity();
        if self.values.is_empty() {
            self.values = vec![f32::NAN; values.len() * cap].into_boxed_slice();
            self.first = clock.seq();
        }
        let seq = clock.seq();
        if seq <= self.last {
            return;
        }
        let series = self.values.len() / cap;
        if self.last > 0 {
            // At most a whole ring of missed ticks.
            for missed in (self.last + 1).max(seq.saturating_sub(cap as u64))..seq {
                let slot = (missed % cap as u64) as usize;
                for s in 0..series {
                    self.values[s * cap + slot] = f32::NAN;
                }
            }
        }
        let slot = (seq % cap as u64) as usize;
        for (s, v) in values.iter().take(series).enumerate() {
            self.values[s * cap + slot] = *v;
        }
        self.last = seq;
    }

    /// Series `s` at tick `seq`: `NaN` when not kept or not pushed.
    pub fn get(&self, clock: &Clock, s: usize, seq: u64) -> f32 {
        let cap = clock.capacity();
        if self.values.is_empty() || seq < self.first || seq > self.last || !clock.keeps(seq) {
            return f32::NAN;
        }
        self.values
            .get(s * cap + (seq % cap as u64) as usize)
            .copied()
            .unwrap_or(f32::NAN)
    }

    /// The newest tick pushed (0: none).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// The first tick pushed (0: none).
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The highest value of series `s` kept.
    pub fn max(&self, clock: &Clock, s: usize) -> Option<f32> {
        clock
            .after(None)
            .map(|seq| self.get(clock, s, seq))
            .filter(|v| !v.is_nan())
            .reduce(f32::max)
    }

    /// Bytes on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.values.len() * size_of::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_keeps_the_last_capacity_ticks_and_nan_for_missed_ones() {
        let mut clock = Clock::new(4);
        let mut ring = Ring::default();
        assert!(clock.after(None).is_empty());
        for t in 1..=3 {
            clock.tick(t as f64);
            ring.push(&clock, &[t as f32, -(t as f32)]);
        }
        assert_eq!(ring.heap_bytes(), 2 * 4 * 4);
        assert_eq!(clock.after(None), 1..=3);
        assert_eq!(ring.get(&clock, 1, 2), -2.0);
        // Two ticks missed, then one more.
        clock.tick(4.0);
        clock.tick(5.0);
        clock.tick(6.0);
        ring.push(&clock, &[6.0, -6.0]);
        assert_eq!(clock.after(None), 3..=6);
        assert_eq!(clock.time(3), Some(3.0));
        assert_eq!(clock.time(2), None, "pushed out");
        let got: Vec<f32> = clock.after(None).map(|s| ring.get(&clock, 0, s)).collect();
        assert_eq!(got[0], 3.0);
        assert!(got[1].is_nan() && got[2].is_nan());
        assert_eq!(got[3], 6.0);
        assert_eq!(clock.after(Some(4)), 5..=6);
        assert_eq!(clock.after(Some(0)), 3..=6, "older than the ring: all kept");
        assert!(clock.after(Some(6)).is_empty());
        assert_eq!(ring.max(&clock, 0), Some(6.0));
        // A gap longer than the ring.
        for t in 7..=20 {
            clock.tick(t as f64);
        }
        ring.push(&clock, &[20.0, -20.0]);
        let got: Vec<f32> = clock.after(None).map(|s| ring.get(&clock, 0, s)).collect();
        assert!(got[..3].iter().all(|v| v.is_nan()), "{got:?}");
        assert_eq!(got[3], 20.0);
    }

    #[test]
    fn a_ring_started_late_has_nothing_before() {
        let mut clock = Clock::new(3);
        clock.tick(1.0);
        let mut ring = Ring::default();
        clock.tick(2.0);
        ring.push(&clock, &[2.0]);
        assert!(ring.get(&clock, 0, 1).is_nan());
        assert_eq!(ring.get(&clock, 0, 2), 2.0);
        assert_eq!(ring.first(), 2);
        // Capacity 1: only the latest.
        let mut clock = Clock::new(0);
        let mut ring = Ring::default();
        clock.tick(1.0);
        ring.push(&clock, &[1.0]);
        clock.tick(2.0);
        ring.push(&clock, &[2.0]);
        assert_eq!(clock.after(None), 2..=2);
        assert_eq!(ring.get(&clock, 0, 2), 2.0);
    }
}
