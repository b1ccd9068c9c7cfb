//! The skeleton every metadata source runs on: connect, follow, reconnect with backoff and
//! jitter, one warning per outage ([`follow`]); the entries it holds and their removal after
//! the delay ([`held`]); the collector's asks for exits, where a runtime answers them
//! ([`asks`]); and its counters ([`crate::metadata::SourceStats`]). A runtime plugs in by
//! implementing [`Follow`].

pub(crate) mod asks;
pub(crate) mod follow;
pub(crate) mod held;

pub(crate) use follow::{Follow, Words, run};
pub(crate) use held::Held;
