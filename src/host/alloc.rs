//! How the C allocator keeps memory: set once, first thing in `main`. Big blocks are mapped
//! apart, the heap is trimmed, and one arena serves every thread, so the buffers made and freed
//! each tick do not stay resident (measured at 1,000 containers: `docs/performance.md`,
//! "glibc's thresholds").

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
