//! What the runtime phase's checks look at, and what each figure is called on each page: the
//! two namings (OpenTelemetry, `.otel`; cAdvisor, `.cadvisor`), the metrics with the cgroup
//! file each comes from, and the containers and pods ([`Who`]) as the guest described them.

use super::Truth;
use super::page::Page;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Naming {
    Otel,
    Cadvisor,
}

impl Naming {
    pub(crate) fn ext(self) -> &'static str {
        match self {
            Naming::Otel => "otel",
            Naming::Cadvisor => "cadvisor",
        }
    }
}

pub(crate) const BOTH: [Naming; 2] = [Naming::Otel, Naming::Cadvisor];

/// A figure on the pages, with the cgroup file it is read from (for the messages).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Metric {
    Cpu,
    Pids,
    MemUsage,
    Rss,
    File,
    Peak,
    MemLimit,
    PidLimit,
    OomKills,
    Periods,
    ThrottledPeriods,
    ThrottledTime,
    CpuSome,
    MemSome,
    IoSome,
    DiskWrite,
    DiskRead,
}

impl Metric {
    /// Name on the page (for a container; a pod's OpenTelemetry names start `k8s_pod_`), the
    /// labels besides the identity, and the file it comes from.
    pub(crate) fn on(
        self,
        n: Naming,
        majmin: &str,
    ) -> (&'static str, Vec<(&'static str, String)>, &'static str) {
        use Metric::*;
        use Naming::*;
        let l = |k: &'static str, v: &str| vec![(k, v.to_string())];
        let some = |n: Naming| match n {
            Otel => l("pressure_stall_type", "some"),
            Cadvisor => vec![],
        };
        let dev = |n: Naming, dir: &str| match n {
            Otel => vec![
                ("disk_io_direction", dir.to_string()),
                ("system_device", majmin.to_string()),
            ],
            Cadvisor => l("device", "/dev/vda"),
        };
        match (self, n) {
            (Cpu, Otel) => (
                "container_cpu_time_seconds_total",
                vec![],
                "cpu.stat user_usec + system_usec",
            ),
            (Cpu, Cadvisor) => (
                "container_cpu_usage_seconds_total",
                l("cpu", "total"),
                "cpu.stat usage_usec",
            ),
            (Pids, Otel) => ("container_pids", vec![], "pids.current"),
            (Pids, Cadvisor) => ("container_threads", vec![], "pids.current"),
            (MemUsage, _) => ("container_memory_usage_bytes", vec![], "memory.current"),
            (Rss, Otel) => ("container_memory_rss_bytes", vec![], "memory.stat anon"),
            (Rss, Cadvisor) => ("container_memory_rss", vec![], "memory.stat anon"),
            (File, Otel) => ("container_memory_file_bytes", vec![], "memory.stat file"),
            (File, Cadvisor) => ("container_memory_cache", vec![], "memory.stat file"),
            (Peak, Otel) => ("container_memory_peak_bytes", vec![], "memory.peak"),
            (Peak, Cadvisor) => ("container_memory_max_usage_bytes", vec![], "memory.peak"),
            (MemLimit, Otel) => ("container_memory_limit_bytes", vec![], "memory.max"),
            (MemLimit, Cadvisor) => ("container_spec_memory_limit_bytes", vec![], "memory.max"),
            (PidLimit, Otel) => ("container_pid_limit", vec![], "pids.max"),
            (PidLimit, Cadvisor) => ("container_threads_max", vec![], "pids.max"),
            (OomKills, Otel) => (
                "container_memory_oom_kills_total",
                vec![],
                "memory.events oom_kill",
            ),
            (OomKills, Cadvisor) => (
                "container_oom_events_total",
                vec![],
                "memory.events oom_kill",
            ),
            (Periods, _) => (
                "container_cpu_cfs_periods_total",
                vec![],
                "cpu.stat nr_periods",
            ),
            (ThrottledPeriods, _) => (
                "container_cpu_cfs_throttled_periods_total",
                vec![],
                "cpu.stat nr_throttled",
            ),
            (ThrottledTime, Otel) => (
                "container_cpu_cfs_throttled_time_seconds_total",
                vec![],
                "cpu.stat throttled_usec",
            ),
            (ThrottledTime, Cadvisor) => (
                "container_cpu_cfs_throttled_seconds_total",
                vec![],
                "cpu.stat throttled_usec",
            ),
            (CpuSome, Otel) => (
                "container_cpu_pressure_stall_time_seconds_total",
                some(n),
                "cpu.pressure some",
            ),
            (CpuSome, Cadvisor) => (
                "container_pressure_cpu_waiting_seconds_total",
                some(n),
                "cpu.pressure some",
            ),
            (MemSome, Otel) => (
                "container_memory_pressure_stall_time_seconds_total",
                some(n),
                "memory.pressure some",
            ),
            (MemSome, Cadvisor) => (
                "container_pressure_memory_waiting_seconds_total",
                some(n),
                "memory.pressure some",
            ),
            (IoSome, Otel) => (
                "container_io_pressure_stall_time_seconds_total",
                some(n),
                "io.pressure some",
            ),
            (IoSome, Cadvisor) => (
                "container_pressure_io_waiting_seconds_total",
                some(n),
                "io.pressure some",
            ),
            (DiskWrite, Otel) => (
                "container_disk_io_bytes_total",
                dev(n, "write"),
                "io.stat wbytes",
            ),
            (DiskWrite, Cadvisor) => (
                "container_fs_writes_bytes_total",
                dev(n, "write"),
                "io.stat wbytes",
            ),
            (DiskRead, Otel) => (
                "container_disk_io_bytes_total",
                dev(n, "read"),
                "io.stat rbytes",
            ),
            (DiskRead, Cadvisor) => (
                "container_fs_reads_bytes_total",
                dev(n, "read"),
                "io.stat rbytes",
            ),
        }
    }
}

/// A container (or a pod) of the runtime phase, as the guest described it.
pub(crate) struct Who {
    pub(crate) name: String,
    /// "runc" or "containerd": who made its cgroup.
    pub(crate) made_by: &'static str,
    pub(crate) id: String,
    pub(crate) dir: String,
    pub(crate) runtime: String,
    pub(crate) pod: Option<String>,
    pub(crate) is_pod: bool,
}

impl Who {
    pub(crate) fn from_facts(t: &Truth, name: &str, made_by: &'static str) -> Who {
        let f = |k: &str| {
            t.facts
                .get(&format!("rt.{name}.{k}"))
                .cloned()
                .unwrap_or_default()
        };
        let pod = f("pod");
        Who {
            name: name.to_string(),
            made_by,
            id: f("id"),
            dir: f("dir"),
            runtime: f("runtime"),
            pod: (!pod.is_empty()).then_some(pod),
            is_pod: false,
        }
    }

    pub(crate) fn pod(name: &str, uid: &str, dir: &str, made_by: &'static str) -> Who {
        Who {
            name: name.to_string(),
            made_by,
            id: uid.to_string(),
            dir: dir.to_string(),
            runtime: String::new(),
            pod: Some(uid.to_string()),
            is_pod: true,
        }
    }

    /// `rc-mem [runc, /kubepods/burstable/pod0a1b2c3d-…/bb181a5a1be5…]`: ids cut to 12 digits.
    pub(crate) fn show(&self) -> String {
        format!("{} [{}, {}]", self.name, self.made_by, shorten(&self.dir))
    }

    pub(crate) fn identity(&self, n: Naming) -> (&'static str, &str) {
        match (n, self.is_pod) {
            (Naming::Otel, false) => ("container_id", &self.id),
            (Naming::Otel, true) => ("k8s_pod_uid", &self.id),
            (Naming::Cadvisor, _) => ("id", &self.dir),
        }
    }

    /// The figure `m` of this container on page `p`.
    pub(crate) fn read(&self, p: &Page, n: Naming, m: Metric, majmin: &str) -> Result<f64, String> {
        let (name, extra, _) = m.on(n, majmin);
        let name = if self.is_pod && n == Naming::Otel {
            name.replacen("container_", "k8s_pod_", 1)
        } else {
            name.to_string()
        };
        let mut labels = vec![self.identity(n)];
        labels.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
        if m == Metric::Cpu && n == Naming::Otel {
            // user + system
            p.sum(&name, &labels)
        } else {
            p.value(&name, &labels)
        }
    }
}

/// A cgroup path with every 64-digit container id cut to its first 12 digits.
pub(crate) fn shorten(path: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 64 {
            out.push_str(&run[..12]);
            out.push('…');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for ch in path.chars() {
        if ch.is_ascii_hexdigit() {
            run.push(ch);
        } else {
            flush(&mut run, &mut out);
            out.push(ch);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// What `m` is called on page `n`, with its file, for a check's title.
pub(crate) fn called(m: Metric, n: Naming) -> String {
    let (name, _, file) = m.on(n, "MAJ:MIN");
    format!("{name} ({file})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_shortened_in_messages() {
        let id = "5c75b4dbbc40137dd1836cf502ee06ce61035fd35f4240a8fb7b05a8aed942d7";
        assert_eq!(shorten(&format!("/docker/{id}")), "/docker/5c75b4dbbc40…");
        assert_eq!(
            shorten(&format!("/s/docker-{id}.scope")),
            "/s/docker-5c75b4dbbc40….scope"
        );
        assert_eq!(shorten("/default/ce-burn"), "/default/ce-burn");
    }
}
