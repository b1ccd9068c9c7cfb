//! The README's flag reference, generated from the command line's definition.

use super::cli::Cli;

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
