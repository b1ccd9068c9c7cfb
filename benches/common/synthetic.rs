//! Synthetic containers for the output benchmarks (render, otlp): 1,000 containers with the
//! full metric set, 2 network interfaces and 2 block devices each, and Docker metadata.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use container_exporter::cgroup::sample::{
    CgroupSample, CpuSample, IfName, IoDevice, Limit, MemorySample, NetIface, PidsSample, Psi,
    SpecSample,
};
use container_exporter::collect::ContainerState;
use container_exporter::discovery::{Found, Kind, Runtime};
use container_exporter::metadata::ContainerMeta;

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
            shares: Some(1024),
            bursts: Some(0),
            burst_ns: Some(0),
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
            oom_group_kills: Some(0),
            pgfault: Some(123_456 * scale),
            pgmajfault: Some(12 * scale),
            pgfault_own: Some(123_456 * scale),
            pgmajfault_own: Some(12 * scale),
            mapped_file: Some(8 << 20),
            active_file: Some(36 << 20),
            failcnt: Some(0),
            events_high: None,
            events_max: None,
        },
        // A v1 host's container with a memory and a pids limit.
        spec: SpecSample {
            memory_limit: Some(Limit::Value(1 << 30)),
            memory_reservation: Some(Limit::Unlimited),
            memory_swap_limit: Some(Limit::Unlimited),
            pids_limit: Some(Limit::Value(4096)),
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
        ..CgroupSample::default()
    }
}

pub fn containers() -> Vec<(ContainerState, Arc<ContainerMeta>)> {
    (0..CONTAINERS as u64)
        .map(|i| {
            let id = format!("{i:064x}");
            let found = Found {
                id: id.clone(),
                kind: Kind::Container,
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
