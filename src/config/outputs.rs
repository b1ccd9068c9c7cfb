//! The outputs' flags: the Prometheus page's security and limits (the web config file,
//! requests and connections at once, the write timeout), and where OTLP is pushed, over which
//! transport, with its queue and request bounds (the rest comes from the standard
//! `OTEL_EXPORTER_OTLP_*` variables).

use std::time::Duration;

use clap::{Args, ValueEnum};

use super::values::parse_duration;

/// The page's security and limits (names as node_exporter's, for operators who know those).
#[derive(Debug, Clone, Args)]
pub struct WebArgs {
    /// TLS, client certificates, basic auth and response headers for the page, in the
    /// exporter-toolkit format Prometheus and node_exporter read (`tls_server_config`,
    /// `basic_auth_users`, `http_server_config`, `rate_limit`). Reloaded on SIGHUP and when the
    /// file or a certificate it names changes; a file that does not load keeps the previous
    /// configuration. Default: none (plain HTTP, no auth).
    #[arg(
        long = "web.config.file",
        visible_alias = "web-config-file",
        env = "CONTAINER_EXPORTER_WEB_CONFIG_FILE",
        value_name = "FILE"
    )]
    pub web_config_file: Option<std::path::PathBuf>,

    /// `/metrics` responses in flight at once; more get 503 (a stalled one gives way first).
    /// Each holds a reference to a rendered page until it is written.
    #[arg(
        long = "web.max-requests",
        visible_alias = "web-max-requests",
        env = "CONTAINER_EXPORTER_WEB_MAX_REQUESTS",
        default_value_t = 40,
        value_parser = clap::value_parser!(u32).range(1..=10_000),
        value_name = "N"
    )]
    pub web_max_requests: u32,

    /// Open connections at once, and never more than an eighth of the descriptor limit (the
    /// collector's open cgroup files come first). At the cap, the longest-idle connection (else
    /// a stalled one) is closed to make room.
    #[arg(
        long = "web.max-connections",
        visible_alias = "web-max-connections",
        env = "CONTAINER_EXPORTER_WEB_MAX_CONNECTIONS",
        default_value_t = 64,
        value_parser = clap::value_parser!(u32).range(1..=100_000),
        value_name = "N"
    )]
    pub web_max_connections: u32,

    /// How long a response may take to be written; a client that reads slower is cut off.
    #[arg(
        long = "web.write-timeout",
        visible_alias = "web-write-timeout",
        env = "CONTAINER_EXPORTER_WEB_WRITE_TIMEOUT",
        default_value = "30s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub web_write_timeout: Duration,
}

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

/// Which names the Prometheus page uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Naming {
    Otel,
    Cadvisor,
}
