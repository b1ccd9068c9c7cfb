//! Serving the Prometheus page over HTTP, bounded under abuse, with the exporter-toolkit web
//! config (TLS, mutual TLS, basic auth, headers, rate limit).
//!
//! - [`page`]: the page the collector publishes each tick ([`PageState`]), served from memory.
//! - [`server`]: the listener, the routes and the limits ([`ServeOptions`]): connections are
//!   capped (`--web.max-connections`, and never more than an eighth of the descriptor limit, so
//!   the collector's files come first), `/metrics` responses in flight are capped
//!   (`--web.max-requests`), each response must be written within `--web.write-timeout`, and a
//!   response two pages behind the current one is cut, so stalled readers pin at most three
//!   pages.
//! - [`conn`]: the per-connection accounting those limits are kept with.
//! - [`web_config`]: `--web.config.file`, loaded, checked, reloaded, and the TLS and auth it
//!   sets up.
//! - [`routes`]: the hook for paths the server does not serve itself ([`Routes`]).

pub mod conn;
pub mod page;
pub mod routes;
pub mod server;
pub mod web_config;

pub use page::{Page, PageState};
pub use routes::Routes;
pub use server::{ServeOptions, accepts_gzip, bind, connection_cap, serve};
