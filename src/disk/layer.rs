//! Where a container's writable layer is, and which device its filesystem is on.
//!
//! The layer is the `upperdir` of the overlay mounted at `/` in one of the container's
//! processes (the first pid of its `cgroup.procs`, its `/proc/<pid>/mountinfo`). A process
//! whose root is still the host's (pid 1's) is the runtime's init before it entered the
//! container: the container is looked at again, with a doubling wait, for [`LOCATE_FOR`].
//! A root of another filesystem type gives no layer (only overlay's upper directory is the
//! container's own data).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::host::mountinfo::{self, RootMount};
use crate::host::{block, fs};

/// How long a container whose process still has the host's root (a runtime's init that has
/// not entered the container yet) is looked at again before it is taken as having no layer.
pub const LOCATE_FOR: Duration = Duration::from_secs(60);
/// The first wait before such a container is looked at again, doubled each time (1, 2, 4, …
/// 32 s: six reads of a mountinfo in a minute, not sixty).
pub const LOCATE_RETRY: Duration = Duration::from_secs(1);
/// Filesystems whose device names are remembered, at most.
const DEVICES_MAX: usize = 256;

/// Where a container's root filesystem is, from one of its processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// overlay: the `upperdir` (a host path).
    Overlay(PathBuf),
    /// Another filesystem type: no usage of the container's own.
    NotOverlay(String),
    /// The process has the host's root (it has not entered the container yet).
    HostRoot,
    /// No process, or its mountinfo could not be read.
    NoProcess,
}

/// The root mount of the first process in `procs` (a `cgroup.procs`), compared with the host's
/// (`host_root`, pid 1's).
pub fn find_layer(proc_root: &Path, procs: &Path, host_root: Option<&RootMount>) -> Found {
    let Some(pid) = fs::read_regular_file(procs)
        .ok()
        .and_then(|procs| crate::cgroup::parse::first_pid(&procs))
    else {
        return Found::NoProcess;
    };
    let info = std::fs::read(proc_root.join(pid.to_string()).join("mountinfo"));
    match info.ok().and_then(|m| mountinfo::root_mount(&m)) {
        None => Found::NoProcess,
        Some(root) if host_root.is_some_and(|h| h.same_as(&root)) => Found::HostRoot,
        Some(root) => match root.upperdir {
            Some(up) => Found::Overlay(up),
            None => Found::NotOverlay(root.fstype),
        },
    }
}

/// pid 1's root mount: the host's, for [`find_layer`].
pub fn host_root_mount(proc_root: &Path) -> Option<RootMount> {
    std::fs::read(proc_root.join("1/mountinfo"))
        .ok()
        .and_then(|m| mountinfo::root_mount(&m))
}

/// What is known of a container's writable layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// Not looked for yet, or its process had not entered the container yet: looked for
    /// again at `next_try`.
    Pending { since: Instant, next_try: Instant },
    /// The `upperdir` (a host path).
    Found(PathBuf),
    /// Its root is not overlay (the filesystem type).
    Unsupported(String),
    /// Found in mountinfo but not reachable below `--host-root`, or no process to ask.
    Unreachable(Unreachable),
}

/// Why a container's writable layer cannot be walked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreachable {
    #[error("no process to look at")]
    NoProcess,
    /// The `upperdir` named in mountinfo does not open below `--host-root`.
    #[error("{}: {errno}", path.display())]
    Open { path: PathBuf, errno: Errno },
}

impl Layer {
    /// A layer not looked for yet: looked for at once.
    pub fn pending(now: Instant) -> Layer {
        Layer::Pending {
            since: now,
            next_try: now,
        }
    }

    /// What `found` says of the layer of a container looked for since `since`: `None` while
    /// it is worth looking again (not in the container yet, or a container that shares the
    /// host's root).
    pub fn located(found: Found, since: Instant, now: Instant) -> Option<Layer> {
        let waited = now.saturating_duration_since(since) >= LOCATE_FOR;
        match found {
            Found::Overlay(up) => Some(Layer::Found(up)),
            Found::NotOverlay(fstype) => Some(Layer::Unsupported(fstype)),
            Found::HostRoot => waited.then(|| Layer::Unsupported("the host's root".into())),
            Found::NoProcess => waited.then_some(Layer::Unreachable(Unreachable::NoProcess)),
        }
    }

    /// A pending layer looked for again after twice as long as it has been looked for.
    pub fn retried(since: Instant, now: Instant) -> Layer {
        let waited = now.saturating_duration_since(since);
        Layer::Pending {
            since,
            next_try: now + waited.max(LOCATE_RETRY),
        }
    }
}

/// cAdvisor's names for the filesystems walks were on, by `st_dev`, remembered.
#[derive(Default)]
pub struct DeviceNames {
    names: HashMap<u64, Arc<str>>,
}

impl DeviceNames {
    /// The name of the filesystem `dev`: the source of its mount in the exporter's mountinfo
    /// (below `proc_root`), else `/dev/<name>` from sysfs, else `MAJ:MIN`.
    pub fn name(&mut self, proc_root: &Path, dev: u64) -> Arc<str> {
        if let Some(d) = self.names.get(&dev) {
            return d.clone();
        }
        let (maj, min) = mountinfo::split_dev(dev);
        let name = std::fs::read(proc_root.join("self/mountinfo"))
            .ok()
            .and_then(|m| mountinfo::source_of(&m, (maj, min)))
            .filter(|s| s.starts_with('/'))
            .or_else(|| block::dev_name(Path::new(block::SYS_DEV_BLOCK), &format!("{maj}:{min}")))
            .unwrap_or_else(|| format!("{maj}:{min}"));
        let name: Arc<str> = name.into();
        if self.names.len() < DEVICES_MAX {
            self.names.insert(dev, name.clone());
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_process_names_the_layer_and_a_fifo_is_not_waited_on() {
        let d = std::env::temp_dir().join(format!("ce-layer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for pid in ["1", "42"] {
            std::fs::create_dir_all(d.join(pid)).unwrap();
        }
        let host = b"1 0 8:1 / / rw - ext4 /dev/vda1 rw\n";
        std::fs::write(d.join("1/mountinfo"), host).unwrap();
        std::fs::write(
            d.join("42/mountinfo"),
            b"7 5 0:52 / / rw - overlay overlay rw,lowerdir=/l,upperdir=/u/diff,workdir=/w\n",
        )
        .unwrap();
        let procs = d.join("cgroup.procs");
        // Pids outside the reader's namespace read as 0 on cgroup2.
        std::fs::write(&procs, b"0\n42\n1\n").unwrap();
        let host_root = host_root_mount(&d);
        let found = find_layer(&d, &procs, host_root.as_ref());
        assert_eq!(found, Found::Overlay("/u/diff".into()));
        std::fs::write(&procs, b"1\n").unwrap();
        assert_eq!(find_layer(&d, &procs, host_root.as_ref()), Found::HostRoot);
        std::fs::remove_file(&procs).unwrap();
        nix::unistd::mkfifo(&procs, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(find_layer(&d, &procs, host_root.as_ref()), Found::NoProcess);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_host_root_is_waited_out_then_given_up() {
        let t0 = Instant::now();
        assert_eq!(Layer::located(Found::HostRoot, t0, t0), None);
        assert_eq!(
            Layer::located(Found::HostRoot, t0, t0 + LOCATE_FOR),
            Some(Layer::Unsupported("the host's root".into()))
        );
        let Layer::Pending { next_try, .. } = Layer::retried(t0, t0 + Duration::from_secs(4))
        else {
            panic!()
        };
        assert_eq!(next_try, t0 + Duration::from_secs(8));
    }
}
