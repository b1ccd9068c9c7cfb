//! Block device names for the cAdvisor page's `device` label: `MAJ:MIN` (what `io.stat` and
//! blkio say) becomes `/dev/<name>`, the name in `/sys/dev/block/MAJ:MIN/uevent`'s
//! `DEVNAME`, as cAdvisor writes it and as dashboards select it
//! (`device=~"(/dev/)?(nvme.+|sd.+|vd.+|…)"`).
//!
//! Each device is looked up once and remembered (names of devices that cannot be resolved
//! too, as their `MAJ:MIN`), so a render pays one map lookup per point, never a file read. The
//! map is bounded by [`MAX_DEVICES`]: a host whose containers touched more distinct devices
//! than that starts over (every name is looked up again once).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use super::text::{ParseError, keyed_line, maj_min};

/// Devices remembered at most.
pub const MAX_DEVICES: usize = 4096;

/// FNV-1a, for keys of a few bytes that the kernel wrote (`MAJ:MIN`), looked up for every
/// device point of every render: SipHash's resistance to chosen keys buys nothing here and
/// costs more than the rest of the lookup.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub struct BlockNames {
    /// `/sys/dev/block`.
    root: PathBuf,
    /// `MAJ:MIN` → its place in `names` (an index, so a hit is one lookup that borrows
    /// nothing).
    index: HashMap<Box<str>, usize, BuildHasherDefault<Fnv>>,
    /// What to write for each device.
    names: Vec<Box<str>>,
}

impl Default for BlockNames {
    fn default() -> BlockNames {
        BlockNames::new(PathBuf::from(SYS_DEV_BLOCK))
    }
}

impl BlockNames {
    pub fn new(root: PathBuf) -> BlockNames {
        BlockNames {
            root,
            index: HashMap::default(),
            names: Vec::new(),
        }
    }

    /// The `device` value for `dev`: `/dev/<name>` for a `MAJ:MIN` the kernel names, the text
    /// itself for anything else (a device with no name, or a value that is no `MAJ:MIN`).
    pub fn name(&mut self, dev: &str) -> &str {
        let i = self.index_of(dev);
        &self.names[i]
    }

    fn index_of(&mut self, dev: &str) -> usize {
        if let Some(&i) = self.index.get(dev) {
            return i;
        }
        if self.names.len() >= MAX_DEVICES {
            self.index.clear();
            self.names.clear();
        }
        let name = self.resolve(dev);
        self.names.push(name);
        self.index.insert(dev.into(), self.names.len() - 1);
        self.names.len() - 1
    }

    fn resolve(&self, dev: &str) -> Box<str> {
        if maj_min(dev.as_bytes()).is_none() {
            return dev.into();
        }
        match dev_name(&self.root, dev) {
            Some(n) => n.into(),
            None => {
                tracing::debug!(
                    "{} gives no device name: `device` is {dev}",
                    self.root.join(dev).display()
                );
                dev.into()
            }
        }
    }

    /// Devices remembered (for tests of the bound).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// `/dev/<name>` of the block device `maj_min` (`MAJ:MIN`), from `<sys_dev_block>/MAJ:MIN/uevent`
/// (`sys_dev_block` is normally [`SYS_DEV_BLOCK`]), if the kernel names it showably.
pub fn dev_name(sys_dev_block: &Path, maj_min: &str) -> Option<String> {
    let uevent = std::fs::read(sys_dev_block.join(maj_min).join("uevent")).ok()?;
    let name = std::str::from_utf8(uevent_devname(&uevent).ok()?).ok()?;
    Some(format!("/dev/{name}"))
}

/// Where the kernel lists block devices by `MAJ:MIN`.
pub const SYS_DEV_BLOCK: &str = "/sys/dev/block";

/// The longest block device name shown; longer ones are not shown (the kernel's are short:
/// `nvme12n3p14`, `dm-7`).
pub const MAX_DEVNAME: usize = 64;

/// `/sys/dev/block/MAJ:MIN/uevent`: the `DEVNAME=` value, the device's name under `/dev`
/// (`vda`, `nvme0n1p2`, `dm-0`, `cciss/c0d0`), if it can be shown as it is: printable ASCII
/// without spaces, `..` or a leading `/`, at most [`MAX_DEVNAME`] bytes.
pub fn uevent_devname(buf: &[u8]) -> Result<&[u8], ParseError> {
    let (n, name) = keyed_line(buf, b"DEVNAME=", "no DEVNAME line")?;
    let showable = !name.is_empty()
        && name.len() <= MAX_DEVNAME
        && name.iter().all(|b| b.is_ascii_graphic())
        && name[0] != b'/'
        && !name.windows(2).any(|w| w == b"..");
    if showable {
        Ok(name)
    } else {
        Err(ParseError::malformed(
            n,
            "DEVNAME is not a device name that can be shown",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_uevent_once() {
        let dir = crate::host::fs::test_dir("block-names");
        std::fs::create_dir_all(dir.join("254:0")).unwrap();
        std::fs::write(
            dir.join("254:0/uevent"),
            "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.join("7:9")).unwrap();
        std::fs::write(dir.join("7:9/uevent"), "MAJOR=7\nMINOR=9\n").unwrap();
        let mut names = BlockNames::new(dir.clone());
        assert_eq!(names.name("254:0"), "/dev/vda");
        // Remembered: the file is not read again.
        std::fs::remove_dir_all(dir.join("254:0")).unwrap();
        assert_eq!(names.name("254:0"), "/dev/vda");
        // No name, no file, not a device number: the text itself.
        assert_eq!(names.name("7:9"), "7:9");
        assert_eq!(names.name("8:0"), "8:0");
        assert_eq!(names.name("../../etc"), "../../etc");
        assert_eq!(names.len(), 4);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_map_stays_bounded() {
        let mut names = BlockNames::new(PathBuf::from("/nonexistent"));
        for i in 0..(MAX_DEVICES as u32 * 2 + 5) {
            let dev = format!("8:{i}");
            assert_eq!(names.name(&dev), dev);
            assert!(names.len() <= MAX_DEVICES);
        }
    }

    #[test]
    fn uevent_names() {
        let uevent = b"MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\nDISKSEQ=9\n";
        assert_eq!(uevent_devname(uevent), Ok(&b"vda"[..]));
        for bad in [
            &b"MAJOR=7\n"[..],
            b"DEVNAME=\n",
            b"DEVNAME=a b\n",
            b"DEVNAME=../x\n",
            b"DEVNAME=/dev/x\n",
            b"DEVNAME=v\x01da\n",
            b"DEVNAME=vda",
        ] {
            assert!(uevent_devname(bad).is_err(), "{bad:?}");
        }
    }
}
