//! The containers found, and whether their cgroup files can be read: what reading the first
//! of them shows ([`Probe`]) feeds the checks of `/proc` and descriptors.

use super::report::{Level, Report};
use crate::cgroup::{CgroupReader, CgroupSample, Layout, LayoutKind, ProcRoot};
use crate::config::HostArgs;
use crate::discovery::Found;

/// What reading the first containers found showed.
#[derive(Default)]
pub struct Probe {
    /// Containers whose files were read.
    pub readable: usize,
    /// Of those, the running ones.
    pub running: usize,
    /// Running, not in the host network, yet no network counters: no process to read them
    /// from in `--proc-root`.
    pub running_without_pids: usize,
    /// Running on cgroup v1 with no block IO figures.
    pub untracked_blkio: usize,
    /// Descriptors their readers held, and would hold kept lean.
    pub held: usize,
    pub lean: usize,
}

/// The containers found, and whether their files can be read (up to 50 of them).
pub fn check(
    r: &mut Report,
    host: &HostArgs,
    layout: &Layout,
    found: &[Found],
    proc_root: &ProcRoot,
) -> Probe {
    r.add(
        if found.is_empty() {
            Level::Note
        } else {
            Level::Ok
        },
        "containers",
        match found.len() {
            0 => {
                "no containers found (none running, or --cgroup-root is not the host's)".to_string()
            }
            n => format!("{n} found by cgroup path"),
        },
    );
    let mut p = Probe::default();
    let mut errors = Vec::new();
    let mut sample = CgroupSample::default();
    let mut buf = Vec::new();
    for f in found.iter().take(50) {
        let Ok(mut reader) = CgroupReader::open(layout, &f.rel) else {
            continue;
        };
        let mut errs = Vec::new();
        if reader
            .read(proc_root, &mut buf, &mut sample, &mut |e| {
                errs.push(e.to_string())
            })
            .is_ok()
        {
            p.readable += 1;
            if sample.pids.current.is_some_and(|p| p > 0) || sample.populated == Some(true) {
                p.running += 1;
                if sample.net.is_empty() && !reader.host_network() {
                    p.running_without_pids += 1;
                }
                if sample.io.is_empty() && layout.kind != LayoutKind::V2 {
                    p.untracked_blkio += 1;
                }
            }
        }
        p.held += reader.held();
        p.lean += reader.lean_fds();
        errors.extend(errs);
    }
    if !found.is_empty() && p.readable == 0 {
        r.add(
            Level::Fail,
            "permissions",
            format!(
                "cannot read any container's cgroup files ({}): run as root, or give the \
                 exporter read access to {}",
                errors.first().map_or("no detail", String::as_str),
                host.cgroup_root.display()
            ),
        );
    } else if !errors.is_empty() {
        r.add(
            Level::Warn,
            "permissions",
            format!(
                "{} files could not be read, e.g. {}",
                errors.len(),
                errors[0]
            ),
        );
    } else if p.readable > 0 {
        r.add(
            Level::Ok,
            "permissions",
            format!("read every file of {} containers", p.readable),
        );
    }

    p
}
