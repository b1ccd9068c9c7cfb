//! `container-exporter check`: what the exporter sees on this host and what is wrong, in
//! words a newcomer understands, each problem with its fix. Exit status non-zero when the
//! exporter could not work.
//!
//! One function per topic (layout, files, proc, descriptors, inotify, metadata, outputs),
//! called in order by [`run`]; the file is long because each finding carries its fix in words.
//! To add a check: a function that adds findings to the report, and its call in [`run`].

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cgroup::{CgroupReader, CgroupSample, Layout, LayoutKind, ProcRoot};
use crate::collect::{MAX_FDS_LEAN, MAX_FDS_PER_CONTAINER};
use crate::config::{DaemonArgs, HostArgs, MetadataArgs};
use crate::discovery::{self, Found, Kind};
use crate::export::otlp::OtlpConfig;
use crate::host::limits::FD_RESERVE;
use crate::metadata::{CheckLevel, Metadata, check_sources, spawn_sources};
use crate::progress;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Note,
    Warn,
    Fail,
}

/// One finding.
pub struct Finding {
    pub level: Level,
    pub topic: &'static str,
    pub text: String,
}

#[derive(Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, level: Level, topic: &'static str, text: impl Into<String>) {
        self.findings.push(Finding {
            level,
            topic,
            text: text.into(),
        });
    }

    /// True when the exporter could not do its job here.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.level == Level::Fail)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let tag = match f.level {
                Level::Ok => "ok  ",
                Level::Note => "note",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            let _ = writeln!(out, "{tag}  {:<12} {}", f.topic, f.text);
        }
        let verdict = if self.failed() {
            "\nverdict: the exporter cannot work here as configured; fix the FAIL lines above."
        } else if self.findings.iter().any(|f| f.level == Level::Warn) {
            "\nverdict: the exporter works here, with the limits the warn lines describe."
        } else {
            "\nverdict: the exporter works here."
        };
        out.push_str(verdict);
        out.push('\n');
        out
    }
}

/// `fut`'s answer, or why there was none within 5 s.
fn answer<T>(
    rt: &tokio::runtime::Runtime,
    fut: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), fut)
            .await
            .unwrap_or_else(|_| Err("no answer within 5 s".to_string()))
    })
}

/// The runtimes' APIs: which answer, what they are, and how many of the containers found they
/// name (the same sources the daemon would start, given a moment to list).
fn metadata(r: &mut Report, args: &MetadataArgs, host: &HostArgs, found: &[Found]) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    else {
        r.add(
            Level::Warn,
            "metadata",
            "cannot start a runtime to ask the container runtimes",
        );
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
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let store = spawn_sources(args, host, Duration::from_secs(60), rt.handle(), &stopped);
    let named = |s: &Metadata| {
        containers
            .iter()
            .filter(|f| {
                s.container(f.runtime, &f.id)
                    .is_some_and(|m| !m.sandbox && m.name.is_some())
            })
            .count()
    };
    let sandboxes = |s: &Metadata| {
        containers
            .iter()
            .filter(|f| s.container(f.runtime, &f.id).is_some_and(|m| m.sandbox))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline
        && named(&store) + sandboxes(&store) < containers.len()
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (n, sb) = (named(&store), sandboxes(&store));
    let _ = stop_tx.send(true);
    rt.shutdown_timeout(Duration::from_secs(1));
    let shown = containers.len() - sb;
    r.add(
        if n == shown { Level::Ok } else { Level::Note },
        "names",
        format!(
            "{n} of {shown} containers have names{}",
            if sb > 0 {
                format!(" ({sb} Kubernetes pod sandboxes are not reported as containers)")
            } else {
                String::new()
            }
        ),
    );
}

/// The cgroup layout under the root, or the failure that stops every other check.
fn layout(r: &mut Report, host: &HostArgs) -> Option<Layout> {
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

/// What reading the first containers found showed.
#[derive(Default)]
struct Probe {
    readable: usize,
    running: usize,
    running_without_pids: usize,
    untracked_blkio: usize,
    held: usize,
    lean: usize,
}

/// The containers found, and whether their files can be read (up to 50 of them).
fn files(
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

/// Whether the proc root is the host's, and what that means for network counters.
fn proc(r: &mut Report, host: &HostArgs, layout: &Layout, proc_root: &ProcRoot, p: &Probe) {
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

/// The open-file limit against the containers found.
fn descriptors(r: &mut Report, found: &[Found], p: &Probe) {
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
            r.add(
                Level::Fail,
                "descriptors",
                format!(
                    "open-file limit {soft} is too low: the exporter needs at least {} ({why}). \
                     Raise it ({raise})",
                    FD_RESERVE + per_lean
                ),
            );
        } else if capacity < found_n {
            let reopened = found_n.saturating_sub(capacity_lean);
            let rest = if reopened == 0 {
                format!(
                    "with only the files read every tick kept open ({per_lean} per container) \
                     all {found_n} fit"
                )
            } else {
                format!(
                    "with only the files read every tick kept open ({per_lean} per container) \
                     {capacity_lean} fit, and the other {reopened} are read by opening and \
                     closing their files every tick, which costs more CPU but loses nothing"
                )
            };
            r.add(
                Level::Warn,
                "descriptors",
                format!(
                    "open-file limit {soft}: room to keep all the files of {capacity} of the \
                     {found_n} containers open ({why}); {rest}. Raise it to {} ({raise})",
                    found_n * per + FD_RESERVE
                ),
            );
        } else {
            r.add(
                Level::Ok,
                "descriptors",
                format!("open-file limit {soft}: room for about {capacity} containers ({why})"),
            );
        }
    }
}

/// inotify watches against the containers found.
fn inotify(r: &mut Report, layout: &Layout, found: &[Found]) {
    let containers = found.len().max(1) as u64;
    if layout.unified.is_some() {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        match read("/proc/sys/fs/inotify/max_user_watches") {
            Some(w) if w < containers * 2 + 256 => r.add(
                Level::Warn,
                "inotify",
                format!(
                    "max_user_watches is {w}: too few for {containers} containers (one per \
                     container plus the directories above them); raise \
                     fs.inotify.max_user_watches, or directories that cannot be watched are listed \
                     every 2 s and exits are seen at the next tick instead of at once"
                ),
            ),
            Some(w) => r.add(Level::Ok, "inotify", format!("max_user_watches {w}")),
            None => {}
        }
    }
}

/// Where the outputs would go, and whether their settings are valid.
fn outputs(r: &mut Report, args: &DaemonArgs) {
    r.add(
        Level::Ok,
        "prometheus",
        match args.prometheus_listen {
            crate::config::Listen::On(a) => {
                format!("the page would be served on http://{a}/metrics")
            }
            crate::config::Listen::Off => "the page is off (--prometheus-listen off)".to_string(),
        },
    );
    match OtlpConfig::from_args(&args.otlp) {
        Ok(None) => r.add(
            Level::Ok,
            "otlp",
            "off: set --otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT to push",
        ),
        Ok(Some(c)) => {
            let headers: Vec<&str> = c.headers.iter().map(|(k, _)| k.as_str()).collect();
            let probed = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime: {e}"))
                .and_then(|rt| answer(&rt, crate::export::otlp::send::probe(&c)));
            let (level, answered) = match probed {
                Ok(took) => (
                    Level::Ok,
                    format!(
                        "; the receiver accepted an empty request in {} ms",
                        took.as_millis()
                    ),
                ),
                Err(e) => (
                    Level::Warn,
                    format!("; an empty request was not accepted: {e}"),
                ),
            };
            r.add(
                level,
                "otlp",
                format!(
                    "{} to {} ({}{}, timeout {:?}, {} temporality, queue of {}{}){answered}",
                    c.protocol.as_str(),
                    c.endpoint,
                    if c.gzip { "gzip" } else { "no compression" },
                    c.ca_path
                        .as_deref()
                        .map(|p| format!(", CA {p}"))
                        .unwrap_or_default(),
                    c.timeout,
                    c.temporality.as_str(),
                    c.queue_size,
                    if headers.is_empty() {
                        String::new()
                    } else {
                        format!(", headers {}", headers.join(", "))
                    }
                ),
            );
        }
        Err(e) => r.add(Level::Fail, "otlp", e),
    }
    if let Some(path) = &args.web.web_config_file {
        match crate::export::http::ServeOptions::from_args(&args.web) {
            Ok(_) => r.add(
                Level::Ok,
                "web config",
                format!(
                    "{} loads (TLS, auth and headers as it says)",
                    path.display()
                ),
            ),
            Err(e) => r.add(Level::Fail, "web config", e),
        }
    }
}

/// Whether disk usage will work, per runtime: each container's root mount (overlay's upper
/// directory, or another filesystem that gets no figure), whether that directory is reachable
/// below `--host-root` and readable, and the kubelet's directories.
fn disk(r: &mut Report, host: &HostArgs, args: &DaemonArgs, layout: &Layout, found: &[Found]) {
    use crate::disk::monitor::{Found as Root, find_layer, host_root_mount};
    use std::collections::BTreeMap;
    if args.disk.disk_interval.0.is_none() {
        r.add(
            Level::Note,
            "disk",
            "off (--disk-interval off): no filesystem usage",
        );
        return;
    }
    let host_fd = match nix::fcntl::open(
        &host.host_root,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => {
            r.add(
                Level::Warn,
                "disk",
                format!(
                    "cannot open --host-root {} ({e}): no disk usage. Mount the host's / \
                     read-only (docker run -v /:/host:ro, a hostPath volume) and point \
                     --host-root at it",
                    host.host_root.display()
                ),
            );
            return;
        }
    };
    let host_root = host_root_mount(&host.proc_root);
    // Per runtime: overlay layers readable, denied, unreachable; other root filesystems.
    #[derive(Default)]
    struct Tally {
        ok: usize,
        denied: Vec<String>,
        unreachable: Vec<String>,
        other: BTreeMap<String, usize>,
        unknown: usize,
    }
    let mut by_runtime: BTreeMap<&str, Tally> = BTreeMap::new();
    for f in found.iter().filter(|f| f.kind == Kind::Container) {
        let procs = layout.discovery_root().join(&f.rel).join("cgroup.procs");
        let t = by_runtime.entry(f.runtime.as_str()).or_default();
        match find_layer(&host.proc_root, &procs, host_root.as_ref()) {
            Root::Overlay(up) => match crate::disk::walk::open_dir_in(&host_fd, &up) {
                Ok(_) => t.ok += 1,
                Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) => {
                    t.denied.push(up.display().to_string())
                }
                Err(e) => t.unreachable.push(format!("{} ({e})", up.display())),
            },
            Root::NotOverlay(fstype) => *t.other.entry(fstype).or_default() += 1,
            Root::HostRoot | Root::NoProcess => t.unknown += 1,
        }
    }
    if by_runtime.is_empty() {
        r.add(
            Level::Note,
            "disk",
            format!(
                "no container to look at yet; writable layers will be read below --host-root {}",
                host.host_root.display()
            ),
        );
    }
    for (runtime, t) in &by_runtime {
        if t.ok > 0 {
            r.add(
                Level::Ok,
                "disk",
                format!(
                    "{runtime}: {} containers on overlay, their writable layers readable below {}: \
                     layer and log usage",
                    t.ok,
                    host.host_root.display()
                ),
            );
        }
        if let Some(first) = t.denied.first() {
            r.add(
                Level::Warn,
                "disk",
                format!(
                    "{runtime}: {} writable layers cannot be read (e.g. {first}): their usage is \
                     not shown. Run as root with CAP_DAC_READ_SEARCH (docker run --user 0 \
                     --cap-add DAC_READ_SEARCH)",
                    t.denied.len()
                ),
            );
        }
        if let Some(first) = t.unreachable.first() {
            r.add(
                Level::Warn,
                "disk",
                format!(
                    "{runtime}: {} writable layers are not below --host-root {} (e.g. {first}): \
                     mount the host's / there, read-only",
                    t.unreachable.len(),
                    host.host_root.display()
                ),
            );
        }
        for (fstype, n) in &t.other {
            r.add(
                Level::Note,
                "disk",
                format!(
                    "{runtime}: {n} containers have a {fstype} root, not overlay: no writable-layer \
                     usage for them (with {fstype} the container's own data cannot be told from \
                     its image's cheaply and exactly; only their logs are measured)"
                ),
            );
        }
        if t.unknown > 0 {
            r.add(
                Level::Note,
                "disk",
                format!(
                    "{runtime}: {} containers have no process in a root of their own to look at \
                     (starting, or not in the host's PID namespace: run with --pid host)",
                    t.unknown
                ),
            );
        }
    }
    if by_runtime.values().any(|t| t.ok > 0) && !can_read_anything() {
        r.add(
            Level::Warn,
            "disk",
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
                r.add(Level::Ok, "disk", format!("{what}: {}", dir.display()));
            } else {
                r.add(
                    Level::Warn,
                    "disk",
                    format!(
                        "{what}: {} does not exist: pods' ephemeral storage is not summed ({flag})",
                        dir.display()
                    ),
                );
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
            let layout = layout(&mut r, &host);
            keep(&mut r);
            let layout = layout?;
            let found = discovery::walk(layout.discovery_root());
            let proc_root = ProcRoot::new(&host.proc_root);
            let probe = files(&mut r, &host, &layout, &found, &proc_root);
            keep(&mut r);
            proc(&mut r, &host, &layout, &proc_root, &probe);
            keep(&mut r);
            // Disk reads the containers' mountinfo and their layers below --host-root: bounded
            // like the tree.
            disk(&mut r, &host, &args, &layout, &found);
            keep(&mut r);
            Some((layout, found, probe))
        })
    };
    let mut r = std::mem::take(&mut *shared.lock().unwrap_or_else(|e| e.into_inner()));
    match tree {
        Ok(None) => {}
        Ok(Some((layout, found, probe))) => {
            descriptors(&mut r, &found, &probe);
            inotify(&mut r, &layout, &found);
            metadata(&mut r, &args.metadata, host, &found);
            outputs(&mut r, args);
        }
        Err(stuck) => {
            r.add(
                Level::Fail,
                "cgroups",
                format!(
                    "{stuck}. The daemon would stop collecting there (its /healthz then fails, \
                     and its log names the file)"
                ),
            );
            metadata(&mut r, &args.metadata, host, &[]);
            outputs(&mut r, args);
        }
    }
    r
}
