//! One read of a container's files, each on its row's [`Cadence`]: a file a read may skip
//! (limits, re-read every [`OpenOptions::limits_every`](super::reader::OpenOptions) or after
//! [`CgroupReader::refresh_limits`]; v1 `cpu.stat` without a quota, v1 `memory.failcnt` without
//! a memory limit; a watched `cgroup.events`)
//! stands in with its last content, parsed again in its place, so no code but its plan row
//! knows its fields. "Gone" is decided here, once: ENODEV on a kept-open file or ENOENT on open
//! means the cgroup was removed, normal life for a container and not an error.

use std::path::PathBuf;
use std::time::Instant;

use nix::errno::Errno;

use super::error::{Gone, ReadError, ReadErrorKind};
use super::net::ProcRoot;
use super::place::doing;
use super::plan::{self, Cadence, Partial};
use super::reader::CgroupReader;
use super::sample::CgroupSample;
use crate::host::fs::{gone_errno, pread_all};
use crate::progress;

/// The longest content kept to stand in for a file between its reads. Limits are a number or
/// two, v1 `cpu.stat` five counters (under 200 bytes); a longer file (a hostile one, or a
/// kernel that adds many keys) is read at every read instead.
const MAX_KEPT: usize = 512;

impl CgroupReader {
    /// Re-reads every file due into `out` (cleared first); a file not due stands in with its
    /// content as last read. Problems with single files are passed to `on_error` (once, when
    /// read) and cost only their own values.
    pub fn read(
        &mut self,
        proc_root: &ProcRoot,
        buf: &mut Vec<u8>,
        out: &mut CgroupSample,
        on_error: &mut dyn FnMut(ReadError),
    ) -> Result<(), Gone> {
        out.clear();
        let _idle = progress::IdleOnDrop;
        let mut partial = Partial::default();
        let now = Instant::now();
        let limits_due = self.limits_due.is_none_or(|due| now >= due);
        let ticks = self.ticks;
        let events_due = !ticks.events_watched || self.events_stale;
        let mut read_blkio = false;
        // Where file `i`'s kept content starts in `self.kept`.
        let mut at = 0;
        let mut i = 0;
        while i < self.files.len() {
            let f = &self.files[i];
            let def = f.def;
            let due = match def.cadence {
                Cadence::Events => events_due,
                _ => limits_due || ticks.per_tick(def),
            };
            // A file never read (or too long to keep) is read whenever it comes.
            if !due && (f.kept.is_some() || !def.cadence.kept()) {
                if let Some(len) = f.kept {
                    let end = at + usize::from(len);
                    // Its problems were reported when it was read.
                    let _ = (def.parse)(&self.kept[at..end], out, &mut partial);
                    at = end;
                }
                i += 1;
                continue;
            }
            read_blkio |= def.cadence == Cadence::OnceCounting;
            self.slot.doing(doing::READ, f.row);
            let result = match &f.file {
                Some(file) => pread_all(file, buf),
                None => match self.reopen(i) {
                    Ok(Some(file)) => pread_all(&file, buf),
                    // Planned unseen, and absent: this kernel does not offer it.
                    Ok(None) => {
                        self.files.remove(i);
                        continue;
                    }
                    Err(e) => Err(e),
                },
            };
            let n = match result {
                Ok(n) => n,
                Err(e)
                    if e.raw_os_error()
                        .is_some_and(|c| gone_errno(Errno::from_raw(c))) =>
                {
                    return Err(Gone);
                }
                Err(e) => {
                    on_error(ReadError {
                        path: self.dir.join(def.name),
                        kind: ReadErrorKind::Io(e),
                    });
                    // Absent until read again, as if it had been empty.
                    at = self.keep(i, at, &[]);
                    i += 1;
                    continue;
                }
            };
            if let Err(e) = (def.parse)(&buf[..n], out, &mut partial) {
                on_error(ReadError {
                    path: self.dir.join(def.name),
                    kind: ReadErrorKind::Parse(e),
                });
            }
            at = self.keep(i, at, &buf[..n]);
            i += 1;
        }
        if events_due {
            self.events_stale = false;
        }
        plan::finish(out, partial);
        if read_blkio {
            self.ticks.io_seen = !out.io.is_empty();
        }
        if limits_due {
            self.ticks.quota = out.cpu.quota_us.is_some();
            self.ticks.memory_limit = out.memory.limit.is_some();
            self.schedule_limits(now);
        }
        let keep_open = self.options.keep_open;
        if let Err(kind) = self.net.read(proc_root, buf, out, &self.slot, keep_open) {
            let path = PathBuf::from(format!("net/dev of {}", self.dir.display()));
            on_error(ReadError { path, kind });
        }
        Ok(())
    }

    /// Keeps `content` as file `i`'s last content, at `at` in `self.kept`, if its cadence
    /// lets a read skip it; returns where the next file's kept content starts.
    fn keep(&mut self, i: usize, at: usize, content: &[u8]) -> usize {
        let f = &mut self.files[i];
        if !f.def.cadence.kept() {
            return at;
        }
        let old = f.kept.map_or(0, usize::from);
        let new = if content.len() <= MAX_KEPT {
            f.kept = Some(content.len() as u16);
            content
        } else {
            f.kept = None;
            &[]
        };
        if new.len() == old {
            self.kept[at..at + old].copy_from_slice(new);
        } else {
            // Rare (a limit changed its length): the buffer is rebuilt at its exact size.
            let mut kept = Vec::with_capacity(self.kept.len() - old + new.len());
            kept.extend_from_slice(&self.kept[..at]);
            kept.extend_from_slice(new);
            kept.extend_from_slice(&self.kept[at + old..]);
            self.kept = kept.into_boxed_slice();
        }
        at + new.len()
    }

    /// After a read of the limits: when to read them next.
    fn schedule_limits(&mut self, now: Instant) {
        // Runtimes write a new container's limits just after creating its cgroup: what the
        // first reads find is not its limits yet. Read them at every read for a few seconds,
        // then at their cadence.
        if now.duration_since(self.opened) < crate::discovery::RETRY_AFTER_DISCOVERY {
            self.limits_due = None;
            return;
        }
        let every = self.options.limits_every;
        // runc writes them only once `runc init`, already in the cgroup, has set the container
        // up (its procReady/procHooks step): on a busy host that is later than the seconds
        // above. So a container younger than a period trusts its limits no longer than it has
        // existed (read again at about 10, 20, 40 s): limits written late show within about
        // twice their delay, not a whole period later.
        let age = now.duration_since(self.opened);
        if age < every {
            self.limits_due = Some(now + age);
            return;
        }
        // The first period is cut at a point set by the inode, so containers found together
        // do not all read their limits on the same tick ever after.
        let first = !self.staggered && !every.is_zero();
        self.staggered = true;
        let wait = if first {
            every.mul_f64((self.inode % 997) as f64 / 997.0)
        } else {
            every
        };
        self.limits_due = Some(now + wait);
    }
}
