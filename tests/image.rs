//! The container image, run with exactly the README's `docker run` line, sees a sibling
//! container's CPU time, name and writable-layer usage on its Prometheus page. Needs Docker
//! (.ci/docker-up.sh).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{http_request, require_docker};

const TAG: &str = "container-exporter:ci-test";

fn sh(script: &str) -> (bool, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The README's `docker run` command, as written there.
fn readme_docker_run() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let start = readme
        .find("<!-- BEGIN docker-run -->")
        .expect("README has the docker-run block");
    let block = &readme[start..];
    let code = block
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh code block in the docker-run section");
    code.replace("\\\n", " ")
}

/// The body of `GET path` within 5 s, if there is one.
fn get(port: u16, path: &str) -> Option<String> {
    http_request(port, path, &[], Duration::from_secs(5))
        .ok()
        .map(|r| r.text())
}

struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
        }
    }
}

#[test]
fn readme_docker_run_sees_a_sibling_container() {
    require_docker();
    let build = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/build-image.sh"))
        .args([env!("CARGO_BIN_EXE_container-exporter"), TAG])
        .output()
        .expect("run .ci/build-image.sh");
    assert!(
        build.status.success(),
        "image build failed: {}",
        String::from_utf8_lossy(&build.stderr)
    );

    let pid = std::process::id();
    let exporter = format!("ce-image-{pid}");
    let sibling = format!("ce-image-sibling-{pid}");
    let _cleanup = Cleanup(vec![exporter.clone(), sibling.clone()]);

    let line = readme_docker_run()
        .replace("--name container-exporter", &format!("--name {exporter}"))
        .replace("container-exporter:latest", TAG);
    assert!(line.contains(&exporter) && line.contains(TAG), "{line}");
    let (ok, out) = sh(&line);
    assert!(ok, "the README's docker run line failed: {line}\n{out}");

    let (ok, out) = sh(&format!(
        "docker run -d --network none --name {sibling} ce-busybox:test \
         sh -c 'dd if=/dev/zero of=/f bs=1M count=2 2>/dev/null; yes >/dev/null'"
    ));
    assert!(ok, "{out}");

    // The sibling's CPU time, and its layer's usage (through the host root mounts; at the
    // latest at its second walk, a minute after the first, should the first have come before
    // its write).
    let value = |page: &str, name: &str, extra: &str| -> Option<f64> {
        page.lines()
            .find(|l| {
                l.starts_with(&format!("{name}{{"))
                    && l.contains(&format!("container_name=\"{sibling}\""))
                    && l.contains(extra)
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some(page) = get(9464, "/metrics") {
            let cpu = value(
                &page,
                "container_cpu_time_seconds_total",
                "cpu_mode=\"user\"",
            );
            let disk = value(&page, "container_filesystem_usage_bytes", "");
            if cpu.is_some_and(|v| v > 0.0) && disk.is_some_and(|v| v >= (2 << 20) as f64) {
                return;
            }
            last = page;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let (_, logs) = sh(&format!("docker logs {exporter}"));
    panic!(
        "the sibling's CPU time and layer usage never appeared on :9464/metrics\nexporter logs:\n{logs}\nlast page (sibling):\n{}",
        last.lines()
            .filter(|l| l.contains(&sibling))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
