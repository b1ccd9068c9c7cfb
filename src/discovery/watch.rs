//! Finding the containers: the walk of the tree ([`walk`]), entering only the directories that
//! can hold more, and discovery without polling ([`Watcher`]): inotify on those directories,
//! and on each container's `cgroup.events` to catch the moment its last process leaves. The
//! descriptor is non-blocking and polled by the collector's own loop next to its tick timer.
//!
//! cgroupfs never retires the watch of a removed directory (`rmdir` raises `IN_DELETE` on the
//! parent, never `IN_DELETE_SELF` or `IN_IGNORED` on the directory): watches are dropped here,
//! by path, when the parent reports the deletion. An overflow is reported for a rescan. When
//! watches run out, a directory is listed again every [`UNWATCHED_RESCAN`] (and its watch
//! retried), and a container whose `cgroup.events` cannot be watched has its exit seen at the
//! next tick; both are logged once per shortage and counted ([`Watcher::unwatched_counts`]).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::classify::{Found, Kind, classify};

/// How long after a container is found what is not there yet is tried again: runtimes create
/// a container's directory in each hierarchy one after the other (its files, and its
/// `cgroup.events` to watch, may be missing for a moment). One policy for both.
pub const RETRY_AFTER_DISCOVERY: Duration = Duration::from_secs(5);

/// Whether a non-container directory may hold containers further down. Non-container
/// scopes (login sessions, `init.scope`, conmon) never do.
fn descend(name: &std::ffi::OsStr) -> bool {
    !name.to_string_lossy().ends_with(".scope")
}

/// How deep the walk goes: real container cgroups sit a few levels down
/// (`kubepods.slice/kubepods-burstable.slice/…pod….slice/cri-containerd-….scope`).
const MAX_DEPTH: usize = 12;

/// Walks the hierarchy mounted at `root` and returns every container (and pod) in it.
/// Containers' own sub-cgroups are not entered; pods' are. Directories that vanish during the walk are skipped.
pub fn walk(root: &Path) -> Vec<Found> {
    let mut found = Vec::new();
    walk_from(root, PathBuf::new(), &mut found, |_| true);
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

/// The walk below `start` (relative to `root`), appending containers to `found`. `visit` is
/// called with each non-container directory before it is listed (the watcher adds its
/// inotify watch there, so nothing created after the listing is missed); it returns false
/// to skip the directory.
fn walk_from(
    root: &Path,
    start: PathBuf,
    found: &mut Vec<Found>,
    mut visit: impl FnMut(&Path) -> bool,
) {
    let depth = start.iter().count();
    let mut stack = vec![(start, depth)];
    let _idle = crate::progress::IdleOnDrop;
    while let Some((rel, depth)) = stack.pop() {
        let dir = root.join(&rel);
        crate::progress::doing_path("listing", &dir);
        if !visit(&rel) {
            continue;
        }
        // `read_dir` opens with O_DIRECTORY (and glibc's opendir with O_NONBLOCK too): a
        // FIFO in the tree is refused, never waited on. Entries are told apart by the type
        // the listing gives, without opening them.
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let child = rel.join(entry.file_name());
            let enter = match classify(&child) {
                // A pod is read as a whole, and its containers one by one.
                Some(f) => {
                    let pod = f.kind == Kind::Pod;
                    found.push(f);
                    pod
                }
                None => descend(&entry.file_name()),
            };
            if enter && depth + 1 < MAX_DEPTH {
                stack.push((child, depth + 1));
            }
        }
    }
}

/// What the watcher saw, in terms the collector understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A container cgroup appeared (or was found in a newly created parent).
    Found(Found),
    /// A container cgroup was removed.
    Removed { id: String },
    /// A container's `cgroup.events` changed: read it now.
    EventsChanged { id: String },
    /// Events were lost: rescan the whole tree.
    Overflow,
}

#[derive(Debug)]
enum Watched {
    /// A directory that may hold containers, by path relative to the discovery root.
    Dir(PathBuf),
    /// A container's `cgroup.events`, by container id.
    Events(String),
}

/// How often directories that could not be watched are listed again.
pub const UNWATCHED_RESCAN: Duration = Duration::from_secs(2);

pub struct Watcher {
    inotify: Inotify,
    discovery_root: PathBuf,
    /// Where `cgroup.events` lives: the v2 root, or `unified/` on hybrid hosts.
    events_root: Option<PathBuf>,
    by_wd: HashMap<WatchDescriptor, Watched>,
    dirs: HashMap<PathBuf, WatchDescriptor>,
    events: HashMap<String, WatchDescriptor>,
    /// Directories that could not be watched, each with the container directories it held
    /// at its last listing.
    unwatched: HashMap<PathBuf, HashSet<OsString>>,
    /// Containers whose `cgroup.events` could not be watched, by id, with their path.
    events_unwatched: HashMap<String, PathBuf>,
    last_unwatched_scan: Instant,
    /// The shortage was logged (once, until every watch is in place again).
    warned: bool,
}

impl Watcher {
    pub fn new(discovery_root: &Path, events_root: Option<&Path>) -> io::Result<Watcher> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        Ok(Watcher {
            inotify,
            discovery_root: discovery_root.to_path_buf(),
            events_root: events_root.map(Path::to_path_buf),
            by_wd: HashMap::new(),
            dirs: HashMap::new(),
            events: HashMap::new(),
            unwatched: HashMap::new(),
            events_unwatched: HashMap::new(),
            last_unwatched_scan: Instant::now(),
            warned: false,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Watches the whole tree (again) and returns the containers in it. Each directory is
    /// watched before it is listed, so nothing created in between is missed.
    pub fn scan(&mut self) -> Vec<Found> {
        let mut found = Vec::new();
        self.scan_from(PathBuf::new(), &mut found);
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found
    }

    fn scan_from(&mut self, start: PathBuf, found: &mut Vec<Found>) {
        let root = self.discovery_root.clone();
        let from = found.len();
        walk_from(&root, start, found, |rel| self.watch_dir(rel));
        // What unwatched directories held, so their next listing tells what is new.
        for f in &found[from..] {
            if let (Some(parent), Some(name)) = (f.rel.parent(), f.rel.file_name())
                && let Some(seen) = self.unwatched.get_mut(parent)
            {
                seen.insert(name.to_os_string());
            }
        }
    }

    /// [`scan_from`](Self::scan_from) `start`, each container found an event in `out`.
    fn scan_into(&mut self, start: PathBuf, out: &mut Vec<WatchEvent>) {
        let mut found = Vec::new();
        self.scan_from(start, &mut found);
        out.extend(found.into_iter().map(WatchEvent::Found));
    }

    /// Watches one directory for created and removed children. False when it is gone.
    fn watch_dir(&mut self, rel: &Path) -> bool {
        if self.dirs.contains_key(rel) {
            return true;
        }
        match self.add_dir_watch(rel) {
            Ok(()) => true,
            Err(Errno::ENOENT) => false,
            // Out of watches (fs.inotify.max_user_watches, ENOSPC): still list it, so its
            // containers are found, and list it again every few seconds.
            Err(e) => {
                self.unwatched.entry(rel.to_path_buf()).or_default();
                self.warn_shortage(e);
                true
            }
        }
    }

    /// Adds the watch of directory `rel` for created and removed children.
    fn add_dir_watch(&mut self, rel: &Path) -> Result<(), Errno> {
        let flags = AddWatchFlags::IN_CREATE | AddWatchFlags::IN_DELETE | AddWatchFlags::IN_ONLYDIR;
        let wd = self
            .inotify
            .add_watch(&self.discovery_root.join(rel), flags)?;
        // A wd can come back for a path whose old watch the kernel retired.
        if let Some(Watched::Dir(old)) = self.by_wd.insert(wd, Watched::Dir(rel.to_path_buf())) {
            self.dirs.remove(&old);
        }
        self.dirs.insert(rel.to_path_buf(), wd);
        Ok(())
    }

    fn warn_shortage(&mut self, e: Errno) {
        if self.warned {
            return;
        }
        self.warned = true;
        let max = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into());
        tracing::warn!(
            "cannot add an inotify watch ({e}; fs.inotify.max_user_watches is {max}, shared by \
             every process of this user): directories that cannot be watched are listed again \
             every {}s and exits of containers whose cgroup.events cannot be watched are seen \
             at the next tick (container_exporter_inotify_unwatched counts them). Raise \
             fs.inotify.max_user_watches",
            UNWATCHED_RESCAN.as_secs()
        );
    }

    /// Lists the directories that could not be watched, retrying their watches: containers
    /// created since the last listing are `Found`, those gone are `Removed`. The same for the
    /// `cgroup.events` watches that could not be added.
    fn rescan_unwatched(&mut self, out: &mut Vec<WatchEvent>) {
        let _idle = crate::progress::IdleOnDrop;
        self.last_unwatched_scan = Instant::now();
        let dirs: Vec<PathBuf> = self.unwatched.keys().cloned().collect();
        for rel in dirs {
            // Watch first, then list: nothing created in between is missed.
            let _ = self.add_dir_watch(&rel);
            let seen = self.unwatched.get(&rel).cloned().unwrap_or_default();
            let dir = self.discovery_root.join(&rel);
            crate::progress::doing_path("listing", &dir);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                // Gone: its containers are gone too, which their reads find out.
                self.unwatched.remove(&rel);
                continue;
            };
            let mut now_seen = HashSet::with_capacity(seen.len());
            let mut new_dirs = Vec::new();
            for entry in entries.flatten() {
                if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let name = entry.file_name();
                let child = rel.join(&name);
                match classify(&child) {
                    Some(f) => {
                        if !seen.contains(&name) {
                            out.push(WatchEvent::Found(f));
                        }
                        now_seen.insert(name);
                    }
                    None if descend(&name)
                        && !self.dirs.contains_key(&child)
                        && !self.unwatched.contains_key(&child) =>
                    {
                        new_dirs.push(child)
                    }
                    None => {}
                }
            }
            for name in seen.difference(&now_seen) {
                if let Some(f) = classify(&rel.join(name)) {
                    out.push(WatchEvent::Removed { id: f.id });
                }
            }
            if self.dirs.contains_key(&rel) {
                self.unwatched.remove(&rel);
            } else {
                self.unwatched.insert(rel, now_seen);
            }
            for d in new_dirs {
                self.scan_into(d, out);
            }
        }
        for (id, rel) in std::mem::take(&mut self.events_unwatched) {
            self.watch_container(&id, &rel);
        }
        if self.unwatched.is_empty() && self.events_unwatched.is_empty() {
            self.warned = false;
        }
    }

    /// Watches a container's `cgroup.events`. Returns false when the file is not there
    /// (yet: runtimes create the hierarchies one after the other), so the caller retries.
    pub fn watch_container(&mut self, id: &str, rel: &Path) -> bool {
        let Some(root) = &self.events_root else {
            return true; // pure v1: nothing to watch
        };
        if self.events.contains_key(id) {
            return true;
        }
        let _idle = crate::progress::IdleOnDrop;
        let path = root.join(rel).join("cgroup.events");
        // Adding a watch looks the path up (never opens it), which a hung filesystem can
        // block all the same.
        crate::progress::doing_path("watching", &path);
        match self.inotify.add_watch(&path, AddWatchFlags::IN_MODIFY) {
            Ok(wd) => {
                if let Some(Watched::Events(old)) =
                    self.by_wd.insert(wd, Watched::Events(id.to_string()))
                {
                    self.events.remove(&old);
                }
                self.events.insert(id.to_string(), wd);
                true
            }
            // Out of watches: the container is read all the same (its exit is seen at the
            // next tick); the watch is retried with the unwatched directories.
            Err(e @ Errno::ENOSPC) => {
                self.events_unwatched
                    .insert(id.to_string(), rel.to_path_buf());
                self.warn_shortage(e);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether the container's `cgroup.events` is watched (so its changes are reported).
    pub fn watches_events(&self, id: &str) -> bool {
        self.events.contains_key(id)
    }

    pub fn unwatch_container(&mut self, id: &str) {
        self.events_unwatched.remove(id);
        if let Some(wd) = self.events.remove(id) {
            self.by_wd.remove(&wd);
            // EINVAL when the kernel already dropped it: nothing left to do.
            let _ = self.inotify.rm_watch(wd);
        }
    }

    /// Drops the `cgroup.events` watches of containers no longer tracked.
    pub fn retain_containers(&mut self, keep: impl Fn(&str) -> bool) {
        self.events_unwatched.retain(|id, _| keep(id));
        let drop: Vec<String> = self.events.keys().filter(|id| !keep(id)).cloned().collect();
        for id in drop {
            self.unwatch_container(&id);
        }
    }

    fn unwatch_dir_tree(&mut self, rel: &Path) {
        self.unwatched.retain(|p, _| !p.starts_with(rel));
        let (by_wd, inotify) = (&mut self.by_wd, &self.inotify);
        self.dirs.retain(|p, wd| {
            let below = p.starts_with(rel);
            if below {
                by_wd.remove(wd);
                let _ = inotify.rm_watch(*wd);
            }
            !below
        });
    }

    /// Reads what is queued (never blocks) and appends it to `out` as events; every
    /// [`UNWATCHED_RESCAN`], what the directories that could not be watched hold.
    pub fn read(&mut self, out: &mut Vec<WatchEvent>) {
        self.read_queue(out);
        if self.rescan_due().is_some_and(|due| Instant::now() >= due) {
            self.rescan_unwatched(out);
        }
    }

    /// When [`read`](Self::read) should be called next to list the directories that could
    /// not be watched, if there are any.
    pub fn rescan_due(&self) -> Option<Instant> {
        (!(self.unwatched.is_empty() && self.events_unwatched.is_empty()))
            .then(|| self.last_unwatched_scan + UNWATCHED_RESCAN)
    }

    fn read_queue(&mut self, out: &mut Vec<WatchEvent>) {
        loop {
            let events = match self.inotify.read_events() {
                Ok(e) => e,
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    out.push(WatchEvent::Overflow);
                    return;
                }
            };
            for ev in events {
                self.translate(ev, out);
            }
        }
    }

    fn translate(&mut self, ev: nix::sys::inotify::InotifyEvent, out: &mut Vec<WatchEvent>) {
        let mask = ev.mask;
        if mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
            out.push(WatchEvent::Overflow);
            return;
        }
        if mask.contains(AddWatchFlags::IN_IGNORED) {
            match self.by_wd.remove(&ev.wd) {
                Some(Watched::Dir(p)) => self.dirs.remove(&p),
                Some(Watched::Events(id)) => self.events.remove(&id),
                None => None,
            };
            return;
        }
        match self.by_wd.get(&ev.wd) {
            Some(Watched::Events(id)) if mask.contains(AddWatchFlags::IN_MODIFY) => {
                out.push(WatchEvent::EventsChanged { id: id.clone() });
            }
            Some(Watched::Events(_)) => {}
            Some(Watched::Dir(parent)) => {
                let Some(name) = ev.name.as_deref() else {
                    return;
                };
                if !mask.contains(AddWatchFlags::IN_ISDIR) {
                    return;
                }
                let rel = parent.join(name);
                if mask.contains(AddWatchFlags::IN_CREATE) {
                    let f = classify(&rel);
                    let pod = f.as_ref().is_some_and(|f| f.kind == Kind::Pod);
                    match f {
                        Some(f) if !pod => out.push(WatchEvent::Found(f)),
                        _ if pod || descend(name) => {
                            // A new slice, or a Kubernetes pod (found itself, and holding
                            // containers): watch it and pick up whatever was created in it
                            // before the watch existed.
                            out.extend(f.map(WatchEvent::Found));
                            self.scan_into(rel, out);
                        }
                        _ => {}
                    }
                } else if mask.contains(AddWatchFlags::IN_DELETE) {
                    if let Some(f) = classify(&rel) {
                        out.push(WatchEvent::Removed { id: f.id });
                    }
                    self.unwatch_dir_tree(&rel);
                }
            }
            None => {}
        }
    }

    /// Watches held: directories and `cgroup.events` files.
    pub fn watch_counts(&self) -> (usize, usize) {
        (self.dirs.len(), self.events.len())
    }

    /// Watches missing for want of inotify watches: directories (listed every
    /// [`UNWATCHED_RESCAN`] instead) and containers' `cgroup.events` files.
    pub fn unwatched_counts(&self) -> (usize, usize) {
        (self.unwatched.len(), self.events_unwatched.len())
    }
}
