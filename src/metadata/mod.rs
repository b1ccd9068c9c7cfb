//! What the container runtimes say about the containers that discovery finds in the cgroup
//! tree: names, images, allowed labels and Kubernetes identity, the resource attributes a
//! cgroup path cannot give. These sources describe containers; they never find them, and
//! collection never waits for them.
//!
//! Each source keeps a [`MetadataStore`] current from its runtime's API with as few calls as
//! possible, and the exporters read the stores, never the runtimes:
//! - [`docker`]: the Docker Engine API (and Podman's Docker-compatible API).
//!
//! To add a source: a module here with a `run(config, store, stats, shutdown)` task that fills
//! a [`MetadataStore`] and never returns on runtime trouble (back off and retry), and a line
//! in the daemon that spawns it.

pub mod docker;

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
/// per lookup).
///
/// [`generation`](Self::generation) grows on every change, so a renderer can cache each
/// container's label block and rebuild it only when the number moved. Read the generation
/// *before* the entries: a change racing with the read then shows as a new generation on the
/// next tick instead of being cached as current.
#[derive(Clone, Default)]
pub struct MetadataStore {
    inner: Arc<StoreInner>,
}

#[derive(Default)]
struct StoreInner {
    map: RwLock<HashMap<String, Arc<ContainerMeta>>>,
    pods: RwLock<HashMap<String, Arc<PodMeta>>>,
    generation: AtomicU64,
    /// Ids that discovery found and the store did not know, for the source to look up (in one
    /// batch) instead of calling its runtime once per tick.
    wanted: std::sync::Mutex<std::collections::HashSet<String>>,
    wanted_signal: tokio::sync::Notify,
    /// Containers whose runtime changed their resources (Docker's `update`), for the
    /// collector to read their limits again at its next tick instead of within a minute.
    limits_changed: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Ids asked for and not yet looked up are bounded: a source that is down does not make this
/// grow with every container that comes and goes.
const MAX_WANTED: usize = 4096;

impl MetadataStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The metadata of a container by full id, if Docker knows it.
    pub fn get(&self, id: &str) -> Option<Arc<ContainerMeta>> {
        self.read().get(id).cloned()
    }

    /// Bumped after every insert, change or removal.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Inserts or replaces an entry; the generation moves only if something changed, so that
    /// replayed events do not make every renderer rebuild its cache. Public for tests and
    /// benchmarks that need a filled store without a daemon.
    pub fn insert(&self, id: String, meta: ContainerMeta) -> bool {
        let mut map = self.write();
        if map.get(&id).is_some_and(|old| **old == meta) {
            return false;
        }
        map.insert(id, Arc::new(meta));
        self.inner.generation.fetch_add(1, Ordering::Release);
        true
    }

    /// Removes an entry; returns whether there was one.
    pub fn remove(&self, id: &str) -> bool {
        let mut map = self.write();
        let removed = map.remove(id).is_some();
        if removed {
            self.inner.generation.fetch_add(1, Ordering::Release);
        }
        removed
    }

    /// The metadata of a pod by uid, if a runtime knows it.
    pub fn get_pod(&self, uid: &str) -> Option<Arc<PodMeta>> {
        self.read_pods().get(uid).cloned()
    }

    /// Inserts or replaces a pod; the generation moves only if something changed.
    pub fn insert_pod(&self, meta: PodMeta) -> bool {
        let mut map = self.inner.pods.write().unwrap_or_else(|e| e.into_inner());
        if map.get(&meta.uid).is_some_and(|old| **old == meta) {
            return false;
        }
        map.insert(meta.uid.clone(), Arc::new(meta));
        self.inner.generation.fetch_add(1, Ordering::Release);
        true
    }

    /// Removes a pod; returns whether there was one.
    pub fn remove_pod(&self, uid: &str) -> bool {
        let mut map = self.inner.pods.write().unwrap_or_else(|e| e.into_inner());
        let removed = map.remove(uid).is_some();
        if removed {
            self.inner.generation.fetch_add(1, Ordering::Release);
        }
        removed
    }

    /// Uids of the pods held.
    pub fn pod_uids(&self) -> Vec<String> {
        self.read_pods().keys().cloned().collect()
    }

    /// Asks the source to look `id` up (a container or pod that discovery found and
    /// [`get`](Self::get) does not know). Cheap and never blocks on the runtime: the source
    /// collects what was asked and makes one call for all of it.
    pub fn want(&self, id: &str) {
        let mut wanted = self.inner.wanted.lock().unwrap_or_else(|e| e.into_inner());
        if wanted.len() < MAX_WANTED && wanted.insert(id.to_owned()) {
            self.inner.wanted_signal.notify_one();
        }
    }

    /// For the source: what was asked since the last call (emptied).
    pub fn take_wanted(&self) -> Vec<String> {
        let mut wanted = self.inner.wanted.lock().unwrap_or_else(|e| e.into_inner());
        wanted.drain().collect()
    }

    /// For the source: resolves when something is wanted (at once if something was asked
    /// before the call).
    pub async fn wanted(&self) {
        self.inner.wanted_signal.notified().await
    }

    /// For a source: the runtime changed the resources (limits) of `id`.
    pub fn flag_limits_changed(&self, id: &str) {
        let mut ids = self
            .inner
            .limits_changed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if ids.len() < MAX_WANTED {
            ids.insert(id.to_owned());
        }
    }

    /// For the collector: the containers flagged since the last call (emptied).
    pub fn take_limits_changed(&self) -> Vec<String> {
        let mut ids = self
            .inner
            .limits_changed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if ids.is_empty() {
            return Vec::new();
        }
        ids.drain().collect()
    }

    fn read_pods(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<PodMeta>>> {
        self.inner.pods.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Ids of the containers held.
    pub fn ids(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.read().contains_key(id)
    }

    // A panic while holding the lock cannot leave the map half-updated (each write is a single
    // insert or remove), so a poisoned lock is still usable: never let it take the exporter down.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<ContainerMeta>>> {
        self.inner.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<ContainerMeta>>> {
        self.inner.map.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A delay between `d / 2` and `d`, so that many exporters on a cluster do not reconnect to
/// their daemons (or a shared remote one) in lockstep. std's RandomState is random enough for
/// this and saves a dependency.
pub(crate) fn jitter(d: Duration) -> Duration {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let frac = (h.finish() % 1024) as u32;
    d / 2 + (d / 2) * frac / 1024
}

// ---------------------------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------------------------

/// Shell-style match of a whole string: `*` matches any run of characters (also none), `?`
/// exactly one; everything else matches itself. Linear backtracking over the last `*`, so no
/// pattern can blow up.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // After the last `*`: where in the pattern to resume and how much of the text it has eaten.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi + 1, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((resume, eaten)) = star {
            // Let the `*` swallow one more character and retry from just after it.
            pi = resume;
            ti = eaten + 1;
            star = Some((resume, eaten + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// An image reference split into its parts, borrowed from the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Everything before the tag and digest, registry and port included.
    pub name: &'a str,
    pub tag: Option<&'a str>,
    /// `sha256:…` after an `@`.
    pub digest: Option<&'a str>,
}

/// Splits a reference as written in `Config.Image` (`[registry[:port]/]path[:tag][@digest]`).
/// The tag is what follows the last `:` only when that colon comes after the last `/`;
/// otherwise the colon is a registry port (`registry:5000/app`). Returns `None` for an empty
/// reference and for an image id (`sha256:<hex>` or 64 hex digits), which names no image.
pub fn split_image_ref(reference: &str) -> Option<ImageRef<'_>> {
    let r = reference.trim();
    if r.is_empty() || is_image_id(r) {
        return None;
    }
    let (named, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d).filter(|d| !d.is_empty())),
        None => (r, None),
    };
    let last_slash = named.rfind('/');
    let (name, tag) = match named.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            (&named[..colon], Some(&named[colon + 1..]))
        }
        _ => (named, None),
    };
    if name.is_empty() {
        return None;
    }
    Some(ImageRef {
        name,
        tag: tag.filter(|t| !t.is_empty()),
        digest,
    })
}

/// `container.image.name` and `container.image.tags` from `Config.Image`. No tag gives
/// `["latest"]` (even with a digest), the OpenTelemetry Collector's convention, so dashboards
/// moved over from its docker receiver keep working.
pub fn image_name_and_tags(reference: &str) -> (Option<String>, Vec<String>) {
    match split_image_ref(reference) {
        Some(r) => (
            Some(r.name.to_owned()),
            vec![r.tag.unwrap_or("latest").to_owned()],
        ),
        None => (None, Vec::new()),
    }
}

fn is_image_id(r: &str) -> bool {
    let hex = r.strip_prefix("sha256:").unwrap_or(r);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses an RFC 3339 time as Docker writes it (`2024-05-01T10:20:30.123456789Z`, or with a
/// `+02:00` offset). Times before 1970, such as Docker's zero time `0001-01-01T00:00:00Z` for
/// "never started", give `None`.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().all(u8::is_ascii_digit).then(|| {
            part.iter()
                .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, min, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            // Digits beyond nanoseconds are dropped.
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b":") => {
            let off = num(i + 1, 2)? * 3600 + num(i + 4, 2)? * 60;
            if sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("team", "team"));
        assert!(!glob_match("team", "teams"));
        assert!(!glob_match("team", "tea"));
        assert!(glob_match("io.*", "io.kubernetes.pod.name"));
        assert!(glob_match("io.*", "io."));
        assert!(!glob_match("io.*", "io"));
        assert!(glob_match("*", ""));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*.version", "org.opencontainers.image.version"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(glob_match("a*b*c", "abcbc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("**a", "bbba"));
        assert!(glob_match("*?", "x"));
        assert!(!glob_match("*?", ""));
        // `?` is one character, not one byte.
        assert!(glob_match("caf?", "café"));
        // A `*` in the text is just a character.
        assert!(glob_match("a*", "a*"));
        assert!(!glob_match("a\\*", "ab"));
        // Backtracking stays linear-ish on a hostile pattern.
        let long = "a".repeat(5000);
        assert!(!glob_match("*a*a*a*a*a*b", &long));
    }

    fn split(r: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
        split_image_ref(r).map(|i| (i.name, i.tag, i.digest))
    }

    #[test]
    fn image_refs() {
        assert_eq!(split("busybox"), Some(("busybox", None, None)));
        assert_eq!(split("busybox:1.36"), Some(("busybox", Some("1.36"), None)));
        assert_eq!(
            split("library/busybox:1"),
            Some(("library/busybox", Some("1"), None))
        );
        assert_eq!(
            split("docker.io/library/busybox:latest"),
            Some(("docker.io/library/busybox", Some("latest"), None))
        );
        assert_eq!(
            split("registry:5000/ns/app:1.2"),
            Some(("registry:5000/ns/app", Some("1.2"), None))
        );
        assert_eq!(
            split("registry:5000/ns/app"),
            Some(("registry:5000/ns/app", None, None))
        );
        assert_eq!(
            split("localhost:5000/app"),
            Some(("localhost:5000/app", None, None))
        );
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            split(&format!("ghcr.io/o/app@{d}")),
            Some(("ghcr.io/o/app", None, Some(d)))
        );
        assert_eq!(
            split(&format!("registry:5000/app:v2@{d}")),
            Some(("registry:5000/app", Some("v2"), Some(d)))
        );
        // Image ids name no image.
        assert_eq!(split(d), None);
        assert_eq!(split(&d[7..]), None);
        assert_eq!(split(""), None);
        assert_eq!(split(":tag"), None);
        // A trailing colon is no tag.
        assert_eq!(split("app:"), Some(("app", None, None)));

        assert_eq!(
            image_name_and_tags("registry:5000/ns/app:1.2"),
            (Some("registry:5000/ns/app".into()), vec!["1.2".into()])
        );
        assert_eq!(
            image_name_and_tags("busybox"),
            (Some("busybox".into()), vec!["latest".into()])
        );
        assert_eq!(
            image_name_and_tags(&format!("app@{d}")),
            (Some("app".into()), vec!["latest".into()])
        );
        assert_eq!(image_name_and_tags(d), (None, vec![]));
    }

    #[test]
    fn rfc3339() {
        let t = |s| parse_rfc3339(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap());
        assert_eq!(t("1970-01-01T00:00:00Z"), Some(Duration::ZERO));
        assert_eq!(
            t("2024-02-29T12:34:56.123456789Z"),
            Some(Duration::new(1_709_210_096, 123_456_789))
        );
        assert_eq!(
            t("2024-02-29T12:34:56.5Z"),
            Some(Duration::new(1_709_210_096, 500_000_000))
        );
        assert_eq!(
            t("2024-02-29T14:34:56+02:00"),
            Some(Duration::new(1_709_210_096, 0))
        );
        assert_eq!(
            t("2024-02-29T10:04:56-02:30"),
            Some(Duration::new(1_709_210_096, 0))
        );
        assert_eq!(
            t("2024-02-29T12:34:56.1234567891Z"),
            Some(Duration::new(1_709_210_096, 123_456_789))
        );
        assert_eq!(t("0001-01-01T00:00:00Z"), None); // Docker's "never started"
        assert_eq!(t("2024-02-29T12:34:56"), None);
        assert_eq!(t("2024-02-29T12:34:56.Z"), None);
        assert_eq!(t("2024-13-01T00:00:00Z"), None);
        assert_eq!(t("garbage"), None);
        assert_eq!(t(""), None);
    }

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
    fn jitter_within_bounds() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(4));
            assert!(
                d >= Duration::from_secs(2) && d <= Duration::from_secs(4),
                "{d:?}"
            );
        }
    }
}
