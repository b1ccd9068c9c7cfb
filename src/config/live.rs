//! The live view's flags: whether `/` serves it, how much history it keeps, how many ended
//! containers it lists.

use std::time::Duration;

use clap::{ArgAction, Args};

/// The browser view on the Prometheus listener (`/`, `/ui/*`, `/api/v1/*`).
#[derive(Debug, Clone, Args)]
pub struct LiveArgs {
    /// Serve the live view: every container in the browser at `/`, with its JSON API under
    /// `/api/v1/`, on the Prometheus page's listener (same TLS, basic auth and bounds). It
    /// shows nothing `/metrics` does not. `--live-view=false` turns it off: `/` is then a 404.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_LIVE_VIEW",
        default_value_t = true,
        action = ArgAction::Set,
        value_name = "BOOL"
    )]
    pub live_view: bool,

    /// How much history the live view keeps in memory for each container (ten values per
    /// tick, 4 bytes each: 3.6 KB per container at 15m and a 10s interval); `0` keeps the
    /// latest values only. At most 3600 ticks' worth: unset, it is 15m, or 3600 ticks at an
    /// --interval under 250ms; set longer than 3600 ticks, the daemon refuses to start.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_LIVE_HISTORY",
        value_parser = super::values::parse_span,
        value_name = "DURATION"
    )]
    pub live_history: Option<Duration>,

    /// How many ended containers the live view lists (the newest), with their exit code,
    /// reason, CPU time and memory peak; their history is kept as long as they are listed.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_LIVE_ENDED",
        default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(0..=10_000),
        value_name = "N"
    )]
    pub live_ended: u32,
}
