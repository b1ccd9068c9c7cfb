//! A container's network counters: `/proc/<pid>/net/dev` of one of its processes, found
//! through its `cgroup.procs` (for a Kubernetes pod, through its containers'), kept open while
//! the container lives, and not read at all when the process turns out to be in the host's
//! network namespace (its counters would be the host's).
//!
//! A kept-open `net/dev` keeps its network namespace alive: it is closed (`NetReader::close`) when
//! the container's last process leaves.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::sys::stat::fstat;

use super::ReadErrorKind;
use super::parse;
use super::place::doing;
use super::sample::CgroupSample;
use crate::host::fs::{OpenFail, open_file, open_regular, pread_all};
use crate::progress;

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

#[derive(Debug)]
enum Net {
    /// Not opened yet (or the container had no process last time).
    Unknown,
    /// The process looked at was in the host's network namespace: a guess (a starting
    /// container's first process is `runc init`, `docs/architecture.md`), checked again after
    /// `recheck_in` more reads, at doubling intervals.
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

/// The container's `cgroup.procs`, read only to find a process.
#[derive(Debug)]
enum Procs {
    /// Not opened (absent so far): tried again with the container's other missing files.
    Unopened,
    Kept(File),
    /// Opened when needed (descriptors are short, or it is not kept when lean).
    WhenNeeded,
}

/// One cgroup's network counters: where they come from, and the descriptors that lead there.
#[derive(Debug)]
pub(super) struct NetReader {
    source: NetSource,
    net: Net,
    procs: Procs,
    /// The cgroup's `cgroup.procs` (in the unified hierarchy where there is one); its
    /// directory's children are a pod's containers ([`NetSource::Children`]).
    procs_path: PathBuf,
}

impl NetReader {
    /// For the cgroup at `dir` (in the hierarchy whose `cgroup.procs` lists every process).
    pub(super) fn new(dir: &Path) -> NetReader {
        NetReader {
            source: NetSource::Own,
            net: Net::Unknown,
            procs: Procs::Unopened,
            procs_path: dir.join("cgroup.procs"),
        }
    }

    pub(super) fn set_source(&mut self, source: NetSource) {
        self.source = source;
    }

    /// Opens `cgroup.procs` unless done already: kept open when `keep`, else opened when
    /// needed (as it is when no descriptor is left).
    pub(super) fn open_procs(&mut self, keep: bool) {
        if !matches!(self.procs, Procs::Unopened) {
            return;
        }
        progress::doing_path("opening", &self.procs_path);
        if !keep {
            self.procs = Procs::WhenNeeded;
            return;
        }
        match open_regular(None, &self.procs_path) {
            Ok(f) => self.procs = Procs::Kept(f),
            Err(OpenFail::OutOfDescriptors) => self.procs = Procs::WhenNeeded,
            Err(_) => {}
        }
    }

    /// Descriptors held, or kept for: a reader that keeps its files open (`keep_open`, and
    /// `keep_procs` for `cgroup.procs`) counts the ones it will open at its first read, or once
    /// its container's first process is in a namespace of its own, from the start (so that a
    /// surge of containers stays within the budget: `docs/operations.md`).
    pub(super) fn held(&self, keep_open: bool, keep_procs: bool) -> usize {
        let procs = match self.procs {
            Procs::Kept(_) => true,
            Procs::Unopened => keep_open && keep_procs,
            Procs::WhenNeeded => false,
        };
        let net = match self.net {
            Net::Open(_) => true,
            Net::Unknown | Net::HostNetwork { .. } => keep_open && self.source != NetSource::Skip,
            Net::Reopen(_) => false,
        };
        usize::from(procs) + usize::from(net)
    }

    /// Descriptors held by what is read every tick, `net/dev` (opened or to be opened).
    pub(super) fn per_tick_fds(&self) -> usize {
        usize::from(matches!(self.net, Net::Open(_) | Net::Reopen(_)))
    }

    /// Whether `net/dev` is opened at every read instead of kept open.
    pub(super) fn reopens(&self) -> bool {
        matches!(self.net, Net::Reopen(_))
    }

    /// Keeps open what was opened when needed: `cgroup.procs` too when `keep_procs`. Returns
    /// false when `cgroup.procs` could not be kept.
    pub(super) fn keep_open(&mut self, keep_procs: bool) -> bool {
        if keep_procs && matches!(self.procs, Procs::WhenNeeded) {
            match open_file(&self.procs_path) {
                Ok(file) => self.procs = Procs::Kept(file),
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

    /// Closes `cgroup.procs`, to be opened when needed. Returns the descriptors freed.
    pub(super) fn trim(&mut self) -> usize {
        match self.procs {
            Procs::Kept(_) => {
                self.procs = Procs::WhenNeeded;
                1
            }
            _ => 0,
        }
    }

    /// Reads the counters from a `net/dev` kept open, into `out.net` (replacing what is
    /// there) when it reads and parses whole; nothing is opened. Returns whether it did.
    pub(super) fn read_kept(&mut self, buf: &mut Vec<u8>, out: &mut CgroupSample) -> bool {
        let Net::Open(file) = &self.net else {
            return false;
        };
        let Ok(n) = pread_all(file, buf) else {
            return false;
        };
        super::reads::count_net_dev();
        let (mut net, mut dropped) = (Vec::new(), 0);
        if parse::net_dev(&buf[..n], &mut net, &mut dropped).is_err() {
            return false;
        }
        out.net = net;
        out.net_dropped = dropped;
        true
    }

    /// Closes `net/dev`: its descriptor keeps the network namespace alive.
    pub(super) fn close(&mut self) {
        self.net = Net::Unknown;
    }

    /// No namespace of its own found yet: no process was found (none listed yet in the
    /// hierarchy looked at, whose `cgroup.procs` a runtime may fill after another's), or the
    /// one found was in the host's.
    pub(super) fn unresolved(&self) -> bool {
        self.source != NetSource::Skip && matches!(self.net, Net::Unknown | Net::HostNetwork { .. })
    }

    /// The process was in the host's network namespace when last looked at.
    pub(super) fn host_network(&self) -> bool {
        matches!(self.net, Net::HostNetwork { .. })
    }

    /// `net/dev`, when kept open.
    pub(super) fn kept_file(&self) -> Option<&File> {
        match &self.net {
            Net::Open(f) => Some(f),
            _ => None,
        }
    }

    /// Looks for a process outside the host's network namespace now, between reads, while the
    /// container starts (see [`Net::HostNetwork`]): its first process may enter its namespace
    /// and end before the next read. Returns true while none is found (look again later).
    pub(super) fn look_again(
        &mut self,
        proc_root: &ProcRoot,
        buf: &mut Vec<u8>,
        keep_open: bool,
    ) -> bool {
        if self.source == NetSource::Skip || matches!(self.net, Net::Open(_) | Net::Reopen(_)) {
            return false;
        }
        self.net = self.open(proc_root, buf, 1, keep_open, PIDS_LOOKED_AT_START);
        !matches!(self.net, Net::Open(_) | Net::Reopen(_))
    }

    /// Reads the counters into `out.net`, looking for a process first when there is none
    /// (or the host network's is due for a second look). `keep_open`: a `net/dev` found is
    /// kept open. A problem costs only the network values.
    pub(super) fn read(
        &mut self,
        proc_root: &ProcRoot,
        buf: &mut Vec<u8>,
        out: &mut CgroupSample,
        slot: &progress::Slot,
        keep_open: bool,
    ) -> Result<(), ReadErrorKind> {
        if self.source == NetSource::Skip {
            return Ok(());
        }
        let looking = |procs_path: &Path| {
            let dir = procs_path.parent().unwrap_or(procs_path);
            progress::doing_path("looking for a process of", dir);
        };
        match &mut self.net {
            Net::Unknown => {
                looking(&self.procs_path);
                self.net = self.open(proc_root, buf, 1, keep_open, 1)
            }
            Net::HostNetwork {
                recheck_in,
                backoff,
            } => {
                *recheck_in = recheck_in.saturating_sub(1);
                if *recheck_in == 0 {
                    let next = (*backoff * 2).min(HOST_NETWORK_RECHECK_MAX);
                    looking(&self.procs_path);
                    self.net = self.open(proc_root, buf, next, keep_open, 1);
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
                    return Ok(());
                }
            },
            _ => return Ok(()),
        };
        slot.doing(doing::NET, 0);
        match pread_all(file, buf) {
            Ok(n) => {
                super::reads::count_net_dev();
                parse::net_dev(&buf[..n], &mut out.net, &mut out.net_dropped)
                    .map_err(ReadErrorKind::Parse)
            }
            Err(e) => {
                self.net = Net::Unknown;
                Err(ReadErrorKind::Io(e))
            }
        }
    }

    /// Finds a process of the cgroup and opens its `net/dev`. A process in the host's
    /// namespace makes it [`Net::HostNetwork`], to be checked again after `backoff` reads.
    fn open(
        &self,
        proc_root: &ProcRoot,
        buf: &mut Vec<u8>,
        backoff: u32,
        keep: bool,
        look_at: usize,
    ) -> Net {
        let host = Net::HostNetwork {
            recheck_in: backoff,
            backoff,
        };
        // Kept open, or (descriptors short) opened at every read.
        let found = |file: File, path: PathBuf| {
            if keep {
                Net::Open(file)
            } else {
                Net::Reopen(path)
            }
        };
        match self.source {
            NetSource::Skip => Net::Unknown,
            NetSource::Own => {
                let once;
                let procs = match &self.procs {
                    Procs::Kept(f) => f,
                    Procs::WhenNeeded => match open_regular(None, &self.procs_path) {
                        Ok(f) => {
                            once = f;
                            &once
                        }
                        Err(_) => return Net::Unknown,
                    },
                    Procs::Unopened => return Net::Unknown,
                };
                match net_dev_of(procs, buf, proc_root, look_at) {
                    NetDev::Own(file, path) => found(file, path),
                    NetDev::Host => host,
                    NetDev::Missing => Net::Unknown,
                }
            }
            NetSource::Children => {
                // Any process of the pod will do, but not one still in the host's namespace
                // while others are in the pod's (a container being started): look at each
                // child's first process until one is in a namespace of its own.
                let dir = self.procs_path.parent().unwrap_or(&self.procs_path);
                let Ok(children) = std::fs::read_dir(dir) else {
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
                    match net_dev_of(&procs, buf, proc_root, look_at) {
                        NetDev::Own(file, path) => return found(file, path),
                        NetDev::Host => seen_host = true,
                        NetDev::Missing => {}
                    }
                }
                if seen_host { host } else { Net::Unknown }
            }
        }
    }
}

enum NetDev {
    Own(File, PathBuf),
    Host,
    Missing,
}

/// Processes of one `cgroup.procs` looked at while a container starts, at most.
const PIDS_LOOKED_AT_START: usize = 4;

/// Opens `/proc/<pid>/net/dev` of the first of the first `look_at` processes listed in an open
/// `cgroup.procs` that is not in the host's network namespace (a starting container lists its
/// runtime's init beside its first process). Each namespace's `net/dev` has its own inode, so
/// the host's is recognised without the ptrace access that `ns/net` would need.
fn net_dev_of(procs: &File, buf: &mut Vec<u8>, proc_root: &ProcRoot, look_at: usize) -> NetDev {
    let n = pread_all(procs, buf).unwrap_or(0);
    super::reads::count_procs();
    let mut seen = NetDev::Missing;
    for pid in parse::pids(&buf[..n]).take(look_at) {
        let mut path = proc_root.path.clone();
        path.push(itoa::Buffer::new().format(pid));
        path.push("net/dev");
        let Ok(file) = open_regular(None, &path) else {
            continue;
        };
        let netns = fstat(file.as_fd()).ok().map(|st| st.st_ino);
        if netns.is_some() && netns == proc_root.host_netns {
            seen = NetDev::Host;
        } else {
            return NetDev::Own(file, path);
        }
    }
    seen
}
