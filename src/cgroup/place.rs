//! Naming what a container's reader is stuck on, when a read or an open does not return: the
//! reader leaves a mark in the [`progress`] word before each operation (one store: a kind from
//! [`doing`] and an index), and its [`ReaderPlace`] turns the mark into a path
//! (`reading /sys/fs/cgroup/memory/docker/<id>/memory.stat`) only when someone asks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::layout::Layout;
use super::plan::{FileDef, Hier};
use crate::progress;

/// What the reader's marks in the [`progress`] word mean: the kind, with the index it goes
/// with.
pub(super) mod doing {
    /// Reading a file of the plan (its row).
    pub const READ: u8 = 0;
    /// Opening a file of the plan (its row).
    pub const OPEN: u8 = 1;
    /// Opening the container's directory in a hierarchy (its index in `Hier::ALL`).
    pub const OPEN_DIR: u8 = 2;
    /// Reading `net/dev` of one of its processes.
    pub const NET: u8 = 3;
}

/// A container's paths, for naming what its reader is stuck on.
pub(super) struct ReaderPlace {
    layout: Arc<Layout>,
    plan: &'static [FileDef],
    rel: PathBuf,
}

impl ReaderPlace {
    /// The slot a reader of the container at `rel`, reading `plan`, marks its operations in.
    pub(super) fn slot(layout: &Layout, plan: &'static [FileDef], rel: &Path) -> progress::Slot {
        progress::Slot::new(Arc::new(ReaderPlace {
            layout: shared_layout(layout),
            plan,
            rel: rel.to_path_buf(),
        }))
    }
}

impl progress::Place for ReaderPlace {
    fn describe(&self, kind: u8, index: u32) -> String {
        let in_hier = |hier: Hier| {
            hier.mount(&self.layout)
                .unwrap_or(self.layout.discovery_root())
                .join(&self.rel)
        };
        match kind {
            doing::READ | doing::OPEN => {
                let verb = if kind == doing::READ {
                    "reading"
                } else {
                    "opening"
                };
                match self.plan.get(index as usize) {
                    Some(def) => format!("{verb} {}", in_hier(def.hier).join(def.name).display()),
                    None => format!("{verb} a file of {}", in_hier(Hier::Unified).display()),
                }
            }
            doing::OPEN_DIR => match Hier::ALL.get(index as usize) {
                Some(&h) => format!("opening {}", in_hier(h).display()),
                None => format!("opening {}", self.rel.display()),
            },
            _ => format!(
                "reading net/dev of a process of {}",
                self.layout.discovery_root().join(&self.rel).display()
            ),
        }
    }
}

/// The layout the places of the readers share (one per process in practice).
fn shared_layout(layout: &Layout) -> Arc<Layout> {
    static LAST: Mutex<Option<Arc<Layout>>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    match &*last {
        Some(l) if **l == *layout => l.clone(),
        _ => {
            let l = Arc::new(layout.clone());
            *last = Some(l.clone());
            l
        }
    }
}
