//! The cgroup layout: which hierarchies are mounted under `--cgroup-root`, and where
//! containers are looked for.

use super::report::{Level, Report};
use crate::cgroup::{Layout, LayoutKind};
use crate::config::HostArgs;

/// The cgroup layout under the root, or the failure that stops every other check.
pub fn check(r: &mut Report, host: &HostArgs) -> Option<Layout> {
    let layout = match Layout::detect(&host.cgroup_root, &host.proc_root) {
        Ok(l) => l,
        Err(e) => {
            r.add(Level::Fail, "cgroups", e.to_string());
            return None;
        }
    };
    let kind = match layout.kind {
        LayoutKind::V2 => "pure cgroup v2",
        LayoutKind::Hybrid => "hybrid (v1 controllers plus a cgroup2 at unified/)",
        LayoutKind::V1 => "pure cgroup v1",
    };
    r.add(
        Level::Ok,
        "cgroups",
        format!(
            "{kind} under {}; containers are found in {}",
            host.cgroup_root.display(),
            layout.discovery_root().display()
        ),
    );
    if layout.kind == LayoutKind::V1 {
        r.add(
            Level::Note,
            "cgroups",
            "without a cgroup2 hierarchy there is no cgroup.events and no pressure: a \
             container's exit is seen at the next tick instead of at once, and the \
             *.pressure.stall.time metrics are absent",
        );
    }

    Some(layout)
}
