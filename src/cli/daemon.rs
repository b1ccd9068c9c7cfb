//! The daemon's flags: the interval, the Prometheus page's address and names, the rescan, and
//! how long final samples wait; the flag groups of metadata, disk, the page's security, OTLP
//! and the live view are flattened into it.

use std::time::Duration;

use clap::Args;

use crate::config::values::{parse_duration, parse_exit_wait, parse_listen};
use crate::config::{DiskArgs, Listen, LiveArgs, Naming, OtlpArgs, WebArgs};
use crate::metadata::MetadataArgs;

/// The daemon (what runs without a command).
#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// How often every container is read (e.g. `10s`, `500ms`, `1m`).
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_INTERVAL",
        default_value = "10s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub interval: Duration,

    /// Address of the Prometheus page (`/metrics`, `/healthz`, `/readyz`); `off` to turn it
    /// off.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_PROMETHEUS_LISTEN",
        default_value = "0.0.0.0:9464",
        value_parser = parse_listen,
        value_name = "ADDR"
    )]
    pub prometheus_listen: Listen,

    /// Metric names on the Prometheus page: `otel` (the OpenTelemetry names, translated) or
    /// `cadvisor` (the names and labels cAdvisor dashboards and kube-prometheus rules query,
    /// for a drop-in replacement).
    #[arg(
        long,
        value_enum,
        env = "CONTAINER_EXPORTER_PROMETHEUS_NAMES",
        default_value = "otel"
    )]
    pub prometheus_names: Naming,

    /// How often the whole cgroup tree is walked again, as a safety net behind inotify
    /// (which finds new containers within milliseconds).
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_RESCAN_INTERVAL",
        default_value = "5m",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub rescan_interval: Duration,

    /// How long the final sample of a container that exited waits on the page for a scrape
    /// before it is dropped unseen. Once a scrape has served it, it goes at the next tick.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_EXITED_RETENTION",
        default_value = "5m",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub exited_retention: Duration,

    /// How long the final sample of a container that ended waits for its runtime to say why
    /// (the exit status of Docker's `die` event, Podman's `died`, the CRI's `ContainerStatus`)
    /// before it is published without it (with the kernel's OOM verdict alone). It is
    /// published as soon as the runtime's word arrives, between ticks; `0` never waits. A word
    /// that comes after it went out, within 2 minutes, publishes the exit series then. At most
    /// 60s.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_EXIT_WAIT",
        default_value = "3s",
        value_parser = parse_exit_wait,
        value_name = "DURATION"
    )]
    pub exit_wait: Duration,

    #[command(flatten)]
    pub metadata: MetadataArgs,

    #[command(flatten)]
    pub disk: DiskArgs,

    #[command(flatten)]
    pub web: WebArgs,

    #[command(flatten)]
    pub otlp: OtlpArgs,

    #[command(flatten)]
    pub live: LiveArgs,
}
