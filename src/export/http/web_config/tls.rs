//! The server's TLS from `tls_server_config`: the certificate and key, the client certificate
//! policy (Go's five `client_auth_type`s and `client_allowed_sans`), the protocol versions,
//! cipher suites and curves, narrowed to what rustls implements with a warning for the rest.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring as ring_provider;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use serde::Deserialize;

use super::error::WebConfigError;

const AT: &str = "tls_server_config";

/// `tls_server_config`. A string that is empty counts as not set, as in Go.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsSection {
    pub cert_file: Option<String>,
    pub cert: Option<String>,
    pub key_file: Option<String>,
    pub key: Option<String>,
    pub client_ca_file: Option<String>,
    pub client_ca: Option<String>,
    pub client_auth_type: Option<String>,
    pub client_allowed_sans: Option<Vec<String>>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub cipher_suites: Option<Vec<String>>,
    pub prefer_server_cipher_suites: Option<bool>,
    pub curve_preferences: Option<Vec<String>>,
}

/// A string key's value, unless it is empty (which counts as not set).
pub(super) fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Go's `tls.ClientAuthType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

/// What `tls_server_config` comes to.
pub struct BuiltTls {
    pub server: ServerConfig,
    pub allowed_sans: Vec<ServerName<'static>>,
    /// The files it was read from (reload when they change).
    pub files: Vec<PathBuf>,
    pub client_auth: ClientAuth,
}

/// PEM read from `<what>_file` (relative to `dir`) or given inline as `<what>`, with a name
/// for messages.
struct Pem {
    bytes: Vec<u8>,
    what: String,
}

fn read_pem(
    file: Option<&str>,
    inline: Option<&str>,
    what: &str,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<Option<Pem>, WebConfigError> {
    match (file, inline) {
        (Some(_), Some(_)) => Err(WebConfigError::invalid(
            AT,
            format!("both {what}_file and {what} are set; give one of them"),
        )),
        (Some(f), None) => {
            let p = dir.join(f);
            let bytes = std::fs::read(&p).map_err(|source| WebConfigError::ReadNamed {
                key: format!("{AT}.{what}_file"),
                path: p.clone(),
                source,
            })?;
            files.push(p.clone());
            Ok(Some(Pem {
                bytes,
                what: format!("{AT}.{what}_file ({})", p.display()),
            }))
        }
        (None, Some(s)) => Ok(Some(Pem {
            bytes: s.as_bytes().to_vec(),
            what: format!("{AT}.{what}"),
        })),
        (None, None) => Ok(None),
    }
}

fn pem_error(
    what: &str,
    why: &'static str,
    e: Option<rustls_pki_types::pem::Error>,
) -> WebConfigError {
    WebConfigError::Pem {
        what: what.to_string(),
        why,
        source: e,
    }
}

/// `Ok(None)`: the section sets nothing (plain HTTP, as the toolkit does).
pub(super) fn build(
    t: &TlsSection,
    dir: &Path,
    http2: bool,
) -> Result<Option<BuiltTls>, WebConfigError> {
    let nothing = [
        &t.cert_file,
        &t.cert,
        &t.key_file,
        &t.key,
        &t.client_ca_file,
        &t.client_ca,
        &t.client_auth_type,
    ]
    .iter()
    .all(|v| set(v).is_none());
    if nothing {
        return Ok(None);
    }
    let mut files = Vec::new();
    let cert = read_pem(set(&t.cert_file), set(&t.cert), "cert", dir, &mut files)?
        .ok_or_else(|| WebConfigError::invalid(AT, "cert_file is missing"))?;
    let key = read_pem(set(&t.key_file), set(&t.key), "key", dir, &mut files)?
        .ok_or_else(|| WebConfigError::invalid(AT, "key_file is missing"))?;
    let ca = read_pem(
        set(&t.client_ca_file),
        set(&t.client_ca),
        "client_ca",
        dir,
        &mut files,
    )?;

    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert.bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error(&cert.what, "not PEM", Some(e)))?;
    if chain.is_empty() {
        return Err(pem_error(
            &cert.what,
            "no PEM certificate (-----BEGIN CERTIFICATE-----)",
            None,
        ));
    }
    let private = PrivateKeyDer::from_pem_slice(&key.bytes)
        .map_err(|e| pem_error(&key.what, "no PEM private key", Some(e)))?;

    let auth = match set(&t.client_auth_type) {
        None | Some("NoClientCert") => ClientAuth::NoClientCert,
        Some("RequestClientCert") => ClientAuth::RequestClientCert,
        Some("RequireAnyClientCert") => ClientAuth::RequireAnyClientCert,
        Some("VerifyClientCertIfGiven") => ClientAuth::VerifyClientCertIfGiven,
        Some("RequireAndVerifyClientCert") => ClientAuth::RequireAndVerifyClientCert,
        Some(other) => {
            return Err(WebConfigError::invalid(
                format!("{AT}.client_auth_type"),
                format!(
                    "{other:?} is not one of NoClientCert, RequestClientCert, \
                     RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
                ),
            ));
        }
    };

    let versions = tls_versions(set(&t.min_version), set(&t.max_version))?;
    let provider = Arc::new(crypto_provider(
        t.cipher_suites.as_deref().unwrap_or_default(),
        t.curve_preferences.as_deref().unwrap_or_default(),
    )?);
    let verifier = client_verifier(auth, ca.as_ref(), &provider)?;
    let allowed_sans = allowed_sans(auth, t.client_allowed_sans.as_deref().unwrap_or_default())?;

    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(WebConfigError::tls(format!("{AT}: the protocol versions")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, private)
        .map_err(WebConfigError::tls(format!(
            "{AT}: the certificate and key do not work together"
        )))?;
    server.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    server.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Some(BuiltTls {
        server,
        allowed_sans,
        files,
        client_auth: auth,
    }))
}

/// How client certificates are checked, as `client_auth_type` says.
fn client_verifier(
    auth: ClientAuth,
    ca: Option<&Pem>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, WebConfigError> {
    if ca.is_some()
        && matches!(
            auth,
            ClientAuth::NoClientCert
                | ClientAuth::RequestClientCert
                | ClientAuth::RequireAnyClientCert
        )
    {
        tracing::warn!(
            "web config: client_ca_file is set but client_auth_type {auth:?} does not verify \
             client certificates against it (RequireAndVerifyClientCert does)"
        );
    }
    Ok(match auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Arc::new(AnyClientCert {
                mandatory: auth == ClientAuth::RequireAnyClientCert,
                algs: provider.signature_verification_algorithms,
            })
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let ca = ca.ok_or_else(|| {
                WebConfigError::invalid(
                    AT,
                    format!(
                        "client_auth_type {auth:?} needs client_ca_file (the CA that signs \
                         client certificates)"
                    ),
                )
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&ca.bytes) {
                let c = c.map_err(|e| pem_error(&ca.what, "not PEM", Some(e)))?;
                roots.add(c).map_err(WebConfigError::tls(ca.what.clone()))?;
            }
            if roots.is_empty() {
                return Err(pem_error(&ca.what, "no PEM certificate", None));
            }
            let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let b = if auth == ClientAuth::VerifyClientCertIfGiven {
                b.allow_unauthenticated()
            } else {
                b
            };
            b.build().map_err(WebConfigError::tls(ca.what.clone()))?
        }
    })
}

/// `client_allowed_sans` as names a certificate is checked against.
fn allowed_sans(
    auth: ClientAuth,
    sans: &[String],
) -> Result<Vec<ServerName<'static>>, WebConfigError> {
    const KEY: &str = "tls_server_config.client_allowed_sans";
    if sans.is_empty() {
        return Ok(Vec::new());
    }
    if !matches!(
        auth,
        ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert
    ) {
        return Err(WebConfigError::invalid(
            KEY,
            "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert (with \
             the others a client may send no certificate)",
        ));
    }
    sans.iter()
        .map(|s| {
            if s.contains('@') || s.contains("://") {
                return Err(WebConfigError::invalid(
                    KEY,
                    format!(
                        "{s:?}: e-mail and URI SANs cannot be matched here, only DNS names and \
                         IP addresses"
                    ),
                ));
            }
            match s.parse::<IpAddr>() {
                Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
                Err(_) => ServerName::try_from(s.clone()).map_err(|_| {
                    WebConfigError::invalid(KEY, format!("{s:?} is not a DNS name or IP address"))
                }),
            }
        })
        .collect()
}

fn tls_versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, WebConfigError> {
    fn rank(v: &str, key: &str) -> Result<u8, WebConfigError> {
        let names = ["TLS10", "TLS11", "TLS12", "TLS13"];
        let i = names.iter().position(|n| *n == v).ok_or_else(|| {
            WebConfigError::invalid(
                format!("{AT}.{key}"),
                format!("{v:?} is not one of {}", names.join(", ")),
            )
        })?;
        Ok(10 + i as u8)
    }
    let mut lo = min.map_or(Ok(12), |v| rank(v, "min_version"))?;
    let hi = max.map_or(Ok(13), |v| rank(v, "max_version"))?;
    if hi < 12 {
        return Err(WebConfigError::invalid(
            format!("{AT}.max_version"),
            format!(
                "TLS 1.{} and older are not implemented (rustls offers TLS 1.2 and 1.3)",
                hi - 10
            ),
        ));
    }
    if lo < 12 {
        tracing::warn!(
            "web config: min_version TLS1{} is raised to TLS12: rustls does not implement TLS \
             1.0 or 1.1",
            lo - 10
        );
        lo = 12;
    }
    if lo > hi {
        return Err(WebConfigError::invalid(
            AT,
            "min_version is above max_version",
        ));
    }
    Ok(
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(r, _)| (lo..=hi).contains(r))
            .map(|(_, v)| v)
            .collect(),
    )
}

/// The ring provider narrowed (and ordered) by `cipher_suites` and `curve_preferences`.
fn crypto_provider(suites: &[String], curves: &[String]) -> Result<CryptoProvider, WebConfigError> {
    use rustls::crypto::ring::kx_group;
    let mut p = ring_provider::default_provider();
    if !suites.is_empty() {
        let mut tls12 = Vec::new();
        let mut skipped = Vec::new();
        for name in suites {
            match name.as_str() {
                // Go ignores cipher_suites for TLS 1.3, and so does this.
                "TLS_AES_128_GCM_SHA256"
                | "TLS_AES_256_GCM_SHA384"
                | "TLS_CHACHA20_POLY1305_SHA256" => {}
                // Go's secure CBC suites: real names, not implemented by rustls.
                "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"
                | "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"
                | "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
                | "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA" => skipped.push(name.as_str()),
                // The provider's TLS 1.2 suites go by Go's names (its ChaCha20 ones also
                // without `_SHA256`).
                go => {
                    let named = |n: &str| {
                        n == go
                            || (go.contains("CHACHA20") && n.strip_suffix("_SHA256") == Some(go))
                    };
                    let Some(s) = p.cipher_suites.iter().find(|s| {
                        s.version() == &rustls::version::TLS12
                            && s.suite().as_str().is_some_and(named)
                    }) else {
                        return Err(WebConfigError::invalid(
                            format!("{AT}.cipher_suites"),
                            format!(
                                "{go:?} is not a cipher suite Go's crypto/tls offers as secure \
                                 (tls.CipherSuites)"
                            ),
                        ));
                    };
                    tls12.push(*s);
                }
            }
        }
        if !skipped.is_empty() {
            tracing::warn!(
                "web config: cipher suites {} are left out: rustls implements no CBC suite",
                skipped.join(", ")
            );
        }
        if tls12.is_empty() && !skipped.is_empty() {
            return Err(WebConfigError::invalid(
                format!("{AT}.cipher_suites"),
                "none of the listed suites is implemented (add an ECDHE GCM or CHACHA20 suite)",
            ));
        }
        let tls13: Vec<_> = p
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .copied()
            .collect();
        p.cipher_suites = tls13.into_iter().chain(tls12).collect();
    }
    if !curves.is_empty() {
        let mut groups = Vec::new();
        let mut skipped = Vec::new();
        for c in curves {
            match c.as_str() {
                "X25519" => groups.push(kx_group::X25519),
                "CurveP256" | "P256" => groups.push(kx_group::SECP256R1),
                "CurveP384" | "P384" => groups.push(kx_group::SECP384R1),
                "CurveP521" | "P521" | "X25519MLKEM768" | "X25519Kyber768Draft00" => {
                    skipped.push(c.as_str())
                }
                other => {
                    return Err(WebConfigError::invalid(
                        format!("{AT}.curve_preferences"),
                        format!("{other:?} is not one of X25519, CurveP256, CurveP384, CurveP521"),
                    ));
                }
            }
        }
        if !skipped.is_empty() {
            tracing::warn!(
                "web config: curves {} are left out: the ring provider does not implement them",
                skipped.join(", ")
            );
        }
        if groups.is_empty() {
            return Err(WebConfigError::invalid(
                format!("{AT}.curve_preferences"),
                "none of the listed curves is implemented",
            ));
        }
        p.kx_groups = groups;
    }
    Ok(p)
}

/// Go's RequestClientCert and RequireAnyClientCert: a certificate is asked for (and, for the
/// latter, required), its signature over the handshake checked, its chain not.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Whether the client's end-entity certificate carries one of `allowed` (empty: any).
pub fn san_allowed(allowed: &[ServerName<'static>], peer: Option<&[CertificateDer<'_>]>) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(cert) = peer.and_then(|c| c.first()) else {
        return false;
    };
    let Ok(ee) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    allowed
        .iter()
        .any(|n| ee.verify_is_valid_for_subject_name(n).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(tls_versions(None, None).unwrap().len(), 2);
        assert_eq!(tls_versions(Some("TLS13"), None).unwrap().len(), 1);
        assert_eq!(tls_versions(Some("TLS10"), Some("TLS12")).unwrap().len(), 1);
        assert!(tls_versions(None, Some("TLS11")).is_err());
        assert!(tls_versions(Some("TLS13"), Some("TLS12")).is_err());
        assert!(tls_versions(Some("SSL3"), None).is_err());
    }

    #[test]
    fn suites_and_curves() {
        let p = crypto_provider(
            &[
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into(),
                "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".into(),
            ],
            &["CurveP384".into(), "X25519".into()],
        )
        .unwrap();
        let tls12: Vec<_> = p
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .collect();
        assert_eq!(tls12.len(), 1);
        assert_eq!(p.kx_groups.len(), 2);
        // Every TLS 1.2 suite Go offers as secure that rustls implements, by Go's names.
        let ciphers =
            "AES_128_GCM_SHA256 AES_256_GCM_SHA384 CHACHA20_POLY1305_SHA256 CHACHA20_POLY1305";
        for c in ciphers.split(' ') {
            for name in [
                format!("TLS_ECDHE_ECDSA_WITH_{c}"),
                format!("TLS_ECDHE_RSA_WITH_{c}"),
            ] {
                let p = crypto_provider(std::slice::from_ref(&name), &[]).unwrap();
                assert_eq!(p.cipher_suites.len(), 4, "{name}: TLS 1.3's three and it");
            }
        }
        assert!(crypto_provider(&["TLS13_AES_128_GCM_SHA256".into()], &[]).is_err());
        assert!(crypto_provider(&["TLS_RSA_WITH_RC4_128_SHA".into()], &[]).is_err());
        assert!(crypto_provider(&["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".into()], &[]).is_err());
        assert!(crypto_provider(&[], &["CurveP521".into()]).is_err());
    }
}
