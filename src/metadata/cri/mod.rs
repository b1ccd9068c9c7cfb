//! Kubernetes names for the containers and pods that discovery finds in the cgroup tree, from
//! the node's container runtime over the CRI (`runtime.v1.RuntimeService` and `ImageService`,
//! gRPC on a unix socket): containerd and CRI-O, the runtimes of nearly every cluster. A cgroup
//! path gives a container id and a pod uid; the runtime knows the pod's name and namespace, the
//! container's name, restart count and image.
//!
//! [`run`] keeps a store current with as few calls as possible, and never one per collection
//! tick:
//! - On connect: `Version` (the runtime's name, for `container.runtime.name`),
//!   `ListPodSandbox`, `ListContainers`, and `ListImages` when a container's image is an id
//!   (the kubelet creates containers with the image id, so a name takes one lookup; the
//!   answer is cached and asked again only when an unknown image shows up).
//! - Once per new ready sandbox, a verbose `PodSandboxStatus` for its image (the "pause"
//!   image; containerd says it), which the cAdvisor page puts on the pod's network series
//!   as the kubelet's cAdvisor does.
//! - Then `GetContainerEvents`, where the runtime has it (containerd 1.7+, CRI-O 1.26+): each
//!   event carries its pod's sandbox and container statuses, so it costs no call.
//! - Where it has not (Debian's containerd 1.6 answers UNIMPLEMENTED): when discovery asks
//!   for ids the store does not know, the asks of a few tens of ms are batched into one
//!   `ListContainers` (plus `ListPodSandbox` only when a sandbox or pod is among them, or a
//!   container's sandbox is unknown), retried for a while for ids not listed yet (`lookups`);
//!   a full list every [`CriConfig::resync_interval`] (default 60 s, the kubelet itself lists
//!   every second) notices removals.
//!
//! Entries: every sandbox under its id (`sandbox: true`, the pod's identity) and its pod under
//! the pod uid; every container under its id. The CRI metadata is the contract, so pod names
//! come from the sandbox's `PodSandboxMetadata`; the `io.kubernetes.*` labels are only the
//! fallback for a container whose sandbox is unknown. A container's fields never change once
//! stored (CRI containers are immutable, a restart is a new container with a new id), so lists
//! and events, which describe images slightly differently, cannot make its labels flap. Entries
//! missing from a full list, exited, or stopped by an event stay for
//! [`CriConfig::removal_delay`], then go.
//!
//! Exits: when a container's cgroup empties, the collector asks, and one `ContainerStatus`
//! says its `exit_code`, `reason` and `finished_at` (`exits`, served by the skeleton's asks).
//! Where the runtime has `GetContainerEvents`, its stop event carries the same status and no
//! call is made (unless the event is late).
//!
//! A runtime that is absent, down or restarting never blocks anything: the store keeps what it
//! knew, one warning per outage names the socket and what to mount, and the skeleton retries
//! with backoff. A closed connection is seen at once (the socket's end of file), without a
//! call; the reconnect lists everything again.
//!
//! Where things are: `follower` (connect, lists, events: the calls), `node` (what they say:
//! sandboxes, pods and containers, kept in the store), `lookups`, `exits`, and the runtime's
//! side: `client` (tonic on the unix socket), `api` (the messages, written by hand: the CRI
//! `.proto` is in no registry this project can reach, and `cargo build` must not need
//! `protoc`), `view` (CRI objects in one shape, and how they become descriptions), `error`.

mod api;
mod client;
mod error;
mod exits;
mod follower;
mod lookups;
mod node;
mod view;

pub use client::CriVersion;
pub use error::CriError;
pub use follower::{CriConfig, DEFAULT_ENDPOINTS, probe, resolve_endpoints, run};
pub use lookups::{GIVE_UP_TTL, LOOKUP_GIVE_UP};
