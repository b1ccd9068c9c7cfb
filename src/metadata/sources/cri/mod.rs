//! Kubernetes names for the containers and pods that discovery finds, from the node's runtime
//! over the CRI (`runtime.v1`, gRPC on a unix socket): containerd and CRI-O. [`run`] keeps a
//! store current with as few calls as possible, never one per collection tick: the lists at
//! connect, then `GetContainerEvents` where the runtime has it (containerd 1.7+, CRI-O 1.26+),
//! else batched lookups of the ids discovery asks for and a full list every
//! [`CriConfig::resync_interval`]. `docs/deploy.md` says what is asked and when, measured.
//!
//! Every sandbox is stored under its id (`sandbox: true`) and its pod under the pod uid, every
//! container under its id; names come from the CRI metadata, the `io.kubernetes.*` labels are
//! only the fallback. What is gone stays for [`CriConfig::removal_delay`].
//!
//! `follower`: connect, lists, events (the calls); `node`: what they say, kept in the store,
//! and the ids asked for that no list has shown yet; the runtime's side: `client` (tonic on the
//! unix socket, and the errors), `api` (the messages, by hand: it says why), `view` (CRI
//! objects in one shape, and what they say of a container and of its exit); `asks`: the
//! collector's asks for exits, one `ContainerStatus` each.

mod api;
mod asks;
mod client;
mod follower;
mod node;
mod view;

pub use client::{CriError, CriVersion};
pub use follower::{CriConfig, DEFAULT_ENDPOINTS, probe, resolve_endpoints, run};
