//! The expected OTLP request, built apart from the daemon's writer
//! (`container_exporter::export::otlp::wire`) and sharing none of its code: no `export`
//! module, no metric table (`METRICS`, `SELF_METRICS`), no `emit`, no resource builder
//! (`HostResource::attributes`, `own_resource`). Its inputs are what the exporter reads — a
//! container's two cgroup samples ([`Case`]), its runtime's metadata, its exit, the exporter's
//! counters — and it writes the `opentelemetry-proto` messages those must become, with the
//! names, units, instruments and attributes of the metric contract (`METRICS.md`, and the
//! reference in `docs/metrics.md` for what came later), written out here in this file's own
//! words. [`assert_same`] then compares the writer's request, decoded by prost, with it,
//! message by message, in any order where OTLP gives order no meaning (resources, metrics,
//! data points, attributes), and prints what differs.
//!
//! What is compared: every resource (its attributes, one scope of the exporter's name and
//! version), every metric (name, unit, Sum or Gauge, monotonicity, temporality), every data
//! point (attributes, start and time, value: integers exactly, doubles to 1e-9 relative).
//! Descriptions are only checked to be there (their text is documentation, generated into
//! `docs/metrics.md` from the writer's table).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use container_exporter::cgroup::CgroupSample;
use container_exporter::collect::{ContainerState, Described, Show};
use container_exporter::discovery::{Found, Kind, Runtime};
use container_exporter::disk::DiskSample;
use container_exporter::exit::{Exit, ExitReason};
use container_exporter::export::otlp::Temporality;
use container_exporter::metadata::{ContainerMeta, PodMeta};
use container_exporter::telemetry::{ProcessStats, Telemetry};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::metrics::v1::{
    self as pm, AggregationTemporality, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// The scope every `ScopeMetrics` carries: the exporter's name and version.
const SCOPE: &str = "container-exporter";
const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

// -------------------------------------------------------------------------------------------
// The input: one container or pod as the collector would hand it over.
// -------------------------------------------------------------------------------------------

/// One container (or pod) at one tick: its cgroup's two last samples, `interval` apart,
/// what its runtime says, why it ended. [`Case::state`] makes the writer's input from it; the
/// reference reads the fields.
#[derive(Clone)]
pub struct Case {
    pub id: String,
    pub kind: Kind,
    pub runtime: Runtime,
    /// The pod uid found in the cgroup path.
    pub pod_uid: Option<String>,
    pub created: SystemTime,
    pub previous: CgroupSample,
    pub current: CgroupSample,
    pub interval: Duration,
    pub meta: Option<Arc<ContainerMeta>>,
    pub pod: Option<Arc<PodMeta>>,
    pub disk: Option<DiskSample>,
    pub exit: Option<Exit>,
    /// An earlier run of a container id shown next to a newer one: its exit only.
    pub exit_only: bool,
}

impl Case {
    pub fn new(id: &str, kind: Kind, created: SystemTime, current: CgroupSample) -> Case {
        Case {
            id: id.to_string(),
            kind,
            runtime: Runtime::Docker,
            pod_uid: None,
            created,
            previous: CgroupSample::default(),
            current,
            interval: Duration::from_secs(10),
            meta: None,
            pod: None,
            disk: None,
            exit: None,
            exit_only: false,
        }
    }

    /// The collector's state of it: what the writer is given.
    pub fn state(&self) -> ContainerState {
        let found = Found {
            id: self.id.clone(),
            kind: self.kind,
            runtime: self.runtime,
            pod_uid: self.pod_uid.clone(),
            rel: format!("x/{}", self.id).into(),
        };
        let mut s = ContainerState::with_samples(
            found,
            self.created,
            self.previous.clone(),
            self.current.clone(),
            self.interval,
        );
        s.disk = self.disk.clone().map(Arc::new);
        s.set_exit(self.exit);
        if self.exit_only {
            s.set_show(Show::ExitOnly);
        }
        s
    }

    /// The writer's input for `state` (made by [`Case::state`]).
    pub fn described<'a>(&self, state: &'a ContainerState) -> Described<'a> {
        Described {
            state,
            meta: self.meta.clone(),
            pod: self.pod.clone(),
        }
    }
}

// -------------------------------------------------------------------------------------------
// The contract, in this file's words.
// -------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Inst {
    /// A monotonic Sum.
    Counter,
    /// A non-monotonic Sum (always cumulative).
    UpDown,
    Gauge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Int(u64),
    Double(f64),
}

/// One metric's points before they become messages: (attributes, value).
struct Family {
    name: String,
    unit: &'static str,
    inst: Inst,
    points: Vec<(Vec<(&'static str, String)>, Num)>,
}

/// Collects families; one with no point is not written.
#[derive(Default)]
struct Families(Vec<Family>);

impl Families {
    fn add(
        &mut self,
        name: &str,
        unit: &'static str,
        inst: Inst,
        points: Vec<(Vec<(&'static str, String)>, Num)>,
    ) {
        if !points.is_empty() {
            self.0.push(Family {
                name: name.to_string(),
                unit,
                inst,
                points,
            });
        }
    }

    /// One point without attributes, if the value is known.
    fn one(&mut self, name: &str, unit: &'static str, inst: Inst, v: Option<Num>) {
        self.add(
            name,
            unit,
            inst,
            v.map(|v| (vec![], v)).into_iter().collect(),
        );
    }
}

fn int(v: Option<u64>) -> Option<Num> {
    v.map(Num::Int)
}

/// Nanoseconds in seconds.
fn ns(v: Option<u64>) -> Option<Num> {
    v.map(|v| Num::Double(v as f64 / 1e9))
}

/// Microseconds in seconds.
fn us(v: Option<u64>) -> Option<Num> {
    v.map(|v| Num::Double(v as f64 / 1e6))
}

/// Points of a metric with one attribute: `(value of the attribute, value)`, the unknown
/// values left out.
fn by(
    key: &'static str,
    values: &[(&str, Option<Num>)],
) -> Vec<(Vec<(&'static str, String)>, Num)> {
    values
        .iter()
        .filter_map(|(a, v)| v.map(|v| (vec![(key, a.to_string())], v)))
        .collect()
}

/// What one container's (or pod's) resource holds, by the contract. On a pod's own cgroup
/// every `container.X` metric is `k8s.pod.X` (`k8s.container.ephemeral_storage.usage` is
/// `k8s.pod.ephemeral_storage.usage`), a pod has `k8s.pod.empty_dir.usage`, and no exit code.
fn container_families(c: &Case, now: SystemTime) -> Families {
    use Inst::{Counter, Gauge, UpDown};
    let mut f = Families::default();
    let pod = c.kind == Kind::Pod;
    let name = |n: &str| {
        if pod {
            match n {
                "k8s.container.ephemeral_storage.usage" => "k8s.pod.ephemeral_storage.usage".into(),
                n => n.replacen("container.", "k8s.pod.", 1),
            }
        } else {
            n.to_string()
        }
    };
    if !c.exit_only {
        let (s, cpu, mem) = (&c.current, &c.current.cpu, &c.current.memory);
        // CPU: time by mode (s), the CPUs used over the interval, the limit as quota ÷ period,
        // the CFS periods, throttled periods and throttled time.
        f.add(
            &name("container.cpu.time"),
            "s",
            Counter,
            by(
                "cpu.mode",
                &[("user", ns(cpu.user_ns)), ("system", ns(cpu.system_ns))],
            ),
        );
        let dt = c.interval.as_secs_f64();
        let used = match (cpu.usage_ns, c.previous.cpu.usage_ns) {
            (Some(now), Some(before)) if now >= before && dt > 0.0 => {
                Some(Num::Double((now - before) as f64 / (dt * 1e9)))
            }
            _ => None,
        };
        f.one(&name("container.cpu.usage"), "{cpu}", Gauge, used);
        let limit = match (cpu.quota_us, cpu.period_us) {
            (Some(q), Some(p)) if p != 0 => Some(Num::Double(q as f64 / p as f64)),
            _ => None,
        };
        f.one(&name("container.cpu.limit"), "{cpu}", UpDown, limit);
        f.one(
            &name("container.cpu.cfs.periods"),
            "{period}",
            Counter,
            int(cpu.periods),
        );
        f.one(
            &name("container.cpu.cfs.throttled_periods"),
            "{period}",
            Counter,
            int(cpu.throttled_periods),
        );
        f.one(
            &name("container.cpu.cfs.throttled.time"),
            "s",
            Counter,
            ns(cpu.throttled_ns),
        );
        // Memory, in bytes. The working set is usage less the inactive page cache, not below
        // 0 and only when both are known; available is the limit less the working set.
        let working_set = match (mem.usage, mem.inactive_file) {
            (Some(u), Some(i)) => Some(u.saturating_sub(i)),
            _ => None,
        };
        let available = match (mem.limit, working_set) {
            (Some(l), Some(w)) => Some(l.saturating_sub(w)),
            _ => None,
        };
        for (n, v) in [
            ("container.memory.usage", mem.usage),
            ("container.memory.peak", mem.peak),
            ("container.memory.working_set", working_set),
            ("container.memory.rss", mem.anon),
            ("container.memory.file", mem.file),
            ("container.memory.available", available),
            ("container.memory.limit", mem.limit),
            ("container.memory.swap.usage", mem.swap),
        ] {
            f.one(&name(n), "By", UpDown, int(v));
        }
        f.one(
            &name("container.memory.oom_kills"),
            "{kill}",
            Counter,
            int(mem.oom_kills),
        );
        // Faults: major as the kernel counts them, minor as all faults less the major ones.
        let faults = match mem.pgmajfault {
            Some(major) => by(
                "system.paging.fault.type",
                &[
                    ("major", Some(Num::Int(major))),
                    ("minor", int(mem.pgfault.map(|a| a.saturating_sub(major)))),
                ],
            ),
            None => vec![],
        };
        f.add(&name("container.paging.faults"), "{fault}", Counter, faults);
        f.one(
            &name("container.pid.count"),
            "{task}",
            UpDown,
            int(s.pids.current),
        );
        f.one(
            &name("container.pid.limit"),
            "{task}",
            UpDown,
            int(s.pids.limit),
        );
        // Block IO by direction and device ("MAJ:MIN").
        for (n, unit, ops) in [
            ("container.disk.io", "By", false),
            ("container.disk.operations", "{operation}", true),
        ] {
            let mut points = vec![];
            for d in &s.io {
                let dev = format!("{}:{}", d.major, d.minor);
                let (r, w) = if ops {
                    (d.read_ops, d.write_ops)
                } else {
                    (d.read_bytes, d.write_bytes)
                };
                for (dir, v) in [("read", r), ("write", w)] {
                    if let Some(v) = v {
                        points.push((
                            vec![
                                ("disk.io.direction", dir.into()),
                                ("system.device", dev.clone()),
                            ],
                            Num::Int(v),
                        ));
                    }
                }
            }
            f.add(&name(n), unit, Counter, points);
        }
        // Network by direction and interface.
        for (n, unit) in [
            ("container.network.io", "By"),
            ("container.network.packet.count", "{packet}"),
            ("container.network.errors", "{error}"),
            ("container.network.packet.dropped", "{packet}"),
        ] {
            let mut points = vec![];
            for i in &s.net {
                let (rx, tx) = match n {
                    "container.network.io" => (i.rx_bytes, i.tx_bytes),
                    "container.network.packet.count" => (i.rx_packets, i.tx_packets),
                    "container.network.errors" => (i.rx_errors, i.tx_errors),
                    _ => (i.rx_dropped, i.tx_dropped),
                };
                let iface = String::from_utf8_lossy(i.name.as_bytes()).into_owned();
                for (dir, v) in [("receive", rx), ("transmit", tx)] {
                    points.push((
                        vec![
                            ("network.io.direction", dir.into()),
                            ("network.interface.name", iface.clone()),
                        ],
                        Num::Int(v),
                    ));
                }
            }
            f.add(&name(n), unit, Counter, points);
        }
        // Pressure stall totals (µs) in seconds, some and full.
        for (n, psi) in [
            ("container.cpu.pressure.stall.time", s.cpu_pressure),
            ("container.memory.pressure.stall.time", s.memory_pressure),
            ("container.io.pressure.stall.time", s.io_pressure),
        ] {
            let points = psi.map_or(vec![], |p| {
                by(
                    "pressure.stall_type",
                    &[("some", us(p.some_us)), ("full", us(p.full_us))],
                )
            });
            f.add(&name(n), "s", Counter, points);
        }
        let uptime = now
            .duration_since(c.created)
            .ok()
            .map(|d| Num::Double(d.as_secs_f64()));
        f.one(&name("container.uptime"), "s", Gauge, uptime);
        // Disk usage from the disk thread.
        if let Some(d) = &c.disk {
            let fs = |g: fn(&container_exporter::disk::FsStat) -> u64| d.fs.as_ref().map(g);
            for (n, unit, v) in [
                ("container.filesystem.usage", "By", d.usage.map(|u| u.bytes)),
                ("container.filesystem.capacity", "By", fs(|f| f.capacity)),
                ("container.filesystem.available", "By", fs(|f| f.available)),
                (
                    "container.filesystem.inode.used",
                    "{inode}",
                    d.usage.map(|u| u.inodes),
                ),
                (
                    "container.filesystem.inode.free",
                    "{inode}",
                    fs(|f| f.inodes_free),
                ),
                (
                    "container.log.filesystem.usage",
                    "By",
                    d.logs.map(|u| u.bytes),
                ),
            ] {
                f.one(&name(n), unit, UpDown, int(v));
            }
            if d.kubernetes {
                f.add(
                    &name("k8s.container.ephemeral_storage.usage"),
                    "By",
                    UpDown,
                    by(
                        "k8s.container.ephemeral_storage.fs_type",
                        &[
                            ("rootfs", int(d.rootfs.map(|u| u.bytes))),
                            ("logs", int(d.logs.map(|u| u.bytes))),
                        ],
                    ),
                );
            }
            if pod {
                f.one(
                    "k8s.pod.empty_dir.usage",
                    "By",
                    UpDown,
                    int(d.empty_dir.map(|u| u.bytes)),
                );
            }
        }
    }
    // Why it ended: the code as a double (NaN without one), unit "1", with the reason, the
    // run and, when known, the restart count.
    if let Some(e) = c.exit.filter(|_| !pod) {
        let reason = match e.reason {
            ExitReason::Completed => "Completed",
            ExitReason::Error => "Error",
            ExitReason::OomKilled => "OOMKilled",
        };
        // The exporter's own count of this id's runs (docs/exits.md), always there.
        let mut attrs = vec![
            ("container.exit.reason", reason.to_string()),
            ("container.run", e.run.to_string()),
        ];
        if let Some(r) = e.restart_count {
            attrs.push(("container.restart_count", r.to_string()));
        }
        let code = e.code.map_or(f64::NAN, f64::from);
        f.add(
            "container.exit.code",
            "1",
            Gauge,
            vec![(attrs, Num::Double(code))],
        );
    }
    f
}

/// The source names and the figures each reports (`docs/metrics.md`: Docker and Podman make
/// no lookups; the kubelet's log directory makes no calls and has no events).
const SOURCES: [(&str, &[&str]); 4] = [
    (
        "docker",
        &["api_errors", "connected", "reconnects", "calls", "events"],
    ),
    (
        "cri",
        &[
            "api_errors",
            "connected",
            "reconnects",
            "calls",
            "lookups",
            "events",
        ],
    ),
    (
        "podman",
        &["api_errors", "connected", "reconnects", "calls", "events"],
    ),
    (
        "kubelet_logs",
        &["api_errors", "connected", "reconnects", "lookups"],
    ),
];

/// The exporter's own metrics (`docs/metrics.md`, "The exporter's own metrics").
fn own_families(t: &Telemetry, p: &ProcessStats) -> Families {
    use Inst::{Counter, Gauge, UpDown};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    let g = |a: &AtomicU64| Some(Num::Int(a.load(Relaxed)));
    let secs = |a: &AtomicU64| Some(Num::Double(a.load(Relaxed) as f64 / 1e9));
    let mut f = Families::default();
    let x = "container_exporter.";
    let n = |s: &str| format!("{x}{s}");
    f.one(
        &n("containers.tracked"),
        "{container}",
        UpDown,
        g(&t.containers_tracked),
    );
    f.one(
        &n("collections"),
        "{collection}",
        Counter,
        g(&t.collections),
    );
    f.one(
        &n("collection.duration"),
        "s",
        Gauge,
        secs(&t.last_collection_ns),
    );
    f.add(
        &n("read_errors"),
        "{error}",
        Counter,
        by(
            "kind",
            &[
                ("io", g(&t.read_errors_io)),
                ("open", g(&t.read_errors_open)),
                ("malformed", g(&t.read_errors_malformed)),
                ("truncated", g(&t.read_errors_truncated)),
            ],
        ),
    );
    f.add(
        &n("dropped_entries"),
        "{entry}",
        Counter,
        by(
            "kind",
            &[
                ("device", g(&t.dropped_devices)),
                ("interface", g(&t.dropped_interfaces)),
            ],
        ),
    );
    f.add(
        &n("discovery.events"),
        "{event}",
        Counter,
        by(
            "event",
            &[
                ("added", g(&t.discovery_added)),
                ("removed", g(&t.discovery_removed)),
                ("rescan", g(&t.discovery_rescans)),
                ("overflow", g(&t.discovery_overflows)),
            ],
        ),
    );
    f.one(
        &n("final_samples"),
        "{sample}",
        Counter,
        g(&t.final_samples),
    );
    f.add(
        &n("inotify.watches"),
        "{watch}",
        UpDown,
        by(
            "kind",
            &[
                ("directory", g(&t.watches_dirs)),
                ("cgroup_events", g(&t.watches_events)),
            ],
        ),
    );
    f.add(
        &n("inotify.unwatched"),
        "{watch}",
        UpDown,
        by(
            "kind",
            &[
                ("directory", g(&t.unwatched_dirs)),
                ("cgroup_events", g(&t.unwatched_events)),
            ],
        ),
    );
    f.one(
        &n("containers.reopened"),
        "{container}",
        UpDown,
        g(&t.containers_reopened),
    );
    f.add(
        &n("containers.files"),
        "{container}",
        UpDown,
        by(
            "kept",
            &[
                ("all", g(&t.containers_files_all)),
                ("per_tick", g(&t.containers_files_per_tick)),
                ("none", g(&t.containers_reopened)),
            ],
        ),
    );
    f.add(
        &n("output.duration"),
        "s",
        Gauge,
        by(
            "output",
            &[
                ("prometheus", secs(&t.last_render_ns)),
                ("otlp", secs(&t.last_otlp_encode_ns)),
            ],
        ),
    );
    f.one(&n("scrapes"), "{request}", Counter, g(&t.scrapes));
    // The metadata sources' figures, while metadata runs: each source that is on, for the
    // figures it reports.
    if let Some(m) = t.metadata.get() {
        f.one(
            &n("metadata.values_cut"),
            "{value}",
            Counter,
            g(&m.values_cut),
        );
        for (figure, inst, unit) in [
            ("api_errors", Counter, "{error}"),
            ("connected", Gauge, "1"),
            ("reconnects", Counter, "{connection}"),
            ("calls", Counter, "{call}"),
            ("lookups", Counter, "{lookup}"),
            ("events", Counter, "{event}"),
        ] {
            let mut points = vec![];
            for (source, figures) in SOURCES {
                let Some(s) = m.get(source) else { continue };
                if !figures.contains(&figure) {
                    continue;
                }
                let v = match figure {
                    "api_errors" => s.api_errors.load(Relaxed),
                    "connected" => u64::from(s.connected.load(Relaxed)),
                    "reconnects" => s.reconnects.load(Relaxed),
                    "calls" => s.calls.load(Relaxed),
                    "lookups" => s.lookups.load(Relaxed),
                    _ => s.events.load(Relaxed),
                };
                points.push((vec![("source", source.to_string())], Num::Int(v)));
            }
            f.add(&n(&format!("metadata.{figure}")), unit, inst, points);
        }
    }
    // OTLP's own, while OTLP is on (a queue of some capacity).
    if t.otlp_queue_capacity.load(Relaxed) > 0 {
        f.add(
            &n("otlp.exports"),
            "{request}",
            Counter,
            by(
                "outcome",
                &[
                    ("success", g(&t.otlp_exports_succeeded)),
                    ("failure", g(&t.otlp_exports_failed)),
                ],
            ),
        );
        f.one(&n("otlp.retries"), "{attempt}", Counter, g(&t.otlp_retries));
        f.one(
            &n("otlp.dropped_requests"),
            "{request}",
            Counter,
            g(&t.otlp_dropped_requests),
        );
        f.one(
            &n("otlp.rejected_points"),
            "{data_point}",
            Counter,
            g(&t.otlp_rejected_points),
        );
        f.one(
            &n("otlp.queue.length"),
            "{tick}",
            UpDown,
            g(&t.otlp_queue_length),
        );
        f.one(
            &n("otlp.queue.capacity"),
            "{tick}",
            UpDown,
            g(&t.otlp_queue_capacity),
        );
    }
    // The process, as Prometheus' client libraries report it.
    f.one(
        "process.cpu.time",
        "s",
        Counter,
        Some(Num::Double(p.cpu_seconds)),
    );
    f.one(
        "process.memory.usage",
        "By",
        UpDown,
        int(Some(p.resident_bytes)),
    );
    let fd = "{file_descriptor}";
    f.one(
        "process.unix.file_descriptor.count",
        fd,
        UpDown,
        int(Some(p.open_fds)),
    );
    f.one(
        "process.unix.file_descriptor.limit",
        fd,
        UpDown,
        int(Some(p.max_fds)),
    );
    f.one(
        "process.start_time",
        "s",
        Gauge,
        Some(Num::Double(p.start_time_seconds)),
    );
    // The disk thread's, while disk usage is on.
    if let Some(d) = t.disk.get() {
        f.add(
            &n("disk.walks"),
            "{walk}",
            Counter,
            by(
                "outcome",
                &[
                    ("complete", g(&d.walks_complete)),
                    ("denied", g(&d.walks_denied)),
                    ("too_deep", g(&d.walks_too_deep)),
                    ("vanished", g(&d.walks_vanished)),
                ],
            ),
        );
        f.one(&n("disk.entries"), "{entry}", Counter, g(&d.entries));
        f.one(&n("disk.cpu.time"), "s", Counter, secs(&d.cpu_ns));
        f.add(
            &n("disk.layers"),
            "{container}",
            UpDown,
            by(
                "state",
                &[
                    ("found", g(&d.layers_found)),
                    ("unsupported", g(&d.layers_unsupported)),
                    ("unreachable", g(&d.layers_unreachable)),
                    ("pending", g(&d.layers_pending)),
                    ("untrusted", g(&d.layers_untrusted)),
                ],
            ),
        );
        f.add(
            &n("disk.layer.lookups"),
            "{lookup}",
            Counter,
            by(
                "by",
                &[
                    ("runtime", g(&d.lookups_runtime)),
                    ("mountinfo", g(&d.lookups_mountinfo)),
                    ("host_namespace", g(&d.lookups_host_namespace)),
                ],
            ),
        );
        f.one(&n("disk.lag"), "s", Gauge, secs(&d.lag_ns));
    }
    f.add(
        &n("exits"),
        "{container}",
        Counter,
        by(
            "outcome",
            &[
                ("code", g(&t.exits_code)),
                ("no_code", g(&t.exits_no_code)),
                ("timeout", g(&t.exits_timeout)),
                ("unasked", g(&t.exits_unasked)),
            ],
        ),
    );
    f.one(&n("exits.late"), "{container}", Counter, g(&t.exits_late));
    f.add(
        &n("exits.pending"),
        "{exit}",
        UpDown,
        by(
            "waiting_for",
            &[
                ("final_sample", g(&t.exits_held)),
                ("runtime", g(&t.exits_waiting)),
            ],
        ),
    );
    f
}

// -------------------------------------------------------------------------------------------
// Resources.
// -------------------------------------------------------------------------------------------

/// `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs separated by commas, values percent-encoded;
/// a pair without `=` or without a key is left out.
fn otel_attributes(raw: Option<&str>) -> Vec<(String, String)> {
    let mut out = vec![];
    for pair in raw.unwrap_or("").split(',') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.is_empty() {
            continue;
        }
        let mut bytes = vec![];
        let mut it = v.trim().bytes();
        let mut ok = true;
        while let Some(b) = it.next() {
            if b == b'%' {
                let hex: Vec<u8> = it.by_ref().take(2).collect();
                match std::str::from_utf8(&hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) if hex.len() == 2 => bytes.push(v),
                    _ => ok = false,
                }
            } else {
                bytes.push(b);
            }
        }
        if let (true, Ok(v)) = (ok, String::from_utf8(bytes)) {
            out.push((k.to_string(), v));
        }
    }
    out
}

fn string(v: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.to_string())),
    }
}

fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(value),
        ..Default::default()
    }
}

/// A value a source gave (empty or not).
fn given(v: Option<&String>) -> Option<&str> {
    v.map(String::as_str)
}

/// A container's or pod's resource attributes (`docs/metrics.md`, "Resource attributes"):
/// its own over the shared ones (`OTEL_RESOURCE_ATTRIBUTES` without `service.name`, and
/// `host.name`). Where two sources may say (the cgroup path or the labels, the container's
/// metadata or its pod's), the first that gives a value has the say; an empty value is not
/// written (but an empty label's value is: the label is set).
fn container_resource(shared: &[(String, String)], c: &Case) -> Vec<KeyValue> {
    let mut own: Vec<(String, AnyValue)> = vec![];
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            own.push((k.to_string(), string(v)));
        }
    };
    let meta = c.meta.as_deref();
    let pod = c.pod.as_deref();
    match c.kind {
        Kind::Container => {
            put("container.id", Some(&c.id));
            let runtime = match c.runtime {
                Runtime::Docker => "docker",
                Runtime::Containerd => "containerd",
                Runtime::CriO => "cri-o",
                Runtime::Podman => "podman",
            };
            // The runtime's own name over the CRI, else the one the cgroup path says.
            put(
                "container.runtime.name",
                given(meta.and_then(|m| m.runtime_name.as_ref())).or(Some(runtime)),
            );
            // The pod uid from the cgroup path, else the container's label.
            put(
                "k8s.pod.uid",
                given(c.pod_uid.as_ref()).or(given(meta.and_then(|m| m.k8s_pod_uid.as_ref()))),
            );
            put("container.name", given(meta.and_then(|m| m.name.as_ref())));
            put(
                "container.image.name",
                given(meta.and_then(|m| m.image_name.as_ref())),
            );
            put(
                "container.image.id",
                given(meta.and_then(|m| m.image_id.as_ref())),
            );
            // The pod's name and namespace: the container's metadata (which a CRI source fills
            // from the sandbox, else from the labels), else its pod's.
            put(
                "k8s.pod.name",
                given(meta.and_then(|m| m.k8s_pod_name.as_ref()))
                    .or(given(pod.and_then(|p| p.name.as_ref()))),
            );
            put(
                "k8s.namespace.name",
                given(meta.and_then(|m| m.k8s_namespace_name.as_ref()))
                    .or(given(pod.and_then(|p| p.namespace.as_ref()))),
            );
            if let Some(m) = meta {
                put("k8s.container.name", given(m.k8s_container_name.as_ref()));
                let restarts = m.k8s_container_restart_count.map(|n| n.to_string());
                put("k8s.container.restart_count", restarts.as_deref());
                if !m.image_tags.is_empty() {
                    let values = m.image_tags.iter().map(|t| string(t)).collect();
                    own.push((
                        "container.image.tags".into(),
                        AnyValue {
                            value: Some(any_value::Value::ArrayValue(ArrayValue { values })),
                        },
                    ));
                }
                // Allowed labels, empty values too (a label set to "" is set).
                for (k, v) in &m.labels {
                    own.push((format!("container.label.{k}"), string(v)));
                }
            }
        }
        Kind::Pod => {
            put("k8s.pod.uid", Some(&c.id));
            if let Some(p) = pod {
                put("k8s.pod.name", given(p.name.as_ref()));
                put("k8s.namespace.name", given(p.namespace.as_ref()));
                for (k, v) in &p.labels {
                    own.push((format!("k8s.pod.label.{k}"), string(v)));
                }
            }
        }
    }
    let mut all: Vec<KeyValue> = shared
        .iter()
        .filter(|(k, _)| !own.iter().any(|(o, _)| o == k))
        .map(|(k, v)| kv(k, string(v)))
        .collect();
    all.extend(own.into_iter().map(|(k, v)| kv(&k, v)));
    all
}

// -------------------------------------------------------------------------------------------
// Requests, and the state kept for delta temporality.
// -------------------------------------------------------------------------------------------

/// What delta temporality remembers of one resource: each Counter series' last value and
/// when it was sent.
struct Remembered {
    created: SystemTime,
    last: HashMap<String, (Num, u64)>,
    seen: u64,
}

/// The expected requests of a run of ticks.
pub struct Reference {
    /// On every container and pod: `OTEL_RESOURCE_ATTRIBUTES` (never `service.name`, nor
    /// `host.name`), then `host.name`.
    shared: Vec<(String, String)>,
    /// The exporter's own resource.
    own: Vec<KeyValue>,
    /// Counters as deltas (only `delta` asks for it: `lowmemory` stays cumulative, every
    /// figure being observed from the kernel).
    delta: bool,
    started: SystemTime,
    remembered: HashMap<String, Remembered>,
    /// The exporter's own series.
    own_series: Remembered,
    pass: u64,
}

impl Reference {
    /// `host_attributes`: the `OTEL_RESOURCE_ATTRIBUTES` the containers get;
    /// `own_attributes`: the one the exporter's own resource gets (with `service.name`
    /// `service_name`, `service.version` the crate's version, and `host.name`).
    pub fn new(
        host_name: &str,
        host_attributes: Option<&str>,
        service_name: &str,
        own_attributes: Option<&str>,
        temporality: Temporality,
        started: SystemTime,
    ) -> Reference {
        let mut shared = otel_attributes(host_attributes);
        shared.retain(|(k, _)| k != "service.name" && k != "host.name");
        shared.push(("host.name".into(), host_name.into()));
        let mut own: Vec<KeyValue> = otel_attributes(own_attributes)
            .into_iter()
            .filter(|(k, _)| {
                !["service.name", "service.version", "host.name"].contains(&k.as_str())
            })
            .map(|(k, v)| kv(&k, string(&v)))
            .collect();
        own.push(kv("host.name", string(host_name)));
        own.push(kv("service.name", string(service_name)));
        own.push(kv("service.version", string(VERSION)));
        Reference {
            shared,
            own,
            delta: temporality == Temporality::Delta,
            started,
            remembered: HashMap::new(),
            own_series: Remembered {
                created: started,
                last: HashMap::new(),
                seen: 0,
            },
            pass: 0,
        }
    }

    /// A tick's request: every case, then the exporter's own resource. Delta temporality
    /// forgets the containers not in it.
    pub fn tick(
        &mut self,
        now: SystemTime,
        cases: &[&Case],
        t: &Telemetry,
        p: &ProcessStats,
    ) -> ExportMetricsServiceRequest {
        self.pass += 1;
        let mut req = self.departures(now, cases);
        let pass = self.pass;
        self.remembered.retain(|_, r| r.seen == pass);
        let families = own_families(t, p);
        let start = nanos(self.started);
        let metrics = messages(
            families,
            nanos(now),
            start,
            self.delta,
            &mut self.own_series,
        );
        req.resource_metrics
            .push(resource_metrics(self.own.clone(), metrics));
        req
    }

    /// A request of departed containers alone, between ticks: no resource of the exporter's
    /// own, nothing forgotten.
    pub fn departures(&mut self, now: SystemTime, cases: &[&Case]) -> ExportMetricsServiceRequest {
        let pass = self.pass;
        let mut out = vec![];
        for c in cases {
            let r = self.remembered.entry(c.id.clone()).or_insert(Remembered {
                created: c.created,
                last: HashMap::new(),
                seen: pass,
            });
            // A new cgroup under the same id starts its series over; an earlier run showing
            // only its exit leaves the shown run's alone.
            if r.created != c.created && !c.exit_only {
                r.created = c.created;
                r.last.clear();
            }
            r.seen = pass;
            let families = container_families(c, now);
            let metrics = messages(families, nanos(now), nanos(c.created), self.delta, r);
            out.push(resource_metrics(
                container_resource(&self.shared, c),
                metrics,
            ));
        }
        ExportMetricsServiceRequest {
            resource_metrics: out,
        }
    }
}

fn resource_metrics(attributes: Vec<KeyValue>, metrics: Vec<pm::Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource {
            attributes,
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: SCOPE.into(),
                version: VERSION.into(),
                ..Default::default()
            }),
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Families as messages. Sums start at `start_ns` (the cgroup's creation, the exporter's
/// start), Gauges have no start; with `delta`, a Counter's point is its change since the last
/// one sent, starting then — all of it, from `start_ns`, the first time and after it went
/// down (a reset). Integers past `i64::MAX` are sent as `i64::MAX`.
fn messages(
    families: Families,
    now_ns: u64,
    start_ns: u64,
    delta: bool,
    r: &mut Remembered,
) -> Vec<pm::Metric> {
    families
        .0
        .into_iter()
        .map(|f| {
            let data_points = f
                .points
                .into_iter()
                .map(|(attrs, v)| {
                    let (start, v) = match f.inst {
                        Inst::Gauge => (0, v),
                        Inst::Counter if delta => {
                            let mut key = f.name.clone();
                            for (k, a) in &attrs {
                                let _ = write!(key, "\x1f{k}={a}");
                            }
                            let prev = r.last.insert(key, (v, now_ns));
                            match (prev, v) {
                                (Some((Num::Int(p), at)), Num::Int(n)) if n >= p => {
                                    (at, Num::Int(n - p))
                                }
                                (Some((Num::Double(p), at)), Num::Double(n)) if n >= p => {
                                    (at, Num::Double(n - p))
                                }
                                _ => (start_ns, v),
                            }
                        }
                        _ => (start_ns, v),
                    };
                    NumberDataPoint {
                        attributes: attrs.iter().map(|(k, a)| kv(k, string(a))).collect(),
                        start_time_unix_nano: start,
                        time_unix_nano: now_ns,
                        value: Some(match v {
                            Num::Int(i) => number_data_point::Value::AsInt(
                                i64::try_from(i).unwrap_or(i64::MAX),
                            ),
                            Num::Double(d) => number_data_point::Value::AsDouble(d),
                        }),
                        ..Default::default()
                    }
                })
                .collect();
            let data = match f.inst {
                Inst::Gauge => metric::Data::Gauge(pm::Gauge { data_points }),
                Inst::Counter | Inst::UpDown => {
                    let monotonic = f.inst == Inst::Counter;
                    let t = if monotonic && delta {
                        AggregationTemporality::Delta
                    } else {
                        AggregationTemporality::Cumulative
                    };
                    metric::Data::Sum(pm::Sum {
                        data_points,
                        aggregation_temporality: t as i32,
                        is_monotonic: monotonic,
                    })
                }
            };
            pm::Metric {
                name: f.name,
                unit: f.unit.into(),
                data: Some(data),
                ..Default::default()
            }
        })
        .collect()
}

// -------------------------------------------------------------------------------------------
// The comparison.
// -------------------------------------------------------------------------------------------

fn show_value(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => format!("{s:?}"),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(show_value).collect();
            format!("[{}]", items.join(", "))
        }
        other => format!("{other:?}"),
    }
}

/// Attributes in key order, as `k=v` each (OTLP attributes are a map).
fn attribute_list(kvs: &[KeyValue]) -> Vec<String> {
    let mut items: Vec<String> = kvs
        .iter()
        .map(|kv| {
            let v = kv.value.as_ref().map_or("<none>".into(), show_value);
            format!("{}={v}", kv.key)
        })
        .collect();
    items.sort();
    items
}

fn show_attributes(kvs: &[KeyValue]) -> String {
    attribute_list(kvs).join(", ")
}

/// Which resource: its container id, else its pod uid, else its service name.
fn identity(kvs: &[KeyValue]) -> String {
    ["container.id", "k8s.pod.uid", "service.name"]
        .iter()
        .find_map(|k| {
            let kv = kvs.iter().find(|kv| kv.key == *k)?;
            Some(format!(
                "{k}={}",
                kv.value.as_ref().map_or("".into(), show_value)
            ))
        })
        .unwrap_or_else(|| show_attributes(kvs))
}

/// A data point's value.
#[derive(Debug, Clone, Copy)]
enum Val {
    Int(i64),
    Double(f64),
    None,
}

impl Val {
    fn same(self, o: Val) -> bool {
        match (self, o) {
            (Val::Int(a), Val::Int(b)) => a == b,
            (Val::Double(a), Val::Double(b)) => {
                (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
            }
            (Val::None, Val::None) => true,
            _ => false,
        }
    }
}

/// One point: where it is (resource, metric and its kind, attributes), and its times and
/// value.
type Flat = BTreeMap<String, Vec<(u64, u64, Val)>>;

/// Each resource's attributes, by its identity (an id shown twice: an earlier run's exit next
/// to the run shown).
type Resources = BTreeMap<String, Vec<Vec<String>>>;

/// Flattens a request into points keyed by where they are, and counts the resources (a
/// resource may have no point). Checks what holds whatever the order: one scope of the
/// exporter's name and version per resource, a metric name once per resource, a description
/// on every metric, no metric without points.
fn flatten(req: &ExportMetricsServiceRequest, who: &str) -> (Flat, Resources) {
    let mut points = Flat::new();
    let mut resources = Resources::new();
    for rm in &req.resource_metrics {
        let attributes = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes);
        let res = identity(attributes);
        resources
            .entry(res.clone())
            .or_default()
            .push(attribute_list(attributes));
        assert_eq!(rm.scope_metrics.len(), 1, "{who}: {res}: one scope");
        let sm = &rm.scope_metrics[0];
        let scope = sm.scope.as_ref().expect("a scope");
        assert_eq!(
            (scope.name.as_str(), scope.version.as_str()),
            (SCOPE, VERSION),
            "{who}: {res}: the scope"
        );
        let mut names: Vec<&str> = sm.metrics.iter().map(|m| m.name.as_str()).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(
            before,
            names.len(),
            "{who}: {res}: a metric twice: {names:?}"
        );
        for m in &sm.metrics {
            if who == "writer" {
                assert!(
                    !m.description.is_empty(),
                    "{who}: {}: no description",
                    m.name
                );
            }
            let (kind, dps) = match &m.data {
                Some(metric::Data::Sum(s)) => (
                    format!(
                        "Sum(monotonic: {}, {:?})",
                        s.is_monotonic,
                        AggregationTemporality::try_from(s.aggregation_temporality)
                    ),
                    &s.data_points,
                ),
                Some(metric::Data::Gauge(g)) => ("Gauge".to_string(), &g.data_points),
                other => panic!("{who}: {}: neither Sum nor Gauge: {other:?}", m.name),
            };
            assert!(!dps.is_empty(), "{who}: {res}: {} has no point", m.name);
            for p in dps {
                let key = format!(
                    "[{res}] {} unit {:?} {kind} {{{}}}",
                    m.name,
                    m.unit,
                    show_attributes(&p.attributes)
                );
                let v = match p.value {
                    Some(number_data_point::Value::AsInt(i)) => Val::Int(i),
                    Some(number_data_point::Value::AsDouble(d)) => Val::Double(d),
                    None => Val::None,
                };
                points
                    .entry(key)
                    .or_default()
                    .push((p.start_time_unix_nano, p.time_unix_nano, v));
            }
        }
    }
    (points, resources)
}

/// Data points in a request.
pub fn count_points(req: &ExportMetricsServiceRequest) -> usize {
    req.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(metric::Data::Sum(s)) => s.data_points.len(),
            Some(metric::Data::Gauge(g)) => g.data_points.len(),
            _ => 0,
        })
        .sum()
}

/// Fails, listing what differs (at most 40 lines), unless the writer's request holds the same
/// resources, metrics and points as the expected one, in whatever order.
pub fn assert_same(
    expected: &ExportMetricsServiceRequest,
    writer: &ExportMetricsServiceRequest,
    context: &str,
) {
    let (want, want_res) = flatten(expected, "expected");
    let (got, got_res) = flatten(writer, "writer");
    let mut diff = vec![];
    let none = vec![];
    for r in want_res
        .keys()
        .chain(got_res.keys().filter(|r| !want_res.contains_key(*r)))
    {
        let (mut w, mut g) = (
            want_res.get(r).unwrap_or(&none).clone(),
            got_res.get(r).unwrap_or(&none).clone(),
        );
        w.sort();
        g.sort();
        if w == g {
            continue;
        }
        if let ([w], [g]) = (&w[..], &g[..]) {
            let only = |a: &Vec<String>, b: &Vec<String>| -> Vec<String> {
                a.iter().filter(|x| !b.contains(x)).cloned().collect()
            };
            diff.push(format!(
                "resource [{r}]: expected {:?}, the writer has {:?} instead",
                only(w, g),
                only(g, w)
            ));
        } else {
            diff.push(format!(
                "resource [{r}]: expected {} resource(s) {w:?}, the writer has {} {g:?}",
                w.len(),
                g.len()
            ));
        }
    }
    for (k, w) in &want {
        match got.get(k) {
            None => diff.push(format!("missing from the writer: {k} = {w:?}")),
            Some(g) => {
                let mut w = w.clone();
                let mut g = g.clone();
                let order = |a: &(u64, u64, Val), b: &(u64, u64, Val)| (a.0, a.1).cmp(&(b.0, b.1));
                w.sort_by(order);
                g.sort_by(order);
                let same = w.len() == g.len()
                    && w.iter()
                        .zip(&g)
                        .all(|(a, b)| a.0 == b.0 && a.1 == b.1 && a.2.same(b.2));
                if !same {
                    diff.push(format!(
                        "{k}\n    expected (start, time, value) {w:?}\n    the writer has       {g:?}"
                    ));
                }
            }
        }
    }
    for (k, g) in &got {
        if !want.contains_key(k) {
            diff.push(format!("not expected, in the writer: {k} = {g:?}"));
        }
    }
    if !diff.is_empty() {
        let n = diff.len();
        diff.truncate(40);
        panic!(
            "{context}: the writer's request differs from the expected one in {n} places:\n  {}",
            diff.join("\n  ")
        );
    }
}
