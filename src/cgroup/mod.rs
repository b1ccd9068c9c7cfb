//! The kernel side: which cgroup hierarchies exist, how their files are parsed, and how a
//! container's files are read each tick.
//!
//! - [`layout`]: the mounts (v2, hybrid, v1), from `mountinfo`, once at start.
//! - [`plan`]: the files read, one row each (hierarchy, name, layouts, cadence, parser).
//! - [`parse`]: the parsers of the kernel's formats, by key, without allocating; a cut or
//!   malformed line costs only its own values and is reported typed.
//! - [`reader`]: one container's files kept open (or opened when read, when descriptors are
//!   short) and re-read with `pread`; "gone" is decided there, once.
//! - [`sample`]: the typed values of one read, `Option` everywhere: absent is never zero.
//!
//! To read one more file: a row in [`plan::PLAN`] and, if it is a new format, a parser in
//! [`parse`] with its fixture in `testdata/` and its fuzz target in `tests/fuzz/`.

pub mod layout;
pub mod parse;
pub mod plan;
pub mod reader;
pub mod sample;

pub use layout::{Layout, LayoutKind};
pub use reader::{CgroupReader, Gone, NetSource, OpenError, ProcRoot, ReadError};
pub use sample::CgroupSample;
