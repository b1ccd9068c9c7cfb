//! Outputs: the Prometheus page (rendering and HTTP serving) and OTLP export.

pub mod http;
pub mod otlp;
pub mod prom;
