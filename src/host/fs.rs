//! Opening and reading the kernel's files safely: only regular files, never blocking, so that a
//! FIFO or device put where a cgroup or procfs file should be cannot hang a reader; and reading a
//! whole file with `pread` at offset 0, which on cgroupfs and procfs regenerates the content, so
//! a descriptor kept open gives fresh values at every read. "Gone" (`ENOENT`, `ENODEV`) and "out
//! of descriptors" (`EMFILE`, `ENFILE`) are told apart here, once.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstat};

/// Reads above this size are treated as truncated rather than grown without bound.
pub const MAX_READ: usize = 4 << 20;

/// Why a file could not be opened.
pub enum OpenFail {
    /// Not there: this kernel or controller does not offer it, or the cgroup is gone.
    Absent,
    /// The process (EMFILE) or the system (ENFILE) has no descriptor to give.
    OutOfDescriptors,
    Other(io::Error),
}

impl OpenFail {
    pub fn into_io(self) -> io::Error {
        match self {
            OpenFail::Absent => io::Error::from_raw_os_error(Errno::ENOENT as i32),
            OpenFail::OutOfDescriptors => io::Error::from_raw_os_error(Errno::EMFILE as i32),
            OpenFail::Other(e) => e,
        }
    }
}

/// [`open_regular`] by path, as an `io::Result` (`NotFound` when it is not there).
pub fn open_file(path: &Path) -> io::Result<File> {
    open_regular(None, path).map_err(OpenFail::into_io)
}

/// Opens `path` (relative to `dir` when given) for reading, but only if it is a regular file
/// (every cgroup and procfs file read here is one): never blocking, so that a FIFO or a device
/// put where a cgroup file should be cannot hang the collector.
pub fn open_regular(
    dir: Option<std::os::fd::BorrowedFd<'_>>,
    path: &Path,
) -> Result<File, OpenFail> {
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let fd = match dir {
        Some(d) => openat(d, path, flags, Mode::empty()),
        None => nix::fcntl::open(path, flags, Mode::empty()),
    };
    let file = opened(fd)?;
    match fstat(file.as_fd()) {
        Ok(st) if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFREG.bits() => Ok(file),
        Ok(_) => Err(OpenFail::Other(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a cgroup file always is): not read",
        ))),
        Err(e) => Err(OpenFail::Other(e.into())),
    }
}

/// Opens a file below a directory of a cgroup filesystem (`dir`), where every file is a
/// regular one, so that unlike [`open_regular`] it is not checked with `fstat`: opening is
/// most of what a container's rarely read files cost.
pub fn open_cgroup_file(dir: std::os::fd::BorrowedFd<'_>, path: &Path) -> Result<File, OpenFail> {
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    opened(openat(dir, path, flags, Mode::empty()))
}

/// An `open`'s result as an [`OpenFail`].
fn opened(fd: nix::Result<std::os::fd::OwnedFd>) -> Result<File, OpenFail> {
    match fd {
        Ok(fd) => Ok(File::from(fd)),
        Err(e) if gone_errno(e) => Err(OpenFail::Absent),
        Err(Errno::EMFILE | Errno::ENFILE) => Err(OpenFail::OutOfDescriptors),
        Err(e) => Err(OpenFail::Other(e.into())),
    }
}

/// The whole of a file that must be a regular one (`mountinfo`), opened never blocking: a
/// FIFO in its place is refused at once instead of blocking the open.
pub fn read_regular_file(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = open_file(path)?;
    let mut out = Vec::new();
    file.read_to_end(&mut out)?;
    Ok(out)
}

/// The process (EMFILE) or the system (ENFILE) has no descriptor to give.
pub fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE)
    )
}

pub fn gone_errno(e: Errno) -> bool {
    matches!(e, Errno::ENOENT | Errno::ENODEV)
}

/// A new, empty directory for a test, named by `name`, the process and the thread.
#[cfg(test)]
pub fn test_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "ce-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `pread` at offset 0 until the whole content fits in `buf` (grown as needed, up to
/// `MAX_READ`). Returns the number of bytes read.
pub fn pread_all(file: &File, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.len() < 4096 {
        buf.resize(4096, 0);
    }
    loop {
        let n = file.read_at(buf, 0)?;
        if n < buf.len() || buf.len() >= MAX_READ {
            return Ok(n);
        }
        // Filled the buffer: the file may be longer. Re-read from 0 with more room, so
        // the content comes from one generation.
        let bigger = (buf.len() * 2).min(MAX_READ);
        buf.resize(bigger, 0);
    }
}
