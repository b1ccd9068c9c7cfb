//! Wiring: configuration in, logging set up, the chosen command run, errors printed for
//! people.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use container_exporter::cli::{Cli, Command};
use container_exporter::config::{LogArgs, LogFormat};
use container_exporter::host::limits;
use container_exporter::{check, daemon, snapshot};

fn main() -> ExitCode {
    container_exporter::host::alloc::tune();
    let cli = Cli::parse_args();
    init_logging(&cli.log);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("container-exporter: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Libraries whose debug output is per frame or per record: kept at info under a bare
/// `--log-level debug` or `trace`.
const CHATTY: &str = "h2=info,hyper=info,hyper_util=info,tonic=info,tower=info,rustls=info";

/// `--log-level` as a filter: a bare debug or trace level leaves out [`CHATTY`] libraries.
fn level_filter(level: &str) -> String {
    let bare = level.trim();
    if bare.eq_ignore_ascii_case("debug") || bare.eq_ignore_ascii_case("trace") {
        format!("{bare},{CHATTY}")
    } else {
        bare.to_string()
    }
}

fn init_logging(log: &LogArgs) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level_filter(&log.log_level)))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match log.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    limits::raise_fd_limit();
    match cli.command {
        None => daemon::run(&cli.host, &cli.daemon),
        Some(Command::Check(args)) => {
            let report = check::run(&cli.host, &args);
            print!("{}", report.render());
            if report.failed() {
                return Err("check found problems (FAIL lines above)".into());
            }
            Ok(())
        }
        Some(Command::Snapshot(args)) => {
            snapshot::run(&cli.host, &args, &mut std::io::stdout().lock())
        }
    }
}
