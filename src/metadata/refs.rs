//! The small text formats the metadata sources read: glob patterns of the label allow-lists,
//! image references (`registry:5000/ns/app:1.2@sha256:…`), and RFC 3339 times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Shell-style match of a whole string: `*` matches any run of characters (also none), `?`
/// exactly one; everything else matches itself. Linear backtracking over the last `*`, so no
/// pattern can blow up.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // After the last `*`: where in the pattern to resume and how much of the text it has eaten.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi + 1, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((resume, eaten)) = star {
            // Let the `*` swallow one more character and retry from just after it.
            pi = resume;
            ti = eaten + 1;
            star = Some((resume, eaten + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The labels whose key matches one of `globs`, sorted by key.
pub(crate) fn allowed<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
    globs: &[String],
) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = (labels.into_iter())
        .filter(|(k, _)| globs.iter().any(|g| glob_match(g, k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    kept.sort();
    kept
}

/// An image reference split into its parts, borrowed from the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Everything before the tag and digest, registry and port included.
    pub name: &'a str,
    pub tag: Option<&'a str>,
    /// `sha256:…` after an `@`.
    pub digest: Option<&'a str>,
}

/// Splits a reference as written in `Config.Image` (`[registry[:port]/]path[:tag][@digest]`).
/// The tag is what follows the last `:` only when that colon comes after the last `/`;
/// otherwise the colon is a registry port (`registry:5000/app`). Returns `None` for an empty
/// reference and for an image id (`sha256:<hex>` or 64 hex digits), which names no image.
pub fn split_image_ref(reference: &str) -> Option<ImageRef<'_>> {
    let r = reference.trim();
    if r.is_empty() || is_image_id(r) {
        return None;
    }
    let (named, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d).filter(|d| !d.is_empty())),
        None => (r, None),
    };
    let last_slash = named.rfind('/');
    let (name, tag) = match named.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            (&named[..colon], Some(&named[colon + 1..]))
        }
        _ => (named, None),
    };
    if name.is_empty() {
        return None;
    }
    Some(ImageRef {
        name,
        tag: tag.filter(|t| !t.is_empty()),
        digest,
    })
}

/// `container.image.name` and `container.image.tags` from `Config.Image`. No tag gives
/// `["latest"]` (even with a digest), the OpenTelemetry Collector's convention, so dashboards
/// moved over from its docker receiver keep working.
pub fn image_name_and_tags(reference: &str) -> (Option<String>, Vec<String>) {
    match split_image_ref(reference) {
        Some(r) => (
            Some(r.name.to_owned()),
            vec![r.tag.unwrap_or("latest").to_owned()],
        ),
        None => (None, Vec::new()),
    }
}

/// `sha256:<64 hex>` or 64 hex digits: an image id, which names no image.
pub(crate) fn is_image_id(r: &str) -> bool {
    let hex = r.strip_prefix("sha256:").unwrap_or(r);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses an RFC 3339 time as Docker writes it (`2024-05-01T10:20:30.123456789Z`, or with a
/// `+02:00` offset). Times before 1970, such as Docker's zero time `0001-01-01T00:00:00Z` for
/// "never started", give `None`.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().all(u8::is_ascii_digit).then(|| {
            part.iter()
                .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, min, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    // The fraction's digits, if there is a fraction (one at least; past nanoseconds dropped).
    let frac = sep(19, b".").then(|| b[20..].iter().take_while(|c| c.is_ascii_digit()).count());
    if frac == Some(0) {
        return None;
    }
    let digits = frac.unwrap_or(0).min(9);
    let nanos = num(20, digits).unwrap_or(0) * 10i64.pow(9 - digits as u32);
    let i = frac.map_or(19, |n| 20 + n);
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b":") => {
            let off = num(i + 1, 2)? * 3600 + num(i + 4, 2)? * 60;
            if sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos as u32))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("team", "team"));
        assert!(!glob_match("team", "teams"));
        assert!(!glob_match("team", "tea"));
        assert!(glob_match("io.*", "io.kubernetes.pod.name"));
        assert!(glob_match("io.*", "io."));
        assert!(!glob_match("io.*", "io"));
        assert!(glob_match("*", ""));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*.version", "org.opencontainers.image.version"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(glob_match("a*b*c", "abcbc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("**a", "bbba"));
        assert!(glob_match("*?", "x"));
        assert!(!glob_match("*?", ""));
        // `?` is one character, not one byte.
        assert!(glob_match("caf?", "café"));
        // A `*` in the text is just a character.
        assert!(glob_match("a*", "a*"));
        assert!(!glob_match("a\\*", "ab"));
        // Backtracking stays linear-ish on a hostile pattern.
        let long = "a".repeat(5000);
        assert!(!glob_match("*a*a*a*a*a*b", &long));
    }

    fn split(r: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
        split_image_ref(r).map(|i| (i.name, i.tag, i.digest))
    }

    #[test]
    fn image_refs() {
        assert_eq!(split("busybox"), Some(("busybox", None, None)));
        assert_eq!(split("busybox:1.36"), Some(("busybox", Some("1.36"), None)));
        assert_eq!(
            split("library/busybox:1"),
            Some(("library/busybox", Some("1"), None))
        );
        assert_eq!(
            split("docker.io/library/busybox:latest"),
            Some(("docker.io/library/busybox", Some("latest"), None))
        );
        assert_eq!(
            split("registry:5000/ns/app:1.2"),
            Some(("registry:5000/ns/app", Some("1.2"), None))
        );
        assert_eq!(
            split("registry:5000/ns/app"),
            Some(("registry:5000/ns/app", None, None))
        );
        assert_eq!(
            split("localhost:5000/app"),
            Some(("localhost:5000/app", None, None))
        );
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            split(&format!("ghcr.io/o/app@{d}")),
            Some(("ghcr.io/o/app", None, Some(d)))
        );
        assert_eq!(
            split(&format!("registry:5000/app:v2@{d}")),
            Some(("registry:5000/app", Some("v2"), Some(d)))
        );
        // Image ids name no image.
        assert_eq!(split(d), None);
        assert_eq!(split(&d[7..]), None);
        assert_eq!(split(""), None);
        assert_eq!(split(":tag"), None);
        // A trailing colon is no tag.
        assert_eq!(split("app:"), Some(("app", None, None)));

        assert_eq!(
            image_name_and_tags("registry:5000/ns/app:1.2"),
            (Some("registry:5000/ns/app".into()), vec!["1.2".into()])
        );
        assert_eq!(
            image_name_and_tags("busybox"),
            (Some("busybox".into()), vec!["latest".into()])
        );
        assert_eq!(
            image_name_and_tags(&format!("app@{d}")),
            (Some("app".into()), vec!["latest".into()])
        );
        assert_eq!(image_name_and_tags(d), (None, vec![]));
    }

    #[test]
    fn rfc3339() {
        let t = |s| parse_rfc3339(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap());
        let at = |nanos| Some(Duration::new(1_709_210_096, nanos));
        for (s, want) in [
            ("1970-01-01T00:00:00Z", Some(Duration::ZERO)),
            ("2024-02-29T12:34:56.123456789Z", at(123_456_789)),
            ("2024-02-29T12:34:56.5Z", at(500_000_000)),
            ("2024-02-29T14:34:56+02:00", at(0)),
            ("2024-02-29T10:04:56-02:30", at(0)),
            ("2024-02-29T12:34:56.1234567891Z", at(123_456_789)),
            ("0001-01-01T00:00:00Z", None), // Docker's "never started"
            ("2024-02-29T12:34:56", None),
            ("2024-02-29T12:34:56.Z", None),
            ("2024-13-01T00:00:00Z", None),
            ("garbage", None),
            ("", None),
        ] {
            assert_eq!(t(s), want, "{s}");
        }
    }
}
