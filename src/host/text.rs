//! The kernel's text files, cgroupfs, procfs and sysfs alike: complete lines, decimal
//! numbers, `key value` pairs and single values, read from the raw bytes of one read (no UTF-8
//! check, no allocation) and never panicking. A line that cannot be understood is skipped and
//! reported in the returned [`ParseError`]; the other lines still count. A file whose last line
//! has no newline was cut short (by the reader's buffer, or by the kernel, as `io.stat` can be on
//! very large hosts): its complete lines are used and the cut one is reported as truncated.
//!
//! The parsers of particular files build on these: the cgroup files' in `cgroup::parse`, the
//! host's own in [`super::machine`] and [`super::block`].

/// What was wrong with a file's content. The caller adds the file's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line of the first problem.
    pub line: u32,
    pub reason: &'static str,
    pub kind: ErrorKind,
}

/// What was wrong with a file, for the read-error counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Cut short: the last line has no newline (its value may be cut), and is not used.
    Truncated,
    /// Something the parser cannot read as the file's format.
    Malformed,
}

impl ParseError {
    /// A [`ErrorKind::Malformed`] problem at `line` (1-based; 0 for the file as a whole).
    pub fn malformed(line: u32, reason: &'static str) -> ParseError {
        ParseError {
            line,
            reason,
            kind: ErrorKind::Malformed,
        }
    }
}

/// Remembers the first problem seen while the rest of a file is still parsed.
#[derive(Default)]
pub(crate) struct Problems(Option<ParseError>);

impl Problems {
    pub(crate) fn note(&mut self, line: u32, reason: &'static str) {
        self.note_kind(line, reason, ErrorKind::Malformed);
    }
    pub(crate) fn note_kind(&mut self, line: u32, reason: &'static str, kind: ErrorKind) {
        if self.0.is_none() {
            self.0 = Some(ParseError { line, reason, kind });
        }
    }
    pub(crate) fn finish(self) -> Result<(), ParseError> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The complete lines of `buf` with their 1-based numbers, and the problem to report when a
/// final line lacks its newline (that line is not returned: its last value may be cut).
pub(crate) fn lines(buf: &[u8]) -> (impl Iterator<Item = (u32, &[u8])>, Problems) {
    let (complete, cut) = match buf.iter().rposition(|&b| b == b'\n') {
        Some(end) => (&buf[..end], end + 1 < buf.len()),
        None => (&buf[..0], !buf.is_empty()),
    };
    let mut problems = Problems::default();
    if cut {
        let n = if complete.is_empty() {
            1
        } else {
            complete.split(|&b| b == b'\n').count() + 1
        };
        problems.note_kind(
            n as u32,
            "truncated: last line has no newline",
            ErrorKind::Truncated,
        );
    }
    let iter = complete
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(move |(_, l)| !complete.is_empty() || !l.is_empty())
        .map(|(i, l)| (i as u32 + 1, l));
    (iter, problems)
}

/// The rest of the first complete line of `buf` that starts with `key`, and its number; else
/// the problem of a cut last line, or `missing` (for the file as a whole).
pub(crate) fn keyed_line<'a>(
    buf: &'a [u8],
    key: &[u8],
    missing: &'static str,
) -> Result<(u32, &'a [u8]), ParseError> {
    let (mut lines, problems) = lines(buf);
    if let Some(found) = lines.find_map(|(n, l)| Some((n, l.strip_prefix(key)?))) {
        return Ok(found);
    }
    problems.finish()?;
    Err(ParseError::malformed(0, missing))
}

/// A decimal u64; `None` on anything else (sign, space, overflow, empty).
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// A device number, `MAJ:MIN`, as two numbers (`io.stat` and blkio lines every tick).
#[inline]
pub fn maj_min(s: &[u8]) -> Option<(u32, u32)> {
    let colon = s.iter().position(|&b| b == b':')?;
    let major = u32::try_from(parse_u64(&s[..colon])?).ok()?;
    let minor = u32::try_from(parse_u64(&s[colon + 1..])?).ok()?;
    Some((major, minor))
}

pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// `key value` lines (`cpu.stat`, `memory.stat`, `memory.events`, `cgroup.events`,
/// `cpuacct.stat`, `memory.oom_control`): `f` is called for each well-formed line.
pub fn flat_keyed(buf: &[u8], mut f: impl FnMut(&[u8], u64)) -> Result<(), ParseError> {
    let (lines, mut problems) = lines(buf);
    for (n, line) in lines {
        let line = trim(line);
        if line.is_empty() {
            continue;
        }
        let Some(sp) = line.iter().position(|&b| b == b' ') else {
            problems.note(n, "expected `key value`");
            continue;
        };
        match parse_u64(trim(&line[sp + 1..])) {
            Some(v) => f(&line[..sp], v),
            None => problems.note(n, "value is not an unsigned integer"),
        }
    }
    problems.finish()
}

/// A single-value file (`memory.current`, `pids.max`, `cpuacct.usage`, ...); a limit
/// (`cgroup::sample::Limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Single {
    Value(u64),
    /// The kernel's "no limit": `max` in v2, `-1` in v1's `cpu.cfs_quota_us`.
    Unlimited,
}

impl Single {
    /// The value, `None` for no limit.
    pub fn value(self) -> Option<u64> {
        match self {
            Single::Value(v) => Some(v),
            Single::Unlimited => None,
        }
    }

    /// The value, or 0 for no limit: cAdvisor's `container_spec_*` convention.
    pub fn or_zero(self) -> u64 {
        self.value().unwrap_or(0)
    }
}

pub fn single(buf: &[u8]) -> Result<Single, ParseError> {
    let (mut lines, problems) = lines(buf);
    let first = lines.next().map(|(_, l)| trim(l));
    problems.finish()?;
    match first {
        None => Err(ParseError::malformed(1, "empty file")),
        Some(b"max") | Some(b"-1") => Ok(Single::Unlimited),
        Some(v) => parse_u64(v).map(Single::Value).ok_or(ParseError::malformed(
            1,
            "value is not an unsigned integer or `max`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u64_edges() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"1 "), None);
    }

    #[test]
    fn flat_keyed_keeps_good_lines_around_a_bad_one() {
        let mut seen = Vec::new();
        let r = flat_keyed(b"a 1\nb x\nc 3\n", |k, v| seen.push((k.to_vec(), v)));
        assert_eq!(seen, vec![(b"a".to_vec(), 1), (b"c".to_vec(), 3)]);
        assert_eq!(
            r,
            Err(ParseError {
                line: 2,
                reason: "value is not an unsigned integer",
                kind: ErrorKind::Malformed,
            })
        );
    }

    #[test]
    fn single_values() {
        assert_eq!(single(b"max\n"), Ok(Single::Unlimited));
        assert_eq!(single(b"-1\n"), Ok(Single::Unlimited));
        assert_eq!(single(b"4096\n"), Ok(Single::Value(4096)));
        assert!(single(b"").is_err());
        assert!(single(b"12").is_err());
        assert!(single(b"abc\n").is_err());
    }
}
