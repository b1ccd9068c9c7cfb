//! What one hostile file costs the parsers (issue 11, defect 11): an `io.stat` and a `net/dev`
//! listing far more devices and interfaces than a container has, against the floor measured
//! in the same run: one pass over the very same bytes splitting lines, with no parsing. The
//! ratio stays flat from 1,000 to 50,000 lines (a linear parser); a lookup that scanned every
//! device kept so far would grow with the line count.
//!
//! `cargo bench --bench parse` (no root needed). 50,000 devices is what fits in the reader's
//! 4 MiB read limit.

use container_exporter::cgroup::parse;
use container_exporter::cgroup::sample::{IoDevice, NetIface};
use divan::{Bencher, counter::BytesCount};

const SIZES: &[u32] = &[1_000, 10_000, 50_000];

fn io_stat_text(devices: u32) -> Vec<u8> {
    let mut text = Vec::new();
    for i in 0..devices {
        let (major, minor) = (8 + i / 1_000_000, i % 1_000_000);
        text.extend_from_slice(
            format!(
                "{major}:{minor} rbytes={} wbytes=4096 rios=17 wios=1 dbytes=0 dios=0\n",
                u64::from(i) * 512
            )
            .as_bytes(),
        );
    }
    text
}

fn net_dev_text(interfaces: u32) -> Vec<u8> {
    let mut text = b"Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n".to_vec();
    for i in 0..interfaces {
        text.extend_from_slice(
            format!("v{i}: {i} 29 0 0 0 0 0 0 3193 29 0 0 0 0 0 0\n").as_bytes(),
        );
    }
    text
}

/// The floor: every line of the file found, nothing parsed.
fn lines_floor(text: &[u8]) -> usize {
    text.split(|&b| b == b'\n').map(<[u8]>::len).sum()
}

#[divan::bench(args = SIZES)]
fn floor_io_stat_lines(bencher: Bencher, devices: u32) {
    let text = io_stat_text(devices);
    bencher
        .counter(BytesCount::of_slice(&text))
        .bench_local(|| lines_floor(divan::black_box(&text)));
}

#[divan::bench(args = SIZES)]
fn io_stat(bencher: Bencher, devices: u32) {
    let text = io_stat_text(devices);
    let mut out: Vec<IoDevice> = Vec::new();
    bencher
        .counter(BytesCount::of_slice(&text))
        .bench_local(|| {
            out.clear();
            let mut dropped = 0;
            let _ = parse::io_stat(divan::black_box(&text), &mut out, &mut dropped);
            dropped
        });
}

#[divan::bench(args = SIZES)]
fn floor_net_dev_lines(bencher: Bencher, interfaces: u32) {
    let text = net_dev_text(interfaces);
    bencher
        .counter(BytesCount::of_slice(&text))
        .bench_local(|| lines_floor(divan::black_box(&text)));
}

#[divan::bench(args = SIZES)]
fn net_dev(bencher: Bencher, interfaces: u32) {
    let text = net_dev_text(interfaces);
    let mut out: Vec<NetIface> = Vec::new();
    bencher
        .counter(BytesCount::of_slice(&text))
        .bench_local(|| {
            out.clear();
            let mut dropped = 0;
            let _ = parse::net_dev(divan::black_box(&text), &mut out, &mut dropped);
            dropped
        });
}

fn main() {
    divan::main();
}
