//! The few messages of the Kubernetes container runtime interface (`runtime.v1`) that the CRI
//! metadata source sends and reads, written by hand with prost's derive (why:
//! `docs/dependencies.md`). Only the fields read exist: decoders skip unknown fields, and a
//! field a runtime does not send reads as its default. Field numbers and enum values are those
//! of k8s.io/cri-api's `pkg/apis/runtime/v1/api.proto` (Kubernetes commit 0268656a); fields
//! newer cri-api versions added are unset, or answered UNIMPLEMENTED, by older runtimes such
//! as containerd 1.6. A wrong number shows in tests/cri_metadata.rs, whose client
//! (tests/common/cri_api.rs) is written apart from this file.

use std::collections::BTreeMap;

/// gRPC paths of the calls made. The lists and `GetContainerEvents` are asked with an empty
/// message (`()`): no filter, every sandbox, container and image, whatever its state.
pub const VERSION: &str = "/runtime.v1.RuntimeService/Version";
pub const LIST_POD_SANDBOX: &str = "/runtime.v1.RuntimeService/ListPodSandbox";
pub const LIST_CONTAINERS: &str = "/runtime.v1.RuntimeService/ListContainers";
pub const GET_CONTAINER_EVENTS: &str = "/runtime.v1.RuntimeService/GetContainerEvents";
pub const CONTAINER_STATUS: &str = "/runtime.v1.RuntimeService/ContainerStatus";
pub const LIST_IMAGES: &str = "/runtime.v1.ImageService/ListImages";
pub const POD_SANDBOX_STATUS: &str = "/runtime.v1.RuntimeService/PodSandboxStatus";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum PodSandboxState {
    SandboxReady = 0,
    SandboxNotready = 1,
}

// The CRI's own names (`CONTAINER_CREATED`, …), as its `.proto` spells them (both enums).
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ContainerState {
    ContainerCreated = 0,
    ContainerRunning = 1,
    ContainerExited = 2,
}

#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ContainerEventType {
    ContainerCreatedEvent = 0,
    ContainerStartedEvent = 1,
    ContainerStoppedEvent = 2,
    ContainerDeletedEvent = 3,
}

/// The messages, one line a field as in the `.proto`: its number, name, type and prost kind.
macro_rules! messages {
    ($($(#[$m:meta])* $name:ident {
        $($(#[$f:meta])* $tag:literal $field:ident: $ty:ty [$($kind:tt)*],)*
    })*) => {$(
        $(#[$m])*
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct $name {
            $($(#[$f])* #[prost($($kind)*, tag = $tag)] pub $field: $ty,)*
        }
    )*};
}

messages! {
    VersionRequest {
        /// The kubelet's CRI API version (`v1`).
        1 version: String [string],
    }

    VersionResponse {
        /// `containerd`, `cri-o`.
        2 runtime_name: String [string],
        3 runtime_version: String [string],
        4 runtime_api_version: String [string],
    }

    ListPodSandboxResponse {
        1 items: Vec<PodSandbox> [message, repeated],
    }

    PodSandboxMetadata {
        1 name: String [string],
        2 uid: String [string],
        3 namespace: String [string],
        4 attempt: u32 [uint32],
    }

    PodSandbox {
        1 id: String [string],
        2 metadata: Option<PodSandboxMetadata> [message, optional],
        3 state: i32 [enumeration = "PodSandboxState"],
        /// Nanoseconds since the epoch.
        4 created_at: i64 [int64],
        5 labels: BTreeMap<String, String> [btree_map = "string, string"],
    }

    ListContainersResponse {
        1 containers: Vec<Container> [message, repeated],
    }

    ContainerMetadata {
        1 name: String [string],
        /// 0 for the first container of this name in the sandbox, then one more per restart.
        2 attempt: u32 [uint32],
    }

    ImageSpec {
        /// What the container was created with: the kubelet passes the image *id*.
        1 image: String [string],
        /// The image as written in the pod spec (kubelet 1.30+ and runtimes that keep it).
        18 user_specified_image: String [string],
    }

    Container {
        1 id: String [string],
        2 pod_sandbox_id: String [string],
        3 metadata: Option<ContainerMetadata> [message, optional],
        4 image: Option<ImageSpec> [message, optional],
        /// The image in use: its id on containerd, a repo digest on CRI-O.
        5 image_ref: String [string],
        6 state: i32 [enumeration = "ContainerState"],
        8 labels: BTreeMap<String, String> [btree_map = "string, string"],
        /// The image id (newer runtimes only).
        10 image_id: String [string],
    }

    ListImagesResponse {
        1 images: Vec<Image> [message, repeated],
    }

    Image {
        /// `sha256:<hex>` on containerd, bare hex on CRI-O.
        1 id: String [string],
        2 repo_tags: Vec<String> [string, repeated],
        3 repo_digests: Vec<String> [string, repeated],
    }

    /// One event: the container (or sandbox) it is about, and the state of its whole pod.
    ContainerEventResponse {
        /// A container's id, or a sandbox's for the sandbox's own events.
        1 container_id: String [string],
        2 container_event_type: i32 [enumeration = "ContainerEventType"],
        4 pod_sandbox_status: Option<PodSandboxStatus> [message, optional],
        /// The sandbox's containers.
        5 containers_statuses: Vec<ContainerStatus> [message, repeated],
    }

    PodSandboxStatus {
        1 id: String [string],
        2 metadata: Option<PodSandboxMetadata> [message, optional],
        3 state: i32 [enumeration = "PodSandboxState"],
        4 created_at: i64 [int64],
        7 labels: BTreeMap<String, String> [btree_map = "string, string"],
    }

    /// Why a container ended, asked once when its cgroup empties (runtimes without events).
    ContainerStatusRequest {
        1 container_id: String [string],
    }

    ContainerStatusResponse {
        1 status: Option<ContainerStatus> [message, optional],
    }

    PodSandboxStatusRequest {
        1 pod_sandbox_id: String [string],
        /// Asks for `info`: what the runtime knows beyond the CRI fields.
        2 verbose: bool [bool],
    }

    PodSandboxStatusResponse {
        /// Runtime-specific, when verbose: containerd's `info` is JSON with the sandbox
        /// container's `image` (the "pause" image reference), its pid and its OCI spec.
        2 info: BTreeMap<String, String> [btree_map = "string, string"],
    }

    ContainerStatus {
        1 id: String [string],
        2 metadata: Option<ContainerMetadata> [message, optional],
        3 state: i32 [enumeration = "ContainerState"],
        /// Nanoseconds since the epoch; 0 before it started.
        5 started_at: i64 [int64],
        /// Nanoseconds since the epoch; 0 before it finished.
        6 finished_at: i64 [int64],
        /// The exit status, once `finished_at` is set.
        7 exit_code: i32 [int32],
        8 image: Option<ImageSpec> [message, optional],
        9 image_ref: String [string],
        /// `OOMKilled` for a container the OOM killer ended; `Completed`, `Error` otherwise.
        10 reason: String [string],
        12 labels: BTreeMap<String, String> [btree_map = "string, string"],
        17 image_id: String [string],
    }
}
