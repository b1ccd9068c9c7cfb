//! Docker metadata for the containers that discovery finds in the cgroup tree: name, image,
//! allowed labels and Kubernetes identity, the resource attributes a cgroup path cannot give.
//!
//! [`run`] keeps a [`MetadataStore`](crate::metadata::MetadataStore) current from the Docker
//! Engine API with as few calls as possible: one list of the running containers (and one
//! inspect each) when it connects, then the `/events` stream, with one inspect per `start`,
//! `rename` or `update` event. It never calls the stats API and never makes a call per
//! collection tick; the exporters read the store, never Docker. A daemon that is absent, down
//! or restarting never blocks collection: the store keeps what it knew (containers are still
//! reported by id), the source's skeleton retries with backoff, and every connect lists again
//! so that nothing that happened while away is lost.
//!
//! Entries live while the container runs. When it stops (`die`, `destroy`, or missing from the
//! list after a reconnect) its entry stays for [`DockerConfig::removal_delay`] more, so that the
//! final sample the exporter takes of an exited container still carries its name.
//!
//! **Exits.** The same stream says why containers end, with no call of its own: `die` carries
//! the exit status (`exitCode`), `oom` comes before the `die` of a container the OOM killer
//! hit, and the `RestartCount` of the run that ended is the one the last inspect saw (less one
//! when that inspect already saw the next run, or the container waiting to restart). Each
//! `die` goes to the exit store for the container's final sample. A `die` replayed after a
//! reconnect is the same exit again (the store keeps one per run).
//!
//! Podman's Docker-compatible API is followed by the same code with [`Flavor::Podman`], for
//! what Podman 4 does differently there:
//! - its event filter names differ: an exit is filtered as `died` (and delivered with Action
//!   `die`; filtering `die` matches nothing), a removal is `remove` (it never sends
//!   `destroy`). With Docker's filter no exit or removal would ever arrive;
//! - its compat inspect cannot tell a pod's infra container (the helper that holds the pod's
//!   namespaces) from an application container: one more call per container, the libpod
//!   inspect's `IsInfra`, marks it `sandbox`;
//! - it has no `oom` event (its inspect's `OOMKilled` and the kernel's count say it);
//! - `Config.Image` is the name Podman resolved (`localhost/app:1`,
//!   `docker.io/library/busybox:latest`), not what the user typed; it is kept as Podman
//!   reports it, as `podman ps` shows it.
//!
//! Version negotiation, list, inspect and the events stream are otherwise the same (Podman 4.3
//! says API 1.41, like Docker 20.10).
//!
//! Where things are: `follow` (the connection, the list, the events and the exits they say),
//! `inspect` (what one inspect says, and Podman's libpod inspect), `flavor` (what differs
//! between the two daemons), `error`.

mod error;
mod flavor;
mod follow;
mod inspect;

pub use error::{DockerError, LibpodError};
pub use flavor::{DEFAULT_HOST, Flavor, PODMAN_DEFAULT_HOST};
pub use follow::{DockerConfig, DockerVersion, probe, resolve_host, run};
