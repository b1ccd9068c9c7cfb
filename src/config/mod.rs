//! The flag groups of the layers below metadata, and the value types every flag uses: each
//! flag has a `CONTAINER_EXPORTER_*` variable and is parsed and validated once.
//!
//! - One module per flag group: [`host`] (global: the host's paths and name, logging),
//!   [`disk`], [`outputs`] (the page's names and security, OTLP), [`live`] (the browser view).
//! - [`values`]: the value types and their parsers (durations, `off`, shares, addresses).
//!
//! The metadata flags are the metadata layer's (`metadata::MetadataArgs`, where each runtime's
//! row has its endpoint flag), and the command line that gathers every group is `cli`, at
//! the top. A new flag is a field of its group with its help text and
//! `env = "CONTAINER_EXPORTER_…"`; the flag reference follows
//! (`UPDATE_README=1 cargo test --test readme`).

pub mod disk;
pub mod host;
pub mod live;
pub mod outputs;
pub mod values;

pub use disk::DiskArgs;
pub use host::{HostArgs, LogArgs, LogFormat};
pub use live::LiveArgs;
pub use outputs::{Naming, OtlpArgs, Protocol, WebArgs};
pub use values::{
    DEFAULT_VALUE_LENGTH_LIMIT, DurationError, DurationOrOff, Listen, ValueLength, is_off,
    parse_duration, parse_exit_wait, parse_span,
};
