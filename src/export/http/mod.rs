//! Serving the Prometheus page over HTTP, bounded under abuse, with the exporter-toolkit web
//! config (TLS, mutual TLS, basic auth, headers, rate limit).
//!
//! - [`server`]: the page of the collector's newest tick ([`PageState`]: rendered when a scrape
//!   asks), served from memory;
//!   the listener, the routes and the limits ([`ServeOptions`]): connections capped
//!   (`--web.max-connections`, at most an eighth of the descriptor limit), responses in flight
//!   capped (`--web.max-requests`), each written within `--web.write-timeout` or cut, as is one
//!   two pages behind, so stalled readers pin at most three pages.
//! - [`conn`]: the per-connection accounting those limits are kept with.
//! - [`web_config`]: `--web.config.file`, and the TLS and auth it sets up.
//! - [`routes`]: the hook for paths the server does not serve itself ([`Routes`]).

pub mod conn;
pub mod routes;
pub mod server;
pub mod web_config;

pub use routes::Routes;
pub use server::{Page, PageGzip, PageState, ServeOptions, accepts_gzip, bind, serve};
