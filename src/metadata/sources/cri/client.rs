//! The CRI source's client: tonic over the runtime's unix socket, with the hand-written
//! messages of [`super::api`], and what goes wrong with it, saying what to do about it
//! ([`CriError`]); it answers the collector's asks for exits with one `ContainerStatus` each.
//!
//! The socket is wrapped so that the connection's end (the runtime exited or restarted) is
//! known at once, without a call: hyper's connection task reads all the time, and the wrapper
//! notifies when a read sees end of file or fails.

use std::future::Future;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio::sync::{Notify, mpsc};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

use super::api;
use super::view::exit_of;
use crate::exit::RuntimeExit;
use crate::metadata::source::SourceStats;
use crate::remote::{Io, Observed, error_chain};

/// Per call. A hung runtime costs one timeout, then the reconnect backoff.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The kubelet's own limit for CRI answers: a node with many containers lists more than
/// tonic's default of 4 MiB.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Events waiting to be applied; the stream is not read further while this is full.
const EVENT_QUEUE: usize = 1024;

/// What `Version` says, for `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriVersion {
    /// The endpoint that answered.
    pub endpoint: String,
    /// `containerd`, `cri-o`.
    pub runtime_name: String,
    pub runtime_version: String,
    /// The CRI version the runtime speaks (`v1`).
    pub runtime_api_version: String,
}

/// The socket's path in `unix:///path`, `unix:/path` or `/path`.
pub(crate) fn socket_path(endpoint: &str) -> Result<PathBuf, CriError> {
    let path = endpoint
        .strip_prefix("unix://")
        .or_else(|| endpoint.strip_prefix("unix:"))
        .or_else(|| endpoint.starts_with('/').then_some(endpoint));
    match path {
        Some(p) if p.starts_with('/') => Ok(PathBuf::from(p)),
        _ => Err(CriError::NotUnixSocket {
            endpoint: endpoint.to_owned(),
        }),
    }
}

#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) endpoint: String,
    grpc: tonic::client::Grpc<Channel>,
    /// Notified when the runtime closes the connection (or it fails).
    pub(crate) closed: Arc<Notify>,
    stats: Arc<SourceStats>,
}

impl Client {
    /// Connects now (not lazily), so that an absent or dead socket fails here.
    pub(crate) async fn connect(
        endpoint: &str,
        stats: Arc<SourceStats>,
    ) -> Result<Client, CriError> {
        let path = socket_path(endpoint)?;
        let closed = Arc::new(Notify::new());
        let connector = UnixConnector {
            path,
            closed: closed.clone(),
        };
        // The URI only fills the :authority header; the connector decides where to go.
        let channel = Endpoint::from_static("http://cri.sock")
            .connect_timeout(CONNECT_TIMEOUT)
            .connect_with_connector(connector)
            .await
            .map_err(|source| CriError::Connect {
                endpoint: endpoint.to_owned(),
                source,
            })?;
        let grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(MAX_MESSAGE);
        Ok(Client {
            endpoint: endpoint.to_owned(),
            grpc,
            closed,
            stats,
        })
    }

    /// A call that gets `timeout` to answer.
    pub(crate) async fn unary_within<Req, Resp>(
        &self,
        path: &'static str,
        req: Req,
        timeout: Duration,
    ) -> Result<Resp, Status>
    where
        Req: prost::Message + Send + 'static,
        Resp: prost::Message + Default + Send + 'static,
    {
        SourceStats::count(&self.stats.calls);
        let mut grpc = self.grpc.clone();
        let mut request = tonic::Request::new(req);
        request.set_timeout(timeout);
        let call = async move {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(error_chain(&e)))?;
            grpc.unary(
                request,
                PathAndQuery::from_static(path),
                ProstCodec::<Req, Resp>::default(),
            )
            .await
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(r) => r.map(tonic::Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no answer within {timeout:?}"
            ))),
        }
    }

    /// A call after `Version`, its failure named by the call.
    async fn call<Req, Resp>(&self, path: &'static str, req: Req) -> Result<Resp, CriError>
    where
        Req: prost::Message + Send + 'static,
        Resp: prost::Message + Default + Send + 'static,
    {
        let call = path.rsplit('/').next().unwrap_or(path);
        let r = self.unary_within(path, req, REQUEST_TIMEOUT).await;
        r.map_err(|status| CriError::Call { call, status })
    }

    pub(crate) async fn version(&self) -> Result<CriVersion, CriError> {
        let req = api::VersionRequest {
            version: "v1".into(),
        };
        let v: api::VersionResponse = self
            .unary_within(api::VERSION, req, REQUEST_TIMEOUT)
            .await
            .map_err(|status| CriError::Version {
                endpoint: self.endpoint.clone(),
                status,
            })?;
        Ok(CriVersion {
            endpoint: self.endpoint.clone(),
            runtime_name: v.runtime_name,
            runtime_version: v.runtime_version,
            runtime_api_version: v.runtime_api_version,
        })
    }

    pub(crate) async fn list_sandboxes(&self) -> Result<Vec<api::PodSandbox>, CriError> {
        let r = self.call(api::LIST_POD_SANDBOX, ());
        r.await.map(|r: api::ListPodSandboxResponse| r.items)
    }

    pub(crate) async fn list_containers(&self) -> Result<Vec<api::Container>, CriError> {
        let r = self.call(api::LIST_CONTAINERS, ());
        r.await.map(|r: api::ListContainersResponse| r.containers)
    }

    pub(crate) async fn list_images(&self) -> Result<Vec<api::Image>, CriError> {
        let r = self.call(api::LIST_IMAGES, ());
        r.await.map(|r: api::ListImagesResponse| r.images)
    }

    /// A sandbox's image (its "pause" container's), from a verbose `PodSandboxStatus`:
    /// `info["info"]`'s `image`, where the runtime writes it (containerd does). `Ok(None)`:
    /// the runtime says nothing of it.
    pub(crate) async fn sandbox_image(&self, id: &str) -> Result<Option<String>, CriError> {
        let req = api::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_owned(),
            verbose: true,
        };
        let r: api::PodSandboxStatusResponse = self.call(api::POD_SANDBOX_STATUS, req).await?;
        Ok(r.info.get("info").and_then(|info| sandbox_info_image(info)))
    }

    /// Opens `GetContainerEvents` in a task of its own and forwards what arrives. A task,
    /// because grpc-go servers send a stream's headers only with its first message: opening
    /// the stream does not return before the first event, and must not hold the loop up.
    pub(crate) fn events(&self) -> EventsTask {
        SourceStats::count(&self.stats.calls);
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let mut grpc = self.grpc.clone();
        let task = tokio::spawn(async move {
            let opened = async {
                grpc.ready()
                    .await
                    .map_err(|e| Status::unavailable(error_chain(&e)))?;
                grpc.server_streaming(
                    tonic::Request::new(()),
                    PathAndQuery::from_static(api::GET_CONTAINER_EVENTS),
                    ProstCodec::<(), api::ContainerEventResponse>::default(),
                )
                .await
            };
            let mut stream = match opened.await {
                Ok(r) => r.into_inner(),
                Err(s) => {
                    let _ = tx.send(EventMsg::Ended(Some(s))).await;
                    return;
                }
            };
            if tx.send(EventMsg::Opened).await.is_err() {
                return;
            }
            loop {
                let msg = match stream.message().await {
                    Ok(Some(ev)) => EventMsg::Event(Box::new(ev)),
                    Ok(None) => EventMsg::Ended(None),
                    Err(s) => EventMsg::Ended(Some(s)),
                };
                let end = matches!(msg, EventMsg::Ended(_));
                if tx.send(msg).await.is_err() || end {
                    return;
                }
            }
        });
        EventsTask {
            rx,
            _task: AbortOnDrop(task),
        }
    }

    /// `ContainerStatus`, for the collector's asks: the exit of the container `id`, once the
    /// runtime has one (`Ok(None)`: it still says the container runs), within `within`.
    pub(crate) async fn exit(
        &self,
        id: &str,
        within: Duration,
    ) -> Result<Option<RuntimeExit>, LookupFailure> {
        let container_id = id.to_owned();
        let req = api::ContainerStatusRequest { container_id };
        let r: Result<api::ContainerStatusResponse, _> =
            self.unary_within(api::CONTAINER_STATUS, req, within).await;
        let status = match r {
            Ok(api::ContainerStatusResponse { status: Some(st) }) if st.finished_at > 0 => {
                return Ok(Some(exit_of(&st)));
            }
            Ok(api::ContainerStatusResponse { status: Some(_) }) => return Ok(None),
            Ok(_) => Status::not_found("ContainerStatus answered without a status"),
            Err(s) if s.code() == Code::DeadlineExceeded => return Err(LookupFailure::OutOfTime),
            // (tonic says Cancelled when its own deadline passes: the asks tell by the time.)
            Err(status) => status,
        };
        let call = "ContainerStatus";
        Err(LookupFailure::Failed(CriError::Call { call, status }))
    }
}

/// The `image` of a sandbox's verbose `info` JSON, if it is a non-empty string.
pub(crate) fn sandbox_info_image(info: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(info).ok()?;
    v.get("image")?
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 4096)
        .map(str::to_owned)
}

/// Why an exit lookup gave no exit.
pub(crate) enum LookupFailure {
    /// No answer within the time it had.
    OutOfTime,
    Failed(CriError),
}

/// Aborts a task when dropped (a session's helpers end with it).
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) enum EventMsg {
    /// The runtime accepted the stream (its first event is on its way).
    Opened,
    Event(Box<api::ContainerEventResponse>),
    /// The stream ended: refused (UNIMPLEMENTED where the runtime has no events), failed, or
    /// closed by the runtime (`None`).
    Ended(Option<Status>),
}

/// The events stream's task, stopped with the session.
pub(crate) struct EventsTask {
    pub(crate) rx: mpsc::Receiver<EventMsg>,
    _task: AbortOnDrop,
}

/// Opens the runtime's unix socket for tonic, observed so that the connection's end is known
/// at once.
#[derive(Clone)]
struct UnixConnector {
    path: PathBuf,
    closed: Arc<Notify>,
}

/// Told what each read and write of the socket came to.
type OnIo = Box<dyn FnMut(Io) + Send>;

impl tonic::codegen::Service<Uri> for UnixConnector {
    type Response = TokioIo<Observed<UnixStream, OnIo>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let (path, closed) = (self.path.clone(), self.closed.clone());
        Box::pin(async move {
            let inner = UnixStream::connect(&path).await?;
            // End of file or a failure: the connection's end, said once.
            let mut fired = false;
            let on: OnIo = Box::new(move |io| {
                if matches!(io, Io::Read(0) | Io::Failed) && !std::mem::replace(&mut fired, true) {
                    closed.notify_one();
                }
            });
            Ok(TokioIo::new(Observed::new(inner, on)))
        })
    }
}

/// Why a connection to a CRI runtime failed or ended.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error(
        "{endpoint}: not a unix socket endpoint (the CRI is served on a unix socket: write \
         unix:///path/to/socket)"
    )]
    NotUnixSocket { endpoint: String },
    /// The socket could not be connected to.
    #[error("{endpoint}: {}{}", error_chain(source), hint_text(self.hint()))]
    Connect {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// `Version`, the first call of a connection, failed: the socket may serve something else.
    #[error("{endpoint}: {}{}", status_text(status), hint_text(self.hint()))]
    Version { endpoint: String, status: Status },
    /// A later call failed.
    #[error("{call}: {}", status_text(status))]
    Call { call: &'static str, status: Status },
    #[error("{endpoint}: no answer within {within:?} (is the runtime hung?)")]
    NoAnswer { endpoint: String, within: Duration },
    #[error("the runtime closed the connection")]
    Closed,
    #[error("the runtime ended the events stream")]
    EventsEnded,
    /// Every endpoint tried failed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Endpoints(Vec<CriError>),
}

impl CriError {
    /// What to do about it, where the kind of failure says: no socket, no permission, nobody
    /// listening, or a socket that does not serve the CRI.
    pub fn hint(&self) -> Option<&'static str> {
        let kind = match self {
            CriError::Connect { source, .. } => io_kind(source),
            CriError::Version { status, .. } if status.code() == Code::Unimplemented => {
                return Some(
                    "the socket answers but does not serve the CRI: is containerd's CRI plugin \
                     disabled (disabled_plugins = [\"cri\"] in its config.toml)?",
                );
            }
            CriError::Version { status, .. } => io_kind(status),
            _ => None,
        }?;
        match kind {
            ErrorKind::NotFound => Some(
                "no socket there: mount the runtime's socket into the exporter (containerd: \
                 /run/containerd/containerd.sock, CRI-O: /var/run/crio/crio.sock) or set \
                 --cri-endpoint",
            ),
            ErrorKind::PermissionDenied => Some("the socket needs root (or the socket's group)"),
            ErrorKind::ConnectionRefused => {
                Some("nothing listens on the socket: the runtime is down or restarting")
            }
            _ => None,
        }
    }
}

/// The kind of the I/O error at the bottom of `e`, if there is one.
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    let mut chain = std::iter::successors(Some(e), |e| e.source());
    chain.find_map(|e| e.downcast_ref::<std::io::Error>().map(std::io::Error::kind))
}

fn hint_text(hint: Option<&str>) -> String {
    hint.map(|h| format!(" ({h})")).unwrap_or_default()
}

/// A gRPC status for a log line: its code, message and causes.
fn status_text(s: &Status) -> String {
    let mut t = format!("{:?}: {}", s.code(), s.message());
    if let Some(src) = std::error::Error::source(s) {
        t.push_str(": ");
        t.push_str(&error_chain(src));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths() {
        for e in ["unix:///run/x.sock", "unix:/run/x.sock", "/run/x.sock"] {
            assert_eq!(socket_path(e).unwrap(), PathBuf::from("/run/x.sock"), "{e}");
        }
        for e in ["tcp://127.0.0.1:1234", "unix://relative.sock", "x.sock", ""] {
            let err = socket_path(e).unwrap_err();
            assert!(matches!(err, CriError::NotUnixSocket { .. }), "{e}: {err}");
            assert!(err.to_string().contains("unix:///"), "{e}: {err}");
        }
    }

    #[test]
    fn errors_say_what_to_do() {
        let status = |code, source: Option<std::io::Error>| {
            let mut s = Status::new(code, "call failed");
            if let Some(e) = source {
                s = Status::from_error(Box::new(e));
            }
            CriError::Version {
                endpoint: "unix:///a.sock".into(),
                status: s,
            }
        };
        let e = status(Code::Unimplemented, None);
        assert!(e.to_string().contains("CRI plugin disabled"), "{e}");
        for (kind, words) in [
            (ErrorKind::NotFound, "mount the runtime's socket"),
            (ErrorKind::ConnectionRefused, "down or restarting"),
            (ErrorKind::PermissionDenied, "root"),
        ] {
            let e = status(Code::Unknown, Some(std::io::Error::from(kind)));
            assert!(e.to_string().contains(words), "{kind:?}: {e}");
        }
        let e = status(Code::Internal, None);
        assert_eq!(e.hint(), None);
        assert_eq!(e.to_string(), "unix:///a.sock: Internal: call failed");
    }
}
