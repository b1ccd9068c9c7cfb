//! The bounded queue between the collector thread and the sender task, in ticks
//! (`--otlp-queue-size`; a tick may be several requests, dropped together). A full queue drops
//! its *oldest* tick: requests go out oldest first, so receivers (and backends such as
//! Prometheus remote write, which refuse out-of-order samples) see every series in time order
//! and a backlog drains as a gap-free history. Keeping only the newest tick would lose every
//! gauge reading and final sample of the backlog (and, with delta temporality, data):
//! drop-oldest loses the least.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::telemetry::{Telemetry, add, get, set};

/// One encoded request (protobuf; for HTTP already gzip-compressed when asked).
pub struct Pending {
    pub body: Bytes,
    pub points: usize,
}

/// The bounded queue shared by the collector thread (push) and the sender task (pop).
pub struct Queue {
    items: Mutex<Items>,
    cap: usize,
    pub(super) wake: Notify,
    /// A request taken by the sender and not yet delivered or given up.
    pub(super) in_flight: AtomicBool,
    telemetry: Arc<Telemetry>,
}

/// Requests waiting, each with the tick it belongs to, and how many ticks they make.
#[derive(Default)]
struct Items {
    q: VecDeque<(u64, Pending)>,
    ticks: usize,
    next_tick: u64,
}

impl Items {
    /// Takes the oldest request; a tick whose last request leaves is no longer counted.
    fn pop(&mut self) -> Option<Pending> {
        let (tick, p) = self.q.pop_front()?;
        if self.q.front().is_none_or(|(t, _)| *t != tick) {
            self.ticks -= 1;
        }
        Some(p)
    }
}

impl Queue {
    pub fn new(cap: usize, telemetry: Arc<Telemetry>) -> Queue {
        Queue {
            items: Mutex::new(Items {
                q: VecDeque::with_capacity(cap.max(1)),
                ..Items::default()
            }),
            cap: cap.max(1),
            wake: Notify::new(),
            in_flight: AtomicBool::new(false),
            telemetry,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Items> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one tick's requests. Never blocks (the lock is held for a push or a pop only).
    /// A full queue drops its oldest tick's requests.
    pub fn push(&self, tick: impl IntoIterator<Item = Pending>) {
        // Built (compressed) before the lock is taken, not while the sender waits for it.
        let tick: Vec<Pending> = tick.into_iter().collect();
        let mut dropped = 0;
        {
            let mut q = self.lock();
            if q.ticks >= self.cap
                && let Some(&(oldest, _)) = q.q.front()
            {
                while q.q.front().is_some_and(|(t, _)| *t == oldest) {
                    q.pop();
                    dropped += 1;
                }
            }
            let id = q.next_tick;
            q.next_tick += 1;
            let before = q.q.len();
            q.q.extend(tick.into_iter().map(|p| (id, p)));
            if q.q.len() > before {
                q.ticks += 1;
            }
            set(&self.telemetry.otlp_queue_length, q.ticks as u64);
        }
        if dropped > 0 {
            self.count_dropped(dropped);
        }
        self.wake.notify_one();
    }

    /// A dropped request was never delivered: it is a failed export too, so
    /// `exports_total{outcome="failure"}` says what a hanging receiver costs.
    pub(super) fn count_dropped(&self, n: u64) {
        let before = get(&self.telemetry.otlp_dropped_requests);
        add(&self.telemetry.otlp_dropped_requests, n);
        add(&self.telemetry.otlp_exports_failed, n);
        if before == 0 {
            tracing::warn!(
                "the OTLP queue is full: dropping the oldest request (the receiver is slow or \
                 down; counted in container_exporter_otlp_dropped_requests_total)"
            );
        }
    }

    /// Takes the oldest request, marking one in flight.
    pub(super) fn pop(&self) -> Option<Pending> {
        let mut q = self.lock();
        let p = q.pop();
        if p.is_some() {
            self.in_flight.store(true, Ordering::Release);
        }
        set(&self.telemetry.otlp_queue_length, q.ticks as u64);
        p
    }

    pub(super) fn is_full(&self) -> bool {
        self.lock().ticks >= self.cap
    }

    /// Requests waiting (a tick may be several).
    pub fn len(&self) -> usize {
        self.lock().q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn idle(&self) -> bool {
        self.is_empty() && !self.in_flight.load(Ordering::Acquire)
    }

    /// Waits until every pending request was sent (or failed for good), at most `deadline`:
    /// the flush at shutdown. What is still pending then is counted as dropped. Returns
    /// whether everything went.
    pub async fn flush(&self, deadline: Duration) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        self.wake.notify_one();
        while !self.idle() {
            if tokio::time::Instant::now() >= until {
                let left = self.len() + usize::from(self.in_flight.load(Ordering::Acquire));
                self.count_dropped(left as u64);
                tracing::warn!(
                    requests = left,
                    "OTLP: pending requests not delivered within the shutdown deadline of {deadline:?}"
                );
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_drops_the_oldest() {
        let t = Arc::new(Telemetry::default());
        let q = Queue::new(2, t.clone());
        for i in 0..5u8 {
            q.push([Pending {
                body: Bytes::from(vec![i]),
                points: 1,
            }]);
        }
        assert_eq!(q.len(), 2);
        assert_eq!(get(&t.otlp_dropped_requests), 3);
        assert_eq!(get(&t.otlp_exports_failed), 3, "a dropped request failed");
        assert_eq!(get(&t.otlp_queue_length), 2, "two ticks");
        assert_eq!(q.pop().unwrap().body[0], 3);
    }

    #[test]
    fn queue_bounds_ticks_and_drops_a_tick_whole() {
        let t = Arc::new(Telemetry::default());
        let q = Queue::new(2, t.clone());
        let tick = |a: u8, n: u8| {
            (0..n).map(move |i| Pending {
                body: Bytes::from(vec![a, i]),
                points: 1,
            })
        };
        q.push(tick(0, 3));
        q.push(tick(1, 2));
        assert_eq!(q.len(), 5);
        assert_eq!(get(&t.otlp_queue_length), 2, "in ticks, as the capacity");
        assert!(q.is_full());
        // The sender takes tick 0's first request; the rest of tick 0 still counts.
        assert_eq!(&q.pop().unwrap().body[..], &[0, 0]);
        assert!(q.is_full());
        q.push(tick(2, 1));
        assert_eq!(get(&t.otlp_dropped_requests), 2, "what was left of tick 0");
        let rest: Vec<Vec<u8>> = std::iter::from_fn(|| q.pop())
            .map(|p| p.body.to_vec())
            .collect();
        assert_eq!(rest, [vec![1, 0], vec![1, 1], vec![2, 0]]);
        assert!(!q.is_full());
        // A tick with nothing to send takes no place.
        q.push(tick(3, 0));
        assert_eq!(q.lock().ticks, 0);
    }
}
