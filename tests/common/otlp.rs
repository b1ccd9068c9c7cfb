//! An OTLP receiver inside the test: a tonic gRPC server implementing `MetricsService` and a
//! hyper HTTP server for `/v1/metrics`, both decoding with `opentelemetry-proto`'s types and
//! recording headers; one that never answers; and readers of the requests received.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, metric, number_data_point};
use prost::Message;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Proto {
    Grpc,
    Http,
}

pub struct Got {
    pub headers: BTreeMap<String, String>,
    pub request: ExportMetricsServiceRequest,
    pub at: Instant,
    /// The request's protobuf size (decompressed).
    pub bytes: usize,
}

#[derive(Default)]
pub struct Shared {
    pub refusing: AtomicBool,
    pub refused: AtomicUsize,
    /// HTTP requests refused for their size (413). Over gRPC tonic refuses them before the
    /// service sees them (RESOURCE_EXHAUSTED): the exporter's failures count those.
    pub too_large: AtomicUsize,
    pub got: Mutex<Vec<Got>>,
}

impl Shared {
    fn record(&self, headers: &hyper::HeaderMap, request: ExportMetricsServiceRequest) {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let bytes = request.encoded_len();
        self.got.lock().unwrap().push(Got {
            headers,
            request,
            at: Instant::now(),
            bytes,
        });
    }
}

/// Headers as the gRPC wrapper saw them, passed to the service in the request's extensions.
#[derive(Clone)]
struct RawHeaders(hyper::HeaderMap);

struct GrpcSvc(Arc<Shared>);

#[tonic::async_trait]
impl MetricsService for GrpcSvc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        if self.0.refusing.load(Ordering::SeqCst) {
            self.0.refused.fetch_add(1, Ordering::SeqCst);
            return Err(tonic::Status::unavailable("the test refuses for now"));
        }
        let headers = request
            .extensions()
            .get::<RawHeaders>()
            .map(|h| h.0.clone())
            .unwrap_or_default();
        self.0.record(&headers, request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

pub struct Receiver {
    rt: tokio::runtime::Runtime,
    pub port: u16,
    pub proto: Proto,
    pub shared: Arc<Shared>,
}

/// What the Collector's OTLP gRPC receiver takes by default (`max_recv_msg_size_mib: 4`), and
/// tonic's default too.
pub const GRPC_DEFAULT_LIMIT: usize = 4 << 20;

impl Receiver {
    /// Takes requests of at most [`GRPC_DEFAULT_LIMIT`] over gRPC, of any size over HTTP.
    pub fn start(proto: Proto) -> Receiver {
        Receiver::start_with_limit(proto, None)
    }

    /// Refuses requests larger than `limit` bytes of protobuf as a Collector does: gRPC by
    /// tonic's own `max_decoding_message_size` (RESOURCE_EXHAUSTED), HTTP with 413 (counted
    /// in `too_large`).
    pub fn start_with_limit(proto: Proto, limit: Option<usize>) -> Receiver {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Shared::default());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let s = shared.clone();
        match proto {
            Proto::Grpc => {
                let svc = MetricsServiceServer::new(GrpcSvc(s))
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                    .max_decoding_message_size(limit.unwrap_or(GRPC_DEFAULT_LIMIT));
                rt.spawn(async move {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else { continue };
                        let svc = svc.clone();
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                                let mut svc = svc.clone();
                                let h = RawHeaders(req.headers().clone());
                                req.extensions_mut().insert(h);
                                async move { tonic::codegen::Service::call(&mut svc, req).await }
                            });
                            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
            }
            Proto::Http => {
                rt.spawn(async move {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let s = s.clone();
                        tokio::spawn(async move {
                            let service =
                                hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                                    let s = s.clone();
                                    async move {
                                        Ok::<_, std::convert::Infallible>(
                                            http_export(&s, req, limit).await,
                                        )
                                    }
                                });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
            }
        }
        Receiver {
            rt,
            port,
            proto,
            shared,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn protocol(&self) -> &'static str {
        match self.proto {
            Proto::Grpc => "grpc",
            Proto::Http => "http/protobuf",
        }
    }

    pub fn refuse(&self, on: bool) {
        self.shared.refusing.store(on, Ordering::SeqCst);
    }

    /// Polls the received requests until `f` returns something.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&[Got]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let got = self.shared.got.lock().unwrap();
                if let Some(t) = f(&got) {
                    return t;
                }
                if Instant::now() >= deadline {
                    panic!(
                        "{what}: not within {timeout:?} ({} requests received)",
                        got.len()
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Shutting the runtime down stops the server; never block in a Drop.
        let rt = std::mem::replace(
            &mut self.rt,
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
        );
        rt.shutdown_background();
    }
}

async fn http_export(
    s: &Shared,
    req: hyper::Request<Incoming>,
    limit: Option<usize>,
) -> hyper::Response<Full<Bytes>> {
    let reply = |code: u16, body: Vec<u8>| {
        hyper::Response::builder()
            .status(code)
            .header("content-type", "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    if req.uri().path() != "/v1/metrics" || req.method() != hyper::Method::POST {
        return reply(404, Vec::new());
    }
    let headers = req.headers().clone();
    let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return reply(400, Vec::new());
    };
    if s.refusing.load(Ordering::SeqCst) {
        s.refused.fetch_add(1, Ordering::SeqCst);
        return hyper::Response::builder()
            .status(503)
            .header("retry-after", "1")
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    let raw = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .is_err()
        {
            return reply(400, b"bad gzip".to_vec());
        }
        out
    } else {
        body.to_vec()
    };
    if limit.is_some_and(|l| raw.len() > l) {
        s.too_large.fetch_add(1, Ordering::SeqCst);
        return reply(413, b"request too large".to_vec());
    }
    match ExportMetricsServiceRequest::decode(&raw[..]) {
        Ok(r) => {
            s.record(&headers, r);
            reply(200, ExportMetricsServiceResponse::default().encode_to_vec())
        }
        Err(_) => reply(400, b"bad protobuf".to_vec()),
    }
}

/// Accepts connections and never answers (holds them open).
pub struct Hanging {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Hanging {
    pub fn start() -> Hanging {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !s.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((c, _)) => held.push(c),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Hanging { port, stop }
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub fn attr(r: &ResourceMetrics, key: &str) -> Option<String> {
    let kv = r
        .resource
        .as_ref()?
        .attributes
        .iter()
        .find(|k| k.key == key)?;
    match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    }
}

pub fn resource<'a>(req: &'a ExportMetricsServiceRequest, id: &str) -> Option<&'a ResourceMetrics> {
    let mut it = req
        .resource_metrics
        .iter()
        .filter(|r| attr(r, "container.id").as_deref() == Some(id));
    let r = it.next()?;
    assert!(
        it.next().is_none(),
        "two resources for container {id} in one request"
    );
    Some(r)
}

pub fn self_resource(req: &ExportMetricsServiceRequest) -> &ResourceMetrics {
    req.resource_metrics
        .iter()
        .find(|r| attr(r, "service.name").is_some())
        .expect("the exporter's own resource")
}

/// The data points of one metric: (attributes, value, start, time).
pub fn points(r: &ResourceMetrics, name: &str) -> Vec<(Vec<String>, f64, u64, u64)> {
    let mut out = Vec::new();
    for m in r
        .scope_metrics
        .iter()
        .flat_map(|s| &s.metrics)
        .filter(|m| m.name == name)
    {
        let dps = match &m.data {
            Some(metric::Data::Sum(s)) => &s.data_points,
            Some(metric::Data::Gauge(g)) => &g.data_points,
            other => panic!("{name}: unexpected data {other:?}"),
        };
        for p in dps {
            let v = match p.value {
                Some(number_data_point::Value::AsDouble(d)) => d,
                Some(number_data_point::Value::AsInt(i)) => i as f64,
                None => panic!("{name}: a point without value"),
            };
            let attrs = p
                .attributes
                .iter()
                .map(|a| format!("{}={:?}", a.key, a.value))
                .collect();
            out.push((attrs, v, p.start_time_unix_nano, p.time_unix_nano));
        }
    }
    out
}
