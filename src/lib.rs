//! container-exporter: per-host container metrics read straight from the kernel's cgroup
//! files.
//!
//! The data flows one way: [`discovery`] finds containers in the cgroup tree, [`cgroup`]
//! reads their files into typed samples, [`collect`] runs one tick over every tracked
//! container, [`metrics`] turns samples into data points, and the outputs ([`snapshot`])
//! print them.
//!
//! Where things live, and how to add one more:
//! - [`config`]: every flag and variable (a leaf: it imports nothing of the crate). A new flag
//!   is a field with `env = "CONTAINER_EXPORTER_…"`; the README's flag table is generated.
//! - [`cgroup`]: the kernel side (layout, file plan, parsers, readers). A new cgroup file is a
//!   row in the file plan and its parser.
//! - [`discovery`]: which cgroups are containers or pods. A new runtime is a path pattern.
//! - [`metadata`]: what runtimes say about them (Docker, Podman, CRI). A new source is a
//!   module with a `run` task filling a store.
//! - [`metrics`]: the one table of metrics (and the cAdvisor page's rows over it), and
//!   [`telemetry`]: the one table of self-metrics. A new metric from an existing sample field
//!   is one row and one `emit` arm; every output and the README follow.
//! - [`resource`]: the resource attributes of containers and pods, one table and one builder.
//! - [`collect`]: one tick over every tracked container; [`daemon`]: the loop around it;
//!   [`departures`]: final samples until delivered, and [`exit`]: why each container ended;
//!   [`export`]: the outputs (the Prometheus page and its server, OTLP).

#![forbid(unsafe_code)]

pub mod cgroup;
pub mod check;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod departures;
pub mod discovery;
pub mod disk;
pub mod exit;
pub mod export;
pub mod host;
pub mod metadata;
pub mod metrics;
pub mod progress;
pub mod remote;
pub mod resource;
pub mod snapshot;
pub mod telemetry;
