//! A tracked container: its reader, its state, and what its reads said about its processes
//! (whether it ran, whether it exited), which decide when a sample is its final one; and the
//! read errors, counted by kind and logged at most once per file per ten minutes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::state::ContainerState;
use crate::cgroup::parse::ErrorKind;
use crate::cgroup::{CgroupReader, Gone, Layout, ProcRoot, ReadError, ReadErrorKind};
use crate::discovery::{self, Found};

/// A container being read every tick.
#[derive(Debug)]
pub(super) struct Tracked {
    pub state: ContainerState,
    pub reader: CgroupReader,
    /// It ran and its last process left (`populated 0`): its final sample was taken; it is
    /// no longer read or shown, until it has processes again or its cgroup goes.
    pub exited: bool,
    /// `cgroup.events` said `populated 1` at some read.
    seen_running: bool,
    /// Until when to retry hierarchies whose directory did not exist yet at open.
    retry_until: Option<Instant>,
}

impl Tracked {
    /// Reads the container: on success the new sample becomes current and the old one
    /// previous; when it is gone, the last complete sample stays current.
    pub fn read(
        &mut self,
        proc_root: &ProcRoot,
        buf: &mut Vec<u8>,
        errors: &mut Vec<ReadError>,
        counts: &mut ReadErrorCounts,
    ) -> Result<(), Gone> {
        let s = &mut self.state;
        std::mem::swap(&mut s.current, &mut s.previous);
        s.previous_at = s.current_at;
        match self.reader.read(proc_root, buf, &mut s.current, &mut |e| {
            counts.count(&e);
            errors.push(e);
        }) {
            Ok(()) => {
                s.current_at = Some(Instant::now());
                counts.dropped_devices += u64::from(s.current.io_dropped);
                counts.dropped_interfaces += u64::from(s.current.net_dropped);
                Ok(())
            }
            Err(Gone) => {
                // The partial read is dropped; the last complete sample is the final one.
                std::mem::swap(&mut s.current, &mut s.previous);
                s.current_at = s.previous_at;
                s.previous_at = None;
                Err(Gone)
            }
        }
    }

    /// It has run: seen populated, or it has used CPU. A cgroup made but never entered has
    /// no final sample to give. Tasks counted in the `pids` controller say so only on pure
    /// v1: where `cgroup.events` is read, a runtime may have attached the process to the v1
    /// controllers and not yet to the unified hierarchy (whose `cpu.stat` is the CPU read
    /// there), and `populated 0` then means "not started yet", not "exited".
    pub fn has_run(&self) -> bool {
        let s = &self.state.current;
        self.seen_running
            || s.cpu.usage_ns.is_some_and(|u| u > 0)
            || (s.populated.is_none() && s.pids.current.is_some_and(|p| p > 0))
    }

    /// Opens the files of hierarchies whose directory was missing at discovery, for a few
    /// seconds after it.
    pub fn retry_missing(&mut self, layout: &Layout, now: Instant) {
        if let Some(until) = self.retry_until {
            match self.reader.retry_missing(layout, &self.state.rel) {
                Ok(true) if now < until => {}
                Ok(true) => {
                    self.retry_until = None;
                    // Absent from a hierarchy can be a runtime's choice; something else in
                    // the directory's place never is, and its values would be missing unsaid.
                    let odd = self.reader.not_directories(layout, &self.state.rel);
                    if !odd.is_empty() {
                        tracing::warn!(
                            id = %self.state.id,
                            paths = ?odd,
                            "not a directory where the container's cgroup directory should be: \
                             the values of those hierarchies are not reported for it"
                        );
                    }
                }
                _ => self.retry_until = None,
            }
        }
    }

    /// Applies what the latest read says about the container's processes. Returns true when
    /// that read is its final sample: it ran, and now no process is left.
    pub fn observe(&mut self) -> bool {
        match self.state.current.populated {
            Some(true) => {
                self.seen_running = true;
                self.exited = false;
                false
            }
            Some(false) if !self.exited && self.has_run() => {
                self.exited = true;
                self.reader.close_net();
                true
            }
            _ => false,
        }
    }

    /// Shown on the outputs: running, or not known not to be (v1 has no `populated`). A
    /// container created but not yet entered is tracked and read, but not shown.
    pub fn shown(&self) -> bool {
        !self.exited && self.state.current.populated != Some(false)
    }

    pub fn new(f: Found, reader: CgroupReader) -> Tracked {
        let state = ContainerState::new(f, reader.created);
        Tracked {
            state,
            reader,
            exited: false,
            seen_running: false,
            retry_until: Some(Instant::now() + discovery::RETRY_AFTER_DISCOVERY),
        }
    }
}

/// Logs problems with files at most once per file per [`ErrorLog::EVERY`]: the first one at
/// once, later ones with how many were left out. A file that stays broken does not log every
/// tick, and every broken file gets its line (counters on the page count every error).
#[derive(Default)]
pub struct ErrorLog {
    /// File → when it was last logged, and errors left out since.
    logged: HashMap<PathBuf, (Instant, u64)>,
}

impl ErrorLog {
    pub const EVERY: Duration = Duration::from_secs(600);
    /// Files remembered at most; beyond, the oldest entries go (the next error of a file
    /// forgotten is logged again, which is harmless).
    const MAX: usize = 8192;

    /// Whether to log this error now at warning level, and how many errors of the same file
    /// were left out since its last line.
    pub fn admit(&mut self, file: &Path, now: Instant) -> Option<u64> {
        if let Some((at, left_out)) = self.logged.get_mut(file) {
            if now.duration_since(*at) < Self::EVERY {
                *left_out += 1;
                return None;
            }
            let n = std::mem::take(left_out);
            *at = now;
            return Some(n);
        }
        if self.logged.len() >= Self::MAX {
            self.logged
                .retain(|_, (at, _)| now.duration_since(*at) < Self::EVERY);
            if self.logged.len() >= Self::MAX {
                self.logged.clear();
            }
        }
        self.logged.insert(file.to_path_buf(), (now, 0));
        Some(0)
    }
}

/// Counts of what went wrong while reading, by kind.
#[derive(Debug, Default, Clone)]
pub struct ReadErrorCounts {
    pub io: u64,
    pub malformed: u64,
    pub truncated: u64,
    pub open: u64,
    /// Block devices and network interfaces left out of samples past the per-container caps
    /// (summed over reads: a container with 300 devices adds 44 each tick).
    pub dropped_devices: u64,
    pub dropped_interfaces: u64,
}

impl ReadErrorCounts {
    /// Counts one read error by its kind.
    pub fn count(&mut self, e: &ReadError) {
        match &e.kind {
            ReadErrorKind::Io(_) => self.io += 1,
            ReadErrorKind::Parse(p) if p.kind == ErrorKind::Truncated => self.truncated += 1,
            ReadErrorKind::Parse(_) => self.malformed += 1,
        }
    }
}
