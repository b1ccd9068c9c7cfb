//! The direct protobuf writer (`WireEncoder`, what the daemon sends) against the expected
//! request of `tests/common/otlp_reference.rs`, built apart: from the containers' cgroup
//! samples (random ones, and samples parsed from the kernel captures in `testdata/`), their
//! metadata and exits and the exporter's counters, with the names, units, instruments and
//! attributes of the metric contract written out there, as `opentelemetry-proto` messages. The
//! writer's bytes are decoded by prost and compared with it message by message, in any order
//! where OTLP defines none: for containers and pods — with and without metadata, missing
//! values, 0, 2 or many interfaces and devices, counters that go back (resets) or pass
//! `i64::MAX`, containers that leave and come back, metadata and cgroup changes, exits, disk
//! usage — and the exporter's own metrics (every source on or off), over several ticks and for
//! every temporality. The writer's bytes are also prost's canonical encoding of what they
//! decode to, and every request cut at a size limit gives whole requests.
//!
//! Hand-written checks of single requests (resources, instruments, temporality, start times)
//! pin the contract's literal values on both.

mod common;

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::otlp_reference::{Case, Reference, assert_same, count_points, nanos};
use container_exporter::cgroup::plan::parse_files;
use container_exporter::cgroup::sample::{
    CgroupSample, CpuSample, IfName, IoDevice, MemorySample, NetIface, PidsSample, Psi,
};
use container_exporter::collect::{ContainerState, Described};
use container_exporter::discovery::{Kind, Runtime};
use container_exporter::disk::{DiskSample, DiskStats, FsStat, Usage};
use container_exporter::exit::{Exit, ExitReason};
use container_exporter::export::otlp::Temporality;
use container_exporter::export::otlp::wire::WireEncoder;
use container_exporter::metadata::{ContainerMeta, PodMeta};
use container_exporter::metadata::{MetadataStats, Source};
use container_exporter::resource::HostResource;
use container_exporter::telemetry::{ProcessStats, Telemetry, set};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{
    self as pm, AggregationTemporality, ResourceMetrics, metric, number_data_point,
};
use proptest::prelude::*;
use prost::Message;

/// xorshift64*: the containers of a case from one seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    /// A counter at `tick`: growing, sometimes back to a small value (a reset), sometimes
    /// beyond `i64::MAX`.
    fn counter(&mut self, tick: u64) -> u64 {
        match self.below(12) {
            0 => self.below(50),
            1 => u64::MAX - self.below(3),
            _ => tick * 1_000 + self.below(1_000),
        }
    }
    fn maybe(&mut self, tick: u64) -> Option<u64> {
        if self.chance(5) {
            None
        } else {
            Some(self.counter(tick))
        }
    }
}

fn sample(rng: &mut Rng, tick: u64, interfaces: usize, devices: usize) -> CgroupSample {
    let mut psi = || {
        if rng.chance(4) {
            None
        } else {
            Some(Psi {
                some_us: rng.maybe(tick),
                full_us: rng.maybe(tick),
            })
        }
    };
    let (cpu_pressure, memory_pressure, io_pressure) = (psi(), psi(), psi());
    CgroupSample {
        cpu: CpuSample {
            usage_ns: rng.maybe(tick).map(|v| v.saturating_mul(1_000_000)),
            user_ns: rng.maybe(tick),
            system_ns: rng.maybe(tick),
            periods: rng.maybe(tick),
            throttled_periods: rng.maybe(tick),
            throttled_ns: rng.maybe(tick),
            quota_us: rng.maybe(tick),
            period_us: if rng.chance(6) {
                Some(0)
            } else {
                Some(100_000)
            },
            ..Default::default()
        },
        memory: MemorySample {
            usage: rng.maybe(tick),
            peak: rng.maybe(tick),
            limit: rng.maybe(tick),
            anon: rng.maybe(tick),
            file: rng.maybe(tick),
            inactive_file: rng.maybe(tick),
            swap: rng.maybe(tick),
            oom_kills: rng.maybe(tick),
            oom_group_kills: rng.maybe(tick),
            pgfault: rng.maybe(tick),
            pgmajfault: rng.maybe(tick),
            ..Default::default()
        },
        pids: PidsSample {
            current: rng.maybe(tick),
            limit: rng.maybe(tick),
        },
        io: (0..devices as u32)
            .map(|d| IoDevice {
                major: 8 + d / 16,
                minor: d * 16 % 256,
                read_bytes: rng.maybe(tick),
                write_bytes: rng.maybe(tick),
                read_ops: rng.maybe(tick),
                write_ops: rng.maybe(tick),
            })
            .collect(),
        cpu_pressure,
        memory_pressure,
        io_pressure,
        net: (0..interfaces)
            .map(|n| NetIface {
                // Unique, as in one network namespace.
                name: IfName::new(
                    match n {
                        0 => b"lo".to_vec(),
                        1 => b"eth0".to_vec(),
                        2 => b"".to_vec(),
                        3 => b"a-very-long-nam".to_vec(),
                        _ => format!("veth{n}").into_bytes(),
                    }
                    .as_slice(),
                ),
                rx_bytes: rng.counter(tick),
                rx_packets: rng.counter(tick),
                rx_errors: rng.counter(tick),
                rx_dropped: rng.counter(tick),
                tx_bytes: rng.counter(tick),
                tx_packets: rng.counter(tick),
                tx_errors: rng.counter(tick),
                tx_dropped: rng.counter(tick),
            })
            .collect(),
        populated: Some(true),
        ..CgroupSample::default()
    }
}

fn meta(rng: &mut Rng, i: u64) -> Option<Arc<ContainerMeta>> {
    if rng.chance(4) {
        return None;
    }
    let s = |rng: &mut Rng, v: String| if rng.chance(5) { None } else { Some(v) };
    Some(Arc::new(ContainerMeta {
        name: s(rng, format!("service-{i}")),
        image_name: s(rng, "registry.example.com/team/service".into()),
        image_tags: (0..rng.below(3)).map(|t| format!("1.{t}")).collect(),
        image_id: s(rng, format!("sha256:{i:064x}")),
        labels: (0..rng.below(3))
            .map(|l| {
                (
                    format!("l{l}"),
                    if l == 1 { String::new() } else { "v".into() },
                )
            })
            .collect(),
        k8s_pod_name: s(rng, "pod".into()),
        k8s_namespace_name: s(rng, String::new()),
        k8s_container_name: s(rng, "c".into()),
        k8s_pod_uid: s(rng, "uid-1".into()),
        k8s_container_restart_count: rng.chance(2).then(|| rng.below(4) as u32),
        runtime_name: rng.chance(3).then(|| "containerd".to_string()),
        ..ContainerMeta::default()
    }))
}

/// One container across ticks.
struct Spec {
    id: String,
    kind: Kind,
    runtime: Runtime,
    pod_uid: Option<String>,
    created: SystemTime,
    meta: Option<Arc<ContainerMeta>>,
    pod: Option<Arc<PodMeta>>,
    interfaces: usize,
    devices: usize,
}

/// A pod's metadata, or none.
fn pod_meta(rng: &mut Rng, i: u64) -> Option<Arc<PodMeta>> {
    rng.chance(3).then(|| {
        Arc::new(PodMeta {
            uid: format!("pod-{i}"),
            name: Some(format!("web-{i}")),
            namespace: rng.chance(2).then(|| "shop".to_string()),
            labels: (0..rng.below(3))
                .map(|l| (format!("l{l}"), format!("v{i}")))
                .collect(),
        })
    })
}

fn specs(rng: &mut Rng, n: u64) -> Vec<Spec> {
    (0..n)
        .map(|i| {
            let (interfaces, devices) = match rng.below(5) {
                0 => (0, 0),
                1 => (2, 2),
                2 => (1, 3),
                3 => (5, 1),
                // Big enough for 3-byte lengths.
                _ if i == 0 => (60, 40),
                _ => (2, 0),
            };
            // One in four is a Kubernetes pod's own cgroup.
            let kind = if rng.chance(4) {
                Kind::Pod
            } else {
                Kind::Container
            };
            Spec {
                id: format!("{i:064x}"),
                kind,
                runtime: [
                    Runtime::Docker,
                    Runtime::Containerd,
                    Runtime::CriO,
                    Runtime::Podman,
                ][rng.below(4) as usize],
                pod_uid: rng.chance(3).then(|| format!("pod-{i}")),
                created: UNIX_EPOCH + Duration::from_secs(1_700_000_000 + rng.below(1000)),
                meta: if kind == Kind::Pod {
                    None
                } else {
                    meta(rng, i)
                },
                pod: pod_meta(rng, i),
                interfaces,
                devices,
            }
        })
        .collect()
}

fn host() -> HostResource {
    HostResource::new(
        Some("node-1".into()),
        Some("deployment.environment=prod,env=x"),
    )
}

/// The exporter's telemetry with each metadata source on or off (a source's self-metrics
/// are written only when it is on, the OTLP ones only when OTLP is: both cases are covered).
fn sources(rng: &mut Rng) -> Telemetry {
    let t = Telemetry::default();
    if rng.chance(2) {
        let _ = t.disk.set(Arc::new(DiskStats::default()));
    }
    if rng.chance(4) {
        // Metadata never started: not even its values-cut count.
        return t;
    }
    let mut m = MetadataStats::default();
    for (source, one_in) in [
        (Source::Docker, 2),
        (Source::Cri, 2),
        (Source::Podman, 3),
        (Source::KubeletLogs, 3),
    ] {
        if rng.chance(one_in) {
            let def = source.def();
            m.add(def.name, def.figures);
        }
    }
    let _ = t.metadata.set(m);
    t
}

/// Every self-metric's reading at `tick`: counters that grow, reset and pass `i64::MAX`,
/// flags, gauges, and OTLP on or off (its queue's capacity).
fn self_telemetry(rng: &mut Rng, t: &Telemetry, tick: u64) -> ProcessStats {
    for c in [
        &t.collections,
        &t.containers_tracked,
        &t.read_errors_io,
        &t.read_errors_malformed,
        &t.read_errors_truncated,
        &t.read_errors_open,
        &t.discovery_added,
        &t.discovery_removed,
        &t.discovery_rescans,
        &t.discovery_overflows,
        &t.final_samples,
        &t.watches_dirs,
        &t.watches_events,
        &t.scrapes,
        &t.otlp_exports_succeeded,
        &t.otlp_exports_failed,
        &t.otlp_retries,
        &t.otlp_dropped_requests,
        &t.otlp_rejected_points,
        &t.otlp_queue_length,
        &t.dropped_devices,
        &t.dropped_interfaces,
        &t.unwatched_dirs,
        &t.unwatched_events,
        &t.containers_reopened,
        &t.exits_code,
        &t.exits_no_code,
        &t.exits_timeout,
        &t.exits_late,
        &t.exits_unasked,
        &t.exits_held,
        &t.exits_waiting,
    ] {
        set(c, rng.counter(tick));
    }
    set(&t.last_collection_ns, rng.below(1_000_000_000));
    set(&t.last_render_ns, rng.below(1_000_000_000));
    set(&t.last_otlp_encode_ns, rng.below(1_000_000_000));
    if let Some(d) = t.disk.get() {
        for c in [
            &d.walks_complete,
            &d.walks_denied,
            &d.walks_too_deep,
            &d.walks_vanished,
            &d.entries,
            &d.layers_found,
            &d.layers_unsupported,
            &d.layers_unreachable,
            &d.layers_pending,
            &d.layers_untrusted,
            &d.lookups_runtime,
            &d.lookups_mountinfo,
            &d.lookups_host_namespace,
        ] {
            set(c, rng.counter(tick));
        }
        set(&d.cpu_ns, rng.counter(tick) / 3);
        set(&d.lag_ns, rng.below(10_000_000_000));
    }
    set(
        &t.otlp_queue_capacity,
        if rng.chance(3) { 0 } else { rng.below(100) },
    );
    let flag = |rng: &mut Rng, b: &std::sync::atomic::AtomicBool| {
        b.store(rng.chance(2), std::sync::atomic::Ordering::Relaxed)
    };
    if let Some(m) = t.metadata.get() {
        set(&m.values_cut, rng.counter(tick));
        for source in [
            Source::Docker,
            Source::Cri,
            Source::Podman,
            Source::KubeletLogs,
        ] {
            if let Some(c) = m.get(source.def().name) {
                for v in [
                    &c.api_errors,
                    &c.reconnects,
                    &c.lookups,
                    &c.calls,
                    &c.events,
                ] {
                    set(v, rng.counter(tick));
                }
                flag(rng, &c.connected);
            }
        }
    }
    ProcessStats {
        cpu_seconds: rng.below(1000) as f64 / 7.0,
        resident_bytes: rng.counter(tick),
        open_fds: rng.below(100),
        max_fds: rng.counter(tick),
        start_time_seconds: if rng.chance(5) { 0.0 } else { 1_700_000_000.5 },
    }
}

/// Disk figures, sometimes partial; a pod's with its emptyDir volumes.
fn disk(rng: &mut Rng, kind: Kind, tick: u64) -> Option<DiskSample> {
    if rng.chance(2) {
        return None;
    }
    let usage = |rng: &mut Rng| {
        (!rng.chance(4)).then(|| Usage {
            bytes: rng.counter(tick),
            inodes: rng.below(10_000),
        })
    };
    Some(DiskSample {
        usage: usage(rng),
        rootfs: usage(rng),
        logs: usage(rng),
        empty_dir: if kind == Kind::Pod { usage(rng) } else { None },
        kubernetes: rng.chance(2),
        fs: (!rng.chance(4)).then(|| FsStat {
            capacity: rng.counter(tick),
            available: rng.below(1 << 40),
            inodes_free: rng.below(1 << 20),
            dev: 0,
        }),
        device: None,
    })
}

/// The writer's request decoded; its bytes must be prost's own encoding of it.
fn decode(buf: &[u8], context: &str) -> ExportMetricsServiceRequest {
    let got = ExportMetricsServiceRequest::decode(buf)
        .unwrap_or_else(|e| panic!("{context}: the writer's bytes do not decode: {e}"));
    assert!(
        got.encode_to_vec() == buf,
        "{context}: the writer's bytes are not prost's encoding of what they decode to"
    );
    got
}

/// Runs `ticks` ticks of the same containers through the writer and the reference, and
/// compares.
fn check(seed: u64, containers: u64, ticks: u64, temporality: Temporality) {
    let mut rng = Rng::new(seed);
    let mut specs = specs(&mut rng, containers);
    let started = UNIX_EPOCH + Duration::from_secs(1_700_000_500);
    let attrs = Some("deployment.environment=prod,service.name=svc");
    let host_attrs = "deployment.environment=prod,env=x";
    let mut reference = Reference::new(
        "node-1",
        Some(host_attrs),
        "ce",
        attrs,
        temporality,
        started,
    );
    let mut wire = WireEncoder::new(host(), "ce".into(), attrs, temporality).started_at(started);
    let telemetry = sources(&mut rng);
    let mut buf = Vec::new();
    for tick in 1..=ticks {
        // Changes between ticks: new metadata, a new cgroup under the same id.
        for s in specs.iter_mut() {
            if rng.chance(6) && s.kind == Kind::Container {
                s.meta = meta(&mut rng, tick);
            }
            if rng.chance(6) {
                s.pod = pod_meta(&mut rng, tick);
            }
            if rng.chance(10) {
                s.created += Duration::from_secs(rng.below(100) + 1);
            }
        }
        let now = UNIX_EPOCH + Duration::from_secs(1_700_001_000 + tick * 10);
        // Some leave for a tick (departed, forgotten) and come back.
        let present: Vec<bool> = specs.iter().map(|_| !rng.chance(5)).collect();
        let cases: Vec<Case> = specs
            .iter()
            .zip(&present)
            .filter(|(_, p)| **p)
            .map(|(s, _)| {
                let previous = sample(&mut rng, tick - 1, s.interfaces, s.devices);
                let mut current = sample(&mut rng, tick, s.interfaces, s.devices);
                if rng.chance(8) {
                    current = CgroupSample::default();
                }
                // A cgroup "created" in the future: no uptime.
                let created = if rng.chance(10) {
                    now + Duration::from_secs(5)
                } else {
                    s.created
                };
                let mut c = Case::new(&s.id, s.kind, created, current);
                c.runtime = s.runtime;
                c.pod_uid = s.pod_uid.clone();
                c.previous = previous;
                c.meta = s.meta.clone();
                c.pod = s.pod.clone();
                c.disk = disk(&mut rng, s.kind, tick);
                // Some are final samples that know why the container ended (with a code or
                // without: NaN).
                if s.kind == Kind::Container && rng.chance(4) {
                    c.exit = Some(Exit {
                        code: (!rng.chance(5)).then(|| rng.below(256) as u8),
                        reason: [
                            ExitReason::Completed,
                            ExitReason::Error,
                            ExitReason::OomKilled,
                        ][rng.below(3) as usize],
                        restart_count: rng.chance(2).then(|| rng.below(5) as u32),
                        run: 1 + rng.below(3) as u32,
                    });
                }
                c
            })
            .collect();
        let states: Vec<ContainerState> = cases.iter().map(Case::state).collect();
        let described: Vec<Described<'_>> = cases
            .iter()
            .zip(&states)
            .map(|(c, s)| c.described(s))
            .collect();
        let process = self_telemetry(&mut rng, &telemetry, tick);

        let context = format!("seed {seed}, tick {tick}, {temporality:?}");
        let refs: Vec<&Case> = cases.iter().collect();
        let expected = reference.tick(now, &refs, &telemetry, &process);
        let points = wire.encode(&mut buf, now, &described, &telemetry, &process);
        let got = decode(&buf, &context);
        assert_same(&expected, &got, &context);
        assert_eq!(points, count_points(&got), "{context}: points counted");
        check_split(&wire, &buf, &got, points, &mut rng);
        let ids: HashSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            wire.cached(),
            ids.len(),
            "state kept only for encoded containers"
        );
    }
}

/// The request cut for a size limit (`--otlp-max-request-size`): the parts cover the buffer in
/// order, each decodes as a request of its own, none is over the limit unless it is a single
/// resource, and together they hold the whole request's resources in order and every point.
fn check_split(
    wire: &WireEncoder,
    buf: &[u8],
    req: &ExportMetricsServiceRequest,
    points: usize,
    rng: &mut Rng,
) {
    let whole = buf.len().max(1) as u64;
    let mut parts = Vec::new();
    for max in [1, 1 + rng.below(whole), whole / 3 + 1, whole, 4 << 20] {
        let max = max as usize;
        wire.split(max, &mut parts);
        let mut at = 0;
        let mut resources = Vec::new();
        let mut counted = 0;
        for (range, n) in &parts {
            assert_eq!(range.start, at, "parts follow each other");
            at = range.end;
            let part = ExportMetricsServiceRequest::decode(&buf[range.clone()])
                .expect("a part decodes as a request");
            assert!(!part.resource_metrics.is_empty(), "no empty part");
            assert!(
                range.len() <= max || part.resource_metrics.len() == 1,
                "a part of {} bytes over the limit of {max} with {} resources",
                range.len(),
                part.resource_metrics.len()
            );
            assert_eq!(*n, count_points(&part), "a part's points");
            counted += n;
            resources.extend(part.resource_metrics);
        }
        assert_eq!(at, buf.len(), "the parts cover the request");
        assert_eq!(counted, points);
        // Compared encoded: an exit code without a code is NaN, unequal to itself.
        let encoded = |r: &[ResourceMetrics]| -> Vec<Vec<u8>> {
            r.iter().map(Message::encode_to_vec).collect()
        };
        assert!(
            encoded(&resources) == encoded(&req.resource_metrics),
            "limit {max}: the parts' resources are not the request's"
        );
        if buf.len() <= max {
            assert_eq!(parts.len(), 1, "a request within the limit is not cut");
        } else {
            // As few parts as the limit allows: two neighbours never fit together.
            for w in parts.windows(2) {
                assert!(
                    w[1].0.end - w[0].0.start > max,
                    "limit {max}: parts could merge"
                );
            }
        }
    }
}

#[test]
fn as_expected_cumulative() {
    for seed in 0..20 {
        check(seed, 12, 6, Temporality::Cumulative);
    }
}

#[test]
fn as_expected_delta() {
    for seed in 0..20 {
        check(seed, 12, 6, Temporality::Delta);
    }
}

#[test]
fn as_expected_lowmemory() {
    for seed in 0..5 {
        check(seed, 12, 4, Temporality::LowMemory);
    }
}

#[test]
fn empty_tick_and_many_containers() {
    check(99, 0, 3, Temporality::Delta);
    check(100, 300, 3, Temporality::Delta);
    check(101, 300, 3, Temporality::Cumulative);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn as_expected_for_any_seed(
        seed in any::<u64>(),
        containers in 0u64..20,
        ticks in 1u64..6,
        delta in any::<bool>(),
    ) {
        let t = if delta { Temporality::Delta } else { Temporality::Cumulative };
        check(seed, containers, ticks, t);
    }
}

// -------------------------------------------------------------------------------------------
// The kernel's own files: samples parsed from the captures in `testdata/`, and the values the
// request must carry read from the same files here.
// -------------------------------------------------------------------------------------------

fn testdata(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

/// The sample the collector makes of these files (`dir/path` each, named by their file name).
fn parsed(dir: &str, v1: bool, paths: &[&str]) -> CgroupSample {
    let contents: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|p| {
            let name = Path::new(p)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let path = testdata(dir).join(p);
            (
                name,
                fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            )
        })
        .collect();
    let files: Vec<(&str, &[u8])> = contents
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let mut s = CgroupSample::default();
    let problems = parse_files(v1, &files, &mut s);
    assert!(problems.is_empty(), "{dir}: {problems:?}");
    s
}

/// A number file's value, or a flat-keyed file's value of `key`.
fn raw(dir: &str, path: &str, key: Option<&str>) -> u64 {
    let text = fs::read_to_string(testdata(dir).join(path)).unwrap();
    let field = match key {
        None => text.trim().to_string(),
        Some(k) => text
            .lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(' ').map(str::to_string))
            .unwrap_or_else(|| panic!("{path}: no {k}")),
    };
    field.trim().parse().unwrap()
}

fn int_value(req: &ExportMetricsServiceRequest, name: &str, attrs: &[&str]) -> i64 {
    match point(req, name, attrs) {
        Some(number_data_point::Value::AsInt(v)) => v,
        other => panic!("{name}{attrs:?}: {other:?}"),
    }
}

fn double_value(req: &ExportMetricsServiceRequest, name: &str, attrs: &[&str]) -> f64 {
    match point(req, name, attrs) {
        Some(number_data_point::Value::AsDouble(v)) => v,
        other => panic!("{name}{attrs:?}: {other:?}"),
    }
}

/// The value of the point of `name` (on the first resource) whose attribute values are
/// `attrs`.
fn point(
    req: &ExportMetricsServiceRequest,
    name: &str,
    attrs: &[&str],
) -> Option<number_data_point::Value> {
    let m = find(req, 0, name);
    let points = match &m.data {
        Some(metric::Data::Sum(s)) => &s.data_points,
        Some(metric::Data::Gauge(g)) => &g.data_points,
        _ => return None,
    };
    points
        .iter()
        .find(|p| {
            let values: Vec<String> = p
                .attributes
                .iter()
                .map(
                    |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(any_value::Value::StringValue(s)) => s.clone(),
                        other => format!("{other:?}"),
                    },
                )
                .collect();
            values == attrs
        })
        .and_then(|p| p.value)
}

/// One container of each capture, through the writer: as expected, and the figures the
/// files hold (read here, not by the exporter's parsers) are the request's.
#[test]
fn kernel_captures() {
    let v2 = "linux-6.1-cgroup-v2";
    let v2_files = [
        "cpu.stat",
        "cpu.max",
        "memory.current",
        "memory.max",
        "memory.stat",
        "memory.events",
        "memory.swap.current",
        "pids.current",
        "pids.max",
        "io.stat",
        "cpu.pressure",
        "memory.pressure",
        "io.pressure",
    ];
    let v1 = "linux-6.18-cgroup-v1";
    let v1_files = [
        "cpu/cpu.stat",
        "cpu/cpu.cfs_quota_us",
        "cpu/cpu.cfs_period_us",
        "cpuacct/cpuacct.usage",
        "cpuacct/cpuacct.stat",
        "memory/memory.usage_in_bytes",
        "memory/memory.limit_in_bytes",
        "memory/memory.stat",
        "memory/memory.oom_control",
        "pids/pids.current",
        "pids/pids.max",
        "blkio/blkio.throttle.io_service_bytes_recursive",
        "blkio/blkio.throttle.io_serviced_recursive",
    ];
    let created = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let now = created + Duration::from_secs(600);
    for (dir, is_v1, files) in [(v2, false, &v2_files[..]), (v1, true, &v1_files[..])] {
        for temporality in [Temporality::Cumulative, Temporality::Delta] {
            let current = parsed(dir, is_v1, files);
            // A second earlier: one CPU-second less.
            let mut previous = current.clone();
            previous.cpu.usage_ns = current.cpu.usage_ns.map(|u| u - 500_000_000);
            let mut c = Case::new(&"c".repeat(64), Kind::Container, created, current);
            c.previous = previous;
            c.interval = Duration::from_secs(1);
            let (mut reference, mut wire, mut buf) = pair(temporality, created);
            let t = Telemetry::default();
            let p = ProcessStats::default();
            let expected = reference.tick(now, &[&c], &t, &p);
            let state = c.state();
            wire.encode(&mut buf, now, &[c.described(&state)], &t, &p);
            let got = decode(&buf, dir);
            assert_same(&expected, &got, dir);
            // The files' own figures.
            let cpu = double_value(&got, "container.cpu.usage", &[]);
            assert!((cpu - 0.5).abs() < 1e-9, "{dir}: {cpu}");
            if is_v1 {
                let m = |f| raw(dir, &format!("memory/{f}"), None) as i64;
                assert_eq!(
                    int_value(&got, "container.memory.usage", &[]),
                    m("memory.usage_in_bytes")
                );
                assert_eq!(
                    int_value(&got, "container.memory.limit", &[]),
                    m("memory.limit_in_bytes")
                );
                let quota = raw(dir, "cpu/cpu.cfs_quota_us", None) as f64;
                let period = raw(dir, "cpu/cpu.cfs_period_us", None) as f64;
                assert_eq!(
                    double_value(&got, "container.cpu.limit", &[]),
                    quota / period
                );
                assert_eq!(
                    int_value(&got, "container.cpu.cfs.periods", &[]),
                    raw(dir, "cpu/cpu.stat", Some("nr_periods")) as i64
                );
                assert_eq!(
                    int_value(&got, "container.pid.count", &[]),
                    raw(dir, "pids/pids.current", None) as i64
                );
                let usage = raw(dir, "cpuacct/cpuacct.usage", None) as f64 / 1e9;
                let user = double_value(&got, "container.cpu.time", &["user"]);
                let system = double_value(&got, "container.cpu.time", &["system"]);
                assert!(
                    (user + system - usage).abs() < 1e-6,
                    "{dir}: {user} + {system}"
                );
                let rss = raw(dir, "memory/memory.stat", Some("total_rss")) as i64;
                assert_eq!(int_value(&got, "container.memory.rss", &[]), rss);
            } else {
                let f = |f| raw(dir, f, None) as i64;
                assert_eq!(
                    int_value(&got, "container.memory.usage", &[]),
                    f("memory.current")
                );
                assert_eq!(
                    int_value(&got, "container.memory.limit", &[]),
                    f("memory.max")
                );
                assert_eq!(int_value(&got, "container.pid.limit", &[]), f("pids.max"));
                assert_eq!(
                    int_value(&got, "container.memory.swap.usage", &[]),
                    f("memory.swap.current")
                );
                let stat = |k| raw(dir, "cpu.stat", Some(k)) as f64 / 1e6;
                assert_eq!(
                    double_value(&got, "container.cpu.time", &["user"]),
                    stat("user_usec")
                );
                assert_eq!(
                    double_value(&got, "container.cpu.time", &["system"]),
                    stat("system_usec")
                );
                let mem = |k| raw(dir, "memory.stat", Some(k)) as i64;
                assert_eq!(int_value(&got, "container.memory.rss", &[]), mem("anon"));
                assert_eq!(
                    int_value(&got, "container.paging.faults", &["major"]),
                    mem("pgmajfault")
                );
                assert_eq!(
                    int_value(&got, "container.paging.faults", &["minor"]),
                    mem("pgfault") - mem("pgmajfault")
                );
                assert_eq!(
                    int_value(&got, "container.memory.oom_kills", &[]),
                    raw(dir, "memory.events", Some("oom_kill")) as i64
                );
                // io.stat: `254:0 rbytes=… wbytes=… rios=…`.
                let io = fs::read_to_string(testdata(dir).join("io.stat")).unwrap();
                let line = io.lines().next().unwrap();
                let dev = line.split(' ').next().unwrap();
                let field = |k: &str| {
                    line.split(' ')
                        .find_map(|w| w.strip_prefix(k)?.strip_prefix('='))
                        .unwrap()
                        .parse::<i64>()
                        .unwrap()
                };
                assert_eq!(
                    int_value(&got, "container.disk.io", &["read", dev]),
                    field("rbytes")
                );
                assert_eq!(
                    int_value(&got, "container.disk.operations", &["write", dev]),
                    field("wios")
                );
            }
        }
    }
}

// -------------------------------------------------------------------------------------------
// Single requests, checked by hand on both.
// -------------------------------------------------------------------------------------------

/// A container that used `user_s` seconds of CPU (one less a tick before) and 1 MiB.
fn cpu_case(id: &str, kind: Kind, user_s: u64, created: SystemTime) -> Case {
    let sample = |u: u64| CgroupSample {
        cpu: CpuSample {
            usage_ns: Some(u * 1_000_000_000),
            user_ns: Some(u * 1_000_000_000),
            system_ns: Some(0),
            periods: Some(u),
            ..Default::default()
        },
        memory: MemorySample {
            usage: Some(1 << 20),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut c = Case::new(id, kind, created, sample(user_s));
    c.previous = sample(user_s.saturating_sub(1));
    c.interval = Duration::from_secs(1);
    c
}

fn find<'a>(req: &'a ExportMetricsServiceRequest, rm: usize, name: &str) -> &'a pm::Metric {
    find_in(&req.resource_metrics[rm], name).unwrap_or_else(|| panic!("{name} missing"))
}

fn find_in<'a>(r: &'a ResourceMetrics, name: &str) -> Option<&'a pm::Metric> {
    r.scope_metrics[0].metrics.iter().find(|m| m.name == name)
}

fn attr<'a>(r: &'a ResourceMetrics, key: &str) -> Option<&'a any_value::Value> {
    r.resource
        .as_ref()?
        .attributes
        .iter()
        .find(|k| k.key == key)
        .and_then(|k| k.value.as_ref()?.value.as_ref())
}

const PROD: &str = "env=prod,service.name=x";

/// The reference and the writer with the same settings, and the writer's buffer.
fn pair(t: Temporality, started: SystemTime) -> (Reference, WireEncoder, Vec<u8>) {
    pair_with(None, t, started)
}

fn pair_with(
    attrs: Option<&str>,
    t: Temporality,
    started: SystemTime,
) -> (Reference, WireEncoder, Vec<u8>) {
    let host = HostResource::new(Some("node-1".into()), Some(PROD));
    (
        Reference::new("node-1", Some(PROD), "ce", attrs, t, started),
        WireEncoder::new(host, "ce".into(), attrs, t).started_at(started),
        Vec::new(),
    )
}

/// Both fed the same ticks: [expected, writer] requests (the writer's decoded), compared.
struct Both {
    reference: Reference,
    wire: WireEncoder,
    buf: Vec<u8>,
}

impl Both {
    fn new(attrs: Option<&str>, t: Temporality, started: SystemTime) -> Both {
        let (reference, wire, buf) = pair_with(attrs, t, started);
        Both {
            reference,
            wire,
            buf,
        }
    }

    fn encode(
        &mut self,
        now: SystemTime,
        cases: &[&Case],
        t: &Telemetry,
        p: &ProcessStats,
    ) -> [(&'static str, ExportMetricsServiceRequest); 2] {
        let r = self.reference.tick(now, cases, t, p);
        let states: Vec<ContainerState> = cases.iter().map(|c| c.state()).collect();
        let d: Vec<Described<'_>> = cases
            .iter()
            .zip(&states)
            .map(|(c, s)| c.described(s))
            .collect();
        self.wire.encode(&mut self.buf, now, &d, t, p);
        let w = decode(&self.buf, "writer");
        assert_same(&r, &w, "a tick");
        [("expected", r), ("writer", w)]
    }

    fn departures(
        &mut self,
        now: SystemTime,
        cases: &[&Case],
    ) -> [(&'static str, ExportMetricsServiceRequest); 2] {
        let r = self.reference.departures(now, cases);
        let states: Vec<ContainerState> = cases.iter().map(|c| c.state()).collect();
        let d: Vec<Described<'_>> = cases
            .iter()
            .zip(&states)
            .map(|(c, s)| c.described(s))
            .collect();
        let points = self.wire.encode_departures(&mut self.buf, now, &d);
        let w = decode(&self.buf, "writer");
        assert_same(&r, &w, "departures");
        assert_eq!(points, count_points(&w));
        [("expected", r), ("writer", w)]
    }
}

fn sum(m: &pm::Metric) -> &pm::Sum {
    match &m.data {
        Some(metric::Data::Sum(s)) => s,
        other => panic!("{}: not a Sum: {other:?}", m.name),
    }
}

#[test]
fn resources_and_instruments() {
    let created = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut s = cpu_case("abc", Kind::Container, 3, created);
    let meta = Arc::new(ContainerMeta {
        name: Some("web".into()),
        image_name: Some("nginx".into()),
        image_tags: vec!["1.25".into(), "latest".into()],
        image_id: Some("sha256:1".into()),
        labels: vec![("team".into(), "a".into())],
        ..Default::default()
    });
    s.meta = Some(meta);
    let d = [&s];
    let mut both = Both::new(
        Some("env=prod,service.name=x"),
        Temporality::Cumulative,
        SystemTime::now(),
    );
    for (who, req) in both.encode(
        SystemTime::now(),
        &d,
        &Telemetry::default(),
        &ProcessStats::default(),
    ) {
        assert_eq!(req.resource_metrics.len(), 2, "{who}");
        let r = &req.resource_metrics[0];
        let s = |v: &str| Some(any_value::Value::StringValue(v.to_string()));
        assert_eq!(attr(r, "container.id").cloned(), s("abc"), "{who}");
        assert_eq!(attr(r, "container.name").cloned(), s("web"), "{who}");
        assert_eq!(attr(r, "container.runtime.name").cloned(), s("docker"));
        assert_eq!(attr(r, "container.label.team").cloned(), s("a"), "{who}");
        assert_eq!(attr(r, "host.name").cloned(), s("node-1"), "{who}");
        assert_eq!(attr(r, "env").cloned(), s("prod"), "{who}");
        assert!(attr(r, "service.name").is_none(), "{who}");
        match attr(r, "container.image.tags") {
            Some(any_value::Value::ArrayValue(a)) => {
                let tags: Vec<_> = a.values.iter().map(|v| v.value.clone()).collect();
                assert_eq!(tags, [s("1.25"), s("latest")], "{who}");
            }
            other => panic!("{who}: tags: {other:?}"),
        }
        let cpu = find(&req, 0, "container.cpu.time");
        assert_eq!(cpu.unit, "s", "{who}");
        let cpu = sum(cpu);
        assert!(cpu.is_monotonic, "{who}");
        assert_eq!(
            cpu.aggregation_temporality,
            AggregationTemporality::Cumulative as i32,
            "{who}"
        );
        let p = &cpu.data_points[0];
        assert_eq!(p.start_time_unix_nano, nanos(created), "{who}");
        assert_eq!(
            p.value,
            Some(number_data_point::Value::AsDouble(3.0)),
            "{who}"
        );
        assert_eq!(p.attributes[0].key, "cpu.mode", "{who}");
        let memory = sum(find(&req, 0, "container.memory.usage"));
        assert!(!memory.is_monotonic, "{who}");
        assert_eq!(
            memory.data_points[0].value,
            Some(number_data_point::Value::AsInt(1 << 20)),
            "{who}"
        );
        assert!(
            matches!(
                find(&req, 0, "container.cpu.usage").data,
                Some(metric::Data::Gauge(_))
            ),
            "{who}"
        );
        let me = &req.resource_metrics[1];
        assert_eq!(attr(me, "service.name").cloned(), s("ce"), "{who}");
        assert_eq!(
            attr(me, "service.version").cloned(),
            s(env!("CARGO_PKG_VERSION")),
            "{who}"
        );
        assert_eq!(attr(me, "env").cloned(), s("prod"), "{who}");
        assert_eq!(attr(me, "host.name").cloned(), s("node-1"), "{who}");
        let scope = req.resource_metrics[0].scope_metrics[0]
            .scope
            .as_ref()
            .unwrap();
        assert_eq!(scope.name, "container-exporter", "{who}");
        assert_eq!(scope.version, env!("CARGO_PKG_VERSION"), "{who}");
    }
}

#[test]
fn a_pod_has_its_own_resource_and_names() {
    let created = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let uid = "0f2b5a8c-3c5e-4f7e-9d1a-2b3c4d5e6f70";
    let mut s = cpu_case(uid, Kind::Pod, 3, created);
    let pod = Arc::new(PodMeta {
        uid: uid.into(),
        name: Some("web-1".into()),
        namespace: Some("shop".into()),
        labels: vec![("app".into(), "web".into())],
    });
    s.pod = Some(pod);
    let d = [&s];
    let mut both = Both::new(None, Temporality::Cumulative, SystemTime::now());
    for (who, req) in both.encode(
        SystemTime::now(),
        &d,
        &Telemetry::default(),
        &ProcessStats::default(),
    ) {
        let r = &req.resource_metrics[0];
        let s = |v: &str| Some(any_value::Value::StringValue(v.to_string()));
        assert_eq!(attr(r, "k8s.pod.uid").cloned(), s(uid), "{who}");
        assert_eq!(attr(r, "k8s.pod.name").cloned(), s("web-1"), "{who}");
        assert_eq!(attr(r, "k8s.namespace.name").cloned(), s("shop"), "{who}");
        assert_eq!(attr(r, "k8s.pod.label.app").cloned(), s("web"), "{who}");
        assert_eq!(attr(r, "host.name").cloned(), s("node-1"), "{who}");
        assert!(attr(r, "container.id").is_none(), "{who}");
        let cpu = sum(find(&req, 0, "k8s.pod.cpu.time"));
        assert_eq!(
            cpu.data_points[0].value,
            Some(number_data_point::Value::AsDouble(3.0)),
            "{who}"
        );
        assert!(find_in(r, "container.cpu.time").is_none(), "{who}");
    }
}

#[test]
fn self_metrics_follow_the_sources_and_the_table() {
    let started = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let now = started + Duration::from_secs(100);
    let t = Telemetry::default();
    set(&t.collections, 7);
    set(&t.read_errors_open, 2);
    let p = ProcessStats {
        cpu_seconds: 1.5,
        ..Default::default()
    };
    let mut both = Both::new(None, Temporality::Cumulative, started);
    for (who, req) in both.encode(now, &[], &t, &p) {
        assert_eq!(req.resource_metrics.len(), 1, "{who}");
        let me = &req.resource_metrics[0];
        let collections = sum(find(&req, 0, "container_exporter.collections"));
        assert!(collections.is_monotonic, "{who}");
        let c = &collections.data_points[0];
        assert_eq!(c.value, Some(number_data_point::Value::AsInt(7)), "{who}");
        assert_eq!(c.start_time_unix_nano, nanos(started), "{who}");
        assert_eq!(c.time_unix_nano, nanos(now), "{who}");
        assert!(c.attributes.is_empty(), "{who}");
        let errors = sum(find(&req, 0, "container_exporter.read_errors"));
        let kinds: Vec<(String, Option<number_data_point::Value>)> = errors
            .data_points
            .iter()
            .map(|p| {
                assert_eq!(p.attributes.len(), 1, "{who}");
                assert_eq!(p.attributes[0].key, "kind", "{who}");
                let v = match p.attributes[0]
                    .value
                    .as_ref()
                    .and_then(|v| v.value.as_ref())
                {
                    Some(any_value::Value::StringValue(v)) => v.clone(),
                    other => panic!("{who}: {other:?}"),
                };
                (v, p.value)
            })
            .collect();
        let int = |v| Some(number_data_point::Value::AsInt(v));
        assert_eq!(
            kinds,
            [
                ("io".to_string(), int(0)),
                ("open".to_string(), int(2)),
                ("malformed".to_string(), int(0)),
                ("truncated".to_string(), int(0)),
            ],
            "{who}"
        );
        let cpu = sum(find(&req, 0, "process.cpu.time"));
        assert_eq!(
            cpu.data_points[0].value,
            Some(number_data_point::Value::AsDouble(1.5)),
            "{who}"
        );
        match &find(&req, 0, "process.start_time").data {
            Some(metric::Data::Gauge(g)) => {
                assert_eq!(g.data_points[0].start_time_unix_nano, 0, "{who}")
            }
            other => panic!("{who}: {other:?}"),
        }
        // Sources that are off, and OTLP that is off, write nothing.
        for name in [
            "container_exporter.metadata.connected",
            "container_exporter.metadata.lookups",
            "container_exporter.otlp.exports",
        ] {
            assert!(find_in(me, name).is_none(), "{who}: {name}");
        }
    }
    let mut m = MetadataStats::default();
    let docker = Source::Docker.def();
    m.add(docker.name, docker.figures);
    let _ = t.metadata.set(m);
    set(&t.otlp_queue_capacity, 10);
    for (who, req) in both.encode(now, &[], &t, &p) {
        let me = &req.resource_metrics[0];
        assert!(
            find_in(me, "container_exporter.metadata.connected").is_some(),
            "{who}"
        );
        assert_eq!(
            sum(find(&req, 0, "container_exporter.otlp.exports"))
                .data_points
                .len(),
            2,
            "{who}"
        );
        // Docker makes no lookups: a figure no source that is on reports is not written.
        assert!(
            find_in(me, "container_exporter.metadata.lookups").is_none(),
            "{who}"
        );
    }
}

#[test]
fn delta_keeps_the_previous_value_and_forgets_gone_containers() {
    let created = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let started = created + Duration::from_secs(10);
    let mut both = Both::new(None, Temporality::Delta, started);
    let t = Telemetry::default();
    let p = ProcessStats::default();
    let value = |who: &str, req: &ExportMetricsServiceRequest, rm: usize, name: &str| {
        let s = sum(find(req, rm, name));
        assert_eq!(
            s.aggregation_temporality,
            AggregationTemporality::Delta as i32,
            "{who}"
        );
        (
            s.data_points[0].value,
            s.data_points[0].start_time_unix_nano,
        )
    };
    let a = cpu_case("a", Kind::Container, 3, created);
    let t1 = SystemTime::now();
    set(&t.collections, 5);
    let d = [&a];
    for (who, r1) in both.encode(t1, &d, &t, &p) {
        assert_eq!(
            value(who, &r1, 0, "container.cpu.time"),
            (
                Some(number_data_point::Value::AsDouble(3.0)),
                nanos(created)
            ),
            "{who}"
        );
        // The exporter's own counters start at its start.
        assert_eq!(
            value(who, &r1, 1, "container_exporter.collections"),
            (Some(number_data_point::Value::AsInt(5)), nanos(started)),
            "{who}"
        );
    }
    let a = cpu_case("a", Kind::Container, 5, created);
    set(&t.collections, 6);
    let d = [&a];
    for (who, r2) in both.encode(t1 + Duration::from_secs(1), &d, &t, &p) {
        assert_eq!(
            value(who, &r2, 0, "container.cpu.time"),
            (Some(number_data_point::Value::AsDouble(2.0)), nanos(t1)),
            "{who}"
        );
        assert_eq!(
            value(who, &r2, 1, "container_exporter.collections"),
            (Some(number_data_point::Value::AsInt(1)), nanos(t1)),
            "{who}"
        );
        // UpDownCounters stay cumulative.
        assert_eq!(
            sum(find(&r2, 0, "container.memory.usage")).aggregation_temporality,
            AggregationTemporality::Cumulative as i32,
            "{who}"
        );
    }
    assert_eq!(both.wire.cached(), 1);
    both.encode(t1 + Duration::from_secs(2), &[], &t, &p);
    assert_eq!(both.wire.cached(), 0);
    // Back after a tick away: all of it again, since the cgroup's creation.
    for (who, r) in both.encode(t1 + Duration::from_secs(3), &d, &t, &p) {
        assert_eq!(
            value(who, &r, 0, "container.cpu.time"),
            (
                Some(number_data_point::Value::AsDouble(5.0)),
                nanos(created)
            ),
            "{who}"
        );
    }
}

#[test]
fn lowmemory_is_cumulative_for_observed_counters() {
    let mut both = Both::new(None, Temporality::LowMemory, SystemTime::now());
    let a = cpu_case("a", Kind::Container, 3, UNIX_EPOCH);
    let d = [&a];
    for (who, r) in both.encode(
        SystemTime::now(),
        &d,
        &Telemetry::default(),
        &ProcessStats::default(),
    ) {
        for (rm, name) in [
            (0, "container.cpu.time"),
            (1, "container_exporter.collections"),
        ] {
            assert_eq!(
                sum(find(&r, rm, name)).aggregation_temporality,
                AggregationTemporality::Cumulative as i32,
                "{who}: {name}"
            );
        }
    }
}

/// Why containers ended, on both: a code, no code (NaN, with only the
/// kernel's OOM verdict), a restart count or none; an earlier run of a container id showing
/// only its exit next to the run shown (its series state left alone); and a request of
/// departures alone between ticks (no self-metrics, nothing forgotten).
#[test]
fn exits_of_every_kind() {
    for temporality in [Temporality::Cumulative, Temporality::Delta] {
        let created = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let started = created + Duration::from_secs(10);
        let mut both = Both::new(None, temporality, started);
        let t = Telemetry::default();
        let p = ProcessStats::default();
        let with_exit = |mut c: Case, code: Option<u8>, reason, restart| {
            c.exit = Some(Exit {
                code,
                reason,
                restart_count: restart,
                run: 1,
            });
            c
        };
        let live = cpu_case("a", Kind::Container, 3, created + Duration::from_secs(60));
        let mut earlier = with_exit(
            cpu_case("a", Kind::Container, 9, created),
            Some(4),
            ExitReason::Error,
            Some(0),
        );
        earlier.exit_only = true;
        let oom = with_exit(
            cpu_case("b", Kind::Container, 2, created),
            None,
            ExitReason::OomKilled,
            None,
        );
        let done = with_exit(
            cpu_case("c", Kind::Container, 1, created),
            Some(0),
            ExitReason::Completed,
            Some(2),
        );
        let t1 = created + Duration::from_secs(100);
        for (who, r) in both.encode(t1, &[&live, &earlier, &oom], &t, &p) {
            // The earlier run: its exit only, with its restart count; the live run's series
            // untouched by it.
            let rm = &r.resource_metrics[1];
            assert_eq!(rm.scope_metrics[0].metrics.len(), 1, "{who}");
            let exit = &rm.scope_metrics[0].metrics[0];
            assert_eq!(exit.name, "container.exit.code", "{who}");
            let Some(metric::Data::Gauge(g)) = &exit.data else {
                panic!("{who}: not a gauge: {exit:?}")
            };
            assert_eq!(
                g.data_points[0].value,
                Some(number_data_point::Value::AsDouble(4.0)),
                "{who}"
            );
            let mut keys: Vec<(&str, String)> = g.data_points[0]
                .attributes
                .iter()
                .map(|kv| {
                    let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(any_value::Value::StringValue(s)) => s.clone(),
                        other => panic!("{who}: {other:?}"),
                    };
                    (kv.key.as_str(), v)
                })
                .collect();
            keys.sort();
            assert_eq!(
                keys,
                [
                    ("container.exit.reason", "Error".to_string()),
                    ("container.restart_count", "0".to_string()),
                    ("container.run", "1".to_string())
                ],
                "{who}"
            );
            // No code: NaN, and no restart count attribute (the run only).
            let oom_exit = find_in(&r.resource_metrics[2], "container.exit.code").unwrap();
            let Some(metric::Data::Gauge(g)) = &oom_exit.data else {
                panic!("{who}")
            };
            match g.data_points[0].value {
                Some(number_data_point::Value::AsDouble(v)) => assert!(v.is_nan(), "{who}"),
                ref other => panic!("{who}: {other:?}"),
            }
            assert_eq!(g.data_points[0].attributes.len(), 2, "{who}");
        }

        // Between ticks: the departure alone.
        let t2 = t1 + Duration::from_secs(1);
        for (who, r) in both.departures(t2, &[&done]) {
            assert_eq!(
                r.resource_metrics.len(),
                1,
                "{who}: no resource of the exporter's own"
            );
            assert!(
                find_in(&r.resource_metrics[0], "container.exit.code").is_some(),
                "{who}"
            );
        }
        // Nothing of the containers not in it was forgotten: the next tick has the live
        // run's deltas since the first tick.
        let live2 = cpu_case("a", Kind::Container, 5, created + Duration::from_secs(60));
        let t3 = t1 + Duration::from_secs(10);
        for (who, r) in both.encode(t3, &[&live2, &done], &t, &p) {
            if temporality == Temporality::Delta {
                let cpu = sum(find(&r, 0, "container.cpu.time"));
                let user = cpu
                    .data_points
                    .iter()
                    .find(|p| format!("{:?}", p.attributes).contains("user"))
                    .unwrap();
                assert_eq!(
                    user.value,
                    Some(number_data_point::Value::AsDouble(2.0)),
                    "{who}"
                );
                assert_eq!(user.start_time_unix_nano, nanos(t1), "{who}");
            }
        }
        assert_eq!(both.wire.cached(), 2);
    }
}
