//! OTLP metrics export: each tick, an `ExportMetricsServiceRequest` with one `ResourceMetrics`
//! per container (plus one for the exporter itself), sent over gRPC or HTTP/protobuf by a
//! tokio task behind a bounded queue. A tick larger than `--otlp-max-request-size` goes as
//! several requests, cut between resources (3 to 6 KiB per container: 4 MiB, the Collector's
//! default gRPC limit, holds 650 to 1,300 containers).
//!
//! - [`config`]: [`OtlpArgs`] and [`OtlpConfig`], the flags and the standard `OTEL_EXPORTER_OTLP_*`
//!   variables, resolved once at start with the specification's precedence (flag, then the
//!   metrics-specific variable, then the generic one, then the default). Invalid values stop
//!   the exporter at start with a message naming the variable.
//! - [`wire`]: containers and self-telemetry → request, written straight as protobuf into a
//!   reused buffer (with [`proto`]'s field primitives), with cumulative or delta temporality
//!   ([`Temporality`]). The tests check it against a reference built apart, the
//!   `opentelemetry-proto` message tree encoded by prost (`tests/common/otlp_reference.rs`).
//! - [`exporter`]: the collector thread's end ([`Exporter`]): encodes, cuts, compresses and
//!   queues each tick.
//! - [`queue`]: the bounded queue between the two ends, in ticks, dropping the oldest.
//! - [`send`]: the sender task: retries with backoff, and the accounting of every request as
//!   delivered or failed; and the probe `check` sends.
//! - [`transport`]: HTTP/protobuf and gRPC (TLS with a custom CA and a client certificate),
//!   and how each classifies a failure.
//!
//! The collector thread never waits on the network: [`Exporter::submit`] encodes the request
//! and pushes it onto a queue of at most `--otlp-queue-size` ticks; when the queue is full
//! the oldest pending tick is dropped (and counted).

pub mod config;
pub mod exporter;
pub mod proto;
pub mod queue;
pub mod send;
pub mod transport;
pub mod wire;

pub use crate::config::{OtlpArgs, Protocol};
pub use config::{ClientIdentity, Env, OtlpConfig, OtlpConfigError, Temporality, parse_headers};
pub use exporter::{Exporter, StartError};
pub use queue::{Flusher, Pending, Queue};
pub use send::{ProbeError, gzip, probe};
pub use wire::{SCOPE_NAME, VERSION, WireEncoder};
