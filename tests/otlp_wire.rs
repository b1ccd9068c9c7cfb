//! The direct protobuf writer (`WireEncoder`, what the daemon sends) against the reference
//! (`Encoder::encode`, the `opentelemetry-proto` message tree): for synthetic containers —
//! with and without metadata, missing values, 0, 2 or many interfaces and devices, counters
//! that go back (resets), containers that leave and come back, metadata and cgroup changes —
//! over several ticks and for every temporality, both requests decode to equal messages (and
//! the bytes are even the same: fields are written in prost's order).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use container_exporter::cgroup::sample::{
    CgroupSample, CpuSample, IfName, IoDevice, MemorySample, NetIface, PidsSample, Psi,
};
use container_exporter::collect::ContainerState;
use container_exporter::discovery::{Found, Kind, Runtime};
use container_exporter::export::otlp::encode::{self, Encoder, Temporality};
use container_exporter::export::otlp::wire::WireEncoder;
use container_exporter::export::prom::Described;
use container_exporter::metadata::{ContainerMeta, PodMeta};
use container_exporter::resource::HostResource;
use container_exporter::telemetry::{ProcessStats, Telemetry, set};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
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
            pgfault: rng.maybe(tick),
            pgmajfault: rng.maybe(tick),
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
                name: IfName::new(match n {
                    0 => b"lo".as_slice(),
                    1 => b"eth0",
                    2 => b"",
                    3 => b"a-very-long-nam",
                    _ => b"veth",
                }),
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
        ..ContainerMeta::default()
    }))
}

/// A state with its container and pod metadata.
type Described3 = (
    ContainerState,
    Option<Arc<ContainerMeta>>,
    Option<Arc<PodMeta>>,
);

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

/// Runs `ticks` ticks of the same containers through both encoders and compares.
fn check(seed: u64, containers: u64, ticks: u64, temporality: Temporality) {
    let mut rng = Rng::new(seed);
    let mut specs = specs(&mut rng, containers);
    let started = UNIX_EPOCH + Duration::from_secs(1_700_000_500);
    let attrs = Some("deployment.environment=prod,service.name=svc");
    let mut reference = Encoder::new(host(), "ce".into(), attrs, temporality).started_at(started);
    let mut wire = WireEncoder::new(host(), "ce".into(), attrs, temporality).started_at(started);
    let telemetry = Telemetry::default();
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
        let states: Vec<Described3> = specs
            .iter()
            .zip(&present)
            .filter(|(_, p)| **p)
            .map(|(s, _)| {
                let found = Found {
                    id: s.id.clone(),
                    kind: s.kind,
                    runtime: s.runtime,
                    pod_uid: s.pod_uid.clone(),
                    rel: format!("x/{}", s.id).into(),
                };
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
                let state = ContainerState::with_samples(
                    found,
                    created,
                    previous,
                    current,
                    Duration::from_secs(10),
                );
                (state, s.meta.clone(), s.pod.clone())
            })
            .collect();
        let described: Vec<Described<'_>> = states
            .iter()
            .map(|(state, meta, pod)| Described {
                state,
                meta: meta.clone(),
                pod: pod.clone(),
            })
            .collect();
        set(&telemetry.collections, tick);
        set(&telemetry.otlp_retries, rng.counter(tick));
        set(&telemetry.read_errors_io, rng.counter(tick));
        set(&telemetry.last_collection_ns, rng.below(1_000_000_000));
        let process = ProcessStats {
            cpu_seconds: rng.below(1000) as f64 / 7.0,
            resident_bytes: rng.counter(tick),
            ..Default::default()
        };

        let req = reference.encode(now, &described, &telemetry, &process);
        let points = wire.encode(&mut buf, now, &described, &telemetry, &process);
        let got = ExportMetricsServiceRequest::decode(&buf[..]).expect("wire output decodes");
        assert_eq!(
            got, req,
            "seed {seed}, tick {tick}, {temporality:?}: decoded requests differ"
        );
        assert_eq!(points, encode::count_points(&req));
        assert_eq!(
            buf,
            encode::to_bytes(&req, 0),
            "seed {seed}, tick {tick}: bytes differ"
        );
        let ids: HashSet<&str> = states.iter().map(|(s, _, _)| s.id.as_str()).collect();
        assert_eq!(
            wire.cached(),
            ids.len(),
            "state kept only for encoded containers"
        );
    }
}

#[test]
fn equal_to_the_reference_cumulative() {
    for seed in 0..20 {
        check(seed, 12, 6, Temporality::Cumulative);
    }
}

#[test]
fn equal_to_the_reference_delta() {
    for seed in 0..20 {
        check(seed, 12, 6, Temporality::Delta);
    }
}

#[test]
fn equal_to_the_reference_lowmemory() {
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
    fn equal_to_the_reference_for_any_seed(
        seed in any::<u64>(),
        containers in 0u64..20,
        ticks in 1u64..6,
        delta in any::<bool>(),
    ) {
        let t = if delta { Temporality::Delta } else { Temporality::Cumulative };
        check(seed, containers, ticks, t);
    }
}
