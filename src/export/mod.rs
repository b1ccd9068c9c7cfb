//! Outputs: the Prometheus page (rendering, HTTP serving and its TLS and auth) and OTLP export.

pub mod http;
pub mod http_conn;
pub mod otlp;
pub mod prom;
pub mod web_config;
