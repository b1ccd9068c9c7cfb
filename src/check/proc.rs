//! `/proc`: whether `--proc-root` is the host's (the containers' processes, the host's network
//! namespace), and what cgroup v1's block IO accounting will show.

use super::files::Probe;
use super::report::{Level, Report};
use crate::cgroup::{Layout, LayoutKind, ProcRoot};
use crate::config::HostArgs;

/// Whether the proc root is the host's, and what that means for network counters.
pub fn check(r: &mut Report, host: &HostArgs, layout: &Layout, proc_root: &ProcRoot, p: &Probe) {
    if !host.proc_root.join("self/mountinfo").exists() {
        r.add(
            Level::Fail,
            "proc",
            format!(
                "{} is not a procfs mount: set --proc-root",
                host.proc_root.display()
            ),
        );
    } else if p.running > 0 && p.running_without_pids == p.running {
        r.add(
            Level::Warn,
            "proc",
            format!(
                "{} running containers show no process in {}: the exporter is in its \
                 own PID namespace, so network metrics are missing. Run it with the host's \
                 PID namespace (docker run --pid=host; Kubernetes hostPID: true)",
                p.running,
                host.proc_root.display()
            ),
        );
    } else {
        r.add(
            Level::Ok,
            "proc",
            format!("{} shows the host's processes", host.proc_root.display()),
        );
    }
    if proc_root.host_netns.is_none() {
        r.add(
            Level::Warn,
            "proc",
            "cannot tell the host's network namespace: containers in the host network \
             would report the host's network counters (is --proc-root the host's /proc?)",
        );
    }
    if layout.kind != LayoutKind::V2 {
        r.add(
            Level::Note,
            "block io",
            format!(
                "cgroup v1 blkio counts a device only after some cgroup had a throttle rule on \
                 it (any rule, e.g. docker run --device-write-bps DEVICE:10gb); until then no \
                 block IO is reported (never zeros). {} of {} running containers have no \
                 block IO figures now.",
                p.untracked_blkio, p.running
            ),
        );
    }
}
