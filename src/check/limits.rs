//! The process's limits against the containers found: open descriptors and inotify watches.

use super::cgroups::Probe;
use super::report::Report;
use crate::cgroup::Layout;
use crate::collect::{MAX_FDS_LEAN, MAX_FDS_PER_CONTAINER, headroom};
use crate::discovery::Found;
use crate::host::limits::FD_RESERVE;

/// The open-file limit against the containers found.
pub fn descriptors(r: &mut Report, found: &[Found], p: &Probe) {
    if let Ok((soft, _)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        // Descriptors per container as measured on the ones just read (their files, their
        // cgroup.procs and net/dev), else the most any plan takes.
        let per_container = |n: usize, bound: usize| match p.readable {
            0 => bound as u64,
            r => (n as u64).div_ceil(r as u64).max(1),
        };
        let per = per_container(p.held, MAX_FDS_PER_CONTAINER);
        let per_lean = per_container(p.lean, MAX_FDS_LEAN);
        let budget = soft.saturating_sub(FD_RESERVE);
        let capacity = budget / per;
        let capacity_lean = budget / per_lean;
        let found_n = found.len() as u64;
        let why = format!(
            "{per} descriptors per container, {FD_RESERVE} kept back for connections and the rest"
        );
        let raise = "ulimit -n, LimitNOFILE=, docker run --ulimit nofile=65536";
        if capacity_lean == 0 {
            r.on("descriptors").fail(format!(
                "open-file limit {soft} is too low: the exporter needs at least {} ({why}). \
                 Raise it ({raise})",
                FD_RESERVE + per_lean
            ));
        } else if capacity < found_n {
            let reopened = found_n.saturating_sub(capacity_lean);
            let rest = if reopened == 0 {
                // Past the per-tick files and the headroom, the room left keeps every file of
                // as many containers as it holds.
                let left = budget
                    .saturating_sub(headroom(budget as usize) as u64)
                    .saturating_sub(found_n * per_lean);
                let all = (left / per.saturating_sub(per_lean).max(1)).min(found_n);
                format!(
                    "with only the files read every tick kept open ({per_lean} per container) \
                     all {found_n} fit, and the room left keeps every file of about {all} of \
                     them (the others open their limits and settings when due, once a minute)"
                )
            } else {
                format!(
                    "with only the files read every tick kept open ({per_lean} per container) \
                     {capacity_lean} fit, and the other {reopened} are read by opening and \
                     closing their files every tick, which costs more CPU but loses nothing"
                )
            };
            r.on("descriptors").warn(format!(
                "open-file limit {soft}: room to keep all the files of {capacity} of the \
                 {found_n} containers open ({why}); {rest}. Raise it to {} ({raise})",
                found_n * per + FD_RESERVE
            ));
        } else {
            r.on("descriptors").ok(format!(
                "open-file limit {soft}: room for about {capacity} containers ({why})"
            ));
        }
    }
}

/// inotify watches against the containers found.
pub fn inotify(r: &mut Report, layout: &Layout, found: &[Found]) {
    let containers = found.len().max(1) as u64;
    if layout.unified.is_some() {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        match read("/proc/sys/fs/inotify/max_user_watches") {
            Some(w) if w < containers * 2 + 256 => r.on("inotify").warn(format!(
                "max_user_watches is {w}: too few for {containers} containers (one per \
                 container plus the directories above them); raise \
                 fs.inotify.max_user_watches, or directories that cannot be watched are listed \
                 every 2 s and exits are seen at the next tick instead of at once"
            )),
            Some(w) => r.on("inotify").ok(format!("max_user_watches {w}")),
            None => {}
        }
    }
}
