//! container-exporter: per-host container metrics read straight from the kernel's cgroup
//! files.
//!
//! The data flows one way: [`discovery`] finds containers in the cgroup tree, [`cgroup`]
//! reads their files into typed samples, [`collect`] runs one tick over every tracked
//! container, [`metrics`] turns samples into data points, and the outputs ([`snapshot`])
//! print them.

pub mod cgroup;
pub mod check;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod discovery;
pub mod export;
pub mod metadata;
pub mod metrics;
pub mod resource;
pub mod snapshot;
pub mod system;
pub mod telemetry;
