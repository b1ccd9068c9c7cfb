//! The web config file: its format as typed sections (serde refuses a key the format has not,
//! naming it and its line, as Go's `UnmarshalStrict` does for the toolkit), the configuration
//! loaded from it (users, headers, the rate limit, and the TLS [`super::tls`] builds from its own
//! section), and the configuration in force: loaded at start (an error stops the exporter),
//! swapped whole when SIGHUP comes or a file it was built from changes, and kept when the new one
//! does not load.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use rustls::server::ServerConfig;
use rustls_pki_types::ServerName;
use serde::Deserialize;

use super::auth::{Authenticator, Bucket, RateLimit};
use super::error::WebConfigError;
use super::tls::{self, ClientAuth, TlsSection, set};
use crate::config::parse_span;
use crate::remote::error_chain;

/// The file, as the exporter-toolkit's `web.Config` has it.
#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    expecting = "a map of keys (tls_server_config, http_server_config, basic_auth_users, rate_limit)"
)]
struct Format {
    tls_server_config: Option<TlsSection>,
    http_server_config: Option<HttpSection>,
    /// user → bcrypt hash (sorted: the first bad one is always the same).
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<RateSection>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    http2: Option<bool>,
    headers: Option<Headers>,
}

/// `http_server_config.headers`: the five the toolkit lets a file set.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Headers {
    #[serde(rename = "Content-Security-Policy")]
    content_security_policy: Option<String>,
    #[serde(rename = "X-Frame-Options")]
    x_frame_options: Option<String>,
    #[serde(rename = "X-Content-Type-Options")]
    x_content_type_options: Option<String>,
    #[serde(rename = "X-XSS-Protection")]
    x_xss_protection: Option<String>,
    #[serde(rename = "Strict-Transport-Security")]
    strict_transport_security: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RateSection {
    interval: Option<String>,
    burst: Option<u32>,
}

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

/// What a file looked like, to tell when it changed.
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
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut cfg = WebConfig::parse(&text, dir).map_err(|e| WebConfigError::InFile {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        cfg.files.insert(0, (path.to_path_buf(), stamp(path)));
        Ok(cfg)
    }

    /// `dir`: where relative paths are resolved.
    pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, WebConfigError> {
        // An empty file (or one of comments only) is no document: everything off.
        let file: Format = serde_yaml_ng::from_str::<Option<Format>>(text)?.unwrap_or_default();
        let http = file.http_server_config.unwrap_or_default();
        let http2 = http.http2.unwrap_or(true);
        let mut cfg = WebConfig {
            tls: None,
            allowed_sans: Vec::new(),
            users: HashMap::new(),
            headers: headers(&http.headers.unwrap_or_default())?,
            http2,
            rate_limit: rate_limit(&file.rate_limit.unwrap_or_default())?,
            client_auth: None,
            files: Vec::new(),
        };
        for (user, hash) in file.basic_auth_users.unwrap_or_default() {
            if let Err(e) = hash.parse::<bcrypt::HashParts>() {
                return Err(WebConfigError::invalid(
                    format!("basic_auth_users.{user}"),
                    format!(
                        "not a bcrypt hash ({e}); make one with `htpasswd -nBC 10 \"\" | tr -d \
                         ':\\n'`"
                    ),
                ));
            }
            cfg.users.insert(user, hash);
        }
        if let Some(section) = &file.tls_server_config
            && let Some(built) = tls::build(section, dir, http2)?
        {
            cfg.tls = Some(Arc::new(built.server));
            cfg.client_auth = Some(built.client_auth);
            cfg.allowed_sans = built.allowed_sans;
            cfg.files
                .extend(built.files.into_iter().map(|f| (f.clone(), stamp(&f))));
        }
        Ok(cfg)
    }

    /// Whether the file or any file it names changed since it was loaded.
    fn changed(&self) -> bool {
        self.files.iter().any(|(p, s)| stamp(p) != *s)
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        let mut parts = vec![String::from(if self.tls.is_some() {
            "TLS"
        } else {
            "plain HTTP"
        })];
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

/// The response headers, with the toolkit's value checks.
fn headers(h: &Headers) -> Result<Vec<(HeaderName, HeaderValue)>, WebConfigError> {
    let mut out = Vec::new();
    // Each with the values it may take (any when none are listed).
    let none: &[&str] = &[];
    for (name, value, allowed) in [
        ("Content-Security-Policy", &h.content_security_policy, none),
        (
            "X-Frame-Options",
            &h.x_frame_options,
            &["deny", "sameorigin"],
        ),
        (
            "X-Content-Type-Options",
            &h.x_content_type_options,
            &["nosniff"],
        ),
        ("X-XSS-Protection", &h.x_xss_protection, none),
        (
            "Strict-Transport-Security",
            &h.strict_transport_security,
            none,
        ),
    ] {
        let Some(v) = set(value) else { continue };
        let key = || format!("http_server_config.headers.{name}");
        if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) {
            return Err(WebConfigError::invalid(
                key(),
                format!("{v:?} is not one of {}", allowed.join(", ")),
            ));
        }
        let invalid = |_| WebConfigError::invalid(key(), "not a valid header value");
        let value = HeaderValue::from_str(v).map_err(invalid)?;
        // One of the five names above: always a valid header name.
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            out.push((name, value));
        }
    }
    Ok(out)
}

fn rate_limit(r: &RateSection) -> Result<Option<RateLimit>, WebConfigError> {
    let interval = match set(&r.interval) {
        None => Duration::ZERO,
        Some(s) => parse_span(s)
            .map_err(|e| WebConfigError::invalid("rate_limit.interval", e.to_string()))?,
    };
    if interval.is_zero() {
        return Ok(None);
    }
    Ok(Some(RateLimit {
        interval,
        burst: r.burst.unwrap_or(0).max(1),
    }))
}

/// How often the file and the files it names are checked for changes.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// The configuration in force, swapped whole on reload.
pub struct WebConfigHandle {
    path: PathBuf,
    current: RwLock<Arc<WebConfig>>,
    pub auth: Authenticator,
    pub bucket: Bucket,
}

impl WebConfigHandle {
    /// Loads the file; an error here stops the exporter at start.
    pub fn open(path: &Path) -> Result<Arc<WebConfigHandle>, WebConfigError> {
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
                    "web config not reloaded ({why}), the previous one stays in force: {}",
                    error_chain(&e)
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
    use crate::remote::error_chain;

    fn parse(y: &str) -> Result<WebConfig, WebConfigError> {
        WebConfig::parse(y, Path::new("/nonexistent"))
    }

    #[test]
    fn empty_and_plain() {
        for y in ["", "# nothing but a comment\n", "tls_server_config: ~\n"] {
            let c = parse(y).unwrap();
            assert!(c.tls.is_none() && c.users.is_empty() && c.http2, "{y:?}");
        }
        let c = parse("tls_server_config: {}\nhttp_server_config:\n  http2: false\n").unwrap();
        assert!(c.tls.is_none() && !c.http2);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_that_name_them() {
        // `yaml => what the error says`.
        for case in [
            "tls_config: {} => unknown field `tls_config`",
            "tls_server_config:\n  certfile: x => tls_server_config: unknown field `certfile`",
            "tls_server_config:\n  certfile: x => line 2 column 3",
            "tls_server_config:\n  cert_file: [a] => tls_server_config.cert_file: invalid type: \
             sequence, expected a string",
            "tls_server_config:\n  client_allowed_sans: a => \
             tls_server_config.client_allowed_sans: invalid type",
            "tls_server_config:\n  key_file: k => cert_file is missing",
            "tls_server_config:\n  cert_file: c\n  cert: x\n  key: y => both cert_file and cert",
            "basic_auth_users:\n  alice: plain => not a bcrypt hash",
            "basic_auth_users:\n  alice: plain => basic_auth_users.alice",
            "basic_auth_users: [alice] => basic_auth_users: invalid type: sequence, expected a map",
            "http_server_config:\n  headers:\n    X-Frame-Options: allow => \
             http_server_config.headers.X-Frame-Options: \"allow\" is not one of deny, sameorigin",
            "http_server_config:\n  headers:\n    Server: x => http_server_config.headers: \
             unknown field `Server`, expected one of `Content-Security-Policy`",
            "http_server_config:\n  http2: maybe => http_server_config.http2: invalid type: \
             string \"maybe\", expected a boolean",
            "rate_limit:\n  interval: 1x => rate_limit.interval",
            "rate_limit:\n  interval: 1x => the unit must be",
            "rate_limit:\n  burst: -1 => rate_limit.burst: invalid type: integer `-1`, expected \
             u32",
            "- a\n- b => expected a map of keys",
            "\tx: 1 => cannot start any token",
            "rate_limit: {}\n---\nrate_limit: {} => more than one document",
        ] {
            let (y, want) = case.split_once(" => ").unwrap();
            let e = error_chain(&parse(y).err().unwrap_or_else(|| panic!("{y:?} parsed")));
            assert!(e.contains(want), "{y:?}: {e}");
        }
    }

    #[test]
    fn a_file_that_does_not_load_is_named() {
        let dir = std::env::temp_dir().join(format!("web-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("web.yml");
        std::fs::write(
            &f,
            "tls_server_config:\n  cert_file: missing.pem\n  key_file: k\n",
        )
        .unwrap();
        let e = error_chain(&WebConfig::load(&f).err().unwrap());
        let missing = dir.join("missing.pem");
        assert!(
            e.starts_with(&format!(
                "{}: tls_server_config.cert_file: {}: ",
                f.display(),
                missing.display()
            )),
            "{e}"
        );
        let e = error_chain(&WebConfig::load(&dir.join("none.yml")).err().unwrap());
        assert!(e.contains("none.yml: cannot read the web config: "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
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
        assert_eq!(c.headers[1].0, "x-frame-options");
        assert_eq!(
            c.rate_limit,
            Some(RateLimit {
                interval: Duration::from_millis(100),
                burst: 3
            })
        );
    }
}
