//! The tracked containers and one collection tick over all of them.
//!
//! - [`collector`]: the [`Collector`]: which containers are tracked (identity is the id *and*
//!   the cgroup directory's inode, so a container recreated under the same id starts afresh,
//!   never with a negative or huge rate), one tick over them, and the final sample of each
//!   container that departs (its last process left, or its cgroup went).
//! - [`state`]: what the outputs read of each container ([`ContainerState`], [`Described`]):
//!   the last two samples, so rates can be computed, its disk figures and exit.
//! - `tracked`: a tracked container's reader and what its reads said of its processes; read
//!   errors, counted by kind and logged at most once per file per period ([`ErrorLog`]).
//! - `budget`: the descriptors the containers' files may hold, and what to do when they run
//!   short (no container is ever left out for want of them).

mod budget;
pub mod collector;
pub mod state;
mod tracked;

pub use budget::{MAX_FDS_LEAN, MAX_FDS_PER_CONTAINER};
pub use collector::{Collector, DiscoveryChanges, LIMITS_EVERY};
pub use state::{ContainerState, Described, Show};
pub use tracked::{ErrorLog, ReadErrorCounts};
