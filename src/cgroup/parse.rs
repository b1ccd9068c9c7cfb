//! Parsers for the kernel's cgroup and procfs files: bytes in, typed fields out.
//!
//! Every parser works on the raw bytes of one read (no UTF-8 check, no allocation), looks
//! values up by key, ignores keys it does not know (new kernels add keys between versions),
//! and never panics. A line it cannot understand is skipped and reported in the returned
//! [`ParseError`]; the fields of every other line are still filled in, so one bad line costs
//! one value, not the whole file. A file whose last line has no newline was cut short (by our
//! buffer or by the kernel, as `io.stat` can be on very large hosts): its complete lines are
//! used and the cut line is reported as truncated.

use std::fmt;

use super::sample::{IfName, IoDevice, NetIface, Psi};

/// What was wrong with a file's content. The caller adds the file's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the first problem.
    pub line: u32,
    pub reason: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Remembers the first problem seen while the rest of a file is still parsed.
#[derive(Default)]
struct Problems(Option<ParseError>);

impl Problems {
    fn note(&mut self, line: u32, reason: &'static str) {
        if self.0.is_none() {
            self.0 = Some(ParseError { line, reason });
        }
    }
    fn finish(self) -> Result<(), ParseError> {
        match self.0 {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

/// The complete lines of `buf` with their 1-based numbers, and the problem to report when a
/// final line lacks its newline (that line is not returned: its last value may be cut).
fn lines(buf: &[u8]) -> (impl Iterator<Item = (u32, &[u8])>, Problems) {
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
        problems.note(n as u32, "truncated: last line has no newline");
    }
    let iter = complete
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(move |(_, l)| !complete.is_empty() || !l.is_empty())
        .map(|(i, l)| (i as u32 + 1, l));
    (iter, problems)
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

fn trim(mut s: &[u8]) -> &[u8] {
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

/// A single-value file (`memory.current`, `pids.max`, `cpuacct.usage`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Single {
    Value(u64),
    /// The kernel's "no limit": `max` in v2, `-1` in v1's `cpu.cfs_quota_us`.
    Unlimited,
}

pub fn single(buf: &[u8]) -> Result<Single, ParseError> {
    let (mut lines, problems) = lines(buf);
    let first = lines.next().map(|(_, l)| trim(l));
    problems.finish()?;
    match first {
        None => Err(ParseError {
            line: 1,
            reason: "empty file",
        }),
        Some(b"max") | Some(b"-1") => Ok(Single::Unlimited),
        Some(v) => parse_u64(v).map(Single::Value).ok_or(ParseError {
            line: 1,
            reason: "value is not an unsigned integer or `max`",
        }),
    }
}

/// v2 `cpu.max`: `$QUOTA $PERIOD` or `max $PERIOD`. Returns (quota, period).
pub fn cpu_max(buf: &[u8]) -> Result<(Single, u64), ParseError> {
    let (mut lines, problems) = lines(buf);
    let first = lines.next().map(|(_, l)| trim(l));
    problems.finish()?;
    let bad = ParseError {
        line: 1,
        reason: "expected `$QUOTA $PERIOD` or `max $PERIOD`",
    };
    let line = first.ok_or(bad)?;
    let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let quota = match parts.next() {
        Some(b"max") => Single::Unlimited,
        Some(q) => Single::Value(parse_u64(q).ok_or(bad)?),
        None => return Err(bad),
    };
    let period = parts.next().and_then(parse_u64).ok_or(bad)?;
    Ok((quota, period))
}

/// `MAJ:MIN` as two numbers.
fn device(s: &[u8]) -> Option<(u32, u32)> {
    let colon = s.iter().position(|&b| b == b':')?;
    let major = u32::try_from(parse_u64(&s[..colon])?).ok()?;
    let minor = u32::try_from(parse_u64(&s[colon + 1..])?).ok()?;
    Some((major, minor))
}

fn device_slot(out: &mut Vec<IoDevice>, major: u32, minor: u32) -> &mut IoDevice {
    // A handful of devices per container: a linear scan beats hashing here.
    match out
        .iter()
        .position(|d| d.major == major && d.minor == minor)
    {
        Some(i) => &mut out[i],
        None => {
            out.push(IoDevice {
                major,
                minor,
                ..IoDevice::default()
            });
            out.last_mut().expect("just pushed")
        }
    }
}

/// v2 `io.stat`: `MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..` per device.
/// Devices are appended to `out` (which the caller clears).
pub fn io_stat(buf: &[u8], out: &mut Vec<IoDevice>) -> Result<(), ParseError> {
    let (lines, mut problems) = lines(buf);
    for (n, line) in lines {
        let mut fields = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
        let Some(dev) = fields.next() else { continue };
        let Some((major, minor)) = device(dev) else {
            problems.note(n, "expected `MAJ:MIN` at the start of the line");
            continue;
        };
        let slot = device_slot(out, major, minor);
        for kv in fields {
            let Some(eq) = kv.iter().position(|&b| b == b'=') else {
                problems.note(n, "expected `key=value`");
                continue;
            };
            let Some(v) = parse_u64(&kv[eq + 1..]) else {
                problems.note(n, "value is not an unsigned integer");
                continue;
            };
            match &kv[..eq] {
                b"rbytes" => slot.read_bytes = Some(v),
                b"wbytes" => slot.write_bytes = Some(v),
                b"rios" => slot.read_ops = Some(v),
                b"wios" => slot.write_ops = Some(v),
                _ => {}
            }
        }
    }
    problems.finish()
}

/// Which counter a v1 `blkio.throttle.*_recursive` file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlkioKind {
    Bytes,
    Ops,
}

/// v1 `blkio.throttle.io_service_bytes_recursive` / `io_serviced_recursive`:
/// `MAJ:MIN Read N`, `MAJ:MIN Write N`, ... and a final `Total N`. A file with only the
/// `Total` line has no per-device data (see FINDINGS: accounting is off until a throttle
/// rule exists), which yields no devices rather than zeros.
pub fn blkio(buf: &[u8], kind: BlkioKind, out: &mut Vec<IoDevice>) -> Result<(), ParseError> {
    let (lines, mut problems) = lines(buf);
    for (n, line) in lines {
        let mut fields = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
        let (Some(dev), Some(op)) = (fields.next(), fields.next()) else {
            continue;
        };
        if dev == b"Total" {
            continue;
        }
        let Some((major, minor)) = device(dev) else {
            problems.note(n, "expected `MAJ:MIN OPERATION VALUE`");
            continue;
        };
        let Some(v) = fields.next().and_then(parse_u64) else {
            problems.note(n, "value is not an unsigned integer");
            continue;
        };
        let field = match (op, kind) {
            (b"Read", BlkioKind::Bytes) => &mut device_slot(out, major, minor).read_bytes,
            (b"Write", BlkioKind::Bytes) => &mut device_slot(out, major, minor).write_bytes,
            (b"Read", BlkioKind::Ops) => &mut device_slot(out, major, minor).read_ops,
            (b"Write", BlkioKind::Ops) => &mut device_slot(out, major, minor).write_ops,
            _ => continue,
        };
        *field = Some(v);
    }
    problems.finish()
}

/// `cpu.pressure`, `memory.pressure`, `io.pressure`:
/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=N` and the same for `full` (µs).
pub fn pressure(buf: &[u8], psi: &mut Psi) -> Result<(), ParseError> {
    let (lines, mut problems) = lines(buf);
    for (n, line) in lines {
        let mut fields = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
        let slot = match fields.next() {
            Some(b"some") => &mut psi.some_us,
            Some(b"full") => &mut psi.full_us,
            _ => continue,
        };
        match fields.find_map(|kv| kv.strip_prefix(b"total=")) {
            Some(v) => match parse_u64(v) {
                Some(v) => *slot = Some(v),
                None => problems.note(n, "total= is not an unsigned integer"),
            },
            None => problems.note(n, "no total= field"),
        }
    }
    problems.finish()
}

/// `/proc/<pid>/net/dev`: two header lines, then `name: 16 counters`. Names longer than six
/// characters have no space before the colon. Interfaces are appended to `out`.
pub fn net_dev(buf: &[u8], out: &mut Vec<NetIface>) -> Result<(), ParseError> {
    let (lines, mut problems) = lines(buf);
    for (n, line) in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            if n > 2 {
                problems.note(n, "expected `interface: counters`");
            }
            continue;
        };
        let name = trim(&line[..colon]);
        if name.is_empty() || line[..colon].contains(&b'|') {
            continue;
        }
        let mut v = [0u64; 16];
        let mut count = 0;
        let mut bad = false;
        for field in line[colon + 1..]
            .split(|&b| b == b' ')
            .filter(|p| !p.is_empty())
        {
            if count == v.len() {
                break;
            }
            match parse_u64(field) {
                Some(x) => v[count] = x,
                None => bad = true,
            }
            count += 1;
        }
        if bad || count < 12 {
            problems.note(n, "expected 16 unsigned counters after the interface name");
            continue;
        }
        out.push(NetIface {
            name: IfName::new(name),
            rx_bytes: v[0],
            rx_packets: v[1],
            rx_errors: v[2],
            rx_dropped: v[3],
            tx_bytes: v[8],
            tx_packets: v[9],
            tx_errors: v[10],
            tx_dropped: v[11],
        });
    }
    problems.finish()
}

/// The first pid listed in `cgroup.procs` (one pid per line), if any. Pids of processes
/// outside the reader's PID namespace read as 0 on cgroup2: those are skipped.
pub fn first_pid(buf: &[u8]) -> Option<u32> {
    buf.split(|&b| b == b'\n')
        .filter_map(|l| u32::try_from(parse_u64(trim(l))?).ok())
        .find(|&p| p != 0)
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
                reason: "value is not an unsigned integer"
            })
        );
    }

    #[test]
    fn truncated_last_line_is_not_used() {
        let mut seen = Vec::new();
        let r = flat_keyed(b"a 1\nb 12", |k, v| seen.push((k.to_vec(), v)));
        assert_eq!(seen, vec![(b"a".to_vec(), 1)]);
        assert_eq!(r.unwrap_err().reason, "truncated: last line has no newline");
        let mut devs = Vec::new();
        let r = io_stat(b"8:0 rbytes=1 wbytes=2\n8:16 rbytes=3 wby", &mut devs);
        assert!(r.is_err());
        assert_eq!(devs.len(), 1);
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

    #[test]
    fn cpu_max_forms() {
        assert_eq!(cpu_max(b"max 100000\n"), Ok((Single::Unlimited, 100000)));
        assert_eq!(
            cpu_max(b"50000 100000\n"),
            Ok((Single::Value(50000), 100000))
        );
        assert!(cpu_max(b"50000\n").is_err());
    }

    #[test]
    fn net_dev_long_names_without_space() {
        let text = b"Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\nverylongname0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
        let mut out = Vec::new();
        net_dev(text, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].name.as_str(), "verylongname0");
        assert_eq!(out[1].rx_bytes, 1);
        assert_eq!(out[1].tx_dropped, 12);
    }

    #[test]
    fn pressure_totals() {
        let mut p = Psi::default();
        pressure(b"some avg10=0.18 avg60=0.03 avg300=0.00 total=4492387\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", &mut p).unwrap();
        assert_eq!(p.some_us, Some(4492387));
        assert_eq!(p.full_us, Some(0));
    }

    #[test]
    fn blkio_only_total_means_no_devices() {
        let mut out = Vec::new();
        blkio(b"Total 0\n", BlkioKind::Bytes, &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn first_pid_of_procs() {
        assert_eq!(first_pid(b"123\n456\n"), Some(123));
        assert_eq!(first_pid(b"0\n0\n77\n"), Some(77));
        assert_eq!(first_pid(b"0\n"), None);
        assert_eq!(first_pid(b""), None);
    }
}
