//! OTLP over HTTP/protobuf: a POST of the request to `/v1/metrics` with hyper (TLS by rustls,
//! with a custom CA and a client certificate when configured). HTTP 429, 502, 503 and 504 are
//! retried (honouring `Retry-After`); other statuses are refused for good, with the server's
//! `google.rpc.Status` message.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use prost::Message;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::config::OtlpConfig;
use super::outcome::{Outcome, TransportError, user_agent};
use crate::remote::error_chain;

/// Response bodies read at most (a partial-success message or an error status).
const RESPONSE_LIMIT: usize = 64 * 1024;

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// Posts each request on a pooled connection (one idle connection kept).
pub struct HttpTransport {
    client: HttpClient,
    uri: hyper::Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    gzip: bool,
    timeout: Duration,
}

fn tls_roots(cfg: &OtlpConfig) -> Result<rustls::RootCertStore, TransportError> {
    let ca = |source: Box<dyn std::error::Error + Send + Sync>| TransportError::Tls {
        what: format!("{:?}", cfg.ca_path),
        source,
    };
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = &cfg.ca_pem {
        for c in CertificateDer::pem_slice_iter(pem) {
            let c = c.map_err(|e| ca(e.into()))?;
            roots.add(c).map_err(|e| ca(e.into()))?;
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
    pub fn new(cfg: &OtlpConfig) -> Result<HttpTransport, TransportError> {
        let uri: hyper::Uri = cfg.endpoint.parse().map_err(|source| TransportError::Uri {
            endpoint: cfg.endpoint.clone(),
            source,
        })?;
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls {
            what: "TLS".into(),
            source: e.into(),
        })?
        .with_root_certificates(tls_roots(cfg)?);
        let tls = match &cfg.client_identity {
            Some(id) => {
                let (chain, key) = id.parts()?;
                tls.with_client_auth_cert(chain, key)
                    .map_err(|e| TransportError::Tls {
                        what: format!("the client certificate {}", id.cert_path),
                        source: e.into(),
                    })?
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
        Ok(HttpTransport {
            client,
            uri,
            headers: cfg.headers.clone(),
            gzip: cfg.gzip,
            timeout: cfg.timeout,
        })
    }

    pub async fn send(&self, body: Bytes) -> Outcome {
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
                let t = self.timeout;
                return Outcome::retry(format!("no response within {t:?} from {}", self.uri));
            }
            Ok(Err(e)) => return Outcome::retry(format!("{}: {}", self.uri, error_chain(&e))),
            Ok(Ok(r)) => r,
        };
        let code = status.as_u16();
        if status.is_success() {
            return Outcome::accepted(
                ExportMetricsServiceResponse::decode(body).unwrap_or_default(),
            );
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
    if let Ok(s) = tonic_types::Status::decode(body)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let b = tonic_types::Status {
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
