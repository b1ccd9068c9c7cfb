//! The kernel side: which cgroup hierarchies exist, how their files are parsed, and how a
//! container's files are read each tick.

pub mod layout;
pub mod parse;
pub mod plan;
pub mod reader;
pub mod sample;

pub use layout::{Layout, LayoutKind};
pub use reader::{CgroupReader, Gone, NetSource, OpenError, ProcRoot, ReadError};
pub use sample::CgroupSample;
