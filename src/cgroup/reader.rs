//! Reads one container's cgroup files into a [`CgroupSample`], at close to the cost of the
//! syscalls.
//!
//! Every file the layout offers is opened once ([`super::open`]), relative to the container's
//! directory in its hierarchy, when the container is discovered; each tick re-reads it with
//! `pread` at offset 0 (cgroupfs regenerates the content on every read from offset 0) into
//! one buffer shared by all containers, then parses it in place by key. A file that does
//! not exist for this container (controller not enabled, older kernel) is simply not read,
//! so its values stay absent. The network counters come from [`super::net`].
//!
//! "Gone" is decided here, once: ENODEV on a kept-open file or ENOENT on open means the
//! cgroup was removed, which is normal life for a container and not an error.
//!
//! Each file is read on its row's [`Cadence`]: limits and the settings only the cAdvisor page
//! shows almost never change, so they are re-read only every [`OpenOptions::limits_every`]
//! (and at once after [`CgroupReader::refresh_limits`], which a runtime's `update` event
//! triggers); so is v1 `cpu.stat` while the container has no CPU quota (its throttling
//! counters only move under one). That spares a quarter of the reads on a v1 or hybrid host.
//! Between two reads of such a file, its last content is parsed again in its place, so no
//! code but its plan row knows its fields.

use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::stat::fstat;
use std::os::fd::AsFd;

use super::error::{Gone, OpenError, ReadError, ReadErrorKind};
use super::layout::Layout;
use super::net::{NetReader, NetSource, ProcRoot};
use super::open::{OpenFiles, OpenOptions, TickSet, open_dir};
use super::place::{ReaderPlace, doing};
use super::plan::{self, Cadence, Hier, Partial};
use super::sample::CgroupSample;
use crate::host::fs::{gone_errno, pread_all};
use crate::progress;

/// The longest content kept to stand in for a file between its reads. Limits are a number or
/// two, v1 `cpu.stat` five counters (under 200 bytes); a longer file (a hostile one, or a
/// kernel that adds many keys) is read at every read instead.
const MAX_KEPT: usize = 512;

/// The open files of one container, ready to be re-read each tick.
#[derive(Debug)]
pub struct CgroupReader {
    open: OpenFiles,
    net: NetReader,
    /// The last content of each file a read may skip (`Planned::kept` long each, one after
    /// the other in the order of the files), parsed again in its place when skipped, so that
    /// no code but the plan row knows their fields. 50 bytes on v2, 170 on hybrid, where a
    /// copy of those fields made the reader 200 bytes larger (536 instead of 336). Measured
    /// (release, 2 shared cores): parsing them again costs 0.24 µs per read on v2 (7 files)
    /// and 0.6 µs on hybrid (9), against 10-15 ns for copying fields; skipping a file saves a
    /// `pread` of 1 µs or more.
    kept: Box<[u8]>,
    /// When the limits are read again; `None`: at the next read.
    limits_due: Option<Instant>,
    /// The first period between limit reads was cut short already.
    staggered: bool,
    /// Which files are read every tick (the others with the limits, or on an event).
    ticks: TickSet,
    /// `cgroup.events` changed, or may have: read it at the next read.
    events_stale: bool,
    /// The container's directory under the discovery root, for error messages.
    dir: PathBuf,
    /// Inode of the container's directory in the discovery hierarchy: its identity.
    pub inode: u64,
    /// When the cgroup directory was created (kernfs sets its change time then), in
    /// seconds and nanoseconds since the epoch.
    pub created: (i64, i64),
    /// When it was opened (the limits are read at every read for a few seconds after).
    opened: Instant,
    /// Names what it is reading when a read does not return ([`progress`]).
    slot: progress::Slot,
}

impl CgroupReader {
    /// Opens every file the layout offers for the container at `rel` (a path relative to
    /// each hierarchy's mount, like `docker/<id>`), kept open, limits read at every read. A
    /// missing directory in the discovery hierarchy means the container is gone.
    pub fn open(layout: &Layout, rel: &Path) -> Result<CgroupReader, OpenError> {
        CgroupReader::open_with(layout, rel, OpenOptions::default())
    }

    /// [`open`](Self::open) with the given descriptor and limit policy, and plan.
    pub fn open_with(
        layout: &Layout,
        rel: &Path,
        options: OpenOptions,
    ) -> Result<CgroupReader, OpenError> {
        let primary = layout.discovery_root();
        let dir = primary.join(rel);
        let _idle = progress::IdleOnDrop;
        progress::doing_path("opening", &dir);
        let slot = ReaderPlace::slot(layout, options.plan, rel);
        let dir_file = match open_dir(primary, rel) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(OpenError::Gone),
            Err(e) => {
                return Err(OpenError::Io {
                    path: dir,
                    error: e,
                });
            }
        };
        let st = fstat(dir_file.as_fd()).map_err(|e| OpenError::Io {
            path: dir.clone(),
            error: e.into(),
        })?;
        let procs_dir = layout.unified.as_deref().unwrap_or(primary).join(rel);
        let mut reader = CgroupReader {
            open: OpenFiles::new(options, layout.kind),
            net: NetReader::new(&procs_dir),
            kept: Box::default(),
            limits_due: None,
            staggered: false,
            ticks: TickSet::default(),
            events_stale: true,
            dir,
            inode: st.st_ino,
            created: (st.st_ctime, st.st_ctime_nsec),
            opened: Instant::now(),
            slot,
        };
        reader
            .open
            .open_hierarchies(layout, rel, &Hier::ALL, reader.ticks, &reader.slot)?;
        reader.net.open_procs(reader.open.keeps_rare());
        Ok(reader)
    }

    /// Where this cgroup's network counters come from ([`NetSource::Own`] unless set).
    pub fn with_net_source(mut self, source: NetSource) -> CgroupReader {
        self.net.set_source(source);
        self
    }

    /// Runtimes create a container's directory in each hierarchy one after the other, so a
    /// container seen the instant its first directory appears may lack the others for a
    /// moment. This opens the files of hierarchies that were missing; it returns whether any
    /// are still missing.
    pub fn retry_missing(&mut self, layout: &Layout, rel: &Path) -> Result<bool, OpenError> {
        if self.open.any_missing() {
            let _idle = progress::IdleOnDrop;
            self.open
                .retry_missing(layout, rel, self.ticks, &self.slot)?;
            self.net.open_procs(self.open.keeps_rare());
        }
        Ok(self.open.any_missing())
    }

    /// The container's directories, among the hierarchies still missing, where something
    /// that is not a directory stands (a FIFO, a file): never a runtime's doing.
    pub fn not_directories(&self, layout: &Layout, rel: &Path) -> Vec<PathBuf> {
        self.open.not_directories(layout, rel)
    }

    /// Descriptors this reader holds.
    pub fn held(&self) -> usize {
        self.open.held() + self.net.held()
    }

    /// Descriptors it would hold with only the files read every tick kept open (its
    /// `cgroup.events` watched, as the daemon does): what `check` counts per container when
    /// descriptors are short.
    pub fn lean_fds(&self) -> usize {
        let ticks = TickSet {
            events_watched: true,
            ..self.ticks
        };
        self.open.per_tick(ticks) + self.net.per_tick_fds()
    }

    /// Whether some of the files it reads every tick are opened at every read instead of
    /// kept open.
    pub fn reopens(&self) -> bool {
        self.open.reopens(self.ticks) || self.net.reopens()
    }

    /// Opens and keeps the files that were opened at every read (there are descriptors to
    /// spare again): all of them, or only those read every tick when rare ones are not
    /// kept. Stops at the first failure; returns whether every such file is kept now.
    pub fn keep_open(&mut self) -> bool {
        let _idle = progress::IdleOnDrop;
        self.open.keep_open(self.ticks, &self.slot) && self.net.keep_open(self.open.keeps_rare())
    }

    /// From now on keeps open only the files read every tick, and closes the others now
    /// (descriptors are short). Returns the descriptors freed.
    pub fn keep_rare(&mut self, keep: bool, layout: &Layout, rel: &Path) -> usize {
        self.open.options.keep_rare = keep;
        self.trim(layout, rel)
    }

    /// Closes the kept files that are not read every tick (when rare ones are not kept):
    /// what is read every tick can change (a quota set, a device accounted). Returns the
    /// descriptors freed.
    pub fn trim(&mut self, layout: &Layout, rel: &Path) -> usize {
        if self.open.options.keep_rare {
            return 0;
        }
        self.open.trim(self.ticks, layout, rel) + self.net.trim()
    }

    /// Reads the limits again at the next read (a runtime said it changed them).
    pub fn refresh_limits(&mut self) {
        self.limits_due = None;
    }

    /// Its `cgroup.events` is watched (true) or no longer (false): while it is, the file is
    /// read only after [`events_changed`](Self::events_changed).
    pub fn set_events_watched(&mut self, watched: bool) {
        self.ticks.events_watched = watched;
        self.events_stale = true;
    }

    /// `cgroup.events` changed (or an event may have been lost): read it at the next read.
    pub fn events_changed(&mut self) {
        self.events_stale = true;
    }

    /// Closes `net/dev`: its descriptor keeps the network namespace alive, which must not
    /// outlive the container's processes.
    pub fn close_net(&mut self) {
        self.net.close();
    }

    /// The container's process was in the host's network namespace when last looked at (so it
    /// has no network metrics).
    pub fn host_network(&self) -> bool {
        self.net.host_network()
    }

    /// The kept-open descriptors a tick reads (cgroup files and `net/dev` once open), for
    /// the benchmark's floor: the same preads with no parsing.
    pub fn raw_files(&self) -> impl Iterator<Item = &std::fs::File> {
        let files = self.open.files.iter().filter_map(|f| f.file.as_ref());
        files.chain(self.net.kept_file())
    }

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
        while i < self.open.files.len() {
            let f = &self.open.files[i];
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
                None => match self.open.reopen(i) {
                    Ok(Some(file)) => pread_all(&file, buf),
                    // Planned unseen, and absent: this kernel does not offer it.
                    Ok(None) => {
                        self.open.files.remove(i);
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
            self.schedule_limits(now);
        }
        let keep_open = self.open.options.keep_open;
        if let Err(kind) = self.net.read(proc_root, buf, out, &self.slot, keep_open) {
            let path = PathBuf::from(format!("net/dev of {}", self.dir.display()));
            on_error(ReadError { path, kind });
        }
        Ok(())
    }

    /// Keeps `content` as file `i`'s last content, at `at` in `self.kept`, if its cadence
    /// lets a read skip it; returns where the next file's kept content starts.
    fn keep(&mut self, i: usize, at: usize, content: &[u8]) -> usize {
        let f = &mut self.open.files[i];
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
        let every = self.open.options.limits_every;
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
