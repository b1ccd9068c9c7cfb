//! Encoding one OTLP request for 1,000 synthetic containers with the full metric set (2
//! network interfaces and 2 block devices each, Docker metadata), as the daemon does once per
//! tick, then protobuf and gzip (level 1) of it. Allocation is measured by divan's
//! `AllocProfiler`.
//!
//! `encode_*` build the `opentelemetry-proto` message tree from the same tables and
//! prost-encode it (`benches/common/otlp_tree.rs`: what the writer saves; the library does
//! not contain it); `wire_*` write the same bytes straight from the containers into a reused
//! buffer (what the daemon does).
//!
//! `cargo bench --bench otlp` (no root needed).

use std::sync::Arc;
use std::time::SystemTime;

use container_exporter::collect::ContainerState;
use container_exporter::export::otlp::wire::WireEncoder;
use container_exporter::export::otlp::{Temporality, gzip};
use container_exporter::export::prom::Described;
use container_exporter::metadata::ContainerMeta;
use container_exporter::resource::HostResource;
use container_exporter::telemetry::{ProcessStats, Telemetry};
use divan::{AllocProfiler, Bencher};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

#[path = "common/synthetic.rs"]
mod synthetic;

#[path = "common/otlp_tree.rs"]
mod reference;

use reference::Encoder;
use synthetic::containers;

fn main() {
    divan::main();
}

fn encoder(t: Temporality) -> Encoder {
    Encoder::new(
        HostResource::new(Some("node-1".into()), Some("deployment.environment=prod")),
        "container-exporter".into(),
        Some("deployment.environment=prod"),
        t,
    )
}

fn described(cs: &[(ContainerState, Arc<ContainerMeta>)]) -> Vec<Described<'_>> {
    cs.iter()
        .map(|(state, meta)| Described {
            state,
            meta: Some(meta.clone()),
            pod: None,
        })
        .collect()
}

/// Building the request (the message tree) and its protobuf encoding: what the collector
/// thread does per tick with gRPC (tonic compresses).
#[divan::bench(args = [Temporality::Cumulative, Temporality::Delta])]
fn encode_1000_containers(bencher: Bencher, t: Temporality) {
    let cs = containers();
    let d = described(&cs);
    let mut enc = encoder(t);
    let (telemetry, process) = (Telemetry::default(), ProcessStats::default());
    let now = SystemTime::now();
    // The first pass caches each container's resource attributes; later ticks reuse them.
    let req = enc.encode(now, &d, &telemetry, &process);
    let bytes = reference::to_bytes(&req, 0);
    eprintln!(
        "request: {} resources, {} data points, {} bytes protobuf, {} bytes gzip",
        req.resource_metrics.len(),
        reference::count_points(&req),
        bytes.len(),
        gzip(&bytes).len()
    );
    let mut hint = bytes.len();
    bencher.bench_local(|| {
        let req = enc.encode(now, &d, &telemetry, &process);
        let bytes = reference::to_bytes(&req, hint);
        hint = bytes.len();
        bytes.len()
    });
}

/// The same plus gzip: what the collector thread does per tick with HTTP/protobuf and
/// `OTEL_EXPORTER_OTLP_COMPRESSION=gzip`.
#[divan::bench]
fn encode_and_gzip_1000_containers(bencher: Bencher) {
    let cs = containers();
    let d = described(&cs);
    let mut enc = encoder(Temporality::Cumulative);
    let (telemetry, process) = (Telemetry::default(), ProcessStats::default());
    let now = SystemTime::now();
    let _ = enc.encode(now, &d, &telemetry, &process);
    bencher.bench_local(|| {
        let req = enc.encode(now, &d, &telemetry, &process);
        let bytes = reference::to_bytes(&req, 0);
        gzip(&bytes).len()
    });
}

fn wire_encoder(t: Temporality) -> WireEncoder {
    WireEncoder::new(
        HostResource::new(Some("node-1".into()), Some("deployment.environment=prod")),
        "container-exporter".into(),
        Some("deployment.environment=prod"),
        t,
    )
}

/// The direct writer: the same request, written into a buffer reused from tick to tick
/// (with gRPC, the daemon hands the buffer to the queue and allocates the next one: one
/// allocation of the request's size more).
#[divan::bench(args = [Temporality::Cumulative, Temporality::Delta])]
fn wire_encode_1000_containers(bencher: Bencher, t: Temporality) {
    let cs = containers();
    let d = described(&cs);
    let mut enc = wire_encoder(t);
    let (telemetry, process) = (Telemetry::default(), ProcessStats::default());
    let now = SystemTime::now();
    // The first pass encodes each container's resource; later ticks reuse them.
    let mut buf = Vec::new();
    let points = enc.encode(&mut buf, now, &d, &telemetry, &process);
    let mut parts = Vec::new();
    enc.split(MAX_REQUEST, &mut parts);
    eprintln!(
        "request: {points} data points, {} bytes protobuf, {} bytes gzip, {} requests of at \
         most {MAX_REQUEST} bytes",
        buf.len(),
        gzip(&buf).len(),
        parts.len()
    );
    bencher.bench_local(|| enc.encode(&mut buf, now, &d, &telemetry, &process));
}

/// `--otlp-max-request-size`'s default.
const MAX_REQUEST: usize = 4 << 20;

/// The direct writer plus gzip (HTTP/protobuf with gzip: the buffer is reused, only the
/// compressed bodies are allocated), one body per request of at most the default size, as
/// the daemon does.
#[divan::bench]
fn wire_encode_and_gzip_1000_containers(bencher: Bencher) {
    let cs = containers();
    let d = described(&cs);
    let mut enc = wire_encoder(Temporality::Cumulative);
    let (telemetry, process) = (Telemetry::default(), ProcessStats::default());
    let now = SystemTime::now();
    let mut buf = Vec::new();
    let mut parts = Vec::new();
    enc.encode(&mut buf, now, &d, &telemetry, &process);
    bencher.bench_local(|| {
        enc.encode(&mut buf, now, &d, &telemetry, &process);
        enc.split(MAX_REQUEST, &mut parts);
        parts
            .iter()
            .map(|(r, _)| gzip(&buf[r.clone()]).len())
            .sum::<usize>()
    });
}
