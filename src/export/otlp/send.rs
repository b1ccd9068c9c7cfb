//! Delivery: a bounded queue between the collector thread and one tokio task that owns the
//! transport (tonic for gRPC, hyper for HTTP/protobuf) and retries.
//!
//! - The collector thread pushes each tick's encoded requests (one, or several when the tick
//!   is larger than `--otlp-max-request-size`) without waiting: a full queue (its bound is in
//!   ticks) drops its *oldest* tick (each request counted). Requests go out oldest first, one
//!   at a time, so a receiver sees every series in time order (receivers and the backends
//!   behind them, e.g. Prometheus remote write, reject out-of-order samples), and a backlog
//!   after an outage drains as a gap-free history of the last `--otlp-queue-size` ticks.
//!   Sending only the newest tick would lose nothing of cumulative counters (each tick carries
//!   the totals) but would lose every gauge reading and final sample of the backlog, and with
//!   delta temporality every dropped request is lost data: FIFO with drop-oldest loses the
//!   least.
//! - Retryable failures (HTTP 429/502/503/504, honouring `Retry-After`; gRPC UNAVAILABLE,
//!   DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, DATA_LOSS, CANCELLED, and RESOURCE_EXHAUSTED when
//!   the server sends RetryInfo; connection errors; timeouts) are retried with exponential
//!   backoff and jitter. Newer requests wait in the queue meanwhile; once the queue is full the
//!   request being retried is the oldest of all and is dropped in its turn (the next attempt,
//!   with the next request, still waits for the backoff: an unreachable receiver sees one
//!   attempt per backoff step, never a storm).
//! - Permanent failures (other HTTP statuses, other gRPC codes) are not retried: the
//!   server's message is logged (once per distinct message) and the request counted as failed.
//! - Every request ends as exactly one of: delivered (`exports_total{outcome="success"}`), or
//!   failed (`outcome="failure"`): refused for good, dropped from a full queue, given up after
//!   five minutes of retries, or left at shutdown. Dropped ones are also in
//!   `dropped_requests_total`.
//! - Partial success: rejected data points are counted and the server's message logged once.
//! - Every attempt has the configured timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`), so a receiver
//!   that accepts connections and never answers costs one timeout per attempt, and memory stays
//!   at the queue's bound plus the request in flight.
//!
//! Long because delivery is one piece: the queue, two transports and the classification of
//! their failures, which must agree on what a retry and a failure are.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue};
use prost::Message;
use tokio::sync::Notify;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use crate::remote::{error_chain, jitter};

use super::{OtlpConfig, Protocol};
use crate::telemetry::{Telemetry, add, get, set};

const BACKOFF_INITIAL: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A request retried this long is given up (and counted as failed), as the Collector's
/// `retry_on_failure.max_elapsed_time` does, even when the queue never fills.
const RETRY_MAX_ELAPSED: Duration = Duration::from_secs(300);
/// A server's `Retry-After` or RetryInfo is honoured up to this.
const SERVER_DELAY_MAX: Duration = Duration::from_secs(60);
/// Response bodies read at most (a partial-success message or an error status).
const RESPONSE_LIMIT: usize = 64 * 1024;
const GRPC_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// One encoded request (protobuf; for HTTP already gzip-compressed when asked).
pub struct Pending {
    pub body: Bytes,
    pub points: usize,
}

/// The bounded queue shared by the collector thread (push) and the sender task (pop). Its
/// bound is in ticks: a tick whose containers did not fit one request is one or more
/// requests, dropped together when the queue is full.
pub struct Queue {
    items: Mutex<Items>,
    cap: usize,
    wake: Notify,
    in_flight: AtomicBool,
    telemetry: Arc<Telemetry>,
}

/// Requests waiting, each with the tick it belongs to, and how many ticks they make.
#[derive(Default)]
struct Items {
    q: VecDeque<(u64, Pending)>,
    ticks: usize,
    next_tick: u64,
}

impl Items {
    /// Takes the oldest request; a tick whose last request leaves is no longer counted.
    fn pop(&mut self) -> Option<Pending> {
        let (tick, p) = self.q.pop_front()?;
        if self.q.front().is_none_or(|(t, _)| *t != tick) {
            self.ticks -= 1;
        }
        Some(p)
    }
}

impl Queue {
    pub fn new(cap: usize, telemetry: Arc<Telemetry>) -> Queue {
        Queue {
            items: Mutex::new(Items {
                q: VecDeque::with_capacity(cap.max(1)),
                ..Items::default()
            }),
            cap: cap.max(1),
            wake: Notify::new(),
            in_flight: AtomicBool::new(false),
            telemetry,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Items> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one tick's requests. Never blocks (the lock is held for a push or a pop only).
    /// A full queue drops its oldest tick's requests.
    pub fn push(&self, tick: impl IntoIterator<Item = Pending>) {
        // Built (compressed) before the lock is taken, not while the sender waits for it.
        let tick: Vec<Pending> = tick.into_iter().collect();
        let mut dropped = 0;
        {
            let mut q = self.lock();
            if q.ticks >= self.cap
                && let Some(&(oldest, _)) = q.q.front()
            {
                while q.q.front().is_some_and(|(t, _)| *t == oldest) {
                    q.pop();
                    dropped += 1;
                }
            }
            let id = q.next_tick;
            q.next_tick += 1;
            let before = q.q.len();
            q.q.extend(tick.into_iter().map(|p| (id, p)));
            if q.q.len() > before {
                q.ticks += 1;
            }
            set(&self.telemetry.otlp_queue_length, q.ticks as u64);
        }
        if dropped > 0 {
            self.count_dropped(dropped);
        }
        self.wake.notify_one();
    }

    /// A dropped request was never delivered: it is a failed export too, so
    /// `exports_total{outcome="failure"}` says what a hanging receiver costs.
    fn count_dropped(&self, n: u64) {
        let before = get(&self.telemetry.otlp_dropped_requests);
        add(&self.telemetry.otlp_dropped_requests, n);
        add(&self.telemetry.otlp_exports_failed, n);
        if before == 0 {
            tracing::warn!(
                "the OTLP queue is full: dropping the oldest request (the receiver is slow or \
                 down; counted in container_exporter_otlp_dropped_requests_total)"
            );
        }
    }

    fn pop(&self) -> Option<Pending> {
        let mut q = self.lock();
        let p = q.pop();
        if p.is_some() {
            self.in_flight.store(true, Ordering::Release);
        }
        set(&self.telemetry.otlp_queue_length, q.ticks as u64);
        p
    }

    fn is_full(&self) -> bool {
        self.lock().ticks >= self.cap
    }

    /// Requests waiting (a tick may be several).
    pub fn len(&self) -> usize {
        self.lock().q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn idle(&self) -> bool {
        self.is_empty() && !self.in_flight.load(Ordering::Acquire)
    }
}

/// Flushes what is pending at shutdown.
pub struct Flusher {
    queue: Arc<Queue>,
}

impl Flusher {
    pub fn new(queue: Arc<Queue>) -> Flusher {
        Flusher { queue }
    }

    /// Waits until every pending request was sent (or failed for good), at most `deadline`.
    /// What is still pending then is counted as dropped. Returns whether everything went.
    pub async fn flush(self, deadline: Duration) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        self.queue.wake.notify_one();
        while !self.queue.idle() {
            if tokio::time::Instant::now() >= until {
                let left =
                    self.queue.len() + usize::from(self.queue.in_flight.load(Ordering::Acquire));
                self.queue.count_dropped(left as u64);
                tracing::warn!(
                    requests = left,
                    "OTLP: pending requests not delivered within the shutdown deadline of {deadline:?}"
                );
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

/// What one attempt came to.
#[derive(Debug)]
enum Outcome {
    Accepted {
        rejected: i64,
        message: String,
    },
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    Permanent {
        reason: String,
    },
}

/// The sender task: until the runtime shuts down.
pub async fn run(mut transport: Transport, queue: Arc<Queue>, telemetry: Arc<Telemetry>) {
    let mut backoff = BACKOFF_INITIAL;
    let mut failing = false;
    let mut logged: HashSet<String> = HashSet::new();
    let mut log_once = |msg: &str| {
        if logged.len() > 100 {
            logged.clear();
        }
        logged.insert(msg.to_string())
    };
    loop {
        let Some(mut p) = queue.pop() else {
            queue.wake.notified().await;
            continue;
        };
        let mut first_try = tokio::time::Instant::now();
        loop {
            match transport.send(p.body.clone()).await {
                Outcome::Accepted { rejected, message } => {
                    add(&telemetry.otlp_exports_succeeded, 1);
                    if rejected > 0 {
                        add(&telemetry.otlp_rejected_points, rejected as u64);
                        if log_once(&message) {
                            tracing::warn!(
                                rejected,
                                of = p.points,
                                "OTLP receiver rejected data points: {message}"
                            );
                        }
                    }
                    if failing {
                        tracing::info!("OTLP export works again");
                        failing = false;
                    }
                    backoff = BACKOFF_INITIAL;
                    break;
                }
                Outcome::Permanent { reason } => {
                    add(&telemetry.otlp_exports_failed, 1);
                    if log_once(&reason) {
                        tracing::error!(
                            points = p.points,
                            "OTLP export refused, not retried: {reason}"
                        );
                    }
                    break;
                }
                Outcome::Retry { after, reason } => {
                    if !failing {
                        tracing::warn!("OTLP export failed, retrying with backoff: {reason}");
                        failing = true;
                    } else {
                        tracing::debug!("OTLP export failed again: {reason}");
                    }
                    let delay = match after {
                        Some(d) => d.min(SERVER_DELAY_MAX),
                        None => jitter(backoff),
                    };
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    add(&telemetry.otlp_retries, 1);
                    tokio::time::sleep(delay).await;
                    let expired = first_try.elapsed() >= RETRY_MAX_ELAPSED;
                    if queue.is_full() || expired {
                        // The oldest of all (or retried too long): its turn to be dropped. The
                        // next request goes now (after this backoff), not in a burst.
                        if expired && log_once("expired") {
                            tracing::warn!(
                                "OTLP: a request retried for {RETRY_MAX_ELAPSED:?} is given up \
                                 (counted as failed)"
                            );
                        }
                        queue.count_dropped(1);
                        match queue.pop() {
                            Some(next) => {
                                p = next;
                                first_try = tokio::time::Instant::now();
                            }
                            None => break,
                        }
                    }
                }
            }
        }
        queue.in_flight.store(false, Ordering::Release);
    }
}

// ---------------------------------------------------------------------------------------------
// Transports
// ---------------------------------------------------------------------------------------------

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

pub enum Transport {
    Http(HttpTransport),
    Grpc(GrpcTransport),
}

pub struct HttpTransport {
    client: HttpClient,
    uri: hyper::Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    gzip: bool,
    timeout: Duration,
}

pub struct GrpcTransport {
    grpc: tonic::client::Grpc<Channel>,
    metadata: tonic::metadata::MetadataMap,
    timeout: Duration,
}

fn user_agent() -> String {
    format!("container-exporter/{}", super::VERSION)
}

impl Transport {
    /// Builds the client (call inside the runtime: the gRPC channel connects lazily on it).
    pub fn new(cfg: &OtlpConfig) -> Result<Transport, String> {
        match cfg.protocol {
            Protocol::HttpProtobuf => Ok(Transport::Http(HttpTransport::new(cfg)?)),
            Protocol::Grpc => Ok(Transport::Grpc(GrpcTransport::new(cfg)?)),
        }
    }

    async fn send(&mut self, body: Bytes) -> Outcome {
        match self {
            Transport::Http(h) => h.send(body).await,
            Transport::Grpc(g) => g.send(body).await,
        }
    }
}

/// Sends one empty request (an `ExportMetricsServiceRequest` without resources, which OTLP
/// receivers answer with success): whether the endpoint, protocol, TLS, client certificate
/// and headers work, and how long the answer took. For `check`; counts nothing. Call inside
/// a runtime.
pub async fn probe(cfg: &OtlpConfig) -> Result<Duration, String> {
    let mut transport = Transport::new(cfg)?;
    let body = if cfg.gzip && cfg.protocol == Protocol::HttpProtobuf {
        Bytes::from(super::gzip(&[]))
    } else {
        Bytes::new()
    };
    let start = std::time::Instant::now();
    match transport.send(body).await {
        Outcome::Accepted { .. } => Ok(start.elapsed()),
        Outcome::Retry { reason, .. } => Err(format!("{reason} (the daemon would retry)")),
        Outcome::Permanent { reason } => Err(format!("{reason} (the daemon would not retry)")),
    }
}

fn tls_roots(cfg: &OtlpConfig) -> Result<rustls::RootCertStore, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = &cfg.ca_pem {
        for c in CertificateDer::pem_slice_iter(pem) {
            let c = c.map_err(|e| format!("{:?}: {e}", cfg.ca_path))?;
            roots
                .add(c)
                .map_err(|e| format!("{:?}: {e}", cfg.ca_path))?;
        }
    } else if cfg.endpoint.starts_with("https:") {
        let found = rustls_native_certs::load_native_certs();
        for c in found.certs {
            let _ = roots.add(c);
        }
        if roots.is_empty() {
            tracing::warn!(
                "no system CA certificates found: TLS to {} will fail (set \
                 OTEL_EXPORTER_OTLP_CERTIFICATE)",
                cfg.endpoint
            );
        }
    }
    Ok(roots)
}

impl HttpTransport {
    fn new(cfg: &OtlpConfig) -> Result<HttpTransport, String> {
        let uri: hyper::Uri = cfg
            .endpoint
            .parse()
            .map_err(|e| format!("{}: {e}", cfg.endpoint))?;
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(tls_roots(cfg)?);
        let tls = match &cfg.client_identity {
            Some(id) => {
                let (chain, key) = id.parts()?;
                tls.with_client_auth_cert(chain, key)
                    .map_err(|e| format!("the client certificate {}: {e}", id.cert_path))?
            }
            None => tls.with_no_client_auth(),
        };
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(cfg.timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(1)
                .build(https);
        let headers = cfg
            .headers
            .iter()
            .map(|(k, v)| {
                Ok((
                    HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("header {k}: {e}"))?,
                    HeaderValue::from_str(v).map_err(|e| format!("header {k}: {e}"))?,
                ))
            })
            .collect::<Result<_, String>>()?;
        Ok(HttpTransport {
            client,
            uri,
            headers,
            gzip: cfg.gzip,
            timeout: cfg.timeout,
        })
    }

    async fn send(&self, body: Bytes) -> Outcome {
        use hyper::header;
        let mut req = hyper::Request::post(self.uri.clone())
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .header(header::USER_AGENT, user_agent());
        if self.gzip {
            req = req.header(header::CONTENT_ENCODING, "gzip");
        }
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let req = match req.body(Full::new(body)) {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Permanent {
                    reason: format!("cannot build the request: {e}"),
                };
            }
        };
        let exchange = async {
            let resp = self.client.request(req).await?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = Limited::new(resp.into_body(), RESPONSE_LIMIT)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, hyper_util::client::legacy::Error>((status, retry_after, body))
        };
        let (status, retry_after, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => {
                return Outcome::Retry {
                    after: None,
                    reason: format!("no response within {:?} from {}", self.timeout, self.uri),
                };
            }
            Ok(Err(e)) => {
                return Outcome::Retry {
                    after: None,
                    reason: format!("{}: {}", self.uri, error_chain(&e)),
                };
            }
            Ok(Ok(r)) => r,
        };
        let code = status.as_u16();
        if status.is_success() {
            let resp = ExportMetricsServiceResponse::decode(body).unwrap_or_default();
            let (rejected, message) = resp
                .partial_success
                .map(|p| (p.rejected_data_points, p.error_message))
                .unwrap_or_default();
            return Outcome::Accepted { rejected, message };
        }
        let message = status_message(&body);
        let reason = format!("{} answered HTTP {status}: {message}", self.uri);
        if matches!(code, 429 | 502 | 503 | 504) {
            Outcome::Retry {
                after: retry_after,
                reason,
            }
        } else {
            Outcome::Permanent { reason }
        }
    }
}

/// The message of a `google.rpc.Status` body, else the body as text (shortened).
fn status_message(body: &[u8]) -> String {
    if let Ok(s) = RpcStatus::decode(body)
        && !s.message.is_empty()
    {
        return s.message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(no message)".into();
    }
    text.chars().take(300).collect()
}

impl GrpcTransport {
    fn new(cfg: &OtlpConfig) -> Result<GrpcTransport, String> {
        use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
        let mut ep = Endpoint::from_shared(cfg.endpoint.clone())
            .map_err(|e| format!("{}: {e}", cfg.endpoint))?
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .tcp_nodelay(true)
            .user_agent(user_agent())
            .map_err(|e| e.to_string())?;
        if cfg.endpoint.starts_with("https:") {
            let mut tls = match &cfg.ca_pem {
                Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
                None => ClientTlsConfig::new().with_native_roots(),
            };
            if let Some(id) = &cfg.client_identity {
                tls = tls.identity(tonic::transport::Identity::from_pem(
                    &id.cert_pem,
                    &id.key_pem,
                ));
            }
            ep = ep
                .tls_config(tls)
                .map_err(|e| format!("TLS for {}: {}", cfg.endpoint, error_chain(&e)))?;
        }
        let channel = ep.connect_lazy();
        let mut grpc = tonic::client::Grpc::new(channel);
        if cfg.gzip {
            grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        grpc = grpc.accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        let mut metadata = tonic::metadata::MetadataMap::new();
        for (k, v) in &cfg.headers {
            let key = tonic::metadata::MetadataKey::from_bytes(k.as_bytes())
                .map_err(|e| format!("header {k}: {e}"))?;
            let value = v.parse().map_err(|e| format!("header {k}: {e}"))?;
            metadata.insert(key, value);
        }
        Ok(GrpcTransport {
            grpc,
            metadata,
            timeout: cfg.timeout,
        })
    }

    async fn send(&mut self, body: Bytes) -> Outcome {
        let mut req = tonic::Request::new(body);
        *req.metadata_mut() = self.metadata.clone();
        req.set_timeout(self.timeout);
        let grpc = &mut self.grpc;
        let call = async move {
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unavailable(error_chain(&e)))?;
            grpc.unary(
                req,
                hyper::http::uri::PathAndQuery::from_static(GRPC_PATH),
                RawCodec,
            )
            .await
        };
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Outcome::Retry {
                after: None,
                reason: format!("no response within {:?}", self.timeout),
            },
            Ok(Ok(resp)) => {
                let (rejected, message) = resp
                    .into_inner()
                    .partial_success
                    .map(|p| (p.rejected_data_points, p.error_message))
                    .unwrap_or_default();
                Outcome::Accepted { rejected, message }
            }
            Ok(Err(status)) => classify_grpc(&status),
        }
    }
}

fn classify_grpc(status: &tonic::Status) -> Outcome {
    let mut reason = format!("gRPC {:?}: {}", status.code(), status.message());
    if let Some(src) = std::error::Error::source(status) {
        reason.push_str(": ");
        reason.push_str(&error_chain(src));
    }
    let retry_info = retry_delay(status.details());
    let retry = match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::DataLoss
        | Code::Cancelled => true,
        // The specification (and the Collector) retry it only when the server says when.
        Code::ResourceExhausted => retry_info.is_some(),
        // tonic reports some transport failures (connection reset mid-call) as Unknown.
        Code::Unknown => {
            let m = reason.to_ascii_lowercase();
            m.contains("transport") || m.contains("connect") || m.contains("broken pipe")
        }
        _ => false,
    };
    if retry {
        Outcome::Retry {
            after: retry_info,
            reason,
        }
    } else {
        Outcome::Permanent { reason }
    }
}

/// `google.rpc.RetryInfo.retry_delay` from a status's details (`grpc-status-details-bin`).
fn retry_delay(details: &[u8]) -> Option<Duration> {
    let status = RpcStatus::decode(details).ok()?;
    status
        .details
        .iter()
        .find(|a| a.type_url.ends_with("/google.rpc.RetryInfo"))
        .and_then(|a| RetryInfo::decode(&a.value[..]).ok())
        .and_then(|r| r.retry_delay)
        .map(|d| {
            Duration::from_secs(d.seconds.max(0) as u64)
                + Duration::from_nanos(d.nanos.max(0) as u64)
        })
}

/// `opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse`, the answer to an
/// export: all the library reads of OTLP's messages (the requests are written by
/// [`super::wire`]), so it is declared here, with the field numbers of
/// `metrics_service.proto`, and `opentelemetry-proto` is a dependency of the tests alone.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportMetricsServiceResponse {
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportMetricsPartialSuccess>,
}

/// `ExportMetricsPartialSuccess`: data points the receiver rejected, and why.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportMetricsPartialSuccess {
    #[prost(int64, tag = "1")]
    pub rejected_data_points: i64,
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `google.rpc.Status`, the body of OTLP/HTTP errors and the gRPC status details.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// Sends pre-encoded request bytes (encoded once in the collector thread), decodes the
/// response with the generated type.
#[derive(Clone, Copy, Default)]
struct RawCodec;

struct RawEncoder;
struct ResponseDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportMetricsServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportMetricsServiceResponse;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut DecodeBuf<'_>,
    ) -> Result<Option<ExportMetricsServiceResponse>, tonic::Status> {
        let n = src.remaining();
        ExportMetricsServiceResponse::decode(src.copy_to_bytes(n))
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("bad response: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes() {
        let c = |s: tonic::Status| matches!(classify_grpc(&s), Outcome::Retry { .. });
        assert!(c(tonic::Status::unavailable("down")));
        assert!(c(tonic::Status::deadline_exceeded("slow")));
        assert!(!c(tonic::Status::invalid_argument("bad")));
        assert!(!c(tonic::Status::resource_exhausted("full")));
        let details = RpcStatus {
            code: 8,
            message: "full".into(),
            details: vec![ProtoAny {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: RetryInfo {
                    retry_delay: Some(ProtoDuration {
                        seconds: 2,
                        nanos: 500_000_000,
                    }),
                }
                .encode_to_vec(),
            }],
        }
        .encode_to_vec();
        let s = tonic::Status::with_details(Code::ResourceExhausted, "full", details.into());
        match classify_grpc(&s) {
            Outcome::Retry { after, .. } => assert_eq!(after, Some(Duration::from_millis(2500))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn queue_drops_the_oldest() {
        let t = Arc::new(Telemetry::default());
        let q = Queue::new(2, t.clone());
        for i in 0..5u8 {
            q.push([Pending {
                body: Bytes::from(vec![i]),
                points: 1,
            }]);
        }
        assert_eq!(q.len(), 2);
        assert_eq!(get(&t.otlp_dropped_requests), 3);
        assert_eq!(get(&t.otlp_exports_failed), 3, "a dropped request failed");
        assert_eq!(get(&t.otlp_queue_length), 2, "two ticks");
        assert_eq!(q.pop().unwrap().body[0], 3);
    }

    #[test]
    fn queue_bounds_ticks_and_drops_a_tick_whole() {
        let t = Arc::new(Telemetry::default());
        let q = Queue::new(2, t.clone());
        let tick = |a: u8, n: u8| {
            (0..n).map(move |i| Pending {
                body: Bytes::from(vec![a, i]),
                points: 1,
            })
        };
        q.push(tick(0, 3));
        q.push(tick(1, 2));
        assert_eq!(q.len(), 5);
        assert_eq!(get(&t.otlp_queue_length), 2, "in ticks, as the capacity");
        assert!(q.is_full());
        // The sender takes tick 0's first request; the rest of tick 0 still counts.
        assert_eq!(&q.pop().unwrap().body[..], &[0, 0]);
        assert!(q.is_full());
        q.push(tick(2, 1));
        assert_eq!(get(&t.otlp_dropped_requests), 2, "what was left of tick 0");
        let rest: Vec<Vec<u8>> = std::iter::from_fn(|| q.pop())
            .map(|p| p.body.to_vec())
            .collect();
        assert_eq!(rest, [vec![1, 0], vec![1, 1], vec![2, 0]]);
        assert!(!q.is_full());
        // A tick with nothing to send takes no place.
        q.push(tick(3, 0));
        assert_eq!(q.lock().ticks, 0);
    }

    #[test]
    fn partial_success_decodes_as_opentelemetry_proto_encodes_it() {
        use opentelemetry_proto::tonic::collector::metrics::v1 as otlp;
        let theirs = otlp::ExportMetricsServiceResponse {
            partial_success: Some(otlp::ExportMetricsPartialSuccess {
                rejected_data_points: 1234,
                error_message: "points without a name".into(),
            }),
        }
        .encode_to_vec();
        let ours = ExportMetricsServiceResponse::decode(&theirs[..]).unwrap();
        assert_eq!(
            ours.partial_success,
            Some(ExportMetricsPartialSuccess {
                rejected_data_points: 1234,
                error_message: "points without a name".into(),
            })
        );
        let empty = otlp::ExportMetricsServiceResponse::default().encode_to_vec();
        assert_eq!(
            ExportMetricsServiceResponse::decode(&empty[..]).unwrap(),
            ExportMetricsServiceResponse::default()
        );
    }

    #[test]
    fn error_bodies() {
        let b = RpcStatus {
            code: 3,
            message: "metric name missing".into(),
            details: vec![],
        }
        .encode_to_vec();
        assert_eq!(status_message(&b), "metric name missing");
        assert_eq!(status_message(b"plain text"), "plain text");
        assert_eq!(status_message(b""), "(no message)");
    }
}
