//! Command line and environment: every flag has a `CONTAINER_EXPORTER_*` variable, parsed
//! and validated once here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Per-host container metrics, read straight from the kernel's cgroup files.
///
/// container-exporter finds every container on the host (Docker, containerd, CRI-O,
/// Podman, Kubernetes pods) by walking the cgroup tree, and reads CPU, memory, block IO,
/// network, pids and pressure from cgroup v2, v1 or hybrid hierarchies.
#[derive(Debug, Parser)]
#[command(name = "container-exporter", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub host: HostArgs,

    #[command(subcommand)]
    pub command: Command,
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
    /// `self/mountinfo` (for the cgroup layout) are read. Must show the host's processes:
    /// run with the host's PID namespace or mount the host's /proc here.
    #[arg(
        long,
        env = "CONTAINER_EXPORTER_PROC_ROOT",
        default_value = "/proc",
        global = true,
        value_name = "DIR"
    )]
    pub proc_root: PathBuf,

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find the containers, read them twice about a second apart, print and exit.
    ///
    /// The JSON form is a stable contract for scripts and tests: an object with a
    /// `containers` array, each element holding `resource` (OpenTelemetry resource
    /// attributes) and `metrics` (`name`, `unit`, `attributes`, `value`), with the names and
    /// units of the metric reference in the README.
    Snapshot(SnapshotArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
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

/// The README's flag reference, generated from the command definition: one table per
/// command (global flags first), each flag with its variable, default and help.
pub fn flags_markdown() -> String {
    use clap::CommandFactory;
    fn table(cmd: &clap::Command, only_global: Option<bool>) -> String {
        let mut out = String::from(
            "| flag | environment variable | default | meaning |\n|---|---|---|---|\n",
        );
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
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
        "Global flags (every command):\n\n{}",
        table(&cmd, Some(true))
    );
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let t = table(sub, Some(false));
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
