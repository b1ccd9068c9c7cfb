//! The store a source keeps current ([`MetadataStore`]): what a runtime says about each
//! container and each Kubernetes pod, by id, for the exporters to read every tick.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::limit::{Cuts, ValueLimit};
use super::meta::{ContainerMeta, PodMeta};

/// Shared map from full container id to its metadata (and from pod uid to the pod's), written
/// by one source's task and read by the exporters every tick (a read lock and an `Arc` clone
/// per lookup). [`generation`](Self::generation) grows on every change.
#[derive(Clone, Default)]
pub struct MetadataStore {
    inner: Arc<StoreInner>,
}

type Map<T> = RwLock<HashMap<String, Arc<T>>>;

#[derive(Default)]
struct StoreInner {
    map: Map<ContainerMeta>,
    pods: Map<PodMeta>,
    generation: AtomicU64,
    /// Ids that discovery found and the store did not know, for the source to look up (in one
    /// batch) instead of calling its runtime once per tick.
    wanted: Mutex<HashSet<String>>,
    wanted_signal: tokio::sync::Notify,
    /// Containers whose runtime changed their resources (Docker's `update`), for the
    /// collector to read their limits again at its next tick instead of within a minute.
    limits_changed: Mutex<HashSet<String>>,
    /// The length bound of every value stored.
    limit: ValueLimit,
    /// Entries held with values cut, warned about once each (an id leaves with its entry).
    warned: Mutex<HashSet<String>>,
}

/// Ids asked for and not yet looked up are bounded: a source that is down does not make this
/// grow with every container that comes and goes.
const MAX_WANTED: usize = 4096;

impl MetadataStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose values are cut to `limit`.
    pub fn with_limit(limit: ValueLimit) -> Self {
        MetadataStore {
            inner: Arc::new(StoreInner {
                limit,
                ..Default::default()
            }),
        }
    }

    /// The metadata of a container by full id, if its runtime says it.
    pub fn get(&self, id: &str) -> Option<Arc<ContainerMeta>> {
        read(&self.inner.map).get(id).cloned()
    }

    /// Bumped after every insert, change or removal.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    pub fn len(&self) -> usize {
        read(&self.inner.map).len()
    }

    pub fn is_empty(&self) -> bool {
        read(&self.inner.map).is_empty()
    }

    /// Inserts or replaces an entry; the generation moves only if something changed (a
    /// replayed event changes nothing). Public for tests and benchmarks that need a filled
    /// store without a daemon.
    pub fn insert(&self, id: String, mut meta: ContainerMeta) -> bool {
        let cut = self.inner.limit.apply(&mut meta);
        self.put(&self.inner.map, id, meta, cut, "container")
    }

    /// Removes an entry; returns whether there was one.
    pub fn remove(&self, id: &str) -> bool {
        self.take_out(&self.inner.map, id)
    }

    /// The metadata of a pod by uid, if a runtime knows it.
    pub fn get_pod(&self, uid: &str) -> Option<Arc<PodMeta>> {
        read(&self.inner.pods).get(uid).cloned()
    }

    /// Inserts or replaces a pod; the generation moves only if something changed.
    pub fn insert_pod(&self, mut meta: PodMeta) -> bool {
        let cut = self.inner.limit.apply_pod(&mut meta);
        self.put(&self.inner.pods, meta.uid.clone(), meta, cut, "pod")
    }

    /// Removes a pod; returns whether there was one.
    pub fn remove_pod(&self, uid: &str) -> bool {
        self.take_out(&self.inner.pods, uid)
    }

    fn put<T: PartialEq>(&self, map: &Map<T>, id: String, meta: T, cut: Cuts, what: &str) -> bool {
        let mut map = write(map);
        if map.get(&id).is_some_and(|old| **old == meta) {
            return false;
        }
        self.note_cut(&id, cut, what);
        map.insert(id, Arc::new(meta));
        self.inner.generation.fetch_add(1, Ordering::Release);
        true
    }

    fn take_out<T>(&self, map: &Map<T>, id: &str) -> bool {
        let mut warned = lock(&self.inner.warned);
        if !warned.is_empty() {
            warned.remove(id);
        }
        let removed = write(map).remove(id).is_some();
        if removed {
            self.inner.generation.fetch_add(1, Ordering::Release);
        }
        removed
    }

    /// Counts the values of a new description that were cut or left out, and warns once per
    /// entry.
    fn note_cut(&self, id: &str, cut: Cuts, what: &str) {
        if cut.total() == 0 {
            return;
        }
        self.inner.limit.count(cut.total());
        let (max, max_labels) = (self.inner.limit.max, self.inner.limit.max_labels);
        if lock(&self.inner.warned).insert(id.to_owned()) {
            if cut.values > 0 {
                tracing::warn!(
                    %id,
                    "{} values of the {what}'s metadata (name, image, labels) are longer than \
                     --attribute-value-length-limit ({max} bytes): cut to it",
                    cut.values,
                );
            }
            if cut.labels > 0 {
                tracing::warn!(
                    %id,
                    "the {what} has {} labels past --attribute-count-limit ({max_labels}): the \
                     first {max_labels} in key order are shown, the rest left out",
                    cut.labels,
                );
            }
        }
    }

    /// Asks the source to look `id` up (a container or pod that discovery found and
    /// [`get`](Self::get) does not know). Cheap and never blocks on the runtime: the source
    /// collects what was asked and makes one call for all of it.
    pub fn want(&self, id: &str) {
        let mut wanted = lock(&self.inner.wanted);
        if wanted.len() < MAX_WANTED && wanted.insert(id.to_owned()) {
            self.inner.wanted_signal.notify_one();
        }
    }

    /// For the source: what was asked since the last call (emptied).
    pub fn take_wanted(&self) -> Vec<String> {
        lock(&self.inner.wanted).drain().collect()
    }

    /// For the source: resolves when something is wanted (at once if something was asked
    /// before the call).
    pub async fn wanted(&self) {
        self.inner.wanted_signal.notified().await
    }

    /// For a source: the runtime changed the resources (limits) of `id`.
    pub fn flag_limits_changed(&self, id: &str) {
        let mut ids = lock(&self.inner.limits_changed);
        if ids.len() < MAX_WANTED {
            ids.insert(id.to_owned());
        }
    }

    /// For the collector: the containers flagged since the last call (emptied).
    pub fn take_limits_changed(&self) -> Vec<String> {
        lock(&self.inner.limits_changed).drain().collect()
    }

    /// Ids of the containers held.
    pub fn ids(&self) -> Vec<String> {
        read(&self.inner.map).keys().cloned().collect()
    }

    /// Whether `id` is a container or a pod held.
    pub(crate) fn knows(&self, id: &str) -> bool {
        read(&self.inner.map).contains_key(id) || read(&self.inner.pods).contains_key(id)
    }
}

// A panic while holding a lock cannot leave what it guards half-updated (each write is a single
// insert or removal), so a poisoned lock is still usable: never let it take the exporter down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_generation_moves_only_on_change() {
        let s = MetadataStore::new();
        let g0 = s.generation();
        let meta = ContainerMeta {
            name: Some("a".into()),
            ..Default::default()
        };
        assert!(s.insert("id".into(), meta.clone()));
        let g1 = s.generation();
        assert!(g1 > g0);
        assert!(!s.insert("id".into(), meta.clone()));
        assert_eq!(s.generation(), g1);
        assert_eq!(s.get("id").unwrap().name.as_deref(), Some("a"));
        assert!(s.remove("id"));
        assert!(s.generation() > g1);
        assert!(!s.remove("id"));
        assert!(s.is_empty());
    }
}
