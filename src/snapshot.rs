//! `container-exporter snapshot`: discover, read twice about a second apart (so rates have a
//! value), print and exit. The JSON form is the documented contract scripts and tests use.
//! Containers that ended during it are printed with their final sample and, when known, why
//! they ended (their runtime's word is waited for, as the daemon does).

use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value as Json, json};

use crate::cgroup::{Layout, ProcRoot};
use crate::cli::{SnapshotArgs, SnapshotFormat};
use crate::collect::{Collector, ContainerState, Described};
use crate::config::HostArgs;
use crate::departures::DEFAULT_EXIT_WAIT;
use crate::discovery::Kind;
use crate::exit;
use crate::metadata::{ExitWord, Metadata, spawn_sources};
use crate::metrics::{Metric, Sink, Value};
use crate::resource::HostResource;

/// `snapshot`: reads every container twice, asks the runtimes about them meanwhile (the same
/// sources and flags as the daemon), and prints the result in the format `args` asks for.
pub fn run(
    host_args: &HostArgs,
    args: &SnapshotArgs,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let (cgroup_root, proc_path) = (host_args.cgroup_root.clone(), host_args.proc_root.clone());
    let (layout, proc_root) =
        crate::progress::within(crate::progress::COMMAND_BOUND, move || {
            Layout::detect(&cgroup_root, &proc_path).map(|l| (l, ProcRoot::new(&proc_path)))
        })??;
    let host = HostResource::new(
        host_args.host_name.clone(),
        std::env::var("OTEL_RESOURCE_ATTRIBUTES").ok().as_deref(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("ce-metadata")
        .enable_all()
        .build()?;
    let stop = crate::remote::Stop::default();
    // The sources list everything when they connect, during the gap between the two reads.
    let metadata = spawn_sources(
        &args.metadata,
        host_args,
        Duration::from_secs(60),
        runtime.handle(),
        &|| stop.stopped(),
    );
    // Reading the tree is bounded: a read that does not return (a hung filesystem) ends
    // the command with an error naming it.
    let mut collector = Collector::new(layout.clone(), proc_root);
    let read = crate::progress::within(crate::progress::COMMAND_BOUND, move || {
        let views = take(&mut collector);
        (collector, views)
    })
    .map(|(collector, mut views)| {
        // Containers that ended wait (boundedly) for their runtime's word, as in the daemon.
        settle_exits(&mut views, &metadata, DEFAULT_EXIT_WAIT);
        measure_disk(&mut views, &layout, host_args, &metadata);
        (collector, views)
    });
    stop.stop();
    runtime.shutdown_timeout(Duration::from_secs(1));
    let (collector, views) = read?;
    match args.format {
        SnapshotFormat::Json => {
            let doc = to_json(layout.kind.as_str(), &views, &host, &metadata);
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)?;
        }
        SnapshotFormat::Table => write_table(out, &views, &metadata)?,
    }
    for e in collector.last_errors() {
        tracing::warn!("{e}");
    }
    Ok(())
}

/// Walks every container's layer and logs and every pod's volumes once, to the end (no
/// budget: a one-off command), and attaches the figures.
fn measure_disk(
    views: &mut [ContainerView],
    layout: &Layout,
    host: &HostArgs,
    metadata: &Metadata,
) {
    let procs_root = layout.discovery_root();
    let roster = views
        .iter()
        .filter(|v| v.running)
        .map(|v| crate::daemon::roster_item(&Described::new(&v.state, metadata), procs_root))
        .collect();
    let cfg = crate::disk::DiskConfig::for_host(host);
    let stats = std::sync::Arc::new(crate::disk::DiskStats::default());
    // Bounded like the tree: layers of millions of files, or a hung filesystem below
    // --host-root, cost the snapshot its disk figures, not its end.
    let measured = crate::progress::within(DISK_BOUND, move || {
        crate::disk::measure_once(cfg, roster, stats)
    });
    let Ok(results) = measured.inspect_err(|stuck| {
        tracing::warn!(
            "disk usage not measured: the walk of the writable layers, logs and volumes \
             took longer than {:?} ({stuck})",
            DISK_BOUND.total
        )
    }) else {
        return;
    };
    for v in views.iter_mut() {
        v.state.disk = results.get(&v.state.id).cloned();
    }
}

/// How long `snapshot` walks layers, logs and volumes (a one-off walk, without the daemon's
/// budget) before it prints without their figures.
const DISK_BOUND: crate::progress::Bound = crate::progress::Bound {
    per_operation: Duration::from_secs(60),
    total: Duration::from_secs(60),
};

/// The gap between the two reads.
pub const GAP: Duration = Duration::from_secs(1);

/// Reads every container twice and returns them; containers that exited or vanished
/// between the two reads are kept with their final sample (nothing seen is lost).
pub fn take(collector: &mut Collector) -> Vec<ContainerView> {
    let mut failed = collector.discover().failed;
    collector.collect();
    std::thread::sleep(GAP);
    // Containers created during the gap are picked up too (with one sample).
    failed.extend(collector.discover().failed);
    collector.collect();
    failed.sort_by(|a, b| a.0.cmp(&b.0));
    failed.dedup_by(|a, b| a.0 == b.0);
    for (id, error) in failed {
        tracing::warn!(%id, "cannot open the container's cgroup files ({error}): not shown");
    }
    let now = SystemTime::now();
    let running: Vec<_> = collector.containers().map(|c| (c.clone(), true)).collect();
    let departed = collector.take_departed().into_iter().map(|s| (s, false));
    let mut views: Vec<ContainerView> = (running.into_iter().chain(departed))
        .map(|(state, running)| ContainerView {
            state,
            running,
            now,
        })
        .collect();
    views.sort_by(|a, b| a.state.id.cmp(&b.state.id));
    views
}

/// Gives each container that ended during the snapshot its exit, by the rule of
/// [`crate::exit`]: its runtime's word, waited for at most `wait` when the runtime's source is
/// connected (the CRI is asked), and the kernel's OOM verdict from its final sample.
pub fn settle_exits(views: &mut [ContainerView], metadata: &Metadata, wait: Duration) {
    let until = Instant::now() + wait;
    // (view, whether its runtime can say why it ended)
    let mut pending: Vec<(usize, bool)> = Vec::new();
    for (i, v) in views.iter().enumerate() {
        let s = &v.state;
        if v.running || s.kind != Kind::Container {
            continue;
        }
        let word = metadata.exit_word(s.runtime, &s.id);
        if word == Some(ExitWord::Asked) {
            metadata.exits.ask(&s.id, until);
        }
        pending.push((i, word.is_some()));
    }
    loop {
        let over = Instant::now() >= until;
        pending.retain(|&(i, ask)| {
            let s = &mut views[i].state;
            let kernel = exit::kernel_oom(s.sample());
            let runtime = metadata.exits.take(&s.id, s.created);
            if runtime.is_none() && ask && !over {
                return true;
            }
            s.set_exit(exit::verdict(kernel, runtime.as_ref()));
            false
        });
        if pending.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A container as printed: still running, or gone with its final sample.
pub struct ContainerView {
    pub state: ContainerState,
    pub running: bool,
    now: SystemTime,
}

impl ContainerView {
    fn points(&self) -> Vec<(Metric, Vec<String>, Value)> {
        let mut points = Vec::new();
        self.state.emit(self.now, &mut points);
        points
    }
}

impl Sink for Vec<(Metric, Vec<String>, Value)> {
    fn point(&mut self, metric: Metric, attrs: &[&str], value: Value) {
        self.push((metric, attrs.iter().map(|a| a.to_string()).collect(), value));
    }
}

/// The JSON document: `cgroup_layout`, then `containers` (and `pods`, for Kubernetes pods'
/// own cgroups), each with its resource attributes, cgroup path, `running` and data points
/// (pod sandboxes are not containers, and are left out).
pub fn to_json(
    layout: &str,
    views: &[ContainerView],
    host: &HostResource,
    metadata: &Metadata,
) -> Json {
    let mut containers = Vec::new();
    let mut pods = Vec::new();
    for (v, d) in described(views, metadata) {
        let c = &v.state;
        let resource: Map<String, Json> = (host.attributes(&d).into_iter())
            .map(|(k, v)| (k, json!(v)))
            .collect();
        let metrics: Vec<Json> = v
            .points()
            .into_iter()
            .map(|(m, attrs, value)| {
                let def = m.def();
                let attributes: Map<String, Json> = def
                    .attributes
                    .iter()
                    .zip(attrs)
                    .map(|(k, v)| (k.to_string(), Json::String(v)))
                    .collect();
                json!({"name": m.name(c.kind), "unit": def.unit, "attributes": attributes, "value": value})
            })
            .collect();
        let mut entry = json!({
            "resource": resource,
            "cgroup": c.rel.to_string_lossy(),
            "running": v.running,
            "metrics": metrics,
        });
        if let Some(e) = c.exit() {
            entry["exit"] = json!(e);
        }
        match c.kind {
            Kind::Container => containers.push(entry),
            Kind::Pod => pods.push(entry),
        }
    }
    json!({ "cgroup_layout": layout, "containers": containers, "pods": pods })
}

/// The views with what the runtimes say of them; pod sandboxes are not containers, and are
/// left out.
fn described<'a>(
    views: &'a [ContainerView],
    metadata: &Metadata,
) -> impl Iterator<Item = (&'a ContainerView, Described<'a>)> {
    (views.iter())
        .map(|v| (v, Described::new(&v.state, metadata)))
        .filter(|(_, d)| !d.meta.as_deref().is_some_and(|m| m.sandbox))
}

fn sum(
    points: &[(Metric, Vec<String>, Value)],
    m: Metric,
    first_attr: Option<&str>,
) -> Option<f64> {
    let mut values = (points.iter())
        .filter(|(pm, attrs, _)| {
            *pm == m && first_attr.is_none_or(|a| attrs.first().is_some_and(|x| x == a))
        })
        .map(|(_, _, v)| v.as_f64())
        .peekable();
    values.peek().is_some().then(|| values.sum())
}

/// Sizes the way `docker stats` prints them: binary units for memory, decimal for IO.
fn size(v: Option<f64>, binary: bool) -> String {
    let Some(mut v) = v else { return "-".into() };
    let (base, units): (f64, &[&str]) = if binary {
        (1024.0, &["B", "KiB", "MiB", "GiB", "TiB"])
    } else {
        (1000.0, &["B", "kB", "MB", "GB", "TB"])
    };
    let mut u = 0;
    while v >= base && u + 1 < units.len() {
        v /= base;
        u += 1;
    }
    // Whole bytes print without decimals as they are.
    let n = format!("{v:.3}");
    format!(
        "{}{}",
        n.trim_end_matches('0').trim_end_matches('.'),
        units[u]
    )
}

pub fn write_table(
    out: &mut dyn Write,
    views: &[ContainerView],
    metadata: &Metadata,
) -> io::Result<()> {
    let header =
        "CONTAINER ID|NAME|RUNTIME|CPU %|MEM USAGE / LIMIT|MEM %|NET I/O|BLOCK I/O|PIDS|EXIT";
    let mut rows: Vec<Vec<String>> = vec![header.split('|').map(String::from).collect()];
    for (v, d) in described(views, metadata) {
        let c = &v.state;
        // The pod's or container's Kubernetes name, else the runtime's name for it.
        let name = match c.kind {
            Kind::Pod => d.pod.as_deref().and_then(|p| {
                Some(format!(
                    "{}/{}",
                    p.namespace.as_deref()?,
                    p.name.as_deref()?
                ))
            }),
            Kind::Container => d.meta.as_deref().and_then(|m| {
                match (
                    &m.k8s_namespace_name,
                    &m.k8s_pod_name,
                    &m.k8s_container_name,
                ) {
                    (Some(ns), Some(pod), Some(c)) => Some(format!("{ns}/{pod}/{c}")),
                    _ => m.name.clone(),
                }
            }),
        };
        let p = v.points();
        // Both directions of an IO metric, as `docker stats` shows them.
        let io = |m, a, b| {
            let (a, b) = (sum(&p, m, Some(a)), sum(&p, m, Some(b)));
            format!("{} / {}", size(a, false), size(b, false))
        };
        let cpu = sum(&p, Metric::CpuUsage, None);
        let usage = sum(&p, Metric::MemoryUsage, None);
        let limit = sum(&p, Metric::MemoryLimit, None);
        let mem_pct = match (usage, limit) {
            (Some(u), Some(l)) if l > 0.0 => format!("{:.2}%", u / l * 100.0),
            _ => "-".into(),
        };
        let mut id: String = c.id.chars().take(12).collect();
        if c.kind == Kind::Pod {
            id = format!("pod {}", c.id);
        }
        if !v.running {
            id.push_str(" (exited)");
        }
        rows.push(vec![
            id,
            name.unwrap_or_else(|| "-".into()),
            match c.kind {
                Kind::Pod => "pod".to_string(),
                Kind::Container => c.runtime.to_string(),
            },
            cpu.map_or("-".into(), |c| format!("{:.2}%", c * 100.0)),
            format!(
                "{} / {}",
                size(usage, true),
                limit.map_or("unlimited".into(), |l| size(Some(l), true))
            ),
            mem_pct,
            io(Metric::NetworkIo, "receive", "transmit"),
            io(Metric::DiskIo, "read", "write"),
            sum(&p, Metric::PidCount, None).map_or("-".into(), |n| format!("{n:.0}")),
            match (v.running, c.exit()) {
                (true, _) => "-".into(),
                (false, None) => "?".into(),
                (false, Some(e)) => match e.code {
                    Some(code) => format!("{} {code}", e.reason.as_str()),
                    None => e.reason.as_str().to_string(),
                },
            },
        ]);
    }
    let mut widths = [0usize; 10];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", cells.join("   ").trim_end())?;
    }
    if views.is_empty() {
        writeln!(out, "(no containers found)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_like_docker_stats() {
        assert_eq!(size(Some(0.0), true), "0B");
        assert_eq!(size(Some(1536.0), true), "1.5KiB");
        assert_eq!(size(Some(16_800_000.0), false), "16.8MB");
        assert_eq!(size(None, false), "-");
    }
}
