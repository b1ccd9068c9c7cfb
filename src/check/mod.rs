//! `container-exporter check`: what the exporter sees on this host and what is wrong, in
//! words a newcomer understands, each problem with its fix. Exit status non-zero when the
//! exporter could not work.
//!
//! One module per subject, each adding its findings to the [`Report`], called in order by
//! [`run`]: [`cgroups`] (the hierarchies, the containers' files, `/proc`), [`limits`]
//! (descriptors and inotify), [`disk`], [`metadata`] (the runtimes' APIs), [`outputs`] (the
//! page, OTLP, the web config). [`report`] holds the findings and their rendering. To add a
//! check: a function that adds findings to the report, in the module of its subject, and its
//! call in [`run`].

pub mod cgroups;
pub mod disk;
pub mod limits;
pub mod metadata;
pub mod outputs;
pub mod report;

use std::sync::{Arc, Mutex};

use crate::cgroup::ProcRoot;
use crate::cli::DaemonArgs;
use crate::config::HostArgs;
use crate::{discovery, progress};

pub use report::{Finding, Level, On, Report};

/// Runs every check. The ones that read the cgroup tree run within
/// [`progress::COMMAND_BOUND`]: a read that does not return (a hung filesystem) is a FAIL
/// naming the file, and the checks that need no tree still run.
pub fn run(host: &HostArgs, args: &DaemonArgs) -> Report {
    let shared = Arc::new(Mutex::new(Report::default()));
    let tree = {
        let (host, shared, args) = (host.clone(), shared.clone(), args.clone());
        // What the reading thread found so far, kept if it then gets stuck.
        let keep = move |r: &mut Report| {
            let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
            s.findings.append(&mut r.findings);
        };
        progress::within(progress::COMMAND_BOUND, move || {
            let mut r = Report::default();
            let layout = cgroups::layout(&mut r, &host);
            keep(&mut r);
            let layout = layout?;
            let found = discovery::walk(layout.discovery_root());
            let proc_root = ProcRoot::new(&host.proc_root);
            let probe = cgroups::files(&mut r, &host, &layout, &found, &proc_root);
            keep(&mut r);
            cgroups::proc(&mut r, &host, &layout, &proc_root, &probe);
            keep(&mut r);
            // Disk reads the containers' mountinfo and their layers below --host-root: bounded
            // like the tree.
            disk::check(&mut r, &host, &args, &layout, &found);
            keep(&mut r);
            Some((layout, found, probe))
        })
    };
    let mut r = std::mem::take(&mut *shared.lock().unwrap_or_else(|e| e.into_inner()));
    match tree {
        Ok(None) => {}
        Ok(Some((layout, found, probe))) => {
            limits::descriptors(&mut r, &found, &probe);
            limits::inotify(&mut r, &layout, &found);
            metadata::check(&mut r, &args.metadata, host, &found);
            outputs::check(&mut r, args);
        }
        Err(stuck) => {
            r.on("cgroups").fail(format!(
                "{stuck}. The daemon would stop collecting there (its /healthz then fails, \
                 and its log names the file)"
            ));
            metadata::check(&mut r, &args.metadata, host, &[]);
            outputs::check(&mut r, args);
        }
    }
    r
}
