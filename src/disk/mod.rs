//! Disk usage of every container and Kubernetes pod: the container's writable layer, its log
//! files, and a pod's ephemeral storage (its containers' layers and logs plus its `emptyDir`
//! volumes), as `du` counts them, worked out off the collection tick in a thread of its own.
//!
//! - [`walk`]: `du` in slices, bounded in memory by depth.
//! - [`logs`]: where each runtime writes a container's logs, and the kubelet's directories.
//! - [`layer`]: where a container's writable layer is, from its process's root mount.
//! - [`jobs`]: the walks of one job (a layer, a pod's volumes) and of logs.
//! - [`schedule`]: who is walked when, the queue of due jobs, and the CPU budget.
//! - [`monitor`]: the thread's state (the roster, what is known of each) and one slice of work.
//! - [`thread`]: the thread and its handle ([`Disk`]); [`measure_once`] for the commands.
//! - [`exchange`]: what the collector hands the thread ([`RosterItem`]) and reads back
//!   ([`DiskSample`]), and the thread's counters ([`DiskStats`]).
//! - [`config`]: the thread's settings ([`DiskConfig`]).
//! - [`warnings`]: what the thread logs, once each.
//!
//! The collector never waits for any of it: at each tick it hands the disk thread the list of
//! what it tracks ([`RosterItem`]: id, cgroup, CPU time, names) and reads back the latest
//! figures ([`DiskSample`]) from a map bounded by the containers it tracks. The disk thread
//! opens nothing of the collector's. A new figure is a field of [`DiskSample`], filled where
//! [`monitor`] publishes a container's or a pod's.

pub mod config;
pub mod exchange;
pub mod jobs;
pub mod layer;
pub mod logs;
pub mod monitor;
pub mod schedule;
pub mod thread;
pub mod walk;
pub mod warnings;

pub use config::DiskConfig;
pub use exchange::{DiskSample, DiskStats, RosterItem, SampleMap};
pub use schedule::FD_RESERVE;
pub use thread::{Disk, measure_once};
pub use walk::{FsStat, Usage};
