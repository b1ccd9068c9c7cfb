//! Reads one container's cgroup files into a [`CgroupSample`], at close to the cost of the
//! syscalls.
//!
//! Every file the layout offers is opened once, relative to the container's directory in
//! its hierarchy (`openat`), when the container is discovered; each tick re-reads it with
//! `pread` at offset 0 (cgroupfs regenerates the content on every read from offset 0) into
//! one buffer shared by all containers, then parses it in place by key. A file that does
//! not exist for this container (controller not enabled, older kernel) is simply not read,
//! so its values stay absent.
//!
//! "Gone" is decided here, once: ENODEV on a kept-open file or ENOENT on open means the
//! cgroup was removed, which is normal life for a container and not an error.
//!
//! Limits (`cpu.max`, `memory.max`, `pids.max`, `cpu.cfs_quota_us`, `cpu.cfs_period_us`,
//! `memory.limit_in_bytes`) and the settings only the cAdvisor page shows (`cpu.shares`,
//! `memory.min`, …) almost never change, so they are re-read only every
//! [`OpenOptions::limits_every`] (and at once after [`CgroupReader::refresh_limits`], which
//! a runtime's `update` event triggers); in between their last values are reported. So is v1
//! `cpu.stat` while the container has no CPU quota: its throttling counters only move under
//! one. That spares a quarter of the reads on a v1 or hybrid host.
//!
//! When the process may not hold more descriptors ([`OpenOptions::keep_open`] false, or
//! `EMFILE` while opening), a container's files are opened, read and closed at every read
//! instead: slower, but no container is lost.
//!
//! Its length is one type, [`CgroupReader`]: how each file is opened, kept, read on its
//! cadence or opened again, and where the network counters come from, are decisions about the
//! same descriptors, made in one place. The parsers are in [`parse`] and the list of files in
//! [`plan`].

use std::fmt;
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
use super::parse::{self, ErrorKind, ParseError};
use super::plan::{self, Cadence, FileDef, Hier, Partial};
use super::sample::{CgroupSample, SpecSample};
use crate::host::fs::{
    OpenFail, gone_errno, is_out_of_descriptors, open_file, open_regular, pread_all,
};
use crate::progress;

pub use super::plan::parse_files;

/// Why a read of one file failed, with the file's path for the log.
#[derive(Debug)]
pub struct ReadError {
    pub path: PathBuf,
    pub kind: ReadErrorKind,
}

#[derive(Debug)]
pub enum ReadErrorKind {
    Io(io::Error),
    Parse(ParseError),
}

impl ReadErrorKind {
    /// A short label for counting errors by kind.
    pub fn label(&self) -> &'static str {
        match self {
            ReadErrorKind::Io(_) => "io",
            ReadErrorKind::Parse(e) => match e.kind {
                ErrorKind::Truncated => "truncated",
                ErrorKind::Malformed => "malformed",
            },
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ReadErrorKind::Io(e) => write!(f, "reading {}: {e}", self.path.display()),
            ReadErrorKind::Parse(e) => write!(f, "parsing {}: {e}", self.path.display()),
        }
    }
}

impl std::error::Error for ReadError {}

/// The container's cgroup is gone (removed while or before we read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// How to find the host's network namespace, and where processes live.
#[derive(Debug, Clone)]
pub struct ProcRoot {
    pub path: PathBuf,
    /// Inode of the host network namespace's `net/dev` (each namespace's has its own), when
    /// known.
    pub host_netns: Option<u64>,
}

impl ProcRoot {
    /// The host's network namespace is pid 1's; where that cannot be read (some sandboxes
    /// hide pid 1), the exporter's own, which is the host's when it runs with the host
    /// network (as its deployments do).
    pub fn new(path: &Path) -> ProcRoot {
        let ino = |p: &Path| {
            std::fs::metadata(p)
                .ok()
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        };
        let pid1 = path.join("1/net/dev");
        let _idle = progress::IdleOnDrop;
        progress::doing_path("looking at", &pid1);
        let host_netns = ino(&pid1).or_else(|| ino(Path::new("/proc/self/net/dev")));
        ProcRoot {
            path: path.to_path_buf(),
            host_netns,
        }
    }
}

#[derive(Debug)]
enum Net {
    /// Not opened yet (or the container had no process last time).
    Unknown,
    /// The process looked at was in the host's network namespace. That is only a guess: the
    /// first process of a container that is starting is the runtime's own init (`runc init`),
    /// still in the host's namespace until it enters the container's. So the guess is checked
    /// again after `recheck_in` more reads, at doubling intervals (cheap for containers that
    /// really use the host network, quick to correct for the rest).
    HostNetwork {
        recheck_in: u32,
        backoff: u32,
    },
    Open(File),
    /// A process outside the host network was found, but there is no descriptor to spare:
    /// its `net/dev` is opened at every read (and looked for again when that fails).
    Reopen(PathBuf),
}

/// Reads between two checks of a container seen in the host network, at most: about a minute
/// at a 1 s interval, ten at the default 10 s.
const HOST_NETWORK_RECHECK_MAX: u32 = 64;

/// Where a cgroup's network counters come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetSource {
    /// A process of the cgroup itself (a container).
    Own,
    /// A process of one of its child cgroups: a Kubernetes pod, whose processes are all in
    /// its containers' (and sandbox's) cgroups, and share one network namespace.
    Children,
    /// None: a container of a Kubernetes pod, whose network is its pod's and reported once,
    /// on the pod.
    Skip,
}

/// A hierarchy's mount, for files opened when read: one `O_PATH` descriptor per mount,
/// shared by every reader, so a reopened file is opened relative to it without walking the
/// mount's own path (`/sys/fs/cgroup/memory`), about a third of the cost of opening a cgroup
/// file. Without that descriptor, files are opened by their full path.
#[derive(Debug, Clone)]
struct Mount {
    root: PathBuf,
    fd: Option<Arc<File>>,
}

impl Mount {
    fn get(root: &Path) -> Mount {
        static MOUNTS: Mutex<Vec<(PathBuf, Arc<File>)>> = Mutex::new(Vec::new());
        let mut mounts = MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let fd = match mounts.iter().find(|(p, _)| p == root) {
            Some((_, f)) => Some(f.clone()),
            None => {
                let f = nix::fcntl::open(
                    root,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .ok()
                .map(|fd| Arc::new(File::from(fd)));
                if let Some(f) = &f {
                    mounts.push((root.to_path_buf(), f.clone()));
                }
                f
            }
        };
        Mount {
            root: root.to_path_buf(),
            fd,
        }
    }

    fn open(&self, below: &Path) -> io::Result<File> {
        match &self.fd {
            Some(m) => open_regular(Some(m.as_fd()), below),
            None => open_regular(None, &self.root.join(below)),
        }
        .map_err(OpenFail::into_io)
    }
}

/// How a reader treats its descriptors and its limits.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// Keep every file open (the normal case). False when the process's descriptor budget is
    /// spent: files are then opened, read and closed at every read.
    pub keep_open: bool,
    /// Also keep open the files that are not read every tick (limits, a watched
    /// `cgroup.events`, `cgroup.procs`, v1 `cpu.stat` without a quota, v1 blkio files that
    /// account no device). False when descriptors are short: they are then opened when read.
    pub keep_rare: bool,
    /// How long the last read of the limits stays good; zero re-reads them at every read.
    pub limits_every: Duration,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions {
            keep_open: true,
            keep_rare: true,
            limits_every: Duration::ZERO,
        }
    }
}

/// One file of the container's plan.
#[derive(Debug)]
struct Planned {
    def: &'static FileDef,
    /// Its row in [`plan::PLAN`], for naming it when a read does not return.
    row: u32,
    /// Kept open; `None` when it is opened at every read.
    file: Option<File>,
    /// Known to exist (opened once). A file planned while no descriptor could be had is
    /// dropped from the plan at the first read that finds it absent.
    seen: bool,
}

/// What decides which files are read every tick; the others are read with the limits (or,
/// for `cgroup.events`, when its watch reports a change).
#[derive(Debug, Default, Clone, Copy)]
struct TickSet {
    /// An inotify watch on `cgroup.events` reports every change of it.
    events_watched: bool,
    /// A CPU quota is set: v1 throttling counters move only under one.
    quota: bool,
    /// The v1 blkio files accounted some device at their last read. They list a device only
    /// once some cgroup had a throttle rule on it (a host-wide event), and show `Total 0`
    /// until then; counting starts then, so reading them late loses nothing.
    io_seen: bool,
}

impl TickSet {
    fn per_tick(self, def: &FileDef) -> bool {
        match def.cadence {
            Cadence::Tick => true,
            Cadence::Limit => false,
            Cadence::Events => !self.events_watched,
            Cadence::UnderQuota => self.quota,
            Cadence::OnceCounting => self.io_seen,
        }
    }
}

/// The values of the files that are not re-read at every read.
#[derive(Debug, Default, Clone, Copy)]
struct Slow {
    quota_us: Option<u64>,
    period_us: Option<u64>,
    shares: Option<u64>,
    spec: SpecSample,
    memory_limit: Option<u64>,
    pids_limit: Option<u64>,
    periods: Option<u64>,
    throttled_periods: Option<u64>,
    throttled_ns: Option<u64>,
    bursts: Option<u64>,
    burst_ns: Option<u64>,
}

/// The open files of one container, ready to be re-read each tick.
#[derive(Debug)]
pub struct CgroupReader {
    files: Vec<Planned>,
    /// `cgroup.procs`, to find a process whose network namespace to read (`None` when it is
    /// opened when needed).
    procs: Option<File>,
    /// The directory holding `cgroup.procs` (for [`NetSource::Children`]).
    procs_dir: PathBuf,
    net_source: NetSource,
    net: Net,
    options: OpenOptions,
    /// The mount of each hierarchy that has files opened when read (empty while every file
    /// is kept open), and the container's path below the mounts.
    dirs: Vec<(Hier, Mount)>,
    rel: Option<PathBuf>,
    /// Where `cgroup.procs` is, when it is not kept open.
    procs_path: Option<PathBuf>,
    /// Values of the limits (and of v1 `cpu.stat` without a quota) as last read.
    slow: Slow,
    /// When the limits are read again; `None`: at the next read.
    limits_due: Option<Instant>,
    /// The first period between limit reads was cut short already.
    staggered: bool,
    /// Which files are read every tick (the others with the limits, or on an event).
    ticks: TickSet,
    /// `cgroup.events` changed, or may have: read it at the next read.
    events_stale: bool,
    /// `populated` as last read.
    populated: Option<bool>,
    /// The container's directory under the discovery root, for error messages.
    dir: PathBuf,
    /// Inode of the container's directory in the discovery hierarchy: its identity.
    pub inode: u64,
    /// When the cgroup directory was created (kernfs sets its change time then), in
    /// seconds and nanoseconds since the epoch.
    pub created: (i64, i64),
    /// Hierarchies whose directory for this container did not exist (yet) at open.
    missing: Vec<Hier>,
    /// Those of them where something that is not a directory stands in its place (ENOTDIR:
    /// a FIFO, a file), which no runtime makes: warned about (see [`Self::not_directories`]).
    not_dirs: Vec<Hier>,
    /// When it was opened (the limits are read at every read for a few seconds after).
    opened: Instant,
    /// Names what it is reading when a read does not return ([`progress`]).
    slot: progress::Slot,
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

/// The row of `def` in [`plan::PLAN`].
fn plan_row(def: &'static FileDef) -> u32 {
    plan::PLAN
        .iter()
        .position(|d| std::ptr::eq(d, def))
        .unwrap_or(usize::MAX) as u32
}

/// What the reader's marks in the [`progress`] word mean: the kind, with the index it goes
/// with.
mod doing {
    /// Reading a file of the plan (its row).
    pub const READ: u8 = 0;
    /// Opening a file of the plan (its row).
    pub const OPEN: u8 = 1;
    /// Opening the container's directory in a hierarchy (its index in `Hier::ALL`).
    pub const OPEN_DIR: u8 = 2;
    /// Reading `net/dev` of one of its processes.
    pub const NET: u8 = 3;
}

/// A container's paths, for naming what its reader is stuck on.
struct ReaderPlace {
    layout: Arc<Layout>,
    rel: PathBuf,
}

impl progress::Place for ReaderPlace {
    fn describe(&self, kind: u8, index: u32) -> String {
        let in_hier = |hier: Hier| {
            hier.mount(&self.layout)
                .unwrap_or(self.layout.discovery_root())
                .join(&self.rel)
        };
        match kind {
            doing::READ | doing::OPEN => {
                let verb = if kind == doing::READ {
                    "reading"
                } else {
                    "opening"
                };
                match plan::PLAN.get(index as usize) {
                    Some(def) => format!("{verb} {}", in_hier(def.hier).join(def.name).display()),
                    None => format!("{verb} a file of {}", in_hier(Hier::Unified).display()),
                }
            }
            doing::OPEN_DIR => match Hier::ALL.get(index as usize) {
                Some(&h) => format!("opening {}", in_hier(h).display()),
                None => format!("opening {}", self.rel.display()),
            },
            _ => format!(
                "reading net/dev of a process of {}",
                self.layout.discovery_root().join(&self.rel).display()
            ),
        }
    }
}

/// The layout the places of the readers share (one per process in practice).
fn shared_layout(layout: &Layout) -> Arc<Layout> {
    static LAST: Mutex<Option<Arc<Layout>>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    match &*last {
        Some(l) if **l == *layout => l.clone(),
        _ => {
            let l = Arc::new(layout.clone());
            *last = Some(l.clone());
            l
        }
    }
}

impl CgroupReader {
    /// Opens every file the layout offers for the container at `rel` (a path relative to
    /// each hierarchy's mount, like `docker/<id>`), kept open, limits read at every read. A
    /// missing directory in the discovery hierarchy means the container is gone.
    pub fn open(layout: &Layout, rel: &Path) -> Result<CgroupReader, OpenError> {
        CgroupReader::open_with(layout, rel, OpenOptions::default())
    }

    /// [`open`](Self::open) with the given descriptor and limit policy.
    pub fn open_with(
        layout: &Layout,
        rel: &Path,
        options: OpenOptions,
    ) -> Result<CgroupReader, OpenError> {
        let primary = layout.discovery_root();
        let dir = primary.join(rel);
        let _idle = progress::IdleOnDrop;
        progress::doing_path("opening", &dir);
        let slot = progress::Slot::new(Arc::new(ReaderPlace {
            layout: shared_layout(layout),
            rel: rel.to_path_buf(),
        }));
        let dir_file = match open_dir(primary, rel) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OpenError::Gone),
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
        let procs_dir = layout
            .unified
            .as_deref()
            .unwrap_or(layout.discovery_root())
            .join(rel);
        let mut reader = CgroupReader {
            files: Vec::with_capacity(plan::files(layout.kind).count()),
            procs: None,
            procs_dir,
            net_source: NetSource::Own,
            net: Net::Unknown,
            options,
            dirs: Vec::new(),
            rel: None,
            procs_path: None,
            slow: Slow::default(),
            limits_due: None,
            staggered: false,
            ticks: TickSet::default(),
            events_stale: true,
            populated: None,
            dir,
            inode: st.st_ino,
            created: (st.st_ctime, st.st_ctime_nsec),
            missing: Vec::new(),
            not_dirs: Vec::new(),
            opened: Instant::now(),
            slot,
        };
        reader.open_hierarchies(layout, rel, &Hier::ALL)?;
        Ok(reader)
    }

    /// Where this cgroup's network counters come from ([`NetSource::Own`] unless set).
    pub fn with_net_source(mut self, source: NetSource) -> CgroupReader {
        self.net_source = source;
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

    fn open_hierarchies(
        &mut self,
        layout: &Layout,
        rel: &Path,
        which: &[Hier],
    ) -> Result<(), OpenError> {
        // One directory descriptor per hierarchy, opened on first use.
        let mut dirs: Vec<(Hier, Option<File>)> = Vec::with_capacity(which.len());
        for def in plan::files(layout.kind) {
            let (hier, name) = (def.hier, def.name);
            if !which.contains(&hier) {
                continue;
            }
            let has_unified_cpu = self.files.iter().any(|f| f.def.exact_cpu());
            if def.cpu_fallback && has_unified_cpu {
                continue;
            }
            let Some(root) = hier.mount(layout) else {
                continue;
            };
            let dir_fd = match dirs.iter().position(|(h, _)| *h == hier) {
                Some(i) => &dirs[i].1,
                None => {
                    let h = Hier::ALL.iter().position(|&x| x == hier).unwrap_or(0);
                    self.slot.doing(doing::OPEN_DIR, h as u32);
                    let d = match open_dir(root, rel) {
                        Ok(d) => Some(d),
                        Err(e) if is_out_of_descriptors(&e) => {
                            // No descriptor even for the directory: plan the hierarchy's
                            // files unseen, to be opened (or found absent) at each read.
                            self.plan_unseen(layout, rel, hier);
                            dirs.push((hier, None));
                            continue;
                        }
                        Err(e) => {
                            if e.raw_os_error() == Some(Errno::ENOTDIR as i32)
                                && !self.not_dirs.contains(&hier)
                            {
                                self.not_dirs.push(hier);
                            }
                            None
                        }
                    };
                    if d.is_none() && !self.missing.contains(&hier) {
                        self.missing.push(hier);
                    }
                    dirs.push((hier, d));
                    &dirs.last().expect("just pushed").1
                }
            };
            let Some(dir_fd) = dir_fd else { continue };
            self.slot.doing(doing::OPEN, plan_row(def));
            match open_regular(Some(dir_fd.as_fd()), Path::new(name)) {
                Ok(file) => {
                    if def.exact_cpu() {
                        // Exact µs user/system beats v1's tick-based split.
                        self.files.retain(|f| !f.def.cpu_fallback);
                    }
                    let keep = self.options.keep_open
                        && (self.options.keep_rare || self.ticks.per_tick(def));
                    let kept = keep.then_some(file);
                    if kept.is_none() {
                        self.note_dir(layout, rel, hier);
                    }
                    self.files.push(Planned {
                        def,
                        row: plan_row(def),
                        file: kept,
                        seen: true,
                    });
                }
                // Absent file: this kernel or controller does not offer it.
                Err(OpenFail::Absent) => {}
                Err(OpenFail::OutOfDescriptors) => {
                    self.note_dir(layout, rel, hier);
                    self.files.push(Planned {
                        def,
                        row: plan_row(def),
                        file: None,
                        seen: false,
                    });
                }
                Err(OpenFail::Other(error)) => {
                    return Err(OpenError::Io {
                        path: root.join(rel).join(name),
                        error,
                    });
                }
            }
        }
        if self.procs.is_none() && self.procs_path.is_none() {
            let path = self.procs_dir.join("cgroup.procs");
            progress::doing_path("opening", &path);
            match self.options.keep_open && self.options.keep_rare {
                true => match open_regular(None, &path) {
                    Ok(f) => self.procs = Some(f),
                    Err(OpenFail::OutOfDescriptors) => self.procs_path = Some(path),
                    Err(_) => {}
                },
                false => self.procs_path = Some(path),
            }
        }
        Ok(())
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

    /// Plans every file of `hier` without knowing which exist (no descriptor to look).
    fn plan_unseen(&mut self, layout: &Layout, rel: &Path, hier: Hier) {
        self.note_dir(layout, rel, hier);
        let has_unified_cpu = self.files.iter().any(|f| f.def.exact_cpu());
        for def in plan::files(layout.kind) {
            if def.hier == hier && !(def.cpu_fallback && has_unified_cpu) {
                self.files.push(Planned {
                    def,
                    row: plan_row(def),
                    file: None,
                    seen: false,
                });
            }
        }
    }

    /// Descriptors this reader holds.
    pub fn held(&self) -> usize {
        self.files.iter().filter(|f| f.file.is_some()).count()
            + usize::from(self.procs.is_some())
            + usize::from(matches!(self.net, Net::Open(_)))
    }

    /// Descriptors it would hold with only the files read every tick kept open (its
    /// `cgroup.events` watched, as the daemon does): what `check` counts per container when
    /// descriptors are short.
    pub fn lean_fds(&self) -> usize {
        let ticks = TickSet {
            events_watched: true,
            ..self.ticks
        };
        self.files.iter().filter(|f| ticks.per_tick(f.def)).count()
            + usize::from(matches!(self.net, Net::Open(_) | Net::Reopen(_)))
    }

    /// Whether some of the files it reads every tick are opened at every read instead of
    /// kept open.
    pub fn reopens(&self) -> bool {
        self.files
            .iter()
            .any(|f| f.file.is_none() && self.ticks.per_tick(f.def))
            || matches!(self.net, Net::Reopen(_))
    }

    /// Opens and keeps the files that were opened at every read (there are descriptors to
    /// spare again): all of them, or only those read every tick when rare ones are not
    /// kept. Stops at the first failure; returns whether every such file is kept now.
    pub fn keep_open(&mut self) -> bool {
        let _idle = progress::IdleOnDrop;
        self.options.keep_open = true;
        let (ticks, keep_rare) = (self.ticks, self.options.keep_rare);
        for i in 0..self.files.len() {
            let f = &self.files[i];
            if f.file.is_some() || !(keep_rare || ticks.per_tick(f.def)) {
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
        if keep_rare && let Some(path) = &self.procs_path {
            match open_file(path) {
                Ok(file) => {
                    self.procs = Some(file);
                    self.procs_path = None;
                }
                Err(_) => return false,
            }
        }
        if let Net::Reopen(path) = &self.net {
            match open_file(path) {
                Ok(file) => self.net = Net::Open(file),
                Err(_) => self.net = Net::Unknown,
            }
        }
        true
    }

    /// From now on keeps open only the files read every tick, and closes the others now
    /// (descriptors are short). Returns the descriptors freed.
    pub fn keep_rare(&mut self, keep: bool, layout: &Layout, rel: &Path) -> usize {
        self.options.keep_rare = keep;
        if keep {
            return 0;
        }
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
            if f.file.is_some() && !self.ticks.per_tick(f.def) {
                let hier = f.def.hier;
                self.files[i].file = None;
                self.note_dir(layout, rel, hier);
                freed += 1;
            }
        }
        if self.procs.take().is_some() {
            let procs_root = layout.unified.as_deref().unwrap_or(layout.discovery_root());
            self.procs_path = Some(procs_root.join(rel).join("cgroup.procs"));
            freed += 1;
        }
        freed
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
        self.net = Net::Unknown;
    }

    /// The kept-open descriptors a tick reads (cgroup files and `net/dev` once open), for
    /// the benchmark's floor: the same preads with no parsing.
    pub fn raw_files(&self) -> impl Iterator<Item = &File> {
        let net = match &self.net {
            Net::Open(f) => Some(f),
            _ => None,
        };
        self.files.iter().filter_map(|f| f.file.as_ref()).chain(net)
    }

    /// Re-reads every file into `out` (cleared first). Problems with single files are
    /// passed to `on_error` and cost only their own values.
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
        let skip_events = ticks.events_watched && !self.events_stale;
        let mut read_blkio = false;
        let mut i = 0;
        while i < self.files.len() {
            let f = &self.files[i];
            let def = f.def;
            let name = def.name;
            let skip = match def.cadence {
                Cadence::Events => skip_events,
                _ => !limits_due && !ticks.per_tick(def),
            };
            if skip {
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
            i += 1;
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
                        path: self.dir.join(name),
                        kind: ReadErrorKind::Io(e),
                    });
                    continue;
                }
            };
            if let Err(e) = (def.parse)(&buf[..n], out, &mut partial) {
                on_error(ReadError {
                    path: self.dir.join(name),
                    kind: ReadErrorKind::Parse(e),
                });
            }
        }
        if skip_events {
            out.populated = self.populated;
        } else {
            self.populated = out.populated;
            self.events_stale = false;
        }
        plan::finish(out, partial);
        if read_blkio {
            self.ticks.io_seen = !out.io.is_empty();
        }
        self.keep_slow(out, limits_due, now);
        self.read_net(proc_root, buf, out, on_error);
        Ok(())
    }

    /// Opens file `i` for this read only, by its path below its hierarchy's mount (no
    /// directory is opened). `Ok(None)`: a file planned unseen is absent. For a file seen
    /// before, ENOENT means the container's directory is gone (the caller's "gone").
    fn reopen(&mut self, i: usize) -> io::Result<Option<File>> {
        match self.open_planned(i) {
            Ok(file) => {
                self.files[i].seen = true;
                Ok(Some(file))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !self.files[i].seen => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// After a read: remembers the limits when they were read, else puts their last values
    /// (and those of a skipped v1 `cpu.stat`) into the sample.
    fn keep_slow(&mut self, out: &mut CgroupSample, read: bool, now: Instant) {
        if read {
            self.slow = Slow {
                quota_us: out.cpu.quota_us,
                period_us: out.cpu.period_us,
                shares: out.cpu.shares,
                spec: out.spec,
                memory_limit: out.memory.limit,
                pids_limit: out.pids.limit,
                periods: out.cpu.periods,
                throttled_periods: out.cpu.throttled_periods,
                throttled_ns: out.cpu.throttled_ns,
                bursts: out.cpu.bursts,
                burst_ns: out.cpu.burst_ns,
            };
            self.ticks.quota = out.cpu.quota_us.is_some();
            // Runtimes write a new container's limits just after creating its cgroup: what
            // the first reads find is not its limits yet. Read them at every read for a few
            // seconds, then at their cadence.
            if now.duration_since(self.opened) < crate::discovery::RETRY_AFTER_DISCOVERY {
                self.limits_due = None;
                return;
            }
            let every = self.options.limits_every;
            // runc writes them only once `runc init`, already in the cgroup, has set the
            // container up (its procReady/procHooks step): on a busy host that is later than
            // the seconds above. So a container younger than a period trusts its limits no
            // longer than it has existed (read again at about 10, 20, 40 s): limits written
            // late show within about twice their delay, not a whole period later.
            let age = now.duration_since(self.opened);
            if age < every {
                self.limits_due = Some(now + age);
                return;
            }
            // The first period is cut at a point set by the inode, so containers found
            // together do not all read their limits on the same tick ever after.
            let first = !self.staggered && !every.is_zero();
            self.staggered = true;
            let wait = if first {
                every.mul_f64((self.inode % 997) as f64 / 997.0)
            } else {
                every
            };
            self.limits_due = Some(now + wait);
            return;
        }
        let s = self.slow;
        out.cpu.quota_us = s.quota_us;
        out.cpu.period_us = s.period_us;
        out.cpu.shares = s.shares;
        out.spec = s.spec;
        out.memory.limit = s.memory_limit;
        out.pids.limit = s.pids_limit;
        if !self.ticks.quota
            && self
                .files
                .iter()
                .any(|f| f.def.cadence == Cadence::UnderQuota)
        {
            out.cpu.periods = s.periods;
            out.cpu.throttled_periods = s.throttled_periods;
            out.cpu.throttled_ns = s.throttled_ns;
            out.cpu.bursts = s.bursts;
            out.cpu.burst_ns = s.burst_ns;
        }
    }

    fn read_net(
        &mut self,
        proc_root: &ProcRoot,
        buf: &mut Vec<u8>,
        out: &mut CgroupSample,
        on_error: &mut dyn FnMut(ReadError),
    ) {
        if self.net_source == NetSource::Skip {
            return;
        }
        match &mut self.net {
            Net::Unknown => {
                progress::doing_path("looking for a process of", &self.procs_dir);
                self.net = self.open_net(proc_root, buf, 1)
            }
            Net::HostNetwork {
                recheck_in,
                backoff,
            } => {
                *recheck_in = recheck_in.saturating_sub(1);
                if *recheck_in == 0 {
                    progress::doing_path("looking for a process of", &self.procs_dir);
                    let next = (*backoff * 2).min(HOST_NETWORK_RECHECK_MAX);
                    self.net = self.open_net(proc_root, buf, next);
                }
            }
            Net::Open(_) | Net::Reopen(_) => {}
        }
        let once;
        let file = match &self.net {
            Net::Open(f) => f,
            Net::Reopen(path) => match open_file(path) {
                Ok(f) => {
                    once = f;
                    &once
                }
                // The process is gone: look for another one next time.
                Err(_) => {
                    self.net = Net::Unknown;
                    return;
                }
            },
            _ => return,
        };
        self.slot.doing(doing::NET, 0);
        match pread_all(file, buf) {
            Ok(n) => {
                if let Err(e) = parse::net_dev(&buf[..n], &mut out.net, &mut out.net_dropped) {
                    on_error(ReadError {
                        path: self.net_dev_name(),
                        kind: ReadErrorKind::Parse(e),
                    });
                }
            }
            Err(e) => {
                on_error(ReadError {
                    path: self.net_dev_name(),
                    kind: ReadErrorKind::Io(e),
                });
                self.net = Net::Unknown;
            }
        }
    }

    /// Finds a process of the container and opens its `net/dev`. The descriptor keeps the
    /// network namespace alive, so it is dropped with the reader when the container goes. A
    /// process in the host's namespace makes it [`Net::HostNetwork`], to be checked again
    /// after `backoff` reads.
    fn open_net(&self, proc_root: &ProcRoot, buf: &mut Vec<u8>, backoff: u32) -> Net {
        let host = Net::HostNetwork {
            recheck_in: backoff,
            backoff,
        };
        // Kept open, or (descriptors short) opened at every read.
        let found = |file: File, path: PathBuf| {
            if self.options.keep_open {
                Net::Open(file)
            } else {
                Net::Reopen(path)
            }
        };
        match self.net_source {
            NetSource::Skip => Net::Unknown,
            NetSource::Own => {
                let once;
                let procs = match (&self.procs, &self.procs_path) {
                    (Some(f), _) => f,
                    (None, Some(path)) => match open_regular(None, path) {
                        Ok(f) => {
                            once = f;
                            &once
                        }
                        Err(_) => return Net::Unknown,
                    },
                    (None, None) => return Net::Unknown,
                };
                let Ok(n) = pread_all(procs, buf) else {
                    return Net::Unknown;
                };
                let Some(pid) = parse::first_pid(&buf[..n]) else {
                    return Net::Unknown;
                };
                match open_net_dev(proc_root, pid) {
                    NetDev::Own(file, path) => found(file, path),
                    NetDev::Host => host,
                    NetDev::Missing => Net::Unknown,
                }
            }
            NetSource::Children => {
                // Any process of the pod will do, but not one still in the host's namespace
                // while others are in the pod's (a container being started): look at each
                // child's first process until one is in a namespace of its own.
                let Ok(children) = std::fs::read_dir(&self.procs_dir) else {
                    return Net::Unknown;
                };
                let mut seen_host = false;
                for child in children.flatten() {
                    if !child.file_type().is_ok_and(|t| t.is_dir()) {
                        continue;
                    }
                    let Ok(procs) = open_regular(None, &child.path().join("cgroup.procs")) else {
                        continue;
                    };
                    let Ok(n) = pread_all(&procs, buf) else {
                        continue;
                    };
                    let Some(pid) = parse::first_pid(&buf[..n]) else {
                        continue;
                    };
                    match open_net_dev(proc_root, pid) {
                        NetDev::Own(file, path) => return found(file, path),
                        NetDev::Host => seen_host = true,
                        NetDev::Missing => {}
                    }
                }
                if seen_host { host } else { Net::Unknown }
            }
        }
    }

    /// What a problem with the network counters is about, in a log line.
    fn net_dev_name(&self) -> PathBuf {
        PathBuf::from(format!("net/dev of {}", self.dir.display()))
    }

    /// The container's process was in the host's network namespace when last looked at (so it
    /// has no network metrics).
    pub fn host_network(&self) -> bool {
        matches!(self.net, Net::HostNetwork { .. })
    }
}

enum NetDev {
    Own(File, PathBuf),
    Host,
    Missing,
}

/// Opens `/proc/<pid>/net/dev`, and says whether it is the host's. procfs gives each network
/// namespace's `net/dev` its own inode, so the host network is recognised without the ptrace
/// access that `ns/net` would need.
fn open_net_dev(proc_root: &ProcRoot, pid: u32) -> NetDev {
    let mut path = proc_root.path.clone();
    path.push(itoa::Buffer::new().format(pid));
    path.push("net/dev");
    let Ok(file) = open_regular(None, &path) else {
        return NetDev::Missing;
    };
    let netns = fstat(file.as_fd()).ok().map(|st| st.st_ino);
    if netns.is_some() && netns == proc_root.host_netns {
        NetDev::Host
    } else {
        NetDev::Own(file, path)
    }
}

/// Failure to start reading a container.
#[derive(Debug)]
pub enum OpenError {
    Gone,
    Io { path: PathBuf, error: io::Error },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Gone => f.write_str("the cgroup is gone"),
            OpenError::Io { path, error } => write!(f, "opening {}: {error}", path.display()),
        }
    }
}
