//! container-exporter: per-host container metrics read straight from the kernel's cgroup
//! files. The data flows one way, up the layers below.
//!
//! ## Layers
//!
//! Bottom up. A module uses only modules of its own layer or below, and no file takes part in
//! an import cycle; `tests/house.rs` checks both against this list (one numbered line per
//! layer, its modules before the colon; a module that does not exist yet is named without a
//! link).
//!
//! 1. [`config`], [`progress`], [`remote`]: the leaves: flags and variables; naming what a
//!    stuck operation is stuck on; backoff, jitter, deadline sleep and error chain for every
//!    client.
//! 2. [`host`]: the host itself: safe opens and `pread_all`, the kernel's text formats, the
//!    one mountinfo parser, block device names, CPUs and memory, the descriptor limit.
//! 3. [`discovery`]: which cgroups are containers or pods; inotify.
//! 4. [`cgroup`]: the layout, the file plan, parsers, readers and samples.
//! 5. [`exit`]: why a container ended: the rule, and the runtime's word.
//! 6. [`metadata`]: what the runtimes say (Docker, Podman, CRI, the kubelet's log names);
//!    owns its stats.
//! 7. [`disk`]: disk usage of writable layers, logs and pods' volumes; owns its stats.
//! 8. [`metrics`]: the one table of metrics, and `emit`.
//! 9. [`telemetry`]: the one table of self-metrics, over the stats the layers below own.
//! 10. [`collect`]: one tick over every tracked container.
//! 11. [`resource`], [`departures`]: resource attributes; final samples and their exits until
//!     delivered.
//! 12. [`export`]: the outputs: Prometheus text, the OpenTelemetry and cAdvisor pages, the
//!     HTTP server and its web config, OTLP.
//! 13. [`live`]: the browser view: every container's latest values and history, the ended
//!     ones, and the JSON API the page reads.
//! 14. [`cli`], [`daemon`], [`snapshot`], [`check`]: the command line, gathered from every
//!     layer's flags, and the commands.
//!
//! `docs/architecture.md` says how the parts work together; `docs/contributing.md` how to add
//! a flag, a metric, a cgroup file or a runtime.

// One function sets the C allocator's thresholds (`host::alloc`), with its SAFETY comment.
#![deny(unsafe_code)]

pub mod cgroup;
pub mod check;
pub mod cli;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod departures;
pub mod discovery;
pub mod disk;
pub mod exit;
pub mod export;
pub mod host;
pub mod live;
pub mod metadata;
pub mod metrics;
pub mod progress;
pub mod remote;
pub mod resource;
pub mod snapshot;
pub mod telemetry;
