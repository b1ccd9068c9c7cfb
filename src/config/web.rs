//! The Prometheus page's security and limits: the web config file, requests and connections
//! at once, and the write timeout.

use std::time::Duration;

use clap::Args;

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
