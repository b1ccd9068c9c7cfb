//! Outputs: the Prometheus page (rendering and HTTP serving).

pub mod http;
pub mod prom;
