//! The cgroup tree: the layout (which hierarchies are mounted under `--cgroup-root`, and where
//! containers are looked for), the containers found and whether their files can be read, and
//! whether `--proc-root` is the host's. What reading the first containers shows ([`Probe`])
//! feeds the checks of `/proc` and descriptors.

use super::report::Report;
use crate::cgroup::{CgroupReader, CgroupSample, Layout, LayoutKind, ProcRoot};
use crate::config::HostArgs;
use crate::discovery::Found;

/// The cgroup layout under the root, or the failure that stops every other check.
pub fn layout(r: &mut Report, host: &HostArgs) -> Option<Layout> {
    let layout = (Layout::detect(&host.cgroup_root, &host.proc_root))
        .map_err(|e| r.on("cgroups").fail(e.to_string()))
        .ok()?;
    let kind = match layout.kind {
        LayoutKind::V2 => "pure cgroup v2",
        LayoutKind::Hybrid => "hybrid (v1 controllers plus a cgroup2 at unified/)",
        LayoutKind::V1 => "pure cgroup v1",
    };
    r.on("cgroups").ok(format!(
        "{kind} under {}; containers are found in {}",
        host.cgroup_root.display(),
        layout.discovery_root().display()
    ));
    if layout.kind == LayoutKind::V1 {
        r.on("cgroups").note(
            "without a cgroup2 hierarchy there is no cgroup.events and no pressure: a \
             container's exit is seen at the next tick instead of at once, and the \
             *.pressure.stall.time metrics are absent",
        );
    }

    Some(layout)
}

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
pub fn files(
    r: &mut Report,
    host: &HostArgs,
    layout: &Layout,
    found: &[Found],
    proc_root: &ProcRoot,
) -> Probe {
    match found.len() {
        0 => (r.on("containers"))
            .note("no containers found (none running, or --cgroup-root is not the host's)"),
        n => r.on("containers").ok(format!("{n} found by cgroup path")),
    }
    let mut p = Probe::default();
    let mut errors = Vec::new();
    let mut sample = CgroupSample::default();
    let mut buf = Vec::new();
    for f in found.iter().take(50) {
        let Ok(mut reader) = CgroupReader::open(layout, &f.rel) else {
            continue;
        };
        if reader
            .read(proc_root, &mut buf, &mut sample, &mut |e| {
                errors.push(e.to_string())
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
    }
    if !found.is_empty() && p.readable == 0 {
        r.on("permissions").fail(format!(
            "cannot read any container's cgroup files ({}): run as root, or give the \
             exporter read access to {}",
            errors.first().map_or("no detail", String::as_str),
            host.cgroup_root.display()
        ));
    } else if !errors.is_empty() {
        r.on("permissions").warn(format!(
            "{} files could not be read, e.g. {}",
            errors.len(),
            errors[0]
        ));
    } else if p.readable > 0 {
        r.on("permissions")
            .ok(format!("read every file of {} containers", p.readable));
    }

    p
}

/// Whether the proc root is the host's, and what that means for network counters.
pub fn proc(r: &mut Report, host: &HostArgs, layout: &Layout, proc_root: &ProcRoot, p: &Probe) {
    if !host.proc_root.join("self/mountinfo").exists() {
        r.on("proc").fail(format!(
            "{} is not a procfs mount: set --proc-root",
            host.proc_root.display()
        ));
    } else if p.running > 0 && p.running_without_pids == p.running {
        r.on("proc").warn(format!(
            "{} running containers show no process in {}: the exporter is in its \
             own PID namespace, so network metrics are missing. Run it with the host's \
             PID namespace (docker run --pid=host; Kubernetes hostPID: true)",
            p.running,
            host.proc_root.display()
        ));
    } else {
        r.on("proc").ok(format!(
            "{} shows the host's processes",
            host.proc_root.display()
        ));
    }
    if proc_root.host_netns.is_none() {
        r.on("proc").warn(
            "cannot tell the host's network namespace: containers in the host network \
             would report the host's network counters (is --proc-root the host's /proc?)",
        );
    }
    if layout.kind != LayoutKind::V2 {
        r.on("block io").note(format!(
            "cgroup v1 blkio counts a device only after some cgroup had a throttle rule on \
             it (any rule, e.g. docker run --device-write-bps DEVICE:10gb); until then no \
             block IO is reported (never zeros). {} of {} running containers have no \
             block IO figures now.",
            p.untracked_blkio, p.running
        ));
    }
}
