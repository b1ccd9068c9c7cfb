//! The command line: [`Cli`] (the daemon's flags and the commands), gathered from the flag
//! groups each layer owns (`config`'s, and the metadata layer's with the runtimes' endpoints);
//! the parsing that lets a command's flags stand before its name too; and the flag reference
//! generated from it.

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod daemon;

pub use daemon::DaemonArgs;

use crate::config::{HostArgs, LogArgs};
use crate::metadata::MetadataArgs;

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
    Check(DaemonArgs),
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
    fn table(cmd: &clap::Command, global: bool, skip: &[String]) -> String {
        let mut out = String::from(
            "| flag | environment variable | default | meaning |\n|---|---|---|---|\n",
        );
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version")
                || arg.is_hide_set()
                || skip.iter().any(|s| s == long)
                || arg.is_global_set() != global
            {
                continue;
            }
            let env = arg
                .get_env()
                .map_or("–".to_string(), |e| format!("`{}`", e.to_string_lossy()));
            let defaults = arg.get_default_values().iter();
            let default = (defaults.map(|v| format!("`{}`", v.to_string_lossy())))
                .reduce(|a, b| a + ", " + &b)
                .unwrap_or_else(|| "–".to_string());
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
    let daemon_flags: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    let snapshot = cmd
        .find_subcommand("snapshot")
        .expect("snapshot is a command");
    let shared: Vec<String> = (snapshot.get_arguments())
        .filter(|a| !a.is_hide_set() && !a.is_global_set())
        .filter_map(|a| a.get_long())
        .filter(|&l| l != "help" && daemon_flags.iter().any(|d| d == l))
        .map(|l| format!("`--{l}`"))
        .collect();
    let mut out = format!(
        "Global flags (every command, before or after it):\n\n{}\nThe daemon (no command; `check` takes these too, and `snapshot` the metadata ones: {}). A command's flags may stand before or after its name (`container-exporter --docker-host off snapshot`); a flag the command does not take, or one given both before and after it, is refused with a message that says where it goes:\n\n{}",
        table(&cmd, true, &[]),
        shared.join(", "),
        table(&cmd, false, &[])
    );
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let t = table(sub, false, &daemon_flags);
        if t.lines().count() > 2 {
            out.push_str(&format!("\n`{}`:\n\n{t}", sub.get_name()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::DurationOrOff;
    use clap::CommandFactory;
    use std::time::Duration;

    #[test]
    fn disk_interval_off_and_default() {
        let cli = Cli::try_parse_from(["x", "--disk-interval", "off"]).unwrap();
        assert_eq!(cli.daemon.disk.disk_interval, DurationOrOff(None));
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(
            cli.daemon.disk.disk_interval,
            DurationOrOff(Some(Duration::from_secs(60)))
        );
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
