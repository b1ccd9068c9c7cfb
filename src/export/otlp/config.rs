//! What OTLP export is configured to do: the flags and the standard `OTEL_EXPORTER_OTLP_*`
//! variables, resolved once at start with the specification's precedence (flag, then the
//! metrics-specific variable, then the generic one, then the default). An invalid value stops
//! the exporter at start with a message naming the variable ([`OtlpConfigError`]).

use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{OtlpArgs, Protocol};
use crate::resource::parse_resource_attributes;

/// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`.
///
/// Every metric here is observed (read from the kernel each tick), so in the
/// specification's terms they are *asynchronous* instruments: `delta` makes the Counters
/// delta (UpDownCounters stay cumulative), and `lowmemory`, which asks for delta only on
/// synchronous Counters and Histograms, leaves everything cumulative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    Cumulative,
    Delta,
    LowMemory,
}

impl Temporality {
    pub fn as_str(self) -> &'static str {
        match self {
            Temporality::Cumulative => "cumulative",
            Temporality::Delta => "delta",
            Temporality::LowMemory => "lowmemory",
        }
    }
}

/// A flag or variable that does not hold what OTLP export needs: each names it.
#[derive(Debug, thiserror::Error)]
pub enum OtlpConfigError {
    /// A value the variable does not take, or a CA file without a certificate.
    #[error("{key}={value:?}: {why}")]
    Invalid {
        key: String,
        value: String,
        why: &'static str,
    },
    /// The endpoint is not a URL requests can go to.
    #[error("{key}={value:?}")]
    Endpoint {
        key: String,
        value: String,
        #[source]
        source: EndpointError,
    },
    #[error("{key}")]
    Headers {
        key: &'static str,
        #[source]
        source: HeaderError,
    },
    /// A file the variable names cannot be read.
    #[error("{key}={path:?}: cannot read the {what}")]
    Read {
        key: String,
        path: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A client certificate without its key, or a key without its certificate.
    #[error("{set} is set but {missing} is not: a client certificate needs its key")]
    Unpaired { set: String, missing: &'static str },
    #[error("{keys}")]
    ClientIdentity {
        keys: String,
        #[source]
        source: IdentityError,
    },
}

/// Why an endpoint is not a URL requests can go to.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("the URL needs a scheme (`http://` or `https://`)")]
    NoScheme,
    #[error("not a URL")]
    NotUrl(#[source] hyper::http::uri::InvalidUri),
    #[error("the scheme must be http or https, not {0}")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("a base URL with a query string cannot get `/v1/metrics` appended")]
    Query,
}

/// Why `OTEL_EXPORTER_OTLP_HEADERS` does not parse.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("{0:?} is not key=value")]
    NotKeyValue(String),
    #[error("{key}: bad percent-encoding in {value:?}")]
    Encoding { key: String, value: String },
    #[error("{0:?} is not a valid header name")]
    Name(String),
    #[error("{key}: {value:?} is not a valid header value")]
    Value { key: String, value: String },
}

/// Why a client certificate or its key does not parse: `<path>: not PEM`, `<path>: no PEM
/// certificate …`, `the client key for <path>: no PEM private key`.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {why}")]
pub struct IdentityError {
    what: String,
    why: &'static str,
    #[source]
    source: Option<rustls_pki_types::pem::Error>,
}

/// Everything the exporter needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    pub protocol: Protocol,
    /// The full URL: for http/protobuf including the path; for gRPC `scheme://host:port`.
    pub endpoint: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
    pub gzip: bool,
    /// PEM bytes of the CA certificates to trust instead of the system roots.
    pub ca_pem: Option<Vec<u8>>,
    pub ca_path: Option<String>,
    /// The client certificate chain and key (PEM) for mutual TLS, from
    /// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` and `OTEL_EXPORTER_OTLP_CLIENT_KEY`.
    pub client_identity: Option<ClientIdentity>,
    pub temporality: Temporality,
    pub queue_size: usize,
    /// `--otlp-max-request-size`: requests are cut between resources to stay within it.
    pub max_request_size: usize,
    /// `OTEL_SERVICE_NAME`, else `service.name` of `OTEL_RESOURCE_ATTRIBUTES`, else
    /// `container-exporter`.
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES`, raw.
    pub resource_attributes: Option<String>,
}

/// A client certificate and its key, checked to parse at start.
#[derive(Clone)]
pub struct ClientIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub cert_path: String,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        write!(f, "ClientIdentity({})", self.cert_path)
    }
}

impl ClientIdentity {
    /// The chain and key as rustls takes them.
    pub fn parts(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), IdentityError> {
        let cert = |why, source| IdentityError {
            what: self.cert_path.clone(),
            why,
            source,
        };
        let chain = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert("not PEM", Some(e)))?;
        if chain.is_empty() {
            let why = "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file";
            return Err(cert(why, None));
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| IdentityError {
            what: format!("the client key for {}", self.cert_path),
            why: "no PEM private key",
            source: Some(e),
        })?;
        Ok((chain, key))
    }
}

/// How the environment is read (a map in tests, the process environment in production).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The metrics-specific variable, else the generic one; empty values count as unset.
fn otel(env: Env, suffix: &str) -> Option<(String, String)> {
    for key in [
        format!("OTEL_EXPORTER_OTLP_METRICS_{suffix}"),
        format!("OTEL_EXPORTER_OTLP_{suffix}"),
    ] {
        if let Some(v) = env(&key).map(|v| v.trim().to_string())
            && !v.is_empty()
        {
            return Some((key, v));
        }
    }
    None
}

impl OtlpConfig {
    /// Resolves the flags and the process environment. `Ok(None)`: OTLP is off.
    pub fn from_args(args: &OtlpArgs) -> Result<Option<OtlpConfig>, OtlpConfigError> {
        OtlpConfig::resolve(args, &|key| std::env::var(key).ok())
    }

    pub fn resolve(args: &OtlpArgs, env: Env) -> Result<Option<OtlpConfig>, OtlpConfigError> {
        let invalid =
            |key: String, value: String, why| OtlpConfigError::Invalid { key, value, why };
        let protocol = match args.otlp_protocol {
            Some(p) => p,
            None => match otel(env, "PROTOCOL") {
                None => Protocol::HttpProtobuf,
                Some((_, v)) if v == "grpc" => Protocol::Grpc,
                Some((_, v)) if v == "http/protobuf" => Protocol::HttpProtobuf,
                Some((key, v)) => {
                    return Err(invalid(
                        key,
                        v,
                        "the protocol must be `grpc` or `http/protobuf` (http/json is not \
                         supported)",
                    ));
                }
            },
        };
        let flag = args
            .otlp_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if flag.is_some_and(|v| v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("none")) {
            return Ok(None);
        }
        // (source, value, whether the path is taken as is: see `endpoint_url`)
        let Some((source, raw, as_is)) = flag
            .map(|v| ("--otlp-endpoint".to_string(), v.to_string(), None))
            .or_else(|| {
                otel(env, "ENDPOINT").map(|(k, v)| (k.clone(), v, Some(k.contains("METRICS"))))
            })
        else {
            return Ok(None);
        };
        let insecure = match otel(env, "INSECURE") {
            None => false,
            Some((_, v)) if v.eq_ignore_ascii_case("true") => true,
            Some((_, v)) if v.eq_ignore_ascii_case("false") => false,
            Some((key, v)) => return Err(invalid(key, v, "must be `true` or `false`")),
        };
        let endpoint = endpoint_url(protocol, &raw, as_is, insecure).map_err(|e| {
            OtlpConfigError::Endpoint {
                key: source,
                value: raw.clone(),
                source: e,
            }
        })?;

        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
        for key in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        ] {
            if let Some(v) = env(key) {
                let parsed =
                    parse_headers(&v).map_err(|source| OtlpConfigError::Headers { key, source })?;
                for (k, v) in parsed {
                    // The metrics-specific variable wins for a key in both.
                    headers.retain(|(o, _)| *o != k);
                    headers.push((k, v));
                }
            }
        }

        let timeout = match otel(env, "TIMEOUT") {
            None => Duration::from_secs(10),
            Some((key, v)) => match v.parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(invalid(
                        key,
                        v,
                        "the timeout is a positive number of milliseconds",
                    ));
                }
            },
        };
        let gzip = match otel(env, "COMPRESSION") {
            None => false,
            Some((_, v)) if v.eq_ignore_ascii_case("gzip") => true,
            Some((_, v)) if v.eq_ignore_ascii_case("none") => false,
            Some((key, v)) => return Err(invalid(key, v, "compression is `gzip` or `none`")),
        };
        let read = |key: &str, path: &str, what| {
            std::fs::read(path).map_err(|source| OtlpConfigError::Read {
                key: key.to_string(),
                path: path.to_string(),
                what,
                source,
            })
        };
        let (ca_pem, ca_path) = match otel(env, "CERTIFICATE") {
            None => (None, None),
            Some((key, path)) => {
                let pem = read(&key, &path, "CA file")?;
                let n = CertificateDer::pem_slice_iter(&pem)
                    .filter(|c| c.is_ok())
                    .count();
                if n == 0 {
                    let why = "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file";
                    return Err(invalid(key, path, why));
                }
                (Some(pem), Some(path))
            }
        };
        let client_identity = match (otel(env, "CLIENT_CERTIFICATE"), otel(env, "CLIENT_KEY")) {
            (None, None) => None,
            (Some((set, _)), None) | (None, Some((set, _))) => {
                let missing = if set.ends_with("_KEY") {
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
                } else {
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY"
                };
                return Err(OtlpConfigError::Unpaired { set, missing });
            }
            (Some((ck, cp)), Some((kk, kp))) => {
                let id = ClientIdentity {
                    cert_pem: read(&ck, &cp, "client certificate")?,
                    key_pem: read(&kk, &kp, "client key")?,
                    cert_path: cp.clone(),
                };
                id.parts()
                    .map_err(|source| OtlpConfigError::ClientIdentity {
                        keys: format!("{ck}/{kk}"),
                        source,
                    })?;
                Some(id)
            }
        };
        let temporality = match env("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE")
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .as_deref()
        {
            None | Some("cumulative") => Temporality::Cumulative,
            Some("delta") => Temporality::Delta,
            Some("lowmemory") => Temporality::LowMemory,
            Some(v) => {
                return Err(invalid(
                    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE".into(),
                    v.into(),
                    "must be `cumulative`, `delta` or `lowmemory`",
                ));
            }
        };
        let resource_attributes = env("OTEL_RESOURCE_ATTRIBUTES");
        let service_name = env("OTEL_SERVICE_NAME")
            .filter(|v| !v.trim().is_empty())
            .or_else(|| {
                resource_attributes.as_deref().and_then(|r| {
                    parse_resource_attributes(r)
                        .into_iter()
                        .find(|(k, _)| k == "service.name")
                        .map(|(_, v)| v)
                })
            })
            .unwrap_or_else(|| "container-exporter".to_string());
        Ok(Some(OtlpConfig {
            protocol,
            endpoint,
            headers,
            timeout,
            gzip,
            ca_pem,
            ca_path,
            client_identity,
            temporality,
            queue_size: args.otlp_queue_size as usize,
            max_request_size: args.otlp_max_request_size as usize,
            service_name,
            resource_attributes,
        }))
    }
}

/// The URL requests go to. `as_is`: `None` for the flag (path appended only when there is
/// none), `Some(true)` for the metrics-specific variable, `Some(false)` for the generic one
/// (`v1/metrics` appended to its path).
fn endpoint_url(
    protocol: Protocol,
    raw: &str,
    as_is: Option<bool>,
    insecure: bool,
) -> Result<String, EndpointError> {
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else if protocol == Protocol::Grpc {
        // OTEL_EXPORTER_OTLP_INSECURE decides for a gRPC endpoint without a scheme.
        let scheme = if insecure { "http" } else { "https" };
        format!("{scheme}://{raw}")
    } else {
        return Err(EndpointError::NoScheme);
    };
    let uri: hyper::Uri = with_scheme.parse().map_err(EndpointError::NotUrl)?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        other => return Err(EndpointError::Scheme(other.unwrap_or("none").to_string())),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(EndpointError::NoHost);
    }
    if protocol == Protocol::Grpc {
        // The gRPC path is the service's; the URL names only where to connect.
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        return Ok(format!(
            "{}://{authority}",
            uri.scheme_str().unwrap_or("http")
        ));
    }
    let path = uri.path();
    let append = match as_is {
        Some(true) => false,
        Some(false) => true,
        None => path.is_empty() || path == "/",
    };
    if !append {
        return Ok(with_scheme);
    }
    let base = with_scheme.trim_end_matches('/');
    // A query string on a base URL is unusual enough to refuse rather than guess.
    if uri.query().is_some() {
        return Err(EndpointError::Query);
    }
    Ok(format!("{base}/v1/metrics"))
}

/// `OTEL_EXPORTER_OTLP_HEADERS`: comma-separated `key=value`, percent-decoded (W3C Baggage
/// style). Keys must be valid header names; values valid header values.
pub fn parse_headers(s: &str) -> Result<Vec<(HeaderName, HeaderValue)>, HeaderError> {
    let mut out = Vec::new();
    for pair in s.split(',') {
        if pair.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = pair.split_once('=') else {
            return Err(HeaderError::NotKeyValue(pair.to_string()));
        };
        let k = k.trim().to_ascii_lowercase();
        let Some((_, decoded)) = parse_resource_attributes(&format!("k={}", v.trim())).pop() else {
            return Err(HeaderError::Encoding {
                key: k,
                value: v.to_string(),
            });
        };
        let Ok(name) = HeaderName::from_bytes(k.as_bytes()) else {
            return Err(HeaderError::Name(k));
        };
        let Ok(value) = HeaderValue::from_str(&decoded) else {
            return Err(HeaderError::Value {
                key: k,
                value: decoded,
            });
        };
        out.push((name, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(endpoint: Option<&str>) -> OtlpArgs {
        OtlpArgs {
            otlp_endpoint: endpoint.map(str::to_string),
            otlp_protocol: None,
            otlp_queue_size: 10,
            otlp_max_request_size: 4 << 20,
        }
    }

    /// `env`: `KEY=value` each.
    fn resolve(a: &OtlpArgs, env: &[&str]) -> Result<Option<OtlpConfig>, OtlpConfigError> {
        let env = |key: &str| {
            let mut pairs = env.iter().filter_map(|kv| kv.split_once('='));
            pairs.find(|(k, _)| *k == key).map(|(_, v)| v.to_string())
        };
        OtlpConfig::resolve(a, &env)
    }

    fn ok(a: &OtlpArgs, env: &[&str]) -> OtlpConfig {
        resolve(a, env).unwrap().unwrap()
    }

    #[test]
    fn off_without_an_endpoint() {
        for (flag, env) in [
            (None, &[][..]),
            (None, &["OTEL_EXPORTER_OTLP_PROTOCOL=grpc"]),
            (Some("off"), &["OTEL_EXPORTER_OTLP_ENDPOINT=http://x:4318"]),
        ] {
            assert!(
                resolve(&args(flag), env).unwrap().is_none(),
                "{flag:?} {env:?}"
            );
        }
    }

    #[test]
    fn endpoint_precedence_and_paths() {
        let c = ok(&args(None), &["OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318"]);
        assert_eq!(c.endpoint, "http://c:4318/v1/metrics");
        assert_eq!(c.protocol, Protocol::HttpProtobuf);
        let c = ok(
            &args(None),
            &["OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318/base/"],
        );
        assert_eq!(c.endpoint, "http://c:4318/base/v1/metrics");
        let both = [
            "OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=https://m:443/custom",
        ];
        assert_eq!(ok(&args(None), &both).endpoint, "https://m:443/custom");
        let c = ok(&args(Some("http://flag:4318")), &both[1..]);
        assert_eq!(c.endpoint, "http://flag:4318/v1/metrics");
        let c = ok(&args(Some("http://flag:4318/x/y")), &[]);
        assert_eq!(c.endpoint, "http://flag:4318/x/y");
    }

    #[test]
    fn grpc_endpoints() {
        let env = [
            "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4317/ignored",
        ];
        let c = ok(&args(None), &env);
        assert_eq!(c.protocol, Protocol::Grpc);
        assert_eq!(c.endpoint, "http://c:4317");
        let mut a = args(Some("c:4317"));
        a.otlp_protocol = Some(Protocol::Grpc);
        assert_eq!(ok(&a, &[]).endpoint, "https://c:4317");
        let c = ok(&a, &["OTEL_EXPORTER_OTLP_INSECURE=true"]);
        assert_eq!(c.endpoint, "http://c:4317");
    }

    #[test]
    fn headers_timeout_compression() {
        let c = ok(
            &args(Some("http://c:4318")),
            &[
                "OTEL_EXPORTER_OTLP_HEADERS=api-key=a%20b,X-Team=one",
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS=x-team=two",
                "OTEL_EXPORTER_OTLP_TIMEOUT=2500",
                "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION=gzip",
            ],
        );
        let headers: Vec<_> = c
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().ok()))
            .collect();
        assert_eq!(headers, [("api-key", Some("a b")), ("x-team", Some("two"))]);
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert!(c.gzip);
        assert_eq!(c.temporality, Temporality::Cumulative);
        assert_eq!(c.service_name, "container-exporter");
    }

    #[test]
    fn invalid_values_are_errors_that_name_the_variable() {
        let a = args(Some("http://c:4318"));
        for kv in [
            "OTEL_EXPORTER_OTLP_TIMEOUT=10s",
            "OTEL_EXPORTER_OTLP_COMPRESSION=zstd",
            "OTEL_EXPORTER_OTLP_PROTOCOL=http/json",
            "OTEL_EXPORTER_OTLP_HEADERS=novalue",
            "OTEL_EXPORTER_OTLP_CERTIFICATE=/nonexistent/ca.pem",
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=sometimes",
            "OTEL_EXPORTER_OTLP_INSECURE=yes",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=/nonexistent/c.pem",
            "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY=/nonexistent/c.key",
        ] {
            let k = kv.split_once('=').unwrap().0;
            let e = resolve(&a, &[kv]).unwrap_err().to_string();
            assert!(e.contains(k), "{e}");
        }
        assert!(matches!(
            resolve(&args(Some("c:4318")), &[]),
            Err(OtlpConfigError::Endpoint {
                source: EndpointError::NoScheme,
                ..
            })
        ));
        assert!(matches!(
            resolve(&args(Some("ftp://c:4318")), &[]),
            Err(OtlpConfigError::Endpoint {
                source: EndpointError::Scheme(_),
                ..
            })
        ));
        let e = resolve(&a, &["OTEL_EXPORTER_OTLP_HEADERS=a=b,novalue"]).unwrap_err();
        assert_eq!(
            crate::remote::error_chain(&e),
            "OTEL_EXPORTER_OTLP_HEADERS: \"novalue\" is not key=value"
        );
    }

    #[test]
    fn service_name() {
        let a = args(Some("http://c:4318"));
        let c = ok(&a, &["OTEL_RESOURCE_ATTRIBUTES=service.name=from-attrs"]);
        assert_eq!(c.service_name, "from-attrs");
        let c = ok(
            &a,
            &[
                "OTEL_RESOURCE_ATTRIBUTES=service.name=from-attrs",
                "OTEL_SERVICE_NAME=svc",
            ],
        );
        assert_eq!(c.service_name, "svc");
        let c = ok(
            &a,
            &["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=Delta"],
        );
        assert_eq!(c.temporality, Temporality::Delta);
    }
}
