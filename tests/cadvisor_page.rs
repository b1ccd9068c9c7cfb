//! The cAdvisor page as rendered from given samples (issue 17): what each row of the table
//! makes of them, checked line by line, and the whole page through `promtool check metrics`.
//! The samples are the reader's types filled as a kernel fills them; the page is the real
//! renderer's. (`tests/cadvisor_dashboards.rs` checks the same page from real containers in a
//! real Prometheus.)
//!
//! Needs `promtool` (`.ci/prometheus-up.sh`) for the last check.

mod common;

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::page::{Page, Sample};
use container_exporter::cgroup::CgroupSample;
use container_exporter::cgroup::sample::{
    CpuSample, IfName, IoDevice, Limit, MemorySample, NetIface, PidsSample, SpecSample,
};
use container_exporter::collect::{ContainerState, Described};
use container_exporter::config::Naming;
use container_exporter::discovery::{Found, Kind, Runtime};
use container_exporter::export::http::{Page as ServedPage, PageGzip};
use container_exporter::export::prom::PromRenderer;
use container_exporter::host::block::BlockNames;
use container_exporter::host::machine::Machine;
use container_exporter::metadata::{ContainerMeta, PodMeta};
use container_exporter::telemetry::{ProcessStats, Telemetry};

const ID: &str = "4f1c0e7a9b2d3c4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6";
const POD_UID: &str = "6f1c2a34-8b5d-4e7f-9a0b-1c2d3e4f5a6b";
const SANDBOX: &str = "9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9";

fn iface(name: &str, rx: u64) -> NetIface {
    NetIface {
        name: IfName::new(name.as_bytes()),
        rx_bytes: rx,
        rx_packets: 1,
        rx_errors: 0,
        rx_dropped: 0,
        tx_bytes: rx * 2,
        tx_packets: 2,
        tx_errors: 0,
        tx_dropped: 0,
    }
}

/// A container's sample as a v1 host gives it: limits set or not as asked.
fn sample(quota: bool, limits: bool) -> CgroupSample {
    CgroupSample {
        cpu: CpuSample {
            usage_ns: Some(3_000_000_000),
            user_ns: Some(2_000_000_000),
            system_ns: Some(1_000_000_000),
            periods: Some(100),
            throttled_periods: Some(7),
            throttled_ns: Some(5_000_000),
            bursts: Some(0),
            burst_ns: Some(0),
            quota_us: quota.then_some(50_000),
            period_us: Some(100_000),
            shares: Some(512),
        },
        memory: MemorySample {
            usage: Some(64 << 20),
            limit: limits.then_some(128 << 20),
            anon: Some(40 << 20),
            file: Some(24 << 20),
            active_file: Some(4 << 20),
            inactive_file: Some(20 << 20),
            mapped_file: Some(1 << 20),
            pgfault: Some(1000),
            pgmajfault: Some(3),
            pgfault_own: Some(900),
            pgmajfault_own: Some(2),
            failcnt: Some(5),
            ..MemorySample::default()
        },
        pids: PidsSample {
            current: Some(4),
            limit: limits.then_some(100),
        },
        spec: SpecSample {
            memory_limit: Some(if limits {
                Limit::Value(128 << 20)
            } else {
                Limit::Unlimited
            }),
            memory_reservation: Some(Limit::Unlimited),
            memory_swap_limit: Some(Limit::Value(256 << 20)),
            pids_limit: Some(if limits {
                Limit::Value(100)
            } else {
                Limit::Unlimited
            }),
        },
        io: vec![
            IoDevice {
                major: 254,
                minor: 0,
                read_bytes: Some(4096),
                write_bytes: Some(8192),
                read_ops: Some(1),
                write_ops: Some(2),
            },
            IoDevice {
                major: 8,
                minor: 16,
                read_bytes: Some(1),
                write_bytes: Some(2),
                read_ops: Some(3),
                write_ops: Some(4),
            },
        ],
        net: vec![
            iface("lo", 1_000_000),
            iface("eth0", 1000),
            iface("veth12ab", 5),
            iface("docker0", 6),
            iface("nerdctl0", 7),
            iface("lowpan0", 8),
        ],
        populated: Some(true),
        ..CgroupSample::default()
    }
}

fn state(
    id: &str,
    kind: Kind,
    rel: &str,
    pod_uid: Option<&str>,
    s: CgroupSample,
) -> ContainerState {
    ContainerState::with_samples(
        Found {
            id: id.into(),
            kind,
            runtime: Runtime::Containerd,
            pod_uid: pod_uid.map(str::to_owned),
            rel: rel.into(),
        },
        SystemTime::now() - Duration::from_secs(600),
        s.clone(),
        s,
        Duration::from_secs(1),
    )
}

/// `/sys/dev/block` of the test's: `254:0` is `vda`, `8:16` has no name.
fn block_root() -> PathBuf {
    let dir = std::env::temp_dir().join(common::unique_name());
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("254:0")).unwrap();
    fs::write(
        dir.join("254:0/uevent"),
        "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n",
    )
    .unwrap();
    fs::create_dir_all(dir.join("8:16")).unwrap();
    fs::write(dir.join("8:16/uevent"), "MAJOR=8\nMINOR=16\nDEVTYPE=disk\n").unwrap();
    dir
}

fn render(naming: Naming, described: Vec<Described<'_>>, sandboxes: Vec<Described<'_>>) -> Page {
    let root = block_root();
    let mut r = PromRenderer::new(Some("node-1".into()), naming)
        .with_block_names(BlockNames::new(root.clone()))
        .with_machine(Machine {
            cpu_cores: Some(8),
            memory_bytes: Some(16 << 30),
        });
    r.set_sandboxes(sandboxes);
    let now = SystemTime::now();
    let mut page = Vec::new();
    let (telemetry, process) = (Telemetry::default(), ProcessStats::default());
    r.render(&mut page, now, described.clone(), &telemetry, &process);
    // The same page as the daemon makes a large one: handed out family by family, each piece
    // compressed as it comes and taken out of the buffer, kept only compressed.
    let mut gz = PageGzip::new(0);
    let mut piece = Vec::new();
    r.render_with(
        &mut piece,
        &mut |p: &mut Vec<u8>, _last| {
            gz.write(p);
            p.clear();
        },
        now,
        described,
        &telemetry,
        &process,
    );
    let kept = ServedPage::new(gz, 1);
    assert_eq!(kept.plain_len(), page.len());
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&kept.gzipped()[..]),
        &mut plain,
    )
    .unwrap();
    // The same page, line for line. Only `container_last_seen` may move, by one second at
    // most: it is the sample's time (`now` less the sample's age), and a second can turn
    // between the two renders.
    let (plain_lines, page_lines) = (plain.split(|&b| b == b'\n'), page.split(|&b| b == b'\n'));
    assert_eq!(plain_lines.clone().count(), page_lines.clone().count());
    for (a, b) in plain_lines.zip(page_lines) {
        let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
        if a == b {
            continue;
        }
        let seen = |l: &str| {
            let (series, value) = l.strip_prefix("container_last_seen{")?.rsplit_once(' ')?;
            Some((series.to_string(), value.parse::<i64>().ok()?))
        };
        let same_moment = match (seen(&a), seen(&b)) {
            (Some((sa, va)), Some((sb, vb))) => sa == sb && (va - vb).abs() <= 1,
            _ => false,
        };
        assert!(
            same_moment,
            "the page compressed in pieces differs from the page rendered whole:\n{a}\n{b}"
        );
    }
    let _ = fs::remove_dir_all(root);
    Page::new(String::from_utf8(page).unwrap())
}

fn container_meta(labels: &[(&str, &str)]) -> Arc<ContainerMeta> {
    Arc::new(ContainerMeta {
        name: Some("web".into()),
        image_name: Some("docker.io/library/nginx".into()),
        image_tags: vec!["1.27".into()],
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        k8s_pod_name: Some("web-0".into()),
        k8s_namespace_name: Some("shop".into()),
        k8s_container_name: Some("app".into()),
        runtime_name: Some("containerd".into()),
        ..ContainerMeta::default()
    })
}

fn values(page: &Page, name: &str) -> Vec<f64> {
    page.series(name, &[]).iter().map(|s| s.value).collect()
}

#[test]
fn interfaces_cadvisor_leaves_out_are_not_on_the_page() {
    let c = state(ID, Kind::Container, "docker/x", None, sample(false, false));
    let d = || Described {
        state: &c,
        meta: None,
        pod: None,
    };
    let page = render(Naming::Cadvisor, vec![d()], vec![]);
    let interfaces: Vec<&str> = page
        .series("container_network_receive_bytes_total", &[])
        .iter()
        .map(|s| s.labels["interface"].as_str())
        .collect();
    assert_eq!(interfaces, ["eth0"], "{}", page.text);
    assert_eq!(
        values(&page, "container_network_transmit_bytes_total"),
        [2000.0]
    );
    // The OpenTelemetry page keeps every interface.
    let otel = render(Naming::Otel, vec![d()], vec![]);
    assert_eq!(
        otel.series(
            "container_network_io_bytes_total",
            &[("network_io_direction", "receive")]
        )
        .len(),
        6
    );
    assert!(otel.has_lo_network(ID));
}

#[test]
fn devices_are_named_as_the_kernel_names_them() {
    let c = state(ID, Kind::Container, "docker/x", None, sample(false, false));
    let page = render(
        Naming::Cadvisor,
        vec![Described {
            state: &c,
            meta: None,
            pod: None,
        }],
        vec![],
    );
    let writes = |device: &str| page.get("container_fs_writes_bytes_total", &[("device", device)]);
    assert_eq!(writes("/dev/vda"), Some(8192.0), "{}", page.text);
    assert_eq!(
        writes("8:16"),
        Some(2.0),
        "a device without a name keeps MAJ:MIN"
    );
    assert_eq!(
        page.get(
            "container_blkio_device_usage_total",
            &[
                ("device", "/dev/vda"),
                ("major", "254"),
                ("minor", "0"),
                ("operation", "Read")
            ]
        ),
        Some(4096.0)
    );
    assert_eq!(
        page.get(
            "container_blkio_device_usage_total",
            &[("device", "8:16"), ("operation", "Write")]
        ),
        Some(2.0)
    );
}

#[test]
fn limits_are_zero_when_unlimited_and_throttling_only_under_a_quota() {
    let free = state(
        ID,
        Kind::Container,
        "docker/free",
        None,
        sample(false, false),
    );
    let capped = state(
        SANDBOX,
        Kind::Container,
        "docker/capped",
        None,
        sample(true, true),
    );
    let page = render(
        Naming::Cadvisor,
        vec![
            Described {
                state: &free,
                meta: None,
                pod: None,
            },
            Described {
                state: &capped,
                meta: None,
                pod: None,
            },
        ],
        vec![],
    );
    let of = |id: &str, name: &str| page.get(name, &[("id", id)]);
    let (f, c) = ("/docker/free", "/docker/capped");
    assert_eq!(of(f, "container_spec_memory_limit_bytes"), Some(0.0));
    assert_eq!(
        of(c, "container_spec_memory_limit_bytes"),
        Some(128.0 * 1048576.0)
    );
    assert_eq!(of(f, "container_threads_max"), Some(0.0));
    assert_eq!(of(c, "container_threads_max"), Some(100.0));
    assert_eq!(
        of(f, "container_spec_memory_reservation_limit_bytes"),
        Some(0.0)
    );
    assert_eq!(
        of(f, "container_spec_memory_swap_limit_bytes"),
        Some(256.0 * 1048576.0)
    );
    assert_eq!(of(f, "container_spec_cpu_shares"), Some(512.0));
    // The period always; the quota and the CFS counters only under a quota.
    assert_eq!(of(f, "container_spec_cpu_period"), Some(100_000.0));
    assert_eq!(of(c, "container_spec_cpu_quota"), Some(50_000.0));
    assert_eq!(of(f, "container_spec_cpu_quota"), None);
    for name in [
        "container_cpu_cfs_periods_total",
        "container_cpu_cfs_throttled_periods_total",
        "container_cpu_cfs_throttled_seconds_total",
        "container_cpu_cfs_burst_periods_total",
    ] {
        assert_eq!(of(f, name), None, "{name} without a quota");
        assert!(of(c, name).is_some(), "{name} under a quota");
    }
    assert_eq!(
        of(c, "container_cpu_cfs_throttled_periods_total"),
        Some(7.0)
    );
    // The OpenTelemetry page leaves "no limit" out.
    let otel = render(
        Naming::Otel,
        vec![Described {
            state: &free,
            meta: None,
            pod: None,
        }],
        vec![],
    );
    assert!(otel.series("container_memory_limit_bytes", &[]).is_empty());
}

#[test]
fn one_family_in_four_rows_and_the_new_families() {
    let c = state(ID, Kind::Container, "docker/x", None, sample(false, false));
    let page = render(
        Naming::Cadvisor,
        vec![Described {
            state: &c,
            meta: None,
            pod: None,
        }],
        vec![],
    );
    assert_eq!(
        page.text
            .matches("# TYPE container_memory_failures_total counter")
            .count(),
        1
    );
    let failures = |t: &str, scope: &str| {
        page.get(
            "container_memory_failures_total",
            &[("failure_type", t), ("scope", scope)],
        )
    };
    assert_eq!(failures("pgfault", "container"), Some(900.0));
    assert_eq!(failures("pgmajfault", "container"), Some(2.0));
    assert_eq!(failures("pgfault", "hierarchy"), Some(1000.0));
    assert_eq!(failures("pgmajfault", "hierarchy"), Some(3.0));
    for (name, want) in [
        ("container_memory_mapped_file", 1048576.0),
        ("container_memory_total_active_file_bytes", 4194304.0),
        ("container_memory_total_inactive_file_bytes", 20971520.0),
        ("container_memory_failcnt", 5.0),
    ] {
        assert_eq!(values(&page, name), [want], "{name}");
    }
    // No v2 memory.events on this v1 sample: no series, not zeros.
    assert!(values(&page, "container_memory_events_max_total").is_empty());
    // Seen at the sample's time, in whole seconds.
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let seen = values(&page, "container_last_seen")[0];
    assert!(seen.fract() == 0.0 && (now - seen).abs() < 5.0, "{seen}");
    assert_eq!(values(&page, "machine_cpu_cores"), [8.0]);
    assert_eq!(values(&page, "machine_memory_bytes"), [17179869184.0]);
}

#[test]
fn allowed_container_labels_are_on_every_series() {
    let c = state(ID, Kind::Container, "docker/x", None, sample(false, false));
    let meta = container_meta(&[("org.label-schema.group", "monitoring")]);
    let page = render(
        Naming::Cadvisor,
        vec![Described {
            state: &c,
            meta: Some(meta.clone()),
            pod: None,
        }],
        vec![],
    );
    let container_series: Vec<&Sample> = page
        .samples
        .iter()
        .filter(|s| s.name.starts_with("container_") && !s.name.starts_with("container_exporter_"))
        .collect();
    assert!(container_series.len() > 40);
    for s in &container_series {
        assert_eq!(
            s.labels
                .get("container_label_org_label_schema_group")
                .map(String::as_str),
            Some("monitoring"),
            "{s:?}"
        );
        assert_eq!(
            s.labels.get("image").map(String::as_str),
            Some("docker.io/library/nginx:1.27")
        );
        assert_eq!(s.labels.get("name").map(String::as_str), Some(ID));
    }
    // Once on container_info (a label twice would not parse).
    let info = page
        .text
        .lines()
        .find(|l| l.starts_with("container_info{"))
        .unwrap();
    assert_eq!(
        info.matches("container_label_org_label_schema_group=")
            .count(),
        1
    );
    // Without labels allowed, none.
    let page = render(
        Naming::Cadvisor,
        vec![Described {
            state: &c,
            meta: Some(container_meta(&[])),
            pod: None,
        }],
        vec![],
    );
    assert!(!page.text.contains("container_label_"));
}

#[test]
fn a_pods_network_is_on_its_sandbox() {
    let pod_rel = format!("kubepods/burstable/pod{POD_UID}");
    let pod = state(POD_UID, Kind::Pod, &pod_rel, None, sample(false, false));
    let sandbox = state(
        SANDBOX,
        Kind::Container,
        &format!("{pod_rel}/{SANDBOX}"),
        Some(POD_UID),
        sample(false, false),
    );
    let pod_meta = Arc::new(PodMeta {
        uid: POD_UID.into(),
        name: Some("web-0".into()),
        namespace: Some("shop".into()),
        labels: Vec::new(),
    });
    let sandbox_meta = Arc::new(ContainerMeta {
        image_name: Some("registry.k8s.io/pause".into()),
        image_tags: vec!["3.9".into()],
        k8s_pod_name: Some("web-0".into()),
        k8s_namespace_name: Some("shop".into()),
        k8s_pod_uid: Some(POD_UID.into()),
        runtime_name: Some("containerd".into()),
        sandbox: true,
        ..ContainerMeta::default()
    });
    let described = || Described {
        state: &pod,
        meta: None,
        pod: Some(pod_meta.clone()),
    };
    let page = render(
        Naming::Cadvisor,
        vec![described()],
        vec![Described {
            state: &sandbox,
            meta: Some(sandbox_meta.clone()),
            pod: Some(pod_meta.clone()),
        }],
    );
    let net = page.series("container_network_receive_bytes_total", &[]);
    assert_eq!(net.len(), 1, "{}", page.text);
    let l = &net[0].labels;
    let want = [
        ("id", format!("/{pod_rel}/{SANDBOX}")),
        ("name", SANDBOX.to_string()),
        ("image", "registry.k8s.io/pause:3.9".to_string()),
        ("namespace", "shop".to_string()),
        ("pod", "web-0".to_string()),
    ];
    for (k, v) in &want {
        assert_eq!(l.get(*k), Some(v), "{k}: {l:?}");
    }
    assert!(!l.contains_key("container"));
    // The pod's other series are its own cgroup's.
    let cpu = page.series("container_cpu_usage_seconds_total", &[]);
    assert_eq!(cpu[0].labels.get("id"), Some(&format!("/{pod_rel}")));
    assert!(!cpu[0].labels.contains_key("image"));
    // Without its sandbox: the pod's identity (and no image).
    let page = render(Naming::Cadvisor, vec![described()], vec![]);
    let net = page.series("container_network_receive_bytes_total", &[]);
    assert_eq!(net[0].labels.get("id"), Some(&format!("/{pod_rel}")));
}

#[test]
fn promtool_accepts_the_page() {
    let c = state(ID, Kind::Container, "docker/x", None, sample(true, false));
    let page = render(
        Naming::Cadvisor,
        vec![Described {
            state: &c,
            meta: Some(container_meta(&[("team", "a\"b\\c")])),
            pod: None,
        }],
        vec![],
    );
    common::prometheus::require_prometheus();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        page.text
    );
}
