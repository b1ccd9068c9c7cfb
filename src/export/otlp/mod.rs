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
//!   reused buffer, with cumulative or delta temporality ([`Temporality`]). The tests check it
//!   against a reference built apart, the `opentelemetry-proto` message tree encoded by prost
//!   (`tests/common/otlp_reference.rs`, which the library does not contain).
//! - [`send`]: the queue, the transports (TLS with a custom CA and a client certificate),
//!   retries, and the accounting of every request as delivered or failed.
//!
//! The collector thread never waits on the network: [`Exporter::submit`] encodes the request
//! and pushes it onto a queue of at most `--otlp-queue-size` requests; when the queue is
//! full the oldest pending request is dropped (and counted).

pub mod config;
pub mod send;
pub mod wire;

use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

pub use crate::config::{OtlpArgs, Protocol};

use crate::collect::Described;
use crate::resource::HostResource;
use crate::telemetry::{ProcessStats, Telemetry, set};

pub use config::{ClientIdentity, Env, OtlpConfig, parse_headers};
pub use send::{Flusher, Queue};
pub use wire::WireEncoder;

/// The instrumentation scope of every `ScopeMetrics` (and the user agent's product).
pub const SCOPE_NAME: &str = "container-exporter";
/// The scope's version and the exporter's own `service.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`.
///
/// Every metric here is observed (read from the kernel each tick), so in the
/// specification's terms they are *asynchronous* instruments: `delta` makes the Counters
/// delta (UpDownCounters stay cumulative), and `lowmemory`, which asks for delta only on
/// synchronous Counters and Histograms, leaves everything cumulative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    Cumulative,
    Delta,
    LowMemory,
}

impl Temporality {
    pub fn as_str(self) -> &'static str {
        match self {
            Temporality::Cumulative => "cumulative",
            Temporality::Delta => "delta",
            Temporality::LowMemory => "lowmemory",
        }
    }

    /// Whether monotonic Sums (Counters) are sent as deltas.
    pub fn counters_delta(self) -> bool {
        self == Temporality::Delta
    }
}

/// gzip at the fastest level (a tenth of the time of the default level for about the same
/// ratio on this repetitive data).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    let _ = enc.write_all(body);
    let mut out = enc.finish().unwrap_or_default();
    // The guess above is generous (these bodies compress about twentyfold) and the body may
    // wait in the queue: give the rest back.
    out.shrink_to_fit();
    out
}

/// The collector thread's end: encodes each tick's request and hands it to the sender task.
pub struct Exporter {
    encoder: WireEncoder,
    queue: Arc<Queue>,
    protocol: Protocol,
    gzip: bool,
    /// The request being written: reused when it is compressed, else handed to the queue
    /// (and the next one allocated at its size).
    buf: Vec<u8>,
    max_request_size: usize,
    /// This tick's requests, as ranges of `buf` (reused).
    parts: Vec<(std::ops::Range<usize>, usize)>,
    /// Whether a single resource larger than the limit was already reported.
    oversize_warned: bool,
}

impl Exporter {
    /// Resolves the configuration (errors are for people: they name the flag or variable)
    /// and starts the sender task on `runtime`. `Ok(None)` when OTLP is off.
    pub fn start(
        args: &OtlpArgs,
        host_name: Option<String>,
        telemetry: Arc<Telemetry>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Option<Exporter>, String> {
        let Some(cfg) = OtlpConfig::from_args(args)? else {
            return Ok(None);
        };
        Exporter::with_config(cfg, host_name, telemetry, runtime).map(Some)
    }

    pub fn with_config(
        cfg: OtlpConfig,
        host_name: Option<String>,
        telemetry: Arc<Telemetry>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Exporter, String> {
        if cfg.protocol == Protocol::HttpProtobuf && cfg.endpoint.contains(":4317") {
            tracing::warn!(
                endpoint = %cfg.endpoint,
                "port 4317 is the OTLP/gRPC port, but the protocol is http/protobuf (set \
                 --otlp-protocol grpc or OTEL_EXPORTER_OTLP_PROTOCOL=grpc if that is meant)"
            );
        }
        let host = HostResource::new(host_name, cfg.resource_attributes.as_deref());
        let encoder = WireEncoder::new(
            host,
            cfg.service_name.clone(),
            cfg.resource_attributes.as_deref(),
            cfg.temporality,
        );
        set(&telemetry.otlp_queue_capacity, cfg.queue_size as u64);
        let queue = Arc::new(Queue::new(cfg.queue_size, telemetry.clone()));
        let transport = {
            let _guard = runtime.enter();
            send::Transport::new(&cfg)?
        };
        tracing::info!(
            endpoint = %cfg.endpoint,
            protocol = cfg.protocol.as_str(),
            gzip = cfg.gzip,
            timeout = ?cfg.timeout,
            temporality = cfg.temporality.as_str(),
            queue_size = cfg.queue_size,
            "exporting OTLP metrics"
        );
        runtime.spawn(send::run(transport, queue.clone(), telemetry));
        Ok(Exporter {
            encoder,
            queue,
            protocol: cfg.protocol,
            gzip: cfg.gzip,
            buf: Vec::new(),
            max_request_size: cfg.max_request_size,
            parts: Vec::new(),
            oversize_warned: false,
        })
    }

    /// Builds this tick's request from the containers the page shows (live and departed) and
    /// the exporter's own telemetry, encodes it, and queues it. Never blocks.
    pub fn submit<'a>(
        &mut self,
        now: SystemTime,
        containers: impl IntoIterator<Item = &'a Described<'a>>,
        telemetry: &Telemetry,
        process: &ProcessStats,
    ) {
        self.encoder
            .encode(&mut self.buf, now, containers, telemetry, process);
        self.queue_encoded();
    }

    /// Sends the final samples of departed containers between ticks, once their runtimes
    /// said why they ended (see [`crate::departures`]). Never blocks.
    pub fn submit_departures<'a>(
        &mut self,
        now: SystemTime,
        containers: impl IntoIterator<Item = &'a Described<'a>>,
    ) {
        if self
            .encoder
            .encode_departures(&mut self.buf, now, containers)
            == 0
        {
            return;
        }
        self.queue_encoded();
    }

    /// Cuts the request just encoded into `buf` to the size limit, and queues it.
    fn queue_encoded(&mut self) {
        self.encoder.split(self.max_request_size, &mut self.parts);
        if !self.oversize_warned
            && let Some((r, _)) = self
                .parts
                .iter()
                .find(|(r, _)| r.len() > self.max_request_size)
        {
            self.oversize_warned = true;
            tracing::warn!(
                bytes = r.len(),
                max = self.max_request_size,
                "one container's OTLP resource alone is larger than --otlp-max-request-size; \
                 it is sent in a request of its own, which the receiver may refuse"
            );
        }
        // gRPC compresses in tonic (per frame); HTTP bodies are compressed here, once.
        if self.gzip && self.protocol == Protocol::HttpProtobuf {
            let buf = &self.buf;
            self.queue
                .push(self.parts.iter().map(|(r, points)| send::Pending {
                    body: gzip(&buf[r.clone()]).into(),
                    points: *points,
                }));
        } else {
            let next = Vec::with_capacity(self.buf.len() + self.buf.len() / 8);
            let whole = bytes::Bytes::from(std::mem::replace(&mut self.buf, next));
            // Slices of one buffer, not copies.
            self.queue
                .push(self.parts.iter().map(|(r, points)| send::Pending {
                    body: whole.slice(r.clone()),
                    points: *points,
                }));
        }
    }

    /// A handle to flush the queue at shutdown.
    pub fn flusher(&self) -> Flusher {
        Flusher::new(self.queue.clone())
    }
}
