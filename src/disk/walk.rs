//! `du -s -x -P` of one directory, in slices: space (`st_blocks × 512`) and inodes of
//! everything below a root, a hard-linked file counted once, never crossing into another
//! mount, never following a symlink, never opening anything but a directory (so nothing can
//! block it), and stoppable after any entry. Memory is bounded by depth ([`MAX_DEPTH`]) and by
//! the hard links remembered ([`MAX_LINKS`]); a walk that could not see everything
//! ([`Incomplete`]) has no figure to publish. How, and why: `docs/disk.md`, "As `du` counts".
//! The tests compare each figure with `du`'s on the same tree.

use std::collections::HashSet;
use std::ffi::{CStr, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use nix::sys::statvfs::fstatvfs;

/// Directories open at once in one walk, at most (each holds a descriptor).
pub const MAX_DEPTH: usize = 64;

/// Hard-linked files remembered per walk, at most (about 40 bytes each).
pub const MAX_LINKS: usize = 65_536;

/// How often (in entries) a slice looks at the clock.
const CLOCK_EVERY: u64 = 64;

/// Bytes and inodes, as `du -s -B1` and `du -s --inodes` count them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub inodes: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.inodes = self.inodes.saturating_add(o.inodes);
    }
}

/// What `statvfs` says of the filesystem a walk was on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FsStat {
    /// Total size (`f_blocks × f_frsize`).
    pub capacity: u64,
    /// Free to unprivileged users (`f_bavail × f_frsize`), as `df` and the kubelet say.
    pub available: u64,
    /// Free inodes (`f_ffree`).
    pub inodes_free: u64,
    /// `st_dev` of the root.
    pub dev: u64,
}

/// Why a walk's figure is not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Incomplete {
    /// A directory could not be read (the path below the root, lossy UTF-8).
    #[error("permission denied reading {0}")]
    Denied(String),
    /// Directories nested deeper than [`MAX_DEPTH`].
    #[error("directories nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// The root was removed while it was walked.
    #[error("removed while it was walked")]
    Vanished,
    /// The process ran out of descriptors (`EMFILE`) while walking.
    #[error("out of file descriptors while walking")]
    Descriptors,
}

/// Whether a slice finished the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Done,
    Paused,
}

/// The next entry of an open directory's listing. nix's iterator rewinds the directory when it
/// is dropped; it is forgotten instead (it owns nothing: the `Dir` does), so the listing goes
/// on where it stopped, between slices too.
fn next_entry(dir: &mut Dir) -> Option<nix::Result<nix::dir::Entry>> {
    let mut it = dir.iter();
    let e = it.next();
    std::mem::forget(it);
    e
}

/// A walk in progress; see the module doc.
pub struct Walk {
    dev: u64,
    /// The open directories, root first: each one's descriptor (for the `*at` calls) and its
    /// listing, which stays where it was between slices.
    stack: Vec<Dir>,
    /// Names of the open directories below the root (for the one line that names a denied
    /// directory): bounded by depth like the stack.
    names: Vec<Vec<u8>>,
    root: OwnedFd,
    usage: Usage,
    /// Links counted by share past [`MAX_LINKS`], in 1/nlink parts of bytes (kept apart and
    /// rounded once at the end).
    shared_bytes: f64,
    shared_inodes: f64,
    links: HashSet<(u64, u64)>,
    denied: Option<String>,
    too_deep: bool,
    out_of_fds: bool,
    /// Entries looked at so far (for the cost figures).
    pub entries: u64,
    /// Mount points met and not entered.
    pub mounts_skipped: u64,
    /// Entries gone before they could be looked at.
    pub vanished: u64,
    no_xdev: bool,
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC
}

/// The space a file takes, as `du` counts it.
pub fn space(st: &FileStat) -> u64 {
    (st.st_blocks.max(0) as u64).saturating_mul(512)
}

fn is_dir(st: &FileStat) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits()
}

/// Opens the host's root (`--host-root`), the `base` every host path is resolved in.
pub fn open_root(path: &Path) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    nix::fcntl::open(path, flags, Mode::empty())
}

/// Opens `path` below `base` as a directory, resolving it as if `base` were `/` (symlinks
/// inside it stay inside: a host path read through `--host-root` cannot lead back into the
/// exporter's own filesystem). Kernels before 5.6 lack `openat2`: then a plain `openat`.
pub fn open_dir_in(base: &OwnedFd, path: &Path) -> nix::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(dir_flags())
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(base.as_fd(), rel, how) {
        Err(Errno::ENOSYS) => openat(base.as_fd(), rel, dir_flags(), Mode::empty()),
        r => r,
    }
}

impl Walk {
    /// Starts a walk of the directory `fd` (the root itself is counted, as `du` does).
    pub fn new(root: OwnedFd) -> nix::Result<Walk> {
        let st = fstat(root.as_fd())?;
        if !is_dir(&st) {
            return Err(Errno::ENOTDIR);
        }
        let listing = openat(root.as_fd(), ".", dir_flags(), Mode::empty())?;
        let dir = Dir::from_fd(listing)?;
        let mut w = Walk {
            dev: st.st_dev,
            stack: vec![dir],
            names: Vec::new(),
            root,
            usage: Usage::default(),
            shared_bytes: 0.0,
            shared_inodes: 0.0,
            links: HashSet::new(),
            denied: None,
            too_deep: false,
            out_of_fds: false,
            entries: 1,
            mounts_skipped: 0,
            vanished: 0,
            no_xdev: true,
        };
        w.count(&st);
        Ok(w)
    }

    /// Opens `path` (resolved in `base`, see [`open_dir_in`]) and starts walking it.
    pub fn open_in(base: &OwnedFd, path: &Path) -> nix::Result<Walk> {
        Walk::new(open_dir_in(base, path)?)
    }

    /// Walks on until done, or until `max_entries` more entries were looked at, or `until`
    /// has passed (checked every few dozen entries).
    pub fn step(&mut self, max_entries: u64, until: Instant) -> Progress {
        let stop_at = self.entries.saturating_add(max_entries.max(1));
        while let Some(dir) = self.stack.last_mut() {
            if self.entries >= stop_at
                || (self.entries % CLOCK_EVERY == 0 && Instant::now() >= until)
            {
                return Progress::Paused;
            }
            let entry = match next_entry(dir) {
                Some(Ok(e)) => e,
                // The listing is over, or (an error) the directory was removed under us
                // (ENOENT) or is unreadable midway: what was listed so far stays counted.
                end => {
                    self.vanished += u64::from(end.is_some());
                    self.stack.pop();
                    self.names.pop();
                    continue;
                }
            };
            let name = entry.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            self.entries += 1;
            self.visit(name);
        }
        Progress::Done
    }

    fn visit(&mut self, name: &CStr) {
        let Some(dir) = self.stack.last() else {
            return;
        };
        let st = match fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) => return self.not_entered(e, None),
        };
        if st.st_dev != self.dev {
            // A mount of another filesystem: neither counted nor entered (`du -x`).
            self.mounts_skipped += 1;
            return;
        }
        self.count(&st);
        if !is_dir(&st) {
            return;
        }
        if self.stack.len() >= MAX_DEPTH {
            self.too_deep = true;
            return;
        }
        let fd = match self.open_child(name) {
            Ok(fd) => fd,
            Err(e) => return self.not_entered(e, Some(name)),
        };
        match Dir::from_fd(fd) {
            Ok(dir) => {
                self.stack.push(dir);
                self.names.push(name.to_bytes().to_vec());
            }
            Err(_) => self.vanished += 1,
        }
    }

    /// Notes why an entry (`child`, when it is a directory being opened) was not counted or
    /// entered.
    fn not_entered(&mut self, e: Errno, child: Option<&CStr>) {
        match e {
            // A mount point of the same filesystem (a bind mount).
            Errno::EXDEV => self.mounts_skipped += 1,
            Errno::EACCES | Errno::EPERM => self.deny(child),
            Errno::EMFILE | Errno::ENFILE => self.out_of_fds = true,
            // Gone since `readdir`, replaced by what is not a directory, or unreadable.
            _ => self.vanished += 1,
        }
    }

    fn open_child(&mut self, name: &CStr) -> nix::Result<OwnedFd> {
        let parent = self.stack.last().expect("an open directory");
        if self.no_xdev {
            let how = OpenHow::new()
                .flags(dir_flags())
                .resolve(ResolveFlag::RESOLVE_NO_XDEV | ResolveFlag::RESOLVE_NO_SYMLINKS);
            match openat2(parent.as_fd(), name, how) {
                Err(Errno::ENOSYS) => self.no_xdev = false,
                r => return r,
            }
        }
        openat(parent.as_fd(), name, dir_flags(), Mode::empty())
    }

    fn deny(&mut self, child: Option<&CStr>) {
        if self.denied.is_some() {
            return;
        }
        let mut p = PathBuf::from(".");
        for n in &self.names {
            p.push(OsStr::from_bytes(n));
        }
        if let Some(c) = child {
            p.push(OsStr::from_bytes(c.to_bytes()));
        }
        self.denied = Some(p.to_string_lossy().into_owned());
    }

    fn count(&mut self, st: &FileStat) {
        let bytes = space(st);
        if st.st_nlink > 1 && !is_dir(st) {
            let key = (st.st_dev, st.st_ino);
            if self.links.contains(&key) {
                return;
            }
            if self.links.len() < MAX_LINKS {
                self.links.insert(key);
            } else {
                let n = st.st_nlink as f64;
                self.shared_bytes += bytes as f64 / n;
                self.shared_inodes += 1.0 / n;
                return;
            }
        }
        self.usage += Usage { bytes, inodes: 1 };
    }

    /// Descriptors the walk holds now.
    pub fn fds(&self) -> usize {
        1 + self.stack.len()
    }

    /// The result, once [`step`](Self::step) said [`Progress::Done`]: the usage and the
    /// filesystem's figures, or why the usage is not to be published.
    pub fn finish(self) -> Result<(Usage, FsStat), Incomplete> {
        if let Some(d) = self.denied {
            return Err(Incomplete::Denied(d));
        }
        if self.too_deep {
            return Err(Incomplete::TooDeep);
        }
        if self.out_of_fds {
            return Err(Incomplete::Descriptors);
        }
        // A removed directory keeps no link: the container (or its log) is gone.
        if fstat(self.root.as_fd()).is_ok_and(|st| st.st_nlink == 0) {
            return Err(Incomplete::Vanished);
        }
        let fs = fstatvfs(self.root.as_fd())
            .map(|s| {
                let frsize = s.fragment_size();
                FsStat {
                    capacity: s.blocks().saturating_mul(frsize),
                    available: s.blocks_available().saturating_mul(frsize),
                    inodes_free: s.files_free(),
                    dev: self.dev,
                }
            })
            .unwrap_or(FsStat {
                dev: self.dev,
                ..FsStat::default()
            });
        let mut usage = self.usage;
        usage += Usage {
            bytes: self.shared_bytes.round() as u64,
            inodes: self.shared_inodes.round() as u64,
        };
        Ok((usage, fs))
    }

    /// Walks the whole tree at once (for `snapshot` and tests).
    pub fn run(mut self) -> Result<(Usage, FsStat), Incomplete> {
        let far = Instant::now() + std::time::Duration::from_secs(86_400);
        while self.step(u64::MAX, far) == Progress::Paused {}
        self.finish()
    }
}

/// Space and inodes of the entries of the directory `dir` whose names start with `prefix`
/// (a log file and its rotations: `<id>-json.log`, `<id>-json.log.1`, …), each `fstatat`ed,
/// hard links once, directories not entered. One listing of a small directory.
pub fn files_with_prefix(base: &OwnedFd, dir: &Path, prefix: &[u8]) -> nix::Result<Usage> {
    let fd = open_dir_in(base, dir)?;
    let dev = fstat(fd.as_fd())?.st_dev;
    let listing = openat(fd.as_fd(), ".", dir_flags(), Mode::empty())?;
    let mut usage = Usage::default();
    let mut seen = HashSet::new();
    for entry in Dir::from_fd(listing)?.into_iter().flatten() {
        let name = entry.file_name();
        if !name.to_bytes().starts_with(prefix) {
            continue;
        }
        let Ok(st) = fstatat(fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        if st.st_dev != dev || (st.st_nlink > 1 && !seen.insert(st.st_ino)) {
            continue;
        }
        usage += Usage {
            bytes: space(&st),
            inodes: 1,
        };
    }
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fs::test_dir;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::time::Duration;

    fn root() -> OwnedFd {
        nix::fcntl::open("/", dir_flags(), Mode::empty()).unwrap()
    }

    /// `du -s -x -B1` and `du -s -x --inodes` of `p`, the independent figure.
    fn du(p: &Path) -> Usage {
        let run = |arg: &str| -> u64 {
            let out = std::process::Command::new("du")
                .args(["-s", "-x", arg])
                .arg(p)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        Usage {
            bytes: run("-B1"),
            inodes: run("--inodes"),
        }
    }

    #[test]
    fn counts_as_du_does_in_any_slice_size() {
        let d = test_dir("walk-du");
        fs::create_dir_all(d.join("a/b/c")).unwrap();
        for i in 0..300 {
            fs::write(d.join(format!("a/f{i}")), vec![7u8; i * 37]).unwrap();
        }
        fs::write(d.join("a/b/c/big"), vec![1u8; 1 << 20]).unwrap();
        fs::hard_link(d.join("a/b/c/big"), d.join("a/big-link")).unwrap();
        fs::hard_link(d.join("a/b/c/big"), d.join("a/b/big-link2")).unwrap();
        symlink("a", d.join("loop-a")).unwrap();
        symlink(".", d.join("a/self")).unwrap();
        symlink("../../..", d.join("a/b/c/up")).unwrap();
        // A name that is not UTF-8.
        fs::write(d.join(OsStr::from_bytes(b"caf\xe9-\xff")), b"x").unwrap();
        nix::unistd::mkfifo(&d.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        let want = du(&d);
        for slice in [1, 3, 64, u64::MAX] {
            let mut w = Walk::open_in(&root(), &d).unwrap();
            let far = Instant::now() + Duration::from_secs(60);
            let mut slices = 0;
            while w.step(slice, far) == Progress::Paused {
                slices += 1;
                assert!(w.fds() <= 1 + MAX_DEPTH);
            }
            if slice == 1 {
                assert!(slices > 300, "{slices}");
            }
            let (got, fs) = w.finish().unwrap();
            assert_eq!(got, want, "slice {slice}");
            assert!(fs.capacity > 0 && fs.available <= fs.capacity);
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn never_enters_another_mount() {
        let d = test_dir("walk-mount");
        fs::create_dir_all(d.join("m")).unwrap();
        fs::write(d.join("f"), vec![1u8; 8192]).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "ce-walk-test"])
            .arg(d.join("m"))
            .status()
            .unwrap();
        assert!(st.success());
        fs::write(d.join("m/inside"), vec![1u8; 1 << 20]).unwrap();
        let want = du(&d);
        let got = Walk::open_in(&root(), &d).unwrap().run();
        let _ = std::process::Command::new("umount")
            .arg(d.join("m"))
            .status();
        let (got, _) = got.unwrap();
        assert_eq!(got, want);
        assert!(got.bytes < 1 << 20);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_root_removed_midway_is_vanished() {
        let d = test_dir("walk-vanish");
        for i in 0..50 {
            fs::create_dir_all(d.join(format!("d{i}"))).unwrap();
            fs::write(d.join(format!("d{i}/f")), b"x").unwrap();
        }
        let mut w = Walk::open_in(&root(), &d).unwrap();
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(w.step(5, far), Progress::Paused);
        fs::remove_dir_all(&d).unwrap();
        while w.step(5, far) == Progress::Paused {}
        assert_eq!(w.finish().unwrap_err(), Incomplete::Vanished);
    }

    #[test]
    fn too_deep_is_not_published() {
        let d = test_dir("walk-deep");
        let mut p = d.clone();
        for _ in 0..MAX_DEPTH + 2 {
            p.push("d");
        }
        fs::create_dir_all(&p).unwrap();
        let r = Walk::open_in(&root(), &d).unwrap().run();
        assert_eq!(r.unwrap_err(), Incomplete::TooDeep);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn log_files_by_prefix() {
        let d = test_dir("walk-logs");
        fs::write(d.join("abc-json.log"), vec![1u8; 5000]).unwrap();
        fs::write(d.join("abc-json.log.1"), vec![1u8; 9000]).unwrap();
        fs::write(d.join("config.v2.json"), vec![1u8; 9000]).unwrap();
        let u = files_with_prefix(&root(), &d, b"abc-json.log").unwrap();
        let mut want = du(&d.join("abc-json.log"));
        want += du(&d.join("abc-json.log.1"));
        assert_eq!(u, want);
        fs::remove_dir_all(&d).unwrap();
    }
}
