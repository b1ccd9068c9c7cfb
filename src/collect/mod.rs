//! The tracked containers and one collection tick over all of them.
//!
//! - [`collector`]: the [`Collector`]: which containers are tracked (identity is the id *and*
//!   the cgroup directory's inode, so a container recreated under the same id starts afresh,
//!   never with a negative or huge rate), one tick over them, and the final sample of each
//!   container that departs (its last process left, or its cgroup went); read errors, counted
//!   by kind and logged at most once per file per period ([`ErrorLog`]).
//! - [`fds`]: the descriptors the containers' files may hold, and which files stay open when
//!   they run short.
//! - [`state`]: what the outputs read of each container ([`ContainerState`], [`Described`]):
//!   the last sample and the CPU time of the one before (for the usage rate), its disk
//!   figures and exit.

pub mod collector;
pub mod fds;
pub mod state;

pub use collector::{Collector, DiscoveryChanges, ErrorLog, LIMITS_EVERY, ReadErrorCounts};
pub use fds::{MAX_FDS_LEAN, MAX_FDS_PER_CONTAINER, headroom};
pub use state::{ContainerState, Described, Show};
