//! Delivery: the sender task that owns the transport, takes requests from the [`Queue`] oldest
//! first, one at a time, and retries what a transport says may be retried, with backoff and
//! jitter (one attempt per step, never a storm); and the probe `check` sends. Every request ends
//! as exactly one of delivered or failed (refused for good, dropped from a full queue, given up
//! after five minutes, left at shutdown), so a hanging receiver shows as failures, not
//! as silence. The rules as users see them: `docs/otlp.md`.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::config::OtlpConfig;
use super::grpc::GrpcTransport;
use super::http::HttpTransport;
use super::outcome::{Outcome, TransportError};
use super::queue::Queue;
use crate::config::Protocol;
use crate::remote::Backoff;
use crate::telemetry::{Telemetry, add};

const BACKOFF_INITIAL: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A request retried this long is given up (and counted as failed), as the Collector's
/// `retry_on_failure.max_elapsed_time` does, even when the queue never fills.
const RETRY_MAX_ELAPSED: Duration = Duration::from_secs(300);
/// A server's `Retry-After` or RetryInfo is honoured up to this.
const SERVER_DELAY_MAX: Duration = Duration::from_secs(60);

/// The configured protocol's client.
pub enum Transport {
    Http(HttpTransport),
    Grpc(GrpcTransport),
}

impl Transport {
    /// Builds the client (call inside the runtime: the gRPC channel connects lazily on it).
    pub fn new(cfg: &OtlpConfig) -> Result<Transport, TransportError> {
        Ok(match cfg.protocol {
            Protocol::HttpProtobuf => Transport::Http(HttpTransport::new(cfg)?),
            Protocol::Grpc => Transport::Grpc(GrpcTransport::new(cfg)?),
        })
    }

    async fn send(&mut self, body: Bytes) -> Outcome {
        match self {
            Transport::Http(h) => h.send(body).await,
            Transport::Grpc(g) => g.send(body).await,
        }
    }
}

/// gzip at the fastest level (a tenth of the time of the default level for about the same
/// ratio on this repetitive data).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    let _ = enc.write_all(body);
    let mut out = enc.finish().unwrap_or_default();
    // The guess above is generous (these bodies compress about twentyfold) and the body may
    // wait in the queue: give the rest back.
    out.shrink_to_fit();
    out
}

/// The sender task: until the runtime shuts down.
pub async fn run(mut transport: Transport, queue: Arc<Queue>, telemetry: Arc<Telemetry>) {
    let mut backoff = Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX);
    let mut failing = false;
    let mut logged: HashSet<String> = HashSet::new();
    let mut log_once = |msg: &str| {
        if logged.len() > 100 {
            logged.clear();
        }
        logged.insert(msg.to_string())
    };
    loop {
        let Some(mut p) = queue.pop() else {
            queue.wake.notified().await;
            continue;
        };
        let mut first_try = tokio::time::Instant::now();
        loop {
            match transport.send(p.body.clone()).await {
                Outcome::Accepted { rejected, message } => {
                    add(&telemetry.otlp_exports_succeeded, 1);
                    if rejected > 0 {
                        add(&telemetry.otlp_rejected_points, rejected as u64);
                        if log_once(&message) {
                            tracing::warn!(
                                rejected,
                                of = p.points,
                                "OTLP receiver rejected data points: {message}"
                            );
                        }
                    }
                    if failing {
                        tracing::info!("OTLP export works again");
                        failing = false;
                    }
                    backoff.reset();
                    break;
                }
                Outcome::Permanent { reason } => {
                    add(&telemetry.otlp_exports_failed, 1);
                    if log_once(&reason) {
                        tracing::error!(
                            points = p.points,
                            "OTLP export refused, not retried: {reason}"
                        );
                    }
                    break;
                }
                Outcome::Retry { after, reason } => {
                    if !failing {
                        tracing::warn!("OTLP export failed, retrying with backoff: {reason}");
                        failing = true;
                    } else {
                        tracing::debug!("OTLP export failed again: {reason}");
                    }
                    // The step is taken even when the server says when: its next silence
                    // waits longer.
                    let ours = backoff.next_delay();
                    let delay = after.map_or(ours, |d| d.min(SERVER_DELAY_MAX));
                    add(&telemetry.otlp_retries, 1);
                    tokio::time::sleep(delay).await;
                    let expired = first_try.elapsed() >= RETRY_MAX_ELAPSED;
                    if queue.is_full() || expired {
                        // The oldest of all (or retried too long): its turn to be dropped. The
                        // next request goes now (after this backoff), not in a burst.
                        if expired && log_once("expired") {
                            tracing::warn!(
                                "OTLP: a request retried for {RETRY_MAX_ELAPSED:?} is given up \
                                 (counted as failed)"
                            );
                        }
                        queue.count_dropped(1);
                        match queue.pop() {
                            Some(next) => {
                                p = next;
                                first_try = tokio::time::Instant::now();
                            }
                            None => break,
                        }
                    }
                }
            }
        }
        queue.in_flight.store(false, Ordering::Release);
    }
}

/// Why the probe's empty request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The receiver (or the way to it) answered no; `retried`: whether the daemon would try
    /// again.
    #[error("{reason} (the daemon would {}retry)", if *retried { "" } else { "not " })]
    Refused { reason: String, retried: bool },
}

/// Sends one empty request (an `ExportMetricsServiceRequest` without resources, which OTLP
/// receivers answer with success): whether the endpoint, protocol, TLS, client certificate
/// and headers work, and how long the answer took. For `check`; counts nothing. Call inside
/// a runtime.
pub async fn probe(cfg: &OtlpConfig) -> Result<Duration, ProbeError> {
    let mut transport = Transport::new(cfg)?;
    let body = if cfg.gzip && cfg.protocol == Protocol::HttpProtobuf {
        Bytes::from(gzip(&[]))
    } else {
        Bytes::new()
    };
    let start = std::time::Instant::now();
    let (reason, retried) = match transport.send(body).await {
        Outcome::Accepted { .. } => return Ok(start.elapsed()),
        Outcome::Retry { reason, .. } => (reason, true),
        Outcome::Permanent { reason } => (reason, false),
    };
    Err(ProbeError::Refused { reason, retried })
}
