//! Command line and environment: every flag has a `CONTAINER_EXPORTER_*` variable, parsed
//! and validated once here.
//!
//! Its length is every flag with its help text, which the README's reference is generated from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Per-host container metrics, read straight from the kernel's cgroup files.
///
/// container-exporter finds every container on the host (Docker, containerd, CRI-O,
/// Podman, Kubernetes pods) and reads CPU, memory, block IO, network, pids and pressure
/// from cgroup v2, v1 or hybrid hierarchies. Without a command it runs as a daemon and
/// serves a Prometheus page on :9464/metrics.
#[derive(Debug, Parser)]
#[command(name = "container-exporter", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub host: HostArgs,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub daemon: DaemonArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Logging: human-readable lines on stderr by default.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Least severe level logged: error, warn, info, debug or trace. At debug and trace the
    /// HTTP/2, HTTP, gRPC and TLS libraries stay at info (their frame-by-frame lines would
    /// bury the exporter's). `RUST_LOG`, when set, takes precedence (with its per-module
    /// syntax, e.g. `RUST_LOG=debug,h2=debug` to see them).
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_LOG_LEVEL",
        default_value = "info",
        global = true,
        value_name = "LEVEL"
    )]
    pub log_level: String,

    /// `human` for people, `json` (one object per line) for log pipelines.
    #[arg(
        long,
        value_enum,
        env = "CONTAINER_EXPORTER_LOG_FORMAT",
        default_value = "human",
        global = true
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

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
    /// published as soon as the runtime's word arrives, between ticks; `0` never waits (only
    /// a word that arrived first is used). At most 60s.
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
}

/// Disk usage: each container's writable layer and logs, each pod's ephemeral storage,
/// measured as `du` does in a thread of its own.
#[derive(Debug, Clone, Args)]
pub struct DiskArgs {
    /// How old a container's disk usage may get while it is working: a container whose CPU
    /// time moved since its layer was last measured is measured again this long after (as
    /// cAdvisor's one minute); one whose last walk was small (512 entries at most) after a
    /// sixth of it (at least 1 s) while the disk thread uses under a tenth of its budget.
    /// `off` turns disk usage off (nothing is walked).
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_DISK_INTERVAL",
        default_value = "1m",
        value_parser = parse_duration_or_off,
        value_name = "DURATION"
    )]
    pub disk_interval: DurationOrOff,

    /// How old a container's disk usage may get while it is idle: every container is measured
    /// at least this often, for what is written from outside it (`docker cp`, the host, a log
    /// rotation). A container that used no CPU cannot have written otherwise.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_DISK_IDLE_INTERVAL",
        default_value = "10m",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub disk_idle_interval: Duration,

    /// The share of one CPU the disk thread may use, as `5%` or `0.05`. Walks are cut into
    /// slices of a few milliseconds with pauses between them to keep within it; on a host with
    /// more files than that allows in `--disk-interval`, usage gets older instead
    /// (`container_exporter_disk_lag_seconds` says by how much).
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_DISK_CPU_BUDGET",
        default_value = "5%",
        value_parser = parse_share,
        value_name = "SHARE"
    )]
    pub disk_cpu_budget: f64,
}

/// A duration, or `off` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationOrOff(pub Option<Duration>);

fn parse_duration_or_off(s: &str) -> Result<DurationOrOff, String> {
    if is_off(s) {
        Ok(DurationOrOff(None))
    } else {
        parse_duration(s).map(|d| DurationOrOff(Some(d)))
    }
}

/// `5%` or `0.05`: a share of one CPU, more than 0 and at most 1.
fn parse_share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a share like 5% or 0.05"))?;
    if !(v > 0.0 && v <= 1.0) {
        return Err(format!("`{s}` must be more than 0 and at most 100%"));
    }
    Ok(v)
}

/// Where names, images and labels come from: the container runtimes' APIs. Metrics never
/// depend on them: a runtime that is absent or down only means containers are reported by id.
#[derive(Debug, Clone, Default, Args)]
pub struct MetadataArgs {
    /// Docker API for container names, images and labels: `unix:///path`, `tcp://host:port`,
    /// or `off`. Default: `DOCKER_HOST`, else the standard socket. Metrics never depend on
    /// it: without Docker, containers are reported by id.
    #[arg(long, env = "CONTAINER_EXPORTER_DOCKER_HOST", value_name = "URL")]
    pub docker_host: Option<String>,

    /// The container runtime interface (CRI) of a Kubernetes node, for pod, namespace and
    /// container names, images and restart counts: `unix:///path`, or `off`. Default: the
    /// first of containerd's `/run/containerd/containerd.sock` and CRI-O's
    /// `/var/run/crio/crio.sock` that exists. Metrics never depend on it: without it,
    /// Kubernetes containers are reported by id and pod uid.
    #[arg(long, env = "CONTAINER_EXPORTER_CRI_ENDPOINT", value_name = "URL")]
    pub cri_endpoint: Option<String>,

    /// Container labels to export as `container.label.<key>` (on `container_info` on the
    /// Prometheus page, and on every series of the cAdvisor page, as cAdvisor writes them):
    /// comma-separated glob patterns (`*`, `?`), e.g. `com.example.team,app.*`. Default: none.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_CONTAINER_LABELS",
        value_delimiter = ',',
        value_name = "GLOBS"
    )]
    pub container_labels: Vec<String>,

    /// The former name of `--container-labels` (Docker labels), still accepted.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_DOCKER_LABELS",
        value_delimiter = ',',
        value_name = "GLOBS",
        hide = true
    )]
    pub docker_labels: Vec<String>,

    /// Kubernetes pod labels to export as `k8s.pod.label.<key>` (on `k8s_pod_info` on the
    /// Prometheus page), from the CRI: comma-separated glob patterns, e.g.
    /// `app.kubernetes.io/*,team`. Default: none.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_POD_LABELS",
        value_delimiter = ',',
        value_name = "GLOBS"
    )]
    pub pod_labels: Vec<String>,

    /// Podman's Docker-compatible API for the names, images and labels of Podman containers
    /// (`podman system service`, or `podman.socket`): `unix:///path`, `tcp://host:port`, or
    /// `off`. Default: `unix:///run/podman/podman.sock` when that socket exists. The
    /// `--container-labels` allow-list applies to Podman's labels too.
    #[arg(long, env = "CONTAINER_EXPORTER_PODMAN_HOST", value_name = "URL")]
    pub podman_host: Option<String>,

    /// The longest value, in bytes, of what the runtimes say about a container or pod (its
    /// name, image reference, labels, Kubernetes names, pod labels), on the page, in OTLP and
    /// in `snapshot`: longer values are cut at a character boundary (a label whose key is
    /// longer is left out), counted in `container_exporter_metadata_values_cut_total` and
    /// warned about once per container. Whoever starts a container chooses its labels, and
    /// the Docker API takes labels of megabytes; a Prometheus server with
    /// `label_value_length_limit` refuses the whole page for one longer value, so keep this
    /// at or below it. The default, 2048, is Mimir's and Cortex's `max_label_value_length`.
    /// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` does not set it: the OpenTelemetry specification
    /// exempts resource attributes from that limit (and counts characters, not bytes).
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        default_value_t = ValueLength::default(),
        value_parser = parse_value_length,
        value_name = "BYTES"
    )]
    pub attribute_value_length_limit: ValueLength,

    /// The most labels a container, or a pod, shows (those `--container-labels` and
    /// `--pod-labels` allow): past it, the first ones in key order are kept and the rest left
    /// out, counted in `container_exporter_metadata_values_cut_total` and warned about once per
    /// container. With an allow-list of globs a container chooses how many labels it shows, and
    /// the cAdvisor page puts each on every series; a Prometheus server with `label_limit`
    /// refuses the whole page for one series with more labels than that, and Mimir's
    /// `max_label_names_per_series` (30) refuses the series. The default, 128, is
    /// OpenTelemetry's default attribute count limit.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_ATTRIBUTE_COUNT_LIMIT",
        default_value_t = DEFAULT_LABEL_COUNT_LIMIT,
        value_parser = clap::value_parser!(u32).range(1..=10_000),
        value_name = "N"
    )]
    pub attribute_count_limit: u32,
}

/// The default of `--attribute-value-length-limit`: Mimir's and Cortex's
/// `max_label_value_length` (a series with a longer value is refused there), far above any
/// real name, image reference or label, and it keeps a container's info line within a few
/// KiB. Prometheus has no limit unless one is configured.
pub const DEFAULT_VALUE_LENGTH_LIMIT: u32 = 2048;

/// `--attribute-value-length-limit`: bytes, 16 to 1 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueLength(pub u32);

impl Default for ValueLength {
    fn default() -> ValueLength {
        ValueLength(DEFAULT_VALUE_LENGTH_LIMIT)
    }
}

impl std::fmt::Display for ValueLength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

fn parse_value_length(s: &str) -> Result<ValueLength, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (16..=1 << 20).contains(&n) => Ok(ValueLength(n)),
        _ => Err(format!("`{s}` is not a length in bytes from 16 to 1048576")),
    }
}

/// The default of `--attribute-count-limit`: OpenTelemetry's default attribute count limit
/// (`OTEL_ATTRIBUTE_COUNT_LIMIT`), far above the labels anyone allows on purpose.
pub const DEFAULT_LABEL_COUNT_LIMIT: u32 = 128;

impl MetadataArgs {
    /// The container-label allow-list (`--container-labels` and its former name).
    pub fn label_globs(&self) -> Vec<String> {
        let mut all = self.container_labels.clone();
        all.extend(self.docker_labels.iter().cloned());
        all.retain(|g| !g.is_empty());
        all
    }
}

/// Whether a setting says `off` (the one spelling every `off`-able flag accepts: `off`, any
/// case, or empty).
pub fn is_off(s: &str) -> bool {
    s.is_empty() || s.eq_ignore_ascii_case("off")
}

/// OTLP export (off unless an endpoint is configured).
#[derive(Debug, Clone, Args)]
pub struct OtlpArgs {
    /// Where to send OTLP metrics, e.g. `http://otel-collector:4318` (http/protobuf) or
    /// `http://otel-collector:4317` (grpc); `off` to turn OTLP off whatever the variables say.
    /// For http/protobuf, a URL without a path gets `/v1/metrics`; a URL with a path is used
    /// as is. Default: `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used as is), else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (with `/v1/metrics` appended for http/protobuf), else
    /// off: without an endpoint only the Prometheus page is served. Headers, timeout,
    /// compression, TLS and temporality come from the standard `OTEL_EXPORTER_OTLP_*`
    /// variables.
    #[arg(long, env = "CONTAINER_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    /// OTLP transport: `grpc` or `http/protobuf`. Default: `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`,
    /// else `OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf` (the specification's default).
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_OTLP_PROTOCOL",
        value_enum,
        value_name = "PROTOCOL"
    )]
    pub otlp_protocol: Option<Protocol>,

    /// How many ticks' requests may wait while the receiver is slow or down. When the queue is
    /// full the oldest tick's requests are dropped and counted in
    /// `container_exporter_otlp_dropped_requests_total`; cumulative counters lose nothing by
    /// it (every tick carries the totals), gauges lose the dropped ticks.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_OTLP_QUEUE_SIZE",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=10_000),
        value_name = "TICKS"
    )]
    pub otlp_queue_size: u32,

    /// The largest request sent, in bytes of protobuf (before compression). A tick's
    /// containers go in as many requests as it takes, cut between resources: receivers refuse
    /// larger messages (the Collector's gRPC receiver takes at most 4 MiB by default, its
    /// `max_recv_msg_size_mib`; a container takes 3 to 6 KiB). Raise it together with
    /// the receiver's limit to send fewer requests.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_OTLP_MAX_REQUEST_SIZE",
        default_value_t = 4 * 1024 * 1024,
        value_parser = clap::value_parser!(u32).range(4096..),
        value_name = "BYTES"
    )]
    pub otlp_max_request_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// OTLP/gRPC (port 4317 by convention).
    Grpc,
    /// OTLP/HTTP with protobuf bodies, POST to `/v1/metrics` (port 4318 by convention).
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// The page's security and limits (names as node_exporter's, for operators who know those).
#[derive(Debug, Clone, Args)]
pub struct WebArgs {
    /// TLS, client certificates, basic auth and response headers for the page, in the
    /// exporter-toolkit format Prometheus and node_exporter read (`tls_server_config`,
    /// `basic_auth_users`, `http_server_config`, `rate_limit`). Reloaded on SIGHUP and when the
    /// file or a certificate it names changes; a file that does not load keeps the previous
    /// configuration. Default: none (plain HTTP, no auth).
    #[arg(
        long = "web.config.file",
        visible_alias = "web-config-file",
        env = "CONTAINER_EXPORTER_WEB_CONFIG_FILE",
        value_name = "FILE"
    )]
    pub web_config_file: Option<std::path::PathBuf>,

    /// `/metrics` responses in flight at once; more get 503 (a stalled one gives way first).
    /// Each holds a reference to a rendered page until it is written.
    #[arg(
        long = "web.max-requests",
        visible_alias = "web-max-requests",
        env = "CONTAINER_EXPORTER_WEB_MAX_REQUESTS",
        default_value_t = 40,
        value_parser = clap::value_parser!(u32).range(1..=10_000),
        value_name = "N"
    )]
    pub web_max_requests: u32,

    /// Open connections at once, and never more than an eighth of the descriptor limit (the
    /// collector's open cgroup files come first). At the cap, the longest-idle connection (else
    /// a stalled one) is closed to make room.
    #[arg(
        long = "web.max-connections",
        visible_alias = "web-max-connections",
        env = "CONTAINER_EXPORTER_WEB_MAX_CONNECTIONS",
        default_value_t = 64,
        value_parser = clap::value_parser!(u32).range(1..=100_000),
        value_name = "N"
    )]
    pub web_max_connections: u32,

    /// How long a response may take to be written; a client that reads slower is cut off.
    #[arg(
        long = "web.write-timeout",
        visible_alias = "web-write-timeout",
        env = "CONTAINER_EXPORTER_WEB_WRITE_TIMEOUT",
        default_value = "30s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub web_write_timeout: Duration,
}

/// Which names the Prometheus page uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Naming {
    Otel,
    Cadvisor,
}

/// Where to listen, or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    Off,
    On(SocketAddr),
}

fn parse_listen(s: &str) -> Result<Listen, String> {
    if is_off(s) {
        return Ok(Listen::Off);
    }
    // `:9464` is a common shorthand for every interface.
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse()
        .map(Listen::On)
        .map_err(|_| format!("`{s}` is not an address like 0.0.0.0:9464, [::]:9464 or off"))
}

/// `10s`, `500ms`, `1m`, `2h`, or a bare number of seconds; zero is refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 10s, 500ms or 1m"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("`{s}`: the unit must be ms, s, m or h")),
    };
    if !(secs > 0.0 && secs.is_finite() && secs < 1e9) {
        return Err(format!("`{s}` must be more than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--exit-wait`: a duration, or `0`, up to a minute.
pub fn parse_exit_wait(s: &str) -> Result<Duration, String> {
    if s.trim().trim_end_matches(['s', 'm']).trim() == "0" {
        return Ok(Duration::ZERO);
    }
    let d = parse_duration(s)?;
    if d > Duration::from_secs(60) {
        return Err(format!(
            "`{s}` is too long: a final sample waits for its runtime's word at most a minute"
        ));
    }
    Ok(d)
}

/// Where the host's filesystems are. Inside a container, mount the host's
/// `/sys/fs/cgroup` and `/proc` and point these at them.
#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    /// Where the host's cgroup hierarchies are mounted (the v2 mount itself, or the
    /// directory holding the v1 controllers and `unified/`).
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_CGROUP_ROOT",
        default_value = "/sys/fs/cgroup",
        global = true,
        value_name = "DIR"
    )]
    pub cgroup_root: PathBuf,

    /// The host's procfs: where container processes (for network counters) and
    /// `self/mountinfo` (for the cgroup layout) are read. Run the exporter in the host's PID
    /// namespace (docker run --pid=host, Kubernetes hostPID): the pids in cgroup.procs are
    /// translated into the reader's namespace, so from any other one the containers'
    /// processes cannot be found and network metrics are missing.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_PROC_ROOT",
        default_value = "/proc",
        global = true,
        value_name = "DIR"
    )]
    pub proc_root: PathBuf,

    /// Where the host's root filesystem is. Runtimes name containers' writable layers and log
    /// files by their paths on the host (`/var/lib/docker/overlay2/…/diff`); they are read below
    /// this directory. Inside a container, mount the host's `/` read-only (`-v /:/host:ro`)
    /// and set `/host`. Paths are resolved as if this were `/`: a symlink in them cannot lead
    /// out of it.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_HOST_ROOT",
        default_value = "/",
        global = true,
        value_name = "DIR"
    )]
    pub host_root: PathBuf,

    /// The kubelet's root directory on the host (below `--host-root`): pods' `emptyDir`
    /// volumes are in `<dir>/pods/<uid>/volumes/kubernetes.io~empty-dir/`.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_KUBELET_ROOT",
        default_value = "/var/lib/kubelet",
        global = true,
        value_name = "DIR"
    )]
    pub kubelet_root: PathBuf,

    /// The kubelet's pod log directory on the host (below `--host-root`):
    /// `<dir>/<namespace>_<pod>_<uid>/<container>/` holds a container's logs, which count in its
    /// pod's ephemeral storage, and whose names name pods and containers when no CRI socket
    /// answers.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_POD_LOGS_DIR",
        default_value = "/var/log/pods",
        global = true,
        value_name = "DIR"
    )]
    pub pod_logs_dir: PathBuf,

    /// Where the kubelet links each container's log on the host (below `--host-root`), as
    /// `<pod>_<namespace>_<container>-<container id>.log`: with `--pod-logs-dir`, Kubernetes
    /// names for containers when no CRI socket answers. `off` to not read it.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_CONTAINER_LOGS_DIR",
        default_value = "/var/log/containers",
        global = true,
        value_name = "DIR"
    )]
    pub container_logs_dir: PathBuf,

    /// The value of `host.name` on every container. Default: this machine's hostname
    /// (inside a container, pass the node's name, e.g. from the Kubernetes downward API).
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_HOST_NAME",
        global = true,
        value_name = "NAME"
    )]
    pub host_name: Option<String>,
}

// Parsed once at start: the size of the `check` variant (all the daemon's flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find the containers, read them twice about a second apart, print and exit.
    ///
    /// The JSON form is a stable contract for scripts and tests: an object with a
    /// `containers` array, each element holding `resource` (OpenTelemetry resource
    /// attributes) and `metrics` (`name`, `unit`, `attributes`, `value`), with the names and
    /// units of the metric reference in the README.
    ///
    /// Ends in bounded time whatever the cgroup tree holds: an open, read or listing that has
    /// not returned for 10 s (a hung filesystem), or reading that took 60 s in all, ends it
    /// with status 1 and a message naming the file.
    Snapshot(SnapshotArgs),

    /// Say what the exporter sees on this host and what is wrong, in plain words; exit
    /// non-zero when it could not work.
    ///
    /// Checks the cgroup layout and roots, whether the proc root is the host's, the Docker
    /// socket and its API version, permissions on the files the exporter reads, inotify and
    /// descriptor limits against the number of containers, and where OTLP would go. Takes
    /// every flag and variable of the daemon. A read of the cgroup tree that has not returned
    /// for 10 s (60 s for all of them) is a FAIL line naming the file.
    Check(CheckArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub metadata: MetadataArgs,

    /// `table` for people (like `docker stats`), `json` for programs.
    #[arg(
        long,
        value_enum,
        env = "CONTAINER_EXPORTER_SNAPSHOT_FORMAT",
        default_value = "table"
    )]
    pub format: SnapshotFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SnapshotFormat {
    Table,
    Json,
}

impl Cli {
    /// Parses the process's command line as [`try_parse_from`](Self::try_parse_from) does,
    /// exiting with clap's usage error (status 2) when it is refused.
    pub fn parse_args() -> Cli {
        Cli::try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses a command line where a command's flags may stand before the command's name
    /// too: `container-exporter --docker-host off snapshot` is `container-exporter snapshot
    /// --docker-host off`. People put flags first, and a flag accepted there and then
    /// ignored would be worse than none. So, for a command (`check`, `snapshot`):
    /// - a daemon flag given before it that the command takes is the command's, with the
    ///   same precedence over the environment as if it stood after it;
    /// - one it does not take (`--interval` before `snapshot`) is refused, with a message
    ///   that says which commands take it;
    /// - one given both before and after it is refused, as clap refuses a flag repeated in
    ///   one place: which of the two was meant cannot be known.
    ///
    /// Global flags (`--cgroup-root`, `--proc-root`, `--host-name`, `--log-*`) go anywhere,
    /// as before; environment variables apply to every command alike.
    pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::parser::ValueSource;
        use clap::{CommandFactory, FromArgMatches};
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let mut cmd = Cli::command();
        let matches = cmd.try_get_matches_from_mut(args.iter().cloned())?;
        let Some((name, sub_matches)) = matches.subcommand() else {
            return Cli::from_arg_matches(&matches);
        };
        let sub = cmd
            .find_subcommand(name)
            .expect("a parsed subcommand is defined");
        let mut moved: Vec<(String, Vec<std::ffi::OsString>)> = Vec::new();
        let mut refused = None;
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.is_global_set() || matches.value_source(id) != Some(ValueSource::CommandLine) {
                continue;
            }
            let flag = arg
                .get_long()
                .map_or_else(|| id.to_string(), |l| format!("--{l}"));
            if !sub.get_arguments().any(|a| a.get_id() == id) {
                let takers: Vec<String> = std::iter::once("the daemon (no command)".to_string())
                    .chain(
                        cmd.get_subcommands()
                            .filter(|s| s.get_arguments().any(|a| a.get_id() == id))
                            .map(|s| format!("`{}`", s.get_name())),
                    )
                    .collect();
                refused = Some((
                    clap::error::ErrorKind::UnknownArgument,
                    format!(
                        "`{flag}` is not a flag of `{name}`: it belongs to {}. Leave it out \
                         of `{name}`",
                        takers.join(" and ")
                    ),
                ));
                break;
            }
            if sub_matches.value_source(id) == Some(ValueSource::CommandLine) {
                refused = Some((
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "`{flag}` is given both before and after `{name}`: give it once \
                         (before or after the command, either works)"
                    ),
                ));
                break;
            }
            let values = matches
                .get_raw(id)
                .map(|v| v.map(ToOwned::to_owned).collect())
                .unwrap_or_default();
            moved.push((id.to_string(), values));
        }
        if let Some((kind, message)) = refused {
            return Err(cmd.error(kind, message));
        }
        if moved.is_empty() {
            return Cli::from_arg_matches(&matches);
        }
        // The same command line again, with the command's copy of each flag given before it
        // defaulting to the value given there (and not to its variable: a flag on the
        // command line beats the environment wherever it stands).
        let name = name.to_string();
        let mut cmd = Cli::command().mut_subcommand(&name, |mut sub| {
            for (id, values) in &moved {
                sub = sub.mut_arg(id, |a| a.env(None).default_values(values.clone()));
            }
            sub
        });
        let matches = cmd.try_get_matches_from_mut(args)?;
        Cli::from_arg_matches(&matches)
    }
}

/// The README's flag reference, generated from the command definition: one table per
/// command (global flags first), each flag with its variable, default and help.
pub fn flags_markdown() -> String {
    use clap::CommandFactory;
    fn table(cmd: &clap::Command, only_global: Option<bool>, skip: &[String]) -> String {
        let mut out = String::from(
            "| flag | environment variable | default | meaning |\n|---|---|---|---|\n",
        );
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version")
                || arg.is_hide_set()
                || skip.iter().any(|s| s == long)
            {
                continue;
            }
            if let Some(g) = only_global
                && arg.is_global_set() != g
            {
                continue;
            }
            let env = arg
                .get_env()
                .map_or("–".to_string(), |e| format!("`{}`", e.to_string_lossy()));
            let default = arg
                .get_default_values()
                .iter()
                .map(|v| format!("`{}`", v.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(", ");
            let default = if default.is_empty() {
                "–".to_string()
            } else {
                default
            };
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string().replace('\n', " "))
                .unwrap_or_default();
            let value = arg
                .get_value_names()
                .and_then(|v| v.first())
                .map(|v| format!(" {v}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "| `--{long}{value}` | {env} | {default} | {help} |\n"
            ));
        }
        out
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = format!(
        "Global flags (every command, before or after it):\n\n{}\nThe daemon (no command; `check` takes these too, and `snapshot` the metadata ones: `--docker-host`, `--podman-host`, `--cri-endpoint`, `--container-labels`, `--pod-labels`, `--attribute-value-length-limit`, `--attribute-count-limit`). A command's flags may stand before or after its name (`container-exporter --docker-host off snapshot`); a flag the command does not take, or one given both before and after it, is refused with a message that says where it goes:\n\n{}",
        table(&cmd, Some(true), &[]),
        table(&cmd, Some(false), &[])
    );
    let daemon_flags: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let t = table(sub, Some(false), &daemon_flags);
        if t.lines().count() > 2 {
            out.push_str(&format!("\n`{}`:\n\n{t}", sub.get_name()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations_and_addresses() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10x").is_err());
        assert_eq!(parse_listen("off"), Ok(Listen::Off));
        assert_eq!(
            parse_listen(":9464"),
            Ok(Listen::On("0.0.0.0:9464".parse().unwrap()))
        );
        assert!(parse_listen("localhost").is_err());
        assert_eq!(parse_share("5%"), Ok(0.05));
        assert_eq!(parse_share("0.5"), Ok(0.5));
        assert!(parse_share("0").is_err() && parse_share("150%").is_err());
        assert_eq!(parse_duration_or_off("off"), Ok(DurationOrOff(None)));
        let cli = Cli::try_parse_from(["x", "--disk-interval", "off"]).unwrap();
        assert_eq!(cli.daemon.disk.disk_interval, DurationOrOff(None));
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(
            cli.daemon.disk.disk_interval,
            DurationOrOff(Some(Duration::from_secs(60)))
        );
    }

    #[test]
    fn exit_waits() {
        assert_eq!(parse_exit_wait("0"), Ok(Duration::ZERO));
        assert_eq!(parse_exit_wait("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_exit_wait("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_exit_wait("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_exit_wait("500ms"), Ok(Duration::from_millis(500)));
        assert!(
            parse_exit_wait("2m")
                .unwrap_err()
                .contains("at most a minute")
        );
        assert!(parse_exit_wait("soon").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_has_an_environment_variable() {
        fn check(cmd: &clap::Command) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if arg.get_long().is_some() && !builtin {
                    assert!(
                        arg.get_env().is_some(),
                        "--{} has no environment variable",
                        arg.get_long().unwrap()
                    );
                }
            }
            for sub in cmd.get_subcommands() {
                check(sub);
            }
        }
        check(&Cli::command());
    }
}
