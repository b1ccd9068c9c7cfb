//! The cAdvisor page's lines (`--prometheus-names cadvisor`): each family of `CADVISOR`
//! written for one container from its metric's points, picked, relabelled and converted as
//! the table says, and the host's `machine_*` lines. The label blocks and the page around
//! them are the page's (`export::prom`).

use std::time::SystemTime;

use crate::collect::ContainerState;
use crate::discovery::Kind;
use crate::disk::DiskSample;
use crate::export::text::{LineSink, header, push_label};
use crate::host::block::BlockNames;
use crate::host::machine::Machine;
use crate::metrics::{Metric, Sink, Value};

use super::table::{
    CADVISOR_IGNORED_INTERFACES, CADVISOR_MACHINE, CadvisorFamily, Conv, Label, Select,
};

/// Seconds since the epoch.
fn epoch(t: SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Whether cAdvisor leaves this interface out of a container's network.
fn ignored_interface(name: &str) -> bool {
    // By bytes: a name's first characters may be more than one byte each.
    CADVISOR_IGNORED_INTERFACES.iter().any(|p| {
        name.as_bytes()
            .get(..p.len())
            .is_some_and(|b| b.eq_ignore_ascii_case(p.as_bytes()))
    })
}

/// Writes one attribute as the labels `label` says (see [`Label`]).
fn push_cadvisor_label(out: &mut Vec<u8>, label: &Label, v: &str, devices: &mut BlockNames) {
    match label {
        Label::Skip => {}
        Label::Name(name) => push_label(out, name, v),
        Label::Title(name) => {
            let mut buf = [0u8; 32];
            match v.as_bytes() {
                [first, rest @ ..] if v.len() <= buf.len() => {
                    buf[0] = first.to_ascii_uppercase();
                    buf[1..v.len()].copy_from_slice(rest);
                    push_label(out, name, std::str::from_utf8(&buf[..v.len()]).unwrap_or(v));
                }
                _ => push_label(out, name, v),
            }
        }
        Label::Interface => push_label(out, "interface", v),
        Label::Device => push_label(out, "device", devices.name(v)),
        Label::DeviceNumbers => {
            push_label(out, "device", devices.name(v));
            let (major, minor) = v.split_once(':').unwrap_or((v, ""));
            push_label(out, "major", major);
            push_label(out, "minor", minor);
        }
    }
}

/// One container's lines of a cAdvisor family: its metric's points, picked, relabelled and
/// converted as the table says.
pub fn cadvisor_lines(
    f: &'static CadvisorFamily,
    state: &ContainerState,
    now: SystemTime,
    sink: &mut LineSink<'_>,
    devices: &mut BlockNames,
) {
    let Some(sample) = state.sample() else {
        return;
    };
    // An earlier run of a restarted id shows only its exit series.
    if !state.shows(f.metric) || (f.under_quota && sample.cpu.quota_us.is_none()) {
        return;
    }
    if let Select::Disk(raw) = f.select {
        disk_line(raw, state, sink);
        return;
    }
    if let Select::Sample(raw, _) = f.select {
        if let Some(v) = raw(sample) {
            sink.line(f.fixed.iter().copied(), v);
        }
        return;
    }
    struct Cad<'s, 'p, 'd> {
        f: &'static CadvisorFamily,
        sink: &'s mut LineSink<'p>,
        devices: &'d mut BlockNames,
        state: &'d ContainerState,
        now: SystemTime,
        sum: Option<f64>,
    }
    impl Sink for Cad<'_, '_, '_> {
        fn point(&mut self, _m: Metric, attrs: &[&str], value: Value) {
            match self.f.select {
                Select::Sum => {
                    *self.sum.get_or_insert(0.0) += value.as_f64();
                    return;
                }
                Select::Attr(i, want) if attrs.get(i) != Some(&want) => return,
                _ => {}
            }
            let left_out = self
                .f
                .labels
                .iter()
                .zip(attrs)
                .any(|(l, v)| matches!(l, Label::Interface) && ignored_interface(v));
            if left_out {
                return;
            }
            // The clock only for the rows that convert with it (a clock read per family and
            // container would cost more than the line).
            let value = match self.f.conv {
                Conv::Same => value,
                Conv::StartTime => Value::Double(epoch(self.now) - value.as_f64()),
                Conv::LastSeen => {
                    let at = self.state.sampled_at(self.now).unwrap_or(self.now);
                    Value::Int(epoch(at) as u64)
                }
            };
            let out = self.sink.open();
            for (name, v) in self.f.fixed {
                push_label(out, name, v);
            }
            for (label, v) in self.f.labels.iter().zip(attrs) {
                push_cadvisor_label(out, label, v, self.devices);
            }
            self.sink.close(value);
        }
    }
    let mut cad = Cad {
        f,
        sink,
        devices,
        state,
        now,
        sum: None,
    };
    state.emit_metric(f.metric, now, &mut cad);
    if let Some(total) = cad.sum {
        cad.sink.line(f.fixed.iter().copied(), Value::Double(total));
    }
}

/// A container's line of a cAdvisor filesystem family, with its `device`: the source of the
/// filesystem holding its writable layer. Containers only: cAdvisor has none for a pod's own
/// cgroup.
fn disk_line(
    raw: fn(&DiskSample) -> Option<Value>,
    state: &ContainerState,
    sink: &mut LineSink<'_>,
) {
    if state.kind != Kind::Container {
        return;
    }
    let Some(d) = state.disk.as_deref() else {
        return;
    };
    if let (Some(v), Some(device)) = (raw(d), d.device.as_deref()) {
        sink.line(std::iter::once(("device", device)), v);
    }
}

/// The host's `machine_*` lines (`machine_cpu_cores`, `machine_memory_bytes`), each with its
/// header: the same on every page, so written once.
pub fn machine_lines(m: &Machine) -> Vec<u8> {
    let mut out = Vec::new();
    for f in CADVISOR_MACHINE {
        if let Some(v) = (f.value)(m) {
            out.extend_from_slice(header(f.name, f.help, "gauge").as_bytes());
            out.extend_from_slice(format!("{} {v}\n", f.name).as_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_left_out_by_prefix_whatever_their_bytes() {
        for name in ["lo", "LO", "lowpan0", "veth1a2b", "docker0", "nerdctl0"] {
            assert!(ignored_interface(name), "{name}");
        }
        // A multi-byte character where a prefix would end must not split it.
        for name in ["eth0", "l\u{e9}", "d\u{f6}cker", "", "l", "ve"] {
            assert!(!ignored_interface(name), "{name}");
        }
    }
}
