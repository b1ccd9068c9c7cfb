//! Which containers exist: cgroup directories whose paths match what container runtimes
//! create. A container's id and runtime come from its path; Kubernetes pods add the pod uid
//! from the enclosing pod slice. A Kubernetes pod's own cgroup (`pod<uid>`,
//! `kubepods-<qos>-pod<uid>.slice`) is found too, as a [`Kind::Pod`]: it holds the exact pod
//! total, sandbox and overhead included. Every other cgroup (services, slices, the runtime's
//! own daemons, conmon) is not a container.
//!
//! - [`classify`](mod@classify): whether a cgroup's path is a container's (or a pod's), and whose.
//! - [`watch`]: the walk of the tree that finds them all, and inotify on it, to find them
//!   without polling and see them end.
//!
//! To recognise one more runtime: a pattern in [`classify()`] and a case in its tests.

pub mod classify;
pub mod watch;

pub use classify::{CONTAINERD_NAMESPACES, Found, Kind, Runtime, classify};
pub use watch::{RETRY_AFTER_DISCOVERY, walk};
