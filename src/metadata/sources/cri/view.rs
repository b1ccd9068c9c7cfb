//! What a CRI runtime says about a sandbox or a container, in one shape whether it came from
//! a list or from an event, and how the CRI source turns it into
//! [`ContainerMeta`]: image names from the node's image list, allowed labels, and the rule
//! that a stored container's fields never change.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::api;
use crate::exit::RuntimeExit;
use crate::metadata::refs::{image_name_and_tags, is_image_id, split_image_ref};
use crate::metadata::store::ContainerMeta;

/// A pod sandbox, from `ListPodSandbox` or an event's `PodSandboxStatus`: the pod's identity
/// (its metadata is the contract, not the labels) and whether it is ready.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sandbox {
    pub(crate) id: String,
    pub(crate) uid: String,
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) attempt: u32,
    pub(crate) ready: bool,
    pub(crate) created_at: i64,
    pub(crate) labels: BTreeMap<String, String>,
}

impl Sandbox {
    pub(crate) fn new(
        id: &str,
        meta: Option<&api::PodSandboxMetadata>,
        state: i32,
        created_at: i64,
        labels: &BTreeMap<String, String>,
    ) -> Sandbox {
        let m = meta.cloned().unwrap_or_default();
        Sandbox {
            id: id.to_owned(),
            uid: m.uid,
            name: m.name,
            namespace: m.namespace,
            attempt: m.attempt,
            ready: state == api::PodSandboxState::SandboxReady as i32,
            created_at,
            labels: labels.clone(),
        }
    }

    pub(crate) fn from_list(s: &api::PodSandbox) -> Sandbox {
        Sandbox::new(&s.id, s.metadata.as_ref(), s.state, s.created_at, &s.labels)
    }

    pub(crate) fn from_status(s: &api::PodSandboxStatus) -> Sandbox {
        Sandbox::new(&s.id, s.metadata.as_ref(), s.state, s.created_at, &s.labels)
    }

    /// Which of a pod's sandboxes describes it: a ready one, else the latest attempt.
    pub(crate) fn better_than(&self, other: &Sandbox) -> bool {
        (self.ready, self.attempt, self.created_at) > (other.ready, other.attempt, other.created_at)
    }
}

/// A container, from `ListContainers` or an event's `ContainerStatus` (which describe the
/// image differently: the list gives what it was created with, the status a repo tag).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ctr {
    pub(crate) id: String,
    pub(crate) sandbox_id: String,
    pub(crate) name: String,
    /// `None` when the runtime sent no metadata.
    pub(crate) attempt: Option<u32>,
    pub(crate) image: String,
    pub(crate) user_image: String,
    pub(crate) image_ref: String,
    pub(crate) image_id: String,
    /// Created (its cgroup is on its way) or running.
    pub(crate) alive: bool,
    pub(crate) started_at: Option<SystemTime>,
    pub(crate) labels: BTreeMap<String, String>,
}

impl Ctr {
    pub(crate) fn from_list(c: &api::Container) -> Ctr {
        let (image, meta) = (c.image.clone().unwrap_or_default(), c.metadata.as_ref());
        Ctr {
            id: c.id.clone(),
            sandbox_id: c.pod_sandbox_id.clone(),
            name: meta.map(|m| m.name.clone()).unwrap_or_default(),
            attempt: meta.map(|m| m.attempt),
            image: image.image,
            user_image: image.user_specified_image,
            image_ref: c.image_ref.clone(),
            image_id: c.image_id.clone(),
            alive: c.state == api::ContainerState::ContainerCreated as i32
                || c.state == api::ContainerState::ContainerRunning as i32,
            started_at: None,
            labels: c.labels.clone(),
        }
    }

    /// A status says what a list does, and when the container started.
    pub(crate) fn from_status(c: &api::ContainerStatus, sandbox_id: &str) -> Ctr {
        let listed = api::Container {
            id: c.id.clone(),
            pod_sandbox_id: sandbox_id.to_owned(),
            metadata: c.metadata.clone(),
            image: c.image.clone(),
            image_ref: c.image_ref.clone(),
            state: c.state,
            labels: c.labels.clone(),
            image_id: c.image_id.clone(),
        };
        Ctr {
            started_at: time_ns(c.started_at),
            ..Ctr::from_list(&listed)
        }
    }

    /// Whether the container's image name needs the image list: neither what the user wrote
    /// nor what it was created with names an image (the kubelet passes the id).
    pub(crate) fn needs_image_list(&self) -> bool {
        split_image_ref(&self.user_image).is_none() && split_image_ref(&self.image).is_none()
    }

    pub(crate) fn image_refs(&self) -> impl Iterator<Item = &str> {
        [&self.image_id, &self.image_ref, &self.image]
            .into_iter()
            .map(String::as_str)
            .filter(|r| !r.is_empty())
    }
}

/// A CRI time (nanoseconds since the epoch; 0: not yet).
fn time_ns(ns: i64) -> Option<SystemTime> {
    let ns = u64::try_from(ns).ok().filter(|&ns| ns > 0)?;
    Some(UNIX_EPOCH + Duration::from_nanos(ns))
}

pub(crate) fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// `sha256:<hex>` for an image id written either way (CRI-O's have no prefix); anything else
/// as it is.
pub(crate) fn canonical_image_id(id: &str) -> String {
    if is_image_id(id) && !id.starts_with("sha256:") {
        format!("sha256:{id}")
    } else {
        id.to_owned()
    }
}

/// The node's images as of the last `ListImages`, by every name they are known by.
#[derive(Default)]
pub(crate) struct Images {
    all: Vec<api::Image>,
    by_ref: HashMap<String, usize>,
    /// References no image had at the last `ListImages`: asking again would not help until a
    /// new reference shows up.
    unresolved: HashSet<String>,
}

impl Images {
    pub(crate) fn replace(&mut self, images: Vec<api::Image>) {
        self.by_ref.clear();
        for (i, img) in images.iter().enumerate() {
            let names = std::iter::once(&img.id)
                .chain(&img.repo_tags)
                .chain(&img.repo_digests);
            for n in names.filter(|n| !n.is_empty()) {
                self.by_ref.entry(canonical_image_id(n)).or_insert(i);
            }
        }
        self.all = images;
    }

    pub(crate) fn find(&self, r: &str) -> Option<&api::Image> {
        self.by_ref
            .get(&canonical_image_id(r))
            .and_then(|&i| self.all.get(i))
    }

    pub(crate) fn find_any(&self, c: &Ctr) -> Option<&api::Image> {
        c.image_refs().find_map(|r| self.find(r))
    }

    /// Whether a `ListImages` could name one of these containers' images.
    pub(crate) fn worth_listing<'a>(&self, ctrs: impl IntoIterator<Item = &'a Ctr>) -> bool {
        ctrs.into_iter().any(|c| {
            c.needs_image_list()
                && self.find_any(c).is_none()
                && c.image_refs().any(|r| !self.unresolved.contains(r))
        })
    }

    /// After a `ListImages`: the references that are still unknown.
    pub(crate) fn settle<'a>(&mut self, ctrs: impl IntoIterator<Item = &'a Ctr>) {
        let mut unresolved = HashSet::new();
        for c in ctrs {
            if c.needs_image_list() && self.find_any(c).is_none() {
                unresolved.extend(c.image_refs().map(str::to_owned));
            }
        }
        self.unresolved = unresolved;
    }

    /// `container.image.name`, `.tags` and `.id`: what the user wrote (kubelet 1.30+ passes
    /// it), else the reference the container was created with if it names an image, else the
    /// image's first repo tag (or digest). The id is the image's own, else what the runtime
    /// reported.
    pub(crate) fn describe(&self, c: &Ctr) -> (Option<String>, Vec<String>, Option<String>) {
        let found = self.find_any(c);
        let named = [c.user_image.as_str(), c.image.as_str()]
            .into_iter()
            .find(|r| split_image_ref(r).is_some())
            .or_else(|| {
                found.and_then(|i| {
                    i.repo_tags
                        .first()
                        .or(i.repo_digests.first())
                        .map(String::as_str)
                })
            });
        let (name, tags) = named.map(image_name_and_tags).unwrap_or_default();
        let id = found
            .map(|i| i.id.as_str())
            .filter(|i| !i.is_empty())
            .or_else(|| {
                [c.image_id.as_str(), c.image_ref.as_str()]
                    .into_iter()
                    .find(|r| !r.is_empty())
                    .or_else(|| is_image_id(&c.image).then_some(c.image.as_str()))
            })
            .map(canonical_image_id);
        (name, tags, id)
    }
}

/// A stored container's fields win over a new description: they never change for an id,
/// and lists and events describe images slightly differently (an event's status may give the
/// repo digest where the list gave the id). Only what was missing is filled in.
pub(crate) fn merge(old: &ContainerMeta, new: ContainerMeta) -> ContainerMeta {
    let (image_name, image_tags) = match &old.image_name {
        Some(_) => (old.image_name.clone(), old.image_tags.clone()),
        None => (new.image_name, new.image_tags),
    };
    let labels = [&old.labels, &new.labels]
        .into_iter()
        .find(|l| !l.is_empty());
    ContainerMeta {
        name: old.name.clone().or(new.name),
        image_name,
        image_tags,
        image_id: old.image_id.clone().or(new.image_id),
        labels: labels.cloned().unwrap_or_default(),
        k8s_pod_name: old.k8s_pod_name.clone().or(new.k8s_pod_name),
        k8s_namespace_name: old.k8s_namespace_name.clone().or(new.k8s_namespace_name),
        k8s_container_name: old.k8s_container_name.clone().or(new.k8s_container_name),
        k8s_pod_uid: old.k8s_pod_uid.clone().or(new.k8s_pod_uid),
        k8s_container_restart_count: old
            .k8s_container_restart_count
            .or(new.k8s_container_restart_count),
        runtime_name: old.runtime_name.clone().or(new.runtime_name),
        sandbox: old.sandbox || new.sandbox,
        started_at: old.started_at.or(new.started_at),
        log_path: old.log_path.clone().or(new.log_path),
    }
}

/// What a container's status says about its end (once it has one: `finished_at` set).
pub(crate) fn exit_of(st: &api::ContainerStatus) -> RuntimeExit {
    RuntimeExit {
        oom: Some(st.reason == "OOMKilled"),
        restart_count: st.metadata.as_ref().map(|m| m.attempt),
        finished_at: time_ns(st.finished_at),
        ..RuntimeExit::default()
    }
    .with_code(Some(i64::from(st.exit_code)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A pod's sandbox `s1` as containerd 1.7's events describe it.
    pub(crate) fn sandbox_status(ready: bool) -> api::PodSandboxStatus {
        let state = match ready {
            true => api::PodSandboxState::SandboxReady,
            false => api::PodSandboxState::SandboxNotready,
        };
        api::PodSandboxStatus {
            id: "s1".into(),
            metadata: Some(api::PodSandboxMetadata {
                name: "web-0".into(),
                uid: "u-1".into(),
                namespace: "prod".into(),
                attempt: 0,
            }),
            state: state as i32,
            created_at: 1,
            labels: BTreeMap::from([("app".into(), "web".into()), ("x".into(), "y".into())]),
        }
    }

    /// Its container `c1`: containerd's statuses give the image's first repo tag and its repo
    /// digest.
    pub(crate) fn container_status(
        state: api::ContainerState,
        attempt: u32,
    ) -> api::ContainerStatus {
        api::ContainerStatus {
            id: "c1".into(),
            metadata: Some(api::ContainerMetadata {
                name: "app".into(),
                attempt,
            }),
            state: state as i32,
            image: Some(api::ImageSpec {
                image: "docker.io/library/busybox:1.36".into(),
                ..Default::default()
            }),
            image_ref: "docker.io/library/busybox@sha256:abcd".into(),
            image_id: ID.into(),
            ..Default::default()
        }
    }

    fn ctr(image: &str, image_ref: &str) -> Ctr {
        Ctr {
            id: "c1".into(),
            sandbox_id: "s1".into(),
            name: "app".into(),
            attempt: Some(0),
            image: image.into(),
            user_image: String::new(),
            image_ref: image_ref.into(),
            image_id: String::new(),
            alive: true,
            started_at: None,
            labels: BTreeMap::new(),
        }
    }

    /// What `describe` gives for an image of this name and tags, with the id [`ID`].
    fn named(name: &str, tags: &[&str]) -> (Option<String>, Vec<String>, Option<String>) {
        let tags = tags.iter().map(|t| t.to_string()).collect();
        (Some(name.into()), tags, Some(ID.into()))
    }

    pub(crate) const ID: &str =
        "sha256:3da5578349ac6d5a0130915b135da86571ea7db380da2e2d2c6f189b81db3f54";

    #[test]
    fn images_are_named_from_the_list_only_when_needed() {
        let mut images = Images::default();
        let by_id = ctr(ID, ID);
        // The kubelet's way: created with the id, which names nothing.
        assert!(by_id.needs_image_list());
        assert!(images.worth_listing([&by_id]));
        assert_eq!(images.describe(&by_id), (None, vec![], Some(ID.to_owned())));
        images.replace(vec![api::Image {
            id: ID.into(),
            repo_tags: vec!["docker.io/library/busybox:1.36".into(), "busybox:x".into()],
            repo_digests: vec!["docker.io/library/busybox@sha256:abcd".into()],
        }]);
        images.settle([&by_id]);
        assert!(!images.worth_listing([&by_id]));
        assert_eq!(
            images.describe(&by_id),
            named("docker.io/library/busybox", &["1.36"])
        );
        // CRI-O: bare hex ids, the repo digest as image_ref; still the same image.
        let crio = ctr(&ID[7..], "docker.io/library/busybox@sha256:abcd");
        assert_eq!(
            images.describe(&crio),
            named("docker.io/library/busybox", &["1.36"])
        );
        // A reference that names an image is taken as written, and needs no list.
        let app = ctr("registry:5000/ns/app:2", ID);
        assert!(!app.needs_image_list());
        assert_eq!(images.describe(&app), named("registry:5000/ns/app", &["2"]));
        // What the user wrote wins over everything.
        let mut user = by_id.clone();
        user.user_image = "busybox:1.36".into();
        assert_eq!(images.describe(&user).0.as_deref(), Some("busybox"));
        assert!(!user.needs_image_list());
        // An id no image has: listed once, then not again until something new shows up.
        let lost_id = format!("sha256:{}", "0".repeat(64));
        let lost = ctr(&lost_id, "");
        assert!(images.worth_listing([&lost]));
        images.settle([&lost]);
        assert!(!images.worth_listing([&lost]));
        assert!(images.worth_listing([&lost, &ctr(&format!("sha256:{}", "1".repeat(64)), "")]));
        assert_eq!(images.describe(&lost), (None, vec![], Some(lost_id)));
    }

    #[test]
    fn stored_fields_do_not_flap() {
        let old = ContainerMeta {
            name: Some("app".into()),
            image_name: Some("docker.io/library/busybox".into()),
            image_tags: vec!["1.36".into()],
            image_id: Some(ID.into()),
            k8s_container_restart_count: Some(0),
            ..Default::default()
        };
        let new = ContainerMeta {
            name: Some("app".into()),
            image_name: Some("busybox".into()),
            image_tags: vec!["latest".into()],
            image_id: Some("docker.io/library/busybox@sha256:abcd".into()),
            k8s_pod_name: Some("web-0".into()),
            k8s_container_restart_count: Some(0),
            sandbox: false,
            ..Default::default()
        };
        let m = merge(&old, new);
        assert_eq!(m.image_name.as_deref(), Some("docker.io/library/busybox"));
        assert_eq!(m.image_tags, ["1.36"]);
        assert_eq!(m.image_id.as_deref(), Some(ID));
        // Missing fields are filled in.
        assert_eq!(m.k8s_pod_name.as_deref(), Some("web-0"));
    }

    #[test]
    fn messages_decode_what_they_encode() {
        use prost::Message;
        // A sandbox status and a container status as a containerd 1.7 event carries them.
        let ev = api::ContainerEventResponse {
            container_id: "c1".into(),
            container_event_type: api::ContainerEventType::ContainerStartedEvent as i32,
            pod_sandbox_status: Some(sandbox_status(true)),
            containers_statuses: vec![api::ContainerStatus {
                started_at: 1_700_000_000_000_000_000,
                ..container_status(api::ContainerState::ContainerRunning, 2)
            }],
        };
        let bytes = ev.encode_to_vec();
        let back = api::ContainerEventResponse::decode(&bytes[..]).unwrap();
        assert_eq!(back, ev);
        let c = Ctr::from_status(&back.containers_statuses[0], "s1");
        assert_eq!(
            (c.name.as_str(), c.attempt, c.alive),
            ("app", Some(2), true)
        );
        assert_eq!(
            c.started_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        let s = Sandbox::from_status(back.pod_sandbox_status.as_ref().unwrap());
        assert!(s.ready);
        assert_eq!((s.uid.as_str(), s.name.as_str()), ("u-1", "web-0"));
        // Garbage is an error, not a panic.
        assert!(api::ContainerEventResponse::decode(&[0xff, 0xff, 0xff][..]).is_err());
    }
}
