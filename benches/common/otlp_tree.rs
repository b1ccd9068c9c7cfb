//! The OTLP request of one tick as the `opentelemetry-proto` message tree, encoded by prost:
//! what the daemon's direct protobuf writer (`container_exporter::export::otlp::wire`) saves,
//! measured by `benches/otlp.rs` (`#[path]`-included there). It builds the tree from the
//! crate's own tables ([`METRICS`], [`SELF_METRICS`], `HostResource::attributes`,
//! `own_resource`) and `emit`: a cost comparison, not a check of the writer (the tests check
//! the writer against `tests/common/otlp_reference.rs`, which shares none of this).
//!
//! A `ResourceMetrics` per container or pod, with its `container.*` / `k8s.*` / `host.name`
//! resource, and one for the exporter itself (with `service.name`). A Counter is a monotonic
//! Sum, an UpDownCounter a non-monotonic Sum, a Gauge a Gauge; integer values are `as_int`,
//! the others `as_double`. Sums are cumulative with the container's cgroup creation (the
//! exporter's start for its own) as start time, unless delta temporality is asked for.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use container_exporter::collect::{Described, Show};
use container_exporter::discovery::Kind;
use container_exporter::export::otlp::{SCOPE_NAME, Temporality, VERSION};
use container_exporter::metadata::{ContainerMeta, PodMeta};
use container_exporter::metrics::{Instrument, METRICS, Metric, Sink, Value};
use container_exporter::resource::{AttrValue, HostResource, own_resource};
use container_exporter::telemetry::{ProcessStats, SELF_METRICS, Telemetry};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::metrics::v1::{
    self as pm, AggregationTemporality, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

/// Whether Counters are sent as deltas (only `delta` asks for it; see [`Temporality`]).
fn counters_delta(t: Temporality) -> bool {
    t == Temporality::Delta
}

pub fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn kv_str(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_string()))
}

/// The previous value of every series of one resource (delta temporality only).
struct SeriesState {
    /// The container's cgroup creation: a new one (same id) starts over.
    created: SystemTime,
    /// `metric index \x1f attribute values…` → (value, when).
    points: HashMap<String, (Value, u64)>,
    /// The last encode pass that saw this resource.
    seen: u64,
}

impl SeriesState {
    fn new(created: SystemTime) -> SeriesState {
        SeriesState {
            created,
            points: HashMap::new(),
            seen: 0,
        }
    }

    /// The delta of a cumulative `value` since the previous report, and its start time.
    /// The first report of a series carries everything since `start_ns`; a value that went
    /// down (a reset) starts over from `start_ns` too.
    fn delta(&mut self, key: &str, value: Value, now_ns: u64, start_ns: u64) -> (u64, Value) {
        match self.points.get_mut(key) {
            None => {
                self.points.insert(key.to_string(), (value, now_ns));
                (start_ns, value)
            }
            Some((prev, prev_ns)) => {
                let out = match (value, *prev) {
                    (Value::Int(v), Value::Int(p)) if v >= p => Some(Value::Int(v - p)),
                    (Value::Double(v), Value::Double(p)) if v >= p => Some(Value::Double(v - p)),
                    _ => None,
                };
                let start = if out.is_some() { *prev_ns } else { start_ns };
                *prev = value;
                *prev_ns = now_ns;
                (start, out.unwrap_or(value))
            }
        }
    }
}

/// A container's resource attributes, rebuilt only when its metadata changes.
struct CachedResource {
    meta: Option<Arc<ContainerMeta>>,
    pod: Option<Arc<PodMeta>>,
    attributes: Vec<KeyValue>,
    seen: u64,
}

/// Builds requests; keeps the per-container state that spans ticks (resource attributes,
/// and the previous values for delta temporality), bounded by the containers last encoded.
pub struct Encoder {
    host: HostResource,
    self_resource: Vec<KeyValue>,
    scope: InstrumentationScope,
    temporality: Temporality,
    resources: HashMap<String, CachedResource>,
    delta: HashMap<String, SeriesState>,
    started: SystemTime,
    pass: u64,
    key: String,
}

impl Encoder {
    /// `host`: the shared container attributes (`host.name`, `OTEL_RESOURCE_ATTRIBUTES`
    /// without `service.name`); `resource_attributes`: the raw `OTEL_RESOURCE_ATTRIBUTES`, for
    /// the exporter's own resource. The same arguments as `WireEncoder::new`.
    pub fn new(
        host: HostResource,
        service_name: String,
        resource_attributes: Option<&str>,
        temporality: Temporality,
    ) -> Encoder {
        let self_resource = own_resource(&host, &service_name, VERSION, resource_attributes)
            .iter()
            .map(|(k, v)| kv_str(k, v))
            .collect();
        Encoder {
            host,
            self_resource,
            scope: InstrumentationScope {
                name: SCOPE_NAME.to_string(),
                version: VERSION.to_string(),
                ..Default::default()
            },
            temporality,
            resources: HashMap::new(),
            delta: HashMap::new(),
            started: SystemTime::now(),
            pass: 0,
            key: String::new(),
        }
    }

    /// Sets the exporter's own start time (the start of its counters; `now` by default),
    /// so that two encoders can be compared.
    pub fn started_at(mut self, t: SystemTime) -> Encoder {
        self.started = t;
        self
    }

    /// The request for one tick, as a message tree.
    pub fn encode<'a>(
        &mut self,
        now: SystemTime,
        containers: impl IntoIterator<Item = &'a Described<'a>>,
        telemetry: &Telemetry,
        process: &ProcessStats,
    ) -> ExportMetricsServiceRequest {
        self.encode_with(now, containers, Some((telemetry, process)))
    }

    /// A request of departed containers alone, between ticks: no resource of the exporter's
    /// own, and nothing forgotten of the containers not in it.
    pub fn encode_departures<'a>(
        &mut self,
        now: SystemTime,
        containers: impl IntoIterator<Item = &'a Described<'a>>,
    ) -> ExportMetricsServiceRequest {
        self.encode_with(now, containers, None)
    }

    fn encode_with<'a>(
        &mut self,
        now: SystemTime,
        containers: impl IntoIterator<Item = &'a Described<'a>>,
        own: Option<(&Telemetry, &ProcessStats)>,
    ) -> ExportMetricsServiceRequest {
        if own.is_some() {
            self.pass += 1;
        }
        let pass = self.pass;
        let now_ns = nanos(now);
        let delta = counters_delta(self.temporality);
        let mut resource_metrics = Vec::new();
        for d in containers {
            let state = d.state;
            let attributes = self.container_resource(d, pass);
            let series = if delta {
                let s = self
                    .delta
                    .entry(state.id.clone())
                    .or_insert_with(|| SeriesState::new(state.created));
                // An earlier run that shows only its exit (a gauge) is no new cgroup of the
                // run shown under the same id.
                if s.created != state.created && state.show() == Show::All {
                    *s = SeriesState::new(state.created);
                }
                s.seen = pass;
                Some(s)
            } else {
                None
            };
            let mut sink = PointSink {
                kind: state.kind,
                metrics: Vec::with_capacity(METRICS.len()),
                last: None,
                now_ns,
                start_ns: nanos(state.created),
                series,
                key: &mut self.key,
            };
            state.emit(now, &mut sink);
            resource_metrics.push(ResourceMetrics {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(self.scope.clone()),
                    metrics: sink.metrics,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        let Some((telemetry, process)) = own else {
            return ExportMetricsServiceRequest { resource_metrics };
        };
        // Bounded by what was just encoded: containers that are gone are forgotten.
        self.resources.retain(|_, r| r.seen == pass);
        resource_metrics.push(self.self_metrics(now_ns, telemetry, process, delta, pass));
        self.delta.retain(|_, s| s.seen == pass);
        ExportMetricsServiceRequest { resource_metrics }
    }

    /// The resources and the series states kept across ticks (containers' and, with delta
    /// temporality, the exporter's own).
    pub fn kept(&self) -> (usize, usize) {
        (self.resources.len(), self.delta.len())
    }

    fn container_resource(&mut self, d: &Described<'_>, pass: u64) -> Vec<KeyValue> {
        let id = d.state.id.as_str();
        if let Some(r) = self.resources.get_mut(id)
            && d.same(&r.meta, &r.pod)
        {
            r.seen = pass;
            return r.attributes.clone();
        }
        let attributes = container_attributes(&self.host, d);
        self.resources.insert(
            id.to_string(),
            CachedResource {
                meta: d.meta.clone(),
                pod: d.pod.clone(),
                attributes: attributes.clone(),
                seen: pass,
            },
        );
        attributes
    }

    fn self_metrics(
        &mut self,
        now_ns: u64,
        t: &Telemetry,
        p: &ProcessStats,
        delta: bool,
        pass: u64,
    ) -> ResourceMetrics {
        use Instrument::{Counter, Gauge};
        // The one table the page is written from too.
        let mut list: Vec<SelfMetric> = SELF_METRICS
            .iter()
            .filter_map(|m| {
                let mut points = Vec::new();
                (m.emit)(t, p, &mut |attr, v| {
                    points.push((m.attribute.zip(attr), v));
                });
                (!points.is_empty()).then_some(SelfMetric {
                    name: m.name,
                    instrument: m.instrument,
                    unit: m.unit,
                    description: m.description,
                    points,
                })
            })
            .collect();
        let start_ns = nanos(self.started);
        let mut series = if delta {
            let s = self
                .delta
                .entry(String::new())
                .or_insert_with(|| SeriesState::new(self.started));
            s.seen = pass;
            Some(s)
        } else {
            None
        };
        let metrics = list
            .drain(..)
            .map(|m| {
                let data_points = m
                    .points
                    .iter()
                    .map(|(attr, value)| {
                        let (start, value) = match (m.instrument, series.as_mut()) {
                            (Gauge, _) => (0, *value),
                            (Counter, Some(s)) => {
                                let key = format!("{}\x1f{}", m.name, attr.map_or("", |a| a.1));
                                s.delta(&key, *value, now_ns, start_ns)
                            }
                            _ => (start_ns, *value),
                        };
                        NumberDataPoint {
                            attributes: attr.iter().map(|(k, v)| kv_str(k, v)).collect(),
                            start_time_unix_nano: start,
                            time_unix_nano: now_ns,
                            value: Some(number_value(value)),
                            ..Default::default()
                        }
                    })
                    .collect();
                new_metric(
                    m.name,
                    m.description,
                    m.unit,
                    m.instrument,
                    self.temporality,
                    data_points,
                )
            })
            .collect();
        ResourceMetrics {
            resource: Some(Resource {
                attributes: self.self_resource.clone(),
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(self.scope.clone()),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }
    }
}

struct SelfMetric {
    name: &'static str,
    instrument: Instrument,
    unit: &'static str,
    description: &'static str,
    points: Vec<(Option<(&'static str, &'static str)>, Value)>,
}

/// A container's (or pod's) resource, as OTLP key-values: [`HostResource::attributes`].
pub fn container_attributes(host: &HostResource, d: &Described<'_>) -> Vec<KeyValue> {
    host.attributes(d)
        .into_iter()
        .map(|(k, v)| match v {
            AttrValue::Str(s) => kv_str(&k, &s),
            AttrValue::Strs(items) => kv(
                &k,
                any_value::Value::ArrayValue(ArrayValue {
                    values: items
                        .into_iter()
                        .map(|t| AnyValue {
                            value: Some(any_value::Value::StringValue(t)),
                        })
                        .collect(),
                }),
            ),
        })
        .collect()
}

fn number_value(v: Value) -> number_data_point::Value {
    match v {
        Value::Int(i) => number_data_point::Value::AsInt(i64::try_from(i).unwrap_or(i64::MAX)),
        Value::Double(d) => number_data_point::Value::AsDouble(d),
    }
}

fn new_metric(
    name: &str,
    description: &str,
    unit: &str,
    instrument: Instrument,
    temporality: Temporality,
    data_points: Vec<NumberDataPoint>,
) -> pm::Metric {
    let data = match instrument {
        Instrument::Gauge => metric::Data::Gauge(pm::Gauge { data_points }),
        Instrument::Counter | Instrument::UpDownCounter => {
            let monotonic = instrument == Instrument::Counter;
            let t = if monotonic && counters_delta(temporality) {
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
        name: name.to_string(),
        description: description.to_string(),
        unit: unit.to_string(),
        data: Some(data),
        ..Default::default()
    }
}

/// Receives one container's data points (metric by metric, in table order) into metrics.
struct PointSink<'a> {
    kind: Kind,
    metrics: Vec<pm::Metric>,
    last: Option<Metric>,
    now_ns: u64,
    start_ns: u64,
    series: Option<&'a mut SeriesState>,
    key: &'a mut String,
}

impl Sink for PointSink<'_> {
    fn point(&mut self, m: Metric, attrs: &[&str], value: Value) {
        let def = m.def();
        if self.last != Some(m) {
            let temporality = if self.series.is_some() {
                Temporality::Delta
            } else {
                Temporality::Cumulative
            };
            self.metrics.push(new_metric(
                m.name(self.kind),
                def.description,
                def.unit,
                def.instrument,
                temporality,
                Vec::with_capacity(2),
            ));
            self.last = Some(m);
        }
        let (start, value) = match (def.instrument, self.series.as_deref_mut()) {
            (Instrument::Gauge, _) => (0, value),
            (Instrument::Counter, Some(s)) => {
                self.key.clear();
                use std::fmt::Write;
                let _ = write!(self.key, "{}", m as usize);
                for a in attrs {
                    self.key.push('\x1f');
                    self.key.push_str(a);
                }
                s.delta(self.key, value, self.now_ns, self.start_ns)
            }
            _ => (self.start_ns, value),
        };
        let point = NumberDataPoint {
            attributes: def
                .attributes
                .iter()
                .zip(attrs)
                .map(|(k, v)| kv_str(k, v))
                .collect(),
            start_time_unix_nano: start,
            time_unix_nano: self.now_ns,
            value: Some(number_value(value)),
            ..Default::default()
        };
        let data_points = match self.metrics.last_mut().and_then(|m| m.data.as_mut()) {
            Some(metric::Data::Sum(s)) => &mut s.data_points,
            Some(metric::Data::Gauge(g)) => &mut g.data_points,
            _ => return,
        };
        data_points.push(point);
    }
}

/// Data points in a request (for the partial-success accounting and logs).
pub fn count_points(req: &ExportMetricsServiceRequest) -> usize {
    req.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(metric_points)
        .sum()
}

/// Data points in one metric.
pub fn metric_points(m: &pm::Metric) -> usize {
    match &m.data {
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        _ => 0,
    }
}

/// The protobuf encoding of a request. `hint`: the previous request's size, so the buffer
/// is allocated once.
pub fn to_bytes(req: &ExportMetricsServiceRequest, hint: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(hint.max(req.encoded_len()));
    // Cannot fail: the buffer grows as needed.
    let _ = req.encode(&mut buf);
    buf
}
