//! `container-exporter check` gives a clear verdict on a healthy host, and names the fix when
//! the cgroup root or the Docker socket is missing. Runs the real binary on this machine.

use std::process::Command;

fn check(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_container-exporter"))
        .arg("check")
        .args(args)
        .output()
        .expect("run container-exporter check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn healthy_host() {
    let (ok, text) = check(&[]);
    assert!(ok, "check failed on this host:\n{text}");
    assert!(text.contains("verdict: the exporter works here"), "{text}");
    let cgroups = text
        .lines()
        .find(|l| l.contains("cgroups"))
        .expect("a cgroups line");
    assert!(cgroups.starts_with("ok"), "{cgroups}");
    assert!(
        text.contains("Docker ") && text.contains("API"),
        "Docker is up in CI:\n{text}"
    );
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn missing_cgroup_root_fails_with_the_fix() {
    let (ok, text) = check(&["--cgroup-root", "/nonexistent/cgroup"]);
    assert!(!ok, "check must fail without cgroups:\n{text}");
    assert!(text.contains("FAIL"), "{text}");
    assert!(
        text.contains("--cgroup-root"),
        "the message names the fix:\n{text}"
    );
    assert!(text.contains("cannot work here"), "{text}");
}

#[test]
fn missing_docker_socket_warns_but_works() {
    let (ok, text) = check(&["--docker-host", "unix:///nonexistent/docker.sock"]);
    assert!(ok, "metrics work without Docker:\n{text}");
    let line = text
        .lines()
        .find(|l| l.contains("docker") && l.starts_with("warn"))
        .unwrap_or_else(|| panic!("a docker warning:\n{text}"));
    assert!(line.contains("/nonexistent/docker.sock"), "{line}");
    assert!(line.contains("--docker-host"), "the fix is named: {line}");
}

#[test]
fn too_few_descriptors_fail() {
    // A limit too low for even one container: the exporter could not keep its files open.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 40 && exec {} check",
            env!("CARGO_BIN_EXE_container-exporter")
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("open-file limit") && text.contains("ulimit"),
        "{text}"
    );
}

#[test]
fn says_where_otlp_would_go_and_refuses_a_bad_setting() {
    let run = |envs: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_container-exporter"))
            .arg("check")
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, text) = run(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector.example:4317",
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret"),
    ]);
    assert!(ok, "{text}");
    let line = text.lines().find(|l| l.contains("otlp")).unwrap();
    assert!(
        line.contains("grpc to http://collector.example:4317"),
        "{line}"
    );
    assert!(
        line.contains("api-key") && !line.contains("secret"),
        "header names only: {line}"
    );

    let (ok, text) = run(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector.example:4318",
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
    ]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAIL") && text.contains("OTEL_EXPORTER_OTLP_PROTOCOL"),
        "{text}"
    );
}
