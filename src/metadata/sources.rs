//! The sources of one exporter: started from the flags ([`spawn_sources`]), asked by `check`
//! ([`check_sources`]), and looked up together ([`Metadata`]), all by the registry's rows.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::exits::ExitStore;
use super::limit::ValueLimit;
use super::meta::{ContainerMeta, PodMeta};
use super::registry::{CheckInput, ExitWord, SOURCES, Source, SourceCheck, Start};
use super::stats::{MetadataStats, SourceStats};
use super::store::MetadataStore;
use crate::config::{HostArgs, MetadataArgs};
use crate::discovery::{Found, Kind, Runtime};

/// Every source's store, and the lookups the outputs use. Each source owns its store (a
/// resync of one never drops another's entries); a container is looked up first in the store
/// of the source its runtime names, then in the others in the registry's order (Docker as a
/// Kubernetes runtime through cri-dockerd puts Docker containers under CRI-style paths), the
/// kubelet's log layout last, for nodes whose CRI socket does not answer.
#[derive(Clone, Default)]
pub struct Metadata {
    stores: [MetadataStore; Source::COUNT],
    /// What the runtimes say about how containers ended, for their final samples.
    pub exits: ExitStore,
    stats: MetadataStats,
}

impl Metadata {
    /// Stores whose values are cut to `limit` (which counts in `stats.values_cut`).
    fn with_limit(limit: ValueLimit, stats: MetadataStats) -> Metadata {
        Metadata {
            stores: std::array::from_fn(|_| MetadataStore::with_limit(limit.clone())),
            exits: ExitStore::new(),
            stats,
        }
    }

    /// The store `source` fills.
    pub fn store(&self, source: Source) -> &MetadataStore {
        &self.stores[source as usize]
    }

    /// What a runtime says about the container `id`, found under `runtime`'s path pattern.
    pub fn container(&self, runtime: Runtime, id: &str) -> Option<Arc<ContainerMeta>> {
        let first = first_for(runtime);
        first
            .into_iter()
            .chain((0..SOURCES.len()).filter(|&i| Some(i) != first))
            .find_map(|i| self.stores[i].get(id))
    }

    /// What the runtimes say about the pod `uid`.
    pub fn pod(&self, uid: &str) -> Option<Arc<PodMeta>> {
        (0..SOURCES.len())
            .filter(|&i| SOURCES[i].pods)
            .find_map(|i| self.stores[i].get_pod(uid))
    }

    /// Asks the sources that look ids up for a container or pod that discovery found and they
    /// do not know (one batched lookup, never a call per tick), in the registry's order until
    /// one knows it. Containers are asked for only when their runtime's own source is one that
    /// is asked; the others hear of every container from their runtime.
    pub fn want(&self, kind: Kind, runtime: Runtime, id: &str) {
        let known: fn(&MetadataStore, &str) -> bool = match kind {
            Kind::Pod => |s, id| s.get_pod(id).is_some(),
            Kind::Container if first_for(runtime).is_some_and(|i| SOURCES[i].asked) => {
                |s, id| s.get(id).is_some()
            }
            Kind::Container => return,
        };
        for i in (0..SOURCES.len()).filter(|&i| SOURCES[i].asked) {
            if known(&self.stores[i], id) {
                return;
            }
            self.stores[i].want(id);
        }
    }

    /// The containers whose runtime changed their limits since the last call (emptied).
    pub fn take_limits_changed(&self) -> Vec<String> {
        let stores = self.stores.iter();
        stores
            .flat_map(MetadataStore::take_limits_changed)
            .collect()
    }

    /// Whether `source` is on and in sync with its runtime.
    pub fn connected(&self, source: Source) -> bool {
        self.stats
            .get(source.def().name)
            .is_some_and(SourceStats::is_connected)
    }

    /// How the runtime of the container `id`, found under `runtime`'s path pattern, says why
    /// it ended, if it can now: its source is connected (and, where the source is asked, knows
    /// it as a container: containerd's own namespaces are not the CRI's, and a pod's sandbox
    /// has no exit shown).
    pub fn exit_word(&self, runtime: Runtime, id: &str) -> Option<ExitWord> {
        let i = first_for(runtime)?;
        let def = &SOURCES[i];
        let word = def.exits?;
        let known = match word {
            ExitWord::Events => true,
            ExitWord::Asked => self.stores[i].get(id).is_some_and(|m| !m.sandbox),
        };
        (known && self.connected(def.source)).then_some(word)
    }

    /// The sources' counters, for the self-metrics.
    pub fn stats(&self) -> MetadataStats {
        self.stats.clone()
    }
}

/// The index of the source looked up first for `runtime`.
fn first_for(runtime: Runtime) -> Option<usize> {
    SOURCES.iter().position(|s| s.first_for.contains(&runtime))
}

/// Starts every source the flags turn on, on `runtime` (each following its runtime until
/// `shutdown` resolves), and returns the stores they fill. A source whose runtime is absent
/// keeps retrying quietly, and containers are reported by id.
pub fn spawn_sources<F>(
    args: &MetadataArgs,
    host: &HostArgs,
    removal_delay: Duration,
    runtime: &tokio::runtime::Handle,
    shutdown: &dyn Fn() -> F,
) -> Metadata
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut stats = MetadataStats::default();
    let limit = ValueLimit::new(
        args.attribute_value_length_limit.0 as usize,
        stats.values_cut.clone(),
    )
    .with_max_labels(args.attribute_count_limit as usize);
    let mut on = Vec::new();
    for (i, def) in SOURCES.iter().enumerate() {
        if let Some(endpoint) = (def.endpoint)(args, host) {
            on.push((i, endpoint, stats.add(def.name, def.figures)));
        }
    }
    let metadata = Metadata::with_limit(limit, stats);
    for (i, endpoint, stats) in on {
        let task = (SOURCES[i].start)(Start {
            args,
            host,
            endpoint,
            removal_delay,
            store: metadata.stores[i].clone(),
            stats,
            exits: metadata.exits.clone(),
            shutdown: Box::pin(shutdown()),
        });
        runtime.spawn(task);
    }
    metadata
}

/// What every source with a probe says, in the registry's order, by the source's name (for
/// `check`).
pub fn check_sources(
    args: &MetadataArgs,
    host: &HostArgs,
    found: &[Found],
    rt: &tokio::runtime::Runtime,
) -> Vec<(&'static str, SourceCheck)> {
    SOURCES
        .iter()
        .filter_map(|def| {
            let check = def.check?;
            let input = CheckInput {
                args,
                endpoint: (def.endpoint)(args, host),
                found,
                rt,
            };
            check(input).map(|c| (def.name, c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_its_sources() {
        for (i, def) in SOURCES.iter().enumerate() {
            assert_eq!(def.source as usize, i, "{}", def.name);
        }
        // Each runtime is looked up first in one source.
        for r in [
            Runtime::Docker,
            Runtime::Podman,
            Runtime::Containerd,
            Runtime::CriO,
        ] {
            let firsts = SOURCES.iter().filter(|s| s.first_for.contains(&r)).count();
            assert_eq!(firsts, 1, "{r}");
        }
    }

    #[test]
    fn lookups_go_to_the_runtimes_source_first() {
        let m = Metadata::default();
        let named = |n: &str| ContainerMeta {
            name: Some(n.into()),
            ..Default::default()
        };
        m.store(Source::Docker).insert("c".into(), named("docker"));
        m.store(Source::Podman).insert("c".into(), named("podman"));
        m.store(Source::Cri).insert("c".into(), named("cri"));
        m.store(Source::KubeletLogs)
            .insert("c".into(), named("kubelet"));
        let name = |r| m.container(r, "c").and_then(|c| c.name.clone());
        assert_eq!(name(Runtime::Docker).as_deref(), Some("docker"));
        assert_eq!(name(Runtime::Podman).as_deref(), Some("podman"));
        assert_eq!(name(Runtime::Containerd).as_deref(), Some("cri"));
        m.store(Source::Cri).remove("c");
        // Then the others in the registry's order, the kubelet's logs last.
        assert_eq!(name(Runtime::CriO).as_deref(), Some("docker"));
        m.store(Source::Docker).remove("c");
        m.store(Source::Podman).remove("c");
        assert_eq!(name(Runtime::CriO).as_deref(), Some("kubelet"));

        // Asks go to the CRI, then the kubelet's logs, for pods and CRI containers only.
        m.want(Kind::Container, Runtime::Docker, "d");
        assert!(m.store(Source::Cri).take_wanted().is_empty());
        m.want(Kind::Container, Runtime::Containerd, "e");
        assert_eq!(m.store(Source::Cri).take_wanted(), ["e"]);
        assert_eq!(m.store(Source::KubeletLogs).take_wanted(), ["e"]);
        m.store(Source::Cri).insert_pod(PodMeta {
            uid: "p".into(),
            ..Default::default()
        });
        m.want(Kind::Pod, Runtime::Containerd, "p");
        assert!(m.store(Source::KubeletLogs).take_wanted().is_empty());
        assert_eq!(m.pod("p").map(|p| p.uid.clone()).as_deref(), Some("p"));
    }
}
