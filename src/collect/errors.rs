//! Read errors, counted by kind for the self-metrics and logged at most once per file per ten
//! minutes ([`ErrorLog`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cgroup::parse::ErrorKind;
use crate::cgroup::{ReadError, ReadErrorKind};

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
