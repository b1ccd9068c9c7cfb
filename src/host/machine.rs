//! What the cAdvisor page says about the host itself: `machine_cpu_cores` (logical CPUs
//! online, `/sys/devices/system/cpu/online`) and `machine_memory_bytes` (`MemTotal` of the
//! host's `/proc/meminfo`), which dashboards divide container usage by.
//!
//! Read once, at start: CPUs and memory are hot-plugged rarely enough that cAdvisor itself
//! refreshes them only every few minutes. Neither file is namespaced, so inside a container
//! (a DaemonSet, `docker run`) they are the host's; a value that cannot be read is left off
//! the page with one warning, never written as zero.

use std::path::Path;

use super::text::{ParseError, keyed_line, lines, parse_u64, trim};

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
        let read = |path: &Path, parse: fn(&[u8]) -> Result<u64, ParseError>| {
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
            cpu_cores: read(cpu_online, cpu_list_len),
            memory_bytes: read(&proc_root.join("meminfo"), mem_total),
        }
    }
}

/// `/proc/meminfo`: `MemTotal:` in bytes (the file says `kB`, meaning KiB).
pub fn mem_total(buf: &[u8]) -> Result<u64, ParseError> {
    let (n, rest) = keyed_line(buf, b"MemTotal:", "no MemTotal line")?;
    let bad = |reason| ParseError::malformed(n, reason);
    let value = trim(rest)
        .strip_suffix(b"kB")
        .ok_or(bad("expected `MemTotal: N kB`"))?;
    parse_u64(trim(value))
        .and_then(|kib| kib.checked_mul(1024))
        .ok_or(bad("MemTotal is not a number of kB"))
}

/// The highest CPU number a CPU list may name: more than any kernel's `NR_CPUS` (8192).
pub const MAX_CPU: u64 = 65_535;

/// A kernel CPU list (`/sys/devices/system/cpu/online`: `0-3,8,10-11`): how many CPUs it
/// names. Ranges must go up and stay within [`MAX_CPU`]; a list naming one CPU twice is
/// refused.
pub fn cpu_list_len(buf: &[u8]) -> Result<u64, ParseError> {
    let (mut lines, problems) = lines(buf);
    let first = lines.next().map(|(_, l)| trim(l));
    problems.finish()?;
    let bad = ParseError::malformed(1, "expected a CPU list like 0-3,8");
    let list = first.filter(|l| !l.is_empty()).ok_or(bad)?;
    let (mut count, mut next) = (0u64, 0u64);
    for item in list.split(|&b| b == b',') {
        let (lo, hi) = match item.iter().position(|&b| b == b'-') {
            Some(dash) => (parse_u64(&item[..dash]), parse_u64(&item[dash + 1..])),
            None => (parse_u64(item), parse_u64(item)),
        };
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Err(bad);
        };
        // In order and without overlap, as the kernel writes it.
        if lo < next || hi < lo || hi > MAX_CPU {
            return Err(bad);
        }
        count += hi - lo + 1;
        next = hi + 1;
    }
    Ok(count)
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

    #[test]
    fn meminfo_and_cpu_lists() {
        assert_eq!(
            mem_total(b"MemTotal:       24683568 kB\nMemFree: 1 kB\n"),
            Ok(24683568 * 1024)
        );
        assert!(mem_total(b"MemFree: 1 kB\n").is_err());
        assert!(mem_total(b"MemTotal: 99999999999999999999 kB\n").is_err());
        assert!(mem_total(b"MemTotal: 12 MB\n").is_err());
        assert_eq!(cpu_list_len(b"0-1\n"), Ok(2));
        assert_eq!(cpu_list_len(b"0\n"), Ok(1));
        assert_eq!(cpu_list_len(b"0-3,8,10-11\n"), Ok(7));
        for bad in [
            &b"3-1\n"[..],
            b"0-3,2\n",
            b"0-70000\n",
            b"\n",
            b"x\n",
            b"0-1",
        ] {
            assert!(cpu_list_len(bad).is_err(), "{bad:?}");
        }
    }
}
