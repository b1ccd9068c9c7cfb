//! What a source holds: its store, the source's own state for each id it put there, and the
//! removals it has scheduled. An entry of a container that is gone stays for the removal delay
//! (its final sample still carries its names), then goes, together with that state: a store
//! holds what its runtime has, plus the recently gone, never more.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::metadata::meta::{ContainerMeta, PodMeta};
use crate::metadata::store::MetadataStore;

/// A source's store and what goes with its entries. `S` is the source's own state for each
/// container id it holds (Docker's last run of the container; whether a CRI id is a sandbox).
pub(crate) struct Held<S> {
    store: MetadataStore,
    removal_delay: Duration,
    /// The ids this source put in the store, with their state: the store's keys.
    ids: HashMap<String, S>,
    /// Pending removals: id → when. Only held ids get one, so this never outgrows the store.
    removals: HashMap<String, Instant>,
    pods: HashSet<String>,
    pod_removals: HashMap<String, Instant>,
}

impl<S> Held<S> {
    pub(crate) fn new(store: MetadataStore, removal_delay: Duration) -> Held<S> {
        Held {
            store,
            removal_delay,
            ids: HashMap::new(),
            removals: HashMap::new(),
            pods: HashSet::new(),
            pod_removals: HashMap::new(),
        }
    }

    pub(crate) fn store(&self) -> &MetadataStore {
        &self.store
    }

    /// Stores `meta` under `id`; its state is `new` unless the id was held already. Returns the
    /// id's state.
    pub(crate) fn put(&mut self, id: &str, meta: ContainerMeta, new: S) -> &mut S {
        self.store.insert(id.to_owned(), meta);
        self.ids.entry(id.to_owned()).or_insert(new)
    }

    pub(crate) fn holds(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    pub(crate) fn state_mut(&mut self, id: &str) -> Option<&mut S> {
        self.ids.get_mut(id)
    }

    /// Containers held.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// `id` is alive: no removal.
    pub(crate) fn keep(&mut self, id: &str) {
        self.removals.remove(id);
    }

    /// Drops `id` after the removal delay, if it is held. Keeps an earlier deadline (a stop,
    /// then a deletion).
    pub(crate) fn remove_later(&mut self, id: &str) {
        if self.ids.contains_key(id) {
            let at = Instant::now() + self.removal_delay;
            self.removals.entry(id.to_owned()).or_insert(at);
        }
    }

    /// Drops after the removal delay every id held that `gone` says is gone (what a full list
    /// of the runtime no longer shows).
    pub(crate) fn remove_later_if(&mut self, gone: impl Fn(&str, &S) -> bool) {
        let at = Instant::now() + self.removal_delay;
        for (id, state) in &self.ids {
            if gone(id, state) {
                self.removals.entry(id.clone()).or_insert(at);
            }
        }
    }

    pub(crate) fn put_pod(&mut self, meta: PodMeta) {
        self.pods.insert(meta.uid.clone());
        self.store.insert_pod(meta);
    }

    pub(crate) fn holds_pod(&self, uid: &str) -> bool {
        self.pods.contains(uid)
    }

    pub(crate) fn pod_count(&self) -> usize {
        self.pods.len()
    }

    pub(crate) fn keep_pod(&mut self, uid: &str) {
        self.pod_removals.remove(uid);
    }

    /// Drops the pod `uid` after the removal delay, if it is held.
    pub(crate) fn remove_pod_later(&mut self, uid: &str) {
        if self.pods.contains(uid) {
            let at = Instant::now() + self.removal_delay;
            self.pod_removals.entry(uid.to_owned()).or_insert(at);
        }
    }

    /// The same for pods.
    pub(crate) fn remove_pods_later_if(&mut self, gone: impl Fn(&str) -> bool) {
        let at = Instant::now() + self.removal_delay;
        for uid in self.pods.iter().filter(|uid| gone(uid)) {
            self.pod_removals.entry(uid.clone()).or_insert(at);
        }
    }

    /// When the next removal is due.
    pub(crate) fn next_removal(&self) -> Option<Instant> {
        self.removals
            .values()
            .chain(self.pod_removals.values())
            .min()
            .copied()
    }

    /// Drops what is due from the store; returns the containers dropped, with their state.
    pub(crate) fn sweep(&mut self) -> Vec<(String, S)> {
        let now = Instant::now();
        let mut dropped = Vec::new();
        let (store, ids) = (&self.store, &mut self.ids);
        self.removals.retain(|id, at| {
            if *at > now {
                return true;
            }
            store.remove(id);
            if let Some(state) = ids.remove(id) {
                dropped.push((id.clone(), state));
            }
            false
        });
        let pods = &mut self.pods;
        self.pod_removals.retain(|uid, at| {
            if *at > now {
                return true;
            }
            store.remove_pod(uid);
            pods.remove(uid);
            false
        });
        dropped
    }

    /// Nothing held and nothing scheduled.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
            && self.removals.is_empty()
            && self.pods.is_empty()
            && self.pod_removals.is_empty()
    }
}
