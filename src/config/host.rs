//! The global flags, taken by every command: where the host's filesystems are (cgroups,
//! procfs, its root, the kubelet's directories), the host's name, and logging.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

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
