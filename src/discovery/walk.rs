//! The walk of a cgroup hierarchy that finds every container (and pod) in it, entering only
//! the directories that can hold more.

use std::path::{Path, PathBuf};

use super::classify::{Found, Kind, classify};

/// How long after a container is found what is not there yet is tried again: runtimes create
/// a container's directory in each hierarchy one after the other (its files, and its
/// `cgroup.events` to watch, may be missing for a moment). One policy for both.
pub const RETRY_AFTER_DISCOVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether a non-container directory may hold containers further down. Non-container
/// scopes (login sessions, `init.scope`, conmon) never do.
pub(crate) fn descend(name: &std::ffi::OsStr) -> bool {
    !name.to_string_lossy().ends_with(".scope")
}

/// How deep the walk goes: real container cgroups sit a few levels down
/// (`kubepods.slice/kubepods-burstable.slice/…pod….slice/cri-containerd-….scope`).
const MAX_DEPTH: usize = 12;

/// Walks the hierarchy mounted at `root` and returns every container (and pod) in it.
/// Containers' own sub-cgroups are not entered; pods' are. Directories that vanish during the walk are skipped.
pub fn walk(root: &Path) -> Vec<Found> {
    let mut found = Vec::new();
    walk_from(root, PathBuf::new(), &mut found, |_| true);
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

/// The walk below `start` (relative to `root`), appending containers to `found`. `visit` is
/// called with each non-container directory before it is listed (the watcher adds its
/// inotify watch there, so nothing created after the listing is missed); it returns false
/// to skip the directory.
pub(crate) fn walk_from(
    root: &Path,
    start: PathBuf,
    found: &mut Vec<Found>,
    mut visit: impl FnMut(&Path) -> bool,
) {
    let depth = start.iter().count();
    let mut stack = vec![(start, depth)];
    let _idle = crate::progress::IdleOnDrop;
    while let Some((rel, depth)) = stack.pop() {
        let dir = root.join(&rel);
        crate::progress::doing_path("listing", &dir);
        if !visit(&rel) {
            continue;
        }
        // `read_dir` opens with O_DIRECTORY (and glibc's opendir with O_NONBLOCK too): a
        // FIFO in the tree is refused, never waited on. Entries are told apart by the type
        // the listing gives, without opening them.
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let child = rel.join(entry.file_name());
            match classify(&child) {
                // A pod is read as a whole, and its containers one by one.
                Some(f) if f.kind == Kind::Pod => {
                    found.push(f);
                    if depth + 1 < MAX_DEPTH {
                        stack.push((child, depth + 1));
                    }
                }
                Some(f) => found.push(f),
                None if descend(&entry.file_name()) && depth + 1 < MAX_DEPTH => {
                    stack.push((child, depth + 1))
                }
                None => {}
            }
        }
    }
}
