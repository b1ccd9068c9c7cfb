//! The cAdvisor-compatible page (`--prometheus-names cadvisor`): the names and labels that
//! cAdvisor dashboards and kube-prometheus rules query, each family made from the points of
//! one metric of the metric table, so every figure has one source and one conversion.
//!
//! - [`family`]: what a family is (which points, which labels, which conversion, which type).
//! - [`table`]: the families, row by row ([`CADVISOR`], and [`CADVISOR_MACHINE`] for the host).
//! - [`lines`]: one container's lines of a family, and the host's `machine_*` lines.
//! - [`markdown`]: the README's table of the page.
//!
//! A new family is a row in [`table`]; a new way to pick points, name labels or convert a
//! value is a variant in [`family`] and its arm in [`lines`] (and in [`markdown`]).

pub mod family;
pub mod lines;
pub mod markdown;
pub mod table;

pub use family::{
    CADVISOR_IGNORED_INTERFACES, CadvisorFamily, Conv, Label, MachineFamily, PromType, Select,
};
pub use lines::{cadvisor_lines, machine_lines};
pub use markdown::cadvisor_markdown_table;
pub use table::{CADVISOR, CADVISOR_MACHINE};
