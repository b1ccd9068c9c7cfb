//! The live view: every container in the browser at `/`, on the Prometheus listener, with
//! its history, the containers that ended and why, and the JSON API the page reads
//! (`docs/live-view.md`).
//!
//! - [`series`]: the ten values each container keeps per tick, read from the same data points
//!   as `/metrics`.
//! - [`history`]: the rings those values are kept in (`f32`, one clock shared by all).
//! - [`ended`]: the containers that ended, bounded, with their exits.
//! - [`detail`]: every series of the containers someone is viewing, and only theirs.
//! - [`store`]: all of it, fed once per tick by the daemon from the outputs' own views.
//! - [`json`], [`api`]: the API's responses under `/api/v1/`.
//! - [`page`]: the page's files (`assets/`, embedded; the chart library vendored in
//!   `assets/vendor/uplot/` with its licence and `refresh.sh`) and the headers every response
//!   carries (CSP).
//! - [`view`]: [`LiveView`], which the daemon feeds and the HTTP server routes to.

pub mod api;
pub mod detail;
pub mod ended;
pub mod history;
pub mod json;
pub mod page;
pub mod series;
pub mod store;
pub mod view;

pub use view::{LiveConfigError, LiveView};
