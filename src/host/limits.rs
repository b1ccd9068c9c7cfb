//! Process-wide set-up the readers depend on: the open-file limit, and how much of it the
//! containers' files may take.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Descriptors kept back from the containers' files for everything else the process opens:
/// up to 64 HTTP connections (the page server's cap), and 64 for the rest (standard streams,
/// epoll, inotify, the listener, Docker and OTLP, and the few opened for a moment).
pub const FD_RESERVE: u64 = 128;

/// Raises the soft limit on open files to the hard limit: each tracked container keeps
/// about eighteen cgroup files open (see `cgroup::reader`). Returns the new soft limit.
pub fn raise_fd_limit() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// Descriptors the containers' files may hold: the soft open-file limit less
/// [`FD_RESERVE`]. Containers beyond it are read by open-read-close (see `collect`).
pub fn descriptor_budget() -> usize {
    getrlimit(Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft)
        .saturating_sub(FD_RESERVE)
        .try_into()
        .unwrap_or(usize::MAX)
}
