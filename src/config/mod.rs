//! Command line and environment: every flag has a `CONTAINER_EXPORTER_*` variable, parsed
//! and validated once here.
//!
//! - [`cli`]: the command line ([`Cli`], its commands), and a command's flags given before
//!   its name.
//! - One module per flag group: [`host`] (global), [`log`] (global), [`daemon`], and the
//!   groups flattened into it, [`metadata`], [`disk`], [`web`], [`otlp`], [`live`].
//! - [`values`]: the value types and their parsers (durations, `off`, shares, addresses).
//! - [`reference`]: the README's flag table, generated from the definitions.
//!
//! A new flag is a field of its group with its help text and `env = "CONTAINER_EXPORTER_…"`;
//! the README's table follows (`UPDATE_README=1 cargo test --test readme`).

pub mod cli;
pub mod daemon;
pub mod disk;
pub mod host;
pub mod live;
pub mod log;
pub mod metadata;
pub mod otlp;
pub mod reference;
pub mod values;
pub mod web;

pub use cli::{CheckArgs, Cli, Command, SnapshotArgs, SnapshotFormat};
pub use daemon::{DaemonArgs, Naming};
pub use disk::DiskArgs;
pub use host::HostArgs;
pub use live::LiveArgs;
pub use log::{LogArgs, LogFormat};
pub use metadata::{DEFAULT_LABEL_COUNT_LIMIT, MetadataArgs};
pub use otlp::{OtlpArgs, Protocol};
pub use reference::flags_markdown;
pub use values::{
    DEFAULT_VALUE_LENGTH_LIMIT, DurationError, DurationOrOff, Listen, ValueLength, is_off,
    parse_duration, parse_exit_wait, parse_span,
};
pub use web::WebArgs;
