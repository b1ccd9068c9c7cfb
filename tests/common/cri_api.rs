//! The CRI (`runtime.v1`) messages the tests' kubelet-like client sends and reads, written
//! with prost's derive from k8s.io/cri-api's `pkg/apis/runtime/v1/api.proto`.
//!
//! Deliberately written apart from the exporter's own `src/metadata/sources/cri/api.rs` (not shared,
//! not copied): the tests create pods through these and check what the exporter reads through
//! its own, so a wrong field number on either side shows as a wrong or missing name instead
//! of cancelling out.
#![allow(dead_code)]

use std::collections::HashMap;

pub mod path {
    pub const VERSION: &str = "/runtime.v1.RuntimeService/Version";
    pub const RUN_POD_SANDBOX: &str = "/runtime.v1.RuntimeService/RunPodSandbox";
    pub const STOP_POD_SANDBOX: &str = "/runtime.v1.RuntimeService/StopPodSandbox";
    pub const REMOVE_POD_SANDBOX: &str = "/runtime.v1.RuntimeService/RemovePodSandbox";
    pub const POD_SANDBOX_STATUS: &str = "/runtime.v1.RuntimeService/PodSandboxStatus";
    pub const LIST_POD_SANDBOX: &str = "/runtime.v1.RuntimeService/ListPodSandbox";
    pub const CREATE_CONTAINER: &str = "/runtime.v1.RuntimeService/CreateContainer";
    pub const START_CONTAINER: &str = "/runtime.v1.RuntimeService/StartContainer";
    pub const STOP_CONTAINER: &str = "/runtime.v1.RuntimeService/StopContainer";
    pub const REMOVE_CONTAINER: &str = "/runtime.v1.RuntimeService/RemoveContainer";
    pub const LIST_CONTAINERS: &str = "/runtime.v1.RuntimeService/ListContainers";
    pub const CONTAINER_STATUS: &str = "/runtime.v1.RuntimeService/ContainerStatus";
    pub const GET_CONTAINER_EVENTS: &str = "/runtime.v1.RuntimeService/GetContainerEvents";
    pub const IMAGE_STATUS: &str = "/runtime.v1.ImageService/ImageStatus";
}

/// `NamespaceMode`.
pub const NS_POD: i32 = 0;
pub const NS_CONTAINER: i32 = 1;
pub const NS_NODE: i32 = 2;

/// `PodSandboxState`.
pub const SANDBOX_READY: i32 = 0;
/// `ContainerState`.
pub const CONTAINER_CREATED: i32 = 0;
pub const CONTAINER_RUNNING: i32 = 1;
pub const CONTAINER_EXITED: i32 = 2;

#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionReq {
    #[prost(string, tag = "1")]
    pub version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionResp {
    #[prost(string, tag = "1")]
    pub version: String,
    #[prost(string, tag = "2")]
    pub runtime_name: String,
    #[prost(string, tag = "3")]
    pub runtime_version: String,
    #[prost(string, tag = "4")]
    pub runtime_api_version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxMeta {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub uid: String,
    #[prost(string, tag = "3")]
    pub namespace: String,
    #[prost(uint32, tag = "4")]
    pub attempt: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NamespaceOpts {
    #[prost(int32, tag = "1")]
    pub network: i32,
    #[prost(int32, tag = "2")]
    pub pid: i32,
    #[prost(int32, tag = "3")]
    pub ipc: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxSecurity {
    #[prost(message, optional, tag = "1")]
    pub namespace_options: Option<NamespaceOpts>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxLinux {
    #[prost(string, tag = "1")]
    pub cgroup_parent: String,
    #[prost(message, optional, tag = "2")]
    pub security_context: Option<SandboxSecurity>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxConfig {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<SandboxMeta>,
    #[prost(string, tag = "2")]
    pub hostname: String,
    #[prost(string, tag = "3")]
    pub log_directory: String,
    #[prost(map = "string, string", tag = "6")]
    pub labels: HashMap<String, String>,
    #[prost(map = "string, string", tag = "7")]
    pub annotations: HashMap<String, String>,
    #[prost(message, optional, tag = "8")]
    pub linux: Option<SandboxLinux>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RunSandboxReq {
    #[prost(message, optional, tag = "1")]
    pub config: Option<SandboxConfig>,
    #[prost(string, tag = "2")]
    pub runtime_handler: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxIdResp {
    #[prost(string, tag = "1")]
    pub pod_sandbox_id: String,
}

/// The request of StopPodSandbox and RemovePodSandbox.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxIdReq {
    #[prost(string, tag = "1")]
    pub pod_sandbox_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxStatusReq {
    #[prost(string, tag = "1")]
    pub pod_sandbox_id: String,
    #[prost(bool, tag = "2")]
    pub verbose: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxNetwork {
    #[prost(string, tag = "1")]
    pub ip: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxStatus {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<SandboxMeta>,
    #[prost(int32, tag = "3")]
    pub state: i32,
    #[prost(message, optional, tag = "5")]
    pub network: Option<SandboxNetwork>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxStatusResp {
    #[prost(message, optional, tag = "1")]
    pub status: Option<SandboxStatus>,
    /// `info`: JSON with the pid and the runtime spec, when verbose.
    #[prost(map = "string, string", tag = "2")]
    pub info: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListSandboxResp {
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<SandboxItem>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SandboxItem {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<SandboxMeta>,
    #[prost(int32, tag = "3")]
    pub state: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CtrMeta {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint32, tag = "2")]
    pub attempt: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Spec {
    #[prost(string, tag = "1")]
    pub image: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Resources {
    #[prost(int64, tag = "1")]
    pub cpu_period: i64,
    #[prost(int64, tag = "2")]
    pub cpu_quota: i64,
    #[prost(int64, tag = "3")]
    pub cpu_shares: i64,
    #[prost(int64, tag = "4")]
    pub memory_limit_in_bytes: i64,
    #[prost(int64, tag = "5")]
    pub oom_score_adj: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CtrSecurity {
    #[prost(message, optional, tag = "3")]
    pub namespace_options: Option<NamespaceOpts>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CtrLinux {
    #[prost(message, optional, tag = "1")]
    pub resources: Option<Resources>,
    #[prost(message, optional, tag = "2")]
    pub security_context: Option<CtrSecurity>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CtrConfig {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<CtrMeta>,
    #[prost(message, optional, tag = "2")]
    pub image: Option<Spec>,
    #[prost(string, repeated, tag = "3")]
    pub command: Vec<String>,
    #[prost(string, repeated, tag = "4")]
    pub args: Vec<String>,
    #[prost(string, tag = "5")]
    pub working_dir: String,
    #[prost(map = "string, string", tag = "9")]
    pub labels: HashMap<String, String>,
    #[prost(map = "string, string", tag = "10")]
    pub annotations: HashMap<String, String>,
    #[prost(string, tag = "11")]
    pub log_path: String,
    #[prost(message, optional, tag = "15")]
    pub linux: Option<CtrLinux>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateReq {
    #[prost(string, tag = "1")]
    pub pod_sandbox_id: String,
    #[prost(message, optional, tag = "2")]
    pub config: Option<CtrConfig>,
    #[prost(message, optional, tag = "3")]
    pub sandbox_config: Option<SandboxConfig>,
}

/// The response of CreateContainer; the request of StartContainer and RemoveContainer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CtrId {
    #[prost(string, tag = "1")]
    pub container_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StopReq {
    #[prost(string, tag = "1")]
    pub container_id: String,
    #[prost(int64, tag = "2")]
    pub timeout: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListCtrResp {
    #[prost(message, repeated, tag = "1")]
    pub containers: Vec<CtrItem>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CtrItem {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub pod_sandbox_id: String,
    #[prost(message, optional, tag = "3")]
    pub metadata: Option<CtrMeta>,
    #[prost(int32, tag = "6")]
    pub state: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CtrStatusReq {
    #[prost(string, tag = "1")]
    pub container_id: String,
    #[prost(bool, tag = "2")]
    pub verbose: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CtrStatusResp {
    #[prost(message, optional, tag = "1")]
    pub status: Option<CtrStatus>,
    #[prost(map = "string, string", tag = "2")]
    pub info: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CtrStatus {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<CtrMeta>,
    #[prost(int32, tag = "3")]
    pub state: i32,
    #[prost(int64, tag = "6")]
    pub finished_at: i64,
    #[prost(int32, tag = "7")]
    pub exit_code: i32,
    #[prost(message, optional, tag = "8")]
    pub image: Option<Spec>,
    #[prost(string, tag = "9")]
    pub image_ref: String,
    #[prost(string, tag = "10")]
    pub reason: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageStatusReq {
    #[prost(message, optional, tag = "1")]
    pub image: Option<Spec>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageStatusResp {
    #[prost(message, optional, tag = "1")]
    pub image: Option<ImageInfo>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageInfo {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, repeated, tag = "2")]
    pub repo_tags: Vec<String>,
}
