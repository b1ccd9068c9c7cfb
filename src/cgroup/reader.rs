//! One container's cgroup reader: its files in every hierarchy, opened when the container is
//! found (its directories as directories, never blocking) and re-read each tick with `pread`
//! into one buffer shared by all containers; a file this container does not have is not read,
//! so its values stay absent. A file is kept open, or (descriptors short, or a rare file of a
//! lean reader) opened when read through one `O_PATH` descriptor per hierarchy mount; which is
//! decided in one place, `CgroupReader::keeps`, from the [`OpenOptions`] the collector sets.
//! Its network counters come from [`super::net`].
//!
//! A read takes each file on its row's [`Cadence`]: a file a read may skip (limits, re-read
//! every [`OpenOptions::limits_every`] or after [`CgroupReader::refresh_limits`]; v1 `cpu.stat`
//! without a quota, v1 `memory.failcnt` without a memory limit; a watched `cgroup.events`)
//! stands in with its last content, parsed again in its place, so no code but its plan row
//! knows its fields. "Gone" is decided here, once: ENODEV on a kept-open file or ENOENT on open
//! means the cgroup was removed, normal life for a container and not an error.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, fstat};

use super::layout::Layout;
use super::net::{NetReader, NetSource, ProcRoot};
use super::place::{ReaderPlace, doing};
use super::plan::{self, Cadence, FileDef, Hier, Partial};
use super::reads;
use super::sample::{CgroupSample, Limit};
use super::{Gone, OpenError, ReadError, ReadErrorKind};
use crate::host::fs::{
    OpenFail, gone_errno, is_out_of_descriptors, open_cgroup_file, open_regular, pread_all,
};
use crate::progress;

/// How a reader treats its descriptors and its limits, and which files it reads.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// Keep every file open (the normal case). False when the process's descriptor budget is
    /// spent: files are then opened, read and closed at every read.
    pub keep_open: bool,
    /// Also keep open the files that are not read every tick (limits, and the others of
    /// `TickSet`) and `cgroup.procs`. False when descriptors are short: they are then opened
    /// when read.
    pub keep_rare: bool,
    /// How long the last read of the limits stays good; zero re-reads them at every read.
    pub limits_every: Duration,
    /// The files to read ([`plan::PLAN`]; a test may give an extended one).
    pub plan: &'static [FileDef],
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions {
            keep_open: true,
            keep_rare: true,
            limits_every: Duration::ZERO,
            plan: plan::PLAN,
        }
    }
}

/// What decides which files are read every tick; the others are read with the limits (or,
/// for `cgroup.events`, when its watch reports a change).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct TickSet {
    /// An inotify watch on `cgroup.events` reports every change of it.
    pub events_watched: bool,
    /// A CPU quota is set: v1 throttling counters move only under one.
    pub quota: bool,
    /// A memory limit is set: v1 `memory.failcnt` moves only under one.
    pub memory_limit: bool,
    /// The v1 blkio files accounted some device at their last read. They list a device only
    /// once some cgroup had a throttle rule on it (a host-wide event), and show `Total 0`
    /// until then; counting starts then, so reading them late loses nothing.
    pub io_seen: bool,
    /// v2: the container may not swap (`memory.swap.max` 0) and uses no swap, so
    /// `memory.swap.current` cannot move.
    pub swap_off: bool,
}

impl TickSet {
    pub fn per_tick(self, def: &FileDef) -> bool {
        match def.cadence {
            Cadence::Tick => true,
            Cadence::Limit => false,
            Cadence::Events => !self.events_watched,
            Cadence::UnderQuota => self.quota,
            Cadence::UnderMemoryLimit => self.memory_limit,
            Cadence::OnceCounting => self.io_seen,
            Cadence::UnlessSwapOff => !self.swap_off,
        }
    }
}

/// One file of the container's plan.
#[derive(Debug)]
pub(super) struct Planned {
    pub def: &'static FileDef,
    /// Its row in the plan, for naming it when a read does not return.
    pub row: u32,
    /// Kept open; `None` when it is opened at every read.
    pub file: Option<File>,
    /// Known to exist (opened once). A file planned while no descriptor could be had is
    /// dropped from the plan at the first read that finds it absent.
    pub seen: bool,
    /// For a file not read at every read: the length of its last content, which the reader
    /// keeps (one buffer for all of them, in the order of the files) to stand in for it
    /// between reads.
    pub kept: Option<u16>,
}

/// A hierarchy's mount, for files opened when read: one `O_PATH` descriptor per mount,
/// shared by every reader, so a reopened file is opened relative to it without walking the
/// mount's own path (`/sys/fs/cgroup/memory`), about a third of the cost of opening a cgroup
/// file. Without that descriptor, files are opened by their full path.
#[derive(Debug, Clone)]
struct Mount {
    root: PathBuf,
    fd: Option<Arc<File>>,
    /// The mount is a cgroup filesystem, where every file is a regular one: files opened
    /// below it are not checked with `fstat` (a tenth of an open's cost). Below anything else
    /// (a test's directory), a FIFO put in a file's place is refused.
    cgroupfs: bool,
}

impl Mount {
    fn get(root: &Path) -> Mount {
        use nix::sys::statfs::{CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, fstatfs};
        static MOUNTS: Mutex<Vec<Mount>> = Mutex::new(Vec::new());
        let mut mounts = MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = mounts.iter().find(|m| m.root == root) {
            return m.clone();
        }
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(root, flags, Mode::empty()).ok();
        let fd = fd.map(|fd| Arc::new(File::from(fd)));
        let cgroupfs = fd.as_ref().is_some_and(|f| {
            fstatfs(&**f).is_ok_and(|st| {
                st.filesystem_type() == CGROUP_SUPER_MAGIC
                    || st.filesystem_type() == CGROUP2_SUPER_MAGIC
            })
        });
        let m = Mount {
            root: root.to_path_buf(),
            fd,
            cgroupfs,
        };
        if m.fd.is_some() {
            mounts.push(m.clone());
        }
        m
    }

    fn open(&self, below: &Path) -> io::Result<File> {
        match (&self.fd, self.cgroupfs) {
            (Some(m), true) => open_cgroup_file(m.as_fd(), below),
            (Some(m), false) => open_regular(Some(m.as_fd()), below),
            (None, _) => open_regular(None, &self.root.join(below)),
        }
        .map_err(OpenFail::into_io)
    }
}

/// Opens a container's directory in one hierarchy, as a directory and never blocking: a FIFO
/// (or anything else that is not a directory) put where it should be is refused at once
/// (ENOTDIR) instead of blocking the open until a writer comes.
fn open_dir(root: &Path, rel: &Path) -> io::Result<File> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    Ok(File::from(nix::fcntl::open(
        &root.join(rel),
        flags,
        Mode::empty(),
    )?))
}

/// The open files of one container, ready to be re-read each tick.
#[derive(Debug)]
pub struct CgroupReader {
    pub(super) files: Vec<Planned>,
    /// The last content of each file a read may skip (`Planned::kept` long each, one after
    /// the other in the order of the files), parsed again in its place when skipped, so that
    /// no code but the plan row knows their fields: re-parsing costs well under a µs a read,
    /// the `pread` it saves 1 µs or more.
    pub(super) kept: Box<[u8]>,
    pub(super) options: OpenOptions,
    /// The mount of each hierarchy that has files opened when read (empty while every file
    /// is kept open), and the container's path below the mounts.
    dirs: Vec<(Hier, Mount)>,
    rel: Option<PathBuf>,
    /// Hierarchies whose directory for this container did not exist (yet) at open.
    missing: Vec<Hier>,
    /// Those of them where something that is not a directory stands in its place (ENOTDIR:
    /// a FIFO, a file), which no runtime makes: warned about (see
    /// [`Self::not_directories`]).
    not_dirs: Vec<Hier>,
    pub(super) net: NetReader,
    /// When the limits are read again; `None`: at the next read.
    pub(super) limits_due: Option<Instant>,
    /// The first period between limit reads was cut short already.
    pub(super) staggered: bool,
    /// Which files are read every tick (the others with the limits, or on an event).
    pub(super) ticks: TickSet,
    /// `cgroup.events` changed, or may have: read it at the next read.
    pub(super) events_stale: bool,
    /// The container's directory under the discovery root, for error messages.
    pub(super) dir: PathBuf,
    /// Inode of the container's directory in the discovery hierarchy: its identity.
    pub inode: u64,
    /// When the cgroup directory was created (kernfs sets its change time then), in
    /// seconds and nanoseconds since the epoch.
    pub created: (i64, i64),
    /// When it was opened (the limits are read at every read for a few seconds after).
    pub(super) opened: Instant,
    /// Names what it is reading when a read does not return ([`progress`]).
    pub(super) slot: progress::Slot,
}

/// The longest content kept to stand in for a file between its reads. Limits are a number or
/// two, v1 `cpu.stat` five counters (under 200 bytes); a longer file (a hostile one, or a
/// kernel that adds many keys) is read at every read instead.
const MAX_KEPT: usize = 512;

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
        let st = open_dir(primary, rel)
            .and_then(|d| Ok(fstat(d.as_fd())?))
            .map_err(|error| match error.kind() {
                io::ErrorKind::NotFound => OpenError::Gone,
                _ => OpenError::Io {
                    path: dir.clone(),
                    error,
                },
            })?;
        let procs_dir = layout.unified.as_deref().unwrap_or(primary).join(rel);
        let mut reader = CgroupReader {
            files: Vec::with_capacity(plan::files_of(options.plan, layout.kind).count()),
            kept: Box::default(),
            options,
            dirs: Vec::new(),
            rel: None,
            missing: Vec::new(),
            not_dirs: Vec::new(),
            net: NetReader::new(&procs_dir),
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
        reader.open_hierarchies(layout, rel, &Hier::ALL)?;
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
        if !self.missing.is_empty() {
            let _idle = progress::IdleOnDrop;
            let missing = std::mem::take(&mut self.missing);
            self.open_hierarchies(layout, rel, &missing)?;
        }
        Ok(!self.missing.is_empty())
    }

    /// The container's directories, among the hierarchies still missing, where something
    /// that is not a directory stands (a FIFO, a file): never a runtime's doing.
    pub fn not_directories(&self, layout: &Layout, rel: &Path) -> Vec<PathBuf> {
        self.not_dirs
            .iter()
            .filter(|h| self.missing.contains(h))
            .filter_map(|h| h.mount(layout).map(|m| m.join(rel)))
            .collect()
    }

    /// Descriptors this reader holds, or will hold once its container's processes are found.
    pub fn held(&self) -> usize {
        self.files.iter().filter(|f| f.file.is_some()).count()
            + self.net.held(self.options.keep_open, self.keeps_rare())
    }

    /// Descriptors it would hold with only the files read every tick kept open (its
    /// `cgroup.events` watched, as the daemon does): what `check` counts per container when
    /// descriptors are short.
    pub fn lean_fds(&self) -> usize {
        let ticks = TickSet {
            events_watched: true,
            ..self.ticks
        };
        self.files.iter().filter(|f| ticks.per_tick(f.def)).count() + self.net.per_tick_fds()
    }

    /// The files it reads at every read now; the others are read with the limits (or, for a
    /// watched `cgroup.events`, on its events).
    pub fn per_tick(&self) -> impl Iterator<Item = &'static FileDef> + '_ {
        self.files
            .iter()
            .filter(|f| self.ticks.per_tick(f.def))
            .map(|f| f.def)
    }

    /// Whether some of the files it reads every tick are opened at every read instead of
    /// kept open.
    pub fn reopens(&self) -> bool {
        self.files
            .iter()
            .any(|f| f.file.is_none() && self.ticks.per_tick(f.def))
            || self.net.reopens()
    }

    /// Opens and keeps the files that were opened at every read (there are descriptors to
    /// spare again): all of them, or only those read every tick when rare ones are not
    /// kept. Stops at the first failure; returns whether every such file is kept now.
    pub fn keep_open(&mut self) -> bool {
        let _idle = progress::IdleOnDrop;
        self.options.keep_open = true;
        for i in 0..self.files.len() {
            let f = &self.files[i];
            if f.file.is_some() || !self.keeps(f.def) {
                continue;
            }
            self.slot.doing(doing::OPEN, f.row);
            match self.open_planned(i) {
                Ok(file) => {
                    self.files[i].file = Some(file);
                    self.files[i].seen = true;
                }
                Err(_) => return false,
            }
        }
        self.net.keep_open(self.keeps_rare())
    }

    /// From now on keeps open only the files read every tick, and closes the others now
    /// (descriptors are short). Returns the descriptors freed.
    pub fn keep_rare(&mut self, keep: bool, layout: &Layout, rel: &Path) -> usize {
        self.options.keep_rare = keep;
        self.trim(layout, rel)
    }

    /// Closes the kept files that are not read every tick (when rare ones are not kept):
    /// what is read every tick can change (a quota set, a device accounted). Returns the
    /// descriptors freed.
    pub fn trim(&mut self, layout: &Layout, rel: &Path) -> usize {
        if self.options.keep_rare {
            return 0;
        }
        let mut freed = 0;
        for i in 0..self.files.len() {
            let f = &self.files[i];
            if f.file.is_some() && !self.keeps(f.def) {
                let hier = f.def.hier;
                self.files[i].file = None;
                self.note_dir(layout, rel, hier);
                freed += 1;
            }
        }
        freed + self.net.trim()
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

    /// Reads the network counters into `out.net` from a `net/dev` kept open, and nothing
    /// else: its descriptor keeps the namespace alive after the cgroup's files are gone, so a
    /// container removed before its last read still ends with the bytes it moved. Returns
    /// whether they were read.
    pub fn read_kept_network(&mut self, buf: &mut Vec<u8>, out: &mut CgroupSample) -> bool {
        self.net.read_kept(buf, out)
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

    /// Its network namespace is not known yet: no process found, or one in the host's.
    pub fn network_unresolved(&self) -> bool {
        self.net.unresolved()
    }

    /// Looks for the container's own network namespace now, between reads, while it starts.
    /// Returns true while it has none yet (in the host's, or no process).
    pub fn look_for_network(&mut self, proc_root: &ProcRoot, buf: &mut Vec<u8>) -> bool {
        let keep_open = self.options.keep_open;
        self.net.look_again(proc_root, buf, keep_open)
    }

    /// The kept-open descriptors a tick reads (cgroup files and `net/dev` once open), for
    /// the benchmark's floor: the same preads with no parsing.
    pub fn raw_files(&self) -> impl Iterator<Item = &std::fs::File> {
        let files = self.files.iter().filter_map(|f| f.file.as_ref());
        files.chain(self.net.kept_file())
    }

    /// Whether `def` is kept open (else it is opened when read).
    fn keeps(&self, def: &FileDef) -> bool {
        self.options.keep_open && (self.options.keep_rare || self.ticks.per_tick(def))
    }

    /// Whether the files not read every tick (and `cgroup.procs`) are kept open.
    pub fn keeps_rare(&self) -> bool {
        self.options.keep_open && self.options.keep_rare
    }

    /// The row of `def` in the plan.
    fn row(&self, def: &'static FileDef) -> u32 {
        self.options
            .plan
            .iter()
            .position(|d| std::ptr::eq(d, def))
            .unwrap_or(usize::MAX) as u32
    }

    /// Opens the files of the hierarchies in `which`. A hierarchy without the container's
    /// directory is noted missing; with no descriptor left even for the directory, its files
    /// are planned unseen, to be opened (or found absent) at each read.
    fn open_hierarchies(
        &mut self,
        layout: &Layout,
        rel: &Path,
        which: &[Hier],
    ) -> Result<(), OpenError> {
        // One directory descriptor per hierarchy (by its index in `Hier::ALL`), opened on first
        // use; `Some(None)`: none to be had.
        let mut dirs: [Option<Option<File>>; Hier::ALL.len()] = Default::default();
        for def in plan::files_of(self.options.plan, layout.kind) {
            let (hier, name) = (def.hier, def.name);
            if !which.contains(&hier) || self.superseded(def) {
                continue;
            }
            let Some(root) = hier.mount(layout) else {
                continue;
            };
            if dirs[hier as usize].is_none() {
                self.slot.doing(doing::OPEN_DIR, hier as u32);
                let d = open_dir(root, rel);
                match &d {
                    Ok(_) => {}
                    Err(e) if is_out_of_descriptors(e) => self.plan_unseen(layout, rel, hier),
                    Err(e) => {
                        if e.raw_os_error() == Some(Errno::ENOTDIR as i32)
                            && !self.not_dirs.contains(&hier)
                        {
                            self.not_dirs.push(hier);
                        }
                        if !self.missing.contains(&hier) {
                            self.missing.push(hier);
                        }
                    }
                }
                dirs[hier as usize] = Some(d.ok());
            }
            let Some(Some(dir_fd)) = &dirs[hier as usize] else {
                continue;
            };
            let row = self.row(def);
            self.slot.doing(doing::OPEN, row);
            let (file, seen) = match open_regular(Some(dir_fd.as_fd()), Path::new(name)) {
                Ok(file) => {
                    if def.exact_cpu() {
                        // Exact µs user/system beats v1's tick-based split.
                        self.files.retain(|f| !f.def.cpu_fallback);
                    }
                    (self.keeps(def).then_some(file), true)
                }
                // Absent file: this kernel or controller does not offer it.
                Err(OpenFail::Absent) => continue,
                Err(OpenFail::OutOfDescriptors) => (None, false),
                Err(OpenFail::Other(error)) => {
                    return Err(OpenError::Io {
                        path: root.join(rel).join(name),
                        error,
                    });
                }
            };
            if file.is_none() {
                self.note_dir(layout, rel, hier);
            }
            self.plan(def, file, seen);
        }
        self.net.open_procs(self.keeps_rare());
        Ok(())
    }

    /// A v1 CPU row not needed: the unified `cpu.stat` is planned.
    fn superseded(&self, def: &FileDef) -> bool {
        def.cpu_fallback && self.files.iter().any(|f| f.def.exact_cpu())
    }

    /// Remembers the container's directory in `hier`, for files opened at every read.
    fn note_dir(&mut self, layout: &Layout, rel: &Path, hier: Hier) {
        if !self.dirs.iter().any(|(h, _)| *h == hier)
            && let Some(root) = hier.mount(layout)
        {
            self.dirs.push((hier, Mount::get(root)));
        }
        if self.rel.is_none() {
            self.rel = Some(rel.to_path_buf());
        }
    }

    /// Plans every file of `hier` without knowing which exist (no descriptor to look).
    fn plan_unseen(&mut self, layout: &Layout, rel: &Path, hier: Hier) {
        self.note_dir(layout, rel, hier);
        for def in plan::files_of(self.options.plan, layout.kind) {
            if def.hier == hier && !self.superseded(def) {
                self.plan(def, None, false);
            }
        }
    }

    /// Adds `def` to the files read: kept open as `file`, known to exist when `seen`.
    fn plan(&mut self, def: &'static FileDef, file: Option<File>, seen: bool) {
        let row = self.row(def);
        self.files.push(Planned {
            def,
            row,
            file,
            seen,
            kept: None,
        });
    }

    /// Opens file `i` by its path below its hierarchy's mount.
    fn open_planned(&self, i: usize) -> io::Result<File> {
        let f = &self.files[i];
        let (Some((_, m)), Some(rel)) =
            (self.dirs.iter().find(|(h, _)| *h == f.def.hier), &self.rel)
        else {
            return Err(io::ErrorKind::NotFound.into());
        };
        m.open(&rel.join(f.def.name))
    }

    /// Opens file `i` for this read only, by its path below its hierarchy's mount (no
    /// directory is opened). `Ok(None)`: a file planned unseen is absent. For a file seen
    /// before, ENOENT means the container's directory is gone (the caller's "gone").
    pub(super) fn reopen(&mut self, i: usize) -> io::Result<Option<File>> {
        match self.open_planned(i) {
            Ok(file) => {
                self.files[i].seen = true;
                Ok(Some(file))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !self.files[i].seen => Ok(None),
            Err(e) => Err(e),
        }
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
            let (content, error) = match result {
                Ok(n) => {
                    reads::count(self.options.plan, self.files[i].row);
                    let parsed = (def.parse)(&buf[..n], out, &mut partial);
                    (&buf[..n], parsed.err().map(ReadErrorKind::Parse))
                }
                Err(e)
                    if e.raw_os_error()
                        .is_some_and(|c| gone_errno(Errno::from_raw(c))) =>
                {
                    return Err(Gone);
                }
                // Absent until read again, as if it had been empty.
                Err(e) => (&[][..], Some(ReadErrorKind::Io(e))),
            };
            if let Some(kind) = error {
                let path = self.dir.join(def.name);
                on_error(ReadError { path, kind });
            }
            at = self.keep(i, at, content);
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
            self.ticks.swap_off =
                out.spec.memory_swap_limit == Some(Limit::Value(0)) && out.memory.swap == Some(0);
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
        // Runtimes write a new container's limits after creating its cgroup, runc only once
        // `runc init` has set the container up (`docs/architecture.md`): read them at every
        // read for a few seconds, then, while younger than a period, again after as long as it
        // has existed (about 10, 20, 40 s).
        if now.duration_since(self.opened) < crate::discovery::RETRY_AFTER_DISCOVERY {
            self.limits_due = None;
            return;
        }
        let every = self.options.limits_every;
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
