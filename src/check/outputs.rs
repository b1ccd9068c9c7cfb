//! The outputs: where the Prometheus page would be served, where OTLP would go and whether
//! the receiver accepts a request (asked with a bound on the wait: a check never hangs on a
//! socket that accepts and never answers), and whether the web config file loads.

use std::time::Duration;

use super::report::{Level, Report};
use crate::cli::DaemonArgs;
use crate::config::Listen;
use crate::export::otlp::OtlpConfig;
use crate::remote::error_chain;

/// How long an answer is waited for.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Why a probe has no answer to show.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError<E> {
    /// The other side answered, with an error (shown with its causes by
    /// [`crate::remote::error_chain`]).
    #[error(transparent)]
    Failed(E),
    /// It did not answer within [`ANSWER_WITHIN`].
    #[error("no answer within {} s", ANSWER_WITHIN.as_secs())]
    NoAnswer,
    /// No runtime to ask with.
    #[error("cannot start a runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// `fut`'s answer, or why there was none within [`ANSWER_WITHIN`].
pub fn answer<T, E>(
    rt: &tokio::runtime::Runtime,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ProbeError<E>> {
    rt.block_on(async {
        match tokio::time::timeout(ANSWER_WITHIN, fut).await {
            Ok(answered) => answered.map_err(ProbeError::Failed),
            Err(_) => Err(ProbeError::NoAnswer),
        }
    })
}

/// Where the outputs would go, and whether their settings are valid.
pub fn check(r: &mut Report, args: &DaemonArgs) {
    r.on("prometheus").ok(match args.prometheus_listen {
        Listen::On(a) => format!("the page would be served on http://{a}/metrics"),
        Listen::Off => "the page is off (--prometheus-listen off)".to_string(),
    });
    match OtlpConfig::from_args(&args.otlp) {
        Ok(None) => r
            .on("otlp")
            .ok("off: set --otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT to push"),
        Ok(Some(c)) => {
            let headers: Vec<&str> = c.headers.iter().map(|(k, _)| k.as_str()).collect();
            let probed = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(ProbeError::Runtime)
                .and_then(|rt| answer(&rt, crate::export::otlp::send::probe(&c)));
            let (level, answered) = match probed {
                Ok(took) => (
                    Level::Ok,
                    format!(
                        "; the receiver accepted an empty request in {} ms",
                        took.as_millis()
                    ),
                ),
                Err(e) => (
                    Level::Warn,
                    format!("; an empty request was not accepted: {}", error_chain(&e)),
                ),
            };
            r.add(
                level,
                "otlp",
                format!(
                    "{} to {} ({}{}, timeout {:?}, {} temporality, queue of {}{}){answered}",
                    c.protocol.as_str(),
                    c.endpoint,
                    if c.gzip { "gzip" } else { "no compression" },
                    c.ca_path
                        .as_deref()
                        .map(|p| format!(", CA {p}"))
                        .unwrap_or_default(),
                    c.timeout,
                    c.temporality.as_str(),
                    c.queue_size,
                    if headers.is_empty() {
                        String::new()
                    } else {
                        format!(", headers {}", headers.join(", "))
                    }
                ),
            );
        }
        Err(e) => r.on("otlp").fail(error_chain(&e)),
    }
    if let Some(path) = &args.web.web_config_file {
        match crate::export::http::ServeOptions::from_args(&args.web) {
            Ok(_) => r.on("web config").ok(format!(
                "{} loads (TLS, auth and headers as it says)",
                path.display()
            )),
            Err(e) => r.on("web config").fail(error_chain(&e)),
        }
    }
}
