//! Logging flags: the level and the format of the exporter's own log lines.

use clap::{Args, ValueEnum};

/// Logging: human-readable lines on stderr by default.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Least severe level logged: error, warn, info, debug or trace. At debug and trace the
    /// HTTP/2, HTTP, gRPC and TLS libraries stay at info (their frame-by-frame lines would
    /// bury the exporter's). `RUST_LOG`, when set, takes precedence (with its per-module
    /// syntax, e.g. `RUST_LOG=debug,h2=debug` to see them).
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_LOG_LEVEL",
        default_value = "info",
        global = true,
        value_name = "LEVEL"
    )]
    pub log_level: String,

    /// `human` for people, `json` (one object per line) for log pipelines.
    #[arg(
        long,
        value_enum,
        env = "CONTAINER_EXPORTER_LOG_FORMAT",
        default_value = "human",
        global = true
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}
