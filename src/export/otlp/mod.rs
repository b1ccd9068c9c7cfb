//! OTLP metrics export: each tick, an `ExportMetricsServiceRequest` with one `ResourceMetrics`
//! per container (plus one for the exporter itself), written straight as protobuf, queued and
//! sent over gRPC or HTTP/protobuf by a tokio task; the collector thread never waits on the
//! network. What is sent and how it is delivered: `docs/otlp.md`.
//!
//! - [`config`]: the flags and the `OTEL_EXPORTER_OTLP_*` variables, resolved once at start.
//! - [`wire`]: a tick's request, written with [`proto`]'s field primitives.
//! - [`exporter`]: the collector thread's end: encodes, cuts, compresses and queues each tick.
//! - [`queue`]: the bounded queue between the two ends, in ticks, dropping the oldest.
//! - [`send`]: the sender task (retries, and the accounting of every request), and the probe
//!   `check` sends.
//! - [`http`], [`grpc`]: the two transports, each classifying its own failures as an
//!   [`outcome::Outcome`].

pub mod config;
pub mod exporter;
pub mod grpc;
pub mod http;
pub mod outcome;
pub mod proto;
pub mod queue;
pub mod send;
pub mod wire;

pub use config::{OtlpConfig, Temporality};
pub use exporter::Exporter;
pub use send::gzip;
pub use wire::{SCOPE_NAME, VERSION};
