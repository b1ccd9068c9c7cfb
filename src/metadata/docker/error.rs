//! What goes wrong between a Docker source and its daemon.

use std::time::Duration;

use bollard::errors::Error as ApiError;

/// Why a connection to the Docker Engine API (Docker's or Podman's) failed or ended.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("connect: {0}")]
    Connect(#[source] ApiError),
    #[error("version: {0}")]
    Version(#[source] ApiError),
    #[error("list containers: {0}")]
    List(#[source] ApiError),
    #[error("events: {0}")]
    Events(#[source] ApiError),
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
    #[error("connect {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("GET {path}: {status}")]
    Status {
        path: String,
        status: hyper::StatusCode,
    },
    /// The request could not be made or its answer not read (HTTP, JSON).
    #[error("GET {path}: {source}")]
    Request {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("timed out")]
    TimedOut,
}
