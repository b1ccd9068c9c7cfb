//! How a CRI container ended: what its status says once it has finished, from a stop event or
//! from one `ContainerStatus` call when the collector asks (the skeleton's asks bound those
//! calls in number and time).

use std::time::Duration;

use tonic::Code;

use super::api;
use super::client::Client;
use super::error::CriError;
use crate::exit::RuntimeExit;
use crate::metadata::source::asks::{ExitLookup, LookupFailure};

/// What a container's status says about its end (once it has one: `finished_at` set).
pub(crate) fn exit_of(st: &api::ContainerStatus) -> RuntimeExit {
    RuntimeExit {
        oom: Some(st.reason == "OOMKilled"),
        restart_count: st.metadata.as_ref().map(|m| m.attempt),
        finished_at: u64::try_from(st.finished_at)
            .ok()
            .filter(|&ns| ns > 0)
            .map(|ns| std::time::UNIX_EPOCH + Duration::from_nanos(ns)),
        ..RuntimeExit::default()
    }
    .with_code(Some(i64::from(st.exit_code)))
}

/// `ContainerStatus` on a connection, for the collector's asks.
#[derive(Clone)]
pub(crate) struct StatusLookup(pub(crate) Client);

impl ExitLookup for StatusLookup {
    type Error = CriError;

    async fn exit(
        &self,
        id: &str,
        within: Duration,
    ) -> Result<Option<RuntimeExit>, LookupFailure<CriError>> {
        match self.0.container_status(id, within).await {
            Ok(st) if st.finished_at > 0 => Ok(Some(exit_of(&st))),
            Ok(_) => Ok(None),
            Err(s) if s.code() == Code::DeadlineExceeded => Err(LookupFailure::OutOfTime),
            // (tonic says Cancelled when its own deadline passes: the asks tell by the time.)
            Err(status) => Err(LookupFailure::Failed(CriError::Call {
                call: "ContainerStatus",
                status,
            })),
        }
    }
}
