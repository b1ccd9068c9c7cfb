//! `container-exporter check` gives a clear verdict on a healthy host, and names the fix when
//! the cgroup root or the Docker socket is missing. Runs the real binary on this machine.

mod common;

use std::process::Command;

use common::otlp::{Proto, Receiver};

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

/// `check` sends the configured receiver one empty request: accepted (both protocols, gzip
/// as configured), refused (a warning with the receiver's answer), or nobody there.
#[test]
fn tries_the_otlp_receiver_with_an_empty_request() {
    for proto in [Proto::Grpc, Proto::Http] {
        let rx = Receiver::start(proto);
        let endpoint = rx.endpoint();
        let args = [
            "--otlp-endpoint",
            endpoint.as_str(),
            "--otlp-protocol",
            rx.protocol(),
        ];
        let envs = [
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=team-a"),
        ];
        let run = || {
            let out = Command::new(env!("CARGO_BIN_EXE_container-exporter"))
                .arg("check")
                .args(args)
                .envs(envs)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let line = text
                .lines()
                .find(|l| l.contains("otlp"))
                .unwrap()
                .to_string();
            (out.status.success(), line)
        };
        let (ok, line) = run();
        assert!(ok, "{line}");
        assert!(
            line.starts_with("ok") && line.contains("accepted an empty request"),
            "{proto:?}: {line}"
        );
        {
            let got = rx.shared.got.lock().unwrap();
            assert_eq!(got.len(), 1, "{proto:?}: one request");
            assert!(got[0].request.resource_metrics.is_empty());
            assert_eq!(
                got[0].headers.get("x-tenant").map(String::as_str),
                Some("team-a")
            );
        }
        rx.refuse(true);
        let (ok, line) = run();
        assert!(ok, "a receiver down is a warning, not a failure: {line}");
        assert!(
            line.starts_with("warn") && line.contains("would retry"),
            "{proto:?}: {line}"
        );
        assert!(rx.shared.refused.load(std::sync::atomic::Ordering::SeqCst) >= 1);
        drop(rx);
    }
    // Nobody listens.
    let port = common::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let (ok, text) = check(&["--otlp-endpoint", &endpoint]);
    let line = text.lines().find(|l| l.contains("otlp")).unwrap();
    assert!(
        ok && line.starts_with("warn") && line.contains("refused"),
        "{line}"
    );
}
