//! The disk thread's warnings, each logged once: per container (a layer that cannot be
//! opened, a walk that cannot finish) or per filesystem type (a root that is not overlay).
//! At most [`WARNED_MAX`] are remembered; past that they are all forgotten and may be
//! logged again.

use std::collections::HashSet;
use std::path::Path;

use super::jobs::Key;
use super::layer::Unreachable;
use super::walk::Incomplete;

/// Warnings remembered, at most.
pub const WARNED_MAX: usize = 4096;

#[derive(Default)]
pub struct Warnings {
    seen: HashSet<Warned>,
}

/// What was warned about.
#[derive(PartialEq, Eq, Hash)]
enum Warned {
    /// A root filesystem type other than overlay.
    NotOverlay(String),
    /// A container's layer that does not open.
    Unreachable(String),
    /// A container's or pod's walk that could not finish.
    Incomplete(Key),
}

impl Warnings {
    /// Whether `key` is new (to log once).
    fn once(&mut self, key: Warned) -> bool {
        if self.seen.len() >= WARNED_MAX {
            self.seen.clear();
        }
        self.seen.insert(key)
    }

    /// Container `id`'s root is `fstype`, not overlay.
    pub fn not_overlay(&mut self, id: &str, fstype: &str) {
        if self.once(Warned::NotOverlay(fstype.to_owned())) {
            tracing::info!(
                %id,
                fstype,
                "a container's root filesystem is {fstype}, not overlay: containers like it \
                 get no writable-layer usage (only overlay's upper directory is the \
                 container's own data; logged once per filesystem type)"
            );
        }
    }

    /// Container `id`'s writable layer does not open below `host_root`.
    pub fn unreachable(&mut self, id: &str, why: &Unreachable, host_root: &Path) {
        if self.once(Warned::Unreachable(id.to_owned())) {
            tracing::warn!(
                %id,
                host_root = %host_root.display(),
                "cannot open the container's writable layer ({why}): no disk usage for it. \
                 Is the host's / mounted at --host-root?"
            );
        }
    }

    /// The walk of `key` could not finish.
    pub fn incomplete(&mut self, key: &Key, why: &Incomplete) {
        let (what, id) = match key {
            Key::Layer(id) => ("the writable layer of container", id),
            Key::Pod(uid) => ("the emptyDir volumes of pod", uid),
        };
        if self.once(Warned::Incomplete(key.clone())) {
            let hint = match why {
                Incomplete::Denied(_) => {
                    " (the exporter needs CAP_DAC_READ_SEARCH to read every container's files)"
                }
                _ => "",
            };
            tracing::warn!(
                "{what} {id}: {why}{hint}; its usage is not shown while that lasts (warned once)"
            );
        }
    }
}
