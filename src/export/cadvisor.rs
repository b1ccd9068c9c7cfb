//! The cAdvisor-compatible page (`--prometheus-names cadvisor`): the names and labels that
//! existing cAdvisor dashboards and kube-prometheus recording rules query
//! (`container_cpu_usage_seconds_total`, `container_memory_working_set_bytes`, …, with `id`,
//! `name`, `image`, `namespace`, `pod`, `container`), from the same samples, so the exporter
//! can replace cAdvisor without touching them.
//!
//! Differences that remain: `device` on the `container_fs_*` series is `MAJ:MIN` (cAdvisor
//! resolves a device path), `container_threads` counts tasks from `pids.current`, and
//! families cAdvisor derives from other sources (filesystem usage, `container_last_seen`,
//! per-CPU usage) are absent.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::cgroup::sample::CgroupSample;
use crate::collect::ContainerState;
use crate::metrics::Value;

/// Receives one sample: extra labels and the value.
pub type Out<'a> = dyn FnMut(&[(&str, &str)], Value) + 'a;

pub struct Family {
    pub name: &'static str,
    pub kind: &'static str,
    pub help: &'static str,
    pub emit: fn(&ContainerState, SystemTime, &mut Out<'_>),
}

fn secs(ns: Option<u64>) -> Option<Value> {
    ns.map(|v| Value::Double(v as f64 / 1e9))
}

fn psi_secs(us: Option<u64>) -> Option<Value> {
    us.map(|v| Value::Double(v as f64 / 1e6))
}

fn one(out: &mut Out<'_>, v: Option<Value>) {
    if let Some(v) = v {
        out(&[], v);
    }
}

fn int(v: Option<u64>) -> Option<Value> {
    v.map(Value::Int)
}

fn with(s: &ContainerState, f: impl FnOnce(&CgroupSample)) {
    if let Some(sample) = s.sample() {
        f(sample);
    }
}

macro_rules! fam {
    ($name:literal, $kind:literal, $help:literal, |$s:ident, $out:ident| $body:expr) => {
        Family {
            name: $name,
            kind: $kind,
            help: $help,
            emit: |state, _now, $out| with(state, |$s| $body),
        }
    };
}

macro_rules! net {
    ($name:literal, $help:literal, $field:ident) => {
        fam!($name, "counter", $help, |s, out| for i in &s.net {
            out(&[("interface", &i.name.as_str())], Value::Int(i.$field));
        })
    };
}

macro_rules! disk {
    ($name:literal, $help:literal, $field:ident) => {
        fam!($name, "counter", $help, |s, out| for d in &s.io {
            if let Some(v) = d.$field {
                out(
                    &[("device", &format!("{}:{}", d.major, d.minor))],
                    Value::Int(v),
                );
            }
        })
    };
}

macro_rules! psi {
    ($name:literal, $help:literal, $psi:ident, $field:ident) => {
        fam!($name, "counter", $help, |s, out| {
            one(out, psi_secs(s.$psi.and_then(|p| p.$field)))
        })
    };
}

pub static FAMILIES: &[Family] = &[
    fam!(
        "container_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed in seconds.",
        |s, out| if let Some(v) = secs(s.cpu.usage_ns) {
            out(&[("cpu", "total")], v)
        }
    ),
    fam!(
        "container_cpu_user_seconds_total",
        "counter",
        "Cumulative user cpu time consumed in seconds.",
        |s, out| one(out, secs(s.cpu.user_ns))
    ),
    fam!(
        "container_cpu_system_seconds_total",
        "counter",
        "Cumulative system cpu time consumed in seconds.",
        |s, out| one(out, secs(s.cpu.system_ns))
    ),
    fam!(
        "container_cpu_cfs_periods_total",
        "counter",
        "Number of elapsed enforcement period intervals.",
        |s, out| one(out, int(s.cpu.periods))
    ),
    fam!(
        "container_cpu_cfs_throttled_periods_total",
        "counter",
        "Number of throttled period intervals.",
        |s, out| one(out, int(s.cpu.throttled_periods))
    ),
    fam!(
        "container_cpu_cfs_throttled_seconds_total",
        "counter",
        "Total time duration the container has been throttled.",
        |s, out| one(out, secs(s.cpu.throttled_ns))
    ),
    fam!(
        "container_spec_cpu_quota",
        "gauge",
        "CPU quota of the container.",
        |s, out| one(out, int(s.cpu.quota_us))
    ),
    fam!(
        "container_spec_cpu_period",
        "gauge",
        "CPU period of the container.",
        |s, out| one(out, int(s.cpu.quota_us.and(s.cpu.period_us)))
    ),
    fam!(
        "container_memory_usage_bytes",
        "gauge",
        "Current memory usage in bytes, including all memory regardless of when it was accessed.",
        |s, out| one(out, int(s.memory.usage))
    ),
    fam!(
        "container_memory_working_set_bytes",
        "gauge",
        "Current working set in bytes.",
        |s, out| one(out, int(s.memory.working_set()))
    ),
    fam!(
        "container_memory_rss",
        "gauge",
        "Size of RSS in bytes.",
        |s, out| one(out, int(s.memory.anon))
    ),
    fam!(
        "container_memory_cache",
        "gauge",
        "Number of bytes of page cache memory.",
        |s, out| one(out, int(s.memory.file))
    ),
    fam!(
        "container_memory_swap",
        "gauge",
        "Container swap usage in bytes.",
        |s, out| one(out, int(s.memory.swap))
    ),
    fam!(
        "container_memory_max_usage_bytes",
        "gauge",
        "Maximum memory usage recorded in bytes.",
        |s, out| one(out, int(s.memory.peak))
    ),
    fam!(
        "container_spec_memory_limit_bytes",
        "gauge",
        "Memory limit for the container.",
        |s, out| one(out, int(s.memory.limit))
    ),
    fam!(
        "container_oom_events_total",
        "counter",
        "Count of out of memory events observed for the container.",
        |s, out| one(out, int(s.memory.oom_kills))
    ),
    fam!(
        "container_threads",
        "gauge",
        "Number of threads running inside the container.",
        |s, out| one(out, int(s.pids.current))
    ),
    fam!(
        "container_threads_max",
        "gauge",
        "Maximum number of threads allowed inside the container, infinity if value is zero.",
        |s, out| one(out, int(s.pids.limit))
    ),
    net!(
        "container_network_receive_bytes_total",
        "Cumulative count of bytes received.",
        rx_bytes
    ),
    net!(
        "container_network_transmit_bytes_total",
        "Cumulative count of bytes transmitted.",
        tx_bytes
    ),
    net!(
        "container_network_receive_packets_total",
        "Cumulative count of packets received.",
        rx_packets
    ),
    net!(
        "container_network_transmit_packets_total",
        "Cumulative count of packets transmitted.",
        tx_packets
    ),
    net!(
        "container_network_receive_errors_total",
        "Cumulative count of errors encountered while receiving.",
        rx_errors
    ),
    net!(
        "container_network_transmit_errors_total",
        "Cumulative count of errors encountered while transmitting.",
        tx_errors
    ),
    net!(
        "container_network_receive_packets_dropped_total",
        "Cumulative count of packets dropped while receiving.",
        rx_dropped
    ),
    net!(
        "container_network_transmit_packets_dropped_total",
        "Cumulative count of packets dropped while transmitting.",
        tx_dropped
    ),
    disk!(
        "container_fs_reads_bytes_total",
        "Cumulative count of bytes read.",
        read_bytes
    ),
    disk!(
        "container_fs_writes_bytes_total",
        "Cumulative count of bytes written.",
        write_bytes
    ),
    disk!(
        "container_fs_reads_total",
        "Cumulative count of reads completed.",
        read_ops
    ),
    disk!(
        "container_fs_writes_total",
        "Cumulative count of writes completed.",
        write_ops
    ),
    psi!(
        "container_pressure_cpu_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to CPU pressure.",
        cpu_pressure,
        some_us
    ),
    psi!(
        "container_pressure_cpu_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to CPU congestion.",
        cpu_pressure,
        full_us
    ),
    psi!(
        "container_pressure_memory_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to memory pressure.",
        memory_pressure,
        some_us
    ),
    psi!(
        "container_pressure_memory_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to memory congestion.",
        memory_pressure,
        full_us
    ),
    psi!(
        "container_pressure_io_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to IO pressure.",
        io_pressure,
        some_us
    ),
    psi!(
        "container_pressure_io_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to IO congestion.",
        io_pressure,
        full_us
    ),
    Family {
        name: "container_start_time_seconds",
        kind: "gauge",
        help: "Start time of the container since unix epoch in seconds.",
        emit: |state, _now, out| {
            if let Ok(d) = state.created.duration_since(UNIX_EPOCH) {
                out(&[], Value::Double(d.as_secs_f64()));
            }
        },
    },
];
