//! Disk usage, per runtime: whether each container's writable layer is found (overlay's upper
//! directory, or another filesystem that gets no figure), reachable below `--host-root` and
//! readable, and whether the kubelet's directories are there.

use std::collections::BTreeMap;

use super::report::Report;
use crate::cgroup::Layout;
use crate::cli::DaemonArgs;
use crate::config::HostArgs;
use crate::discovery::{Found, Kind};
use crate::disk::DiskStats;
use crate::disk::layer::{Found as Root, HostView, locate};
use crate::disk::walk;

/// Whether disk usage will work, per runtime (see the module doc).
pub fn check(r: &mut Report, host: &HostArgs, args: &DaemonArgs, layout: &Layout, found: &[Found]) {
    if args.disk.disk_interval.0.is_none() {
        r.on("disk")
            .note("off (--disk-interval off): no filesystem usage");
        return;
    }
    let host_fd = match walk::open_root(&host.host_root) {
        Ok(fd) => fd,
        Err(e) => {
            r.on("disk").warn(format!(
                "cannot open --host-root {} ({e}): no disk usage. Mount the host's / \
                 read-only (docker run -v /:/host:ro, a hostPath volume) and point \
                 --host-root at it",
                host.host_root.display()
            ));
            return;
        }
    };
    let view = HostView::new(&host.proc_root, &host.host_root);
    let stats = DiskStats::default();
    // Per runtime: overlay layers readable, denied, unreachable; other root filesystems.
    #[derive(Default)]
    struct Tally {
        ok: usize,
        denied: Vec<String>,
        unreachable: Vec<String>,
        untrusted: Vec<String>,
        other: BTreeMap<String, usize>,
        unknown: usize,
    }
    let mut by_runtime: BTreeMap<&str, Tally> = BTreeMap::new();
    for f in found.iter().filter(|f| f.kind == Kind::Container) {
        let procs = layout.discovery_root().join(&f.rel).join("cgroup.procs");
        let t = by_runtime.entry(f.runtime.as_str()).or_default();
        match locate(&view, Some(&host_fd), &f.id, &procs, &stats) {
            Root::Overlay(up) => match walk::open_dir_in(&host_fd, &up) {
                Ok(_) => t.ok += 1,
                Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) => {
                    t.denied.push(up.display().to_string())
                }
                Err(e) => t.unreachable.push(format!("{} ({e})", up.display())),
            },
            Root::Untrusted(up) => t.untrusted.push(up.display().to_string()),
            Root::NotOverlay(fstype) => *t.other.entry(fstype).or_default() += 1,
            Root::HostRoot | Root::NoProcess => t.unknown += 1,
        }
    }
    if by_runtime.is_empty() {
        r.on("disk").note(format!(
            "no container to look at yet; writable layers will be read below --host-root {}",
            host.host_root.display()
        ));
    }
    for (runtime, t) in &by_runtime {
        if t.ok > 0 {
            r.on("disk").ok(format!(
                "{runtime}: {} containers on overlay, their writable layers readable below {}: \
                 layer and log usage",
                t.ok,
                host.host_root.display()
            ));
        }
        if let Some(first) = t.denied.first() {
            r.on("disk").warn(format!(
                "{runtime}: {} writable layers cannot be read (e.g. {first}): their usage is \
                 not shown. Run as root with CAP_DAC_READ_SEARCH (docker run --user 0 \
                 --cap-add DAC_READ_SEARCH)",
                t.denied.len()
            ));
        }
        if let Some(first) = t.unreachable.first() {
            r.on("disk").warn(format!(
                "{runtime}: {} writable layers are not below --host-root {} (e.g. {first}): \
                 mount the host's / there, read-only",
                t.unreachable.len(),
                host.host_root.display()
            ));
        }
        if let Some(first) = t.untrusted.first() {
            r.on("disk").warn(format!(
                "{runtime}: {} containers have a root whose upper directory no runtime made \
                 (e.g. {first}: the container mounted an overlay of its own): not walked",
                t.untrusted.len()
            ));
        }
        for (fstype, n) in &t.other {
            r.on("disk").note(format!(
                "{runtime}: {n} containers have a {fstype} root, not overlay: no writable-layer \
                 usage for them (with {fstype} the container's own data cannot be told from \
                 its image's cheaply and exactly; only their logs are measured)"
            ));
        }
        if t.unknown > 0 {
            r.on("disk").note(format!(
                "{runtime}: {} containers have no process in a root of their own to look at \
                 (starting, or not in the host's PID namespace: run with --pid host)",
                t.unknown
            ));
        }
    }
    if by_runtime.values().any(|t| t.ok > 0) && !can_read_anything() {
        r.on("disk").warn(
            "without CAP_DAC_READ_SEARCH (or CAP_DAC_OVERRIDE), a layer holding a directory that \
             only its owner may read (e.g. a database's, mode 700) cannot be walked, and that \
             container's usage is not shown (one warning each). Add the capability (docker run \
             --cap-add DAC_READ_SEARCH, capabilities.add in Kubernetes)",
        );
    }
    let below = |p: &std::path::Path| host.host_root.join(p.strip_prefix("/").unwrap_or(p));
    if found.iter().any(|f| f.kind == Kind::Pod) {
        for (what, dir, flag) in [
            (
                "emptyDir volumes",
                below(&host.kubelet_root.join("pods")),
                "--kubelet-root",
            ),
            ("pod logs", below(&host.pod_logs_dir), "--pod-logs-dir"),
        ] {
            if dir.is_dir() {
                r.on("disk").ok(format!("{what}: {}", dir.display()));
            } else {
                r.on("disk").warn(format!(
                    "{what}: {} does not exist: pods' ephemeral storage is not summed ({flag})",
                    dir.display()
                ));
            }
        }
    }
}

/// Whether this process may read any directory (CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE in
/// its effective set).
fn can_read_anything() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & 0b110 != 0)
}
