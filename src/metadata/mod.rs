//! What the container runtimes say about the containers that discovery finds in the cgroup
//! tree: names, images, allowed labels and Kubernetes identity, the resource attributes a
//! cgroup path cannot give, and why containers ended. These sources describe containers; they
//! never find them, and collection never waits for them.
//!
//! Each source keeps a [`MetadataStore`] current from its runtime, and the exporters read the
//! stores ([`Metadata`]), never the runtimes: [`docker`](sources::docker) (and Podman's
//! Docker-compatible API), [`cri`](sources::cri) (containerd, CRI-O),
//! [`kubelet_logs`](sources::kubelet_logs) (the kubelet's log names, where no CRI socket
//! answers). They run on one skeleton (`source`): connect, list, follow, reconnect with
//! backoff, one warning per outage, removal of the gone after a delay, and their counters
//! ([`SourceStats`], handed to the self-metrics as [`MetadataStats`]). The exits they hear of
//! go to the collector through [`exits`]; every value stored is bounded (`store`). The metadata flags are this layer's own
//! ([`MetadataArgs`]); how to add a runtime: `sources`, and `docs/contributing.md`.

mod args;
pub mod exits;
mod refs;
mod source;
pub mod sources;
mod store;

pub use args::{DEFAULT_LABEL_COUNT_LIMIT, LabelArgs};
pub use refs::parse_rfc3339;
pub use source::{Figure, MetadataStats, SourceStats};
pub use sources::{
    CheckLevel, Endpoints, ExitWord, Metadata, MetadataArgs, Source, check_sources, spawn_sources,
};
pub use store::{ContainerMeta, MetadataStore, PodMeta};
