//! Docker metadata, and Podman's through its Docker-compatible API ([`Flavor`]): [`run`] keeps
//! a store current with one list of the running containers (and one inspect each) at every
//! connect, then the `/events` stream, with one inspect per `start`, `rename` or `update`,
//! never a call per collection tick. A stopped container's entry stays for
//! [`DockerConfig::removal_delay`], so that its final sample still carries its name. The `die`
//! and `oom` events say why containers end (`docs/exits.md`); what Podman 4 does differently
//! is in `docs/architecture.md`, and next to the code that deals with it.
//!
//! `follow`: the connection, the list, the events and the exits they say; `inspect`: what one
//! inspect says (and Podman's libpod inspect), the two daemons, the errors.

mod follow;
mod inspect;

pub use follow::{DockerConfig, DockerVersion, probe, resolve_host, run};
pub use inspect::{DEFAULT_HOST, DockerError, Flavor, LibpodError, PODMAN_DEFAULT_HOST};
