//! How the C allocator keeps memory: set once, first thing in `main`.
//!
//! Measured at 1,000 containers (`benches/scale.sh`, OTLP on, a scrape every 15 s): with
//! glibc's defaults the process held 3 to 4 MiB more than its live heap. Its big buffers
//! are made once a tick and freed (the OTLP request, 2.8 MB; the compressed page); glibc's
//! mapping threshold rises to the size of the largest block freed, so from the second tick
//! they came from the heap and their pages stayed resident, and each thread that
//! allocates got an arena of its own. With blocks of 256 KiB and more always mapped apart
//! (and unmapped when freed), the heap trimmed past 128 KiB, and one arena, peak RSS fell
//! from 22.4 to 20.7 MiB and RSS between ticks to 17.7 MiB; the cost is a few hundred page
//! faults a tick. The threads that allocate (the collector, the server, the disk thread)
//! rarely do so at the same time, so one arena costs no waiting worth measuring.

/// Blocks of this size and more are mapped apart and unmapped when freed.
const MMAP_THRESHOLD: i32 = 256 * 1024;
/// Free memory at the top of the heap past this is given back.
const TRIM_THRESHOLD: i32 = 128 * 1024;

/// Sets the allocator's thresholds (glibc only; elsewhere nothing). Call before any thread
/// is started.
#[allow(unsafe_code)]
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::libc::{M_ARENA_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, mallopt};
        for (param, value) in [
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (M_ARENA_MAX, 1),
        ] {
            // SAFETY: mallopt only changes the allocator's tunables; it takes two integers,
            // touches no memory of the caller's, and is called before other threads exist.
            // A value it refuses leaves the default (it returns 0), which is harmless.
            unsafe {
                mallopt(param, value);
            }
        }
    }
}
