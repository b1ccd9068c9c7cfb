//! Command line and environment: every flag has a `CONTAINER_EXPORTER_*` variable, parsed
//! and validated once here.
//!
//! - [`cli`]: the command line ([`Cli`], its commands), a command's flags given before its
//!   name, and the README's flag table generated from it.
//! - One module per flag group: [`host`] (global: the host's paths and name, logging),
//!   [`daemon`], and the groups flattened into it, [`metadata`], [`disk`], [`outputs`] (the
//!   page's security, OTLP), [`live`] (the browser view).
//! - [`values`]: the value types and their parsers (durations, `off`, shares, addresses).
//!
//! A new flag is a field of its group with its help text and `env = "CONTAINER_EXPORTER_…"`;
//! the README's table follows (`UPDATE_README=1 cargo test --test readme`).

pub mod cli;
pub mod daemon;
pub mod disk;
pub mod host;
pub mod live;
pub mod metadata;
pub mod outputs;
pub mod values;

pub use cli::{CheckArgs, Cli, Command, SnapshotArgs, SnapshotFormat, flags_markdown};
pub use daemon::{DaemonArgs, Naming};
pub use disk::DiskArgs;
pub use host::{HostArgs, LogArgs, LogFormat};
pub use live::LiveArgs;
pub use metadata::{DEFAULT_LABEL_COUNT_LIMIT, MetadataArgs};
pub use outputs::{OtlpArgs, Protocol, WebArgs};
pub use values::{
    DEFAULT_VALUE_LENGTH_LIMIT, DurationError, DurationOrOff, Listen, ValueLength, is_off,
    parse_duration, parse_exit_wait, parse_span,
};
