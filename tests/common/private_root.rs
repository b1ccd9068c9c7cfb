//! A cgroup root of the test's own on this machine's real cgroupfs: a fresh directory in every
//! mounted hierarchy, each bind-mounted under one temporary directory. Passed as
//! `--cgroup-root`, it shows the exporter only the test's cgroups (not the containers other
//! tests run meanwhile), with everything real cgroupfs does (ENODEV on removed cgroups, its
//! inotify events). Needs root.

use std::fs;
use std::path::{Path, PathBuf};

use container_exporter::cgroup::Layout;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::cgroups::{layout, mounts};
use super::{TempDir, unique_name};

pub struct PrivateRoot {
    /// What to pass as `--cgroup-root`.
    pub root: PathBuf,
    /// The directories made in the real hierarchies, and where each is mounted.
    binds: Vec<(PathBuf, PathBuf)>,
    _tmp: TempDir,
}

impl PrivateRoot {
    pub fn new() -> PrivateRoot {
        let tmp = TempDir::new();
        let root = tmp.0.join("cgroup");
        let name = unique_name();
        let mut r = PrivateRoot {
            root: root.clone(),
            binds: Vec::new(),
            _tmp: tmp,
        };
        for m in mounts(&layout()) {
            let real = m.join(&name);
            fs::create_dir(&real).unwrap_or_else(|e| panic!("mkdir {}: {e}", real.display()));
            let at = root.join(m.file_name().expect("a hierarchy's mount has a name"));
            fs::create_dir_all(&at).unwrap();
            mount(
                Some(&real),
                &at,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .unwrap_or_else(|e| panic!("bind {} on {}: {e}", real.display(), at.display()));
            r.binds.push((real, at));
        }
        r
    }

    /// The layout the exporter will see under [`root`](Self::root).
    pub fn layout(&self) -> Layout {
        Layout::detect(&self.root, Path::new("/proc")).expect("the private root's layout")
    }
}

/// Removes the directories below `dir` and `dir` itself, deepest first (cgroup directories
/// are removed with rmdir; their files go with them).
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    for _ in 0..50 {
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl Drop for PrivateRoot {
    fn drop(&mut self) {
        for (real, at) in &self.binds {
            let _ = umount2(at, MntFlags::MNT_DETACH);
            remove_cgroup_tree(real);
        }
    }
}
