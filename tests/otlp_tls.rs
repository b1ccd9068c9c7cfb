//! OTLP over TLS end to end (issue 11), for both protocols: the real binary sends to receivers
//! inside the test that speak TLS with a certificate from a CA made here (`openssl` CLI) and
//! require a client certificate from that CA.
//!
//! - With `OTEL_EXPORTER_OTLP_CERTIFICATE` (the CA) and
//!   `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`/`_CLIENT_KEY`: requests arrive, decoded, with the
//!   exporter's own counters in them, over a connection that presented the client certificate.
//! - Without the client certificate, or trusting another CA: nothing arrives, and the failures
//!   show in `container_exporter_otlp_exports_total{outcome="failure"}`.
//! - A receiver that accepts and never answers (defect 8): every request that is dropped counts
//!   as a failure; before the fix the failure count stayed 0 while requests were dropped.
//!
//! They need `openssl` and `curl` (`.ci/tls-tools-up.sh`); no Docker.

mod common;

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
use prost::Message;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use common::exporter::Exporter;
use common::tls::{Pki, start_exporter};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proto {
    Grpc,
    Http,
}

#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<ExportMetricsServiceRequest>>,
    /// Handshakes completed with a client certificate.
    with_client_cert: AtomicUsize,
    /// Handshakes that failed (no or untrusted client certificate, untrusted server).
    failed_handshakes: AtomicUsize,
}

struct GrpcSvc(Arc<Seen>);

#[tonic::async_trait]
impl MetricsService for GrpcSvc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.0.requests.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// A TLS receiver that requires a client certificate signed by `client_ca`.
struct Receiver {
    rt: tokio::runtime::Runtime,
    port: u16,
    seen: Arc<Seen>,
}

impl Receiver {
    fn start(proto: Proto, pki: &Pki, client_ca: &str) -> Receiver {
        let read = |n: &str| std::fs::read(pki.path(n)).unwrap();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&read("server.pem"))
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(&read("server.key")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&read(&format!("{client_ca}.pem"))) {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        cfg.alpn_protocols = match proto {
            Proto::Grpc => vec![b"h2".to_vec()],
            Proto::Http => vec![b"http/1.1".to_vec()],
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        rt.spawn(async move {
            let grpc = MetricsServiceServer::new(GrpcSvc(s.clone()))
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let (acceptor, s, grpc) = (acceptor.clone(), s.clone(), grpc.clone());
                tokio::spawn(async move {
                    let tls = match acceptor.accept(tcp).await {
                        Ok(t) => t,
                        Err(_) => {
                            s.failed_handshakes.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    };
                    if tls.get_ref().1.peer_certificates().is_some() {
                        s.with_client_cert.fetch_add(1, Ordering::SeqCst);
                    }
                    let io = TokioIo::new(tls);
                    match proto {
                        Proto::Grpc => {
                            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                                let mut grpc = grpc.clone();
                                async move { tonic::codegen::Service::call(&mut grpc, req).await }
                            });
                            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .serve_connection(io, svc)
                                .await;
                        }
                        Proto::Http => {
                            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                                let s = s.clone();
                                async move {
                                    let ok = req.uri().path() == "/v1/metrics";
                                    let body = req.into_body().collect().await.map(|b| b.to_bytes());
                                    let code = match body.ok().map(ExportMetricsServiceRequest::decode) {
                                        Some(Ok(r)) if ok => {
                                            s.requests.lock().unwrap().push(r);
                                            200
                                        }
                                        _ => 400,
                                    };
                                    Ok::<_, std::convert::Infallible>(
                                        hyper::Response::builder()
                                            .status(code)
                                            .header("content-type", "application/x-protobuf")
                                            .body(Full::new(Bytes::from(
                                                ExportMetricsServiceResponse::default().encode_to_vec(),
                                            )))
                                            .unwrap(),
                                    )
                                }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(io, svc)
                                .await;
                        }
                    }
                });
            }
        });
        Receiver { rt, port, seen }
    }

    fn received(&self) -> usize {
        self.seen.requests.lock().unwrap().len()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let rt = std::mem::replace(
            &mut self.rt,
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
        );
        rt.shutdown_background();
    }
}

fn pki() -> Pki {
    let p = Pki::new();
    p.ca("ca");
    p.ca("other-ca");
    p.server("server", "ca", "otel-collector");
    p.client("exporter", Some("ca"), "DNS:exporter.example");
    p
}

fn path(p: &Pki, n: &str) -> String {
    p.path(n).display().to_string()
}

/// Starts the exporter sending to `port` over `proto` with `env` (TLS variables), serving its
/// page on plain HTTP for the self-metrics.
fn exporter(proto: Proto, port: u16, env: &[(&str, &str)]) -> Exporter {
    let protocol = match proto {
        Proto::Grpc => "grpc",
        Proto::Http => "http/protobuf",
    };
    let endpoint = format!("https://127.0.0.1:{port}");
    let mut all = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
    ];
    all.extend_from_slice(env);
    start_exporter(
        &["--interval", "300ms", "--otlp-queue-size", "3"],
        &all,
        (&[], "http"),
    )
}

fn self_metric(e: &Exporter, name: &str, labels: &[(&str, &str)]) -> f64 {
    e.metrics().get(name, labels).unwrap_or(0.0)
}

fn mutual_tls_delivers(proto: Proto) {
    let p = pki();
    let rx = Receiver::start(proto, &p, "ca");
    let (ca, cert, key) = (
        path(&p, "ca.pem"),
        path(&p, "exporter.pem"),
        path(&p, "exporter.key"),
    );
    let e = exporter(
        proto,
        rx.port,
        &[
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &cert),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &key),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while rx.received() < 3 {
        assert!(
            Instant::now() < deadline,
            "{proto:?}: {} requests arrived over mutual TLS in 20 s:\n{}",
            rx.received(),
            e.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(rx.seen.with_client_cert.load(Ordering::SeqCst) >= 1);
    // What arrived is the exporter's: its own resource with collections counted.
    let reqs = rx.seen.requests.lock().unwrap();
    let last = reqs.last().unwrap();
    let me = last
        .resource_metrics
        .iter()
        .find(|r| {
            r.resource
                .as_ref()
                .is_some_and(|res| res.attributes.iter().any(|a| a.key == "service.name"))
        })
        .expect("the exporter's own resource");
    assert!(
        me.scope_metrics
            .iter()
            .flat_map(|s| &s.metrics)
            .any(|m| m.name == "container_exporter.collections")
    );
    drop(reqs);
    let deadline = Instant::now() + Duration::from_secs(10);
    while self_metric(
        &e,
        "container_exporter_otlp_exports_total",
        &[("outcome", "success")],
    ) < 1.0
    {
        assert!(Instant::now() < deadline, "no success counted");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        self_metric(
            &e,
            "container_exporter_otlp_exports_total",
            &[("outcome", "failure")]
        ),
        0.0
    );
}

#[test]
fn mutual_tls_delivers_over_grpc() {
    mutual_tls_delivers(Proto::Grpc);
}

#[test]
fn mutual_tls_delivers_over_http() {
    mutual_tls_delivers(Proto::Http);
}

/// Without a client certificate, or trusting another CA than the receiver's: nothing arrives,
/// and the requests count as failed once dropped.
fn refused_without_the_right_certificates(proto: Proto) {
    let p = pki();
    let rx = Receiver::start(proto, &p, "ca");
    let (ca, other) = (path(&p, "ca.pem"), path(&p, "other-ca.pem"));
    let (cert, key) = (path(&p, "exporter.pem"), path(&p, "exporter.key"));
    for env in [
        vec![("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.as_str())],
        vec![
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", other.as_str()),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", cert.as_str()),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", key.as_str()),
        ],
    ] {
        let before = rx.seen.failed_handshakes.load(Ordering::SeqCst);
        let e = exporter(proto, rx.port, &env);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self_metric(
            &e,
            "container_exporter_otlp_exports_total",
            &[("outcome", "failure")],
        ) < 1.0
        {
            assert!(
                Instant::now() < deadline,
                "{proto:?} {env:?}: no failure counted:\n{}",
                e.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(rx.received(), 0, "{proto:?} {env:?}: a request arrived");
        assert!(
            rx.seen.failed_handshakes.load(Ordering::SeqCst) > before,
            "{proto:?} {env:?}: no handshake failed at the receiver"
        );
        assert_eq!(
            self_metric(
                &e,
                "container_exporter_otlp_exports_total",
                &[("outcome", "success")]
            ),
            0.0
        );
    }
}

#[test]
fn refused_without_the_right_certificates_over_grpc() {
    refused_without_the_right_certificates(Proto::Grpc);
}

#[test]
fn refused_without_the_right_certificates_over_http() {
    refused_without_the_right_certificates(Proto::Http);
}

/// A client certificate without its key is an error at start that names the variable.
#[test]
fn client_certificate_without_key_stops_at_start() {
    let p = pki();
    let out = std::process::Command::new(common::tls::exporter_bin())
        .args(["--prometheus-listen", "off", "--docker-host", "off"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:1")
        .env(
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            path(&p, "exporter.pem"),
        )
        .env_remove("OTEL_EXPORTER_OTLP_CLIENT_KEY")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("OTEL_EXPORTER_OTLP_CLIENT_KEY"), "{err}");
}

/// Defect 8: a receiver that accepts connections and never answers. Every request that is
/// dropped was not delivered, and counts as failed.
#[test]
fn undelivered_requests_count_as_failures() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        while !s.load(Ordering::SeqCst) {
            match l.accept() {
                Ok((c, _)) => held.push(c),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    let e = start_exporter(
        &[
            "--interval",
            "200ms",
            "--otlp-endpoint",
            &format!("http://127.0.0.1:{port}"),
            "--otlp-queue-size",
            "2",
        ],
        &[("OTEL_EXPORTER_OTLP_TIMEOUT", "500")],
        (&[], "http"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let (dropped, failed) = loop {
        let page = e.metrics();
        let dropped = page.value("container_exporter_otlp_dropped_requests_total", &[]);
        let failed = page.value(
            "container_exporter_otlp_exports_total",
            &[("outcome", "failure")],
        );
        let ok = page.value(
            "container_exporter_otlp_exports_total",
            &[("outcome", "success")],
        );
        assert_eq!(ok, 0.0, "a success from a receiver that never answers");
        if dropped >= 5.0 {
            break (dropped, failed);
        }
        assert!(
            Instant::now() < deadline,
            "only {dropped} requests dropped in 20 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        failed >= dropped,
        "{dropped} requests dropped undelivered, but exports_total{{outcome=\"failure\"}} is {failed}"
    );
    drop(e);
    stop.store(true, Ordering::SeqCst);
    holder.join().unwrap();
}
