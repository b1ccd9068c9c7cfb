//! The panels of the dashboards people run on cAdvisor, on the exporter's cAdvisor page
//! (issue 17): each panel's query, written here in the test's own words but selecting what the
//! dashboard selects, runs in a real Prometheus and must return the series of the pods and
//! containers that did the work.
//!
//! - Kubernetes, as the shipped ServiceMonitor (`deploy/prometheus-operator/cadvisor/`) has the
//!   Prometheus Operator scrape the page as the kubelet's `/metrics/cadvisor` (its relabelling
//!   and metric drops, `honor_labels`, translated from the file by
//!   `common::prometheus::service_monitor_job`, so the two cannot drift): the "Kubernetes /
//!   Compute Resources" dashboards of the kubernetes-mixin (Cluster, Namespace (Pods), Pod,
//!   Workload), Storage IO and network panels included, over two pods of a real containerd driven over the CRI as the kubelet drives it:
//!   one serving HTTP on its pod network, writing to its disk with `O_DIRECT` and fetching a
//!   large file from itself over `lo` (a sidecar's traffic, which the network panels must not
//!   count), one fetching from it across the pod network, busy under a CPU quota. The
//!   recording rules and the kube-state-metrics series the dashboards join with come from the
//!   mixin's rules and a page of the test's in kube-state-metrics' shape (no Kubernetes here).
//! - Docker, as a plain scrape of cAdvisor: dockprom's "Docker Containers", "Docker Host" and
//!   "Monitor Services" dashboards, Grafana dashboard 193 and the docker-mixin, over Docker
//!   containers on a bridge network of the test's own, one of them labelled as dockprom's own
//!   monitoring stack.
//!
//! Besides the panels: no `lo` series, `device` is `/dev/<name>`, a pod's network bytes are its
//! `eth0`'s (read from the kernel's own `net/dev` of the pod, independently of the exporter),
//! and a pod's network series carry its sandbox's image, as the kubelet's do.
//!
//! Long because it is one scene (pods, containers, a Prometheus with rules) and the panels of
//! five dashboards over it; the queries are the point, and they are kept in one place.
//!
//! It needs root, a running dockerd with the test image (`.ci/docker-up.sh`),
//! `.ci/containerd-up.sh` and `.ci/prometheus-up.sh`.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::cri::{BUSYBOX, Containerd, Net, PAUSE, Pod, Qos, TOOLS};
use common::exporter::Exporter;
use common::prometheus::{ExporterPod, Prometheus, label, service_monitor_job};
use common::{Container, TempDir, disk_of, docker, unique_name};
use serde_json::Value;

/// The dashboards' disk selector (the kubernetes-mixin's `diskDeviceSelector`): device node
/// names, with or without `/dev/`.
const DISK_DEVICES: &str =
    r#"device=~"(/dev/)?(mmcblk.p.+|nvme.+|rbd.+|sd.+|vd.+|xvd.+|dm-.+|md.+|dasd.+)""#;

/// kube-prometheus's cAdvisor selector, and what Grafana makes of `$cluster` on a single
/// cluster (no `cluster` label).
const KUBELET: &str = r#"job="kubelet", metrics_path="/metrics/cadvisor", cluster="""#;

// ---------------------------------------------------------------------------------------------
// The workloads
// ---------------------------------------------------------------------------------------------

/// The web pod's container: serves a small and a large (4 MiB) file on every address, writes
/// 4 MiB to its disk with O_DIRECT and then 512 KiB more every round, and fetches the large
/// file from itself over `lo` every round (what a local proxy or sidecar does).
const WEB: &str = "trap 'exit 0' TERM INT; mkdir -p /w && \
     dd if=/dev/zero of=/w/small bs=1024 count=64 2>/dev/null && \
     dd if=/dev/zero of=/w/big bs=1024 count=4096 2>/dev/null && \
     httpd -p 8080 -h /w && \
     dd if=/dev/zero of=/data.img bs=1M count=4 oflag=direct 2>/dev/null; echo WROTE; \
     while :; do wget -q -O /dev/null http://127.0.0.1:8080/big; \
       dd if=/dev/zero of=/data.img bs=64k count=8 oflag=direct conv=notrunc 2>/dev/null; \
       sleep 0.3; done";

/// The report pod's container: a busy loop under its 10 % CPU quota (throttled), and the web
/// pod's small file fetched across the pod network every half second.
fn report_script(web_ip: &str) -> String {
    format!(
        "trap 'exit 0' TERM INT; (while :; do :; done) & \
         while :; do wget -q -O /dev/null http://{web_ip}:8080/small; sleep 0.5; done"
    )
}

/// What the stand-in for kube-state-metrics says about the two pods: where they run, who owns
/// them (the web pod a Deployment's ReplicaSet's, the report pod a Job's), their phase, and
/// each container's requests and limits.
fn kube_state_metrics(web: &Pod, report: &Pod) -> String {
    let mut page = String::new();
    for (pod, owner_kind, owner, containers) in [
        (web, "ReplicaSet", "web-5d8f7b9c4", &["app", "sidecar"][..]),
        (report, "Job", "report-28461", &["worker"][..]),
    ] {
        let (ns, name, uid) = (&pod.namespace, &pod.name, &pod.uid);
        page.push_str(&format!(
            "kube_pod_info{{namespace=\"{ns}\",pod=\"{name}\",uid=\"{uid}\",node=\"node-1\"}} 1\n\
             kube_pod_owner{{namespace=\"{ns}\",pod=\"{name}\",owner_kind=\"{owner_kind}\",\
             owner_name=\"{owner}\",owner_is_controller=\"true\"}} 1\n\
             kube_pod_status_phase{{namespace=\"{ns}\",pod=\"{name}\",phase=\"Running\"}} 1\n"
        ));
        for c in containers {
            for (kind, cpu, memory) in [("requests", 0.1, 32 << 20), ("limits", 0.1, 64 << 20)] {
                page.push_str(&format!(
                    "kube_pod_container_resource_{kind}{{namespace=\"{ns}\",pod=\"{name}\",\
                     container=\"{c}\",node=\"node-1\",resource=\"cpu\",unit=\"core\"}} {cpu}\n\
                     kube_pod_container_resource_{kind}{{namespace=\"{ns}\",pod=\"{name}\",\
                     container=\"{c}\",node=\"node-1\",resource=\"memory\",unit=\"byte\"}} \
                     {memory}\n"
                ));
            }
        }
    }
    page.push_str(&format!(
        "kube_replicaset_owner{{namespace=\"{}\",replicaset=\"web-5d8f7b9c4\",\
         owner_kind=\"Deployment\",owner_name=\"web\",owner_is_controller=\"true\"}} 1\n",
        web.namespace
    ));
    page
}

/// A fixed text page served on a loopback port until dropped: kube-state-metrics' series for
/// the pods of this test (there is no Kubernetes API here to derive them from).
struct StaticPage {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StaticPage {
    fn serve(body: String) -> StaticPage {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut req = [0u8; 4096];
                        let _ = s.read(&mut req);
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        StaticPage {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for StaticPage {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A Docker network of the test's own (internal: no way out), removed when dropped, after
/// the containers on it (which are dropped first: declare this before them).
struct DockerNetwork(String);

impl DockerNetwork {
    fn create() -> DockerNetwork {
        let name = format!("{}-net", unique_name());
        let out = docker(&["network", "create", "--internal", &name]);
        assert!(
            out.status.success(),
            "docker network create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        DockerNetwork(name)
    }
}

impl Drop for DockerNetwork {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.0])
            .output();
    }
}

/// v1 blkio counts nothing on a device until some cgroup had a throttle rule on it since boot
/// (FINDINGS; dockerd's `--device-write-bps` is such a rule): a rule too high to matter, set
/// and dropped with a cgroup of the test's, turns the counting on for `majmin`.
fn account_block_io(majmin: &str) {
    let blkio = std::path::Path::new("/sys/fs/cgroup/blkio");
    if !blkio.exists() {
        return; // cgroup v2: io.stat counts without a rule.
    }
    let dir = blkio.join(unique_name());
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    let set = fs::write(
        dir.join("blkio.throttle.write_bps_device"),
        format!("{majmin} 10737418240\n"),
    );
    let _ = fs::remove_dir(&dir);
    set.unwrap_or_else(|e| panic!("throttle rule on {majmin}: {e}"));
}

// ---------------------------------------------------------------------------------------------
// Prometheus: the scrape jobs and the rules
// ---------------------------------------------------------------------------------------------

/// The shipped ServiceMonitor of `deploy/prometheus-operator/cadvisor/` (kube-prometheus's
/// kubelet cAdvisor endpoint: honor labels, `job`, `metrics_path` and `node` set, the exporter's
/// own pod labels dropped, the metrics it drops), as the operator makes it a scrape job, pointed
/// at the exporter; a plain cAdvisor job as dockprom has it; and the stand-in for
/// kube-state-metrics.
const SERVICE_MONITOR: &str = "deploy/prometheus-operator/cadvisor/servicemonitor.yaml";

fn scrape_configs(exporter: u16, ksm: u16, pod: &ExporterPod) -> String {
    format!(
        r#"{kubelet}  - job_name: cadvisor
    static_configs:
      - targets: ['127.0.0.1:{exporter}']
  - job_name: kube-state-metrics
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:{ksm}']
"#,
        kubelet = service_monitor_job(SERVICE_MONITOR, exporter, pod)
    )
}

/// The kubernetes-mixin's recording rules the Compute Resources dashboards read, in this
/// test's words: container CPU and memory joined with their node, the pods' workloads, and
/// the requests and limits of running pods.
const RULES: &str = r#"groups:
  - name: k8s.rules
    rules:
      - record: node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m
        expr: |
          sum by (cluster, namespace, pod, container) (
            rate(container_cpu_usage_seconds_total{job="kubelet", metrics_path="/metrics/cadvisor", image!=""}[5m])
          ) * on (cluster, namespace, pod) group_left(node)
          topk by (cluster, namespace, pod) (1, max by (cluster, namespace, pod, node) (kube_pod_info{node!=""}))
      - record: node_namespace_pod_container:container_memory_working_set_bytes
        expr: |
          container_memory_working_set_bytes{job="kubelet", metrics_path="/metrics/cadvisor", image!=""}
          * on (cluster, namespace, pod) group_left(node)
          topk by (cluster, namespace, pod) (1, max by (cluster, namespace, pod, node) (kube_pod_info{node!=""}))
      - record: node_namespace_pod_container:container_memory_rss
        expr: |
          container_memory_rss{job="kubelet", metrics_path="/metrics/cadvisor", image!=""}
          * on (cluster, namespace, pod) group_left(node)
          topk by (cluster, namespace, pod) (1, max by (cluster, namespace, pod, node) (kube_pod_info{node!=""}))
      - record: cluster:namespace:pod_cpu:active:kube_pod_container_resource_requests
        expr: |
          kube_pod_container_resource_requests{resource="cpu", job="kube-state-metrics"}
          * on (namespace, pod, cluster) group_left()
          max by (namespace, pod, cluster) ((kube_pod_status_phase{phase=~"Pending|Running"} == 1))
      - record: cluster:namespace:pod_memory:active:kube_pod_container_resource_requests
        expr: |
          kube_pod_container_resource_requests{resource="memory", job="kube-state-metrics"}
          * on (namespace, pod, cluster) group_left()
          max by (namespace, pod, cluster) ((kube_pod_status_phase{phase=~"Pending|Running"} == 1))
      - record: cluster:namespace:pod_memory:active:kube_pod_container_resource_limits
        expr: |
          kube_pod_container_resource_limits{resource="memory", job="kube-state-metrics"}
          * on (namespace, pod, cluster) group_left()
          max by (namespace, pod, cluster) ((kube_pod_status_phase{phase=~"Pending|Running"} == 1))
      - record: namespace_workload_pod:kube_pod_owner:relabel
        expr: |
          max by (cluster, namespace, workload, pod) (
            label_replace(
              label_replace(kube_pod_owner{job="kube-state-metrics", owner_kind="ReplicaSet"}, "replicaset", "$1", "owner_name", "(.*)")
              * on (replicaset, namespace) group_left(owner_name)
              topk by (replicaset, namespace) (1, max by (replicaset, namespace, owner_name) (kube_replicaset_owner{job="kube-state-metrics"})),
              "workload", "$1", "owner_name", "(.*)"))
        labels:
          workload_type: deployment
      - record: namespace_workload_pod:kube_pod_owner:relabel
        expr: |
          max by (cluster, namespace, workload, pod) (
            label_replace(kube_pod_owner{job="kube-state-metrics", owner_kind="Job"}, "workload", "$1", "owner_name", "(.*)"))
        labels:
          workload_type: job
"#;

// ---------------------------------------------------------------------------------------------
// Panels
// ---------------------------------------------------------------------------------------------

/// What a panel must return: a series with these labels (each `(label, value)`), and whether
/// its value must be above zero (work was done) or only there.
struct Want<'a> {
    labels: Vec<(&'a str, &'a str)>,
    positive: bool,
}

fn busy<'a>(labels: &[(&'a str, &'a str)]) -> Want<'a> {
    Want {
        labels: labels.to_vec(),
        positive: true,
    }
}

fn there<'a>(labels: &[(&'a str, &'a str)]) -> Want<'a> {
    Want {
        labels: labels.to_vec(),
        positive: false,
    }
}

fn value(s: &Value) -> f64 {
    s["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Polls the panel's query until it returns every wanted series (60 s at most, the time for
/// rate windows and recording rules to fill).
fn panel(prom: &Prometheus, title: &str, query: &str, want: &[Want<'_>]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = prom.query(query);
        let missing: Vec<&Want> = want
            .iter()
            .filter(|w| {
                !got.iter().any(|s| {
                    w.labels.iter().all(|(k, v)| label(s, k) == Some(v))
                        && value(s).is_finite()
                        && (!w.positive || value(s) > 0.0)
                })
            })
            .collect();
        if missing.is_empty() {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "panel \"{title}\" lacks {:?} (above zero: {:?}).\nquery: {query}\ngot: {got:#?}",
            missing.iter().map(|w| &w.labels).collect::<Vec<_>>(),
            missing.iter().map(|w| w.positive).collect::<Vec<_>>(),
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `tx` bytes of `iface` in the network namespace of process `pid`, from the kernel's file.
fn net_dev_tx(pid: u32, iface: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/net/dev")).expect("read net/dev");
    text.lines()
        .find_map(|l| {
            let (name, counters) = l.split_once(':')?;
            (name.trim() == iface)
                .then(|| counters.split_whitespace().nth(8).unwrap().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {iface} in /proc/{pid}/net/dev:\n{text}"))
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

#[test]
fn dashboard_panels_return_the_pods_and_containers_series() {
    let cd = Containerd::start();
    let (majmin, dev_node) = disk_of(&cd.dir);
    account_block_io(&majmin);

    // Two pods on the pod network.
    let web = cd.run_pod(
        "web-5d8f7b9c4-q2x7z",
        "shop",
        Qos::Burstable,
        Net::Pod,
        &[("app", "web")],
    );
    let web_app = cd.create_container_cmd(&web, "app", BUSYBOX, 0, WEB);
    cd.start_container(&web_app);
    let web_side = cd.run_container(&web, "sidecar", TOOLS, 0);
    let (web_pid, web_ip) = cd.sandbox_status(&web);
    let (web_pid, web_ip) = (web_pid.expect("the web pod's pause pid"), web_ip);
    assert!(!web_ip.is_empty(), "the web pod has no address");
    let report = cd.run_pod(
        "report-28461-8kx2p",
        "batch",
        Qos::Guaranteed,
        Net::Pod,
        &[("app", "report")],
    );
    let worker = cd.create_container_cmd(&report, "worker", BUSYBOX, 0, &report_script(&web_ip));
    cd.start_container(&worker);
    let _ = (&web_side, &worker);

    // Docker containers on a bridge network of the test's: a web server writing to its
    // volume, a client fetching from it by name, and a container of the monitoring stack.
    let net = DockerNetwork::create();
    let dir = TempDir::new();
    let data = dir.0.join("data");
    fs::create_dir_all(&data).unwrap();
    let vol = format!("{}:/data", data.display());
    let docker_dev = disk_of(&data).1;
    let bps = format!("{docker_dev}:10gb");
    let dweb = Container::sh(
        &[
            "--network",
            &net.0,
            "--network-alias",
            "dweb",
            "--memory",
            "64m",
            "--memory-reservation",
            "32m",
            "--device-write-bps",
            &bps,
            "-v",
            &vol,
        ],
        "mkdir -p /w && dd if=/dev/zero of=/w/f bs=1024 count=256 2>/dev/null && \
         httpd -p 8080 -h /w && \
         while :; do dd if=/dev/zero of=/data/f bs=64k count=8 oflag=direct 2>/dev/null; \
         sleep 0.5; done",
    );
    let dclient = Container::sh(
        &["--network", &net.0, "--memory", "32m"],
        "while :; do wget -q -O /dev/null http://dweb:8080/f; sleep 0.5; done",
    );
    let dmon = Container::sh(
        &[
            "--network",
            &net.0,
            "--label",
            "org.label-schema.group=monitoring",
        ],
        "while :; do wget -q -O /dev/null http://dweb:8080/f; sleep 1; done",
    );

    let exp = Exporter::start(&[
        "--interval",
        "1s",
        "--prometheus-names",
        "cadvisor",
        "--cri-endpoint",
        &cd.endpoint,
        "--podman-host",
        "off",
        "--container-labels",
        "org.label-schema.*",
    ]);
    let ksm = StaticPage::serve(kube_state_metrics(&web, &report));
    let exporter_pod = ExporterPod::on("node-1");
    let prom = Prometheus::start_with(
        &scrape_configs(exp.port, ksm.port, &exporter_pod),
        Some(RULES),
    );

    // The page itself: no loopback (nor veth, docker*) series; disks by their /dev name; a
    // pod's network on its sandbox, with the sandbox's image.
    let page = exp.wait_for(
        "the pods' and containers' network and disk series",
        Duration::from_secs(40),
        &web.uid,
        |p| {
            let on = |name: &str, want: &[(&str, &str)]| !p.series(name, want).is_empty();
            on(
                "container_network_transmit_bytes_total",
                &[("pod", &web.name), ("interface", "eth0")],
            ) && on(
                "container_fs_writes_bytes_total",
                &[("container", "app"), ("device", &dev_node)],
            ) && on(
                "container_network_receive_bytes_total",
                &[("name", &dclient.name), ("interface", "eth0")],
            )
        },
    );
    for s in &page.samples {
        if let Some(i) = s.labels.get("interface") {
            assert!(
                !["lo", "veth", "docker", "nerdctl"]
                    .iter()
                    .any(|p| i.starts_with(p)),
                "an interface cAdvisor leaves out is on the page: {s:?}"
            );
        }
        if let Some(d) = s.labels.get("device") {
            assert!(d.starts_with("/dev/"), "device is not a /dev name: {s:?}");
        }
    }
    let net_series = page.series(
        "container_network_receive_bytes_total",
        &[("pod", &web.name), ("namespace", "shop")],
    );
    assert_eq!(net_series.len(), 1, "one interface, eth0: {net_series:?}");
    let l = &net_series[0].labels;
    assert_eq!(l.get("image").map(String::as_str), Some(PAUSE), "{l:?}");
    assert_eq!(l.get("name"), Some(&web.sandbox_id), "{l:?}");
    assert_eq!(
        l.get("id"),
        Some(&format!("/{}", web.cgroup_of(&web.sandbox_id))),
        "{l:?}"
    );
    assert_eq!(l.get("container"), None, "{l:?}");
    // The pod's transmitted bytes are its eth0's, not its loopback's (which carries a 4 MiB
    // file every round): the kernel's own counters, read around the page's.
    let before = net_dev_tx(web_pid, "eth0");
    let page = exp.metrics();
    let after = net_dev_tx(web_pid, "eth0");
    let sent = page.value(
        "container_network_transmit_bytes_total",
        &[("pod", &web.name), ("interface", "eth0")],
    ) as u64;
    let lo = net_dev_tx(web_pid, "lo");
    assert!(
        lo > 4 * after,
        "the test's loopback traffic ({lo} B) should dwarf eth0's ({after} B)"
    );
    // The page is at most one tick old.
    assert!(
        sent <= after && sent + (1 << 20) >= before,
        "eth0 sent {before}..{after} B, the page says {sent} B"
    );

    // The ServiceMonitor's relabelings: every series of the kubelet job is on the node, and none
    // carries the exporter's own pod as its namespace, pod or container (they are dropped; the
    // page's own labels are the containers').
    panel(
        &prom,
        "ServiceMonitor / the node on every series",
        &format!(r#"count({{{KUBELET}, node="node-1"}})"#),
        &[busy(&[])],
    );
    let strays = format!(
        r#"{{{KUBELET}, node!="node-1"}} or {{{KUBELET}, namespace="{ns}"}} or {{{KUBELET}, pod="{pod}"}} or {{{KUBELET}, container="{ctr}"}}"#,
        ns = exporter_pod.namespace,
        pod = exporter_pod.pod,
        ctr = exporter_pod.container,
    );
    let got = prom.query(&strays);
    assert!(
        got.is_empty(),
        "series of the kubelet job without the node, or with the exporter's own pod labels:\n{got:#?}"
    );

    // --- Kubernetes / Compute Resources / Cluster --------------------------------------------
    let ns = |n: &'static str| busy(&[("namespace", n)]);
    panel(
        &prom,
        "Cluster / CPU Usage by namespace",
        r#"sum(max by (cluster, namespace, pod, container)(node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m{cluster=""})) by (namespace)"#,
        &[ns("shop"), ns("batch")],
    );
    panel(
        &prom,
        "Cluster / Memory Usage (w/o cache) by namespace",
        &format!(
            r#"sum(max by (cluster, namespace, pod, container)(container_memory_rss{{{KUBELET}, container!=""}})) by (namespace)"#
        ),
        &[ns("shop"), ns("batch")],
    );
    for (title, metric) in [
        (
            "Cluster / Receive Bandwidth",
            "container_network_receive_bytes_total",
        ),
        (
            "Cluster / Transmit Bandwidth",
            "container_network_transmit_bytes_total",
        ),
        (
            "Cluster / Rate of Received Packets",
            "container_network_receive_packets_total",
        ),
        (
            "Cluster / Rate of Transmitted Packets",
            "container_network_transmit_packets_total",
        ),
    ] {
        panel(
            &prom,
            title,
            &format!(r#"sum(rate({metric}{{{KUBELET}, namespace=~".+"}}[20s])) by (namespace)"#),
            &[ns("shop"), ns("batch")],
        );
    }
    for (title, metric) in [
        (
            "Cluster / Rate of Received Packets Dropped",
            "container_network_receive_packets_dropped_total",
        ),
        (
            "Cluster / Rate of Transmitted Packets Dropped",
            "container_network_transmit_packets_dropped_total",
        ),
    ] {
        panel(
            &prom,
            title,
            &format!(r#"sum(rate({metric}{{{KUBELET}, namespace=~".+"}}[20s])) by (namespace)"#),
            &[
                there(&[("namespace", "shop")]),
                there(&[("namespace", "batch")]),
            ],
        );
    }
    panel(
        &prom,
        "Cluster / IOPS (Reads+Writes)",
        &format!(
            r#"ceil(sum by(namespace) (rate(container_fs_reads_total{{{KUBELET}, container!="", {DISK_DEVICES}, namespace!=""}}[20s]) + rate(container_fs_writes_total{{{KUBELET}, container!="", {DISK_DEVICES}, namespace!=""}}[20s])))"#
        ),
        &[ns("shop")],
    );
    panel(
        &prom,
        "Cluster / ThroughPut (Read+Write)",
        &format!(
            r#"sum by(namespace) (rate(container_fs_reads_bytes_total{{{KUBELET}, container!="", {DISK_DEVICES}, namespace!=""}}[20s]) + rate(container_fs_writes_bytes_total{{{KUBELET}, container!="", {DISK_DEVICES}, namespace!=""}}[20s]))"#
        ),
        &[ns("shop")],
    );

    // --- Kubernetes / Compute Resources / Namespace (Pods) -----------------------------------
    fn pod(p: &Pod) -> Want<'_> {
        busy(&[("pod", p.name.as_str())])
    }
    panel(
        &prom,
        "Namespace / CPU Usage by pod",
        r#"sum(node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m{cluster="", namespace="shop"}) by (pod)"#,
        &[pod(&web)],
    );
    panel(
        &prom,
        "Namespace / Memory Usage (w/o cache) by pod",
        &format!(
            r#"sum(container_memory_working_set_bytes{{{KUBELET}, namespace="shop", container!="", image!=""}}) by (pod)"#
        ),
        &[pod(&web)],
    );
    panel(
        &prom,
        "Namespace / Memory Usage vs Requests",
        &format!(
            r#"sum(container_memory_working_set_bytes{{{KUBELET}, namespace="batch", container!="", image!=""}}) by (pod) / sum(cluster:namespace:pod_memory:active:kube_pod_container_resource_requests{{cluster="", namespace="batch"}}) by (pod)"#
        ),
        &[pod(&report)],
    );
    for metric in [
        "container_memory_rss",
        "container_memory_cache",
        "container_memory_swap",
    ] {
        panel(
            &prom,
            &format!("Namespace / Memory Quota: {metric}"),
            &format!(r#"sum({metric}{{{KUBELET}, namespace="shop", container!=""}}) by (pod)"#),
            &[there(&[("pod", web.name.as_str())])],
        );
    }
    for metric in [
        "container_network_receive_bytes_total",
        "container_network_transmit_bytes_total",
        "container_network_receive_packets_total",
        "container_network_transmit_packets_total",
    ] {
        panel(
            &prom,
            &format!("Namespace / Network: {metric}"),
            &format!(r#"sum(rate({metric}{{{KUBELET}, namespace="shop"}}[20s])) by (pod)"#),
            &[pod(&web)],
        );
    }
    for (title, q) in [
        (
            "Namespace / IOPS (Reads+Writes)",
            format!(
                r#"ceil(sum by(pod) (rate(container_fs_reads_total{{container!="", {DISK_DEVICES}, cluster="", namespace="shop"}}[20s]) + rate(container_fs_writes_total{{container!="", {DISK_DEVICES}, cluster="", namespace="shop"}}[20s])))"#
            ),
        ),
        (
            "Namespace / ThroughPut (Read+Write)",
            format!(
                r#"sum by(pod) (rate(container_fs_reads_bytes_total{{container!="", {DISK_DEVICES}, cluster="", namespace="shop"}}[20s]) + rate(container_fs_writes_bytes_total{{container!="", {DISK_DEVICES}, cluster="", namespace="shop"}}[20s]))"#
            ),
        ),
        (
            "Namespace / Storage IO: Writes",
            format!(
                r#"sum by(pod) (rate(container_fs_writes_total{{{KUBELET}, {DISK_DEVICES}, container!="", namespace="shop"}}[20s]))"#
            ),
        ),
        (
            "Namespace / Storage IO: Write Bytes",
            format!(
                r#"sum by(pod) (rate(container_fs_writes_bytes_total{{{KUBELET}, {DISK_DEVICES}, container!="", namespace="shop"}}[20s]))"#
            ),
        ),
    ] {
        panel(&prom, title, &q, &[pod(&web)]);
    }

    // --- Kubernetes / Compute Resources / Pod ------------------------------------------------
    let ctr = |c: &'static str| busy(&[("container", c)]);
    panel(
        &prom,
        "Pod / CPU Usage by container",
        &format!(
            r#"sum(node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m{{cluster="", namespace="shop", pod="{}", container!=""}}) by (container)"#,
            web.name
        ),
        &[ctr("app")],
    );
    panel(
        &prom,
        "Pod / CPU Throttling",
        &format!(
            r#"sum(increase(container_cpu_cfs_throttled_periods_total{{{KUBELET}, namespace="batch", pod="{0}", container!=""}}[20s])) by (container) / sum(increase(container_cpu_cfs_periods_total{{{KUBELET}, namespace="batch", pod="{0}", container!=""}}[20s])) by (container)"#,
            report.name
        ),
        &[ctr("worker")],
    );
    panel(
        &prom,
        "Pod / Memory Usage (WSS)",
        &format!(
            r#"sum(container_memory_working_set_bytes{{{KUBELET}, namespace="shop", pod="{}", container!="", image!=""}}) by (container)"#,
            web.name
        ),
        &[ctr("app"), ctr("sidecar")],
    );
    panel(
        &prom,
        "Pod / Memory Usage vs Limits",
        &format!(
            r#"sum(container_memory_working_set_bytes{{{KUBELET}, namespace="batch", pod="{0}", container!="", image!=""}}) by (container) / sum(cluster:namespace:pod_memory:active:kube_pod_container_resource_limits{{cluster="", namespace="batch", pod="{0}"}}) by (container)"#,
            report.name
        ),
        &[ctr("worker")],
    );
    for metric in [
        "container_memory_rss",
        "container_memory_cache",
        "container_memory_swap",
    ] {
        panel(
            &prom,
            &format!("Pod / Memory Quota: {metric}"),
            &format!(
                r#"sum({metric}{{{KUBELET}, namespace="shop", pod="{}", container!="", container!="POD"}}) by (container)"#,
                web.name
            ),
            &[
                there(&[("container", "app")]),
                there(&[("container", "sidecar")]),
            ],
        );
    }
    for metric in [
        "container_network_receive_bytes_total",
        "container_network_transmit_bytes_total",
        "container_network_receive_packets_total",
        "container_network_transmit_packets_total",
    ] {
        panel(
            &prom,
            &format!("Pod / Network: {metric}"),
            &format!(
                r#"sum(irate({metric}{{{KUBELET}, namespace="shop", pod=~"{}"}}[20s])) by (pod)"#,
                web.name
            ),
            &[pod(&web)],
        );
    }
    for (title, q, by) in [
        (
            "Pod / IOPS (Pod Reads+Writes)",
            format!(
                r#"ceil(sum by(pod) (rate(container_fs_reads_total{{{KUBELET}, {DISK_DEVICES}, container!="", namespace="shop", pod=~"{0}"}}[20s]) + rate(container_fs_writes_total{{{KUBELET}, {DISK_DEVICES}, container!="", namespace="shop", pod=~"{0}"}}[20s])))"#,
                web.name
            ),
            "pod",
        ),
        (
            "Pod / ThroughPut (Pod Write)",
            format!(
                r#"sum by(pod) (rate(container_fs_writes_bytes_total{{{KUBELET}, {DISK_DEVICES}, container!="", namespace="shop", pod=~"{}"}}[20s]))"#,
                web.name
            ),
            "pod",
        ),
        (
            "Pod / IOPS (Containers)",
            format!(
                r#"ceil(sum by(container) (rate(container_fs_reads_total{{{KUBELET}, container!="", namespace="shop", pod="{0}"}}[20s]) + rate(container_fs_writes_total{{{KUBELET}, container!="", namespace="shop", pod="{0}"}}[20s])))"#,
                web.name
            ),
            "container",
        ),
        (
            "Pod / Storage IO: Write Bytes by container",
            format!(
                r#"sum by(container) (rate(container_fs_writes_bytes_total{{{KUBELET}, {DISK_DEVICES}, container!="", namespace="shop", pod="{}"}}[20s]))"#,
                web.name
            ),
            "container",
        ),
    ] {
        let want = match by {
            "pod" => pod(&web),
            _ => ctr("app"),
        };
        panel(&prom, title, &q, &[want]);
    }

    // --- Kubernetes / Compute Resources / Workload -------------------------------------------
    let owned = |metric: &str, ns: &str, workload: &str| {
        format!(
            r#"sum(max by (cluster, namespace, pod, container)({metric}) * on(cluster, namespace, pod) group_left(workload, workload_type) namespace_workload_pod:kube_pod_owner:relabel{{cluster="", namespace="{ns}", workload=~"{workload}", workload_type=~".+"}}) by (pod)"#
        )
    };
    panel(
        &prom,
        "Workload (Deployment) / CPU Usage",
        &owned(
            r#"node_namespace_pod_container:container_cpu_usage_seconds_total:sum_rate5m{cluster="", namespace="shop"}"#,
            "shop",
            "web",
        ),
        &[pod(&web)],
    );
    panel(
        &prom,
        "Workload (Job) / Memory Usage",
        &owned(
            r#"container_memory_working_set_bytes{cluster="", namespace="batch", container!="", image!=""}"#,
            "batch",
            "report-28461",
        ),
        &[pod(&report)],
    );
    for (metric, ns, workload, who) in [
        ("container_network_receive_bytes_total", "shop", "web", &web),
        (
            "container_network_transmit_bytes_total",
            "shop",
            "web",
            &web,
        ),
        (
            "container_network_receive_packets_total",
            "batch",
            "report-28461",
            &report,
        ),
        (
            "container_network_transmit_packets_total",
            "batch",
            "report-28461",
            &report,
        ),
    ] {
        panel(
            &prom,
            &format!("Workload / Network: {metric}"),
            &format!(
                r#"(sum(rate({metric}{{{KUBELET}, namespace="{ns}"}}[20s]) * on (cluster, namespace, pod) group_left(workload, workload_type) namespace_workload_pod:kube_pod_owner:relabel{{cluster="", namespace="{ns}", workload=~"{workload}", workload_type=~".+"}}) by (pod))"#
            ),
            &[pod(who)],
        );
    }

    // --- Docker: dockprom ("Docker Containers", "Docker Host", "Monitor Services") ------------
    fn name(c: &Container) -> Want<'_> {
        busy(&[("name", c.name.as_str())])
    }
    let mut all_docker = vec![name(&dweb), name(&dclient)];
    panel(
        &prom,
        "dockprom / CPU Cores",
        r#"machine_cpu_cores{job="cadvisor"}"#,
        &[busy(&[])],
    );
    panel(
        &prom,
        "dockprom / CPU Load",
        r#"sum(rate(container_cpu_user_seconds_total{job="cadvisor", image!=""}[20s]))"#,
        &[busy(&[])],
    );
    panel(
        &prom,
        "dockprom / Used Memory",
        r#"sum(container_memory_usage_bytes{job="cadvisor", image!=""})"#,
        &[busy(&[])],
    );
    let running = panel(
        &prom,
        "dockprom / Running Containers",
        r#"count(container_memory_usage_bytes{job="cadvisor", image!=""}) > 0"#,
        &[busy(&[])],
    );
    assert!(
        value(&running[0]) >= 6.0,
        "the test's 6 containers at least: {running:?}"
    );
    let dockprom = r#"job="cadvisor", image!="", container_label_org_label_schema_group="""#;
    for (title, q) in [
        (
            "dockprom / Container CPU Usage",
            format!(
                r#"sum by (name) (rate(container_cpu_usage_seconds_total{{{dockprom}}}[20s]))"#
            ),
        ),
        (
            "dockprom / Container Memory Usage",
            format!(r#"sum by (name) (container_memory_usage_bytes{{{dockprom}}})"#),
        ),
        (
            "dockprom / Container Network Input",
            format!(
                r#"sum by (name) (rate(container_network_receive_bytes_total{{{dockprom}}}[20s]))"#
            ),
        ),
        (
            "dockprom / Container Network Output",
            format!(
                r#"sum by (name) (rate(container_network_transmit_bytes_total{{{dockprom}}}[20s]))"#
            ),
        ),
    ] {
        let got = panel(&prom, title, &q, &all_docker);
        // The monitoring stack's own container is left out, by its label.
        assert!(
            !got.iter()
                .any(|s| label(s, "name") == Some(dmon.name.as_str())),
            "{title}: the monitoring container is not filtered out: {got:#?}"
        );
    }
    panel(
        &prom,
        "dockprom / Container Cached Memory Usage",
        &format!(r#"sum by (name) (container_memory_cache{{{dockprom}}})"#),
        &[there(&[("name", dweb.name.as_str())])],
    );
    panel(
        &prom,
        "dockprom Monitor Services / Container CPU Usage",
        r#"sum by (name) (rate(container_cpu_user_seconds_total{container_label_org_label_schema_group="monitoring"}[20s]))"#,
        &[busy(&[("name", dmon.name.as_str())])],
    );

    // --- Grafana dashboard 193 --------------------------------------------------------------
    panel(
        &prom,
        "193 / Running containers",
        r#"count(container_last_seen{job="cadvisor", image!=""})"#,
        &[busy(&[])],
    );
    panel(
        &prom,
        "193 / Total CPU Usage",
        r#"sum(rate(container_cpu_user_seconds_total{job="cadvisor", image!=""}[20s]) * 100)"#,
        &[busy(&[])],
    );
    panel(
        &prom,
        "193 / CPU Usage",
        &format!(
            r#"rate(container_cpu_user_seconds_total{{job="cadvisor", name=~"{}"}}[20s]) * 100"#,
            dweb.name
        ),
        &[name(&dweb)],
    );
    // The pods' traffic is there too, on their sandboxes (the issue's `image!=""` loss).
    all_docker.push(busy(&[("pod", web.name.as_str()), ("image", PAUSE)]));
    all_docker.push(busy(&[("pod", report.name.as_str()), ("image", PAUSE)]));
    for metric in [
        "container_network_receive_bytes_total",
        "container_network_transmit_bytes_total",
    ] {
        panel(
            &prom,
            &format!("193 / Network: {metric}"),
            &format!(r#"irate({metric}{{job="cadvisor", image!=""}}[20s])"#),
            &all_docker,
        );
    }

    // --- docker-mixin ------------------------------------------------------------------------
    let mixin = r#"job=~"cadvisor", instance=~".+", name=~".+""#;
    panel(
        &prom,
        "docker-mixin / Total containers",
        &format!(r#"count(container_last_seen{{{mixin}}})"#),
        &[busy(&[])],
    );
    panel(
        &prom,
        "docker-mixin / Total images",
        &format!(r#"count(sum by (image) (container_last_seen{{{mixin}, image=~".+"}}))"#),
        &[busy(&[])],
    );
    panel(
        &prom,
        "docker-mixin / Host memory reserved",
        &format!(
            r#"sum(container_spec_memory_reservation_limit_bytes{{{mixin}}}) / avg(machine_memory_bytes{{job=~"cadvisor"}})"#
        ),
        &[busy(&[])],
    );
    panel(
        &prom,
        "docker-mixin / Host memory consumed",
        &format!(
            r#"sum(container_memory_usage_bytes{{{mixin}}}) / avg(machine_memory_bytes{{job=~"cadvisor"}})"#
        ),
        &[busy(&[])],
    );
    panel(
        &prom,
        "docker-mixin / CPU by container",
        &format!(r#"avg by (name) (rate(container_cpu_usage_seconds_total{{{mixin}}}[20s]))"#),
        &[name(&dweb), name(&dclient), name(&dmon)],
    );
    panel(
        &prom,
        "docker-mixin / Memory by container",
        &format!(r#"sum by (name) (container_memory_usage_bytes{{{mixin}}})"#),
        &[name(&dweb), name(&dclient), name(&dmon)],
    );
    for metric in [
        "container_network_receive_bytes_total",
        "container_network_transmit_bytes_total",
    ] {
        panel(
            &prom,
            &format!("docker-mixin / Network by container: {metric}"),
            &format!(r#"sum by (name) (rate({metric}{{{mixin}}}[20s]))"#),
            &[name(&dweb), name(&dclient)],
        );
    }
    for metric in [
        "container_network_receive_errors_total",
        "container_network_transmit_errors_total",
    ] {
        panel(
            &prom,
            &format!("docker-mixin / {metric}"),
            &format!(r#"sum(rate({metric}{{{mixin}}}[20s]))"#),
            &[there(&[])],
        );
    }

    // The Docker containers' disk, by its /dev name.
    panel(
        &prom,
        "Docker disk writes by device",
        &format!(
            r#"sum by (name, device) (rate(container_fs_writes_bytes_total{{job="cadvisor", name="{}", {DISK_DEVICES}}}[20s]))"#,
            dweb.name
        ),
        &[busy(&[
            ("name", dweb.name.as_str()),
            ("device", docker_dev.as_str()),
        ])],
    );
}
