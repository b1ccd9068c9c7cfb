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
use std::path::PathBuf;

use crate::cgroup::parse;

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
        BlockNames::new(PathBuf::from("/sys/dev/block"))
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
        let is_majmin = dev.split_once(':').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        });
        if !is_majmin {
            return dev.into();
        }
        let path = self.root.join(dev).join("uevent");
        let name = std::fs::read(&path)
            .ok()
            .and_then(|b| parse::uevent_devname(&b).ok().map(<[u8]>::to_vec));
        match name.map(String::from_utf8) {
            Some(Ok(n)) => format!("/dev/{n}").into(),
            _ => {
                tracing::debug!("{} gives no device name: `device` is {dev}", path.display());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_uevent_once() {
        let dir = std::env::temp_dir().join(format!("ce-block-names-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
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
}
