//! `--web.config.file`: TLS, mutual TLS, basic auth, response headers and rate limiting for the
//! Prometheus page, in the exporter-toolkit format that Prometheus and node_exporter read, so an
//! operator's existing file works unchanged.
//!
//! Every key of the toolkit's format is either honoured or refused at load with an error that
//! names it; none is read and then ignored without a word:
//! - `tls_server_config`: `cert_file`/`cert`, `key_file`/`key`, `client_ca_file`/`client_ca`,
//!   `client_auth_type` (all five Go values), `client_allowed_sans` (DNS and IP entries; e-mail
//!   and URI entries are refused), `min_version`/`max_version` (rustls implements TLS 1.2 and
//!   1.3: a minimum of TLS10 or TLS11 is raised to TLS12 with a warning, a maximum below TLS12 is
//!   refused), `cipher_suites` (the TLS 1.2 ECDHE AEAD suites; Go's CBC suites, which rustls
//!   does not implement, are left out with a warning, and a list with none left is refused),
//!   `prefer_server_cipher_suites`, `curve_preferences` (X25519, P-256, P-384; P-521 and the
//!   hybrid post-quantum groups are left out with a warning).
//! - `http_server_config`: `headers` (the toolkit's five, with its value checks) and `http2`
//!   (HTTP/2 is offered over TLS by ALPN, as in Go).
//! - `basic_auth_users`: user → bcrypt hash, checked at load.
//! - `rate_limit`: `interval` and `burst`, a token bucket over all requests.
//!
//! Relative paths are relative to the file's directory, as the toolkit resolves them. The file
//! is reloaded on SIGHUP and when it or a file it names changes ([`watch`]); a new file that
//! does not load leaves the previous configuration in force and the reason in the log.
//!
//! Long because the exporter-toolkit format is: each key is parsed, checked and either honoured
//! or refused with a message, and the file's TLS and auth are built from it; splitting it would
//! scatter one format over several files.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hyper::header::{HeaderName, HeaderValue};
use rustls::crypto::CryptoProvider;
use rustls::crypto::ring as ring_provider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use yaml_rust2::{Yaml, YamlLoader};

/// How often the file and the files it names are checked for changes.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// Distinct (user, password) results kept, so a scrape costs one bcrypt per password, not per
/// request (a cost-10 hash takes about 70 ms).
const AUTH_CACHE_MAX: usize = 256;
/// Compared against when the user is unknown, so an unknown user costs as much as a wrong
/// password and the timing does not tell which users exist.
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

/// One loaded configuration: what the server applies to each connection and request.
pub struct WebConfig {
    /// `None`: plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
    /// Client certificates must carry one of these SANs (empty: any verified certificate).
    pub allowed_sans: Vec<ServerName<'static>>,
    /// user → bcrypt hash; empty: no basic auth.
    pub users: HashMap<String, String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub http2: bool,
    pub rate_limit: Option<RateLimit>,
    client_auth: Option<ClientAuth>,
    /// The files it was built from, with what they looked like (reload on change).
    files: Vec<(PathBuf, Option<FileStamp>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub interval: Duration,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

fn stamp(p: &Path) -> Option<FileStamp> {
    let m = std::fs::metadata(p).ok()?;
    Some(FileStamp {
        ino: m.ino(),
        size: m.size(),
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
    })
}

impl WebConfig {
    /// Reads and checks the file, and builds the TLS configuration from the files it names.
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the web config: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut cfg =
            WebConfig::parse(&text, dir).map_err(|e| format!("{}: {e}", path.display()))?;
        cfg.files.insert(0, (path.to_path_buf(), stamp(path)));
        Ok(cfg)
    }

    /// `dir`: where relative paths are resolved.
    pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, String> {
        let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not YAML: {e}"))?;
        if docs.len() > 1 {
            return Err("more than one YAML document".into());
        }
        let root = docs.into_iter().next().unwrap_or(Yaml::Null);
        let mut top = Map::new(&root, "")?;
        let tls_node = top.take("tls_server_config");
        let http_node = top.take("http_server_config");
        let users_node = top.take("basic_auth_users");
        let rate_node = top.take("rate_limit");
        top.finish()?;

        let mut cfg = WebConfig {
            tls: None,
            allowed_sans: Vec::new(),
            users: HashMap::new(),
            headers: Vec::new(),
            http2: true,
            rate_limit: None,
            client_auth: None,
            files: Vec::new(),
        };

        if let Some(n) = &http_node {
            let mut m = Map::new(n, "http_server_config")?;
            if let Some(v) = m.take("http2") {
                cfg.http2 = boolean(&v, "http_server_config.http2")?;
            }
            if let Some(h) = m.take("headers") {
                cfg.headers = headers(&h)?;
            }
            m.finish()?;
        }

        if let Some(n) = &users_node {
            let Yaml::Hash(h) = n else {
                return Err("basic_auth_users: must be a map of user: bcrypt hash".into());
            };
            for (k, v) in h {
                let user = scalar(k).ok_or("basic_auth_users: a user name must be a string")?;
                let hash = scalar(v)
                    .ok_or_else(|| format!("basic_auth_users.{user}: the hash must be a string"))?;
                hash.parse::<bcrypt::HashParts>().map_err(|e| {
                    format!(
                        "basic_auth_users.{user}: not a bcrypt hash ({e}); make one with \
                         `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"
                    )
                })?;
                cfg.users.insert(user, hash);
            }
        }
        finish_tls(cfg, tls_node.as_ref(), rate_node.as_ref(), dir)
    }

    /// Whether the file or any file it names changed since it was loaded.
    fn changed(&self) -> bool {
        self.files.iter().any(|(p, s)| stamp(p) != *s)
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        let mut parts = vec![
            if self.tls.is_some() {
                "TLS"
            } else {
                "plain HTTP"
            }
            .to_string(),
        ];
        if let Some(a) = self.client_auth
            && a != ClientAuth::NoClientCert
        {
            parts.push(format!("client certificates: {a:?}"));
        }
        if !self.users.is_empty() {
            parts.push(format!("basic auth ({} users)", self.users.len()));
        }
        if let Some(r) = self.rate_limit {
            parts.push(format!("rate limit {:?} burst {}", r.interval, r.burst));
        }
        parts.join(", ")
    }
}

fn finish_tls(
    mut cfg: WebConfig,
    tls: Option<&Yaml>,
    rate: Option<&Yaml>,
    dir: &Path,
) -> Result<WebConfig, String> {
    if let Some(r) = rate {
        cfg.rate_limit = rate_limit(r)?;
    }
    if let Some(t) = tls {
        let built = tls_config(t, dir, cfg.http2)?;
        if let Some((server, sans, files, auth)) = built {
            cfg.tls = Some(Arc::new(server));
            cfg.client_auth = Some(auth);
            cfg.allowed_sans = sans;
            cfg.files
                .extend(files.into_iter().map(|f| (f.clone(), stamp(&f))));
        }
    }
    Ok(cfg)
}

// ---------------------------------------------------------------------------------------------
// YAML helpers: strict maps (an unknown key is an error, as Go's UnmarshalStrict makes it)
// ---------------------------------------------------------------------------------------------

struct Map {
    entries: Vec<(String, Yaml)>,
    at: &'static str,
}

impl Map {
    fn new(y: &Yaml, at: &'static str) -> Result<Map, String> {
        let entries = match y {
            Yaml::Null => Vec::new(),
            Yaml::Hash(h) => h
                .iter()
                .map(|(k, v)| {
                    scalar(k)
                        .map(|k| (k, v.clone()))
                        .ok_or_else(|| format!("{at}: a key that is not a string"))
                })
                .collect::<Result<_, _>>()?,
            _ => {
                let what = if at.is_empty() { "the file" } else { at };
                return Err(format!("{what}: must be a map of keys"));
            }
        };
        Ok(Map { entries, at })
    }

    fn take(&mut self, key: &str) -> Option<Yaml> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        let v = self.entries.remove(i).1;
        (!matches!(v, Yaml::Null)).then_some(v)
    }

    fn take_str(&mut self, key: &str) -> Result<Option<String>, String> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => scalar(&v)
                .map(|s| Some(s).filter(|s| !s.is_empty()))
                .ok_or_else(|| format!("{}.{key}: must be a string", self.at)),
        }
    }

    fn take_list(&mut self, key: &str) -> Result<Vec<String>, String> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Yaml::Array(a)) => a
                .iter()
                .map(|v| {
                    scalar(v).ok_or_else(|| format!("{}.{key}: entries must be strings", self.at))
                })
                .collect(),
            Some(_) => Err(format!("{}.{key}: must be a list", self.at)),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self.entries.first() {
            None => Ok(()),
            Some((k, _)) => {
                let at = if self.at.is_empty() {
                    String::new()
                } else {
                    format!("{}.", self.at)
                };
                Err(format!(
                    "unknown key `{at}{k}` (the exporter-toolkit web config format has no such key)"
                ))
            }
        }
    }
}

/// A scalar as the string YAML would give Go for a string field.
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn boolean(y: &Yaml, at: &str) -> Result<bool, String> {
    match y {
        Yaml::Boolean(b) => Ok(*b),
        _ => Err(format!("{at}: must be true or false")),
    }
}

fn headers(y: &Yaml) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut m = Map::new(y, "http_server_config.headers")?;
    let mut out = Vec::new();
    for (name, check) in [
        ("Content-Security-Policy", None),
        ("X-Frame-Options", Some(&["deny", "sameorigin"][..])),
        ("X-Content-Type-Options", Some(&["nosniff"][..])),
        ("X-XSS-Protection", None),
        ("Strict-Transport-Security", None),
    ] {
        let Some(v) = m.take_str(name)? else { continue };
        if let Some(allowed) = check
            && !allowed.iter().any(|a| a.eq_ignore_ascii_case(&v))
        {
            return Err(format!(
                "http_server_config.headers.{name}: {v:?} is not one of {}",
                allowed.join(", ")
            ));
        }
        let value = HeaderValue::from_str(&v)
            .map_err(|_| format!("http_server_config.headers.{name}: not a valid header value"))?;
        out.push((HeaderName::from_static(lower(name)), value));
    }
    m.finish().map_err(|e| {
        format!("{e}; the headers that can be set are Content-Security-Policy, X-Frame-Options, X-Content-Type-Options, X-XSS-Protection and Strict-Transport-Security")
    })?;
    Ok(out)
}

fn lower(name: &'static str) -> &'static str {
    match name {
        "Content-Security-Policy" => "content-security-policy",
        "X-Frame-Options" => "x-frame-options",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "strict-transport-security",
    }
}

fn rate_limit(y: &Yaml) -> Result<Option<RateLimit>, String> {
    let mut m = Map::new(y, "rate_limit")?;
    let interval = match m.take_str("interval")? {
        None => Duration::ZERO,
        Some(s) => go_duration(&s).map_err(|e| format!("rate_limit.interval: {e}"))?,
    };
    let burst = match m.take("burst") {
        None => 0,
        Some(Yaml::Integer(i)) if (0..=u32::MAX as i64).contains(&i) => i as u32,
        Some(_) => return Err("rate_limit.burst: must be a whole number".into()),
    };
    m.finish()?;
    if interval.is_zero() {
        return Ok(None);
    }
    Ok(Some(RateLimit {
        interval,
        burst: burst.max(1),
    }))
}

/// Go's `time.ParseDuration` for what a config holds: `1s`, `500ms`, `1m30s`, `0`.
fn go_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(|| format!("{s:?}: a number needs a unit (ms, s, m, h)"))?;
        let n: f64 = rest[..n_end]
            .parse()
            .map_err(|_| format!("{s:?} is not a duration like 1s or 500ms"))?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => return Err(format!("{s:?}: unknown unit {u:?}")),
        };
        total += n * scale;
        rest = &rest[u_end..];
    }
    if !total.is_finite() || total > 1e9 {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(total))
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

type BuiltTls = (
    ServerConfig,
    Vec<ServerName<'static>>,
    Vec<PathBuf>,
    ClientAuth,
);

/// `Ok(None)`: the section is empty (plain HTTP, as the toolkit does).
fn tls_config(y: &Yaml, dir: &Path, http2: bool) -> Result<Option<BuiltTls>, String> {
    const AT: &str = "tls_server_config";
    let mut m = Map::new(y, AT)?;
    let cert_file = m.take_str("cert_file")?;
    let cert_inline = m.take_str("cert")?;
    let key_file = m.take_str("key_file")?;
    let key_inline = m.take_str("key")?;
    let ca_file = m.take_str("client_ca_file")?;
    let ca_inline = m.take_str("client_ca")?;
    let auth_type = m.take_str("client_auth_type")?;
    let sans = m.take_list("client_allowed_sans")?;
    let min_version = m.take_str("min_version")?;
    let max_version = m.take_str("max_version")?;
    let suites = m.take_list("cipher_suites")?;
    let prefer_server = match m.take("prefer_server_cipher_suites") {
        None => true,
        Some(v) => boolean(&v, "tls_server_config.prefer_server_cipher_suites")?,
    };
    let curves = m.take_list("curve_preferences")?;
    m.finish()?;

    let nothing = cert_file.is_none()
        && cert_inline.is_none()
        && key_file.is_none()
        && key_inline.is_none()
        && ca_file.is_none()
        && ca_inline.is_none()
        && auth_type.is_none();
    if nothing {
        return Ok(None);
    }
    let mut files = Vec::new();
    let mut read = |file: Option<String>,
                    inline: Option<String>,
                    what: &str|
     -> Result<Option<(Vec<u8>, String)>, String> {
        match (file, inline) {
            (Some(_), Some(_)) => Err(format!(
                "{AT}: both {what}_file and {what} are set; give one of them"
            )),
            (Some(f), None) => {
                let p = dir.join(&f);
                let bytes = std::fs::read(&p)
                    .map_err(|e| format!("{AT}.{what}_file: {}: {e}", p.display()))?;
                files.push(p.clone());
                Ok(Some((bytes, format!("{AT}.{what}_file ({})", p.display()))))
            }
            (None, Some(s)) => Ok(Some((s.into_bytes(), format!("{AT}.{what}")))),
            (None, None) => Ok(None),
        }
    };
    let cert = read(cert_file, cert_inline, "cert")?
        .ok_or_else(|| format!("{AT}: cert_file is missing"))?;
    let key =
        read(key_file, key_inline, "key")?.ok_or_else(|| format!("{AT}: key_file is missing"))?;
    let ca = read(ca_file, ca_inline, "client_ca")?;

    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert.0)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.1))?;
    if chain.is_empty() {
        return Err(format!(
            "{}: no PEM certificate (-----BEGIN CERTIFICATE-----)",
            cert.1
        ));
    }
    let private = PrivateKeyDer::from_pem_slice(&key.0)
        .map_err(|e| format!("{}: no PEM private key ({e})", key.1))?;

    let auth = match auth_type.as_deref() {
        None | Some("NoClientCert") => ClientAuth::NoClientCert,
        Some("RequestClientCert") => ClientAuth::RequestClientCert,
        Some("RequireAnyClientCert") => ClientAuth::RequireAnyClientCert,
        Some("VerifyClientCertIfGiven") => ClientAuth::VerifyClientCertIfGiven,
        Some("RequireAndVerifyClientCert") => ClientAuth::RequireAndVerifyClientCert,
        Some(other) => {
            return Err(format!(
                "{AT}.client_auth_type: {other:?} is not one of NoClientCert, RequestClientCert, \
                 RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
            ));
        }
    };

    let versions = tls_versions(min_version.as_deref(), max_version.as_deref())?;
    let provider = Arc::new(crypto_provider(&suites, &curves)?);

    let verifier: Arc<dyn ClientCertVerifier> = match auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Arc::new(AnyClientCert {
                mandatory: auth == ClientAuth::RequireAnyClientCert,
                provider: provider.clone(),
            })
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let (pem, what) = ca.as_ref().ok_or_else(|| {
                format!("{AT}: client_auth_type {auth:?} needs client_ca_file (the CA that signs client certificates)")
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(pem) {
                let c = c.map_err(|e| format!("{what}: {e}"))?;
                roots.add(c).map_err(|e| format!("{what}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("{what}: no PEM certificate"));
            }
            let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let b = if auth == ClientAuth::VerifyClientCertIfGiven {
                b.allow_unauthenticated()
            } else {
                b
            };
            b.build().map_err(|e| format!("{what}: {e}"))?
        }
    };
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

    let mut allowed = Vec::new();
    if !sans.is_empty() {
        if !matches!(
            auth,
            ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert
        ) {
            return Err(format!(
                "{AT}.client_allowed_sans needs client_auth_type RequireAnyClientCert or \
                 RequireAndVerifyClientCert (with the others a client may send no certificate)"
            ));
        }
        for s in &sans {
            if s.contains('@') || s.contains("://") {
                return Err(format!(
                    "{AT}.client_allowed_sans: {s:?}: e-mail and URI SANs cannot be matched \
                     here, only DNS names and IP addresses"
                ));
            }
            let name = match s.parse::<IpAddr>() {
                Ok(ip) => ServerName::IpAddress(ip.into()),
                Err(_) => ServerName::try_from(s.clone()).map_err(|_| {
                    format!("{AT}.client_allowed_sans: {s:?} is not a DNS name or IP address")
                })?,
            };
            allowed.push(name);
        }
    }

    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("{AT}: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, private)
        .map_err(|e| format!("{AT}: the certificate and key do not work together: {e}"))?;
    server.ignore_client_order = prefer_server;
    server.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Some((server, allowed, files, auth)))
}

fn tls_versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    fn rank(v: &str, key: &str) -> Result<u8, String> {
        match v {
            "TLS10" => Ok(10),
            "TLS11" => Ok(11),
            "TLS12" => Ok(12),
            "TLS13" => Ok(13),
            _ => Err(format!(
                "tls_server_config.{key}: {v:?} is not one of TLS10, TLS11, TLS12, TLS13"
            )),
        }
    }
    let mut lo = min.map_or(Ok(12), |v| rank(v, "min_version"))?;
    let hi = max.map_or(Ok(13), |v| rank(v, "max_version"))?;
    if hi < 12 {
        return Err(format!(
            "tls_server_config.max_version: TLS 1.{} and older are not implemented (rustls \
             offers TLS 1.2 and 1.3)",
            hi - 10
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
        return Err("tls_server_config: min_version is above max_version".into());
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
fn crypto_provider(suites: &[String], curves: &[String]) -> Result<CryptoProvider, String> {
    use rustls::crypto::ring::cipher_suite as cs;
    use rustls::crypto::ring::kx_group;
    let mut p = ring_provider::default_provider();
    if !suites.is_empty() {
        let mut tls12 = Vec::new();
        let mut skipped = Vec::new();
        for name in suites {
            let s = match name.as_str() {
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
                    Some(cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
                }
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
                    Some(cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
                }
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
                | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
                    Some(cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
                }
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => {
                    Some(cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)
                }
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => {
                    Some(cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)
                }
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
                | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => {
                    Some(cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)
                }
                // Go ignores cipher_suites for TLS 1.3, and so does this.
                "TLS_AES_128_GCM_SHA256"
                | "TLS_AES_256_GCM_SHA384"
                | "TLS_CHACHA20_POLY1305_SHA256" => None,
                // Go's secure CBC suites: real names, not implemented by rustls.
                "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"
                | "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"
                | "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
                | "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA" => {
                    skipped.push(name.as_str());
                    None
                }
                other => {
                    return Err(format!(
                        "tls_server_config.cipher_suites: {other:?} is not a cipher suite Go's \
                         crypto/tls offers as secure (tls.CipherSuites)"
                    ));
                }
            };
            if let Some(s) = s {
                tls12.push(s);
            }
        }
        if !skipped.is_empty() {
            tracing::warn!(
                "web config: cipher suites {} are left out: rustls implements no CBC suite",
                skipped.join(", ")
            );
        }
        if tls12.is_empty() && !skipped.is_empty() {
            return Err(
                "tls_server_config.cipher_suites: none of the listed suites is implemented \
                 (add an ECDHE GCM or CHACHA20 suite)"
                    .into(),
            );
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
                    return Err(format!(
                        "tls_server_config.curve_preferences: {other:?} is not one of X25519, \
                         CurveP256, CurveP384, CurveP521"
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
            return Err(
                "tls_server_config.curve_preferences: none of the listed curves is implemented"
                    .into(),
            );
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
    provider: Arc<CryptoProvider>,
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
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

// ---------------------------------------------------------------------------------------------
// Basic auth and the rate limit
// ---------------------------------------------------------------------------------------------

/// Checks `Authorization: Basic` against the users, with a bounded cache of bcrypt results.
pub struct Authenticator {
    /// A keyed hash of (user, stored hash, password) → whether it matched. Keyed with a random
    /// key per process, 128 bits, so an entry cannot be forged and the passwords are not kept.
    cache: Mutex<HashMap<u128, bool>>,
    keys: (
        std::collections::hash_map::RandomState,
        std::collections::hash_map::RandomState,
    ),
}

impl Default for Authenticator {
    fn default() -> Self {
        Authenticator {
            cache: Mutex::new(HashMap::new()),
            keys: Default::default(),
        }
    }
}

impl Authenticator {
    /// `header`: the `Authorization` value. Runs bcrypt on a miss (tens of milliseconds: call
    /// from a blocking thread).
    pub fn check(&self, users: &HashMap<String, String>, header: Option<&[u8]>) -> bool {
        let Some((user, pass)) = header.and_then(parse_basic) else {
            return false;
        };
        let (hash, known) = match users.get(&user) {
            Some(h) => (h.as_str(), true),
            None => (DUMMY_HASH, false),
        };
        let key = {
            let mut a = self.keys.0.build_hasher();
            let mut b = self.keys.1.build_hasher();
            for h in [&mut a as &mut dyn Hasher, &mut b] {
                user.hash(&mut HasherRef(h));
                hash.hash(&mut HasherRef(h));
                pass.hash(&mut HasherRef(h));
            }
            (u128::from(a.finish()) << 64) | u128::from(b.finish())
        };
        if let Some(ok) = self.lock().get(&key) {
            return *ok && known;
        }
        let ok = bcrypt::verify(pass.as_bytes(), hash).unwrap_or(false);
        let mut c = self.lock();
        if c.len() >= AUTH_CACHE_MAX {
            c.clear();
        }
        c.insert(key, ok);
        ok && known
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u128, bool>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct HasherRef<'a>(&'a mut dyn Hasher);

impl Hasher for HasherRef<'_> {
    fn finish(&self) -> u64 {
        self.0.finish()
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes)
    }
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(h: &[u8]) -> Option<(String, String)> {
    let h = std::str::from_utf8(h).ok()?.trim();
    let (scheme, b64) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64_decode(b64.trim())?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() > 4096 || s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// A token bucket over every request (the toolkit's `rate_limit`).
pub struct Bucket {
    state: Mutex<(f64, Instant)>,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            state: Mutex::new((f64::MAX, Instant::now())),
        }
    }
}

impl Bucket {
    pub fn allow(&self, limit: &RateLimit) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let burst = f64::from(limit.burst);
        let refill = now.duration_since(s.1).as_secs_f64() / limit.interval.as_secs_f64();
        s.0 = (s.0.min(burst) + refill).min(burst);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reloading
// ---------------------------------------------------------------------------------------------

/// The configuration in force, swapped whole on reload.
pub struct WebConfigHandle {
    path: PathBuf,
    current: RwLock<Arc<WebConfig>>,
    pub auth: Authenticator,
    pub bucket: Bucket,
}

impl WebConfigHandle {
    /// Loads the file; an error here stops the exporter at start.
    pub fn open(path: &Path) -> Result<Arc<WebConfigHandle>, String> {
        let cfg = WebConfig::load(path)?;
        tracing::info!(file = %path.display(), "web config: {}", cfg.describe());
        Ok(Arc::new(WebConfigHandle {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(cfg)),
            auth: Authenticator::default(),
            bucket: Bucket::default(),
        }))
    }

    pub fn current(&self) -> Arc<WebConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads the file again; on error the old configuration stays.
    pub fn reload(&self, why: &str) -> bool {
        match WebConfig::load(&self.path) {
            Ok(cfg) => {
                let old_http2 = self.current().http2;
                if cfg.http2 != old_http2 {
                    tracing::warn!("web config: http2 changed; it applies to new TLS connections");
                }
                tracing::info!(file = %self.path.display(), "web config reloaded ({why}): {}", cfg.describe());
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
                true
            }
            Err(e) => {
                tracing::error!(
                    "web config not reloaded ({why}), the previous one stays in force: {e}"
                );
                false
            }
        }
    }
}

/// Reloads on SIGHUP and when the file or a file it names changes, until `shutdown`.
pub async fn watch(handle: Arc<WebConfigHandle>, shutdown: impl Future<Output = ()>) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::pin!(shutdown);
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("web config: no SIGHUP handler ({e}); changes are still picked up");
            None
        }
    };
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A file that failed to load is retried only once it changes again.
    let mut failed_at: Option<Vec<Option<FileStamp>>> = None;
    loop {
        let hup_recv = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut shutdown => return,
            _ = hup_recv => {
                failed_at = None;
                handle.reload("SIGHUP");
            }
            _ = tick.tick() => {
                let cur = handle.current();
                if !cur.changed() {
                    continue;
                }
                let now: Vec<_> = std::iter::once(stamp(&handle.path))
                    .chain(cur.files.iter().map(|(p, _)| stamp(p)))
                    .collect();
                if failed_at.as_ref() == Some(&now) {
                    continue;
                }
                failed_at = if handle.reload("a file changed") { None } else { Some(now) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<WebConfig, String> {
        WebConfig::parse(y, Path::new("/nonexistent"))
    }

    #[test]
    fn empty_and_plain() {
        let c = parse("").unwrap();
        assert!(c.tls.is_none() && c.users.is_empty() && c.http2);
        let c = parse("tls_server_config: {}\nhttp_server_config:\n  http2: false\n").unwrap();
        assert!(c.tls.is_none() && !c.http2);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        for (y, want) in [
            ("tls_config: {}", "unknown key `tls_config`"),
            (
                "tls_server_config:\n  certfile: x",
                "tls_server_config.certfile",
            ),
            ("tls_server_config:\n  key_file: k", "cert_file is missing"),
            (
                "tls_server_config:\n  cert_file: c\n  cert: x\n  key: y",
                "both cert_file and cert",
            ),
            ("basic_auth_users:\n  alice: plain", "not a bcrypt hash"),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: allow",
                "not one of deny, sameorigin",
            ),
            ("http_server_config:\n  headers:\n    Server: x", "Server"),
            ("http_server_config:\n  http2: maybe", "true or false"),
            ("rate_limit:\n  interval: 1x", "unknown unit"),
            ("- a\n- b", "must be a map"),
            ("a: [", "not YAML"),
        ] {
            let e = parse(y).err().unwrap_or_else(|| panic!("{y:?} parsed"));
            assert!(e.contains(want), "{y:?}: {e}");
        }
    }

    #[test]
    fn users_headers_rate() {
        let c = parse(
            "basic_auth_users:\n  alice: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: default-src 'self'\n\
             rate_limit:\n  interval: 100ms\n  burst: 3\n",
        )
        .unwrap();
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.headers.len(), 2);
        assert_eq!(c.headers[0].0, "content-security-policy");
        assert_eq!(
            c.rate_limit,
            Some(RateLimit {
                interval: Duration::from_millis(100),
                burst: 3
            })
        );
        let b = Bucket::default();
        let r = c.rate_limit.unwrap();
        assert!((0..3).all(|_| b.allow(&r)));
        assert!(!b.allow(&r));
    }

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
        assert!(crypto_provider(&["TLS_RSA_WITH_RC4_128_SHA".into()], &[]).is_err());
        assert!(crypto_provider(&["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".into()], &[]).is_err());
        assert!(crypto_provider(&[], &["CurveP521".into()]).is_err());
    }

    #[test]
    fn basic_auth() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let users: HashMap<String, String> = [("alice".to_string(), hash)].into();
        let a = Authenticator::default();
        let hdr = |u: &str, p: &str| format!("Basic {}", b64(&format!("{u}:{p}")));
        assert!(a.check(&users, Some(hdr("alice", "s3cret").as_bytes())));
        assert!(a.check(&users, Some(hdr("alice", "s3cret").as_bytes())));
        assert!(!a.check(&users, Some(hdr("alice", "wrong").as_bytes())));
        assert!(!a.check(&users, Some(hdr("bob", "s3cret").as_bytes())));
        assert!(!a.check(&users, None));
        assert!(!a.check(&users, Some(b"Bearer x")));
        assert_eq!(
            parse_basic(b"basic YTpiOmM="),
            Some(("a".into(), "b:c".into()))
        );
        assert_eq!(go_duration("1m30s").unwrap(), Duration::from_secs(90));
    }

    fn b64(s: &str) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = s.as_bytes();
        let mut out = String::new();
        for c in b.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..=c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        while out.len() % 4 != 0 {
            out.push('=');
        }
        out
    }
}
