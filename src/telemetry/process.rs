//! This process's own resource use, for the standard `process_*` metrics.

/// This process's resource use, for the standard `process_*` metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub start_time_seconds: f64,
}

/// Where the descriptor count cannot be had from one `stat` (kernels before 6.2), counting
/// `/proc/self/fd` costs about 0.3 µs per descriptor (0.6 ms with 1,900 open), so the count is
/// taken at most this often and reused in between.
const FD_RECOUNT_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// What [`ProcessStats::read`] keeps between calls: the start time (it never changes), a
/// kept-open `/proc/self/statm`, and the last descriptor count where it must be counted.
struct ProcessFiles {
    start_time_seconds: f64,
    statm: Option<std::fs::File>,
    page_size: u64,
    counted_fds: Option<(std::time::Instant, u64)>,
}

static PROCESS: std::sync::Mutex<Option<ProcessFiles>> = std::sync::Mutex::new(None);

impl ProcessStats {
    /// The process's figures, at the cost of a few syscalls: called once per tick, so it must
    /// not cost like the containers' reads. CPU from `getrusage` (all threads), resident
    /// memory from a kept-open `/proc/self/statm`, open descriptors from the size the kernel
    /// reports for `/proc/self/fd` (Linux 6.2+; counted, at most every 30 s, before that).
    /// Fields that cannot be read stay zero. `/proc/self/stat` is read once, for the start
    /// time: parsing it costs four to seventeen times a `getrusage`, which also counts in µs.
    pub fn read() -> ProcessStats {
        let mut guard = PROCESS.lock().unwrap_or_else(|e| e.into_inner());
        let files = guard.get_or_insert_with(ProcessFiles::open);
        let mut s = ProcessStats {
            start_time_seconds: files.start_time_seconds,
            ..ProcessStats::default()
        };
        use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage};
        if let Ok(u) = getrusage(UsageWho::RUSAGE_SELF) {
            let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            s.cpu_seconds = secs(u.user_time()) + secs(u.system_time());
        }
        if let Some(statm) = &files.statm {
            let mut buf = [0u8; 128];
            if let Ok(n) = std::os::unix::fs::FileExt::read_at(statm, &mut buf, 0) {
                // "size resident shared text lib data dt", in pages.
                let resident = std::str::from_utf8(&buf[..n])
                    .ok()
                    .and_then(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok());
                s.resident_bytes = resident.unwrap_or(0) * files.page_size;
            }
        }
        s.open_fds = files.open_fds();
        if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) {
            s.max_fds = soft;
        }
        s
    }
}

impl ProcessFiles {
    fn open() -> ProcessFiles {
        // Read once: the start time never changes. procfs takes USER_HZ from
        // sysconf(_SC_CLK_TCK), whatever the architecture.
        let start_time_seconds = procfs::process::Process::myself()
            .and_then(|p| p.stat())
            .ok()
            .zip(procfs::boot_time_secs().ok())
            .map_or(0.0, |(stat, boot)| {
                boot as f64 + stat.starttime as f64 / procfs::ticks_per_second() as f64
            });
        ProcessFiles {
            start_time_seconds,
            statm: std::fs::File::open("/proc/self/statm").ok(),
            page_size: procfs::page_size(),
            counted_fds: None,
        }
    }

    fn open_fds(&mut self) -> u64 {
        // Linux 6.2+ reports the number of open descriptors as the size of /proc/self/fd
        // (0 before), which spares listing ~18 entries per container every tick.
        if let Ok(m) = std::fs::metadata("/proc/self/fd")
            && m.len() > 0
        {
            return m.len();
        }
        let now = std::time::Instant::now();
        match self.counted_fds {
            Some((at, n)) if now.duration_since(at) < FD_RECOUNT_EVERY => n,
            _ => {
                // Less the descriptor of the listing itself.
                let n = std::fs::read_dir("/proc/self/fd")
                    .map_or(0, |d| d.count().saturating_sub(1) as u64);
                self.counted_fds = Some((now, n));
                n
            }
        }
    }
}
