//! The descriptors the containers' files may hold (the open-file limit less
//! [`FD_RESERVE`](crate::host::limits::FD_RESERVE) for everything else), and what a reader may
//! keep open within them. When they run short, every reader keeps only the files it reads
//! every tick (lean); a container that still does not fit is read by opening, reading and
//! closing its files, with one warning, and kept open again once descriptors are free. No
//! container is ever left out for want of them.
//!
//! What a reader keeps of the options it is given is decided in `cgroup::open`; when the
//! collector changes them, here.

use std::collections::HashMap;
use std::time::Duration;

use super::tracked::Tracked;
use crate::cgroup::{CgroupReader, Layout, OpenOptions};

/// Descriptors one container may take at most: every file of the largest plan (the hybrid
/// one), its `cgroup.procs` and its `net/dev`.
pub const MAX_FDS_PER_CONTAINER: usize = 23;

/// Descriptors one container may take at most when only the files read every tick are kept
/// open (descriptors are short): the largest plan's per-tick files (v1's `memory.failcnt`
/// among them) and `net/dev`.
pub const MAX_FDS_LEAN: usize = 14;

/// The containers' share of the process's descriptors, and how it is spent.
#[derive(Debug)]
pub(super) struct FdBudget {
    /// Descriptors the containers' files may hold.
    pub budget: usize,
    /// Descriptors they hold (exact after each tick, kept up to date in between).
    pub held: usize,
    /// Containers read by open-read-close for want of descriptors.
    pub reopening: usize,
    /// The budget warning was logged (once per shortage).
    warned: bool,
    /// Descriptors are short: only the files read every tick are kept open (the rest, read
    /// once a minute or on an event, are opened when read), so more containers fit.
    pub lean: bool,
}

impl FdBudget {
    pub fn new() -> FdBudget {
        FdBudget {
            budget: crate::host::limits::descriptor_budget(),
            held: 0,
            reopening: 0,
            warned: false,
            lean: false,
        }
    }

    /// The options of a new container's reader: every file kept open while they all fit,
    /// only those read every tick once they do not (every container goes lean then), none
    /// past the budget.
    pub fn options(
        &mut self,
        limits_every: Duration,
        containers: &mut HashMap<String, Tracked>,
        layout: &Layout,
    ) -> OpenOptions {
        if !self.lean && self.held + MAX_FDS_PER_CONTAINER > self.budget {
            self.go_lean(containers, layout);
        }
        let need = if self.lean {
            MAX_FDS_LEAN
        } else {
            MAX_FDS_PER_CONTAINER
        };
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
    /// containers read by open-read-close; gives kept descriptors back to those when the
    /// budget has room again.
    pub fn balance(&mut self, containers: &mut HashMap<String, Tracked>) {
        let mut held = 0;
        let mut reopening = 0;
        for t in containers.values() {
            held += t.reader.held();
            reopening += usize::from(t.reader.reopens());
        }
        if reopening > 0 && held + MAX_FDS_LEAN <= self.budget {
            for t in containers.values_mut() {
                if held + MAX_FDS_LEAN > self.budget {
                    break;
                }
                if t.reader.reopens() {
                    let before = t.reader.held();
                    if t.reader.keep_open() {
                        reopening -= 1;
                    }
                    held += t.reader.held() - before;
                }
            }
        }
        if reopening == 0 && self.reopening > 0 {
            tracing::info!("every container's files are kept open again");
            self.warned = false;
        }
        self.held = held;
        self.reopening = reopening;
    }

    /// Keeps only the files read every tick open, for every container from now on: when not
    /// all containers fit with all their files, more of them fit that way, and the few files
    /// read once a minute cost little to open.
    fn go_lean(&mut self, containers: &mut HashMap<String, Tracked>, layout: &Layout) {
        self.lean = true;
        let mut freed = 0;
        for t in containers.values_mut() {
            freed += t.reader.keep_rare(false, layout, &t.state.rel);
        }
        self.held = self.held.saturating_sub(freed);
        tracing::info!(
            freed,
            "descriptors are short: only the files read every tick are kept open"
        );
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
                    .filter(|f| match f.cadence {
                        Cadence::Tick
                        | Cadence::UnderQuota
                        | Cadence::UnderMemoryLimit
                        | Cadence::OnceCounting => true,
                        Cadence::Limit | Cadence::Events => !lean,
                    })
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
