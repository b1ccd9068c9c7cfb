//! The ids discovery asked for that no list has shown yet, for runtimes without
//! `GetContainerEvents` (and for events about what their statuses did not describe). Runtimes
//! create a sandbox's cgroup before their lists show it (containerd lists a sandbox only once
//! `RunPodSandbox` is done), so an id still unknown after a list is asked again with backoff
//! for up to [`LOOKUP_GIVE_UP`], then left alone for [`GIVE_UP_TTL`].

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// Retries of an id a list did not show: 100 ms, 200 ms, … capped at 5 s.
const LOOKUP_RETRY_MIN: Duration = Duration::from_millis(100);
const LOOKUP_RETRY_MAX: Duration = Duration::from_secs(5);
/// An id no list has shown for this long is not the runtime's (a container of another runtime,
/// or one that came and went): it is dropped, about a dozen lists after it was first asked.
pub const LOOKUP_GIVE_UP: Duration = Duration::from_secs(30);
/// …and asks for it are ignored this long, so that a discovery that asks for an unknown id on
/// every tick costs one retry series per id, not one list per tick.
pub const GIVE_UP_TTL: Duration = Duration::from_secs(600);
/// Bounds on ids being retried and ids given up (the store bounds the asks themselves).
const MAX_PENDING: usize = 4096;
const MAX_GIVEN_UP: usize = 16384;

/// An id that discovery asked for and no list has shown yet.
struct Pending {
    since: Instant,
    next: Instant,
    tries: u32,
}

/// The ids being looked up, and those given up on.
#[derive(Default)]
pub(crate) struct Lookups {
    pending: HashMap<String, Pending>,
    given_up: HashMap<String, Instant>,
}

impl Lookups {
    /// Takes what discovery asked for: ids not `known` (and not given up) become pending.
    pub(crate) fn absorb(&mut self, asked: Vec<String>, known: impl Fn(&str) -> bool) {
        let now = Instant::now();
        if self.given_up.len() >= MAX_GIVEN_UP / 2 {
            self.given_up.retain(|_, until| *until > now);
        }
        for id in asked {
            let id = normalize_wanted(id);
            let asked_off = self.given_up.get(&id).is_some_and(|until| *until > now);
            if id.is_empty() || asked_off || known(&id) || self.pending.contains_key(&id) {
                continue;
            }
            if self.pending.len() >= MAX_PENDING {
                break;
            }
            self.add(id, now);
        }
    }

    /// Looks `id` up at the next chance (an event about something its statuses did not
    /// describe).
    pub(crate) fn ask(&mut self, id: &str) {
        if !id.is_empty() && !self.pending.contains_key(id) && self.pending.len() < MAX_PENDING {
            self.add(id.to_owned(), Instant::now());
        }
    }

    fn add(&mut self, id: String, now: Instant) {
        let p = Pending {
            since: now,
            next: now,
            tries: 0,
        };
        self.pending.insert(id, p);
    }

    pub(crate) fn is_pending(&self, id: &str) -> bool {
        self.pending.contains_key(id)
    }

    /// The ids being looked up.
    pub(crate) fn ids(&self) -> impl Iterator<Item = &String> {
        self.pending.keys()
    }

    /// Whether a list is due for one of them.
    pub(crate) fn due(&self, now: Instant) -> bool {
        self.pending.values().any(|p| p.next <= now)
    }

    pub(crate) fn next_retry(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.next).min()
    }

    /// After a list: ids now `known` leave; the others are retried later, or given up.
    pub(crate) fn settle(&mut self, now: Instant, known: impl Fn(&str) -> bool) {
        let given_up = &mut self.given_up;
        self.pending.retain(|id, p| {
            if known(id) {
                return false;
            }
            if p.next > now {
                return true;
            }
            if now.duration_since(p.since) >= LOOKUP_GIVE_UP {
                tracing::debug!(
                    id,
                    "the CRI runtime does not know this id; not asking again for a while"
                );
                if given_up.len() < MAX_GIVEN_UP {
                    given_up.insert(id.clone(), now + GIVE_UP_TTL);
                }
                return false;
            }
            p.tries += 1;
            let wait = LOOKUP_RETRY_MIN
                .saturating_mul(1 << p.tries.min(16))
                .min(LOOKUP_RETRY_MAX);
            p.next = now + wait;
            true
        });
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Discovery gives pod uids with dashes; a systemd slice name has them as underscores.
fn normalize_wanted(id: String) -> String {
    if id.len() == 36 && id.contains('_') && !id.contains('-') {
        id.replace('_', "-")
    } else {
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_ids() {
        assert_eq!(
            normalize_wanted("0b0e6b0c_8c51_4d43_9a3f_0d5a7b0b6c1e".into()),
            "0b0e6b0c-8c51-4d43-9a3f-0d5a7b0b6c1e"
        );
        let id = "a".repeat(64);
        assert_eq!(normalize_wanted(id.clone()), id);
    }
}
