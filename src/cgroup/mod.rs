//! The kernel side: which cgroup hierarchies exist, how their files are parsed, and how a
//! container's files are read each tick.
//!
//! - [`layout`]: the mounts (v2, hybrid, v1), from `mountinfo`, once at start.
//! - [`plan`]: the files read, one row each (hierarchy, name, layouts, cadence, parser).
//! - [`parse`]: the parsers of the kernel's formats, by key, without allocating; a cut or
//!   malformed line costs only its own values and is reported typed.
//! - [`reader`]: one container's files, opened once and kept open (or opened when read, when
//!   descriptors are short), re-read with `pread` on their cadence; it decides "gone", once;
//!   [`net`] finds and reads the container's `net/dev`; `place` names what a
//!   read that does not return is stuck on.
//! - [`error`]: gone, a file that could not be read or parsed, a container that could not be
//!   opened.
//! - [`sample`]: the typed values of one read, `Option` everywhere: absent is never zero.
//!
//! To read one more file: a row in [`plan::PLAN`] and, if it is a new format, a parser in
//! [`parse`] with its fixture in `testdata/` and its fuzz target in `tests/fuzz/`.

pub mod error;
pub mod layout;
pub mod net;
pub mod parse;
mod place;
pub mod plan;
pub mod reader;
pub mod sample;

pub use error::{Gone, OpenError, ReadError, ReadErrorKind};
pub use layout::{Layout, LayoutKind};
pub use net::{NetSource, ProcRoot};
pub use reader::{CgroupReader, OpenOptions};
pub use sample::CgroupSample;
