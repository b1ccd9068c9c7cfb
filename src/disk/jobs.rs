//! The walks the disk thread makes: a job walks a container's writable layer, or a pod's
//! `emptyDir` volumes, a slice at a time ([`Job`]); a container's or pod's logs, a small
//! directory, are walked whole when its job finishes. Where each runtime writes a container's
//! logs ([`place`]) and where the kubelet keeps a pod's volumes are here too.
//!
//! Every path is a host path, opened below the host's root (`--host-root`) as if it were `/`
//! (see [`walk::open_dir_in`]).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::exchange::DiskStats;
use super::walk::{self, FsStat, Incomplete, Usage, Walk};
use crate::metadata::{ContainerMeta, PodMeta};

/// What a job walks: a container's writable layer (by id), or a pod's volumes (by uid).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Layer(String),
    Pod(String),
}

/// A walk being done for a job.
pub struct Job {
    pub key: Key,
    pub walk: Walk,
    pub started: Instant,
    pub cpu_at_start: Option<u64>,
    /// Entries already counted in the stats.
    counted: u64,
    /// A pod's `emptyDir` walk counts its root directory, which is not a volume.
    minus_root: Usage,
}

/// A pod's volumes, when there is no `emptyDir` directory to walk.
pub enum NoVolumes {
    /// The pod's own directory exists (the kubelet makes it for every pod): no volume.
    None,
    /// Not even the pod's directory: not known.
    Unknown,
}

impl Job {
    /// A walk of the writable layer `upper` of container `id`.
    pub fn layer(
        host: &OwnedFd,
        id: &str,
        upper: &Path,
        now: Instant,
        cpu: Option<u64>,
    ) -> nix::Result<Job> {
        let walk = Walk::open_in(host, upper)?;
        Ok(Job::new(
            Key::Layer(id.to_owned()),
            walk,
            now,
            cpu,
            Usage::default(),
        ))
    }

    fn new(key: Key, walk: Walk, started: Instant, cpu: Option<u64>, minus_root: Usage) -> Job {
        Job {
            key,
            walk,
            started,
            cpu_at_start: cpu,
            counted: 0,
            minus_root,
        }
    }

    /// A walk of pod `uid`'s `emptyDir` volumes below `kubelet_root`.
    pub fn pod_volumes(
        host: &OwnedFd,
        kubelet_root: &Path,
        uid: &str,
        now: Instant,
        cpu: Option<u64>,
    ) -> Result<Job, NoVolumes> {
        let root = empty_dir_root(kubelet_root, uid);
        match root.as_deref().and_then(|r| Walk::open_in(host, r).ok()) {
            Some(walk) => {
                // The `kubernetes.io~empty-dir` directory itself is no volume.
                let minus_root = root.as_deref().and_then(|r| own_usage(host, r));
                let key = Key::Pod(uid.to_owned());
                Ok(Job::new(
                    key,
                    walk,
                    now,
                    cpu,
                    minus_root.unwrap_or_default(),
                ))
            }
            None => {
                let pod_dir = pod_dir(kubelet_root, uid);
                if pod_dir.is_some_and(|d| walk::open_dir_in(host, &d).is_ok()) {
                    Err(NoVolumes::None)
                } else {
                    Err(NoVolumes::Unknown)
                }
            }
        }
    }

    /// Adds the entries looked at since the last count to `stats`.
    pub fn count_entries(&mut self, stats: &DiskStats) {
        stats
            .entries
            .fetch_add(self.walk.entries - self.counted, Relaxed);
        self.counted = self.walk.entries;
    }

    /// The finished walk's figures (without a pod's `emptyDir` directory itself), or why there
    /// are none; the walk's outcome is counted in `stats`.
    pub fn finish(mut self, stats: &DiskStats) -> (Key, Result<(Usage, FsStat), Incomplete>) {
        self.count_entries(stats);
        let (vanished, mounts) = (self.walk.vanished, self.walk.mounts_skipped);
        let result = self.walk.finish().map(|(mut u, fs)| {
            u.bytes = u.bytes.saturating_sub(self.minus_root.bytes);
            u.inodes = u.inodes.saturating_sub(self.minus_root.inodes);
            (u, fs)
        });
        let counter = match &result {
            Ok(_) => &stats.walks_complete,
            Err(Incomplete::Denied(_)) => &stats.walks_denied,
            Err(Incomplete::TooDeep) => &stats.walks_too_deep,
            Err(Incomplete::Vanished | Incomplete::Descriptors) => &stats.walks_vanished,
        };
        counter.fetch_add(1, Relaxed);
        tracing::trace!(key = ?self.key, vanished, mounts, "disk walk done");
        (self.key, result)
    }
}

/// The container's log files: Docker's and Podman's file and rotations, or the CRI
/// container's directory in the kubelet's layout. `None` when the runtime names none.
pub fn container_logs(
    host: &OwnedFd,
    meta: &ContainerMeta,
    pod_uid: Option<&str>,
    pod_logs_dir: &Path,
    stats: &DiskStats,
) -> Option<Usage> {
    match place(meta, pod_uid, pod_logs_dir)? {
        LogPlace::File(f) => {
            walk::files_with_prefix(host, f.parent()?, f.file_name()?.as_bytes()).ok()
        }
        LogPlace::Dir(d) => walk_small(host, &d, stats),
    }
}

/// `<pod logs>/<namespace>_<name>_<uid>`: from the pod's names, else the one entry of the
/// pod log directory that ends in `_<uid>`.
pub fn pod_log_dir(
    host: Option<&OwnedFd>,
    pod_logs_dir: &Path,
    uid: &str,
    pod: Option<&PodMeta>,
) -> Option<PathBuf> {
    if let Some(m) = pod
        && let (Some(ns), Some(name)) = (&m.namespace, &m.name)
    {
        return Some(log_dir_of(pod_logs_dir, ns, name, uid));
    }
    let fd = walk::open_dir_in(host?, pod_logs_dir).ok()?;
    let suffix = format!("_{uid}");
    let dir = nix::dir::Dir::from_fd(fd).ok()?;
    for e in dir.into_iter().flatten() {
        let name = e.file_name().to_bytes();
        if name.ends_with(suffix.as_bytes()) {
            let name = std::ffi::OsStr::new(std::str::from_utf8(name).ok()?);
            return Some(pod_logs_dir.join(name));
        }
    }
    None
}

/// A whole walk of a small directory (logs), at once.
pub fn walk_small(host: &OwnedFd, dir: &Path, stats: &DiskStats) -> Option<Usage> {
    let walk = Walk::open_in(host, dir).ok()?;
    let (u, _) = walk.run().ok()?;
    stats.entries.fetch_add(u.inodes, Relaxed);
    Some(u)
}

/// The space and inode of a directory itself (not what is in it).
fn own_usage(host: &OwnedFd, dir: &Path) -> Option<Usage> {
    let fd = walk::open_dir_in(host, dir).ok()?;
    let st = nix::sys::stat::fstat(fd.as_fd()).ok()?;
    Some(Usage {
        bytes: walk::space(&st),
        inodes: 1,
    })
}

/// Where one container's logs are (host paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogPlace {
    /// A file and its rotations: entries of its directory whose names start with its name.
    File(PathBuf),
    /// A directory holding every log of the container, rotations and earlier restarts'.
    Dir(PathBuf),
}

/// `<pod logs>/<namespace>_<pod>_<uid>`, the kubelet's directory for a pod's logs.
fn log_dir_of(pod_logs_dir: &Path, namespace: &str, pod: &str, uid: &str) -> PathBuf {
    pod_logs_dir.join(format!("{namespace}_{pod}_{uid}"))
}

/// A name the kubelet could have made a path component of: not empty, no `/`, not `.`/`..`.
fn component(s: &str) -> bool {
    !s.is_empty() && !s.contains('/') && s != "." && s != ".." && !s.contains('\0')
}

/// Where the runtime writes this container's logs, from what its runtime says of it.
pub fn place(meta: &ContainerMeta, pod_uid: Option<&str>, pod_logs_dir: &Path) -> Option<LogPlace> {
    if let Some(p) = meta.log_path.as_ref().filter(|p| p.is_absolute()) {
        return Some(LogPlace::File(p.clone()));
    }
    let ns = meta.k8s_namespace_name.as_deref()?;
    let pod = meta.k8s_pod_name.as_deref()?;
    let uid = meta.k8s_pod_uid.as_deref().or(pod_uid)?;
    let container = meta.k8s_container_name.as_deref()?;
    if ![ns, pod, uid, container].iter().all(|s| component(s)) {
        return None;
    }
    Some(LogPlace::Dir(
        log_dir_of(pod_logs_dir, ns, pod, uid).join(container),
    ))
}

/// `<kubelet root>/pods/<uid>/volumes/kubernetes.io~empty-dir`.
pub fn empty_dir_root(kubelet_root: &Path, uid: &str) -> Option<PathBuf> {
    Some(pod_dir(kubelet_root, uid)?.join("volumes/kubernetes.io~empty-dir"))
}

/// `<kubelet root>/pods/<uid>`.
pub fn pod_dir(kubelet_root: &Path, uid: &str) -> Option<PathBuf> {
    component(uid).then(|| kubelet_root.join("pods").join(uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places() {
        let logs = Path::new("/var/log/pods");
        let docker = ContainerMeta {
            log_path: Some("/var/lib/docker/containers/a/a-json.log".into()),
            ..Default::default()
        };
        assert_eq!(
            place(&docker, None, logs),
            Some(LogPlace::File(
                "/var/lib/docker/containers/a/a-json.log".into()
            ))
        );
        let cri = ContainerMeta {
            k8s_namespace_name: Some("ns".into()),
            k8s_pod_name: Some("web-0".into()),
            k8s_container_name: Some("app".into()),
            ..Default::default()
        };
        assert_eq!(
            place(&cri, Some("u-1"), logs),
            Some(LogPlace::Dir("/var/log/pods/ns_web-0_u-1/app".into()))
        );
        assert_eq!(place(&cri, None, logs), None);
        let hostile = ContainerMeta {
            k8s_container_name: Some("../../etc".into()),
            ..cri.clone()
        };
        assert_eq!(place(&hostile, Some("u-1"), logs), None);
        assert_eq!(place(&ContainerMeta::default(), Some("u"), logs), None);
        assert_eq!(empty_dir_root(Path::new("/k"), ".."), None);
    }
}
