//! The mount table of a process, `/proc/<pid>/mountinfo` (see `proc(5)`): `ID PARENT MAJ:MIN
//! ROOT MOUNTPOINT OPTIONS [TAGS…] - FSTYPE SOURCE SUPER_OPTIONS`. The one parser of it, for
//! the cgroup layout (which hierarchies are mounted where, `cgroup::layout`) and for disk usage
//! (the mount at `/` of a container's process names its writable layer; the source of a
//! filesystem names its device).
//!
//! The kernel escapes space, tab, newline and backslash in paths as `\ooo`, and overlay escapes
//! commas in its option values the same way, so options split at commas and are then unescaped.
//! Paths are bytes: a mount point need not be UTF-8, and a line that does not have mountinfo's
//! shape costs only itself.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// The mount at `/` of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootMount {
    /// `MAJ:MIN` of the mounted filesystem.
    pub dev: (u32, u32),
    /// The directory of that filesystem mounted there (`/` for a whole filesystem).
    pub root: Vec<u8>,
    pub fstype: String,
    pub source: Vec<u8>,
    /// overlay's `upperdir=`, unescaped: the writable layer.
    pub upperdir: Option<PathBuf>,
}

impl RootMount {
    /// Whether two processes see the same root (a process that has not entered its
    /// container's mount namespace yet has the host's).
    pub fn same_as(&self, other: &RootMount) -> bool {
        self.dev == other.dev && self.root == other.root && self.fstype == other.fstype
    }
}

/// Undoes mountinfo's `\ooo` escapes.
pub fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 3 < s.len()
            && s[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (s[i + 1] - b'0') as u32 * 64
                + (s[i + 2] - b'0') as u32 * 8
                + (s[i + 3] - b'0') as u32;
            if let Ok(b) = u8::try_from(v) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// One line's fields, still escaped as the kernel wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mount<'a> {
    /// `MAJ:MIN` of the mounted filesystem.
    pub dev: (u32, u32),
    /// The directory of that filesystem mounted here (`/` for a whole filesystem).
    pub root: &'a [u8],
    pub mount_point: &'a [u8],
    pub fstype: &'a [u8],
    pub source: &'a [u8],
    /// The filesystem's own options (overlay's `upperdir=`, a v1 cgroup's controllers).
    pub options: &'a [u8],
}

impl Mount<'_> {
    /// The mount point, unescaped, as a path.
    pub fn mount_point(&self) -> PathBuf {
        PathBuf::from(OsString::from_vec(unescape(self.mount_point)))
    }

    /// The filesystem's own options, split at commas and unescaped, lossily as text.
    pub fn options(&self) -> impl Iterator<Item = String> + '_ {
        self.options
            .split(|&b| b == b',')
            .filter(|o| !o.is_empty())
            .map(|o| String::from_utf8_lossy(&unescape(o)).into_owned())
    }
}

/// Every line of a mountinfo text: its fields, or, for a line that does not have mountinfo's
/// shape, its 1-based number. Empty lines are passed over.
pub fn mounts(text: &[u8]) -> impl Iterator<Item = Result<Mount<'_>, usize>> {
    text.split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(n, l)| fields(l).ok_or(n + 1))
}

fn fields(line: &[u8]) -> Option<Mount<'_>> {
    let mut it = line.split(|&b| b == b' ');
    let _id = it.next()?;
    let _parent = it.next()?;
    let dev = super::text::maj_min(it.next()?)?;
    let root = it.next()?;
    let mount_point = it.next()?;
    // Optional fields up to the lone `-`.
    it.by_ref().find(|f| *f == b"-")?;
    let fstype = it.next()?;
    let source = it.next()?;
    let options = it.next().unwrap_or(b"");
    Some(Mount {
        dev,
        root,
        mount_point,
        fstype,
        source,
        options,
    })
}

/// The mount at `/` (the last one, if several are stacked there), from a mountinfo text.
pub fn root_mount(mountinfo: &[u8]) -> Option<RootMount> {
    let m = mounts(mountinfo)
        .flatten()
        .filter(|m| m.mount_point == b"/")
        .last()?;
    let fstype = String::from_utf8_lossy(m.fstype).into_owned();
    let upperdir = (fstype == "overlay")
        .then(|| {
            m.options.split(|&b| b == b',').find_map(|o| {
                o.strip_prefix(b"upperdir=")
                    .map(|v| PathBuf::from(OsString::from_vec(unescape(v))))
            })
        })
        .flatten();
    Some(RootMount {
        dev: m.dev,
        root: unescape(m.root),
        fstype,
        source: unescape(m.source),
        upperdir,
    })
}

/// The source (`/dev/vda1`) of a mount of the filesystem `dev`, from a mountinfo text:
/// cAdvisor's `device` label. The mount of the filesystem's own root is preferred.
pub fn source_of(mountinfo: &[u8], dev: (u32, u32)) -> Option<String> {
    let mut any = None;
    for m in mounts(mountinfo).flatten().filter(|m| m.dev == dev) {
        let s = String::from_utf8_lossy(&unescape(m.source)).into_owned();
        if m.root == b"/" {
            return Some(s);
        }
        any.get_or_insert(s);
    }
    any
}

/// `MAJ:MIN` of an `st_dev`.
pub fn split_dev(dev: u64) -> (u32, u32) {
    (
        nix::sys::stat::major(dev) as u32,
        nix::sys::stat::minor(dev) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on this project's machine: a Docker 20.10 container's root, and a host's.
    const DOCKER: &[u8] = b"77 52 0:40 / / rw,relatime master:2 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/V6JQFQXD6KIVCPSIDY7ARNEKR2:/var/lib/docker/overlay2/l/ZQMC4MU6ESGLBPTMEDVTKSHIGE,upperdir=/var/lib/docker/overlay2/3104626ae2da94a9d1ab2d7e21431db03bac216badde3cadc63f7c98bcbccded/diff,workdir=/var/lib/docker/overlay2/3104626ae2da94a9d1ab2d7e21431db03bac216badde3cadc63f7c98bcbccded/work\n78 77 0:43 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n";
    const HOST: &[u8] = b"22 27 0:21 / /proc rw,relatime - proc proc rw\n27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n28 27 0:25 / /mnt/x ro - tmpfs tmp ro\n";

    #[test]
    fn overlay_upperdir() {
        let m = root_mount(DOCKER).unwrap();
        assert_eq!(m.fstype, "overlay");
        assert_eq!(
            m.upperdir.unwrap(),
            PathBuf::from(
                "/var/lib/docker/overlay2/3104626ae2da94a9d1ab2d7e21431db03bac216badde3cadc63f7c98bcbccded/diff"
            )
        );
        let h = root_mount(HOST).unwrap();
        assert_eq!((h.fstype.as_str(), h.upperdir), ("ext4", None));
        assert_eq!(source_of(HOST, (254, 0)).as_deref(), Some("/dev/vda"));
        assert_eq!(source_of(HOST, (9, 9)), None);
    }

    #[test]
    fn escapes_and_stacked_roots() {
        let text = b"1 0 0:1 / / rw - ext4 /dev/sda rw\n2 1 0:50 / / rw shared:5 - overlay overlay rw,lowerdir=/a,upperdir=/var/lib/with\\040space\\054comma/diff,workdir=/w\n";
        let m = root_mount(text).unwrap();
        assert_eq!(m.dev, (0, 50));
        assert_eq!(
            m.upperdir.unwrap(),
            PathBuf::from("/var/lib/with space,comma/diff")
        );
        assert_eq!(unescape(b"a\\134b\\"), b"a\\b\\");
        assert_eq!(unescape(b"\\777"), b"\\777");
    }

    #[test]
    fn garbage_gives_nothing() {
        assert_eq!(root_mount(b""), None);
        assert_eq!(root_mount(b"1 2 3 / /\n"), None);
        assert_eq!(
            root_mount(b"x x x:x / / rw - overlay o upperdir=/a\n"),
            None
        );
        for cut in 0..DOCKER.len() {
            let _ = root_mount(&DOCKER[..cut]);
            let _ = source_of(&DOCKER[..cut], (0, 40));
        }
    }
}
