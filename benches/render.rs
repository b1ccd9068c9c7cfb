//! Rendering the Prometheus page for 1,000 synthetic containers with the full metric set
//! (2 network interfaces and 2 block devices each), as the daemon does once per tick, with the
//! OpenTelemetry names and with cAdvisor's, and gzip of the result (done once per tick, on the first scrape that asks for it).
//!
//! `cargo bench --bench render` (no root needed).

use std::sync::Arc;
use std::time::SystemTime;

use container_exporter::collect::ContainerState;
use container_exporter::config::Naming;
use container_exporter::export::prom::{Described, PromRenderer};
use container_exporter::metadata::ContainerMeta;
use container_exporter::telemetry::{ProcessStats, Telemetry};
use divan::Bencher;

#[path = "common/synthetic.rs"]
mod synthetic;

use synthetic::containers;

fn main() {
    divan::main();
}

#[divan::bench]
fn render_1000_containers(bencher: Bencher) {
    render(bencher, Naming::Otel);
}

/// The same containers on the cAdvisor-compatible page (`--prometheus-names cadvisor`).
#[divan::bench]
fn render_1000_containers_cadvisor(bencher: Bencher) {
    render(bencher, Naming::Cadvisor);
}

fn render(bencher: Bencher, naming: Naming) {
    let cs = containers();
    let telemetry = Telemetry::default();
    let process = ProcessStats::default();
    let mut renderer = PromRenderer::new(Some("node-1".into()), naming);
    let now = SystemTime::now();
    // The first render builds each container's label block; later ticks reuse them.
    let mut page = Vec::new();
    renderer.render(
        &mut page,
        now,
        cs.iter().map(describe),
        &telemetry,
        &process,
    );
    let series = page
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .count();
    eprintln!("{naming:?} page: {} bytes, {series} series", page.len());
    bencher.bench_local(|| {
        renderer.render(
            &mut page,
            now,
            cs.iter().map(describe),
            &telemetry,
            &process,
        );
        page.len()
    });
}

#[divan::bench]
fn gzip_1000_container_page(bencher: Bencher) {
    let cs = containers();
    let mut renderer = PromRenderer::new(Some("node-1".into()), Naming::Otel);
    let mut page = Vec::new();
    renderer.render(
        &mut page,
        SystemTime::now(),
        cs.iter().map(describe),
        &Telemetry::default(),
        &ProcessStats::default(),
    );
    bencher.bench_local(|| {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&page).unwrap();
        enc.finish().unwrap().len()
    });
}

fn describe((state, meta): &(ContainerState, Arc<ContainerMeta>)) -> Described<'_> {
    Described {
        state,
        meta: Some(meta.clone()),
        pod: None,
    }
}
