//! The exporter's own metrics (`container_exporter_*` and the standard `process_*`): the
//! counters of the collector, the server and OTLP ([`Telemetry`]), with handles to the
//! counters the metadata sources and the disk thread own; the one table of self-metrics
//! ([`SELF_METRICS`]) that the Prometheus page, OTLP and the README's reference are all
//! written from; and the process's resource use ([`ProcessStats`]).
//!
//! To add a self-metric: a counter in [`Telemetry`] (or in the stats of the layer that counts
//! it, or a field of [`ProcessStats`]), and a row in [`SELF_METRICS`] whose `emit` reads it.

mod counters;
mod process;
mod table;

pub use counters::{Telemetry, add, get, set};
pub use process::ProcessStats;
pub use table::{SELF_METRICS, SelfMetricDef, SelfPoint, markdown_table};
