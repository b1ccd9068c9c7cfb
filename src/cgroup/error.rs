//! What can go wrong reading a container's cgroup: it is [`Gone`] (normal life for a
//! container, decided once, in the reader), one file could not be read or parsed
//! ([`ReadError`], costing only that file's values), or the container could not be opened at
//! all ([`OpenError`]).

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::parse::ParseError;

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
