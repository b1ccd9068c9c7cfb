//! Outputs: the Prometheus page (rendering and HTTP serving) and OTLP export.

pub mod cadvisor;
pub mod http;
pub mod otlp;
pub mod prom;
