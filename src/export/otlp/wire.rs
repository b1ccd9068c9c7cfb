//! The request of one tick written straight as protobuf, without building a message tree:
//! what `Exporter::submit` sends. Each container's and pod's `ResourceMetrics` is written from
//! [`METRICS`] and [`HostResource::attributes`], the exporter's own from [`SELF_METRICS`] and
//! [`own_resource`]. The tests decode it with `opentelemetry-proto`, compare it with a request
//! built apart (`tests/common/otlp_reference.rs`) and check it is prost's own encoding of it.
//! Why by hand: `docs/dependencies.md` (prost's tree costs ten times the time and 284,000
//! allocations per tick for 1,000 containers).
//!
//! How: the bytes are written forwards into one reused `Vec<u8>`, fields in tag order as prost
//! does (the protobuf primitives are at the end of this file). Data points have an exact size
//! computed first; an enclosing message gets a length prefix reserved at the size it had last
//! time (per metric), filled in when it is closed (the body shifted when the guess was wrong).
//!
//! What never changes is encoded once: each metric's `name`/`description`/`unit`, `Sum`
//! temporality and monotonicity, and attribute keys (`MetricHead`); the scope; the exporter's
//! own `Resource`; and each container's `Resource` (cached per container id, rebuilt when its
//! metadata `Arc` changes, dropped when the container is no longer encoded). A tick allocates
//! nothing once the containers are known.
//!
//! Delta temporality keeps the previous value of each series per container (and one set for
//! the exporter itself), in a list in emission order with a cursor: a tick that emits the same
//! series in the same order finds each one in one comparison and allocates nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::config::Temporality;
use crate::collect::{Described, Show};
use crate::discovery::Kind;
use crate::metadata::{ContainerMeta, PodMeta};
use crate::metrics::{Instrument, METRICS, Metric, Sink, Value};
use crate::resource::{AttrValue, HostResource, own_resource};
use crate::telemetry::{ProcessStats, SELF_METRICS, Telemetry};

/// The instrumentation scope of every `ScopeMetrics` (and the user agent's product).
pub const SCOPE_NAME: &str = "container-exporter";
/// The scope's version and the exporter's own `service.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

// Field tags (field number << 3 | wire type), of the messages written here.
/// Field 1, length-delimited: `ExportMetricsServiceRequest.resource_metrics`,
/// `ResourceMetrics.resource`, `Resource.attributes`, `ScopeMetrics.scope`,
/// `InstrumentationScope.name`, `Metric.name`, `Sum/Gauge.data_points`, `KeyValue.key`,
/// `AnyValue.string_value`, `ArrayValue.values`.
const F1_LEN: u8 = 0x0a;
/// Field 2, length-delimited: `ResourceMetrics.scope_metrics`, `ScopeMetrics.metrics`,
/// `InstrumentationScope.version`, `Metric.description`, `KeyValue.value`.
const F2_LEN: u8 = 0x12;
const F3_LEN: u8 = 0x1a; // `Metric.unit`
const GAUGE: u8 = 0x2a; // `Metric.gauge`: field 5
const SUM: u8 = 0x3a; // `Metric.sum`: field 7
const SUM_TEMPORALITY: u8 = 0x10; // `Sum.aggregation_temporality`: field 2, varint
const SUM_MONOTONIC: u8 = 0x18; // `Sum.is_monotonic`: field 3, varint
const POINT_START: u8 = 0x11; // `NumberDataPoint.start_time_unix_nano`: field 2, fixed64
const POINT_TIME: u8 = 0x19; // `NumberDataPoint.time_unix_nano`: field 3, fixed64
const POINT_DOUBLE: u8 = 0x21; // `NumberDataPoint.as_double`: field 4, fixed64
const POINT_INT: u8 = 0x31; // `NumberDataPoint.as_int`: field 6, sfixed64
const POINT_ATTR: u8 = 0x3a; // `NumberDataPoint.attributes`: field 7
const ANY_ARRAY: u8 = 0x2a; // `AnyValue.array_value`: field 5

/// `AggregationTemporality` values.
const AGGREGATION_DELTA: usize = 1;
const AGGREGATION_CUMULATIVE: usize = 2;

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// What is written for every point of one metric, whatever the resource: one per row of a
/// table ([`METRICS`] under containers' or pods' names, [`SELF_METRICS`]).
struct MetricHead {
    /// `name`, `description` and `unit` fields.
    head: Vec<u8>,
    /// `GAUGE` or `SUM`.
    data_tag: u8,
    /// After the data points: a `Sum`'s temporality and monotonicity.
    trailer: Vec<u8>,
    /// Each attribute key as a `KeyValue.key` field.
    keys: Vec<Vec<u8>>,
    instrument: Instrument,
}

impl MetricHead {
    fn new(
        name: &str,
        description: &str,
        unit: &str,
        instrument: Instrument,
        attributes: &[&str],
        delta: bool,
    ) -> MetricHead {
        let mut head = Vec::new();
        put_str_field(&mut head, F1_LEN, name);
        put_str_field(&mut head, F2_LEN, description);
        put_str_field(&mut head, F3_LEN, unit);
        let mut trailer = Vec::new();
        let data_tag = match instrument {
            Instrument::Gauge => GAUGE,
            Instrument::Counter | Instrument::UpDownCounter => {
                let monotonic = instrument == Instrument::Counter;
                let t = if monotonic && delta {
                    AGGREGATION_DELTA
                } else {
                    AGGREGATION_CUMULATIVE
                };
                trailer.push(SUM_TEMPORALITY);
                put_varint(&mut trailer, t);
                if monotonic {
                    trailer.extend_from_slice(&[SUM_MONOTONIC, 1]);
                }
                SUM
            }
        };
        let keys = attributes
            .iter()
            .map(|k| {
                let mut f = Vec::new();
                put_str_field(&mut f, F1_LEN, k);
                f
            })
            .collect();
        MetricHead {
            head,
            data_tag,
            trailer,
            keys,
            instrument,
        }
    }
}

/// One `KeyValue` of a `Resource.attributes` (tag and length included).
fn put_attribute(buf: &mut Vec<u8>, key: &str, value: &AttrValue) {
    let kv = open(buf, F1_LEN, 1);
    put_str_field(buf, F1_LEN, key);
    let any = open(buf, F2_LEN, 1);
    match value {
        // `AnyValue.string_value` is in a oneof: written even when empty.
        AttrValue::Str(s) => put_len_field(buf, F1_LEN, s.as_bytes()),
        AttrValue::Strs(items) => {
            let array = open(buf, ANY_ARRAY, 1);
            for item in items {
                let any = open(buf, F1_LEN, 1);
                put_len_field(buf, F1_LEN, item.as_bytes());
                close(buf, any, 1);
            }
            close(buf, array, 1);
        }
    }
    close(buf, any, 1);
    close(buf, kv, 1);
}

/// `ResourceMetrics.resource` (tag and length included) with these attributes, in order.
fn put_resource<'a>(
    buf: &mut Vec<u8>,
    attributes: impl IntoIterator<Item = (&'a str, &'a AttrValue)>,
) {
    let at = open(buf, F1_LEN, 2);
    for (k, v) in attributes {
        put_attribute(buf, k, v);
    }
    close(buf, at, 2);
}

/// `ScopeMetrics.scope` (tag and length included).
fn put_scope(buf: &mut Vec<u8>) {
    let at = open(buf, F1_LEN, 1);
    put_str_field(buf, F1_LEN, SCOPE_NAME);
    put_str_field(buf, F2_LEN, VERSION);
    close(buf, at, 1);
}

/// The previous value of one series (delta temporality).
struct Series {
    /// The metric's row in its table.
    metric: u16,
    /// The attribute values, `\x1f`-separated, in [`SeriesSet::keys`].
    key: (u32, u32),
    value: Value,
    at_ns: u64,
}

/// The previous values of one resource's series, in the order they were last emitted.
#[derive(Default)]
struct SeriesSet {
    series: Vec<Series>,
    keys: Vec<u8>,
    /// Where the next series is expected (reset per tick).
    cursor: usize,
    /// The key being looked up (reused).
    key: Vec<u8>,
}

impl SeriesSet {
    fn find(&self, metric: u16, key: &[u8]) -> Option<usize> {
        let is = |s: &Series| {
            s.metric == metric && &self.keys[s.key.0 as usize..s.key.1 as usize] == key
        };
        if self.series.get(self.cursor).is_some_and(is) {
            return Some(self.cursor);
        }
        self.series.iter().position(is)
    }

    /// The delta since the previous report and its start; everything since `start_ns` the first time and after a reset.
    fn delta(
        &mut self,
        metric: u16,
        attrs: &[&str],
        value: Value,
        now_ns: u64,
        start_ns: u64,
    ) -> (u64, Value) {
        self.key.clear();
        for a in attrs {
            self.key.push(0x1f);
            self.key.extend_from_slice(a.as_bytes());
        }
        match self.find(metric, &self.key) {
            None => {
                let from = self.keys.len() as u32;
                self.keys.extend_from_slice(&self.key);
                let s = Series {
                    metric,
                    key: (from, self.keys.len() as u32),
                    value,
                    at_ns: now_ns,
                };
                let at = self.cursor.min(self.series.len());
                self.series.insert(at, s);
                self.cursor = at + 1;
                (start_ns, value)
            }
            Some(i) => {
                self.cursor = i + 1;
                let s = &mut self.series[i];
                let out = match (value, s.value) {
                    (Value::Int(v), Value::Int(p)) if v >= p => Some(Value::Int(v - p)),
                    (Value::Double(v), Value::Double(p)) if v >= p => Some(Value::Double(v - p)),
                    _ => None,
                };
                let start = if out.is_some() { s.at_ns } else { start_ns };
                s.value = value;
                s.at_ns = now_ns;
                (start, out.unwrap_or(value))
            }
        }
    }
}

/// One container's state across ticks.
struct Slot {
    meta: Option<Arc<ContainerMeta>>,
    pod: Option<Arc<PodMeta>>,
    /// `ResourceMetrics.resource`, tag and length included.
    resource: Vec<u8>,
    /// The cgroup's creation: a new one under the same id starts its series over.
    created: SystemTime,
    series: SeriesSet,
    seen: u64,
}

/// Reserved length sizes, as last used (a good guess for the next message of the kind).
struct Reserve {
    resource_metrics: u8,
    scope_metrics: u8,
    /// Per row of the metric table.
    metric: Vec<u8>,
    data: Vec<u8>,
}

impl Reserve {
    fn new(metrics: usize) -> Reserve {
        Reserve {
            resource_metrics: 2,
            scope_metrics: 2,
            metric: vec![1; metrics],
            data: vec![1; metrics],
        }
    }

    /// Opens a `ResourceMetrics` with `resource` and its `ScopeMetrics` with `scope`: where
    /// their lengths go, for [`WireSink::finish`].
    fn open(&self, buf: &mut Vec<u8>, resource: &[u8], scope: &[u8]) -> (usize, usize) {
        let rm = open(buf, F1_LEN, self.resource_metrics);
        buf.extend_from_slice(resource);
        let sm = open(buf, F2_LEN, self.scope_metrics);
        buf.extend_from_slice(scope);
        (rm, sm)
    }
}

/// The exporter's own `ResourceMetrics`: its resource, its self-metrics' heads and, with
/// delta temporality, the previous values of its counters.
struct Own {
    /// `ResourceMetrics.resource`, tag and length included.
    resource: Vec<u8>,
    heads: Vec<MetricHead>,
    reserve: Reserve,
    series: SeriesSet,
    /// The exporter's start: the start time of its Sums.
    started: SystemTime,
}

/// Writes requests as protobuf; keeps the per-container state that spans ticks (encoded
/// resources, previous values for delta temporality), bounded by the containers last
/// encoded.
pub struct WireEncoder {
    host: HostResource,
    delta: bool,
    /// `ScopeMetrics.scope`, tag and length included.
    scope: Vec<u8>,
    /// Containers' metrics, then pods' (their names differ).
    heads: Vec<MetricHead>,
    pod_heads: Vec<MetricHead>,
    slots: HashMap<String, Slot>,
    reserve: Reserve,
    own: Own,
    pass: u64,
    /// Where each `ResourceMetrics` of the last request ends, and the points up to there.
    ends: Vec<(usize, usize)>,
}

impl WireEncoder {
    /// `host`: the attributes every container and pod shares (`host.name`,
    /// `OTEL_RESOURCE_ATTRIBUTES` without `service.name`); `service_name` and
    /// `resource_attributes` (the raw `OTEL_RESOURCE_ATTRIBUTES`): for the exporter's own
    /// resource ([`own_resource`]).
    pub fn new(
        host: HostResource,
        service_name: String,
        resource_attributes: Option<&str>,
        temporality: Temporality,
    ) -> WireEncoder {
        // Counters as deltas (UpDownCounters stay cumulative: see `Temporality`).
        let delta = temporality == Temporality::Delta;
        // The heads of `METRICS`, under the names they have on a resource of `kind`.
        let heads = |kind| -> Vec<MetricHead> {
            let head = |m: &Metric| {
                let d = m.def();
                MetricHead::new(
                    m.name(kind),
                    d.description,
                    d.unit,
                    d.instrument,
                    d.attributes,
                    delta,
                )
            };
            Metric::ALL.iter().map(head).collect()
        };
        let own_heads = SELF_METRICS.iter().map(|m| {
            MetricHead::new(
                m.name,
                m.description,
                m.unit,
                m.instrument,
                m.attribute.as_slice(),
                delta,
            )
        });
        let mut scope = Vec::new();
        put_scope(&mut scope);
        let own_attributes: Vec<(String, AttrValue)> =
            own_resource(&host, &service_name, VERSION, resource_attributes)
                .into_iter()
                .map(|(k, v)| (k, AttrValue::Str(v)))
                .collect();
        let mut own_bytes = Vec::new();
        put_resource(
            &mut own_bytes,
            own_attributes.iter().map(|(k, v)| (k.as_str(), v)),
        );
        WireEncoder {
            host,
            delta,
            scope,
            heads: heads(Kind::Container),
            pod_heads: heads(Kind::Pod),
            slots: HashMap::new(),
            reserve: Reserve::new(METRICS.len()),
            own: Own {
                resource: own_bytes,
                heads: own_heads.collect(),
                reserve: Reserve::new(SELF_METRICS.len()),
                series: SeriesSet::default(),
                started: SystemTime::now(),
            },
            pass: 0,
            ends: Vec::new(),
        }
    }

    /// Sets the exporter's own start time (the start of its counters; `now` by default), so
    /// that two encoders can be compared.
    pub fn started_at(mut self, t: SystemTime) -> WireEncoder {
        self.own.started = t;
        self
    }

    /// Writes the request for one tick into `buf` (cleared first: pass the same buffer back
    /// each tick). Returns the number of data points in it.
    pub fn encode<'a>(
        &mut self,
        buf: &mut Vec<u8>,
        now: SystemTime,
        containers: impl IntoIterator<Item = &'a Described<'a>>,
        telemetry: &Telemetry,
        process: &ProcessStats,
    ) -> usize {
        self.encode_with(buf, now, containers, Some((telemetry, process)))
    }

    /// Writes a request of departed containers alone, published between ticks (as soon as
    /// their runtimes said why they ended): no self-metrics, and the state of the containers
    /// not in it is kept for the next tick. Returns the number of data points in it.
    pub fn encode_departures<'a>(
        &mut self,
        buf: &mut Vec<u8>,
        now: SystemTime,
        containers: impl IntoIterator<Item = &'a Described<'a>>,
    ) -> usize {
        self.encode_with(buf, now, containers, None)
    }

    /// A tick's request with the exporter's own resource (`own`), or departures alone.
    fn encode_with<'a>(
        &mut self,
        buf: &mut Vec<u8>,
        now: SystemTime,
        containers: impl IntoIterator<Item = &'a Described<'a>>,
        own: Option<(&Telemetry, &ProcessStats)>,
    ) -> usize {
        if own.is_some() {
            self.pass += 1;
        }
        let pass = self.pass;
        let now_ns = nanos(now);
        buf.clear();
        self.ends.clear();
        let mut points = 0;
        for d in containers {
            let state = d.state;
            let slot = match self.slots.get_mut(state.id.as_str()) {
                Some(s) => s,
                None => self.slots.entry(state.id.clone()).or_insert(Slot {
                    meta: None,
                    pod: None,
                    resource: Vec::new(),
                    created: state.created,
                    series: SeriesSet::default(),
                    seen: 0,
                }),
            };
            if slot.seen == 0 || !d.same(&slot.meta, &slot.pod) {
                let attributes = self.host.attributes(d);
                slot.resource.clear();
                put_resource(
                    &mut slot.resource,
                    attributes.iter().map(|(k, v)| (k.as_str(), v)),
                );
                slot.meta = d.meta.clone();
                slot.pod = d.pod.clone();
            }
            // An earlier run showing only its exit (a gauge) leaves the series of the run
            // shown under the same id alone.
            if slot.created != state.created && state.show() == Show::All {
                slot.created = state.created;
                slot.series = SeriesSet::default();
            }
            slot.seen = pass;
            slot.series.cursor = 0;

            let mut sink = WireSink {
                at: self.reserve.open(buf, &slot.resource, &self.scope),
                buf: &mut *buf,
                heads: match state.kind {
                    Kind::Container => &self.heads,
                    Kind::Pod => &self.pod_heads,
                },
                reserve: &mut self.reserve,
                open: None,
                now_ns,
                start_ns: nanos(state.created),
                series: self.delta.then_some(&mut slot.series),
                points: 0,
            };
            state.emit(now, &mut sink);
            points += sink.finish();
            self.ends.push((buf.len(), points));
        }
        let Some((telemetry, process)) = own else {
            return points;
        };
        // Bounded by what was just encoded: containers that are gone are forgotten.
        self.slots.retain(|_, s| s.seen == pass);

        // The exporter's own, last, from the same table as the page's.
        let own = &mut self.own;
        own.series.cursor = 0;
        let mut sink = WireSink {
            at: own.reserve.open(buf, &own.resource, &self.scope),
            buf: &mut *buf,
            heads: &own.heads,
            reserve: &mut own.reserve,
            open: None,
            now_ns,
            start_ns: nanos(own.started),
            series: self.delta.then_some(&mut own.series),
            points: 0,
        };
        for (i, m) in SELF_METRICS.iter().enumerate() {
            (m.emit)(telemetry, process, &mut |attr, value| {
                // A point has the metric's attribute only when both say so.
                let attr = m.attribute.and(attr);
                sink.point_at(i, attr.as_slice(), value);
            });
        }
        points += sink.finish();
        self.ends.push((buf.len(), points));
        points
    }

    /// The last request cut into requests of at most `max` bytes each, at resource
    /// boundaries: byte ranges of the buffer and their data points, in order. An
    /// `ExportMetricsServiceRequest` is only its `ResourceMetrics` one after the other, so
    /// each range is a whole request. A resource larger than `max` goes alone.
    pub fn split(&self, max: usize, out: &mut Vec<(std::ops::Range<usize>, usize)>) {
        out.clear();
        let (mut start, mut start_points) = (0, 0);
        let (mut prev, mut prev_points) = (0, 0);
        for &(end, points) in &self.ends {
            if end - start > max && prev > start {
                out.push((start..prev, prev_points - start_points));
                (start, start_points) = (prev, prev_points);
            }
            (prev, prev_points) = (end, points);
        }
        if prev > start {
            out.push((start..prev, prev_points - start_points));
        }
    }

    /// Containers whose state is kept (for tests).
    pub fn cached(&self) -> usize {
        self.slots.len()
    }
}

/// Writes one resource's data points, metric by metric, into `ScopeMetrics.metrics`.
struct WireSink<'a> {
    buf: &'a mut Vec<u8>,
    /// The metric table's heads; points name their metric by its row.
    heads: &'a [MetricHead],
    reserve: &'a mut Reserve,
    /// Where the lengths of the `ResourceMetrics` and its `ScopeMetrics` go.
    at: (usize, usize),
    /// The row being written, where its length and its data's length go.
    open: Option<(usize, usize, usize)>,
    now_ns: u64,
    start_ns: u64,
    series: Option<&'a mut SeriesSet>,
    points: usize,
}

impl WireSink<'_> {
    fn close_metric(&mut self) {
        if let Some((i, metric_at, data_at)) = self.open.take() {
            let r = &mut *self.reserve;
            self.buf.extend_from_slice(&self.heads[i].trailer);
            r.data[i] = close(self.buf, data_at, r.data[i]);
            r.metric[i] = close(self.buf, metric_at, r.metric[i]);
        }
    }

    /// Closes the resource; returns its points.
    fn finish(mut self) -> usize {
        self.close_metric();
        let r = &mut *self.reserve;
        r.scope_metrics = close(self.buf, self.at.1, r.scope_metrics);
        r.resource_metrics = close(self.buf, self.at.0, r.resource_metrics);
        self.points
    }

    /// One point of the metric in row `i`: a new `Metric` when the row changes (a table's
    /// points come grouped by metric).
    fn point_at(&mut self, i: usize, attrs: &[&str], value: Value) {
        if self.open.map(|o| o.0) != Some(i) {
            self.close_metric();
            let h = &self.heads[i];
            let metric_at = open(self.buf, F2_LEN, self.reserve.metric[i]);
            self.buf.extend_from_slice(&h.head);
            let data_at = open(self.buf, h.data_tag, self.reserve.data[i]);
            self.open = Some((i, metric_at, data_at));
        }
        let h = &self.heads[i];
        let (start, value) = match (h.instrument, self.series.as_deref_mut()) {
            (Instrument::Gauge, _) => (0, value),
            (Instrument::Counter, Some(s)) => {
                s.delta(i as u16, attrs, value, self.now_ns, self.start_ns)
            }
            _ => (self.start_ns, value),
        };
        // The point's size, to write its length first: 9 bytes per fixed64 field written.
        let mut len = 9 * (1 + usize::from(start != 0) + usize::from(self.now_ns != 0));
        let len_of = |body: usize| 1 + varint_len(body) + body;
        let kv_len = |key: &[u8], v: &str| key.len() + len_of(len_of(v.len()));
        for (k, v) in h.keys.iter().zip(attrs) {
            len += len_of(kv_len(k, v));
        }
        let buf = &mut *self.buf;
        buf.push(F1_LEN);
        put_varint(buf, len);
        if start != 0 {
            put_fixed64(buf, POINT_START, start.to_le_bytes());
        }
        if self.now_ns != 0 {
            put_fixed64(buf, POINT_TIME, self.now_ns.to_le_bytes());
        }
        match value {
            Value::Int(v) => put_fixed64(
                buf,
                POINT_INT,
                i64::try_from(v).unwrap_or(i64::MAX).to_le_bytes(),
            ),
            Value::Double(v) => put_fixed64(buf, POINT_DOUBLE, v.to_le_bytes()),
        }
        for (k, v) in h.keys.iter().zip(attrs) {
            buf.push(POINT_ATTR);
            put_varint(buf, kv_len(k, v));
            buf.extend_from_slice(k);
            buf.push(F2_LEN);
            put_varint(buf, len_of(v.len()));
            // `AnyValue.string_value` is in a oneof: written even when empty.
            put_len_field(buf, F1_LEN, v.as_bytes());
        }
        self.points += 1;
    }
}

impl Sink for WireSink<'_> {
    fn point(&mut self, m: Metric, attrs: &[&str], value: Value) {
        self.point_at(m as usize, attrs, value);
    }
}

// Protobuf's wire format, the few pieces used here: varints, length-delimited fields, and
// fields whose length is reserved before their body is written and filled in after ([`open`]
// and [`close`]).

#[inline]
fn varint_len(v: usize) -> usize {
    // 1 byte per 7 bits, at least one.
    let bits = usize::BITS - (v | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

#[inline]
fn put_varint(buf: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
fn put_fixed64(buf: &mut Vec<u8>, tag: u8, bytes: [u8; 8]) {
    buf.push(tag);
    buf.extend_from_slice(&bytes);
}

#[inline]
fn put_len_field(buf: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    buf.push(tag);
    put_varint(buf, bytes.len());
    buf.extend_from_slice(bytes);
}

/// A proto3 `string` field outside a oneof: not written when empty.
fn put_str_field(buf: &mut Vec<u8>, tag: u8, s: &str) {
    if !s.is_empty() {
        put_len_field(buf, tag, s.as_bytes());
    }
}

/// Opens a length-delimited field: writes its tag and reserves `reserve` bytes for the
/// length. Returns where the length goes.
#[inline]
fn open(buf: &mut Vec<u8>, tag: u8, reserve: u8) -> usize {
    buf.push(tag);
    let at = buf.len();
    buf.resize(at + reserve as usize, 0);
    at
}

/// Closes the field [`open`] started at `at`: writes its length (minimal varint), moving
/// the body when the reserved size was wrong. Returns the size the length took.
#[inline]
fn close(buf: &mut Vec<u8>, at: usize, reserve: u8) -> u8 {
    let reserve = reserve as usize;
    let body = at + reserve;
    let len = buf.len() - body;
    let need = varint_len(len);
    if need > reserve {
        let end = buf.len();
        buf.resize(end + need - reserve, 0);
        buf.copy_within(body..end, at + need);
    } else if need < reserve {
        buf.copy_within(body.., at + need);
        buf.truncate(buf.len() - (reserve - need));
    }
    let mut v = len;
    for b in &mut buf[at..at + need] {
        *b = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
    }
    buf[at + need - 1] &= 0x7f;
    need as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let max = usize::MAX >> 1;
        for v in [0usize, 1, 127, 128, 300, 16383, 16384, 1 << 21, max] {
            let mut a = Vec::new();
            put_varint(&mut a, v);
            assert_eq!(a.len(), varint_len(v), "{v}");
            assert_eq!(a.len(), prost::encoding::encoded_len_varint(v as u64));
            let mut b = Vec::new();
            prost::encoding::encode_varint(v as u64, &mut b);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn close_moves_the_body_when_the_guess_is_wrong() {
        for len in [0usize, 5, 127, 128, 200, 16383, 16384, 20000] {
            for reserve in 1..=3u8 {
                let mut buf = vec![9u8];
                let at = open(&mut buf, 0x0a, reserve);
                buf.extend((0..len).map(|i| i as u8));
                close(&mut buf, at, reserve);
                let mut want = vec![9u8, 0x0a];
                put_varint(&mut want, len);
                want.extend((0..len).map(|i| i as u8));
                assert_eq!(buf, want, "len {len} reserve {reserve}");
            }
        }
    }
}
