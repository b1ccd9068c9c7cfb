//! The collector thread's end of OTLP export: each tick's request encoded, cut to the size
//! limit, compressed for HTTP, and queued for the sender task, without ever waiting on the
//! network.

use std::sync::Arc;
use std::time::SystemTime;

use super::config::{OtlpConfig, OtlpConfigError};
use super::outcome::TransportError;
use super::queue::{Pending, Queue};
use super::send::{Transport, gzip, run};
use super::wire::WireEncoder;
use crate::collect::Described;
use crate::config::{OtlpArgs, Protocol};
use crate::resource::HostResource;
use crate::telemetry::{ProcessStats, Telemetry, set};

/// Why OTLP export could not start: the configuration, or the transport built from it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] OtlpConfigError),
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// The collector thread's end: encodes each tick's request and hands it to the sender task.
pub struct Exporter {
    encoder: WireEncoder,
    queue: Arc<Queue>,
    /// Whether the bodies are gzipped here, once: HTTP's (gRPC compresses in tonic, per frame).
    gzip: bool,
    /// The request being written: reused when it is compressed, else handed to the queue
    /// (and the next one allocated at its size).
    buf: Vec<u8>,
    /// The size of the last tick's request: the next one's buffer is reserved at that size
    /// when it is encoded, not when the last one is queued, so that at most one tick's
    /// request is held between ticks (the queued one is dropped once sent).
    last_len: usize,
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
    ) -> Result<Option<Exporter>, StartError> {
        let Some(cfg) = OtlpConfig::from_args(args)? else {
            return Ok(None);
        };
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
            Transport::new(&cfg)?
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
        runtime.spawn(run(transport, queue.clone(), telemetry));
        Ok(Some(Exporter {
            encoder,
            queue,
            gzip: cfg.gzip && cfg.protocol == Protocol::HttpProtobuf,
            buf: Vec::new(),
            last_len: 0,
            max_request_size: cfg.max_request_size,
            parts: Vec::new(),
            oversize_warned: false,
        }))
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
        self.buf.reserve(self.last_len + self.last_len / 8);
        self.encoder
            .encode(&mut self.buf, now, containers, telemetry, process);
        self.last_len = self.buf.len();
        self.queue_encoded();
    }

    /// Sends the final samples of departed containers between ticks, once their runtimes
    /// said why they ended (see [`crate::departures`]). Never blocks.
    pub fn submit_departures<'a>(
        &mut self,
        now: SystemTime,
        containers: impl IntoIterator<Item = &'a Described<'a>>,
    ) {
        let points = (self.encoder).encode_departures(&mut self.buf, now, containers);
        if points > 0 {
            self.queue_encoded();
        }
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
        if self.gzip {
            let buf = &self.buf;
            self.queue
                .push(self.parts.iter().map(|(r, points)| Pending {
                    body: gzip(&buf[r.clone()]).into(),
                    points: *points,
                }));
        } else {
            let whole = bytes::Bytes::from(std::mem::take(&mut self.buf));
            // Slices of one buffer, not copies.
            self.queue
                .push(self.parts.iter().map(|(r, points)| Pending {
                    body: whole.slice(r.clone()),
                    points: *points,
                }));
        }
    }

    /// The queue, to flush at shutdown ([`Queue::flush`]).
    pub fn flusher(&self) -> Arc<Queue> {
        self.queue.clone()
    }
}
