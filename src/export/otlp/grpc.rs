//! OTLP over gRPC: tonic's client on a lazily connected channel (TLS with a custom CA and a
//! client certificate when configured), sending the request bytes as they were encoded.
//! UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, DATA_LOSS and CANCELLED are retried,
//! RESOURCE_EXHAUSTED only when the server sends `google.rpc.RetryInfo` (as the specification
//! and the Collector do), and UNKNOWN only when this side's connection failed.

use std::time::Duration;

use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use tonic::Code;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic_prost::ProstDecoder;
use tonic_types::StatusExt;

use super::config::OtlpConfig;
use super::outcome::{Outcome, TransportError, user_agent};
use crate::remote::error_chain;

const GRPC_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// A unary `Export` call per request, with the configured headers as metadata.
pub struct GrpcTransport {
    grpc: tonic::client::Grpc<Channel>,
    metadata: tonic::metadata::MetadataMap,
    timeout: Duration,
}

impl GrpcTransport {
    /// Builds the client (call inside the runtime: the channel connects lazily on it).
    pub fn new(cfg: &OtlpConfig) -> Result<GrpcTransport, TransportError> {
        use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
        let refused = |what| {
            move |source| TransportError::Grpc {
                what,
                endpoint: cfg.endpoint.clone(),
                source,
            }
        };
        let mut ep = Endpoint::from_shared(cfg.endpoint.clone())
            .map_err(refused("the endpoint"))?
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .tcp_nodelay(true)
            .user_agent(user_agent())
            .map_err(refused("the user agent for"))?;
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
            ep = ep.tls_config(tls).map_err(refused("TLS for"))?;
        }
        let channel = ep.connect_lazy();
        let mut grpc = tonic::client::Grpc::new(channel);
        if cfg.gzip {
            grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        grpc = grpc.accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        let mut metadata = tonic::metadata::MetadataMap::new();
        for (k, v) in &cfg.headers {
            let header =
                |source: Box<dyn std::error::Error + Send + Sync>| TransportError::Header {
                    name: k.to_string(),
                    source,
                };
            let key = tonic::metadata::MetadataKey::from_bytes(k.as_str().as_bytes())
                .map_err(|e| header(e.into()))?;
            let value = tonic::metadata::MetadataValue::try_from(v.as_bytes())
                .map_err(|e| header(Box::new(e)))?;
            metadata.insert(key, value);
        }
        Ok(GrpcTransport {
            grpc,
            metadata,
            timeout: cfg.timeout,
        })
    }

    pub async fn send(&mut self, body: Bytes) -> Outcome {
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
            Err(_) => Outcome::retry(format!("no response within {:?}", self.timeout)),
            Ok(Ok(resp)) => Outcome::accepted(resp.into_inner()),
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
    let retry_info = status.get_details_retry_info().and_then(|r| r.retry_delay);
    let retry = match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::DataLoss
        | Code::Cancelled => true,
        // The specification (and the Collector) retry it only when the server says when.
        Code::ResourceExhausted => retry_info.is_some(),
        // tonic reports a failure of the connection itself (reset mid-call) as Unknown with
        // the error as its source; an Unknown the server sent has none.
        Code::Unknown => std::error::Error::source(status).is_some(),
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

/// Sends the request bytes as they were encoded (once, in the collector thread); decodes the
/// response as prost would. Its own encoder.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportMetricsServiceResponse;
    type Encoder = RawCodec;
    type Decoder = ProstDecoder<ExportMetricsServiceResponse>;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
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
        // RetryInfo in the details, as a server (the Collector's, in Go) sends it.
        let s = tonic::Status::with_error_details(
            Code::ResourceExhausted,
            "full",
            tonic_types::ErrorDetails::with_retry_info(Some(Duration::from_millis(2500))),
        );
        match classify_grpc(&s) {
            Outcome::Retry { after, .. } => assert_eq!(after, Some(Duration::from_millis(2500))),
            other => panic!("{other:?}"),
        }
        // Unknown: retried when the connection failed on this side, not when the server said so.
        assert!(!c(tonic::Status::unknown("the server's own failure")));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        assert!(c(tonic::Status::from_error(Box::new(io))));
    }
}
