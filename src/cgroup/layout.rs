//! Which cgroup hierarchies this host mounts, and where.
//!
//! Read once at start from `<proc-root>/self/mountinfo`: the `cgroup2` and `cgroup` (v1)
//! mounts at or under `--cgroup-root`. Three shapes exist in the wild:
//! - pure v2: one `cgroup2` at the root (current distributions);
//! - hybrid: v1 controllers in `<root>/<controller>` plus a controller-less `cgroup2` at
//!   `<root>/unified` that still carries `cpu.stat`, `cgroup.events` and `*.pressure`;
//! - pure v1: only v1 controllers.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::host::{fs, mountinfo};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayoutKind {
    V2,
    Hybrid,
    #[default]
    V1,
}

impl LayoutKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LayoutKind::V2 => "v2",
            LayoutKind::Hybrid => "hybrid",
            LayoutKind::V1 => "v1",
        }
    }
}

impl fmt::Display for LayoutKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The mount points the readers open files under. A v1 controller may be co-mounted with
/// others (`cpu,cpuacct`): then several fields hold the same path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    pub kind: LayoutKind,
    /// The cgroup2 mount: the whole tree on v2, `<root>/unified` on hybrid hosts.
    pub unified: Option<PathBuf>,
    pub cpu: Option<PathBuf>,
    pub cpuacct: Option<PathBuf>,
    pub memory: Option<PathBuf>,
    pub blkio: Option<PathBuf>,
    pub pids: Option<PathBuf>,
    /// `name=systemd` (v1's controller-less hierarchy), a last resort for discovery.
    pub systemd: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot read {}: {error} (is --proc-root a procfs mount?)", path.display())]
    Read {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error(
        "no cgroup or cgroup2 filesystem is mounted at or under {root}: set --cgroup-root to \
         where the host's /sys/fs/cgroup is mounted (in a container: -v /sys/fs/cgroup:{root}:ro)",
        root = cgroup_root.display()
    )]
    NoCgroupMounts { cgroup_root: PathBuf },
    /// No cgroup mount found, and some mountinfo lines could not be parsed (one of them may
    /// have been it).
    #[error(
        "no cgroup or cgroup2 filesystem found at or under {}, and mountinfo line {line} could \
         not be parsed",
        cgroup_root.display()
    )]
    Unparsed { cgroup_root: PathBuf, line: usize },
}

impl Layout {
    /// Reads `<proc_root>/self/mountinfo` and keeps the cgroup mounts under `cgroup_root`.
    pub fn detect(cgroup_root: &Path, proc_root: &Path) -> Result<Layout, LayoutError> {
        let path = proc_root.join("self/mountinfo");
        let _idle = crate::progress::IdleOnDrop;
        crate::progress::doing_path("reading", &path);
        let text = fs::read_regular_file(&path).map_err(|error| LayoutError::Read {
            path: path.clone(),
            error,
        })?;
        Layout::from_mountinfo(cgroup_root, &text)
    }

    /// The layout from the bytes of a `mountinfo` file. A line that cannot be parsed (a mount
    /// point that is not UTF-8, a format from the future) is skipped rather than failing the
    /// whole file: it stops the exporter only if no usable cgroup mount is left, and then the
    /// error says which line it was.
    pub fn from_mountinfo(cgroup_root: &Path, mountinfo: &[u8]) -> Result<Layout, LayoutError> {
        let mut mounts = Vec::new();
        let mut first_bad = None;
        for m in mountinfo::mounts(mountinfo) {
            match m {
                Ok(m) => mounts.push(triple(&m)),
                Err(line) => {
                    first_bad.get_or_insert(line);
                }
            }
        }
        Layout::from_mounts(cgroup_root, &mounts).map_err(|e| match (e, first_bad) {
            (LayoutError::NoCgroupMounts { cgroup_root }, Some(line)) => {
                LayoutError::Unparsed { cgroup_root, line }
            }
            (e, _) => e,
        })
    }

    /// The decision itself, on (mount point, fs type, super options) triples.
    pub fn from_mounts(
        cgroup_root: &Path,
        mounts: &[(PathBuf, String, Vec<String>)],
    ) -> Result<Layout, LayoutError> {
        let mut layout = Layout::default();
        // Later mounts hide earlier ones at the same point: the last one wins.
        for (point, fstype, opts) in mounts {
            if !point.starts_with(cgroup_root) {
                continue;
            }
            match fstype.as_str() {
                "cgroup2" => layout.unified = Some(point.clone()),
                "cgroup" => {
                    let has = |o: &str| opts.iter().any(|x| x == o);
                    for (name, slot) in [
                        ("cpu", &mut layout.cpu),
                        ("cpuacct", &mut layout.cpuacct),
                        ("memory", &mut layout.memory),
                        ("blkio", &mut layout.blkio),
                        ("pids", &mut layout.pids),
                        ("name=systemd", &mut layout.systemd),
                    ] {
                        if has(name) {
                            *slot = Some(point.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        let l = &layout;
        let any_v1 = [&l.cpu, &l.cpuacct, &l.memory, &l.blkio, &l.pids]
            .iter()
            .any(|m| m.is_some());
        layout.kind = match (&layout.unified, any_v1) {
            (Some(_), false) => LayoutKind::V2,
            (Some(_), true) => LayoutKind::Hybrid,
            (None, true) => LayoutKind::V1,
            (None, false) if layout.systemd.is_some() => LayoutKind::V1,
            (None, false) => {
                return Err(LayoutError::NoCgroupMounts {
                    cgroup_root: cgroup_root.to_path_buf(),
                });
            }
        };
        Ok(layout)
    }

    /// The hierarchy whose tree is walked to find containers: every runtime creates a
    /// container's directory there. Every hierarchy `from_mounts` accepts is a candidate, so
    /// a host that mounts only, say, v1 `cpuacct` still has one.
    pub fn discovery_root(&self) -> &Path {
        // The v1 hierarchies first (none on pure v2), then the unified one.
        let v1 = [
            &self.memory,
            &self.cpu,
            &self.pids,
            &self.cpuacct,
            &self.blkio,
            &self.systemd,
        ];
        (v1.into_iter().filter(|_| self.kind != LayoutKind::V2))
            .chain([&self.unified])
            .flatten()
            .next()
            .map(PathBuf::as_path)
            .expect("a layout always has a hierarchy (checked in from_mounts)")
    }
}

/// (mount point, fs type, super options) of a mount; a v1 hierarchy's name (`name=systemd`)
/// is kept as one option, as `from_mounts` looks it up.
fn triple(m: &mountinfo::Mount<'_>) -> (PathBuf, String, Vec<String>) {
    let opts = m
        .options()
        .map(|o| match o.split_once('=') {
            Some((key, _)) if key != "name" => key.to_owned(),
            _ => o,
        })
        .collect();
    (
        m.mount_point(),
        String::from_utf8_lossy(m.fstype).into_owned(),
        opts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hierarchy's mount point, as text.
    fn at(mount: &Option<PathBuf>) -> Option<&str> {
        mount.as_deref().and_then(Path::to_str)
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn hybrid_host_of_this_project() {
        let text = fixture("linux-6.18-procfs/mountinfo-hybrid");
        let l = Layout::from_mountinfo(Path::new("/sys/fs/cgroup"), &text).unwrap();
        assert_eq!(l.kind, LayoutKind::Hybrid);
        assert_eq!(at(&l.unified), Some("/sys/fs/cgroup/unified"));
        assert_eq!(at(&l.memory), Some("/sys/fs/cgroup/memory"));
        assert_eq!(at(&l.cpuacct), Some("/sys/fs/cgroup/cpuacct"));
        assert_eq!(l.discovery_root(), Path::new("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn pure_v2_vm() {
        let text = fixture("linux-6.1-procfs/mountinfo");
        let l = Layout::from_mountinfo(Path::new("/sys/fs/cgroup"), &text).unwrap();
        assert_eq!(l.kind, LayoutKind::V2);
        assert_eq!(l.discovery_root(), Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn co_mounted_v1_and_elsewhere_root() {
        let text = "30 25 0:26 / /host/sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                    31 25 0:27 / /host/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                    32 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let l = Layout::from_mountinfo(Path::new("/host/sys/fs/cgroup"), text.as_bytes()).unwrap();
        assert_eq!(l.kind, LayoutKind::V1);
        assert_eq!(l.cpu, l.cpuacct);
        assert_eq!(at(&l.memory), Some("/host/sys/fs/cgroup/memory"));
    }

    #[test]
    fn a_line_that_cannot_be_parsed_costs_only_itself() {
        let mut text = fixture("linux-6.18-procfs/mountinfo-hybrid");
        // A mount point that is not UTF-8 (the kernel allows any byte but NUL and `/` in a
        // name), and a line of nonsense.
        text.extend_from_slice(b"99 1 0:99 / /mnt/\xff\xfe rw - tmpfs tmpfs rw\ngarbage\n");
        let l = Layout::from_mountinfo(Path::new("/sys/fs/cgroup"), &text).unwrap();
        assert_eq!(l.kind, LayoutKind::Hybrid);
        let err = Layout::from_mountinfo(Path::new("/sys/fs/cgroup"), b"garbage\n").unwrap_err();
        assert!(err.to_string().contains("mountinfo line 1"), "{err}");
    }

    #[test]
    fn any_single_v1_controller_is_a_discovery_root() {
        // Found by the mountinfo fuzz target: only `cpuacct` (or `blkio`) mounted under the
        // root made `discovery_root` panic.
        for opt in ["cpuacct", "blkio", "cpu", "memory", "pids", "name=systemd"] {
            let text =
                format!("33 31 0:30 / /sys/fs/cgroup/x rw,relatime - cgroup cgroup rw,{opt}\n");
            let l = Layout::from_mountinfo(Path::new("/sys/fs/cgroup"), text.as_bytes()).unwrap();
            assert_eq!(l.kind, LayoutKind::V1, "{opt}");
            assert_eq!(l.discovery_root(), Path::new("/sys/fs/cgroup/x"), "{opt}");
        }
    }

    #[test]
    fn nothing_mounted_is_a_clear_error() {
        let err = Layout::from_mounts(Path::new("/nowhere"), &[]).unwrap_err();
        assert!(err.to_string().contains("--cgroup-root"), "{err}");
    }
}
