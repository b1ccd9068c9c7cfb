//! OTLP flags: where metrics are pushed, over which transport, and the queue and request
//! bounds (the rest comes from the standard `OTEL_EXPORTER_OTLP_*` variables).

use clap::{Args, ValueEnum};

/// OTLP export (off unless an endpoint is configured).
#[derive(Debug, Clone, Args)]
pub struct OtlpArgs {
    /// Where to send OTLP metrics, e.g. `http://otel-collector:4318` (http/protobuf) or
    /// `http://otel-collector:4317` (grpc); `off` to turn OTLP off whatever the variables say.
    /// For http/protobuf, a URL without a path gets `/v1/metrics`; a URL with a path is used
    /// as is. Default: `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used as is), else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (with `/v1/metrics` appended for http/protobuf), else
    /// off: without an endpoint only the Prometheus page is served. Headers, timeout,
    /// compression, TLS and temporality come from the standard `OTEL_EXPORTER_OTLP_*`
    /// variables.
    #[arg(long, env = "CONTAINER_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    /// OTLP transport: `grpc` or `http/protobuf`. Default: `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`,
    /// else `OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf` (the specification's default).
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_OTLP_PROTOCOL",
        value_enum,
        value_name = "PROTOCOL"
    )]
    pub otlp_protocol: Option<Protocol>,

    /// How many ticks' requests may wait while the receiver is slow or down. When the queue is
    /// full the oldest tick's requests are dropped and counted in
    /// `container_exporter_otlp_dropped_requests_total`; cumulative counters lose nothing by
    /// it (every tick carries the totals), gauges lose the dropped ticks.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_OTLP_QUEUE_SIZE",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=10_000),
        value_name = "TICKS"
    )]
    pub otlp_queue_size: u32,

    /// The largest request sent, in bytes of protobuf (before compression). A tick's
    /// containers go in as many requests as it takes, cut between resources: receivers refuse
    /// larger messages (the Collector's gRPC receiver takes at most 4 MiB by default, its
    /// `max_recv_msg_size_mib`; a container takes 3 to 6 KiB). Raise it together with
    /// the receiver's limit to send fewer requests.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_OTLP_MAX_REQUEST_SIZE",
        default_value_t = 4 * 1024 * 1024,
        value_parser = clap::value_parser!(u32).range(4096..),
        value_name = "BYTES"
    )]
    pub otlp_max_request_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// OTLP/gRPC (port 4317 by convention).
    Grpc,
    /// OTLP/HTTP with protobuf bodies, POST to `/v1/metrics` (port 4318 by convention).
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}
