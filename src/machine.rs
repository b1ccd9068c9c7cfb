//! What the cAdvisor page says about the host itself: `machine_cpu_cores` (logical CPUs
//! online, `/sys/devices/system/cpu/online`) and `machine_memory_bytes` (`MemTotal` of the
//! host's `/proc/meminfo`), which dashboards divide container usage by.
//!
//! Read once, at start: CPUs and memory are hot-plugged rarely enough that cAdvisor itself
//! refreshes them only every few minutes. Neither file is namespaced, so inside a container
//! (a DaemonSet, `docker run`) they are the host's; a value that cannot be read is left off
//! the page with one warning, never written as zero.

use std::path::Path;

use crate::cgroup::parse;

/// The CPU list of the logical CPUs online.
pub const CPU_ONLINE: &str = "/sys/devices/system/cpu/online";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Machine {
    /// Logical CPUs online (hyperthreads count one each), as cAdvisor counts them.
    pub cpu_cores: Option<u64>,
    /// The memory the kernel manages, in bytes.
    pub memory_bytes: Option<u64>,
}

impl Machine {
    /// Reads both facts: `meminfo` from the host's procfs (`--proc-root`), the CPU list from
    /// `cpu_online` (normally [`CPU_ONLINE`]).
    pub fn read(proc_root: &Path, cpu_online: &Path) -> Machine {
        let read = |path: &Path, parse: fn(&[u8]) -> Result<u64, parse::ParseError>| {
            let result = std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|b| parse(&b).map_err(|e| e.to_string()));
            match result {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(
                        "cannot read {} ({e}): the cAdvisor page goes without the figure it \
                         gives",
                        path.display()
                    );
                    None
                }
            }
        };
        Machine {
            cpu_cores: read(cpu_online, parse::cpu_list_len),
            memory_bytes: read(&proc_root.join("meminfo"), parse::mem_total),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_host_has_cpus_and_memory() {
        let m = Machine::read(Path::new("/proc"), Path::new(CPU_ONLINE));
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        // Online CPUs are at least those this process may run on.
        assert!(m.cpu_cores.is_some_and(|n| n >= cpus), "{m:?}");
        assert!(m.memory_bytes.is_some_and(|b| b > 1 << 20), "{m:?}");
    }

    #[test]
    fn missing_files_leave_the_figures_out() {
        let m = Machine::read(Path::new("/nonexistent"), Path::new("/nonexistent/online"));
        assert_eq!(m, Machine::default());
    }
}
