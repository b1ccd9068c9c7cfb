//! Discovery without polling: inotify on the directories that can hold containers, and on
//! each container's `cgroup.events` to catch the moment its last process leaves.
//!
//! cgroupfs differs from ordinary filesystems in a way that decides the design (see
//! FINDINGS): `rmdir` raises `IN_DELETE` on the parent, but the removed directory's own watch
//! never gets `IN_DELETE_SELF` or `IN_IGNORED`. So watches are dropped here, by path, when the
//! parent reports the deletion; nothing relies on the kernel to retire them. An event queue
//! overflow (`IN_Q_OVERFLOW`) is reported so the caller rescans the tree.
//!
//! The descriptor is non-blocking and polled by the collector's own loop next to its tick
//! timer, so a final sample is read in the same thread, at once, with no channel between.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::{Found, Kind, classify, descend, walk_from};

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

pub struct Watcher {
    inotify: Inotify,
    discovery_root: PathBuf,
    /// Where `cgroup.events` lives: the v2 root, or `unified/` on hybrid hosts.
    events_root: Option<PathBuf>,
    by_wd: HashMap<WatchDescriptor, Watched>,
    dirs: HashMap<PathBuf, WatchDescriptor>,
    events: HashMap<String, WatchDescriptor>,
}

fn dir_flags() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE | AddWatchFlags::IN_DELETE | AddWatchFlags::IN_ONLYDIR
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
        walk_from(&root, start, found, |rel| self.watch_dir(rel));
    }

    /// Watches one directory for created and removed children. False when it is gone.
    fn watch_dir(&mut self, rel: &Path) -> bool {
        if self.dirs.contains_key(rel) {
            return true;
        }
        match self
            .inotify
            .add_watch(&self.discovery_root.join(rel), dir_flags())
        {
            Ok(wd) => {
                // A wd can come back for a path whose old watch the kernel retired.
                if let Some(Watched::Dir(old)) =
                    self.by_wd.insert(wd, Watched::Dir(rel.to_path_buf()))
                {
                    self.dirs.remove(&old);
                }
                self.dirs.insert(rel.to_path_buf(), wd);
                true
            }
            Err(Errno::ENOENT) => false,
            // Out of watches (fs.inotify.max_user_watches): still list it, so its containers
            // are found; new ones below it wait for the rescan.
            Err(_) => true,
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
        match self.inotify.add_watch(
            &root.join(rel).join("cgroup.events"),
            AddWatchFlags::IN_MODIFY,
        ) {
            Ok(wd) => {
                if let Some(Watched::Events(old)) =
                    self.by_wd.insert(wd, Watched::Events(id.to_string()))
                {
                    self.events.remove(&old);
                }
                self.events.insert(id.to_string(), wd);
                true
            }
            Err(_) => false,
        }
    }

    pub fn unwatch_container(&mut self, id: &str) {
        if let Some(wd) = self.events.remove(id) {
            self.by_wd.remove(&wd);
            // EINVAL when the kernel already dropped it: nothing left to do.
            let _ = self.inotify.rm_watch(wd);
        }
    }

    /// Drops the `cgroup.events` watches of containers no longer tracked.
    pub fn retain_containers(&mut self, keep: impl Fn(&str) -> bool) {
        let drop: Vec<String> = self.events.keys().filter(|id| !keep(id)).cloned().collect();
        for id in drop {
            self.unwatch_container(&id);
        }
    }

    fn unwatch_dir_tree(&mut self, rel: &Path) {
        let below: Vec<PathBuf> = self
            .dirs
            .keys()
            .filter(|p| p.starts_with(rel))
            .cloned()
            .collect();
        for p in below {
            if let Some(wd) = self.dirs.remove(&p) {
                self.by_wd.remove(&wd);
                let _ = self.inotify.rm_watch(wd);
            }
        }
    }

    /// Reads what is queued (never blocks) and appends it to `out` as events.
    pub fn read(&mut self, out: &mut Vec<WatchEvent>) {
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
                Some(Watched::Dir(p)) => {
                    self.dirs.remove(&p);
                }
                Some(Watched::Events(id)) => {
                    self.events.remove(&id);
                }
                None => {}
            }
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
                            let mut found = Vec::new();
                            self.scan_from(rel, &mut found);
                            out.extend(found.into_iter().map(WatchEvent::Found));
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
}
