//! What one inspect of a container says: its description ([`ContainerMeta::from_inspect`]),
//! the run it is on ([`Run`]), and, for Podman, whether it is a pod's infra container (one
//! libpod inspect more: the compat inspect has no field for it); which daemon answers
//! ([`Flavor`]) and what goes wrong with it ([`DockerError`], [`LibpodError`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::errors::Error as ApiError;
use bollard::models::ContainerInspectResponse;

use crate::metadata::refs::{glob_match, image_name_and_tags, parse_rfc3339};
use crate::metadata::source::SourceStats;
use crate::metadata::store::ContainerMeta;

/// Per-request timeout (list, inspect, version). bollard applies it until the response headers
/// arrive, so it does not cut the long-lived `/events` stream; bollard's own default (2 min)
/// would let a hung daemon stall resynchronisation far longer than the backoff cap.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the Docker daemon listens when neither the configuration nor `DOCKER_HOST` says.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Where rootful Podman's service (`podman.socket`, or `podman system service`) listens.
pub const PODMAN_DEFAULT_HOST: &str = "unix:///run/podman/podman.sock";

/// Which daemon is at the other end of the Docker Engine API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    #[default]
    Docker,
    /// Podman's Docker-compatible service.
    Podman,
}

impl Flavor {
    /// For logs.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Docker => "Docker",
            Flavor::Podman => "Podman",
        }
    }

    /// The events followed. Docker: `start` (new or restarted: name, image, StartedAt),
    /// `die`/`destroy` (schedule removal; `die` says the exit status), `oom` (before the `die`
    /// of a container the OOM killer hit), `rename` (name), `update` (re-inspect; cheap and
    /// rare); nothing else changes what is kept: create has no cgroup yet, kill/stop/restart
    /// are followed by die/start. Podman 4 names them in its filter otherwise: `died` (then
    /// delivered as Action `die`; filtering `die` matches nothing) and `remove` (it never sends
    /// `destroy`); it has no `oom` event, and no `update` in Podman 4.3.
    pub(crate) fn event_filter(self) -> &'static [&'static str] {
        match self {
            Flavor::Docker => &["start", "die", "destroy", "oom", "rename", "update"],
            Flavor::Podman => &["start", "died", "remove", "rename"],
        }
    }
}

/// Why a connection to the Docker Engine API (Docker's or Podman's) failed or ended.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// A call failed: `connect`, `version`, `list containers`, `events`.
    #[error("{0}: {1}")]
    Call(&'static str, #[source] ApiError),
    #[error("events: stream closed by the daemon")]
    EventsClosed,
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
}

/// Why Podman's libpod inspect (whether a container is a pod's infra container) failed.
#[derive(Debug, thiserror::Error)]
pub enum LibpodError {
    #[error("unexpected container id {0:?}")]
    BadId(String),
    #[error("{0}: only unix:// and tcp:// hosts are asked")]
    Scheme(String),
    #[error("GET {path}: {status}")]
    Status {
        path: String,
        status: hyper::StatusCode,
    },
    /// The socket could not be connected to, the request not made or its answer not read.
    #[error("GET {path}: {source}")]
    Request {
        path: String,
        #[source]
        source: BoxError,
    },
    #[error("timed out")]
    TimedOut,
}

impl ContainerMeta {
    /// Builds the metadata from an inspect response. Returns the full container id and whether
    /// the container is running (paused counts as running: its cgroup still exists).
    pub fn from_inspect(
        resp: &ContainerInspectResponse,
        label_globs: &[String],
    ) -> Option<(String, ContainerMeta, bool)> {
        let id = resp.id.clone()?;
        let config = resp.config.as_ref();
        let (image_name, image_tags) = config
            .and_then(|c| c.image.as_deref())
            .map(image_name_and_tags)
            .unwrap_or_default();
        let all_labels = config.and_then(|c| c.labels.as_ref());
        let label = |key: &str| all_labels.and_then(|l| l.get(key)).cloned();
        let mut labels: Vec<(String, String)> = all_labels
            .into_iter()
            .flatten()
            .filter(|(k, _)| label_globs.iter().any(|g| glob_match(g, k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.sort();
        let state = resp.state.as_ref();
        let meta = ContainerMeta {
            name: resp
                .name
                .as_deref()
                .map(|n| n.strip_prefix('/').unwrap_or(n).to_owned())
                .filter(|n| !n.is_empty()),
            image_name,
            image_tags,
            image_id: resp.image.clone().filter(|i| !i.is_empty()),
            labels,
            k8s_pod_name: label("io.kubernetes.pod.name"),
            k8s_namespace_name: label("io.kubernetes.pod.namespace"),
            k8s_container_name: label("io.kubernetes.container.name"),
            k8s_pod_uid: label("io.kubernetes.pod.uid"),
            k8s_container_restart_count: None,
            runtime_name: None,
            // dockershim (and cri-dockerd) mark a pod's sandbox so.
            sandbox: label("io.kubernetes.docker.type").as_deref() == Some("podsandbox"),
            started_at: state
                .and_then(|s| s.started_at.as_deref())
                .and_then(parse_rfc3339),
            log_path: resp
                .log_path
                .as_deref()
                .filter(|p| p.starts_with('/'))
                .map(std::path::PathBuf::from),
        };
        let running = state.and_then(|s| s.running).unwrap_or(false);
        Some((id, meta, running))
    }
}

/// One run of a container, as an inspect saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// Its `RestartCount`.
    pub(crate) restart_count: u32,
    pub(crate) started_at: Option<SystemTime>,
}

impl Run {
    /// The run an inspect shows: the one running, or the last one. A container waiting to
    /// restart already counts the restart to come (Docker increments `RestartCount` when it
    /// decides to restart, before the `die` event).
    pub(crate) fn of(resp: &ContainerInspectResponse) -> Option<Run> {
        let count = u32::try_from(resp.restart_count?).ok()?;
        let state = resp.state.as_ref();
        let restarting = state.and_then(|s| s.restarting).unwrap_or(false);
        Some(Run {
            restart_count: count.saturating_sub(u32::from(restarting)),
            started_at: state
                .and_then(|s| s.started_at.as_deref())
                .and_then(parse_rfc3339),
        })
    }

    /// The restart count of the run that ended at `died`: this one, or the one before it when
    /// this one started after that (the inspect came after the restart).
    pub(crate) fn ended_at(self, died: Option<SystemTime>) -> u32 {
        match (self.started_at, died) {
            (Some(started), Some(died)) if started > died => self.restart_count.saturating_sub(1),
            _ => self.restart_count,
        }
    }
}

/// An inspect, and for Podman whether the container is a pod's infra container (`None`:
/// not asked, a Docker daemon).
pub(crate) struct Inspected {
    pub(crate) resp: ContainerInspectResponse,
    pub(crate) infra: Result<Option<bool>, LibpodError>,
}

pub(crate) async fn inspect(
    docker: &Docker,
    flavor: Flavor,
    host: &str,
    id: &str,
    stats: &SourceStats,
) -> Result<Inspected, ApiError> {
    SourceStats::count(&stats.calls);
    let resp = docker.inspect_container(id, None).await?;
    let infra = match flavor {
        Flavor::Docker => Ok(None),
        Flavor::Podman => {
            SourceStats::count(&stats.calls);
            let full_id = resp.id.as_deref().unwrap_or(id);
            tokio::time::timeout(REQUEST_TIMEOUT, podman_is_infra(host, full_id))
                .await
                .unwrap_or(Err(LibpodError::TimedOut))
                .map(Some)
        }
    };
    Ok(Inspected { resp, infra })
}

/// Whether Podman calls the container a pod's infra container: `IsInfra` of the libpod
/// inspect (`GET /v4.0.0/libpod/containers/<id>/json`), which the compat inspect has no
/// field for. bollard speaks only the Docker API, so this is one plain HTTP/1.1 request on
/// the same socket. A container gone meanwhile (404) is no infra container.
async fn podman_is_infra(host: &str, id: &str) -> Result<bool, LibpodError> {
    use http_body_util::{BodyExt, Empty};

    #[derive(serde::Deserialize)]
    struct LibpodInspect {
        #[serde(rename = "IsInfra", default)]
        is_infra: bool,
    }

    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(LibpodError::BadId(id.to_owned()));
    }
    let path = format!("/v4.0.0/libpod/containers/{id}/json");
    let failed = |source: BoxError| LibpodError::Request {
        path: path.clone(),
        source,
    };
    let req = hyper::Request::get(&path)
        .header(hyper::header::HOST, "podman")
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| failed(e.into()))?;
    let resp = if let Some(socket) = host.strip_prefix("unix://") {
        send(tokio::net::UnixStream::connect(socket).await, req).await
    } else if let Some(addr) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
    {
        let addr = addr.trim_end_matches('/');
        send(tokio::net::TcpStream::connect(addr).await, req).await
    } else {
        return Err(LibpodError::Scheme(host.to_owned()));
    }
    .map_err(failed)?;
    let status = resp.status();
    if status == hyper::StatusCode::NOT_FOUND {
        return Ok(false);
    }
    if !status.is_success() {
        return Err(LibpodError::Status { path, status });
    }
    let body = resp.into_body().collect().await;
    let body = body.map_err(|e| failed(e.into()))?.to_bytes();
    serde_json::from_slice::<LibpodInspect>(&body)
        .map(|i| i.is_infra)
        .map_err(|e| failed(e.into()))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One request on a fresh HTTP/1.1 connection.
async fn send<IO>(
    io: std::io::Result<IO>,
    req: hyper::Request<http_body_util::Empty<bytes::Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, BoxError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io?)).await?;
    // The connection task ends when the response is read and `sender` is dropped.
    tokio::spawn(conn);
    Ok(sender.send_request(req).await?)
}

/// When an event happened, by the daemon's clock.
pub(crate) fn event_time(secs: Option<i64>, nanos: Option<i64>) -> Option<SystemTime> {
    let since_epoch = match (nanos, secs) {
        (Some(n), _) if n > 0 => Duration::from_nanos(n as u64),
        (_, Some(s)) if s > 0 => Duration::from_secs(s as u64),
        _ => return None,
    };
    UNIX_EPOCH.checked_add(since_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerConfig, ContainerState};
    use std::collections::HashMap;

    /// Which run a `die` ended, from the last inspect: Docker counts a restart when it decides
    /// on it, before the `die`, and the inspect at a `start` may already see the next run.
    #[test]
    fn the_run_a_die_ended() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s);
        let resp =
            |count: i64, running: bool, restarting: bool, started: &str| ContainerInspectResponse {
                restart_count: Some(count),
                state: Some(ContainerState {
                    running: Some(running),
                    restarting: Some(restarting),
                    started_at: Some(started.into()),
                    ..Default::default()
                }),
                ..Default::default()
            };
        // Running its third run (restarted twice), started at 10; it dies at 20.
        let run = Run::of(&resp(2, true, false, "2023-11-14T22:13:30Z")).unwrap();
        assert_eq!(run.started_at, Some(at(10)));
        assert_eq!(run.ended_at(Some(at(20))), 2);
        // Seen while waiting to restart: the restart to come is counted already.
        let run = Run::of(&resp(3, true, true, "2023-11-14T22:13:30Z")).unwrap();
        assert_eq!(run.ended_at(Some(at(20))), 2);
        // Seen after the restart (started at 30): the die at 20 was the run before.
        let run = Run::of(&resp(3, true, false, "2023-11-14T22:13:50Z")).unwrap();
        assert_eq!(run.ended_at(Some(at(20))), 2);
        // No restart count (an old daemon): none.
        assert_eq!(Run::of(&ContainerInspectResponse::default()), None);
        assert_eq!(
            event_time(Some(1), Some(1_500_000_000)),
            Some(UNIX_EPOCH + Duration::from_millis(1500))
        );
        assert_eq!(
            event_time(Some(2), None),
            Some(UNIX_EPOCH + Duration::from_secs(2))
        );
        assert_eq!(event_time(None, Some(-5)), None);
    }

    #[test]
    fn meta_from_inspect() {
        let labels = HashMap::from([
            ("team".to_owned(), "a".to_owned()),
            ("secret".to_owned(), "x".to_owned()),
            ("io.kubernetes.pod.name".to_owned(), "web-0".to_owned()),
            ("io.kubernetes.pod.namespace".to_owned(), "prod".to_owned()),
            ("io.kubernetes.container.name".to_owned(), "app".to_owned()),
            ("io.kubernetes.pod.uid".to_owned(), "1-2-3".to_owned()),
        ]);
        let resp = ContainerInspectResponse {
            id: Some("c0ffee".into()),
            name: Some("/web".into()),
            image: Some("sha256:abc".into()),
            config: Some(ContainerConfig {
                image: Some("registry:5000/ns/app:1.2".into()),
                labels: Some(labels),
                ..Default::default()
            }),
            state: Some(ContainerState {
                running: Some(true),
                started_at: Some("2024-02-29T12:34:56Z".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (id, m, running) = ContainerMeta::from_inspect(&resp, &["team".into()]).unwrap();
        assert_eq!((id.as_str(), running), ("c0ffee", true));
        assert_eq!(m.name.as_deref(), Some("web"));
        assert_eq!(m.image_name.as_deref(), Some("registry:5000/ns/app"));
        assert_eq!(m.image_tags, ["1.2"]);
        assert_eq!(m.image_id.as_deref(), Some("sha256:abc"));
        assert_eq!(m.labels, [("team".to_owned(), "a".to_owned())]);
        assert_eq!(m.k8s_pod_name.as_deref(), Some("web-0"));
        assert_eq!(m.k8s_namespace_name.as_deref(), Some("prod"));
        assert_eq!(m.k8s_container_name.as_deref(), Some("app"));
        assert_eq!(m.k8s_pod_uid.as_deref(), Some("1-2-3"));
        assert_eq!(
            m.started_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_709_210_096))
        );

        // Sorted by key; nothing at all without an allow-list.
        let (_, m, _) =
            ContainerMeta::from_inspect(&resp, &["io.*".into(), "team".into()]).unwrap();
        let keys: Vec<&str> = m.labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "io.kubernetes.container.name",
                "io.kubernetes.pod.name",
                "io.kubernetes.pod.namespace",
                "io.kubernetes.pod.uid",
                "team"
            ]
        );
        let (_, m, _) = ContainerMeta::from_inspect(&resp, &[]).unwrap();
        assert!(m.labels.is_empty());
        assert_eq!(m.k8s_pod_name.as_deref(), Some("web-0"));

        // An inspect with almost nothing in it still works.
        let bare = ContainerInspectResponse {
            id: Some("x".into()),
            ..Default::default()
        };
        let (_, m, running) = ContainerMeta::from_inspect(&bare, &[]).unwrap();
        assert_eq!((m, running), (ContainerMeta::default(), false));
    }
}
