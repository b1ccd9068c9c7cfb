//! `--web.config.file`: TLS, mutual TLS, basic auth, response headers and rate limiting for the
//! Prometheus page, in the exporter-toolkit format that Prometheus and node_exporter read, so an
//! operator's existing file works unchanged. Every key of the format is honoured or refused at
//! load with an error that names it (`docs/security.md` says what each does here); relative
//! paths are relative to the file's directory, as the toolkit resolves them.
//!
//! [`file`] reads the format and checks what is not TLS, and keeps the configuration in force
//! (reloaded on SIGHUP and when a file changes: [`watch`]); [`tls`] builds the server's TLS from
//! `tls_server_config`; [`auth`] checks basic auth and keeps the rate limit; [`error`] says what
//! went wrong. A new key is a field of its section (in [`file`] or [`tls`]) and the code that
//! honours it.

pub mod auth;
pub mod error;
pub mod file;
pub mod tls;

pub use error::WebConfigError;
pub use file::{WebConfig, WebConfigHandle, watch};
pub use tls::san_allowed;
