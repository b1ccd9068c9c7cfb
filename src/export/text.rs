//! The Prometheus text format's pieces, shared by both pages (the OpenTelemetry one in
//! `export::prom` and the cAdvisor one in `export::cadvisor`): label values escaped, label
//! names sanitized, labels and values appended to a line, `# HELP`/`# TYPE` headers, and the
//! [`LineSink`] that writes one family's samples for one container.

use crate::metrics::{Instrument, Metric, Sink, Value};

/// Appends `s` as the inside of a quoted label value: `\`, `"` and newline escaped.
pub fn escape_label_value(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// A label name from arbitrary text: `[a-zA-Z0-9_]`, anything else becomes `_`.
pub fn label_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Appends `name="value"`, after a comma unless it is the first label of the block.
pub fn push_label(out: &mut Vec<u8>, name: &str, value: &str) {
    if out.last().is_some_and(|&b| b != b'{') {
        out.push(b',');
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    escape_label_value(out, value);
    out.push(b'"');
}

/// Appends a sample's value: integers as they are, doubles shortest, `NaN`, `+Inf`, `-Inf`.
pub fn push_value(out: &mut Vec<u8>, v: Value) {
    match v {
        Value::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        Value::Double(d) if d.is_finite() => {
            out.extend_from_slice(ryu::Buffer::new().format_finite(d).as_bytes())
        }
        Value::Double(d) if d.is_nan() => out.extend_from_slice(b"NaN"),
        Value::Double(d) if d > 0.0 => out.extend_from_slice(b"+Inf"),
        Value::Double(_) => out.extend_from_slice(b"-Inf"),
    }
}

/// The `# TYPE` of an instrument's family.
pub fn prom_type(i: Instrument) -> &'static str {
    match i {
        Instrument::Counter => "counter",
        Instrument::UpDownCounter | Instrument::Gauge => "gauge",
    }
}

/// A family's `# HELP` and `# TYPE` lines (the help text escaped as the format wants).
pub fn header(name: &str, help: &str, kind: &str) -> String {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    format!("# HELP {name} {help}\n# TYPE {name} {kind}\n")
}

/// Writes one family's samples for one container: `name{identity,labels…} value`.
pub struct LineSink<'a> {
    pub page: &'a mut Vec<u8>,
    /// The family's name.
    pub name: &'a str,
    /// The names of the metric's attributes as labels, for [`Sink::point`].
    pub attr_labels: &'a [String],
    /// The container's identity labels, `a="…",b="…"` without braces.
    pub identity: &'a [u8],
}

impl LineSink<'_> {
    /// One sample with labels given by name (the cAdvisor families).
    pub fn line<'l>(&mut self, labels: impl Iterator<Item = (&'l str, &'l str)>, value: Value) {
        let out = self.open();
        for (name, v) in labels {
            push_label(out, name, v);
        }
        self.close(value);
    }

    /// Starts a line up to its identity labels: the caller appends the rest of the labels,
    /// then calls [`close`](Self::close).
    pub fn open(&mut self) -> &mut Vec<u8> {
        let out = &mut *self.page;
        out.extend_from_slice(self.name.as_bytes());
        out.push(b'{');
        out.extend_from_slice(self.identity);
        out
    }

    /// Ends the line [`open`](Self::open) started with its value.
    pub fn close(&mut self, value: Value) {
        let out = &mut *self.page;
        out.extend_from_slice(b"} ");
        push_value(out, value);
        out.push(b'\n');
    }
}

impl Sink for LineSink<'_> {
    fn point(&mut self, _metric: Metric, attrs: &[&str], value: Value) {
        let labels = self.attr_labels;
        let out = self.open();
        for (name, v) in labels.iter().zip(attrs) {
            push_label(out, name, v);
        }
        self.close(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_label_values_are_escaped() {
        let mut out = Vec::new();
        escape_label_value(&mut out, "a\"b\\c\nd é");
        assert_eq!(out, "a\\\"b\\\\c\\nd é".as_bytes());
        assert_eq!(
            label_name("io.kubernetes/pod-name"),
            "io_kubernetes_pod_name"
        );
        assert_eq!(label_name("1x"), "_1x");
    }

    #[test]
    fn lines() {
        let mut page = Vec::new();
        let labels = ["interface".to_string()];
        let mut sink = LineSink {
            page: &mut page,
            name: "x_total",
            attr_labels: &labels,
            identity: b"id=\"/a\"",
        };
        sink.point(Metric::NetworkIo, &["eth0"], Value::Int(3));
        sink.line([("cpu", "total")].into_iter(), Value::Double(f64::NAN));
        let mut empty = LineSink {
            identity: b"",
            ..sink
        };
        empty.line(std::iter::empty(), Value::Double(f64::INFINITY));
        assert_eq!(
            String::from_utf8(page).unwrap(),
            "x_total{id=\"/a\",interface=\"eth0\"} 3\n\
             x_total{id=\"/a\",cpu=\"total\"} NaN\n\
             x_total{} +Inf\n"
        );
    }
}
