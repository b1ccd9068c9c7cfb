//! What a runtime says about a container ([`ContainerMeta`]) and about a Kubernetes pod
//! ([`PodMeta`]): the resource attributes a cgroup path cannot give; and the store a source
//! keeps current ([`MetadataStore`]), by id, for the exporters to read every tick.
//!
//! Every value stored is bounded ([`ValueLimit`]) where it enters a store, so that every output
//! and the daemon's memory see the same bounded values: whoever starts a container chooses its
//! labels. How values are cut and labels left out: `docs/operations.md`, at
//! `--attribute-value-length-limit`. What the operator sets is not bounded.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use super::args::DEFAULT_LABEL_COUNT_LIMIT;
use crate::config::DEFAULT_VALUE_LENGTH_LIMIT;

/// What a runtime knows about a container, for its resource attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerMeta {
    /// The runtime's name for it (`container.name`): Docker `Name` without the leading `/`, the
    /// CRI container's metadata name.
    pub name: Option<String>,
    /// The image reference without tag or digest (`container.image.name`), as the user wrote
    /// it: `busybox` stays `busybox`, not `docker.io/library/busybox`.
    pub image_name: Option<String>,
    /// The reference's tag, `["latest"]` when it names none, as the OpenTelemetry Collector's
    /// docker receivers do (`container.image.tags`).
    pub image_tags: Vec<String>,
    /// The image id `sha256:…` (`container.image.id`): Docker `Image`, CRI `image_ref`.
    pub image_id: Option<String>,
    /// Container labels whose key matches the allow-list, sorted by key.
    pub labels: Vec<(String, String)>,
    /// `k8s.pod.name`: the CRI sandbox's metadata, else the `io.kubernetes.pod.name` label
    /// (whatever the allow-list says).
    pub k8s_pod_name: Option<String>,
    /// `k8s.namespace.name` (`io.kubernetes.pod.namespace`).
    pub k8s_namespace_name: Option<String>,
    /// `k8s.container.name`: the CRI container's metadata name, else
    /// `io.kubernetes.container.name`.
    pub k8s_container_name: Option<String>,
    /// `k8s.pod.uid` (`io.kubernetes.pod.uid`).
    pub k8s_pod_uid: Option<String>,
    /// `k8s.container.restart_count`: the CRI container's `attempt`.
    pub k8s_container_restart_count: Option<u32>,
    /// `container.runtime.name` as the runtime calls itself (CRI `Version`: `containerd`,
    /// `cri-o`), when it says; else the one the cgroup path names.
    pub runtime_name: Option<String>,
    /// A Kubernetes pod sandbox (the "pause" container): its usage is part of its pod's, and it
    /// is never reported as an application container.
    pub sandbox: bool,
    /// When it started; `None` for a container that never started (Docker's zero time).
    pub started_at: Option<SystemTime>,
    /// The log file the runtime writes the container's output to, as a host path: Docker's
    /// and Podman's `LogPath` (json-file, k8s-file drivers); `None` for drivers that write no
    /// file, and for CRI containers (their logs are in the kubelet's layout).
    pub log_path: Option<PathBuf>,
}

/// What a runtime knows about a Kubernetes pod, for the pod's own resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodMeta {
    /// `k8s.pod.uid`.
    pub uid: String,
    /// `k8s.pod.name`: the CRI sandbox's metadata name.
    pub name: Option<String>,
    /// `k8s.namespace.name`: the CRI sandbox's metadata namespace.
    pub namespace: Option<String>,
    /// Pod labels whose key matches the pod-label allow-list, sorted by key
    /// (`k8s.pod.label.<key>`).
    pub labels: Vec<(String, String)>,
}

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

/// How long a value may be, how many labels a description may carry, and the count of values
/// cut or left out (shared with the self-metrics).
#[derive(Debug, Clone)]
pub struct ValueLimit {
    pub(crate) max: usize,
    pub(crate) max_labels: usize,
    cut: Arc<AtomicU64>,
}

/// What [`ValueLimit::apply`] did to one description.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cuts {
    /// Values cut to the length bound, or labels left out for a longer key.
    pub values: u64,
    /// Labels left out past the count bound.
    pub labels: u64,
}

impl Cuts {
    pub fn total(self) -> u64 {
        self.values + self.labels
    }
}

impl Default for ValueLimit {
    fn default() -> ValueLimit {
        let (max, max_labels) = (DEFAULT_VALUE_LENGTH_LIMIT, DEFAULT_LABEL_COUNT_LIMIT);
        ValueLimit::new(max as usize, max_labels as usize, Arc::default())
    }
}

impl ValueLimit {
    /// At most `max` bytes per value and `max_labels` labels per description (container
    /// labels, and a pod's labels); cuts are added to `cut`.
    pub fn new(max: usize, max_labels: usize, cut: Arc<AtomicU64>) -> ValueLimit {
        ValueLimit {
            max,
            max_labels,
            cut,
        }
    }

    /// Cuts the values of a container's description to the bound (and leaves out labels
    /// whose key is longer, and those past the count bound); returns what was cut or left out
    /// ([`count`]ed by the caller once it knows the description is news).
    ///
    /// [`count`]: Self::count
    pub fn apply(&self, m: &mut ContainerMeta) -> Cuts {
        let values = [
            &mut m.name,
            &mut m.image_name,
            &mut m.image_id,
            &mut m.k8s_pod_name,
            &mut m.k8s_namespace_name,
            &mut m.k8s_container_name,
            &mut m.k8s_pod_uid,
            &mut m.runtime_name,
        ];
        let values = values.into_iter().flatten().chain(&mut m.image_tags);
        self.cut_all(values, &mut m.labels)
    }

    /// The same for a pod's description (its uid is the key it is found by: not cut).
    pub fn apply_pod(&self, m: &mut PodMeta) -> Cuts {
        let values = [&mut m.name, &mut m.namespace].into_iter().flatten();
        self.cut_all(values, &mut m.labels)
    }

    fn cut_all<'a>(
        &self,
        values: impl Iterator<Item = &'a mut String>,
        labels: &mut Vec<(String, String)>,
    ) -> Cuts {
        let mut values = values.map(|s| u64::from(cut(s, self.max))).sum::<u64>();
        let before = labels.len();
        labels.retain(|(k, _)| k.len() <= self.max);
        values += (before - labels.len()) as u64;
        let mut dropped = 0;
        if labels.len() > self.max_labels {
            // The first ones in key order, whatever order the runtime listed them in.
            labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            dropped = (labels.len() - self.max_labels) as u64;
            labels.truncate(self.max_labels);
            labels.shrink_to_fit();
        }
        for (_, v) in labels.iter_mut() {
            values += u64::from(cut(v, self.max));
        }
        Cuts {
            values,
            labels: dropped,
        }
    }

    /// Adds `n` values cut to the count.
    pub fn count(&self, n: u64) {
        if n > 0 {
            self.cut.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Cuts `s` to at most `max` bytes, at a character boundary; true when it was longer.
fn cut(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut at = max;
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    s.truncate(at);
    s.shrink_to_fit();
    true
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

    #[test]
    fn values_are_cut_at_a_character_boundary() {
        for (value, max, want) in [
            ("abcdef", 4, "abcd"),
            ("abc", 4, "abc"),
            ("abcd", 4, "abcd"),
            // '€' is three bytes: 'a' + one '€' fits in 4, a second does not.
            ("a€€", 4, "a€"),
            ("a€€", 5, "a€"),
            ("a€€", 7, "a€€"),
            ("€", 2, ""),
            ("é", 1, ""),
        ] {
            let mut s = value.to_string();
            let was_cut = cut(&mut s, max);
            assert_eq!(s, want, "{value:?} at {max}");
            assert_eq!(was_cut, value.len() > max, "{value:?} at {max}");
        }
    }

    #[test]
    fn every_value_of_a_description_is_bounded_and_counted() {
        let long = "x".repeat(100);
        let counter = Arc::new(AtomicU64::new(0));
        let limit = ValueLimit::new(10, 128, counter.clone());
        let mut m = ContainerMeta {
            name: Some(long.clone()),
            image_name: Some("busybox".into()),
            image_tags: vec![long.clone(), "latest".into()],
            image_id: Some(long.clone()),
            labels: vec![
                ("a".into(), long.clone()),
                ("b".into(), "short".into()),
                (long.clone(), "the key is too long".into()),
            ],
            k8s_pod_name: Some(long.clone()),
            k8s_namespace_name: Some(long.clone()),
            k8s_container_name: Some(long.clone()),
            k8s_pod_uid: Some(long.clone()),
            runtime_name: Some(long.clone()),
            ..Default::default()
        };
        let c = limit.apply(&mut m);
        assert_eq!((c.values, c.labels), (10, 0));
        limit.count(10);
        assert_eq!(m.name.as_deref(), Some("xxxxxxxxxx"));
        assert_eq!(m.image_name.as_deref(), Some("busybox"));
        assert_eq!(m.image_tags, ["xxxxxxxxxx", "latest"]);
        assert_eq!(
            m.labels,
            [
                ("a".to_string(), "xxxxxxxxxx".to_string()),
                ("b".to_string(), "short".to_string())
            ]
        );
        for v in [
            &m.image_id,
            &m.k8s_pod_name,
            &m.k8s_namespace_name,
            &m.k8s_container_name,
            &m.k8s_pod_uid,
            &m.runtime_name,
        ] {
            assert_eq!(v.as_deref(), Some("xxxxxxxxxx"));
        }
        let mut p = PodMeta {
            uid: long.clone(),
            name: Some(long.clone()),
            namespace: Some("default".into()),
            labels: vec![("app".into(), long.clone())],
        };
        assert_eq!(limit.apply_pod(&mut p).total(), 2);
        limit.count(2);
        assert_eq!(p.uid, long, "the pod's key is kept whole");
        assert_eq!(counter.load(Ordering::Relaxed), 12);
        // What is within the bound is untouched.
        assert_eq!(limit.apply(&mut m), Cuts::default());
    }

    #[test]
    fn labels_past_the_count_are_left_out_in_key_order() {
        let limit = ValueLimit::new(10, 3, Arc::default());
        let label = |k: &str, v: &str| (k.to_string(), v.to_string());
        let mut m = ContainerMeta {
            labels: vec![
                label("e", "5"),
                label("b", "a value longer than ten"),
                label("d", "4"),
                label("a", "1"),
                label("c", "3"),
            ],
            ..Default::default()
        };
        // Two left out for the count, one value cut (of the labels kept).
        let c = limit.apply(&mut m);
        assert_eq!((c.values, c.labels), (1, 2));
        assert_eq!(
            m.labels,
            [label("a", "1"), label("b", "a value lo"), label("c", "3")]
        );
        // At the bound: untouched, order included.
        let mut p = PodMeta {
            uid: "u".into(),
            labels: vec![label("z", "1"), label("y", "2"), label("x", "3")],
            ..Default::default()
        };
        assert_eq!(limit.apply_pod(&mut p), Cuts::default());
        assert_eq!(p.labels[0], label("z", "1"));
    }
}
