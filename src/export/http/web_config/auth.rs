//! Who may ask and how often: `basic_auth_users` checked against `Authorization: Basic`
//! (bcrypt, with a bounded cache so a scrape costs one bcrypt per password, not per request),
//! and the `rate_limit` token bucket over every request.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

/// Distinct (user, password) results kept, so a scrape costs one bcrypt per password, not per
/// request (a cost-10 hash takes about 70 ms).
const AUTH_CACHE_MAX: usize = 256;
/// Compared against when the user is unknown, so an unknown user costs as much as a wrong
/// password and the timing does not tell which users exist.
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
/// The standard alphabet, padded or not and lenient about the last character's unused bits,
/// as Go's `StdEncoding` reads it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Checks `Authorization: Basic` against the users, with a bounded cache of bcrypt results.
#[derive(Default)]
pub struct Authenticator {
    /// A keyed hash of (user, stored hash, password) → whether it matched. Keyed with a random
    /// key per process, 128 bits, so an entry cannot be forged and the passwords are not kept.
    cache: Mutex<HashMap<u128, bool>>,
    keys: (
        std::collections::hash_map::RandomState,
        std::collections::hash_map::RandomState,
    ),
}

impl Authenticator {
    /// `header`: the `Authorization` value. Runs bcrypt on a miss (tens of milliseconds: call
    /// from a blocking thread).
    pub fn check(&self, users: &HashMap<String, String>, header: Option<&[u8]>) -> bool {
        let Some((user, pass)) = header.and_then(parse_basic) else {
            return false;
        };
        let (hash, known) = match users.get(&user) {
            Some(h) => (h.as_str(), true),
            None => (DUMMY_HASH, false),
        };
        let key = {
            let (mut a, mut b) = (self.keys.0.build_hasher(), self.keys.1.build_hasher());
            (&user, hash, &pass).hash(&mut a);
            (&user, hash, &pass).hash(&mut b);
            (u128::from(a.finish()) << 64) | u128::from(b.finish())
        };
        if let Some(ok) = self.lock().get(&key) {
            return *ok && known;
        }
        let ok = bcrypt::verify(pass.as_bytes(), hash).unwrap_or(false);
        let mut c = self.lock();
        if c.len() >= AUTH_CACHE_MAX {
            c.clear();
        }
        c.insert(key, ok);
        ok && known
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u128, bool>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(h: &[u8]) -> Option<(String, String)> {
    use base64::Engine;
    let h = std::str::from_utf8(h).ok()?.trim();
    let (scheme, b64) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let b64 = b64.trim();
    // Credentials longer than any real one are refused undecoded.
    if b64.len() > 4096 {
        return None;
    }
    let raw = BASE64.decode(b64).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The toolkit's `rate_limit`: `burst` requests at once, then one per `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub interval: Duration,
    pub burst: u32,
}

/// A token bucket over every request (the toolkit's `rate_limit`).
pub struct Bucket {
    state: Mutex<(f64, Instant)>,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            state: Mutex::new((f64::MAX, Instant::now())),
        }
    }
}

impl Bucket {
    pub fn allow(&self, limit: &RateLimit) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let burst = f64::from(limit.burst);
        let refill = now.duration_since(s.1).as_secs_f64() / limit.interval.as_secs_f64();
        s.0 = (s.0.min(burst) + refill).min(burst);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let users: HashMap<String, String> = [("alice".to_string(), hash)].into();
        let a = Authenticator::default();
        let hdr = |u: &str, p: &str| {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            format!("Basic {b64}")
        };
        assert!(a.check(&users, Some(hdr("alice", "s3cret").as_bytes())));
        assert!(a.check(&users, Some(hdr("alice", "s3cret").as_bytes())));
        assert!(!a.check(&users, Some(hdr("alice", "wrong").as_bytes())));
        assert!(!a.check(&users, Some(hdr("bob", "s3cret").as_bytes())));
        assert!(!a.check(&users, None));
        assert!(!a.check(&users, Some(b"Bearer x")));
        assert_eq!(
            parse_basic(b"basic YTpiOmM="),
            Some(("a".into(), "b:c".into()))
        );
        assert_eq!(
            parse_basic(b"Basic YTpiOmM"),
            Some(("a".into(), "b:c".into()))
        );
        assert_eq!(parse_basic(b"Basic YTpi*"), None);
        assert_eq!(parse_basic(b"Basic YWJj"), None, "no colon");
    }

    #[test]
    fn the_bucket_allows_its_burst_then_one_per_interval() {
        let r = RateLimit {
            interval: std::time::Duration::from_millis(100),
            burst: 3,
        };
        let b = Bucket::default();
        assert!((0..3).all(|_| b.allow(&r)));
        assert!(!b.allow(&r));
        std::thread::sleep(std::time::Duration::from_millis(120));
        assert!(b.allow(&r));
        assert!(!b.allow(&r));
    }
}
