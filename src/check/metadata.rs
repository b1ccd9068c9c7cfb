//! The runtimes' APIs: which of Docker, Podman and the CRI answer, what they are, and how
//! many of the containers found they name.

use std::time::Duration;

use super::report::{Level, Report};
use crate::config::HostArgs;
use crate::discovery::{Found, Kind};
use crate::metadata::MetadataArgs;
use crate::metadata::{CheckLevel, Metadata, check_sources, spawn_sources};

/// The runtimes' APIs: which answer, what they are, and how many of the containers found they
/// name (the same sources the daemon would start, given a moment to list).
pub fn check(r: &mut Report, args: &MetadataArgs, host: &HostArgs, found: &[Found]) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    else {
        r.on("metadata")
            .warn("cannot start a runtime to ask the container runtimes");
        return;
    };

    // Each source's probe, as its registry row words it.
    for (topic, (level, text)) in check_sources(args, host, found, &rt) {
        let level = match level {
            CheckLevel::Ok => Level::Ok,
            CheckLevel::Note => Level::Note,
            CheckLevel::Warn => Level::Warn,
        };
        r.add(level, topic, text);
    }

    // How many of the containers found have names: what the daemon would show.
    let containers: Vec<&Found> = found.iter().filter(|f| f.kind == Kind::Container).collect();
    if containers.is_empty() {
        return;
    }
    let stop = crate::remote::Stop::default();
    let store = spawn_sources(args, host, Duration::from_secs(60), rt.handle(), &|| {
        stop.stopped()
    });
    // (named, sandboxes)
    let count = |s: &Metadata| {
        let known = containers
            .iter()
            .filter_map(|f| s.container(f.runtime, &f.id));
        known.fold((0, 0), |(n, sb), m| match (m.sandbox, m.name.is_some()) {
            (true, _) => (n, sb + 1),
            (false, named) => (n + usize::from(named), sb),
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let (n, sb) = loop {
        let (n, sb) = count(&store);
        if n + sb >= containers.len() || std::time::Instant::now() >= deadline {
            break (n, sb);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    stop.stop();
    rt.shutdown_timeout(Duration::from_secs(1));
    let shown = containers.len() - sb;
    let mut text = format!("{n} of {shown} containers have names");
    if sb > 0 {
        text += &format!(" ({sb} Kubernetes pod sandboxes are not reported as containers)");
    }
    let level = if n == shown { Level::Ok } else { Level::Note };
    r.add(level, "names", text);
}
