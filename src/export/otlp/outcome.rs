//! What the transports share: what one attempt came to ([`Outcome`]: accepted, to retry, or
//! refused for good), why a transport could not be built ([`TransportError`]), and the user
//! agent they send.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;

use super::wire::VERSION;

/// What one attempt came to.
#[derive(Debug)]
pub enum Outcome {
    /// Delivered; the receiver may have rejected some points (`rejected`, and why).
    Accepted { rejected: i64, message: String },
    /// Worth another attempt, after `after` when the server said when.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Refused for good.
    Permanent { reason: String },
}

impl Outcome {
    /// Worth another attempt, the server not having said when.
    pub fn retry(reason: String) -> Outcome {
        Outcome::Retry {
            after: None,
            reason,
        }
    }

    /// Delivered, with the points the response says were rejected.
    pub fn accepted(resp: ExportMetricsServiceResponse) -> Outcome {
        let (rejected, message) = resp
            .partial_success
            .map(|p| (p.rejected_data_points, p.error_message))
            .unwrap_or_default();
        Outcome::Accepted { rejected, message }
    }
}

/// Why a transport could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{endpoint}: not a URL")]
    Uri {
        endpoint: String,
        #[source]
        source: hyper::http::uri::InvalidUri,
    },
    /// tonic refused the endpoint or its TLS.
    #[error("{what} {endpoint}")]
    Grpc {
        what: &'static str,
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// rustls refused the protocol versions, the CA file (`OTEL_EXPORTER_OTLP_CERTIFICATE`:
    /// something in it is not a CA certificate) or the client certificate.
    #[error("{what}")]
    Tls {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    ClientIdentity(#[from] super::config::IdentityError),
    #[error("header {name}")]
    Header {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub fn user_agent() -> String {
    format!("container-exporter/{VERSION}")
}
