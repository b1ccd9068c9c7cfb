//! Disk usage of every container and Kubernetes pod: the container's writable layer, its log
//! files, and a pod's ephemeral storage (its containers' layers and logs plus its `emptyDir`
//! volumes), as `du` counts them, worked out off the collection tick in a thread of its own
//! (see `docs/disk.md`).
//!
//! - [`walk`]: `du` in slices, bounded in memory by depth.
//! - [`layer`]: where a container's writable layer is, from its process's root mount.
//! - [`jobs`]: the walks of one job (a layer, a pod's volumes) and of logs, and where the
//!   runtimes and the kubelet put them.
//! - [`schedule`]: who is walked when, the queue of due jobs, and the CPU budget.
//! - [`monitor`]: the thread's state (the roster, what is known of each) and one slice of work.
//! - [`thread`]: the thread and its handle ([`Disk`]); [`measure_once`] for the commands.
//! - [`exchange`]: the thread's settings ([`DiskConfig`]), what the collector hands it
//!   ([`RosterItem`]) and reads back ([`DiskSample`]), and its counters ([`DiskStats`]).
//!
//! The collector never waits: at each tick it hands over the roster and reads back the latest
//! figures from a map bounded by the containers it tracks. A new figure is a field of
//! [`DiskSample`], filled where [`monitor`] publishes a container's or a pod's.

pub mod exchange;
pub mod jobs;
pub mod layer;
pub mod monitor;
pub mod schedule;
pub mod thread;
pub mod walk;

pub use exchange::{DiskConfig, DiskSample, DiskStats, RosterItem, SampleMap};
pub use schedule::FD_RESERVE;
pub use thread::{Disk, measure_once};
pub use walk::{FsStat, Usage};
