//! What the live view keeps, and how each tick feeds it: a row per container or pod shown on
//! the outputs (its identity as the runtimes' `Arc`s, its ring, its limits), the ended list,
//! and every series of the containers being viewed. Fed from the same `Described` views the
//! pages and OTLP are written from: no file is read twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::detail::Watched;
use super::ended::{Ended, EndedRow};
use super::history::{Clock, Ring};
use super::series::{self, Counters};
use crate::collect::{Described, Show};
use crate::discovery::{Kind, Runtime};
use crate::metadata::{ContainerMeta, PodMeta};

/// The limits as lines: the value in force and the ticks it changed at.
#[derive(Debug, Default)]
pub struct Limits {
    /// CPUs, memory bytes, tasks (`NaN`: none).
    pub now: [f32; 3],
    /// `(tick, which, value)` of each change still in the window, and the last one before it.
    pub changes: Vec<(u64, u8, f32)>,
}

impl Limits {
    fn set(&mut self, clock: &Clock, limits: [f32; 3]) {
        let mut changed = false;
        for (i, v) in limits.into_iter().enumerate() {
            let known = self.changes.iter().any(|c| usize::from(c.1) == i);
            let same = self.now[i] == v || (self.now[i].is_nan() && v.is_nan());
            if known && same {
                continue;
            }
            self.now[i] = v;
            self.changes.push((clock.seq(), i as u8, v));
            changed = true;
        }
        if changed {
            // Of the changes before the window, only the value in force at its start matters.
            let oldest = clock.oldest();
            let mut in_force = [None; 3];
            for (j, c) in self.changes.iter().enumerate() {
                if c.0 <= oldest {
                    in_force[usize::from(c.1)] = Some(j);
                }
            }
            let mut j = 0;
            self.changes.retain(|c| {
                let keep = c.0 > oldest || in_force[usize::from(c.1)] == Some(j);
                j += 1;
                keep
            });
        }
    }
}

/// One container or pod on the outputs, or one that ended and is still listed.
#[derive(Debug)]
pub struct Row {
    pub kind: Kind,
    pub runtime: Runtime,
    pub pod_uid: Option<String>,
    /// Its current run's start.
    pub created: SystemTime,
    pub meta: Option<Arc<ContainerMeta>>,
    pub pod: Option<Arc<PodMeta>>,
    /// The tick its identity last changed (or it was first seen).
    pub ident_seq: u64,
    counters: Counters,
    pub ring: Ring,
    pub limits: Limits,
}

impl Row {
    /// On the outputs at the newest tick.
    pub fn running(&self, clock: &Clock) -> bool {
        self.ring.last() == clock.seq() && clock.seq() > 0
    }
}

/// Everything the live view shows.
pub struct Store {
    pub clock: Clock,
    pub rows: BTreeMap<String, Row>,
    pub ended: Ended,
    pub watched: Watched,
    /// Changes with every observation (a tick, or ended containers published between ticks).
    pub revision: u64,
}

impl Store {
    pub fn new(capacity: usize, ended: usize) -> Store {
        Store {
            clock: Clock::new(capacity),
            rows: BTreeMap::new(),
            ended: Ended::new(ended),
            watched: Watched::default(),
            revision: 0,
        }
    }

    /// Takes in what the outputs show: at a tick (`tick`) every running container's values;
    /// always, the final samples not listed yet. `running`: the ids the collector reads now;
    /// `viewed`: when each container's own view last asked.
    pub fn observe(
        &mut self,
        tick: bool,
        now: SystemTime,
        described: &[Described<'_>],
        running: &HashSet<&str>,
        viewed: &HashMap<String, Instant>,
    ) {
        if tick {
            self.clock.tick(series::unix(now));
            self.watched.sync(viewed, Instant::now());
        }
        let seq = self.clock.seq();
        for d in described {
            let s = d.state;
            if running.contains(s.id.as_str()) && s.show() == Show::All {
                if tick {
                    self.append(d, now);
                }
            } else if s.kind == Kind::Container {
                if let Some(row) = self.ended.run_mut(&s.id, s.created) {
                    // The runtime's word came after the final sample (a late word): the row
                    // takes the exit as it stands now, as the page and OTLP publish it then.
                    if let Some(exit) = s.exit() {
                        row.exit = Some(*exit);
                    }
                    continue;
                }
                let peak = self
                    .rows
                    .get(&s.id)
                    .and_then(|r| r.ring.max(&self.clock, 1));
                self.ended.add(EndedRow::new(d, now, peak, seq));
            }
        }
        if tick {
            // Gone from the outputs: kept while listed as ended, for its view.
            let ended = &self.ended;
            self.rows
                .retain(|id, r| r.ring.last() == seq || ended.lists(id));
        }
        self.revision += 1;
    }

    fn append(&mut self, d: &Described<'_>, now: SystemTime) {
        let s = d.state;
        let seq = self.clock.seq();
        if !self.rows.contains_key(&s.id) {
            self.rows.insert(
                s.id.clone(),
                Row {
                    kind: s.kind,
                    runtime: s.runtime,
                    pod_uid: s.pod_uid.clone(),
                    created: s.created,
                    meta: None,
                    pod: None,
                    ident_seq: seq,
                    counters: Counters::default(),
                    ring: Ring::default(),
                    limits: Limits::default(),
                },
            );
        }
        let Some(row) = self.rows.get_mut(&s.id) else {
            return;
        };
        if !d.same(&row.meta, &row.pod) || row.created != s.created {
            row.meta = d.meta.clone();
            row.pod = d.pod.clone();
            row.created = s.created;
            row.ident_seq = seq;
        }
        let (values, limits) = series::read(s, now, &mut row.counters);
        row.ring.push(&self.clock, &values);
        row.limits.set(&self.clock, limits);
        if let Some(detail) = self.watched.details.get_mut(&s.id) {
            detail.append(&self.clock, s, now);
        }
    }

    /// Bytes on the heap, as allocated (the maps' own nodes not counted).
    pub fn heap_bytes(&self) -> usize {
        let rows: usize = self
            .rows
            .iter()
            .map(|(id, r)| {
                size_of::<Row>()
                    + id.capacity()
                    + r.ring.heap_bytes()
                    + r.pod_uid.as_ref().map_or(0, String::capacity)
                    + r.limits.changes.capacity() * size_of::<(u64, u8, f32)>()
            })
            .sum();
        let details: usize = self.watched.details.values().map(|d| d.heap_bytes()).sum();
        self.clock.capacity() * size_of::<f64>() + rows + details
    }
}
