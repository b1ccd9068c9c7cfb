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
//!   read that does not return is stuck on; [`reads`] counts the reads made, by file.
//! - here, what can go wrong: the container is [`Gone`] (normal life for a container, decided
//!   once, in the reader), a file could not be read or parsed ([`ReadError`], costing only
//!   that file's values), or the container could not be opened ([`OpenError`]).
//! - [`sample`]: the typed values of one read, `Option` everywhere: absent is never zero.
//!
//! To read one more file: a row in [`plan::PLAN`] and, if it is a new format, a parser in
//! [`parse`] with its fixture in `testdata/` and its fuzz target in `tests/fuzz/`.

pub mod layout;
pub mod net;
pub mod parse;
mod place;
pub mod plan;
pub mod reader;
pub mod reads;
pub mod sample;

use std::fmt;
use std::io;
use std::path::PathBuf;

use parse::ParseError;

pub use layout::{Layout, LayoutKind};
pub use net::{NetSource, ProcRoot};
pub use reader::{CgroupReader, OpenOptions};
pub use sample::CgroupSample;

/// The container's cgroup is gone (removed while or before we read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// Why a read of one file failed, with the file's path for the log.
#[derive(Debug)]
pub struct ReadError {
    pub path: PathBuf,
    pub kind: ReadErrorKind,
}

#[derive(Debug)]
pub enum ReadErrorKind {
    Io(io::Error),
    Parse(ParseError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ReadErrorKind::Io(e) => write!(f, "reading {}: {e}", self.path.display()),
            ReadErrorKind::Parse(e) => write!(f, "parsing {}: {e}", self.path.display()),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ReadErrorKind::Io(e) => Some(e),
            ReadErrorKind::Parse(_) => None,
        }
    }
}

/// Failure to start reading a container.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the cgroup is gone")]
    Gone,
    #[error("opening {}: {error}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
}
