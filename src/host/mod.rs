//! The host itself, below every other layer.
//!
//! - [`fs`]: opening only regular files, never blocking, and `pread` of a whole file.
//! - [`text`]: the kernel's text formats (lines, numbers, `key value`, single values) and the
//!   typed [`text::ParseError`] every parser reports.
//! - [`mountinfo`]: the one parser of `/proc/<pid>/mountinfo`.
//! - [`block`]: `MAJ:MIN` to `/dev/<name>`.
//! - [`machine`]: CPUs online and `MemTotal`, for the cAdvisor page.
//! - [`alloc`]: the C allocator's thresholds, set first thing.
//! - [`limits`]: the open-file limit and the share of it the containers' files may take.

pub mod alloc;
pub mod block;
pub mod fs;
pub mod limits;
pub mod machine;
pub mod mountinfo;
pub mod text;
