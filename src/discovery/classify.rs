//! Which cgroups are containers, from their paths alone: the patterns each runtime's cgroup
//! paths follow (Docker, containerd and CRI-O under Kubernetes or not, Podman, containerd's own
//! namespaces), and the enclosing pod slice that gives a container its pod uid.
//!
//! To recognise one more runtime: a pattern in [`classify`] and a case in its tests.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    Docker,
    Containerd,
    CriO,
    Podman,
}

impl Runtime {
    /// The value of `container.runtime.name`.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a found cgroup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A container (its runtime in [`Found::runtime`]).
    Container,
    /// A Kubernetes pod's own cgroup, parent of its containers' (and its sandbox's).
    Pod,
}

/// A container (or a Kubernetes pod) found in the cgroup tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The full container id (64 hex digits for every runtime but plain containerd, whose ids
    /// are names); a pod's uid for a pod.
    pub id: String,
    pub kind: Kind,
    /// The container's runtime; for a pod, the one its containers are expected to have (the
    /// cgroup path of a pod does not say).
    pub runtime: Runtime,
    /// Kubernetes pod uid (with dashes), when the container belongs to a pod.
    pub pod_uid: Option<String>,
    /// Path relative to the hierarchy's mount, e.g. `docker/<id>`.
    pub rel: PathBuf,
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `prefix<id>suffix` → id, when what is between is a container id.
fn between<'a>(name: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let id = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    is_container_id(id).then_some(id)
}

/// A pod uid from a pod cgroup's name: `pod<uid>` (cgroupfs driver) or
/// `kubepods[-<qos>]-pod<uid with _ for ->.slice` (systemd driver).
fn pod_uid(component: &str) -> Option<String> {
    let raw = if let Some(rest) = component.strip_suffix(".slice") {
        let at = rest.rfind("-pod")?;
        if !rest.starts_with("kubepods") {
            return None;
        }
        rest[at + 4..].replace('_', "-")
    } else {
        component.strip_prefix("pod")?.to_string()
    };
    let uid_shaped = raw.len() == 36
        && raw.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    uid_shaped.then_some(raw)
}

/// containerd's own namespaces (`ctr`, nerdctl with the cgroupfs driver) put containers at
/// `/<namespace>/<id>`; these are the namespaces recognised at the top of the tree.
pub const CONTAINERD_NAMESPACES: &[&str] = &["default", "k8s.io", "nerdctl"];

/// A containerd container id: its API allows `[A-Za-z0-9][A-Za-z0-9_.-]*`, up to 76 bytes.
fn is_containerd_id(s: &str) -> bool {
    (1..=76).contains(&s.len())
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `<prefix><id><suffix>` cgroup names, by runtime, tried in order.
const PATTERNS: [(&str, &str, Runtime); 6] = [
    ("docker-", ".scope", Runtime::Docker),
    ("cri-containerd-", ".scope", Runtime::Containerd),
    ("crio-", ".scope", Runtime::CriO),
    ("crio-", "", Runtime::CriO),
    ("libpod-", ".scope", Runtime::Podman),
    ("libpod-", "", Runtime::Podman),
];

/// Decides whether the cgroup at `rel` (relative to a hierarchy's mount) is a container or a
/// Kubernetes pod.
pub fn classify(rel: &Path) -> Option<Found> {
    let comps: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
    let (&name, parents) = comps.split_last()?;
    if parents.first().is_some_and(|p| p.starts_with("kubepods"))
        && let Some(uid) = pod_uid(name)
    {
        return Some(Found {
            id: uid.clone(),
            kind: Kind::Pod,
            runtime: Runtime::Containerd,
            pod_uid: Some(uid),
            rel: rel.to_path_buf(),
        });
    }
    let pod = parents.iter().rev().find_map(|c| pod_uid(c));
    let in_pod = pod.is_some();

    let named = PATTERNS
        .iter()
        .find_map(|&(prefix, suffix, runtime)| Some((between(name, prefix, suffix)?, runtime)));
    let (id, runtime) = if let Some(found) = named {
        found
    } else if is_container_id(name) {
        // Plain ids: `/docker/<id>` (Docker, cgroupfs driver) or
        // `/kubepods/<qos>/pod<uid>/<id>` (a CRI runtime, cgroupfs driver).
        match parents.last() {
            Some(&"docker") => (name, Runtime::Docker),
            _ if in_pod => (name, Runtime::Containerd),
            Some(ns) if parents.len() == 1 && CONTAINERD_NAMESPACES.contains(ns) => {
                (name, Runtime::Containerd)
            }
            _ => return None,
        }
    } else if let [ns] = parents
        && CONTAINERD_NAMESPACES.contains(ns)
        && is_containerd_id(name)
    {
        // `ctr run … ctr-test1`: ids are names.
        (name, Runtime::Containerd)
    } else {
        return None;
    };
    Some(Found {
        id: id.to_string(),
        kind: Kind::Container,
        runtime,
        pod_uid: pod,
        rel: rel.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "12a2c03ea2158182a1d6ebc6ebaf06c728ed3cf3d191793bde6eb2bc9f629dc1";
    const UID: &str = "0f2b5a8c-3c5e-4f7e-9d1a-2b3c4d5e6f70";

    fn c(p: &str) -> Option<(String, Runtime, Option<String>)> {
        classify(Path::new(p))
            .filter(|f| f.kind == Kind::Container)
            .map(|f| (f.id, f.runtime, f.pod_uid))
    }

    /// `p` with `{ID}`, `{UID}`, and `{U}` (the pod uid as a systemd slice name has it).
    fn path(p: &str) -> String {
        let u = UID.replace('-', "_");
        p.replace("{ID}", ID)
            .replace("{UID}", UID)
            .replace("{U}", &u)
    }

    fn pod(p: &str) -> Option<String> {
        classify(Path::new(p))
            .filter(|f| f.kind == Kind::Pod)
            .map(|f| f.id)
    }

    #[test]
    fn pods_and_containerd_namespaces() {
        for p in [
            "kubepods/besteffort/pod{UID}",
            "kubepods/burstable/pod{UID}",
            "kubepods/pod{UID}",
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{U}.slice",
            "kubepods.slice/kubepods-pod{U}.slice",
        ] {
            assert_eq!(pod(&path(p)), Some(UID.to_string()), "{p}");
        }
        // A pod uid outside the kubelet's tree is no pod; QoS slices are none either.
        assert_eq!(pod(&format!("user.slice/pod{UID}")), None);
        assert_eq!(pod("kubepods/besteffort"), None);
        assert_eq!(pod("kubepods.slice/kubepods-besteffort.slice"), None);

        // containerd's own namespaces: `/<namespace>/<id>`, ids as `ctr` and nerdctl make them.
        assert_eq!(
            c("default/ctr-test1"),
            Some(("ctr-test1".into(), Runtime::Containerd, None))
        );
        assert_eq!(
            c(&format!("default/{ID}")),
            Some((ID.into(), Runtime::Containerd, None))
        );
        assert_eq!(c("default/.hidden"), None);
        assert_eq!(c("default/a/b"), None);
        assert_eq!(c("somewhere/ctr-test1"), None);
        assert_eq!(c(&format!("default/{}", "x".repeat(77))), None);
    }

    #[test]
    fn runtime_path_patterns() {
        use Runtime::{Containerd, CriO, Docker, Podman};
        let cases = [
            ("docker/{ID}", Docker, false),
            ("system.slice/docker-{ID}.scope", Docker, false),
            ("system.slice/cri-containerd-{ID}.scope", Containerd, false),
            ("machine.slice/libpod-{ID}.scope", Podman, false),
            ("libpod_parent/libpod-{ID}", Podman, false),
            (
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{U}.slice/cri-containerd-{ID}.scope",
                Containerd,
                true,
            ),
            (
                "kubepods.slice/kubepods-pod{U}.slice/crio-{ID}.scope",
                CriO,
                true,
            ),
            ("kubepods/besteffort/pod{UID}/{ID}", Containerd, true),
            ("kubepods/pod{UID}/{ID}", Containerd, true),
        ];
        for (p, runtime, in_pod) in cases {
            let pod = in_pod.then(|| UID.to_string());
            assert_eq!(c(&path(p)), Some((ID.to_string(), runtime, pod)), "{p}");
        }
    }

    #[test]
    fn other_cgroups_are_not_containers() {
        for p in [
            path("system.slice/docker.service"),
            path("system.slice/docker.socket"),
            path("machine.slice/libpod-conmon-{ID}.scope"),
            path("kubepods.slice/kubepods-pod{U}.slice/crio-conmon-{ID}.scope"),
            format!("system.slice/docker-{}.scope", &ID[..63]),
            format!("system.slice/docker-{}.scope", ID.to_uppercase()),
            path("user.slice/{ID}"),
            path("kubepods/besteffort/pod{UID}"),
            "docker".to_string(),
            String::new(),
        ] {
            assert_eq!(c(&p), None, "{p}");
        }
    }
}
