//! Parsers of the cgroup files and of `/proc/<pid>/net/dev`: bytes in, typed fields out, built
//! on the kernel text primitives of [`crate::host::text`] (re-exported here). Each looks values
//! up by key, ignores keys it does not know (new kernels add keys between versions), keeps
//! every line it understands, and reports the first it does not as a [`ParseError`].

use super::sample::{IfName, IoDevice, NetIface, Psi};
pub use crate::host::text::{ErrorKind, ParseError, Single, flat_keyed, parse_u64, single};
use crate::host::text::{lines, maj_min, trim};

/// v2 `cpu.max`: `$QUOTA $PERIOD` or `max $PERIOD`. Returns (quota, period).
pub fn cpu_max(buf: &[u8]) -> Result<(Single, u64), ParseError> {
    let (mut lines, problems) = lines(buf);
    let first = lines.next().map(|(_, l)| trim(l));
    problems.finish()?;
    let bad = ParseError::malformed(1, "expected `$QUOTA $PERIOD` or `max $PERIOD`");
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

/// Devices kept per container from one file set (`io.stat`, or v1's two `blkio` files). A
/// container does IO on a handful of devices; a file listing more (a host with thousands of
/// LUNs, or a hostile file) costs at most this many per line to look up and this many on the
/// page, and the rest are dropped and counted.
pub const MAX_DEVICES: usize = 256;

/// Interfaces kept per network namespace, for the same reason.
pub const MAX_INTERFACES: usize = 256;

/// Finds (or adds) the slot of a device. The last slot is tried first: v1 `blkio` lists a
/// device's lines together and `io.stat` lists each device once, so the scan is rare and never
/// longer than [`MAX_DEVICES`]: a file's lookups are linear in its lines. A device beyond the cap
/// gets no slot; `dropped` counts it once per run of its lines.
fn device_slot<'a>(
    out: &'a mut Vec<IoDevice>,
    major: u32,
    minor: u32,
    last_dropped: &mut Option<(u32, u32)>,
    dropped: &mut u32,
) -> Option<&'a mut IoDevice> {
    let is = |d: &IoDevice| d.major == major && d.minor == minor;
    let at = match out.last() {
        Some(d) if is(d) => Some(out.len() - 1),
        _ => out.iter().position(is),
    };
    match at {
        Some(i) => Some(&mut out[i]),
        None if out.len() < MAX_DEVICES => {
            out.push(IoDevice {
                major,
                minor,
                ..IoDevice::default()
            });
            out.last_mut()
        }
        None => {
            if *last_dropped != Some((major, minor)) {
                *last_dropped = Some((major, minor));
                *dropped = dropped.saturating_add(1);
            }
            None
        }
    }
}

/// v2 `io.stat`: `MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..` per device.
/// Devices are appended to `out` (which the caller clears), at most [`MAX_DEVICES`]; devices
/// beyond that are added to `dropped`.
pub fn io_stat(buf: &[u8], out: &mut Vec<IoDevice>, dropped: &mut u32) -> Result<(), ParseError> {
    let (lines, mut problems) = lines(buf);
    let mut last_dropped = None;
    for (n, line) in lines {
        let mut fields = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
        let Some(dev) = fields.next() else { continue };
        let Some((major, minor)) = maj_min(dev) else {
            problems.note(n, "expected `MAJ:MIN` at the start of the line");
            continue;
        };
        let Some(slot) = device_slot(out, major, minor, &mut last_dropped, dropped) else {
            continue;
        };
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
/// `MAJ:MIN Read N`, `MAJ:MIN Write N`, ... and a final `Total N` (alone: no devices, not
/// zeros). At most [`MAX_DEVICES`] devices are kept in `out` (shared by the two files); the
/// others are added to `dropped`, once per file.
pub fn blkio(
    buf: &[u8],
    kind: BlkioKind,
    out: &mut Vec<IoDevice>,
    dropped: &mut u32,
) -> Result<(), ParseError> {
    let (lines, mut problems) = lines(buf);
    let mut last_dropped = None;
    for (n, line) in lines {
        let mut fields = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
        let (Some(dev), Some(op)) = (fields.next(), fields.next()) else {
            continue;
        };
        if dev == b"Total" {
            continue;
        }
        let Some((major, minor)) = maj_min(dev) else {
            problems.note(n, "expected `MAJ:MIN OPERATION VALUE`");
            continue;
        };
        let Some(v) = fields.next().and_then(parse_u64) else {
            problems.note(n, "value is not an unsigned integer");
            continue;
        };
        if !matches!(op, b"Read" | b"Write") {
            continue;
        }
        let Some(slot) = device_slot(out, major, minor, &mut last_dropped, dropped) else {
            continue;
        };
        let field = match (op, kind) {
            (b"Read", BlkioKind::Bytes) => &mut slot.read_bytes,
            (b"Write", BlkioKind::Bytes) => &mut slot.write_bytes,
            (b"Read", BlkioKind::Ops) => &mut slot.read_ops,
            _ => &mut slot.write_ops,
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

/// Whether an interface name can be shown as it is, on the page and in OTLP: at most 15 bytes
/// of UTF-8 without `/`, `:`, white space or control characters (the kernel allows `\x01`;
/// escaping could make two names one, so such an interface is left out and counted).
fn showable_ifname(name: &[u8]) -> bool {
    name.len() <= 15
        && std::str::from_utf8(name).is_ok_and(|s| {
            !s.chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '/' || c == ':')
        })
}

/// `/proc/<pid>/net/dev`: two header lines, then `name: 16 counters`. Names longer than six
/// characters have no space before the colon. Interfaces are appended to `out`, at most
/// [`MAX_INTERFACES`]; those beyond it, and those whose name cannot be shown as it is, are added
/// to `dropped` (a name is also reported as a problem).
pub fn net_dev(buf: &[u8], out: &mut Vec<NetIface>, dropped: &mut u32) -> Result<(), ParseError> {
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
        if !showable_ifname(name) {
            problems.note(
                n,
                "interface name is not UTF-8, has control bytes or is longer than 15 bytes",
            );
            *dropped = dropped.saturating_add(1);
            continue;
        }
        if out.len() >= MAX_INTERFACES {
            *dropped = dropped.saturating_add(1);
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

/// The first pid listed in the content of a `cgroup.procs` (one pid per line), if any: the one
/// process whose `/proc/<pid>` stands for the container (its network namespace, its root
/// mount). Pids of processes outside the reader's PID namespace read as 0 on cgroup2: those
/// are skipped, and so are lines that are not a pid.
pub fn first_pid(buf: &[u8]) -> Option<u32> {
    pids(buf).next()
}

/// The process ids listed in a `cgroup.procs` (one per line; 0, a process in another pid
/// namespace, left out).
pub fn pids(buf: &[u8]) -> impl Iterator<Item = u32> + '_ {
    buf.split(|&b| b == b'\n')
        .filter_map(|l| u32::try_from(parse_u64(trim(l))?).ok())
        .filter(|&p| p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_last_line_is_not_used() {
        let mut seen = Vec::new();
        let r = flat_keyed(b"a 1\nb 12", |k, v| seen.push((k.to_vec(), v)));
        assert_eq!(seen, vec![(b"a".to_vec(), 1)]);
        assert_eq!(r.unwrap_err().reason, "truncated: last line has no newline");
        let mut devs = Vec::new();
        let r = io_stat(
            b"8:0 rbytes=1 wbytes=2\n8:16 rbytes=3 wby",
            &mut devs,
            &mut 0,
        );
        assert!(r.is_err());
        assert_eq!(devs.len(), 1);
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
        net_dev(text, &mut out, &mut 0).unwrap();
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
        blkio(b"Total 0\n", BlkioKind::Bytes, &mut out, &mut 0).unwrap();
        assert!(out.is_empty());
    }

    /// `n` devices `8:0`, `8:1`, … in `io.stat` form, each with its own values.
    fn many_devices(n: u32) -> Vec<u8> {
        let mut text = Vec::new();
        for i in 0..n {
            text.extend_from_slice(
                format!("8:{i} rbytes={i} wbytes=1 rios=2 wios=3 dbytes=0 dios=0\n").as_bytes(),
            );
        }
        text
    }

    #[test]
    fn devices_beyond_the_cap_are_dropped_and_counted() {
        // Defect 11: 100,000 devices made each tick quadratic and the page 65 MB.
        let (mut out, mut dropped) = (Vec::new(), 0);
        io_stat(&many_devices(100_000), &mut out, &mut dropped).unwrap();
        assert_eq!(out.len(), MAX_DEVICES);
        assert_eq!(dropped as usize, 100_000 - MAX_DEVICES);
        // The devices kept are the first ones, with their own values.
        for (i, d) in out.iter().enumerate() {
            assert_eq!((d.major, d.minor), (8, i as u32));
            assert_eq!(d.read_bytes, Some(i as u64));
        }

        // v1: both files share the cap; a dropped device counts once per file, not per line.
        let mut bytes = Vec::new();
        for i in 0..300 {
            for op in ["Read", "Write", "Sync", "Async", "Discard", "Total"] {
                bytes.extend_from_slice(format!("8:{i} {op} {i}\n").as_bytes());
            }
        }
        bytes.extend_from_slice(b"Total 0\n");
        let (mut out, mut dropped) = (Vec::new(), 0);
        blkio(&bytes, BlkioKind::Bytes, &mut out, &mut dropped).unwrap();
        blkio(&bytes, BlkioKind::Ops, &mut out, &mut dropped).unwrap();
        assert_eq!(out.len(), MAX_DEVICES);
        assert_eq!(dropped as usize, 2 * (300 - MAX_DEVICES));
        assert!(
            out.iter()
                .all(|d| d.read_ops == Some(u64::from(d.minor)) && d.write_bytes.is_some())
        );
    }

    #[test]
    fn a_device_listed_twice_keeps_one_slot() {
        let (mut out, mut dropped) = (Vec::new(), 0);
        io_stat(
            b"8:0 rbytes=1\n8:16 rbytes=2\n8:0 wbytes=3\n",
            &mut out,
            &mut dropped,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].read_bytes, out[0].write_bytes), (Some(1), Some(3)));
        assert_eq!(dropped, 0);
    }

    #[test]
    fn interface_names_with_control_bytes_never_pass() {
        // Defect 11: a NUL in a name reached the page raw.
        let text = b"h1\nh2\n    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  e\0th0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  e\x01x: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  \xff\xfe: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  a\x7f: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\nsixteen-bytes-xx: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n  eth\xc3\xa9: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
        let (mut out, mut dropped) = (Vec::new(), 0);
        let r = net_dev(text, &mut out, &mut dropped);
        let names: Vec<String> = out.iter().map(|i| i.name.as_str().into_owned()).collect();
        assert_eq!(names, ["lo", "eth\u{e9}"]);
        assert_eq!(dropped, 5);
        assert_eq!(r.unwrap_err().line, 4);
    }

    #[test]
    fn interfaces_beyond_the_cap_are_dropped_and_counted() {
        let mut text = b"h1\nh2\n".to_vec();
        for i in 0..1000 {
            text.extend_from_slice(format!("v{i}: {i} 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n").as_bytes());
        }
        let (mut out, mut dropped) = (Vec::new(), 0);
        net_dev(&text, &mut out, &mut dropped).unwrap();
        assert_eq!(out.len(), MAX_INTERFACES);
        assert_eq!(dropped as usize, 1000 - MAX_INTERFACES);
        assert_eq!(out[7].rx_bytes, 7);
    }

    #[test]
    fn first_pid_of_procs() {
        assert_eq!(first_pid(b"123\n456\n"), Some(123));
        assert_eq!(first_pid(b"0\n0\n77\n"), Some(77));
        assert_eq!(first_pid(b"0\n"), None);
        assert_eq!(first_pid(b""), None);
    }
}
