//! Outputs: the Prometheus page (rendering, HTTP serving and its TLS and auth) and OTLP export.
//!
//! - [`prom`]: the page, rendered from the metric table (OpenTelemetry names, or cAdvisor's,
//!   whose families and lines are [`cadvisor`]'s) into a recycled buffer; the text format's
//!   pieces both use are in [`text`]. [`page`] renders it when a scrape asks for a page of a
//!   tick not yet rendered, compresses it and publishes it.
//! - [`http`]: serving it, bounded, with the exporter-toolkit web config (TLS, mutual TLS,
//!   basic auth, headers).
//! - [`otlp`]: one request per tick, written straight as protobuf, queued and sent.
//!
//! To add an output: a module that takes each tick's `collect::Described` containers (with
//! their metric points from `ContainerState::emit`, their attributes from
//! `resource::HostResource::attributes`, and the self-metrics from `telemetry::SELF_METRICS`)
//! and a line in `CollectorLoop::tick` (`src/daemon.rs`) that hands them over.

pub mod cadvisor;
pub mod http;
pub mod otlp;
pub mod page;
pub mod prom;
pub mod text;
