//! Where a container's writable layer is, and which device its filesystem is on: Docker's own
//! record of it, else the `upperdir` of the overlay at `/` of one of the container's processes
//! when it is where a runtime keeps its layers ([`trusted`]). A process in the host's mount
//! namespace is told by its `ns/mnt` alone ([`HostView`]) and looked at again for
//! [`LOCATE_FOR`]. The rules and their reasons: `docs/disk.md`, "The layer, the same way for
//! every runtime".

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::exchange::DiskStats;
use super::walk;
use crate::host::mountinfo::{self, RootMount};
use crate::host::{block, fs};

/// How long a container whose process still has the host's root (a runtime's init that has
/// not entered the container yet) is looked at again before it is taken as having no layer.
pub const LOCATE_FOR: Duration = Duration::from_secs(60);
/// The first wait before such a container is looked at again, doubled each time (1, 2, 4, …
/// 32 s: six looks in a minute, not sixty).
pub const LOCATE_RETRY: Duration = Duration::from_secs(1);
/// Filesystems whose device names are remembered, at most.
const DEVICES_MAX: usize = 256;
/// Where Docker keeps its data unless its `data-root` says otherwise.
pub const DOCKER_ROOT: &str = "/var/lib/docker";

/// Where a container's root filesystem is, from one of its processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// overlay, with an `upperdir` (a host path) where a runtime keeps its layers.
    Overlay(PathBuf),
    /// overlay, with an `upperdir` that is no runtime's layer: the container mounted it.
    Untrusted(PathBuf),
    /// Another filesystem type: no usage of the container's own.
    NotOverlay(String),
    /// The process has the host's root (it has not entered the container yet).
    HostRoot,
    /// No process, or its mountinfo could not be read.
    NoProcess,
}

/// What the disk thread knows of the host's mount namespace, to tell a process that has not
/// entered a container without reading its mountinfo. pid 1 is not relied on (it may not be
/// inspectable): the exporter's own namespace is the host's when its `/` is `--host-root`.
#[derive(Debug, Default)]
pub struct HostView {
    pub proc_root: PathBuf,
    /// The host's root mount: pid 1's, else the exporter's own when it shares the host's.
    pub root_mount: Option<RootMount>,
    /// Mount namespaces known to have the host's root (`/proc/<pid>/ns/mnt` inodes): the
    /// exporter's own when its `/` is the host's, pid 1's when it can be read.
    pub namespaces: Vec<u64>,
}

impl HostView {
    pub fn new(proc_root: &Path, host_root: &Path) -> HostView {
        let same = |a: &Path, b: &Path| match (nix::sys::stat::stat(a), nix::sys::stat::stat(b)) {
            (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
            _ => false,
        };
        let own_is_host = same(Path::new("/"), host_root);
        let root_of = |pid: &str| {
            std::fs::read(proc_root.join(pid).join("mountinfo"))
                .ok()
                .and_then(|m| mountinfo::root_mount(&m))
        };
        let root_mount = root_of("1").or_else(|| own_is_host.then(|| root_of("self")).flatten());
        let mut namespaces = Vec::new();
        if own_is_host {
            namespaces.extend(mount_ns(proc_root, "self"));
        }
        namespaces.extend(mount_ns(proc_root, "1"));
        namespaces.dedup();
        HostView {
            proc_root: proc_root.to_path_buf(),
            root_mount,
            namespaces,
        }
    }
}

/// The inode of a process's mount namespace (`/proc/<pid>/ns/mnt` reads `mnt:[N]`), when it
/// may be read (it takes ptrace access to the process).
pub fn mount_ns(proc_root: &Path, pid: &str) -> Option<u64> {
    let link = std::fs::read_link(proc_root.join(pid).join("ns/mnt")).ok()?;
    let text = link.to_str()?;
    text.strip_prefix("mnt:[")?.strip_suffix(']')?.parse().ok()
}

/// Container `id`'s layer: Docker's record of it when there is one ([`docker_layer`]), else
/// the root mount of the first process in `procs` (a `cgroup.procs`): its upper directory when
/// it is one a runtime made (below `host`, the host's root), or why there is none. A process in
/// one of the host's mount namespaces costs a `readlink`, not a mountinfo.
pub fn locate(
    view: &HostView,
    host: Option<&OwnedFd>,
    id: &str,
    procs: &Path,
    stats: &DiskStats,
) -> Found {
    if let Some(up) = host.and_then(|h| docker_layer(h, Path::new(DOCKER_ROOT), id)) {
        stats.lookups_runtime.fetch_add(1, Relaxed);
        return Found::Overlay(up);
    }
    let Some(pid) = fs::read_regular_file(procs)
        .ok()
        .and_then(|procs| crate::cgroup::parse::first_pid(&procs))
    else {
        return Found::NoProcess;
    };
    let pid = pid.to_string();
    if let Some(ns) = mount_ns(&view.proc_root, &pid)
        && view.namespaces.contains(&ns)
    {
        stats.lookups_host_namespace.fetch_add(1, Relaxed);
        tracing::debug!(%id, pid, ns, "disk: the container's process shares the host's mount namespace: its mountinfo is not read");
        return Found::HostRoot;
    }
    stats.lookups_mountinfo.fetch_add(1, Relaxed);
    tracing::debug!(%id, pid, "disk: reading the mountinfo of the container's process");
    let info = std::fs::read(view.proc_root.join(&pid).join("mountinfo"));
    match info.ok().and_then(|m| mountinfo::root_mount(&m)) {
        None => Found::NoProcess,
        Some(root) if view.root_mount.as_ref().is_some_and(|h| h.same_as(&root)) => Found::HostRoot,
        Some(root) => match root.upperdir {
            Some(up) if host.is_some_and(|h| trusted(h, id, &up)) => Found::Overlay(up),
            Some(up) => Found::Untrusted(up),
            None => Found::NotOverlay(root.fstype),
        },
    }
}

/// Container `id`'s writable layer as Docker's records below `docker_root` say:
/// `<docker_root>/overlay2/<mount-id>/diff`, the mount id from
/// `<docker_root>/image/overlay2/layerdb/mounts/<id>/mount-id` (what `docker inspect` reports
/// as `GraphDriver.Data.UpperDir`). `None` when Docker has no such record.
pub fn docker_layer(host: &OwnedFd, docker_root: &Path, id: &str) -> Option<PathBuf> {
    if !is_name(OsStr::new(id)) {
        return None;
    }
    let dir = docker_root.join("image/overlay2/layerdb/mounts").join(id);
    let dir = walk::open_dir_in(host, &dir).ok()?;
    let mut file = fs::open_regular(Some(dir.as_fd()), Path::new("mount-id")).ok()?;
    let mut buf = Vec::with_capacity(80);
    file.by_ref().take(256).read_to_end(&mut buf).ok()?;
    let mount_id = OsStr::from_bytes(buf.trim_ascii());
    is_name(mount_id).then(|| docker_root.join("overlay2").join(mount_id).join("diff"))
}

/// A single path component: not empty, not `.` or `..`, no `/` or NUL.
fn is_name(s: &OsStr) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/') && !b.contains(&0)
}

/// Whether `upper`, the upper directory named by the root mount of container `id`'s process,
/// is a layer its runtime made, by where the runtimes keep them (any data root; the table in
/// `docs/disk.md`, "Only a layer a runtime made"): Docker's when its record names it for this
/// very container ([`docker_layer`]), containerd's and containers/storage's by their shape. The
/// path must be absolute and plain (no `.`, `..`).
pub fn trusted(host: &OwnedFd, id: &str, upper: &Path) -> bool {
    let mut parts = Vec::new();
    for (i, c) in upper.components().enumerate() {
        match c {
            Component::RootDir if i == 0 => {}
            Component::Normal(n) => parts.push(n),
            _ => return false,
        }
    }
    if !upper.is_absolute() {
        return false;
    }
    let n = parts.len();
    let at = |k: usize| parts[n - k].as_bytes();
    let root =
        |k: usize| -> PathBuf { Path::new("/").join(parts[..n - k].iter().collect::<PathBuf>()) };
    if n >= 3 && at(3) == b"overlay2" && at(1) == b"diff" {
        return match docker_layer(host, &root(3), id) {
            Some(layer) => layer == upper,
            // No record to go by: only a path with nothing there to walk (a --host-root
            // that does not hold Docker's data), left to be reported as not reachable.
            None => walk::open_dir_in(host, upper).is_err(),
        };
    }
    if n >= 4
        && at(4) == b"io.containerd.snapshotter.v1.overlayfs"
        && at(3) == b"snapshots"
        && !at(2).is_empty()
        && at(2).iter().all(u8::is_ascii_digit)
        && at(1) == b"fs"
    {
        return true;
    }
    n >= 3
        && at(3) == b"overlay"
        && at(2).len() == 64
        && at(2).iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        && at(1) == b"diff"
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
    /// Its root is an overlay whose upper directory no runtime made (the container mounted it
    /// itself): never walked.
    Untrusted(PathBuf),
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
            Found::Untrusted(up) => Some(Layer::Untrusted(up)),
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
        let d = fs::test_dir("layer");
        for pid in ["1", "42", "43"] {
            std::fs::create_dir_all(d.join(pid)).unwrap();
        }
        let host = b"1 0 8:1 / / rw - ext4 /dev/vda1 rw\n";
        std::fs::write(d.join("1/mountinfo"), host).unwrap();
        let hex = "0123456789abcdef".repeat(4);
        let upper = format!("/var/lib/containers/storage/overlay/{hex}/diff");
        std::fs::write(
            d.join("42/mountinfo"),
            format!(
                "7 5 0:52 / / rw - overlay overlay rw,lowerdir=/l,upperdir={upper},workdir=/w\n"
            ),
        )
        .unwrap();
        // A container that mounted an overlay of its own over its root.
        std::fs::write(
            d.join("43/mountinfo"),
            b"7 5 0:52 / / rw - overlay o rw,lowerdir=/l,upperdir=/usr/share,workdir=/w\n",
        )
        .unwrap();
        let procs = d.join("cgroup.procs");
        let view = HostView {
            proc_root: d.clone(),
            root_mount: mountinfo::root_mount(host),
            namespaces: Vec::new(),
        };
        let h = walk::open_root(Path::new("/")).unwrap();
        let stats = DiskStats::default();
        let find = || locate(&view, Some(&h), "c", &procs, &stats);
        // Pids outside the reader's namespace read as 0 on cgroup2.
        std::fs::write(&procs, b"0\n42\n1\n").unwrap();
        assert_eq!(find(), Found::Overlay(upper.into()));
        std::fs::write(&procs, b"43\n").unwrap();
        assert_eq!(find(), Found::Untrusted("/usr/share".into()));
        std::fs::write(&procs, b"1\n").unwrap();
        assert_eq!(find(), Found::HostRoot);
        assert_eq!(stats.lookups_mountinfo.load(Relaxed), 3);
        std::fs::remove_file(&procs).unwrap();
        nix::unistd::mkfifo(&procs, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(find(), Found::NoProcess);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_process_in_the_hosts_mount_namespace_costs_no_mountinfo() {
        let view = HostView::new(Path::new("/proc"), Path::new("/"));
        let own = mount_ns(Path::new("/proc"), "self").expect("our own mount namespace");
        assert!(view.namespaces.contains(&own), "{view:?}");
        let d = fs::test_dir("layer-ns");
        let procs = d.join("cgroup.procs");
        std::fs::write(&procs, format!("{}\n", std::process::id())).unwrap();
        let stats = DiskStats::default();
        assert_eq!(locate(&view, None, "c", &procs, &stats), Found::HostRoot);
        assert_eq!(stats.lookups_mountinfo.load(Relaxed), 0);
        assert_eq!(stats.lookups_host_namespace.load(Relaxed), 1);
        // Another --host-root than the exporter's own `/`: its namespace is not the host's.
        let view = HostView::new(Path::new("/proc"), &d);
        assert!(!view.namespaces.contains(&own) || mount_ns(Path::new("/proc"), "1") == Some(own));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn only_a_layer_where_a_runtime_keeps_them_is_trusted() {
        let d = fs::test_dir("layer-trust");
        let id = "c".repeat(64);
        let rec = d
            .join("data/docker/image/overlay2/layerdb/mounts")
            .join(&id);
        std::fs::create_dir_all(&rec).unwrap();
        std::fs::write(rec.join("mount-id"), b"m1\n").unwrap();
        std::fs::create_dir_all(d.join("data/docker/overlay2/m1/diff")).unwrap();
        let h = walk::open_root(&d).unwrap();
        assert_eq!(
            docker_layer(&h, Path::new("/data/docker"), &id),
            Some("/data/docker/overlay2/m1/diff".into())
        );
        assert_eq!(docker_layer(&h, Path::new("/data/docker"), ".."), None);
        let t = |p: &str| trusted(&h, &id, Path::new(p));
        assert!(t("/data/docker/overlay2/m1/diff"));
        // Another container's Docker layer, or one Docker has no record of.
        assert!(!trusted(
            &h,
            "other",
            Path::new("/data/docker/overlay2/m1/diff")
        ));
        std::fs::create_dir_all(d.join("data/docker/overlay2/m2/diff")).unwrap();
        assert!(!t("/data/docker/overlay2/m2/diff"));
        // Nothing there: not walked either way, reported as not reachable.
        assert!(t("/elsewhere/overlay2/m3/diff"));
        let hex = "0123456789abcdef".repeat(4);
        assert!(t(
            "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs"
        ));
        assert!(t(&format!(
            "/var/lib/containers/storage/overlay/{hex}/diff"
        )));
        for p in [
            "/",
            "/usr/share",
            "usr/share",
            "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/1a/fs",
            "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots//fs",
            &format!("/var/lib/containers/storage/overlay/{hex}/../../../../../usr/diff"),
            &format!("/x/overlay/{}/diff", &hex[1..]),
            "/data/docker/overlay2/m1/diff/..",
        ] {
            assert!(!t(p), "{p}");
        }
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
