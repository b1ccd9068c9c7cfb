//! The outputs: where the Prometheus page would be served, where OTLP would go and whether
//! the receiver accepts a request (asked with a bound on the wait: a check never hangs on a
//! socket that accepts and never answers), and whether the web config file loads.

use std::time::Duration;

use super::report::{Level, Report};
use crate::cli::DaemonArgs;
use crate::config::Listen;
use crate::export::otlp::OtlpConfig;
use crate::export::otlp::send::probe;
use crate::remote::error_chain;

/// How long an answer is waited for.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

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
            let timed = async { tokio::time::timeout(ANSWER_WITHIN, probe(&c)).await };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let probed = rt.map(|rt| rt.block_on(timed));
            let refused = |why| {
                (
                    Level::Warn,
                    format!("; an empty request was not accepted: {why}"),
                )
            };
            let (level, answered) = match probed {
                Ok(Ok(Ok(took))) => (
                    Level::Ok,
                    format!(
                        "; the receiver accepted an empty request in {} ms",
                        took.as_millis()
                    ),
                ),
                Ok(Ok(Err(e))) => refused(error_chain(&e)),
                Ok(Err(_)) => refused(format!("no answer within {} s", ANSWER_WITHIN.as_secs())),
                // The error, then its chain (which starts with it again).
                Err(e) => refused(format!("cannot start a runtime: {}", error_chain(&e))),
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
