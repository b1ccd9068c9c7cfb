//! The JSON API under `/api/v1/`, which the page itself uses: the overview (every container's
//! latest values and, per series, the points after `since`), one container's own view, and
//! the ended list. `docs/live-view.md` documents each field; a change that breaks a client
//! gets a new version path.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::ended::EndedRow;
use super::history::Clock;
use super::json::Json;
use super::series::{LIMITS, N, SERIES, unix};
use super::store::{Row, Store};
use crate::collect::{ContainerState, Described};
use crate::discovery::{Found, Kind, Runtime};
use crate::metadata::{ContainerMeta, PodMeta};
use crate::resource::HostResource;

/// The API's version, in its path and in every response.
pub const VERSION: u64 = 1;

/// Rows per overview response at most, whatever the history: 500.
pub const MAX_ROWS: usize = 500;

/// Points per overview response at most (a row's ten series, each over the kept ticks): the
/// row cap shrinks with a long history so that a response stays within about 6 MB.
pub const MAX_POINTS: usize = 1_000_000;

/// A request the API refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("unknown parameter `{0}`")]
    UnknownParameter(String),
    #[error("parameter `{0}` given twice")]
    Repeated(String),
    #[error("`{name}={value}`: not a whole number")]
    NotANumber { name: String, value: String },
    #[error("`limit={limit}`: at most {cap} rows per response (page with `offset`)")]
    LimitPastCap { limit: u64, cap: usize },
    #[error("`limit=0`: ask for one row at least")]
    ZeroLimit,
    #[error(
        "`since={since}` is past the newest tick ({seq}): the exporter restarted? Ask without `since`"
    )]
    SinceAhead { since: u64, seq: u64 },
    #[error("no container or pod `{0}`")]
    NoSuchContainer(String),
    #[error("`{prefix}` names {n} containers: give more of the id")]
    Ambiguous { prefix: String, n: usize },
    #[error("no such path: see docs/live-view.md for the API")]
    NoSuchPath,
}

impl ApiError {
    /// 404 for what does not exist, 400 for a request that is wrong.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::NoSuchContainer(_) | ApiError::Ambiguous { .. } | ApiError::NoSuchPath => 404,
            _ => 400,
        }
    }

    /// The error as the API's JSON body.
    pub fn body(&self) -> Vec<u8> {
        let mut j = Json::default();
        j.open(b'{')
            .key("version")
            .uint(VERSION)
            .key("status")
            .uint(u64::from(self.status()))
            .key("error")
            .string(&self.to_string())
            .close(b'}');
        j.out
    }
}

/// What every response says about the store it was cut from.
pub struct Setting {
    pub interval: Duration,
    pub history: Duration,
    /// When the exporter started (unix ms): a client seeing another one starts afresh.
    pub epoch_ms: u64,
}

/// The query's parameters: only those `allowed`, each once.
fn params<'q>(
    query: Option<&'q str>,
    allowed: &[&str],
) -> Result<HashMap<&'q str, &'q str>, ApiError> {
    let mut out = HashMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if !allowed.contains(&k) {
            return Err(ApiError::UnknownParameter(k.chars().take(64).collect()));
        }
        if out.insert(k, v).is_some() {
            return Err(ApiError::Repeated(k.to_string()));
        }
    }
    Ok(out)
}

fn number(p: &HashMap<&str, &str>, name: &str) -> Result<Option<u64>, ApiError> {
    p.get(name)
        .map(|v| {
            v.parse::<u64>().map_err(|_| ApiError::NotANumber {
                name: name.to_string(),
                value: v.chars().take(64).collect(),
            })
        })
        .transpose()
}

fn since(p: &HashMap<&str, &str>, clock: &Clock) -> Result<Option<u64>, ApiError> {
    let since = number(p, "since")?;
    match since {
        Some(s) if s > clock.seq() => Err(ApiError::SinceAhead {
            since: s,
            seq: clock.seq(),
        }),
        s => Ok(s),
    }
}

/// Rows per overview response at most, for this history.
pub fn max_rows(capacity: usize) -> usize {
    (MAX_POINTS / (N * capacity.max(1))).clamp(20, MAX_ROWS)
}

fn ms(t: f64) -> u64 {
    (t * 1000.0).round().max(0.0) as u64
}

fn header(j: &mut Json, store: &Store, setting: &Setting, since: Option<u64>) {
    let clock = &store.clock;
    j.key("version").uint(VERSION);
    j.key("epoch").uint(setting.epoch_ms);
    j.key("seq").uint(clock.seq());
    j.key("revision").uint(store.revision);
    j.key("interval_s").number(setting.interval.as_secs_f64());
    j.key("history_s").number(setting.history.as_secs_f64());
    j.key("capacity").uint(clock.capacity() as u64);
    let ticks = clock.after(since);
    j.key("from").uint(*ticks.start());
    j.key("times").open(b'[');
    for seq in ticks {
        j.number(clock.time(seq).map_or(f64::NAN, |t| ms(t) as f64));
    }
    j.close(b']');
}

/// A container's or pod's names, as the page shows them.
struct Names<'a> {
    name: Option<&'a str>,
    image: Option<String>,
    runtime: &'a str,
    namespace: Option<&'a str>,
    pod: Option<&'a str>,
}

fn names<'a>(
    kind: Kind,
    runtime: Runtime,
    meta: Option<&'a ContainerMeta>,
    pod: Option<&'a PodMeta>,
) -> Names<'a> {
    let image = meta.and_then(|m| {
        let name = m.image_name.as_deref()?;
        Some(match m.image_tags.first() {
            Some(tag) => format!("{name}:{tag}"),
            None => name.to_string(),
        })
    });
    Names {
        name: match kind {
            Kind::Container => {
                meta.and_then(|m| m.name.as_deref().or(m.k8s_container_name.as_deref()))
            }
            Kind::Pod => pod.and_then(|p| p.name.as_deref()),
        },
        image,
        runtime: meta
            .and_then(|m| m.runtime_name.as_deref())
            .unwrap_or(runtime.as_str()),
        namespace: meta
            .and_then(|m| m.k8s_namespace_name.as_deref())
            .or(pod.and_then(|p| p.namespace.as_deref())),
        pod: meta
            .and_then(|m| m.k8s_pod_name.as_deref())
            .or(pod.and_then(|p| p.name.as_deref())),
    }
}

fn identity(
    j: &mut Json,
    kind: Kind,
    runtime: Runtime,
    pod_uid: Option<&str>,
    meta: Option<&ContainerMeta>,
    pod: Option<&PodMeta>,
    created: SystemTime,
) {
    let n = names(kind, runtime, meta, pod);
    j.key("identity").open(b'{');
    j.key("name").opt_string(n.name);
    j.key("image").opt_string(n.image.as_deref());
    j.key("runtime").string(n.runtime);
    j.key("namespace").opt_string(n.namespace);
    j.key("pod").opt_string(n.pod);
    j.key("pod_uid").opt_string(pod_uid);
    j.key("created").uint(ms(unix(created)));
    j.close(b'}');
}

fn kind(k: Kind) -> &'static str {
    match k {
        Kind::Container => "container",
        Kind::Pod => "pod",
    }
}

fn row_head(j: &mut Json, id: &str, r: &Row, clock: &Clock) {
    j.key("id").string(id);
    j.key("kind").string(kind(r.kind));
    j.key("running").bool(r.running(clock));
}

fn row_identity(j: &mut Json, r: &Row) {
    identity(
        j,
        r.kind,
        r.runtime,
        r.pod_uid.as_deref(),
        r.meta.as_deref(),
        r.pod.as_deref(),
        r.created,
    );
}

/// The ten series' points after `since`, one array per series.
fn points(j: &mut Json, r: &Row, clock: &Clock, since: Option<u64>) {
    j.key("points").open(b'[');
    for s in 0..N {
        j.open(b'[');
        for seq in clock.after(since) {
            j.point(r.ring.get(clock, s, seq));
        }
        j.close(b']');
    }
    j.close(b']');
}

fn ended_row(j: &mut Json, e: &EndedRow) {
    j.open(b'{');
    j.key("id").string(&e.id);
    identity(
        j,
        Kind::Container,
        e.runtime,
        e.pod_uid.as_deref(),
        e.meta.as_deref(),
        e.pod.as_deref(),
        e.created,
    );
    j.key("ended").uint(ms(unix(e.ended)));
    j.key("exit_code")
        .opt_number(e.exit.and_then(|x| x.code).map(f64::from));
    j.key("reason")
        .opt_string(e.exit.map(|x| x.reason.as_str()));
    j.key("restart_count")
        .opt_number(e.exit.and_then(|x| x.restart_count).map(f64::from));
    j.key("cpu_seconds").opt_number(e.cpu_seconds);
    j.key("memory_peak").opt_number(e.memory_peak);
    j.close(b'}');
}

fn ended_list<'a>(j: &mut Json, rows: impl Iterator<Item = &'a EndedRow>) {
    j.key("ended").open(b'[');
    for e in rows {
        ended_row(j, e);
    }
    j.close(b']');
}

/// `GET /api/v1/overview?since=&offset=&limit=`.
pub fn overview(
    store: &Store,
    setting: &Setting,
    query: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let p = params(query, &["since", "offset", "limit"])?;
    let clock = &store.clock;
    let since = since(&p, clock)?;
    let cap = max_rows(clock.capacity());
    let limit = match number(&p, "limit")? {
        Some(0) => return Err(ApiError::ZeroLimit),
        Some(l) if l > cap as u64 => return Err(ApiError::LimitPastCap { limit: l, cap }),
        Some(l) => l as usize,
        None => cap,
    };
    let offset = number(&p, "offset")?.unwrap_or(0).min(usize::MAX as u64) as usize;
    let ticks = clock.after(since).count();
    let mut j = Json::with_capacity(256 + limit.min(store.rows.len()) * (200 + N * 6 * ticks));
    j.open(b'{');
    header(&mut j, store, setting, since);
    j.key("series").open(b'[');
    for s in &SERIES {
        j.open(b'{')
            .key("key")
            .string(s.key)
            .key("metric")
            .string(s.metric)
            .key("unit")
            .string(s.unit)
            .close(b'}');
    }
    j.close(b']');
    j.key("total").uint(store.rows.len() as u64);
    j.key("offset").uint(offset as u64);
    j.key("limit").uint(limit as u64);
    j.key("max_limit").uint(cap as u64);
    j.key("rows").open(b'[');
    for (id, r) in store.rows.iter().skip(offset).take(limit) {
        j.open(b'{');
        row_head(&mut j, id, r, clock);
        if since.is_none_or(|s| r.ident_seq > s) {
            row_identity(&mut j, r);
        }
        j.key("limits").open(b'[');
        for v in r.limits.now {
            j.number(f64::from(v));
        }
        j.close(b']');
        points(&mut j, r, clock, since);
        j.close(b'}');
    }
    j.close(b']');
    ended_list(&mut j, store.ended.rows());
    j.close(b'}');
    Ok(j.out)
}

/// `GET /api/v1/ended`.
pub fn ended(store: &Store, setting: &Setting, query: Option<&str>) -> Result<Vec<u8>, ApiError> {
    params(query, &[])?;
    let mut j = Json::default();
    j.open(b'{');
    j.key("version").uint(VERSION);
    j.key("epoch").uint(setting.epoch_ms);
    j.key("capacity").uint(store.ended.capacity() as u64);
    ended_list(&mut j, store.ended.rows());
    j.close(b'}');
    Ok(j.out)
}

/// The full id of the row `id` names (itself, or a unique prefix of 12 characters or more).
pub fn resolve(store: &Store, id: &str) -> Result<String, ApiError> {
    if store.rows.contains_key(id) {
        return Ok(id.to_string());
    }
    let matching: Vec<&String> = if id.len() >= 12 {
        store
            .rows
            .range(id.to_string()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(id))
            .take(2)
            .collect()
    } else {
        Vec::new()
    };
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ApiError::NoSuchContainer(id.chars().take(80).collect())),
        _ => Err(ApiError::Ambiguous {
            prefix: id.to_string(),
            n: store.rows.keys().filter(|k| k.starts_with(id)).count(),
        }),
    }
}

/// The resource attributes the outputs carry for this row (the one function that writes
/// them, with no host attributes).
fn attributes(id: &str, r: &Row) -> Vec<(String, String)> {
    let state = ContainerState::with_samples(
        Found {
            id: id.to_string(),
            kind: r.kind,
            runtime: r.runtime,
            pod_uid: r.pod_uid.clone(),
            rel: PathBuf::new(),
        },
        r.created,
        Default::default(),
        Default::default(),
        Duration::ZERO,
    );
    let d = Described {
        state: &state,
        meta: r.meta.clone(),
        pod: r.pod.clone(),
    };
    HostResource::default()
        .attributes(&d)
        .into_iter()
        .map(|(k, v)| {
            let v = v.joined().into_owned();
            (k, v)
        })
        .collect()
}

/// `GET /api/v1/containers/<id>?since=`: everything about one container or pod. `id` is
/// resolved already.
pub fn container(
    store: &Store,
    setting: &Setting,
    id: &str,
    query: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let p = params(query, &["since"])?;
    let clock = &store.clock;
    let since = since(&p, clock)?;
    let r = store
        .rows
        .get(id)
        .ok_or_else(|| ApiError::NoSuchContainer(id.to_string()))?;
    let mut j = Json::with_capacity(4096);
    j.open(b'{');
    header(&mut j, store, setting, since);
    row_head(&mut j, id, r, clock);
    row_identity(&mut j, r);
    j.key("attributes").open(b'[');
    for (k, v) in attributes(id, r) {
        j.open(b'[').string(&k).string(&v).close(b']');
    }
    j.close(b']');
    j.key("series").open(b'[');
    for (s, def) in SERIES.iter().enumerate() {
        j.open(b'{');
        j.key("key")
            .string(def.key)
            .key("metric")
            .string(def.metric)
            .key("unit")
            .string(def.unit);
        j.key("points").open(b'[');
        for seq in clock.after(since) {
            j.point(r.ring.get(clock, s, seq));
        }
        j.close(b']').close(b'}');
    }
    j.close(b']');
    j.key("limits").open(b'{');
    for (i, name) in LIMITS.iter().enumerate() {
        j.key(name).open(b'{');
        j.key("now").number(f64::from(r.limits.now[i]));
        j.key("changes").open(b'[');
        for c in r.limits.changes.iter().filter(|c| usize::from(c.1) == i) {
            j.open(b'[').uint(c.0).number(f64::from(c.2)).close(b']');
        }
        j.close(b']').close(b'}');
    }
    j.close(b'}');
    let detail = store.watched.details.get(id);
    j.key("detail").open(b'[');
    for s in detail.map(|d| d.series.as_slice()).unwrap_or_default() {
        let def = s.metric.def();
        j.open(b'{');
        j.key("metric").string(def.name);
        let unit = if def.instrument == crate::metrics::Instrument::Counter {
            format!("{}/s", def.unit)
        } else {
            def.unit.to_string()
        };
        j.key("unit").string(&unit);
        j.key("attributes").open(b'{');
        for (k, v) in def.attributes.iter().zip(&s.attrs) {
            j.key(k).string(v);
        }
        j.close(b'}');
        j.key("points").open(b'[');
        for seq in clock.after(since) {
            j.point(s.ring.get(clock, 0, seq));
        }
        j.close(b']').close(b'}');
    }
    j.close(b']');
    ended_list(&mut j, store.ended.runs(id));
    j.close(b'}');
    Ok(j.out)
}
