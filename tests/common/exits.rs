//! Reading why containers ended where the exporter says it: the `container_exit_code` series
//! of the Prometheus page, the `container.exit.code` points of the OTLP requests a real
//! receiver decoded, and a snapshot's `exit`; and the check that a page never carries two
//! samples with the same labels.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, metric, number_data_point};

use super::otlp::{Got, attr};
use super::page::Page;

/// One exit as shown: reason, code (`None` for NaN: no code) and restart count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seen {
    pub reason: String,
    pub code: Option<i64>,
    pub restart_count: Option<String>,
}

impl Seen {
    pub fn new(reason: &str, code: Option<i64>, restart_count: Option<u32>) -> Seen {
        Seen {
            reason: reason.to_string(),
            code,
            restart_count: restart_count.map(|r| r.to_string()),
        }
    }
}

fn code(v: f64) -> Option<i64> {
    (!v.is_nan()).then_some(v as i64)
}

/// The exits of container `id` on the page (OTel names).
pub fn on_page(page: &Page, id: &str) -> Vec<Seen> {
    page.series("container_exit_code", &[("container_id", id)])
        .iter()
        .map(|s| Seen {
            reason: s
                .labels
                .get("container_exit_reason")
                .cloned()
                .unwrap_or_default(),
            code: code(s.value),
            restart_count: s.labels.get("container_restart_count").cloned(),
        })
        .collect()
}

/// The labels of the first `container_exit_code` series of `id`, to check its names.
pub fn page_labels(page: &Page, id: &str) -> Option<BTreeMap<String, String>> {
    page.series("container_exit_code", &[("container_id", id)])
        .first()
        .map(|s| s.labels.clone())
}

/// Fails when two samples of the page have the same name and labels.
pub fn assert_unique_series(page: &Page) {
    let mut seen = HashSet::new();
    for s in &page.samples {
        let key = (s.name.clone(), s.labels.clone());
        assert!(
            seen.insert(key),
            "two samples with the same labels: {} {:?}\n{}",
            s.name,
            s.labels,
            page.text
        );
    }
}

fn string_attr(
    kv: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    let v = kv
        .iter()
        .find(|k| k.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    match v {
        any_value::Value::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    }
}

/// The exits in one resource, and whether the same resource carries other (final) points.
pub fn in_resource(r: &ResourceMetrics) -> (Vec<Seen>, bool) {
    let mut exits = Vec::new();
    let mut others = false;
    for m in r.scope_metrics.iter().flat_map(|s| &s.metrics) {
        if m.name != "container.exit.code" {
            others = true;
            continue;
        }
        let Some(metric::Data::Gauge(g)) = &m.data else {
            panic!("container.exit.code is not a gauge: {m:?}");
        };
        for p in &g.data_points {
            let v = match p.value {
                Some(number_data_point::Value::AsDouble(d)) => d,
                Some(number_data_point::Value::AsInt(i)) => i as f64,
                None => panic!("an exit point without a value"),
            };
            exits.push(Seen {
                reason: string_attr(&p.attributes, "container.exit.reason").unwrap_or_default(),
                code: code(v),
                restart_count: string_attr(&p.attributes, "container.restart_count"),
            });
        }
    }
    (exits, others)
}

/// Every exit of container `id` in the requests received, with whether its resource carried
/// the final data points too.
pub fn in_requests(got: &[Got], id: &str) -> Vec<(Seen, bool)> {
    let mut out = Vec::new();
    for g in got {
        out.extend(in_request(&g.request, id));
    }
    out
}

pub fn in_request(req: &ExportMetricsServiceRequest, id: &str) -> Vec<(Seen, bool)> {
    let mut out = Vec::new();
    for r in &req.resource_metrics {
        if attr(r, "container.id").as_deref() != Some(id) {
            continue;
        }
        let (exits, others) = in_resource(r);
        out.extend(exits.into_iter().map(|e| (e, others)));
    }
    out
}

/// A resource attribute of container `id`'s resources that carry an exit.
pub fn exit_resource_attr(got: &[Got], id: &str, key: &str) -> Option<String> {
    got.iter()
        .flat_map(|g| &g.request.resource_metrics)
        .filter(|r| attr(r, "container.id").as_deref() == Some(id))
        .find(|r| !in_resource(r).0.is_empty())
        .and_then(|r| attr(r, key))
}

/// A snapshot's `exit` of a container entry.
pub fn in_snapshot(entry: &serde_json::Value) -> Option<Seen> {
    let e = entry.get("exit")?;
    Some(Seen {
        reason: e["reason"].as_str()?.to_string(),
        code: e["code"].as_i64(),
        restart_count: e["restart_count"].as_u64().map(|r| r.to_string()),
    })
}

/// The exits of container `id` on the page (OTel names), each with its `container_run`.
pub fn runs_on_page(page: &Page, id: &str) -> Vec<(Seen, Option<String>)> {
    page.series("container_exit_code", &[("container_id", id)])
        .iter()
        .map(|s| {
            let seen = Seen {
                reason: (s.labels.get("container_exit_reason").cloned()).unwrap_or_default(),
                code: code(s.value),
                restart_count: s.labels.get("container_restart_count").cloned(),
            };
            (seen, s.labels.get("container_run").cloned())
        })
        .collect()
}

/// Every exit of container `id` in the requests received, each with its `container.run`.
pub fn runs_in_requests(got: &[Got], id: &str) -> Vec<(Seen, Option<String>)> {
    let mut out = Vec::new();
    for r in got.iter().flat_map(|g| &g.request.resource_metrics) {
        if attr(r, "container.id").as_deref() != Some(id) {
            continue;
        }
        for m in r.scope_metrics.iter().flat_map(|s| &s.metrics) {
            let Some(metric::Data::Gauge(g)) = &m.data else {
                continue;
            };
            if m.name != "container.exit.code" {
                continue;
            }
            for p in &g.data_points {
                let v = match p.value {
                    Some(number_data_point::Value::AsDouble(d)) => d,
                    Some(number_data_point::Value::AsInt(i)) => i as f64,
                    None => f64::NAN,
                };
                let seen = Seen {
                    reason: string_attr(&p.attributes, "container.exit.reason").unwrap_or_default(),
                    code: code(v),
                    restart_count: string_attr(&p.attributes, "container.restart_count"),
                };
                out.push((seen, string_attr(&p.attributes, "container.run")));
            }
        }
    }
    out
}
