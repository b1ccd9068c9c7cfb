//! The descriptors the containers' files may hold: the open-file limit less
//! [`FD_RESERVE`](crate::host::limits::FD_RESERVE). While every container's files fit, each
//! keeps them all open. When they run short, they are spent by how often each file is read:
//! new containers keep only the files they read every tick, and the room left keeps every file
//! of as many other containers as it holds (their rare files, read once a minute, give way to
//! a new container's per-tick files). A container whose per-tick files do not fit either is
//! read by opening, reading and closing its files, with one warning, and kept open again once
//! descriptors are free. No container is ever left out for want of them. What a reader keeps
//! of its options is decided in `CgroupReader::keeps`; when the collector changes them, here.

use std::collections::HashMap;
use std::time::Duration;

use std::path::Path;

use crate::cgroup::{CgroupReader, Layout, OpenOptions};

/// A tracked container as the budget sees it (the collector's `Tracked`).
pub trait Holder {
    fn reader(&self) -> &CgroupReader;
    /// Its reader, its cgroup's path below the mounts, and whether it exited.
    fn reader_mut(&mut self) -> (&mut CgroupReader, &Path, bool);
}

/// Descriptors one container may take at most: every file of the largest plan (the hybrid
/// one), its `cgroup.procs` and its `net/dev`.
pub const MAX_FDS_PER_CONTAINER: usize = 23;

/// Descriptors one container may take at most when only the files read every tick are kept
/// open (descriptors are short): the largest plan's per-tick files (v1's `memory.failcnt`
/// among them) and `net/dev`.
pub const MAX_FDS_LEAN: usize = 14;

/// Descriptors of a `budget` left free for new containers' files read every tick, and for
/// the files the containers already tracked may come to read every tick (a quota set, a
/// network namespace found): the rare files of more containers are kept only past it.
pub fn headroom(budget: usize) -> usize {
    (MAX_FDS_LEAN * 32).min(budget / 8)
}

/// The containers' share of the process's descriptors, and how it is spent.
#[derive(Debug)]
pub(super) struct FdBudget {
    /// Descriptors the containers' files may hold.
    pub budget: usize,
    /// Descriptors they hold (exact after each tick, kept up to date in between).
    pub held: usize,
    /// Containers read by open-read-close for want of descriptors.
    pub reopening: usize,
    /// Containers whose every file is kept open (the others keep only those read every
    /// tick, or none when `reopening`).
    pub kept_all: usize,
    /// The budget warning was logged (once per shortage).
    warned: bool,
    /// Descriptors are short: not every container keeps every file open. New containers
    /// keep only the files read every tick; [`balance`](Self::balance) gives the room left
    /// to the others' files (read once a minute or on an event), container by container.
    pub lean: bool,
}

/// Containers whose rare files are opened and kept in one tick, at most (each costs about
/// ten opens at once).
const KEEP_ALL_PER_TICK: usize = 250;

impl FdBudget {
    pub fn new() -> FdBudget {
        FdBudget {
            budget: crate::host::limits::descriptor_budget(),
            held: 0,
            reopening: 0,
            kept_all: 0,
            warned: false,
            lean: false,
        }
    }

    fn headroom(&self) -> usize {
        headroom(self.budget)
    }

    /// The options of a new container's reader: every file kept open while they all fit,
    /// only those read every tick once they do not (other containers' rare files are closed
    /// to make room for them), none past the budget.
    pub fn options<T: Holder>(
        &mut self,
        limits_every: Duration,
        containers: &mut HashMap<String, Box<T>>,
        layout: &Layout,
    ) -> OpenOptions {
        if !self.lean && self.held + MAX_FDS_PER_CONTAINER > self.budget {
            self.lean = true;
            tracing::info!(
                "descriptors are short: new containers keep only the files read every tick \
                 open, the others' files read once a minute give way to them"
            );
        }
        let need = if self.lean {
            MAX_FDS_LEAN
        } else {
            MAX_FDS_PER_CONTAINER
        };
        if self.lean && self.held + need > self.budget {
            self.give_way(containers, layout, self.held + need - self.budget);
        }
        OpenOptions {
            keep_open: self.held + need <= self.budget,
            keep_rare: !self.lean,
            limits_every,
            ..OpenOptions::default()
        }
    }

    /// A new reader opened with `options` holds its descriptors now; one that could keep none
    /// is warned about.
    pub fn opened(&mut self, reader: &CgroupReader, options: &OpenOptions) {
        self.held += reader.held();
        if !options.keep_open {
            self.reopening += 1;
            self.warn();
        }
    }

    /// A reader was dropped.
    pub fn closed(&mut self, reader: &CgroupReader) {
        self.held = self.held.saturating_sub(reader.held());
    }

    /// Counts the descriptors held (net/dev opens and closes move it between ticks) and the
    /// containers in each state. Spends what the budget has left, in order of how often the
    /// files are read: first the files read every tick of containers read by
    /// open-read-close, then, past the [`headroom`](Self::headroom), every file of
    /// containers that keep only those read every tick (at most [`KEEP_ALL_PER_TICK`] a
    /// tick). When the headroom is spent, containers that keep every file close the rare
    /// ones again.
    pub fn balance<T: Holder>(
        &mut self,
        containers: &mut HashMap<String, Box<T>>,
        layout: &Layout,
    ) {
        let mut held = 0;
        let mut reopening = 0;
        for t in containers.values() {
            held += t.reader().held();
            reopening += usize::from(t.reader().reopens());
        }
        if reopening > 0 && held + MAX_FDS_LEAN <= self.budget {
            for t in containers.values_mut() {
                if held + MAX_FDS_LEAN > self.budget {
                    break;
                }
                let (reader, _, _) = t.reader_mut();
                if reader.reopens() {
                    let before = reader.held();
                    if reader.keep_open() {
                        reopening -= 1;
                    }
                    held += reader.held() - before;
                }
            }
        }
        if reopening == 0 && self.reopening > 0 {
            tracing::info!("every container's files are kept open again");
            self.warned = false;
        }
        self.held = held;
        let headroom = self.headroom();
        if self.lean && reopening == 0 {
            let mut budget = KEEP_ALL_PER_TICK;
            for t in containers.values_mut() {
                if budget == 0 || self.held + MAX_FDS_PER_CONTAINER + headroom > self.budget {
                    break;
                }
                let (reader, rel, exited) = t.reader_mut();
                if reader.keeps_rare() || exited {
                    continue;
                }
                budget -= 1;
                let before = reader.held();
                reader.keep_rare(true, layout, rel);
                reader.keep_open();
                self.held += reader.held() - before;
            }
        }
        if self.lean && self.held + headroom / 2 > self.budget {
            self.give_way(containers, layout, self.held + headroom / 2 - self.budget);
        }
        self.reopening = reopening;
        self.kept_all = containers
            .values()
            .filter(|t| t.reader().keeps_rare() && !t.reader().reopens())
            .count();
    }

    /// Closes the rare files of containers that keep every file open until `need`
    /// descriptors are free (or none keeps them any more): files read every tick come first.
    fn give_way<T: Holder>(
        &mut self,
        containers: &mut HashMap<String, Box<T>>,
        layout: &Layout,
        need: usize,
    ) {
        let mut freed = 0;
        for t in containers.values_mut() {
            if freed >= need {
                break;
            }
            let (reader, rel, _) = t.reader_mut();
            if reader.keeps_rare() {
                freed += reader.keep_rare(false, layout, rel);
            }
        }
        self.held = self.held.saturating_sub(freed);
        if freed > 0 {
            tracing::debug!(
                freed,
                "rare files closed to make room for files read every tick"
            );
        }
    }

    fn warn(&mut self) {
        if self.warned {
            return;
        }
        self.warned = true;
        let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(0, |(soft, _)| soft);
        tracing::warn!(
            "the open-file limit ({limit}) leaves room to keep the files of about {} containers \
             open: the others are read by opening, reading and closing their files every tick \
             (slower, nothing is lost; container_exporter_containers_reopened counts them). \
             Raise the limit (ulimit -n, LimitNOFILE=, docker run --ulimit nofile=…)",
            self.budget / MAX_FDS_LEAN
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::LayoutKind;
    use crate::cgroup::plan::{self, Cadence};

    /// The descriptor bounds are those of the largest plan: what a reader can keep open (every
    /// row; v1's tick-based CPU rows only without the unified `cpu.stat`), and what it keeps
    /// when lean (the rows that can be read every tick, `cgroup.events` being watched).
    #[test]
    fn descriptor_bounds_cover_every_plan() {
        for kind in [LayoutKind::V2, LayoutKind::Hybrid] {
            let rows: Vec<_> = plan::files(kind).collect();
            let exact = rows.iter().any(|f| f.exact_cpu());
            let kept = |lean: bool| {
                rows.iter()
                    .filter(|f| !(exact && f.cpu_fallback))
                    .filter(|f| !lean || !matches!(f.cadence, Cadence::Limit | Cadence::Events))
                    .count()
            };
            assert!(
                kept(false) + 2 <= MAX_FDS_PER_CONTAINER,
                "{kind:?}: {}",
                kept(false)
            );
            assert!(kept(true) < MAX_FDS_LEAN, "{kind:?}: {}", kept(true));
        }
    }
}
