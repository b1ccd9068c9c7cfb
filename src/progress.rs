//! What the thread that reads the cgroup tree is doing right now, so that a read that never
//! returns (a hung filesystem, which no thread can be woken from) can be named, and the bounds
//! that keep every command from waiting on one forever (see `docs/architecture.md`, "Hostile
//! trees").
//!
//! The reading thread says what it is doing in one atomic word before each operation: on the
//! per-tick path a container's [`Slot`] and the index of the file in the plan (one store),
//! elsewhere a path kept behind a lock ([`doing_path`]); [`describe`] turns the word into a
//! path only when someone asks. The daemon's [`watchdog`] logs it when ticks stop; `snapshot`
//! and `check` read within [`COMMAND_BOUND`] ([`within`]). One reading thread per process is
//! assumed; with more, the word says what one of them does. The readers describe their own
//! places through [`Place`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The word: `0` idle; else a tag in the top four bits and what it says below.
static NOW: AtomicU64 = AtomicU64::new(0);

const TAG_SHIFT: u32 = 60;
/// A path in [`COLD`]; the low bits count, so each new path is a new word.
const TAG_PATH: u64 = 1;
/// A registered place: slot (28 bits), kind (4 bits), index (28 bits).
const TAG_PLACE: u64 = 2;
const LOW_28: u64 = (1 << 28) - 1;

/// The path of the operation off the per-tick path, and what is done to it.
static COLD: Mutex<(u64, &str, Option<PathBuf>)> = Mutex::new((0, "", None));

/// A container's reader, as far as a message needs it: the path of one of its files or
/// directories, from the kind and index its reader put in the word.
pub trait Place: Send + Sync {
    fn describe(&self, kind: u8, index: u32) -> String;
}

/// Places by slot, and the free slots. Bounded by the readers alive: each holds one slot and
/// gives it back when dropped.
struct Slots {
    places: Vec<Option<Arc<dyn Place>>>,
    free: Vec<u32>,
}

static SLOTS: Mutex<Slots> = Mutex::new(Slots {
    places: Vec::new(),
    free: Vec::new(),
});

/// A reader's slot: what it reads is named through it. Given back when dropped.
#[derive(Debug)]
pub struct Slot(u32);

impl Slot {
    pub fn new(place: Arc<dyn Place>) -> Slot {
        let mut s = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        let n = s.free.pop().unwrap_or_else(|| {
            s.places.push(None);
            (s.places.len() - 1) as u32
        });
        s.places[n as usize] = Some(place);
        Slot(n)
    }

    /// About to do operation `kind` on item `index` of this place (one store).
    #[inline]
    pub fn doing(&self, kind: u8, index: u32) {
        NOW.store(self.word(kind, index), Relaxed);
    }

    #[inline]
    fn word(&self, kind: u8, index: u32) -> u64 {
        (TAG_PLACE << TAG_SHIFT)
            | ((u64::from(self.0) & LOW_28) << 32)
            | (u64::from(kind & 0xf) << 28)
            | (u64::from(index) & LOW_28)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = s.places.get_mut(self.0 as usize) {
            *p = None;
            s.free.push(self.0);
        }
    }
}

/// About to `verb` (`"opening"`, `"listing"`, …) `path`, off the per-tick path.
pub fn doing_path(verb: &'static str, path: &Path) {
    let mut c = COLD.lock().unwrap_or_else(|e| e.into_inner());
    c.0 = c.0.wrapping_add(1) & ((1 << TAG_SHIFT) - 1);
    c.1 = verb;
    // The buffer is reused: a path longer than any before is the only allocation.
    let buf = c.2.get_or_insert_with(PathBuf::new);
    buf.as_mut_os_string().clear();
    buf.push(path);
    NOW.store((TAG_PATH << TAG_SHIFT) | c.0, Relaxed);
}

/// Done: not in an operation on the tree.
#[inline]
pub fn idle() {
    NOW.store(0, Relaxed);
}

/// Marks the thread idle when dropped (at the end of an operation with several returns).
pub struct IdleOnDrop;

impl Drop for IdleOnDrop {
    fn drop(&mut self) {
        idle();
    }
}

/// What the reading thread is doing, in words (`reading /sys/fs/cgroup/…/memory.stat`), or
/// `None` when it is not in an operation on the tree.
pub fn describe() -> Option<String> {
    describe_word(NOW.load(Relaxed))
}

fn describe_word(word: u64) -> Option<String> {
    match word >> TAG_SHIFT {
        TAG_PATH => {
            let c = COLD.lock().unwrap_or_else(|e| e.into_inner());
            let path = c.2.as_deref().unwrap_or(Path::new("?"));
            Some(format!("{} {}", c.1, path.display()))
        }
        TAG_PLACE => {
            let slot = ((word >> 32) & LOW_28) as usize;
            let kind = ((word >> 28) & 0xf) as u8;
            let index = (word & LOW_28) as u32;
            let place = SLOTS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .places
                .get(slot)
                .cloned()
                .flatten();
            Some(match place {
                Some(p) => p.describe(kind, index),
                None => "reading a container that is gone".to_string(),
            })
        }
        _ => None,
    }
}

/// How long `snapshot` and `check` wait on the cgroup tree: one operation (an open, a read, a
/// listing) that has not returned for `per_operation` is stuck, and all of them together may
/// take `total` (thousands of containers are read in a few seconds).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub per_operation: Duration,
    pub total: Duration,
}

/// The bound of `snapshot`, `check` and the daemon's start (detecting the layout).
pub const COMMAND_BOUND: Bound = Bound {
    per_operation: Duration::from_secs(10),
    total: Duration::from_secs(60),
};

/// Reading the tree did not finish within its bound.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.message())]
pub struct Stuck {
    /// What the reading thread was doing ([`describe`]), if it was in an operation.
    pub doing: Option<String>,
    /// The bound that ran out: one operation's, or (when `total`) all of them together.
    pub waited: Duration,
    /// The total bound ran out, not one operation's.
    pub total: bool,
}

impl Stuck {
    fn message(&self) -> String {
        let (doing, secs) = (self.doing.as_deref(), self.waited.as_secs());
        let doing = doing.unwrap_or("(not in a read)");
        if self.total {
            format!("reading the cgroup tree took longer than {secs} s (last: {doing})")
        } else {
            format!(
                "stuck for {secs} s {doing}: a hung filesystem under --cgroup-root or \
                 --proc-root, or something there that is not what a cgroup tree holds"
            )
        }
    }
}

/// Runs `work` on a thread of its own and waits for it within `bound`. When the bound runs
/// out, the thread is left where it is stuck (no thread can be woken from a hung filesystem)
/// and the caller should exit soon: ending the process ends it.
pub fn within<T: Send + 'static>(
    bound: Bound,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Stuck> {
    let (tx, rx) = mpsc::channel();
    // Spawning fails only when the process may not have one more thread: nothing would
    // work then.
    let handle = std::thread::Builder::new()
        .name("ce-reader".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .expect("start a thread to read the cgroup tree");
    let started = Instant::now();
    let mut seen = (NOW.load(Relaxed), Instant::now());
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(v) => return Ok(v),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // The work panicked: let the caller see it as if it had run here.
                match handle.join() {
                    Err(panic) => std::panic::resume_unwind(panic),
                    Ok(()) => unreachable!("the work sends its result before it ends"),
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let word = NOW.load(Relaxed);
        let stuck = word == seen.0 && word != 0 && seen.1.elapsed() >= bound.per_operation;
        if word != seen.0 {
            seen = (word, Instant::now());
        }
        let total = !stuck && started.elapsed() >= bound.total;
        if stuck || total {
            return Err(Stuck {
                doing: describe_word(word),
                waited: if total {
                    bound.total
                } else {
                    bound.per_operation
                },
                total,
            });
        }
    }
}

/// The daemon's liveness watchdog: when no tick completed for `stall_after` (what makes
/// `/healthz` fail), logs once what the collector is stuck on, and once that it resumed.
/// `quiet` gives the time since the last tick (since the start before the first). Wakes once
/// per `stall_after` while all is well.
pub async fn watchdog(
    stall_after: Duration,
    quiet: impl Fn() -> Duration,
    stopped: impl std::future::Future<Output = ()>,
) {
    let watch = async {
        let mut stalled = false;
        loop {
            let q = quiet();
            let wait = if q > stall_after {
                if !stalled {
                    stalled = true;
                    let collector = match describe() {
                        Some(d) => format!(
                            "is stuck {d} (a hung filesystem, or something in the tree that is \
                             not a cgroup file)"
                        ),
                        None => "is not in a read of the cgroup tree".into(),
                    };
                    tracing::error!(
                        "collection has stalled: no tick for {} s, so /healthz fails; the \
                         collector {collector}",
                        q.as_secs()
                    );
                }
                Duration::from_secs(5).min(stall_after)
            } else {
                if stalled {
                    stalled = false;
                    tracing::info!("collection resumed");
                }
                stall_after - q + Duration::from_millis(100)
            };
            tokio::time::sleep(wait).await;
        }
    };
    tokio::select! {
        _ = watch => {}
        _ = stopped => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);
    impl Place for Dir {
        fn describe(&self, kind: u8, index: u32) -> String {
            format!("kind {kind} of {} item {index}", self.0.display())
        }
    }

    // The word itself is the process's: other tests reading cgroups at the same time move
    // it, so this looks at words, not at the global one. `within` and the watchdog are
    // tested end to end (tests/hostile.rs).
    #[test]
    fn a_word_names_the_place_and_a_slot_given_back_names_none() {
        let slot = Slot::new(Arc::new(Dir(PathBuf::from("/x/docker/abc"))));
        let word = slot.word(3, 7);
        assert_eq!(
            describe_word(word).as_deref(),
            Some("kind 3 of /x/docker/abc item 7")
        );
        assert_eq!(describe_word(0), None);
        drop(slot);
        // A stale word no longer names the place given back.
        assert_ne!(
            describe_word(word).as_deref(),
            Some("kind 3 of /x/docker/abc item 7")
        );
        let again = Slot::new(Arc::new(Dir(PathBuf::from("/y"))));
        assert_eq!(
            describe_word(again.word(0, 1)).as_deref(),
            Some("kind 0 of /y item 1")
        );
    }

    #[test]
    fn what_a_stuck_read_says() {
        let stuck = Stuck {
            doing: Some("reading /hung/file".into()),
            waited: Duration::from_secs(10),
            total: false,
        };
        assert!(
            stuck
                .to_string()
                .starts_with("stuck for 10 s reading /hung/file: a hung filesystem"),
            "{stuck}"
        );
    }
}
