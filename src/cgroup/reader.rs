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

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstat};

use super::layout::{Layout, LayoutKind};
use super::parse::{self, BlkioKind, ParseError, Single};
use super::sample::{CgroupSample, Psi};

/// What a file holds, and so how it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    CpuStatV2,
    CpuMax,
    MemoryCurrent,
    MemoryMax,
    MemoryStatV2,
    MemoryPeak,
    MemoryEvents,
    MemorySwapCurrent,
    PidsCurrent,
    PidsMax,
    IoStat,
    CpuPressure,
    MemoryPressure,
    IoPressure,
    CgroupEvents,
    CpuacctUsage,
    CpuacctStat,
    CfsQuota,
    CfsPeriod,
    CpuStatV1,
    MemoryUsageV1,
    MemoryLimitV1,
    MemoryStatV1,
    OomControl,
    BlkioBytes,
    BlkioOps,
}

/// Which mount a planned file lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hier {
    Unified,
    Cpu,
    Cpuacct,
    Memory,
    Blkio,
    Pids,
}

/// The files read for each layout. On hybrid hosts the unified hierarchy gives exact
/// user/system CPU (`cpu.stat` in µs instead of v1's USER_HZ ticks), pressure and
/// `cgroup.events`; the v1 controllers give the rest.
const PLAN_V2: &[(Hier, &str, FileKind)] = &[
    (Hier::Unified, "cpu.stat", FileKind::CpuStatV2),
    (Hier::Unified, "cpu.max", FileKind::CpuMax),
    (Hier::Unified, "memory.current", FileKind::MemoryCurrent),
    (Hier::Unified, "memory.max", FileKind::MemoryMax),
    (Hier::Unified, "memory.stat", FileKind::MemoryStatV2),
    (Hier::Unified, "memory.peak", FileKind::MemoryPeak),
    (Hier::Unified, "memory.events", FileKind::MemoryEvents),
    (
        Hier::Unified,
        "memory.swap.current",
        FileKind::MemorySwapCurrent,
    ),
    (Hier::Unified, "pids.current", FileKind::PidsCurrent),
    (Hier::Unified, "pids.max", FileKind::PidsMax),
    (Hier::Unified, "io.stat", FileKind::IoStat),
    (Hier::Unified, "cpu.pressure", FileKind::CpuPressure),
    (Hier::Unified, "memory.pressure", FileKind::MemoryPressure),
    (Hier::Unified, "io.pressure", FileKind::IoPressure),
    (Hier::Unified, "cgroup.events", FileKind::CgroupEvents),
];

const PLAN_V1: &[(Hier, &str, FileKind)] = &[
    (Hier::Unified, "cpu.stat", FileKind::CpuStatV2),
    (Hier::Unified, "cpu.pressure", FileKind::CpuPressure),
    (Hier::Unified, "memory.pressure", FileKind::MemoryPressure),
    (Hier::Unified, "io.pressure", FileKind::IoPressure),
    (Hier::Unified, "cgroup.events", FileKind::CgroupEvents),
    // Only opened when the unified `cpu.stat` is not there (pure v1): see `open`.
    (Hier::Cpuacct, "cpuacct.usage", FileKind::CpuacctUsage),
    (Hier::Cpuacct, "cpuacct.stat", FileKind::CpuacctStat),
    (Hier::Cpu, "cpu.stat", FileKind::CpuStatV1),
    (Hier::Cpu, "cpu.cfs_quota_us", FileKind::CfsQuota),
    (Hier::Cpu, "cpu.cfs_period_us", FileKind::CfsPeriod),
    (
        Hier::Memory,
        "memory.usage_in_bytes",
        FileKind::MemoryUsageV1,
    ),
    (
        Hier::Memory,
        "memory.limit_in_bytes",
        FileKind::MemoryLimitV1,
    ),
    (Hier::Memory, "memory.stat", FileKind::MemoryStatV1),
    (
        Hier::Memory,
        "memory.max_usage_in_bytes",
        FileKind::MemoryPeak,
    ),
    (Hier::Memory, "memory.oom_control", FileKind::OomControl),
    (Hier::Pids, "pids.current", FileKind::PidsCurrent),
    (Hier::Pids, "pids.max", FileKind::PidsMax),
    (
        Hier::Blkio,
        "blkio.throttle.io_service_bytes_recursive",
        FileKind::BlkioBytes,
    ),
    (
        Hier::Blkio,
        "blkio.throttle.io_serviced_recursive",
        FileKind::BlkioOps,
    ),
];

/// v1 reports "no limit" as the largest page-aligned page-counter value
/// (`PAGE_COUNTER_MAX * PAGE_SIZE`, 0x7FFFFFFFFFFFF000 on 4 KiB pages); anything from
/// 2^62 up is no real limit on any machine.
const V1_UNLIMITED: u64 = 1 << 62;

/// Reads above this size are treated as truncated rather than grown without bound.
const MAX_READ: usize = 4 << 20;

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
            ReadErrorKind::Parse(e) if e.reason.starts_with("truncated") => "truncated",
            ReadErrorKind::Parse(_) => "malformed",
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
        let host_netns =
            ino(&path.join("1/net/dev")).or_else(|| ino(Path::new("/proc/self/net/dev")));
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

/// The open files of one container, ready to be re-read each tick.
#[derive(Debug)]
pub struct CgroupReader {
    files: Vec<(FileKind, File, &'static str)>,
    /// `cgroup.procs`, to find a process whose network namespace to read.
    procs: Option<File>,
    /// The directory holding `cgroup.procs` (for [`NetSource::Children`]).
    procs_dir: PathBuf,
    net_source: NetSource,
    net: Net,
    /// The container's directory under the discovery root, for error messages.
    dir: PathBuf,
    /// Inode of the container's directory in the discovery hierarchy: its identity.
    pub inode: u64,
    /// When the cgroup directory was created (kernfs sets its change time then), in
    /// seconds and nanoseconds since the epoch.
    pub created: (i64, i64),
    /// Hierarchies whose directory for this container did not exist (yet) at open.
    missing: Vec<Hier>,
}

fn open_dir(root: &Path, rel: &Path) -> io::Result<File> {
    File::open(root.join(rel))
}

/// Opens `name` in `dir` for reading, but only if it is a regular file (every cgroup and
/// procfs file read here is one): never blocking, so that a FIFO or a device put where a
/// cgroup file should be cannot hang the collector. `Err(None)`: it is not there.
fn open_regular(
    dir: Option<std::os::fd::BorrowedFd<'_>>,
    path: &Path,
) -> Result<File, Option<io::Error>> {
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let fd = match dir {
        Some(d) => openat(d, path, flags, Mode::empty()),
        None => nix::fcntl::open(path, flags, Mode::empty()),
    };
    let file = match fd {
        Ok(fd) => File::from(fd),
        Err(e) if gone_errno(e) => return Err(None),
        Err(e) => return Err(Some(e.into())),
    };
    match fstat(file.as_fd()) {
        Ok(st) if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFREG.bits() => Ok(file),
        Ok(_) => Err(Some(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a cgroup file always is): not read",
        ))),
        Err(e) => Err(Some(e.into())),
    }
}

fn gone_errno(e: Errno) -> bool {
    matches!(e, Errno::ENOENT | Errno::ENODEV)
}

fn plan(layout: &Layout) -> &'static [(Hier, &'static str, FileKind)] {
    match layout.kind {
        LayoutKind::V2 => PLAN_V2,
        LayoutKind::Hybrid | LayoutKind::V1 => PLAN_V1,
    }
}

fn mount(layout: &Layout, h: Hier) -> Option<&Path> {
    match h {
        Hier::Unified => layout.unified.as_deref(),
        Hier::Cpu => layout.cpu.as_deref(),
        Hier::Cpuacct => layout.cpuacct.as_deref(),
        Hier::Memory => layout.memory.as_deref(),
        Hier::Blkio => layout.blkio.as_deref(),
        Hier::Pids => layout.pids.as_deref(),
    }
}

impl CgroupReader {
    /// Opens every file the layout offers for the container at `rel` (a path relative to
    /// each hierarchy's mount, like `docker/<id>`). A missing directory in the discovery
    /// hierarchy means the container is gone.
    pub fn open(layout: &Layout, rel: &Path) -> Result<CgroupReader, OpenError> {
        let primary = layout.discovery_root();
        let dir = primary.join(rel);
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
            files: Vec::with_capacity(plan(layout).len()),
            procs: None,
            procs_dir,
            net_source: NetSource::Own,
            net: Net::Unknown,
            dir,
            inode: st.st_ino,
            created: (st.st_ctime, st.st_ctime_nsec),
            missing: Vec::new(),
        };
        let all = [
            Hier::Unified,
            Hier::Cpu,
            Hier::Cpuacct,
            Hier::Memory,
            Hier::Blkio,
            Hier::Pids,
        ];
        reader.open_hierarchies(layout, rel, &all)?;
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
            let missing = std::mem::take(&mut self.missing);
            self.open_hierarchies(layout, rel, &missing)?;
        }
        Ok(!self.missing.is_empty())
    }

    fn open_hierarchies(
        &mut self,
        layout: &Layout,
        rel: &Path,
        which: &[Hier],
    ) -> Result<(), OpenError> {
        // One directory descriptor per hierarchy, opened on first use.
        let mut dirs: Vec<(Hier, Option<File>)> = Vec::with_capacity(which.len());
        for &(hier, name, kind) in plan(layout) {
            if !which.contains(&hier) {
                continue;
            }
            let has_unified_cpu = self.files.iter().any(|f| f.0 == FileKind::CpuStatV2);
            if matches!(kind, FileKind::CpuacctUsage | FileKind::CpuacctStat) && has_unified_cpu {
                continue;
            }
            let Some(root) = mount(layout, hier) else {
                continue;
            };
            let dir_fd = match dirs.iter().position(|(h, _)| *h == hier) {
                Some(i) => &dirs[i].1,
                None => {
                    let d = open_dir(root, rel).ok();
                    if d.is_none() && !self.missing.contains(&hier) {
                        self.missing.push(hier);
                    }
                    dirs.push((hier, d));
                    &dirs.last().expect("just pushed").1
                }
            };
            let Some(dir_fd) = dir_fd else { continue };
            match open_regular(Some(dir_fd.as_fd()), Path::new(name)) {
                Ok(file) => {
                    if kind == FileKind::CpuStatV2 {
                        // Exact µs user/system beats v1's tick-based split.
                        self.files.retain(|f| {
                            !matches!(f.0, FileKind::CpuacctUsage | FileKind::CpuacctStat)
                        });
                    }
                    self.files.push((kind, file, name));
                }
                // Absent file: this kernel or controller does not offer it.
                Err(None) => {}
                Err(Some(error)) => {
                    return Err(OpenError::Io {
                        path: root.join(rel).join(name),
                        error,
                    });
                }
            }
        }
        if self.procs.is_none() {
            self.procs = open_regular(None, &self.procs_dir.join("cgroup.procs")).ok();
        }
        Ok(())
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
        self.files.iter().map(|(_, f, _)| f).chain(net)
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
        let mut v1_ticks = (None, None);
        for i in 0..self.files.len() {
            let (kind, ref file, name) = self.files[i];
            let n = match pread_all(file, buf) {
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
            if let Err(e) = parse_into(kind, &buf[..n], out, &mut v1_ticks) {
                on_error(ReadError {
                    path: self.dir.join(name),
                    kind: ReadErrorKind::Parse(e),
                });
            }
        }
        finish(out, v1_ticks);
        self.read_net(proc_root, buf, out, on_error);
        Ok(())
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
            Net::Unknown => self.net = self.open_net(proc_root, buf, 1),
            Net::HostNetwork {
                recheck_in,
                backoff,
            } => {
                *recheck_in = recheck_in.saturating_sub(1);
                if *recheck_in == 0 {
                    let next = (*backoff * 2).min(HOST_NETWORK_RECHECK_MAX);
                    self.net = self.open_net(proc_root, buf, next);
                }
            }
            Net::Open(_) => {}
        }
        let Net::Open(file) = &self.net else { return };
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
        match self.net_source {
            NetSource::Skip => Net::Unknown,
            NetSource::Own => {
                let Some(procs) = &self.procs else {
                    return Net::Unknown;
                };
                let Ok(n) = pread_all(procs, buf) else {
                    return Net::Unknown;
                };
                let Some(pid) = parse::first_pid(&buf[..n]) else {
                    return Net::Unknown;
                };
                match open_net_dev(proc_root, pid) {
                    NetDev::Own(file) => Net::Open(file),
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
                        NetDev::Own(file) => return Net::Open(file),
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
    Own(File),
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
        NetDev::Own(file)
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

/// `pread` at offset 0 until the whole content fits in `buf` (grown as needed, up to
/// `MAX_READ`). Returns the number of bytes read.
fn pread_all(file: &File, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.len() < 4096 {
        buf.resize(4096, 0);
    }
    loop {
        let n = file.read_at(buf, 0)?;
        if n < buf.len() || buf.len() >= MAX_READ {
            return Ok(n);
        }
        // Filled the buffer: the file may be longer. Re-read from 0 with more room, so
        // the content comes from one generation.
        let bigger = (buf.len() * 2).min(MAX_READ);
        buf.resize(bigger, 0);
    }
}

fn limit_v1(v: u64) -> Option<u64> {
    (v < V1_UNLIMITED).then_some(v)
}

fn value(s: Single) -> Option<u64> {
    match s {
        Single::Value(v) => Some(v),
        Single::Unlimited => None,
    }
}

fn psi(buf: &[u8], slot: &mut Option<Psi>) -> Result<(), ParseError> {
    let mut p = Psi::default();
    let r = parse::pressure(buf, &mut p);
    if p.some_us.is_some() || p.full_us.is_some() {
        *slot = Some(p);
    }
    r
}

fn parse_into(
    kind: FileKind,
    buf: &[u8],
    out: &mut CgroupSample,
    v1_ticks: &mut (Option<u64>, Option<u64>),
) -> Result<(), ParseError> {
    let cpu = &mut out.cpu;
    let mem = &mut out.memory;
    match kind {
        FileKind::CpuStatV2 => parse::flat_keyed(buf, |k, v| match k {
            b"usage_usec" => cpu.usage_ns = Some(v.saturating_mul(1000)),
            b"user_usec" => cpu.user_ns = Some(v.saturating_mul(1000)),
            b"system_usec" => cpu.system_ns = Some(v.saturating_mul(1000)),
            b"nr_periods" => cpu.periods = Some(v),
            b"nr_throttled" => cpu.throttled_periods = Some(v),
            b"throttled_usec" => cpu.throttled_ns = Some(v.saturating_mul(1000)),
            _ => {}
        }),
        FileKind::CpuStatV1 => parse::flat_keyed(buf, |k, v| match k {
            b"nr_periods" => cpu.periods = Some(v),
            b"nr_throttled" => cpu.throttled_periods = Some(v),
            b"throttled_time" => cpu.throttled_ns = Some(v),
            _ => {}
        }),
        FileKind::CpuMax => {
            let (quota, period) = parse::cpu_max(buf)?;
            cpu.quota_us = value(quota);
            cpu.period_us = Some(period);
            Ok(())
        }
        FileKind::CfsQuota => {
            cpu.quota_us = value(parse::single(buf)?);
            Ok(())
        }
        FileKind::CfsPeriod => {
            cpu.period_us = value(parse::single(buf)?);
            Ok(())
        }
        FileKind::CpuacctUsage => {
            cpu.usage_ns = value(parse::single(buf)?);
            Ok(())
        }
        FileKind::CpuacctStat => parse::flat_keyed(buf, |k, v| match k {
            b"user" => v1_ticks.0 = Some(v),
            b"system" => v1_ticks.1 = Some(v),
            _ => {}
        }),
        FileKind::MemoryCurrent => {
            mem.usage = value(parse::single(buf)?);
            Ok(())
        }
        FileKind::MemoryUsageV1 => {
            mem.usage = value(parse::single(buf)?);
            Ok(())
        }
        FileKind::MemoryMax => {
            mem.limit = value(parse::single(buf)?);
            Ok(())
        }
        FileKind::MemoryLimitV1 => {
            mem.limit = value(parse::single(buf)?).and_then(limit_v1);
            Ok(())
        }
        FileKind::MemoryStatV2 => parse::flat_keyed(buf, |k, v| match k {
            b"anon" => mem.anon = Some(v),
            b"file" => mem.file = Some(v),
            b"inactive_file" => mem.inactive_file = Some(v),
            b"pgfault" => mem.pgfault = Some(v),
            b"pgmajfault" => mem.pgmajfault = Some(v),
            _ => {}
        }),
        FileKind::MemoryStatV1 => parse::flat_keyed(buf, |k, v| match k {
            b"total_rss" => mem.anon = Some(v),
            b"total_cache" => mem.file = Some(v),
            b"total_inactive_file" => mem.inactive_file = Some(v),
            b"total_swap" => mem.swap = Some(v),
            b"total_pgfault" => mem.pgfault = Some(v),
            b"total_pgmajfault" => mem.pgmajfault = Some(v),
            _ => {}
        }),
        FileKind::MemoryEvents | FileKind::OomControl => parse::flat_keyed(buf, |k, v| {
            if k == b"oom_kill" {
                mem.oom_kills = Some(v);
            }
        }),
        FileKind::MemoryPeak => {
            mem.peak = value(parse::single(buf)?);
            Ok(())
        }
        FileKind::MemorySwapCurrent => {
            mem.swap = value(parse::single(buf)?);
            Ok(())
        }
        FileKind::PidsCurrent => {
            out.pids.current = value(parse::single(buf)?);
            Ok(())
        }
        FileKind::PidsMax => {
            out.pids.limit = value(parse::single(buf)?);
            Ok(())
        }
        FileKind::IoStat => parse::io_stat(buf, &mut out.io, &mut out.io_dropped),
        FileKind::BlkioBytes => {
            parse::blkio(buf, BlkioKind::Bytes, &mut out.io, &mut out.io_dropped)
        }
        FileKind::BlkioOps => parse::blkio(buf, BlkioKind::Ops, &mut out.io, &mut out.io_dropped),
        FileKind::CpuPressure => psi(buf, &mut out.cpu_pressure),
        FileKind::MemoryPressure => psi(buf, &mut out.memory_pressure),
        FileKind::IoPressure => psi(buf, &mut out.io_pressure),
        FileKind::CgroupEvents => {
            let populated = &mut out.populated;
            parse::flat_keyed(buf, |k, v| {
                if k == b"populated" {
                    *populated = Some(v != 0);
                }
            })
        }
    }
}

/// v1 `cpuacct.stat` is in USER_HZ ticks: split the exact `cpuacct.usage` in its proportion,
/// so user + system add up to the total.
fn finish(out: &mut CgroupSample, v1_ticks: (Option<u64>, Option<u64>)) {
    if let ((Some(user), Some(system)), Some(usage)) = (v1_ticks, out.cpu.usage_ns) {
        let total = u128::from(user) + u128::from(system);
        let user_ns = (u128::from(usage) * u128::from(user))
            .checked_div(total)
            .map_or(0, |v| v as u64);
        out.cpu.user_ns = Some(user_ns);
        out.cpu.system_ns = Some(usage - user_ns);
    }
}

/// Parses a set of files (kernel file name, content) as the reader would, for fixtures and
/// parser benchmarks. `v1` selects v1 semantics for the names both versions use
/// (`cpu.stat`, `memory.stat`); the unified hierarchy's `cpu.stat` on a hybrid host is
/// passed as `unified/cpu.stat`. Returns the problems by file name.
pub fn parse_files<'a>(
    v1: bool,
    files: &[(&'a str, &[u8])],
    out: &mut CgroupSample,
) -> Vec<(&'a str, ParseError)> {
    out.clear();
    let mut ticks = (None, None);
    let mut problems = Vec::new();
    for &(name, content) in files {
        let kind = if name == "unified/cpu.stat" {
            Some(FileKind::CpuStatV2)
        } else {
            let plan = if v1 { PLAN_V1 } else { PLAN_V2 };
            plan.iter()
                .find(|(h, n, _)| *n == name && !(v1 && *h == Hier::Unified && name == "cpu.stat"))
                .map(|&(_, _, k)| k)
        };
        let result = match kind {
            Some(kind) => parse_into(kind, content, out, &mut ticks),
            None => Err(ParseError {
                line: 0,
                reason: "not a file this exporter reads",
            }),
        };
        if let Err(e) = result {
            problems.push((name, e));
        }
    }
    finish(out, ticks);
    problems
}
