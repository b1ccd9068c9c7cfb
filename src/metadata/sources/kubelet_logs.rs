//! Kubernetes names from the kubelet's log layout, for nodes where no CRI socket answers
//! (`docs/disk.md`): the link `<container logs>/<pod>_<namespace>_<container>-<id>.log` gives
//! the container id, pod, namespace and container names (DNS labels and subdomains, which have
//! no `_`), its target `<pod logs>/<namespace>_<pod>_<uid>/<container>/<restart>.log` the pod
//! uid and the restart count. [`run`] lists the directory at start, every [`SCAN_EVERY`], and
//! when discovery asks for an id it does not know, into a store looked up after the CRI's.

use std::collections::HashSet;
use std::future::Future;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::metadata::source::{self, Follow, Held, SourceStats, Words};
use crate::metadata::store::{ContainerMeta, MetadataStore, PodMeta};

/// How often the directory is listed without being asked.
pub const SCAN_EVERY: Duration = Duration::from_secs(10);
/// Links read per scan, at most (a node holds a few hundred containers; the rest wait for the
/// next scan).
const MAX_ENTRIES: usize = 20_000;

#[derive(Debug, Clone)]
pub struct KubeletLogsConfig {
    /// `--container-logs-dir` and `--pod-logs-dir`, host paths.
    pub container_logs_dir: PathBuf,
    pub pod_logs_dir: PathBuf,
    /// `--host-root`: the host paths are read below it.
    pub host_root: PathBuf,
    /// How long a container no longer listed keeps its entry.
    pub removal_delay: Duration,
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Parses `<pod>_<namespace>_<container>-<id>.log`.
pub fn parse_link_name(name: &str) -> Option<(String, String, String, String)> {
    let stem = name.strip_suffix(".log")?;
    let (rest, id) = stem.rsplit_once('-')?;
    if !is_id(id) {
        return None;
    }
    let mut parts = rest.split('_');
    let (pod, ns, container) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || ![pod, ns, container].iter().all(|s| is_name(s)) {
        return None;
    }
    let id = id.to_ascii_lowercase();
    Some((pod.into(), ns.into(), container.into(), id))
}

/// The uid and restart count from a link's target, when it is in the kubelet's layout and
/// names the same pod and container.
pub fn parse_target(
    target: &Path,
    pod: &str,
    namespace: &str,
    container: &str,
) -> (Option<String>, Option<u32>) {
    let mut comps = target
        .components()
        .rev()
        .map(|c| c.as_os_str().to_string_lossy());
    let (Some(file), Some(cdir), Some(pdir)) = (comps.next(), comps.next(), comps.next()) else {
        return (None, None);
    };
    if cdir != container {
        return (None, None);
    }
    let prefix = format!("{namespace}_{pod}_");
    let uid = pdir
        .strip_prefix(&prefix)
        .filter(|u| !u.is_empty() && u.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .map(str::to_owned);
    let restart = file.strip_suffix(".log").and_then(|n| n.parse().ok());
    (uid, restart)
}

/// Why the links directory could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum KubeletLogsError {
    #[error("{}: {source}", dir.display())]
    List {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("listing {}: {source}", dir.display())]
    Task {
        dir: PathBuf,
        #[source]
        source: tokio::task::JoinError,
    },
}

/// Lists the links directory (below the host root): each link's container id and what its
/// name and target say, with the uids the targets do not say taken from the pod log directory.
/// Entries that do not parse are skipped.
fn read_links(cfg: &KubeletLogsConfig) -> Result<Vec<(String, ContainerMeta)>, KubeletLogsError> {
    let dir = below(&cfg.host_root, &cfg.container_logs_dir);
    let entries = std::fs::read_dir(&dir).map_err(|source| KubeletLogsError::List {
        dir: dir.clone(),
        source,
    })?;
    let mut pod_dirs = None;
    let mut out = Vec::new();
    for e in entries.flatten().take(MAX_ENTRIES) {
        let name = e.file_name();
        let name = std::str::from_utf8(name.as_bytes()).ok();
        let Some((pod, namespace, container, id)) = name.and_then(parse_link_name) else {
            continue;
        };
        let (uid, restart) = match std::fs::read_link(e.path()) {
            Ok(t) => parse_target(&t, &pod, &namespace, &container),
            Err(_) => (None, None),
        };
        let uid = uid.or_else(|| {
            let dirs = pod_dirs.get_or_insert_with(|| pod_dir_names(cfg));
            uid_from_pod_dirs(dirs, &pod, &namespace)
        });
        let meta = ContainerMeta {
            name: Some(container.clone()),
            k8s_pod_name: Some(pod),
            k8s_namespace_name: Some(namespace),
            k8s_container_name: Some(container),
            k8s_pod_uid: uid,
            k8s_container_restart_count: restart,
            ..Default::default()
        };
        out.push((id, meta));
    }
    Ok(out)
}

fn pod_dir_names(cfg: &KubeletLogsConfig) -> Vec<String> {
    let Ok(dirs) = std::fs::read_dir(below(&cfg.host_root, &cfg.pod_logs_dir)) else {
        return Vec::new();
    };
    let names = dirs.flatten().take(MAX_ENTRIES);
    names
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect()
}

/// `path` (a host path) below `root`.
pub(crate) fn below(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// A pod's uid from the pod log directory, for a link whose target did not say: the one
/// entry named `<namespace>_<pod>_<uid>`.
fn uid_from_pod_dirs(pod_dirs: &[String], pod: &str, namespace: &str) -> Option<String> {
    let prefix = format!("{namespace}_{pod}_");
    let mut found = pod_dirs.iter().filter_map(|d| d.strip_prefix(&prefix));
    let uid = found.next()?;
    // Two pods of the same name (one being deleted, one new): no guess.
    found.next().is_none().then(|| uid.to_owned())
}

/// Keeps `store` in line with the kubelet's log links until `shutdown` resolves.
pub async fn run(
    cfg: KubeletLogsConfig,
    store: MetadataStore,
    stats: Arc<SourceStats>,
    shutdown: impl Future<Output = ()>,
) {
    let follower = Follower {
        held: Held::new(store, cfg.removal_delay),
        words: Words {
            what: "the kubelet's log directory",
            endpoint: cfg.container_logs_dir.display().to_string(),
            lost: "cannot list the kubelet's log directory any more; Kubernetes containers keep \
                   the names it gave, retrying"
                .to_owned(),
            absent: "cannot list the kubelet's log directory (--container-logs-dir, below \
                     --host-root); Kubernetes containers are reported without names it would \
                     give, retrying"
                .to_owned(),
            following: "reading Kubernetes names from the kubelet's log directory".to_owned(),
        },
        cfg,
        stats: stats.clone(),
        next_scan: Instant::now(),
    };
    source::run(follower, stats, shutdown).await
}

struct Follower {
    cfg: KubeletLogsConfig,
    held: Held<()>,
    stats: Arc<SourceStats>,
    words: Words,
    /// When to list the directory again unasked.
    next_scan: Instant,
}

enum Wake {
    Timer,
    Wanted,
}

impl Follow for Follower {
    type State = ();
    type Session = ();
    type Wake = Wake;
    type Error = KubeletLogsError;

    fn held(&mut self) -> &mut Held<()> {
        &mut self.held
    }

    async fn connect(&mut self) -> Result<(), KubeletLogsError> {
        self.scan().await
    }

    async fn next(&mut self, _: &mut ()) -> Wake {
        tokio::select! {
            _ = tokio::time::sleep_until(self.next_scan) => Wake::Timer,
            _ = self.held.store().wanted() => Wake::Wanted,
        }
    }

    async fn handle(&mut self, _: &mut (), wake: Option<Wake>) -> Result<(), KubeletLogsError> {
        match wake {
            None => Ok(()),
            Some(Wake::Timer) => self.scan().await,
            Some(Wake::Wanted) => {
                // Asks of the next few ms share one scan, which answers all of them.
                tokio::time::sleep(Duration::from_millis(30)).await;
                let _ = self.held.store().take_wanted();
                SourceStats::count(&self.stats.lookups);
                self.scan().await
            }
        }
    }

    fn words(&self) -> &Words {
        &self.words
    }
}

impl Follower {
    /// Lists the links (in a blocking task) and brings the store in line with them.
    async fn scan(&mut self) -> Result<(), KubeletLogsError> {
        self.next_scan = Instant::now() + SCAN_EVERY;
        let c = self.cfg.clone();
        let links = tokio::task::spawn_blocking(move || read_links(&c))
            .await
            .map_err(|source| KubeletLogsError::Task {
                dir: self.cfg.container_logs_dir.clone(),
                source,
            })??;
        let (mut seen, mut pods_seen) = (HashSet::new(), HashSet::new());
        for (id, meta) in links {
            if let Some(uid) = &meta.k8s_pod_uid {
                let pod = PodMeta {
                    uid: uid.clone(),
                    name: meta.k8s_pod_name.clone(),
                    namespace: meta.k8s_namespace_name.clone(),
                    labels: Vec::new(),
                };
                self.held.put_pod(pod, true);
                pods_seen.insert(uid.clone());
            }
            self.held.put(&id, meta, ());
            self.held.set_alive(&id, true);
            seen.insert(id);
        }
        self.held.remove_later_if(|id, _| !seen.contains(id));
        self.held
            .remove_pods_later_if(|uid| !pods_seen.contains(uid));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn link_names() {
        let n = format!("web-0_shop_app-{ID}.log");
        assert_eq!(
            parse_link_name(&n),
            Some(("web-0".into(), "shop".into(), "app".into(), ID.into()))
        );
        // Names with dots (a pod is a DNS subdomain), and a container named like an id part.
        let n = format!("api.v2-7d9f_kube-system_side-car-{ID}.log");
        assert_eq!(
            parse_link_name(&n).map(|p| (p.0, p.2)),
            Some(("api.v2-7d9f".into(), "side-car".into()))
        );
        for bad in [
            format!("web_shop_app-{ID}"),
            format!("web_shop-{ID}.log"),
            format!("web_shop_app_x-{ID}.log"),
            "web_shop_app-123.log".to_string(),
            format!("Web_shop_app-{ID}.log"),
            format!("_shop_app-{ID}.log"),
        ] {
            assert_eq!(parse_link_name(&bad), None, "{bad}");
        }
    }

    #[test]
    fn targets() {
        let t = Path::new("/var/log/pods/shop_web-0_1a2b-3c/app/2.log");
        assert_eq!(
            parse_target(t, "web-0", "shop", "app"),
            (Some("1a2b-3c".into()), Some(2))
        );
        assert_eq!(parse_target(t, "web-1", "shop", "app").0, None);
        assert_eq!(parse_target(t, "web-0", "shop", "other"), (None, None));
        assert_eq!(
            parse_target(Path::new("x.log"), "a", "b", "c"),
            (None, None)
        );
        let dirs = vec!["shop_web-0_u1".to_string(), "shop_web-00_u2".into()];
        assert_eq!(
            uid_from_pod_dirs(&dirs, "web-0", "shop").as_deref(),
            Some("u1")
        );
        let twice = vec!["shop_web-0_u1".to_string(), "shop_web-0_u3".into()];
        assert_eq!(uid_from_pod_dirs(&twice, "web-0", "shop"), None);
    }
}
