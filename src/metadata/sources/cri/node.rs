//! What the CRI source knows of the node's runtime, kept in line with its lists and events:
//! the sandboxes, the pods and the containers it stores (and the images that name them),
//! what discovery asked for and no list has shown yet ([`Lookups`]), and the exits stop events
//! carry.
//! Nothing here calls the runtime: the follower calls, and hands the answers here.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use super::api;
use super::view::{Ctr, Images, Sandbox, exit_of, merge, nonempty};
use crate::metadata::exits::ExitStore;
use crate::metadata::refs::{allowed, image_name_and_tags};
use crate::metadata::source::Held;
use crate::metadata::store::{ContainerMeta, MetadataStore, PodMeta};

/// Sandboxes asked for their image per pass of the loop, so that a node full of new pods does
/// not hold events up.
const SANDBOX_IMAGES_PER_PASS: usize = 16;

pub(crate) struct Node {
    /// Each id put in the store, `true` for sandboxes; and the pods.
    pub(crate) held: Held<bool>,
    label_globs: Vec<String>,
    pod_label_globs: Vec<String>,
    /// Where the exits of stop events go.
    exits: ExitStore,
    /// From `Version`, for `container.runtime.name`.
    pub(crate) runtime_name: Option<String>,
    /// The runtime's sandboxes as last listed (or as events described them).
    pub(crate) sandboxes: HashMap<String, Sandbox>,
    pub(crate) images: Images,
    /// Sandbox id → its image (the "pause" image), once asked (`None`: the runtime did not
    /// say). Only for known sandboxes, so bounded by them.
    sandbox_images: HashMap<String, Option<String>>,
    pub(crate) lookups: Lookups,
}

impl Node {
    pub(crate) fn new(
        store: MetadataStore,
        removal_delay: Duration,
        label_globs: Vec<String>,
        pod_label_globs: Vec<String>,
        exits: ExitStore,
    ) -> Node {
        Node {
            held: Held::new(store, removal_delay),
            label_globs,
            pod_label_globs,
            exits,
            runtime_name: None,
            sandboxes: HashMap::new(),
            images: Images::default(),
            sandbox_images: HashMap::new(),
            lookups: Lookups::default(),
        }
    }

    /// The entry `id` was dropped: a sandbox's goes with what is known of it.
    pub(crate) fn forget(&mut self, id: &str, sandbox: bool) {
        if sandbox {
            self.sandboxes.remove(id);
            self.sandbox_images.remove(id);
        }
    }

    /// Of the sandboxes `(id, ready)`, the ready ones whose image was not asked for yet, at
    /// most [`SANDBOX_IMAGES_PER_PASS`].
    pub(crate) fn sandboxes_to_name<'a>(
        &self,
        sandboxes: impl IntoIterator<Item = (&'a str, bool)>,
    ) -> Vec<String> {
        sandboxes
            .into_iter()
            .filter(|&(id, ready)| ready && !id.is_empty() && !self.sandbox_images.contains_key(id))
            .map(|(id, _)| id.to_owned())
            .take(SANDBOX_IMAGES_PER_PASS)
            .collect()
    }

    /// The runtime's answer for a sandbox's image. A sandbox not stored yet gets it when it is
    /// stored; one stored already gets it now.
    pub(crate) fn name_sandbox(&mut self, id: &str, image: Option<String>) {
        self.sandbox_images.insert(id.to_owned(), image);
        if self.held.holds(id) {
            let meta = self.sandbox_image_meta(id);
            self.put(id, meta, true);
        }
    }

    /// A sandbox's image as metadata (nothing when it is not known).
    fn sandbox_image_meta(&self, id: &str) -> ContainerMeta {
        let reference = self.sandbox_images.get(id).and_then(Option::as_deref);
        let (image_name, image_tags) = reference.map(image_name_and_tags).unwrap_or_default();
        ContainerMeta {
            image_name,
            image_tags,
            sandbox: true,
            ..Default::default()
        }
    }

    /// The containers of `ctrs` to store whose image has no name yet (stored names never
    /// change: see `merge`).
    pub(crate) fn unnamed<'c>(&self, ctrs: &'c [Ctr]) -> Vec<&'c Ctr> {
        ctrs.iter()
            .filter(|c| self.stores(c))
            .filter(|c| {
                self.held
                    .store()
                    .get(&c.id)
                    .is_none_or(|m| m.image_name.is_none())
            })
            .collect()
    }

    /// Takes what discovery asked for: ids the store does not know become pending.
    pub(crate) fn absorb_wanted(&mut self) {
        let store = self.held.store();
        self.lookups
            .absorb(store.take_wanted(), |id| store.knows(id));
    }

    /// After a list: found ids leave the lookups; the others are retried later, or given up.
    pub(crate) fn settle_lookups(&mut self) {
        let store = self.held.store();
        self.lookups.settle(Instant::now(), |id| store.knows(id));
    }

    /// A full `ListPodSandbox`: replaces what is known of sandboxes, stores the ready ones (and
    /// gone ones discovery asked for), schedules the removal of the rest, then the pods.
    pub(crate) fn apply_sandboxes(&mut self, list: &[api::PodSandbox]) {
        let listed: HashMap<String, Sandbox> = list
            .iter()
            .filter(|s| !s.id.is_empty())
            .map(|s| (s.id.clone(), Sandbox::from_list(s)))
            .collect();
        (self.held).remove_later_if(|id, &is_sandbox| is_sandbox && !listed.contains_key(id));
        (self.sandbox_images).retain(|id, _| listed.contains_key(id));
        self.sandboxes = listed;
        let ids: Vec<String> = self.sandboxes.keys().cloned().collect();
        for id in &ids {
            self.apply_sandbox(id);
        }
        self.refresh_pods(None);
    }

    fn apply_sandbox(&mut self, id: &str) {
        let Some(s) = self.sandboxes.get(id) else {
            return;
        };
        if !(s.ready || self.held.holds(id) || self.lookups.is_pending(id)) {
            return;
        }
        let ready = s.ready;
        let meta = ContainerMeta {
            labels: allowed(&s.labels, &self.label_globs),
            k8s_pod_name: nonempty(&s.name),
            k8s_namespace_name: nonempty(&s.namespace),
            k8s_pod_uid: nonempty(&s.uid),
            runtime_name: self.runtime_name.clone(),
            ..self.sandbox_image_meta(id)
        };
        self.put(id, meta, true);
        self.held.set_alive(id, ready);
    }

    /// Pods from the sandboxes: a pod is there while one of its sandboxes is ready. `only`
    /// limits the work to one pod (after an event).
    fn refresh_pods(&mut self, only: Option<&str>) {
        let mut best: HashMap<&str, &Sandbox> = HashMap::new();
        for s in self.sandboxes.values() {
            if s.uid.is_empty() || only.is_some_and(|u| u != s.uid) {
                continue;
            }
            let slot = best.entry(s.uid.as_str()).or_insert(s);
            if s.better_than(slot) {
                *slot = s;
            }
        }
        for (uid, s) in &best {
            if s.ready || self.held.holds_pod(uid) || self.lookups.is_pending(uid) {
                let pod = PodMeta {
                    uid: uid.to_string(),
                    name: nonempty(&s.name),
                    namespace: nonempty(&s.namespace),
                    labels: allowed(&s.labels, &self.pod_label_globs),
                };
                self.held.put_pod(pod, s.ready);
            }
        }
        let gone = |uid: &str| only.is_none_or(|u| u == uid) && !best.contains_key(uid);
        self.held.remove_pods_later_if(gone);
    }

    /// Whether a listed container goes in the store.
    fn stores(&self, c: &Ctr) -> bool {
        !c.id.is_empty() && (c.alive || self.held.holds(&c.id) || self.lookups.is_pending(&c.id))
    }

    /// Stores the containers that are alive (or asked for, or already held). With `full` the
    /// list is the runtime's every container: held ones missing from it are gone.
    pub(crate) fn store_containers(&mut self, ctrs: &[Ctr], full: bool) {
        let take: Vec<&Ctr> = ctrs.iter().filter(|c| self.stores(c)).collect();
        for c in take {
            let meta = self.describe(c);
            self.put(&c.id, meta, false);
            self.held.set_alive(&c.id, c.alive);
        }
        if full {
            let listed: HashSet<&str> = ctrs.iter().map(|c| c.id.as_str()).collect();
            (self.held).remove_later_if(|id, &is_sandbox| !is_sandbox && !listed.contains(id));
        }
    }

    fn describe(&self, c: &Ctr) -> ContainerMeta {
        let sandbox = self.sandboxes.get(&c.sandbox_id);
        let label = |k: &str| c.labels.get(k).and_then(|v| nonempty(v));
        let from_sandbox = |f: fn(&Sandbox) -> &String| sandbox.and_then(|s| nonempty(f(s)));
        let (image_name, image_tags, image_id) = self.images.describe(c);
        ContainerMeta {
            name: nonempty(&c.name),
            image_name,
            image_tags,
            image_id,
            labels: allowed(&c.labels, &self.label_globs),
            k8s_pod_name: from_sandbox(|s| &s.name).or_else(|| label("io.kubernetes.pod.name")),
            k8s_namespace_name: from_sandbox(|s| &s.namespace)
                .or_else(|| label("io.kubernetes.pod.namespace")),
            k8s_container_name: nonempty(&c.name).or_else(|| label("io.kubernetes.container.name")),
            k8s_pod_uid: from_sandbox(|s| &s.uid).or_else(|| label("io.kubernetes.pod.uid")),
            k8s_container_restart_count: c.attempt,
            runtime_name: self.runtime_name.clone(),
            sandbox: c.labels.get("io.cri-containerd.kind").map(String::as_str) == Some("sandbox"),
            started_at: c.started_at,
            log_path: None,
        }
    }

    pub(crate) fn put(&mut self, id: &str, meta: ContainerMeta, is_sandbox: bool) {
        let meta = match self.held.store().get(id) {
            Some(old) => merge(&old, meta),
            None => meta,
        };
        self.held.put(id, meta, is_sandbox);
    }

    /// The event's sandbox status; returns its containers' statuses.
    pub(crate) fn event_sandbox(&mut self, ev: &api::ContainerEventResponse) -> Vec<Ctr> {
        let mut sandbox_id = String::new();
        if let Some(ps) = &ev.pod_sandbox_status {
            let s = Sandbox::from_status(ps);
            if !s.id.is_empty() {
                sandbox_id = s.id.clone();
                let uid = s.uid.clone();
                self.sandboxes.insert(s.id.clone(), s);
                self.apply_sandbox(&sandbox_id);
                self.refresh_pods(Some(&uid));
            }
        }
        ev.containers_statuses
            .iter()
            .map(|c| Ctr::from_status(c, &sandbox_id))
            .collect()
    }

    pub(crate) fn event_containers(&mut self, ev: &api::ContainerEventResponse, ctrs: &[Ctr]) {
        use api::ContainerEventType as T;
        self.store_containers(ctrs, false);
        let id = ev.container_id.as_str();
        let kind = api::ContainerEventType::try_from(ev.container_event_type).ok();
        let statuses = &ev.containers_statuses;
        if kind == Some(T::ContainerStoppedEvent)
            && let Some(st) = statuses.iter().find(|c| c.id == id && c.finished_at > 0)
        {
            // The stop carries the exit: no status call needed.
            self.exits.record(id, exit_of(st));
        }
        match kind {
            Some(T::ContainerStoppedEvent | T::ContainerDeletedEvent) => {
                self.held.remove_later(id);
                if let Some(s) = self.sandboxes.get_mut(id) {
                    s.ready = false;
                    let uid = s.uid.clone();
                    if !self.held.holds(id) && kind == Some(T::ContainerDeletedEvent) {
                        self.sandboxes.remove(id);
                    }
                    self.refresh_pods(Some(&uid));
                }
            }
            _ => {
                // An event about something its statuses did not describe: look it up.
                if !self.held.store().knows(id) {
                    self.lookups.ask(id);
                }
            }
        }
    }
}

// The ids discovery asked for that no list has shown yet, for runtimes without
// `GetContainerEvents` (and for events about what their statuses did not describe). Runtimes
// create a sandbox's cgroup before their lists show it (containerd lists a sandbox only once
// `RunPodSandbox` is done), so an id still unknown after a list is asked again with backoff
// for up to `LOOKUP_GIVE_UP`, then left alone for `GIVE_UP_TTL`.

/// Retries of an id a list did not show: 100 ms, 200 ms, … capped at 5 s.
const LOOKUP_RETRY_MIN: Duration = Duration::from_millis(100);
const LOOKUP_RETRY_MAX: Duration = Duration::from_secs(5);
/// An id no list has shown for this long is not the runtime's (a container of another runtime,
/// or one that came and went): it is dropped, about a dozen lists after it was first asked.
pub const LOOKUP_GIVE_UP: Duration = Duration::from_secs(30);
/// …and asks for it are ignored this long, so that a discovery that asks for an unknown id on
/// every tick costs one retry series per id, not one list per tick.
pub const GIVE_UP_TTL: Duration = Duration::from_secs(600);
/// Bounds on ids being retried and ids given up (the store bounds the asks themselves).
const MAX_PENDING: usize = 4096;
const MAX_GIVEN_UP: usize = 16384;

/// An id that discovery asked for and no list has shown yet.
struct Pending {
    since: Instant,
    next: Instant,
    tries: u32,
}

/// The ids being looked up, and those given up on.
#[derive(Default)]
pub(crate) struct Lookups {
    pending: HashMap<String, Pending>,
    given_up: HashMap<String, Instant>,
}

impl Lookups {
    /// Takes what discovery asked for: ids not `known` (and not given up) become pending.
    pub(crate) fn absorb(&mut self, asked: Vec<String>, known: impl Fn(&str) -> bool) {
        let now = Instant::now();
        if self.given_up.len() >= MAX_GIVEN_UP / 2 {
            self.given_up.retain(|_, until| *until > now);
        }
        for id in asked {
            let id = normalize_wanted(id);
            let asked_off = self.given_up.get(&id).is_some_and(|until| *until > now);
            if id.is_empty() || asked_off || known(&id) || self.pending.contains_key(&id) {
                continue;
            }
            if self.pending.len() >= MAX_PENDING {
                break;
            }
            self.add(id, now);
        }
    }

    /// Looks `id` up at the next chance (an event about something its statuses did not
    /// describe).
    pub(crate) fn ask(&mut self, id: &str) {
        if !id.is_empty() && !self.pending.contains_key(id) && self.pending.len() < MAX_PENDING {
            self.add(id.to_owned(), Instant::now());
        }
    }

    fn add(&mut self, id: String, now: Instant) {
        let p = Pending {
            since: now,
            next: now,
            tries: 0,
        };
        self.pending.insert(id, p);
    }

    pub(crate) fn is_pending(&self, id: &str) -> bool {
        self.pending.contains_key(id)
    }

    /// The ids being looked up.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &String> {
        self.pending.keys()
    }

    /// Whether a list is due for one of them.
    pub(crate) fn due(&self, now: Instant) -> bool {
        self.pending.values().any(|p| p.next <= now)
    }

    pub(crate) fn next_retry(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.next).min()
    }

    /// After a list: ids now `known` leave; the others are retried later, or given up.
    pub(crate) fn settle(&mut self, now: Instant, known: impl Fn(&str) -> bool) {
        let given_up = &mut self.given_up;
        self.pending.retain(|id, p| {
            if known(id) {
                return false;
            }
            if p.next > now {
                return true;
            }
            if now.duration_since(p.since) >= LOOKUP_GIVE_UP {
                tracing::debug!(
                    id,
                    "the CRI runtime does not know this id; not asking again for a while"
                );
                if given_up.len() < MAX_GIVEN_UP {
                    given_up.insert(id.clone(), now + GIVE_UP_TTL);
                }
                return false;
            }
            p.tries += 1;
            let wait = LOOKUP_RETRY_MIN
                .saturating_mul(1 << p.tries.min(16))
                .min(LOOKUP_RETRY_MAX);
            p.next = now + wait;
            true
        });
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Discovery gives pod uids with dashes; a systemd slice name has them as underscores.
fn normalize_wanted(id: String) -> String {
    if id.len() == 36 && id.contains('_') && !id.contains('-') {
        id.replace('_', "-")
    } else {
        id
    }
}

#[cfg(test)]
mod tests {
    use super::super::view::tests::{ID, container_status, sandbox_status};
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// What the skeleton does when removals come due.
    fn sweep(n: &mut Node) {
        for (id, sandbox) in n.held.sweep() {
            n.forget(&id, sandbox);
        }
    }

    /// The event sequence of a pod's life as containerd 1.7 sends it (each event carries the
    /// sandbox's status and its containers'), applied without a runtime: what the store holds
    /// after each, and that everything is gone, store and follower state alike, after the stops.
    #[test]
    fn events_follow_a_pod_through_its_life() {
        use api::{ContainerEventType as T, ContainerState as S};
        let (created, running, exited) = (
            Some(S::ContainerCreated),
            Some(S::ContainerRunning),
            Some(S::ContainerExited),
        );
        let store = MetadataStore::new();
        let pod_labels = vec!["app".into()];
        let (delay, exits) = (Duration::ZERO, ExitStore::new());
        let mut f = Node::new(store.clone(), delay, Vec::new(), pod_labels, exits);
        f.runtime_name = Some("containerd".into());
        // `ready`: the sandbox's status, `None` once it is deleted.
        let mut apply = |id: &str, kind: T, ready: Option<bool>, c: Option<S>| {
            let ev = api::ContainerEventResponse {
                container_id: id.into(),
                container_event_type: kind as i32,
                pod_sandbox_status: ready.map(sandbox_status),
                containers_statuses: c.map(|s| container_status(s, 1)).into_iter().collect(),
            };
            let ctrs = f.event_sandbox(&ev);
            // Statuses name their images: no ListImages needed.
            assert!(!f.images.worth_listing(&ctrs));
            f.event_containers(&ev, &ctrs);
            sweep(&mut f);
        };

        apply("s1", T::ContainerStartedEvent, Some(true), None);
        let s = store.get("s1").unwrap();
        assert!(s.sandbox);
        assert_eq!(s.k8s_pod_name.as_deref(), Some("web-0"));
        let p = store.get_pod("u-1").unwrap();
        assert_eq!(p.namespace.as_deref(), Some("prod"));
        assert_eq!(p.labels, [("app".to_owned(), "web".to_owned())]);

        apply("c1", T::ContainerCreatedEvent, Some(true), created);
        apply("c1", T::ContainerStartedEvent, Some(true), running);
        let c = store.get("c1").unwrap();
        assert_eq!(c.name.as_deref(), Some("app"));
        assert_eq!(c.k8s_pod_name.as_deref(), Some("web-0"));
        assert_eq!(c.k8s_namespace_name.as_deref(), Some("prod"));
        assert_eq!(c.k8s_pod_uid.as_deref(), Some("u-1"));
        assert_eq!(c.k8s_container_restart_count, Some(1));
        assert_eq!(c.image_name.as_deref(), Some("docker.io/library/busybox"));
        assert_eq!(c.image_tags, ["1.36"]);
        assert_eq!(c.image_id.as_deref(), Some(ID));
        assert_eq!(c.runtime_name.as_deref(), Some("containerd"));
        assert_eq!(store.len(), 2);

        // The container stops: gone after the (zero) delay; the pod stays.
        apply("c1", T::ContainerStoppedEvent, Some(true), exited);
        assert!(store.get("c1").is_none());
        assert!(store.get("s1").is_some() && store.get_pod("u-1").is_some());
        // The sandbox stops, then is deleted (its status then no longer comes).
        apply("s1", T::ContainerStoppedEvent, Some(false), None);
        assert!(store.is_empty() && store.get_pod("u-1").is_none());
        apply("s1", T::ContainerDeletedEvent, None, None);
        assert!(f.sandboxes.is_empty(), "{:?}", f.sandboxes);
        assert!(f.held.is_empty());
        assert!(f.lookups.is_empty());
    }

    /// containerd 1.7's stop event carries the container's exit: it goes to the exit store
    /// with no call; a stop without a finished status says nothing.
    #[test]
    fn a_stop_event_says_how_the_container_ended() {
        let exits = ExitStore::new();
        let (store, delay) = (MetadataStore::new(), Duration::from_secs(60));
        let mut f = Node::new(store, delay, Vec::new(), Vec::new(), exits.clone());
        let status = |finished_at, exit_code, reason: &str| api::ContainerStatus {
            finished_at,
            exit_code,
            reason: reason.into(),
            ..container_status(api::ContainerState::ContainerExited, 3)
        };
        let mut stop = |st| {
            let ev = api::ContainerEventResponse {
                container_id: "c1".into(),
                container_event_type: api::ContainerEventType::ContainerStoppedEvent as i32,
                pod_sandbox_status: None,
                containers_statuses: vec![st],
            };
            let ctrs = f.event_sandbox(&ev);
            f.event_containers(&ev, &ctrs);
        };
        stop(status(0, 0, ""));
        assert!(exits.is_empty(), "no exit before the runtime has one");
        stop(status(1_700_000_000_000_000_000, 137, "OOMKilled"));
        let got = exits.take("c1", UNIX_EPOCH).unwrap();
        assert_eq!(got.code, Some(137));
        assert_eq!(got.oom, Some(true));
        assert_eq!(got.restart_count, Some(3));
        assert_eq!(
            got.finished_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        // An int32 status outside 0–255 is no exit status.
        let got = exit_of(&status(1, -1, "Error"));
        assert_eq!((got.code, got.invalid_code), (None, true));
    }

    #[test]
    fn wanted_ids() {
        assert_eq!(
            normalize_wanted("0b0e6b0c_8c51_4d43_9a3f_0d5a7b0b6c1e".into()),
            "0b0e6b0c-8c51-4d43-9a3f-0d5a7b0b6c1e"
        );
        let id = "a".repeat(64);
        assert_eq!(normalize_wanted(id.clone()), id);
    }
}
