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
//! Where things are: [`file`] reads the format (a key the format has not is refused by serde,
//! naming it and its line) and checks what is not TLS; [`tls`] builds the server's TLS from
//! `tls_server_config`; [`auth`] checks basic auth and keeps the rate limit; [`reload`] keeps
//! the configuration in force and swaps it when the files change; [`error`] says what went
//! wrong. A new key is a field of its section in [`file`] and the code that honours it.

pub mod auth;
pub mod error;
pub mod file;
pub mod reload;
pub mod tls;

pub use auth::{Authenticator, Bucket};
pub use error::WebConfigError;
pub use file::{RateLimit, WebConfig};
pub use reload::{WebConfigHandle, watch};
pub use tls::san_allowed;
