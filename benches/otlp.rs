//! Encoding one OTLP request for 1,000 synthetic containers with the full metric set (2
//! network interfaces and 2 block devices each, Docker metadata), as the daemon does once per
//! tick, then protobuf and gzip (level 1) of it. Allocation is measured by divan's
//! `AllocProfiler`.
//!
//! `encode_*` build the `opentelemetry-proto` message tree and prost-encode it (the reference
//! implementation); `wire_*` write the same bytes straight from the containers into a reused
//! buffer (what the daemon does).
//!
//! `cargo bench --bench otlp` (no root needed).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use container_exporter::cgroup::sample::{
    CgroupSample, CpuSample, IfName, IoDevice, MemorySample, NetIface, PidsSample, Psi,
};
use container_exporter::collect::ContainerState;
use container_exporter::discovery::docker::ContainerMeta;
use container_exporter::discovery::{Found, Runtime};
use container_exporter::export::otlp::encode::{self, Encoder, Temporality};
use container_exporter::export::otlp::wire::WireEncoder;
use container_exporter::export::prom::Described;
use container_exporter::resource::HostResource;
use container_exporter::telemetry::{ProcessStats, Telemetry};
use divan::{AllocProfiler, Bencher};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

const CONTAINERS: usize = 1000;

fn sample(i: u64, scale: u64) -> CgroupSample {
    let psi = Some(Psi {
        some_us: Some(1234 * scale + i),
        full_us: Some(567 * scale + i),
    });
    CgroupSample {
        cpu: CpuSample {
            usage_ns: Some(3_000_000_000 * scale + i),
            user_ns: Some(2_000_000_000 * scale + i),
            system_ns: Some(1_000_000_000 * scale),
            periods: Some(1000 * scale),
            throttled_periods: Some(10 * scale),
            throttled_ns: Some(5_000_000 * scale),
            quota_us: Some(150_000),
            period_us: Some(100_000),
        },
        memory: MemorySample {
            usage: Some(256 << 20),
            peak: Some(300 << 20),
            limit: Some(1 << 30),
            anon: Some(200 << 20),
            file: Some(56 << 20),
            inactive_file: Some(20 << 20),
            swap: Some(0),
            oom_kills: Some(0),
            pgfault: Some(123_456 * scale),
            pgmajfault: Some(12 * scale),
        },
        pids: PidsSample {
            current: Some(12),
            limit: Some(4096),
        },
        io: (0..2)
            .map(|d| IoDevice {
                major: 8,
                minor: d * 16,
                read_bytes: Some(1 << 30),
                write_bytes: Some(2 << 30),
                read_ops: Some(10_000 * scale),
                write_ops: Some(20_000 * scale),
            })
            .collect(),
        cpu_pressure: psi,
        memory_pressure: psi,
        io_pressure: psi,
        net: ["lo", "eth0"]
            .iter()
            .map(|n| NetIface {
                name: IfName::new(n.as_bytes()),
                rx_bytes: 123_456_789 * scale,
                rx_packets: 98_765 * scale,
                rx_errors: 0,
                rx_dropped: 1,
                tx_bytes: 987_654_321 * scale,
                tx_packets: 56_789 * scale,
                tx_errors: 0,
                tx_dropped: 0,
            })
            .collect(),
        populated: Some(true),
    }
}

fn containers() -> Vec<(ContainerState, Arc<ContainerMeta>)> {
    (0..CONTAINERS as u64)
        .map(|i| {
            let id = format!("{i:064x}");
            let found = Found {
                id: id.clone(),
                runtime: Runtime::Docker,
                pod_uid: None,
                rel: format!("docker/{id}").into(),
            };
            let state = ContainerState::with_samples(
                found,
                SystemTime::now() - Duration::from_secs(3600),
                sample(i, 1),
                sample(i, 2),
                Duration::from_secs(10),
            );
            let meta = ContainerMeta {
                name: Some(format!("service-{i}")),
                image_name: Some("registry.example.com/team/service".into()),
                image_tags: vec!["1.2.3".into()],
                image_id: Some(format!("sha256:{i:064x}")),
                ..ContainerMeta::default()
            };
            (state, Arc::new(meta))
        })
        .collect()
}

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
    let bytes = encode::to_bytes(&req, 0);
    eprintln!(
        "request: {} resources, {} data points, {} bytes protobuf, {} bytes gzip",
        req.resource_metrics.len(),
        encode::count_points(&req),
        bytes.len(),
        encode::gzip(&bytes).len()
    );
    let mut hint = bytes.len();
    bencher.bench_local(|| {
        let req = enc.encode(now, &d, &telemetry, &process);
        let bytes = encode::to_bytes(&req, hint);
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
        let bytes = encode::to_bytes(&req, 0);
        encode::gzip(&bytes).len()
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
    eprintln!(
        "request: {points} data points, {} bytes protobuf, {} bytes gzip",
        buf.len(),
        encode::gzip(&buf).len()
    );
    bencher.bench_local(|| enc.encode(&mut buf, now, &d, &telemetry, &process));
}

/// The direct writer plus gzip (HTTP/protobuf with gzip: the buffer is reused, only the
/// compressed body is allocated).
#[divan::bench]
fn wire_encode_and_gzip_1000_containers(bencher: Bencher) {
    let cs = containers();
    let d = described(&cs);
    let mut enc = wire_encoder(Temporality::Cumulative);
    let (telemetry, process) = (Telemetry::default(), ProcessStats::default());
    let now = SystemTime::now();
    let mut buf = Vec::new();
    enc.encode(&mut buf, now, &d, &telemetry, &process);
    bencher.bench_local(|| {
        enc.encode(&mut buf, now, &d, &telemetry, &process);
        encode::gzip(&buf).len()
    });
}
