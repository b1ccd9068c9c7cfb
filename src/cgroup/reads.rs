//! How many times each cgroup file (and `net/dev`) was read, counted where the reads are
//! made: for the self-metric `container_exporter.cgroup.reads`, so that what a tick costs in
//! system calls is seen on the page, and for `benches/floor.rs`, whose stricter floor prices
//! exactly these reads. Process-wide: the daemon has one collector.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::plan::{FileDef, Layouts, PLAN};

/// One slot per row of [`PLAN`], and the last two for `net/dev` and `cgroup.procs`.
const SLOTS: usize = 64;
const NET_DEV: usize = SLOTS - 2;
const PROCS: usize = SLOTS - 1;

static READS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

/// Each row's name as counted: `<hierarchy>/<file>` on cgroup v1 and hybrid hosts (where
/// `cpu.stat` is in two hierarchies), the file's name on cgroup v2.
static LABELS: LazyLock<Vec<String>> = LazyLock::new(|| PLAN.iter().map(label).collect());

fn label(def: &FileDef) -> String {
    match def.layouts {
        Layouts::V2 => def.name.to_owned(),
        Layouts::V1 => format!("{}/{}", def.hier.dir(), def.name),
    }
}

/// A read of row `row` of `plan` (counted only for the daemon's own plan).
pub(super) fn count(plan: &'static [FileDef], row: u32) {
    let row = row as usize;
    if std::ptr::eq(plan, PLAN) && row < NET_DEV {
        READS[row].fetch_add(1, Relaxed);
    }
}

/// A read of a container's `net/dev`.
pub(super) fn count_net_dev() {
    READS[NET_DEV].fetch_add(1, Relaxed);
}

/// A read of a container's `cgroup.procs`, for a process whose `net/dev` to open (whichever
/// hierarchy's).
pub(super) fn count_procs() {
    READS[PROCS].fetch_add(1, Relaxed);
}

/// Every file read at least once, with how many times.
pub fn counts() -> impl Iterator<Item = (&'static str, u64)> {
    let labels = &*LABELS;
    let files = (labels.iter().enumerate()).map(|(i, l)| (l.as_str(), READS[i].load(Relaxed)));
    let others = [("net/dev", NET_DEV), ("cgroup.procs", PROCS)];
    let others = others.map(|(name, slot)| (name, READS[slot].load(Relaxed)));
    files.chain(others).filter(|&(_, n)| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_a_slot_and_a_name_of_its_own() {
        assert!(
            PLAN.len() < NET_DEV,
            "{} rows for {NET_DEV} slots",
            PLAN.len()
        );
        let mut names: Vec<(Layouts, &str)> = (PLAN.iter().zip(LABELS.iter()))
            .map(|(d, l)| (d.layouts, l.as_str()))
            .collect();
        let n = names.len();
        names.sort_by_key(|&(l, s)| (l == Layouts::V2, s));
        names.dedup();
        assert_eq!(names.len(), n, "two rows of one layout under one name");
    }
}
