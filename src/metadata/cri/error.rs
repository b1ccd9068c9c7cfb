//! What goes wrong between the CRI source and its runtime, and what to do about it.

use std::io::ErrorKind;
use std::time::Duration;

use tonic::{Code, Status};

use crate::remote::error_chain;

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
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
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
