//! What a runtime says about a container ([`ContainerMeta`]) and about a Kubernetes pod
//! ([`PodMeta`]): the resource attributes a cgroup path cannot give.

use std::path::PathBuf;
use std::time::SystemTime;

/// What a runtime knows about a container, for its resource attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerMeta {
    /// The runtime's name for it (`container.name`): Docker `Name` without the leading `/`, the
    /// CRI container's metadata name.
    pub name: Option<String>,
    /// The image reference without tag or digest (`container.image.name`), as the user wrote
    /// it: `busybox` stays `busybox`, not `docker.io/library/busybox`.
    pub image_name: Option<String>,
    /// The reference's tag, `["latest"]` when it names none, as the OpenTelemetry Collector's
    /// docker receivers do (`container.image.tags`).
    pub image_tags: Vec<String>,
    /// The image id `sha256:…` (`container.image.id`): Docker `Image`, CRI `image_ref`.
    pub image_id: Option<String>,
    /// Container labels whose key matches the allow-list, sorted by key.
    pub labels: Vec<(String, String)>,
    /// `k8s.pod.name`: the CRI sandbox's metadata, else the `io.kubernetes.pod.name` label
    /// (whatever the allow-list says).
    pub k8s_pod_name: Option<String>,
    /// `k8s.namespace.name` (`io.kubernetes.pod.namespace`).
    pub k8s_namespace_name: Option<String>,
    /// `k8s.container.name`: the CRI container's metadata name, else
    /// `io.kubernetes.container.name`.
    pub k8s_container_name: Option<String>,
    /// `k8s.pod.uid` (`io.kubernetes.pod.uid`).
    pub k8s_pod_uid: Option<String>,
    /// `k8s.container.restart_count`: the CRI container's `attempt`.
    pub k8s_container_restart_count: Option<u32>,
    /// `container.runtime.name` as the runtime calls itself (CRI `Version`: `containerd`,
    /// `cri-o`), when it says; else the one the cgroup path names.
    pub runtime_name: Option<String>,
    /// A Kubernetes pod sandbox (the "pause" container): its usage is part of its pod's, and it
    /// is never reported as an application container.
    pub sandbox: bool,
    /// When it started; `None` for a container that never started (Docker's zero time).
    pub started_at: Option<SystemTime>,
    /// The log file the runtime writes the container's output to, as a host path: Docker's
    /// and Podman's `LogPath` (json-file, k8s-file drivers); `None` for drivers that write no
    /// file, and for CRI containers (their logs are in the kubelet's layout).
    pub log_path: Option<PathBuf>,
}

/// What a runtime knows about a Kubernetes pod, for the pod's own resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodMeta {
    /// `k8s.pod.uid`.
    pub uid: String,
    /// `k8s.pod.name`: the CRI sandbox's metadata name.
    pub name: Option<String>,
    /// `k8s.namespace.name`: the CRI sandbox's metadata namespace.
    pub namespace: Option<String>,
    /// Pod labels whose key matches the pod-label allow-list, sorted by key
    /// (`k8s.pod.label.<key>`).
    pub labels: Vec<(String, String)>,
}
