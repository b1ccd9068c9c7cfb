//! Where container logs and pod volumes are on the host, per runtime:
//! - Docker's `json-file` driver and Podman's `k8s-file`: the file the inspect names
//!   (`LogPath`), and its rotations beside it (`<file>.1`, `<file>.2.gz`, …);
//! - the CRI (containerd, CRI-O under the kubelet): the kubelet's layout,
//!   `<pod logs>/<namespace>_<pod>_<uid>/<container>/<restart>.log` and its rotations, the
//!   whole container directory being what the kubelet counts;
//! - a pod's `emptyDir` volumes: `<kubelet root>/pods/<uid>/volumes/kubernetes.io~empty-dir/`.
//!
//! A runtime that names no log file (Docker's `journald` or `local` drivers, Podman's
//! `journald`, a container with no Kubernetes names) gives no log figure, and no error.

use std::path::{Path, PathBuf};

use crate::metadata::ContainerMeta;

/// The kubelet's default root directory (`--root-dir`).
pub const KUBELET_ROOT: &str = "/var/lib/kubelet";
/// The kubelet's default pod log directory (`podLogsDir`).
pub const POD_LOGS_DIR: &str = "/var/log/pods";

/// Where one container's logs are (host paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogPlace {
    /// A file and its rotations: entries of its directory whose names start with its name.
    File(PathBuf),
    /// A directory holding every log of the container, rotations and earlier restarts'.
    Dir(PathBuf),
}

/// `<pod logs>/<namespace>_<pod>_<uid>`, the kubelet's directory for a pod's logs.
pub fn pod_log_dir(pod_logs_dir: &Path, namespace: &str, pod: &str, uid: &str) -> PathBuf {
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
        pod_log_dir(pod_logs_dir, ns, pod, uid).join(container),
    ))
}

/// `<kubelet root>/pods/<uid>/volumes/kubernetes.io~empty-dir`.
pub fn empty_dir_root(kubelet_root: &Path, uid: &str) -> Option<PathBuf> {
    component(uid).then(|| {
        kubelet_root
            .join("pods")
            .join(uid)
            .join("volumes/kubernetes.io~empty-dir")
    })
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
