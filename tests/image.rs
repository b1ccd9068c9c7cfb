//! The container image of the Dockerfile's `prebuilt` stage, as `.ci/build-image.sh` builds it
//! with the real Docker here:
//! - run with exactly the README's `docker run` line, it sees a sibling container's CPU time,
//!   name and writable-layer usage on its Prometheus page;
//! - what the image promises (docs/deploy.md): user 65534:65534 (in the metadata and for the
//!   running process), the entrypoint, port 9464 and nothing else exposed, no healthcheck; it
//!   starts and gets ready on a read-only root and writes nothing to its root filesystem
//!   (`docker diff`); it holds no shell or other program but the exporter (its files, listed
//!   from `docker export`, and `/bin/sh` refused as an entrypoint).
//!
//! The `build` and `runtime` stages (from source) need an image registry, which this machine
//! has not: `.ci/validate-deploy.sh` checks them statically and reports them as not tested.
//! Needs Docker (.ci/docker-up.sh).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{docker, free_port, http_request, require_docker};

const TAG: &str = "container-exporter:ci-test";

/// Builds the image once for every test of this file, with the test build of the exporter.
fn build_image() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let res = BUILT.get_or_init(|| {
        let build = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/build-image.sh"))
            .args([env!("CARGO_BIN_EXE_container-exporter"), TAG])
            .output()
            .map_err(|e| format!("run .ci/build-image.sh: {e}"))?;
        if build.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&build.stderr).into_owned())
        }
    });
    if let Err(e) = res {
        panic!("image build failed: {e}");
    }
}

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
    build_image();

    let pid = std::process::id();
    let exporter = format!("ce-image-{pid}");
    let sibling = format!("ce-image-sibling-{pid}");
    let _cleanup = Cleanup(vec![exporter.clone(), sibling.clone()]);

    // The README may name the image by `latest` or by the crate's version.
    let line = readme_docker_run()
        .replace("--name container-exporter", &format!("--name {exporter}"))
        .replace("container-exporter:latest", TAG)
        .replace(
            &format!("container-exporter:{}", env!("CARGO_PKG_VERSION")),
            TAG,
        );
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

/// `docker image inspect -f FORMAT TAG`, trimmed.
fn inspect(format: &str) -> String {
    let out = docker(&["image", "inspect", "-f", format, TAG]);
    assert!(
        out.status.success(),
        "docker image inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits until `/readyz` on `port` answers 200, or fails with the container's log.
fn wait_ready(name: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http_request(port, "/readyz", &[], Duration::from_secs(2))
            && r.status == 200
        {
            return;
        }
        if Instant::now() > deadline {
            let (_, logs) = sh(&format!("docker logs {name}"));
            let (_, state) = sh(&format!("docker inspect -f '{{{{.State}}}}' {name}"));
            panic!("{name} not ready on port {port} within 30 s ({state}); its log:\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts the image in the host's network and PID namespace, reading the host's cgroups, with
/// the page on a loopback port of its own and these extra `docker run` options; returns the port.
fn run_exporter(name: &str, extra: &[&str]) -> u16 {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "--pid",
        "host",
        "-v",
        "/sys/fs/cgroup:/host/sys/fs/cgroup:ro",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        TAG,
        "--cgroup-root",
        "/host/sys/fs/cgroup",
        "--prometheus-listen",
        &listen,
        "--docker-host",
        "off",
        "--podman-host",
        "off",
        "--cri-endpoint",
        "off",
        "--disk-interval",
        "off",
        "--interval",
        "1s",
    ]);
    let out = docker(&args);
    assert!(
        out.status.success(),
        "docker run {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    port
}

#[test]
fn prebuilt_image_metadata_is_what_the_deployments_expect() {
    require_docker();
    build_image();
    assert_eq!(
        inspect("{{.Config.User}}"),
        "65534:65534",
        "the image's user"
    );
    assert_eq!(
        inspect("{{json .Config.Entrypoint}}"),
        r#"["/container-exporter"]"#,
        "the entrypoint"
    );
    assert_eq!(
        inspect("{{json .Config.Cmd}}"),
        "null",
        "no default arguments"
    );
    assert_eq!(
        inspect("{{json .Config.ExposedPorts}}"),
        r#"{"9464/tcp":{}}"#,
        "the exposed ports"
    );
    // No HEALTHCHECK: there is no program in the image to run one with.
    assert_eq!(inspect("{{json .Config.Healthcheck}}"), "null");
}

#[test]
fn prebuilt_image_holds_the_exporter_and_its_libraries_alone() {
    require_docker();
    build_image();
    let name = format!("ce-image-files-{}", std::process::id());
    let _cleanup = Cleanup(vec![name.clone()]);
    let out = docker(&["create", "--name", &name, TAG]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, listing) = sh(&format!("docker export {name} | tar -tvf -"));
    assert!(ok, "docker export: {listing}");
    // `tar -tv` lines: mode, owner, size, date, time, path (and `-> target` for links).
    let mut files = BTreeSet::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (mode, path) = (fields[0], fields[5]);
        let path = format!("/{}", path.trim_end_matches('/'));
        match mode.as_bytes()[0] {
            b'd' => {}
            b'-' => {
                files.insert(path);
            }
            // Docker's own link to the mount table, in every container.
            b'l' if path == "/etc/mtab" => {}
            other => panic!("{path}: a {} in the image: {line}", other as char),
        }
    }
    // What Docker itself adds to every container's filesystem.
    let docker_adds = [
        "/.dockerenv",
        "/dev/console",
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
    ];
    let is_library =
        |p: &str| (p.starts_with("/lib") || p.starts_with("/usr/lib")) && p.contains(".so");
    let unexpected: Vec<&String> = files
        .iter()
        .filter(|p| {
            !is_library(p)
                && !docker_adds.contains(&p.as_str())
                && ![
                    "/container-exporter",
                    "/etc/passwd",
                    "/etc/group",
                    "/etc/nsswitch.conf",
                    "/etc/ssl/certs/ca-certificates.crt",
                ]
                .contains(&p.as_str())
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "files in the image beyond the exporter, its libraries, CA certificates and \
         passwd/group/nsswitch: {unexpected:?}"
    );
    for shell in ["sh", "bash", "dash", "ash", "busybox"] {
        assert!(
            !files.iter().any(|p| p.rsplit('/').next() == Some(shell)),
            "a {shell} in the image: {files:?}"
        );
    }
    assert!(files.contains("/container-exporter"), "{files:?}");
    assert!(
        files.contains("/etc/ssl/certs/ca-certificates.crt"),
        "no CA certificates (OTLP over TLS needs them): {files:?}"
    );

    // And no shell to start: Docker refuses /bin/sh as the entrypoint (the executable is not
    // there), before any command could run.
    let out = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        TAG,
        "-c",
        "exit 0",
    ]);
    assert!(
        !out.status.success(),
        "/bin/sh ran in the image: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no such file or directory") || err.contains("not found"),
        "/bin/sh failed, but not for being absent: {err}"
    );
}

#[test]
fn prebuilt_image_runs_read_only_as_65534_and_writes_nothing() {
    require_docker();
    build_image();
    let pid = std::process::id();
    let ro = format!("ce-image-ro-{pid}");
    let rw = format!("ce-image-rw-{pid}");
    let _cleanup = Cleanup(vec![ro.clone(), rw.clone()]);

    // On a read-only root it starts, reads the host's cgroups and gets ready.
    let port = run_exporter(&ro, &["--read-only", "--cap-drop", "ALL"]);
    wait_ready(&ro, port);
    let page = get(port, "/metrics").expect("the page");
    assert!(
        page.contains("container_exporter_containers_tracked"),
        "the page of the read-only container has no self-metrics:\n{}",
        &page[..page.len().min(2000)]
    );
    // Its process runs as the image's user, not root.
    let (ok, host_pid) = sh(&format!("docker inspect -f '{{{{.State.Pid}}}}' {ro}"));
    assert!(ok, "{host_pid}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", host_pid.trim()))
        .expect("the container's process status");
    for key in ["Uid:", "Gid:"] {
        let ids: Vec<&str> = status
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in {status}"))
            .split_whitespace()
            .skip(1)
            .collect();
        assert!(
            ids.iter().all(|id| *id == "65534"),
            "the exporter's {key} {ids:?}, not 65534"
        );
    }

    // With a writable root, after it has read and served, its root filesystem is unchanged:
    // what --read-only relies on.
    let port = run_exporter(&rw, &["--cap-drop", "ALL"]);
    wait_ready(&rw, port);
    get(port, "/metrics").expect("the page");
    std::thread::sleep(Duration::from_secs(2));
    let (ok, diff) = sh(&format!("docker diff {rw}"));
    assert!(ok, "docker diff: {diff}");
    // Docker itself adds the directories it mounts the host's cgroups on.
    let written: Vec<&str> = diff
        .lines()
        .filter(|l| {
            !l.strip_prefix("A ")
                .is_some_and(|p| "/host/sys/fs/cgroup".starts_with(p))
        })
        .collect();
    assert!(
        written.is_empty(),
        "the exporter wrote to its root filesystem:\n{}",
        written.join("\n")
    );
}
