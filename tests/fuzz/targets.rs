//! The fuzz targets' bodies, one function per parser, shared by the libFuzzer binaries
//! (`tests/fuzz/fuzz_targets/`) and by `tests/fuzz_corpus.rs`, which runs the kept corpus on
//! stable in CI.
//!
//! Each function feeds arbitrary bytes to one parser and panics (the finding) when the parser
//! panics or breaks its contract:
//! - no invented value: every number it returns is one written in the input (or, for a
//!   microsecond field, that number times 1,000), and a value derived from parts is there
//!   only when its parts are;
//! - a file cut short yields the values of its complete lines and nothing else, and says so;
//! - nothing grows without bound: devices and interfaces stay within the caps, the rest is
//!   counted;
//! - nothing that cannot be shown as it is (control bytes, invalid UTF-8) reaches a name.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::Path;

use container_exporter::cgroup::parse::{self, BlkioKind, MAX_DEVICES, MAX_INTERFACES, Single};
use container_exporter::cgroup::plan;
use container_exporter::cgroup::sample::{IoDevice, Limit, Psi};
use container_exporter::cgroup::{CgroupSample, Layout};
use container_exporter::host::{block, machine};

/// Every maximal run of ASCII digits in `data` that fits a u64: the only numbers a parser may
/// return.
pub fn numbers(data: &[u8]) -> HashSet<u64> {
    data.split(|b| !b.is_ascii_digit())
        .filter_map(parse::parse_u64)
        .collect()
}

/// `v` is a number of the input, or one of them scaled by 1,000 (µs to ns, saturating).
fn from_input(v: u64, nums: &HashSet<u64>, scaled: bool) -> bool {
    nums.contains(&v)
        || (scaled && (v == u64::MAX || (v % 1000 == 0 && nums.contains(&(v / 1000)))))
}

/// The input ends in the middle of a line: the parser must say so.
fn cut(data: &[u8]) -> bool {
    !data.is_empty() && data.last() != Some(&b'\n')
}

/// Where to cut the input for the prefix checks: a few places picked by the input itself.
fn cuts(data: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let n = data.len();
    [
        n / 2,
        n / 3,
        usize::from(data.first().copied().unwrap_or(0)) % (n + 1),
    ]
    .into_iter()
    .filter(move |&c| c < n)
}

pub fn flat_keyed(data: &[u8]) {
    let collect = |d: &[u8]| {
        let mut pairs: Vec<(Vec<u8>, u64)> = Vec::new();
        let r = parse::flat_keyed(d, |k, v| pairs.push((k.to_vec(), v)));
        (pairs, r)
    };
    let (whole, r) = collect(data);
    let nums = numbers(data);
    for (k, v) in &whole {
        assert!(!k.is_empty(), "empty key");
        assert!(
            !k.iter().any(|b| matches!(b, b' ' | b'\n')),
            "key {k:?} spans a separator"
        );
        assert!(nums.contains(v), "value {v} is not in the input");
    }
    if cut(data) {
        assert!(r.is_err(), "a cut last line is not reported");
    }
    // A prefix's complete lines are the whole's first lines: its pairs are the whole's first
    // pairs, never one more.
    for c in cuts(data) {
        let (part, r) = collect(&data[..c]);
        assert!(
            whole.starts_with(&part),
            "cut at {c}: {part:?} is not a prefix of {whole:?}"
        );
        if cut(&data[..c]) {
            assert!(r.is_err(), "cut at {c} not reported");
        }
    }
}

pub fn single(data: &[u8]) {
    // parse_u64 itself: exactly the decimal numbers that fit.
    if let Some(v) = parse::parse_u64(data) {
        assert!(data.iter().all(u8::is_ascii_digit), "{data:?} read as {v}");
        let digits = data
            .iter()
            .position(|&b| b != b'0')
            .map_or(&b"0"[..], |i| &data[i..]);
        assert_eq!(digits, v.to_string().as_bytes());
    }
    match parse::single(data) {
        Ok(Single::Value(v)) => {
            assert!(numbers(data).contains(&v), "value {v} is not in the input");
            assert!(!cut(data), "a value read from a cut file");
        }
        Ok(Single::Unlimited) => assert!(!cut(data), "`max` read from a cut file"),
        Err(_) => {}
    }
}

pub fn cpu_max(data: &[u8]) {
    if let Ok((quota, period)) = parse::cpu_max(data) {
        let nums = numbers(data);
        assert!(!cut(data), "read from a cut file");
        assert!(
            nums.contains(&period),
            "period {period} is not in the input"
        );
        if let Single::Value(q) = quota {
            assert!(nums.contains(&q), "quota {q} is not in the input");
        }
    }
}

/// Devices are distinct, within the cap, and hold only numbers of the input.
pub fn check_devices(data: &[u8], devs: &[IoDevice], dropped: u32, files: usize) {
    check_devices_in(&numbers(data), data, devs, dropped, files);
}

fn check_devices_in(
    nums: &HashSet<u64>,
    data: &[u8],
    devs: &[IoDevice],
    dropped: u32,
    files: usize,
) {
    assert!(devs.len() <= MAX_DEVICES, "{} devices kept", devs.len());
    let lines = data.split(|&b| b == b'\n').count();
    assert!(
        dropped as usize <= lines * files,
        "{dropped} dropped from {lines} lines"
    );
    if dropped > 0 {
        assert_eq!(devs.len(), MAX_DEVICES, "dropped while below the cap");
    }
    let mut seen = HashSet::new();
    for d in devs {
        assert!(seen.insert((d.major, d.minor)), "device {d:?} twice");
        assert!(
            nums.contains(&u64::from(d.major)) && nums.contains(&u64::from(d.minor)),
            "device {d:?} is not in the input"
        );
        for v in [d.read_bytes, d.write_bytes, d.read_ops, d.write_ops]
            .into_iter()
            .flatten()
        {
            assert!(nums.contains(&v), "value {v} of {d:?} is not in the input");
        }
    }
}

pub fn io_stat(data: &[u8]) {
    let (mut devs, mut dropped) = (Vec::new(), 0);
    let r = parse::io_stat(data, &mut devs, &mut dropped);
    check_devices(data, &devs, dropped, 1);
    if cut(data) {
        assert!(r.is_err(), "a cut last line is not reported");
    }
    // A prefix never shows a device the whole file does not.
    for c in cuts(data) {
        let (mut part, mut d) = (Vec::new(), 0);
        let _ = parse::io_stat(&data[..c], &mut part, &mut d);
        for p in &part {
            assert!(
                devs.iter()
                    .any(|w| (w.major, w.minor) == (p.major, p.minor)),
                "cut at {c}: device {p:?} is not in the whole file's"
            );
        }
    }
}

pub fn blkio(data: &[u8]) {
    let (mut devs, mut dropped) = (Vec::new(), 0);
    let r = parse::blkio(data, BlkioKind::Bytes, &mut devs, &mut dropped);
    if cut(data) {
        assert!(r.is_err(), "a cut last line is not reported");
    }
    for d in &devs {
        assert!(
            d.read_ops.is_none() && d.write_ops.is_none(),
            "ops from a bytes file"
        );
    }
    // The ops file goes into the same devices, as the reader does.
    let _ = parse::blkio(data, BlkioKind::Ops, &mut devs, &mut dropped);
    check_devices(data, &devs, dropped, 2);
}

pub fn pressure(data: &[u8]) {
    let mut psi = Psi::default();
    let r = parse::pressure(data, &mut psi);
    let nums = numbers(data);
    for v in [psi.some_us, psi.full_us].into_iter().flatten() {
        assert!(nums.contains(&v), "total {v} is not in the input");
    }
    if cut(data) {
        assert!(r.is_err(), "a cut last line is not reported");
    }
}

pub fn net_dev(data: &[u8]) {
    let (mut out, mut dropped) = (Vec::new(), 0);
    let r = parse::net_dev(data, &mut out, &mut dropped);
    let nums = numbers(data);
    assert!(out.len() <= MAX_INTERFACES, "{} interfaces kept", out.len());
    if dropped > 0 {
        assert!(
            r.is_err() || out.len() == MAX_INTERFACES,
            "dropped silently"
        );
    }
    for i in &out {
        let name = std::str::from_utf8(i.name.as_bytes())
            .unwrap_or_else(|_| panic!("name {:?} is not UTF-8", i.name));
        assert!(!name.is_empty() && name.len() <= 15, "name {name:?}");
        assert!(
            !name.chars().any(|c| c.is_control() || c.is_whitespace()),
            "name {name:?} has control or space characters"
        );
        assert!(
            data.windows(name.len()).any(|w| w == name.as_bytes()),
            "name {name:?} is not in the input"
        );
        for v in [
            i.rx_bytes,
            i.rx_packets,
            i.rx_errors,
            i.rx_dropped,
            i.tx_bytes,
            i.tx_packets,
            i.tx_errors,
            i.tx_dropped,
        ] {
            assert!(
                nums.contains(&v),
                "counter {v} of {name:?} is not in the input"
            );
        }
    }
    if cut(data) {
        assert!(r.is_err(), "a cut last line is not reported");
    }
}

pub fn first_pid(data: &[u8]) {
    if let Some(pid) = parse::first_pid(data) {
        assert_ne!(pid, 0);
        assert!(
            numbers(data).contains(&u64::from(pid)),
            "pid {pid} is not in the input"
        );
    }
}

/// The first byte picks the cgroup root, the rest is the mountinfo.
pub fn mountinfo(data: &[u8]) {
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    let root = Path::new(["/sys/fs/cgroup", "/", "/host/sys/fs/cgroup"][usize::from(pick % 3)]);
    match Layout::from_mountinfo(root, text) {
        Ok(l) => {
            for p in [
                &l.unified, &l.cpu, &l.cpuacct, &l.memory, &l.blkio, &l.pids, &l.systemd,
            ]
            .into_iter()
            .flatten()
            {
                assert!(
                    p.starts_with(root),
                    "{} is not under {}",
                    p.display(),
                    root.display()
                );
            }
            // Never panics on a layout it returned.
            assert!(l.discovery_root().starts_with(root));
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
        }
    }
}

pub fn mem_total(data: &[u8]) {
    if let Ok(bytes) = machine::mem_total(data) {
        mem_total_checked(data, bytes);
    }
}

/// The checks of [`mem_total`] on a given answer.
pub fn mem_total_checked(data: &[u8], bytes: u64) {
    assert_eq!(bytes % 1024, 0, "{bytes} is not whole KiB");
    assert!(
        numbers(data).contains(&(bytes / 1024)),
        "{bytes} is not 1024 times a number of the input"
    );
}

pub fn cpu_list_len(data: &[u8]) {
    if let Ok(n) = machine::cpu_list_len(data) {
        assert!(!cut(data), "read from a cut file");
        // The list is the first line (as `single` reads the first line of a one-value file).
        let first = data.split(|&b| b == b'\n').next().unwrap_or_default();
        let highest = numbers(first).into_iter().max().unwrap_or(0);
        assert!(n >= 1, "an empty list read as {n}");
        // Ranges go up without overlap: at most every CPU up to the highest named.
        assert!(
            highest <= machine::MAX_CPU && n <= highest + 1,
            "{n} CPUs from a list topping at {highest}"
        );
        let items = first.iter().filter(|&&b| b == b',').count() as u64 + 1;
        assert!(n >= items, "{n} CPUs from {items} items");
    }
}

pub fn uevent_devname(data: &[u8]) {
    if let Ok(name) = block::uevent_devname(data) {
        devname_checked(data, name);
    }
}

/// The checks of [`uevent_devname`] on a given answer.
pub fn devname_checked(data: &[u8], name: &[u8]) {
    assert!(!name.is_empty() && name.len() <= block::MAX_DEVNAME);
    assert!(
        name.iter().all(u8::is_ascii_graphic),
        "name {name:?} has bytes that are not printable ASCII"
    );
    assert!(name[0] != b'/' && !name.windows(2).any(|w| w == b".."));
    let mut line = b"DEVNAME=".to_vec();
    line.extend_from_slice(name);
    line.push(b'\n');
    assert!(
        data.windows(line.len()).any(|w| w == line.as_slice()),
        "name {name:?} is not a complete DEVNAME line of the input"
    );
}

/// Every file name the reader knows (`unified/cpu.stat`: the hybrid host's unified one).
pub const FILES: &[&str] = &[
    "cpu.stat",
    "unified/cpu.stat",
    "cpu.max",
    "memory.current",
    "memory.max",
    "memory.stat",
    "memory.peak",
    "memory.events",
    "memory.swap.current",
    "pids.current",
    "pids.max",
    "io.stat",
    "cpu.pressure",
    "memory.pressure",
    "io.pressure",
    "cgroup.events",
    "cpuacct.usage",
    "cpuacct.stat",
    "cpu.cfs_quota_us",
    "cpu.cfs_period_us",
    "memory.usage_in_bytes",
    "memory.limit_in_bytes",
    "memory.max_usage_in_bytes",
    "memory.oom_control",
    "blkio.throttle.io_service_bytes_recursive",
    "blkio.throttle.io_serviced_recursive",
    "cpu.weight",
    "memory.min",
    "memory.swap.max",
    "cpu.shares",
    "memory.failcnt",
    "memory.soft_limit_in_bytes",
    "memory.memsw.limit_in_bytes",
];

/// Two files of one container through `plan::parse_files`: byte 0 picks v1 or v2 and the
/// first file's name, byte 1 the second's, byte 2 where the rest is split between them.
pub fn parse_files(data: &[u8]) {
    let [a, b, at, rest @ ..] = data else { return };
    let v1 = a & 0x80 != 0;
    let names = [
        FILES[usize::from(a & 0x7f) % FILES.len()],
        FILES[usize::from(*b) % FILES.len()],
    ];
    let split = usize::from(*at) * rest.len() / 255;
    let (one, two) = rest.split_at(split.min(rest.len()));
    let mut s = CgroupSample::default();
    let problems = plan::parse_files(v1, &[(names[0], one), (names[1], two)], &mut s);
    assert!(problems.len() <= 2, "{problems:?}");
    // The numbers of each file (a number may straddle the split).
    let nums: HashSet<u64> = numbers(one).union(&numbers(two)).copied().collect();
    check_sample(&s, &nums, rest, v1);
}

pub fn check_sample(s: &CgroupSample, nums: &HashSet<u64>, input: &[u8], v1: bool) {
    let m = &s.memory;
    for v in [
        m.usage,
        m.peak,
        m.limit,
        m.anon,
        m.file,
        m.inactive_file,
        m.swap,
        m.oom_kills,
        m.pgfault,
        m.pgmajfault,
        m.pgfault_own,
        m.pgmajfault_own,
        m.mapped_file,
        m.active_file,
        m.failcnt,
        m.events_high,
        m.events_max,
        s.pids.current,
        s.pids.limit,
        s.cpu.periods,
        s.cpu.throttled_periods,
        s.cpu.bursts,
        s.cpu.quota_us,
        s.cpu.period_us,
    ]
    .into_iter()
    .flatten()
    {
        assert!(nums.contains(&v), "{v} is not in the input: {s:?}");
    }
    for p in [s.cpu_pressure, s.memory_pressure, s.io_pressure]
        .into_iter()
        .flatten()
    {
        assert!(
            p.some_us.is_some() || p.full_us.is_some(),
            "empty pressure kept"
        );
        for v in [p.some_us, p.full_us].into_iter().flatten() {
            assert!(nums.contains(&v), "{v} is not in the input");
        }
    }
    // Limits as written: a value of the input, or "no limit" (v1's huge value included).
    let spec = &s.spec;
    for l in [
        spec.memory_limit,
        spec.memory_reservation,
        spec.memory_swap_limit,
        spec.pids_limit,
    ]
    .into_iter()
    .flatten()
    {
        if let Limit::Value(v) = l {
            assert!(nums.contains(&v), "limit {v} is not in the input: {spec:?}");
        }
    }
    if let (Some(l), Some(Limit::Value(v))) = (m.limit, spec.memory_limit) {
        assert_eq!(l, v, "two memory limits from one file");
    }
    // Shares: v1's as written, or a weight of the input converted.
    if let Some(shares) = s.cpu.shares {
        let converted = nums
            .iter()
            .any(|&w| plan::weight_to_shares(w) == Some(shares));
        assert!(
            nums.contains(&shares) || converted,
            "shares {shares} are not from the input"
        );
    }
    // Derived values only from their parts (defect 10b).
    match m.working_set() {
        Some(ws) => {
            let (usage, inactive) = (m.usage.unwrap(), m.inactive_file.unwrap());
            assert_eq!(ws, usage.saturating_sub(inactive));
        }
        None => assert!(m.usage.is_none() || m.inactive_file.is_none()),
    }
    if m.available().is_some() {
        assert!(m.limit.is_some() && m.working_set().is_some());
    }
    if let Some(l) = s.cpu.limit_cpus() {
        assert!(l.is_finite() && l >= 0.0, "limit {l}");
    }
    // CPU times: µs × 1,000 from cpu.stat, ns from cpuacct.usage, or v1's split of it.
    let cpu = &s.cpu;
    for v in [cpu.usage_ns, cpu.throttled_ns, cpu.burst_ns]
        .into_iter()
        .flatten()
    {
        assert!(
            from_input(v, nums, true),
            "{v} ns is not from the input: {cpu:?}"
        );
    }
    for v in [cpu.user_ns, cpu.system_ns].into_iter().flatten() {
        let split = v1 && cpu.usage_ns.is_some_and(|u| v <= u);
        assert!(
            split || from_input(v, nums, true),
            "{v} ns is not from the input: {cpu:?}"
        );
    }
    if let (true, Some(u), Some(us), Some(sy)) = (v1, cpu.usage_ns, cpu.user_ns, cpu.system_ns)
        && !from_input(us, nums, true)
    {
        assert_eq!(us + sy, u, "v1 split does not add up: {cpu:?}");
    }
    check_devices_in(nums, input, &s.io, s.io_dropped, 2);
    assert!(s.net.is_empty(), "no net/dev was given");
}

/// The disk thread's readers of procfs and the kubelet's names: the root mount of a
/// container's `mountinfo` (its writable layer), a mount's source by device, and the kubelet's
/// log link names. The first two bytes pick the device looked up.
pub fn disk_mountinfo(data: &[u8]) {
    use container_exporter::host::mountinfo::{root_mount, source_of, unescape};
    use container_exporter::metadata::sources::kubelet_logs::parse_link_name;
    let Some((dev, text)) = data.split_at_checked(2) else {
        return;
    };
    if let Some(m) = root_mount(text) {
        // An upper directory only from an overlay's own `upperdir=` option, never made up.
        if let Some(up) = &m.upperdir {
            assert_eq!(m.fstype, "overlay");
            assert!(text.windows(9).any(|w| w == b"upperdir="));
            assert!(up.as_os_str().len() <= text.len());
        }
        assert!(m.root.len() <= text.len() && m.source.len() <= text.len());
    }
    if let Some(s) = source_of(text, (u32::from(dev[0]), u32::from(dev[1]))) {
        assert!(s.len() <= text.len() * 3, "{s:?}");
    }
    // Unescaping never grows the text.
    assert!(unescape(text).len() <= text.len());
    if let Some((pod, ns, container, id)) = parse_link_name(&String::from_utf8_lossy(text)) {
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        for part in [&pod, &ns, &container] {
            assert!(
                !part.is_empty() && !part.contains('_') && !part.contains('/'),
                "{part:?}"
            );
        }
    }
}
