//! The cAdvisor-compatible page (`--prometheus-names cadvisor`): the names and labels that
//! cAdvisor dashboards and kube-prometheus rules query, each family made from the points of
//! one metric of the metric table, so every figure has one source and one conversion.
//!
//! - [`table`]: what a family is, the families row by row ([`CADVISOR`], and
//!   [`CADVISOR_MACHINE`] for the host), and the README's table of the page.
//! - [`lines`]: one container's lines of a family, and the host's `machine_*` lines.
//!
//! A new family is a row in [`table`]; a new way to pick points, name labels or convert a
//! value is a variant in [`table`] and its arm in [`lines`] (and in the README's table).

pub mod lines;
pub mod table;

pub use lines::{cadvisor_lines, machine_lines};
pub use table::{CADVISOR, CADVISOR_MACHINE, CadvisorFamily, cadvisor_markdown_table};
