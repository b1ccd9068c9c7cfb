//! A Docker label of 4 MiB (the Docker API takes it; the CLI's `--label-file` reads lines of
//! at most 64 KiB, so the container is created through the API), shown through
//! `--container-labels` (issue 18): cut to `--attribute-value-length-limit` at a character
//! boundary, on the page and in OTLP alike; counted and warned about once; the exporter's
//! memory does not take megabytes for it; and a real Prometheus server with
//! `label_value_length_limit` takes the host's page (before, it refused the whole scrape).
//! And 200 labels allowed by a glob (a prefix of their own, so that neither test's exporters
//! count the other's container), bounded in number by `--attribute-count-limit`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::exporter::Exporter;
use common::otlp::{Proto, Receiver, attr, resource};
use common::prometheus::{Prometheus, label};
use common::{Container, IMAGE, TempDir, require_docker, unique_name};

const SOCKET: &str = "/var/run/docker.sock";

/// `curl` on Docker's socket: the response body.
fn docker_api(method: &str, path: &str, body: Option<&std::path::Path>) -> String {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--fail-with-body",
        "--unix-socket",
        SOCKET,
        "-X",
        method,
    ]);
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(format!("@{}", b.display()));
    }
    let out = cmd
        .arg(format!("http://localhost/v1.41{path}"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{method} {path}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A running container created through the API with these labels.
fn container_with_labels(labels: &serde_json::Value) -> Container {
    require_docker();
    let mut c = Container {
        name: unique_name(),
        id: String::new(),
        host: None,
    };
    let tmp = TempDir::new();
    let body = tmp.0.join("create.json");
    let doc = serde_json::json!({
        "Image": IMAGE,
        "Cmd": ["sleep", "300"],
        "Labels": labels,
        "HostConfig": {"NetworkMode": "none"},
    });
    std::fs::write(&body, serde_json::to_vec(&doc).unwrap()).unwrap();
    let created = docker_api(
        "POST",
        &format!("/containers/create?name={}", c.name),
        Some(&body),
    );
    let v: serde_json::Value = serde_json::from_str(&created).expect("create's answer");
    c.id = v["Id"].as_str().expect("an Id").to_string();
    docker_api("POST", &format!("/containers/{}/start", c.id), None);
    c
}

/// The page once the container's `container_info` carries `label`.
fn info_with_label(exp: &Exporter, id: &str, label: &str) -> common::page::Page {
    exp.wait_for(
        "the container's info with its labels",
        Duration::from_secs(30),
        id,
        |p| {
            p.series("container_info", &[("container_id", id)])
                .first()
                .is_some_and(|s| s.labels.contains_key(label))
        },
    )
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

const LIMIT: usize = 2048;
const MIB: u64 = 1 << 20;

#[test]
fn a_label_of_megabytes_is_cut_everywhere_and_prometheus_takes_the_page() {
    let rx = Receiver::start(Proto::Http);
    let exp = Exporter::start(&[
        "--interval",
        "1s",
        "--container-labels",
        "ce.*",
        "--podman-host",
        "off",
        "--cri-endpoint",
        "off",
        "--otlp-endpoint",
        &rx.endpoint(),
        "--otlp-protocol",
        rx.protocol(),
    ]);
    exp.wait_for("three ticks", Duration::from_secs(15), "", |p| {
        p.value("container_exporter_collections_total", &[]) >= 3.0
    });
    let rss_before = rss(exp.pid());

    // 4 MiB of a three-byte character after one ASCII one: the bound falls inside a
    // character, which must not be split.
    let big: String = std::iter::once('a')
        .chain(std::iter::repeat_n('€', (4 << 20) / 3))
        .collect();
    let c = container_with_labels(&serde_json::json!({"ce.big": big, "ce.small": "ok"}));
    let page = info_with_label(&exp, &c.id, "container_label_ce_small");
    let info = &page.series("container_info", &[("container_id", &c.id)])[0];
    let value = &info.labels["container_label_ce_big"];
    assert_eq!(
        value.len(),
        LIMIT - 1,
        "cut to the last whole character within {LIMIT} bytes"
    );
    assert!(big.starts_with(value.as_str()));
    assert_eq!(info.labels["container_label_ce_small"], "ok");
    let longest = page.text.lines().map(str::len).max().unwrap_or(0);
    assert!(
        longest < 2 * LIMIT + 1024,
        "the page's longest line is {longest} bytes"
    );
    assert!(page.value("container_exporter_metadata_values_cut_total", &[]) >= 1.0);

    // OTLP: the same value.
    let otlp_value = rx.wait_for(
        "the container's resource over OTLP",
        Duration::from_secs(15),
        |got| {
            got.iter().rev().find_map(|g| {
                resource(&g.request, &c.id).and_then(|r| attr(r, "container.label.ce.big"))
            })
        },
    );
    assert_eq!(&otlp_value, value, "OTLP has the same bound");

    // Memory: a few more ticks (pages rendered, requests encoded), then what it holds.
    let n = page.value("container_exporter_collections_total", &[]);
    exp.wait_for("five more ticks", Duration::from_secs(15), "", |p| {
        p.value("container_exporter_collections_total", &[]) >= n + 5.0
    });
    let grown = rss(exp.pid()).saturating_sub(rss_before);
    eprintln!(
        "RSS grew by {:.1} MiB with a 4 MiB label",
        grown as f64 / MIB as f64
    );
    // Before the cut the label took 43 MB (kept, on the page, in the page's spare buffer, in
    // OTLP requests). Now only the reading costs: the inspect answer, its parse and the
    // label's copy hold it a few times over while they last, and the allocator keeps some
    // of that (measured: 17 MiB); nothing keeps, renders or sends it whole.
    assert!(
        grown < 24 * MIB,
        "RSS grew by {} MiB for one 4 MiB label",
        grown / MIB
    );

    let log = exp.log_text();
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(&c.id) && l.contains("cut"))
        .count();
    assert_eq!(warnings, 1, "one warning for the container:\n{log}");

    // A real Prometheus server that refuses label values longer than 4096 bytes takes the
    // page whole.
    let prom = Prometheus::start_with(
        &format!(
            "  - job_name: container-exporter\n    label_value_length_limit: 4096\n    \
             static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            exp.port
        ),
        None,
    );
    let up = prom.wait_query("up{job=\"container-exporter\"} == 1", 1);
    assert_eq!(label(&up[0], "job"), Some("container-exporter"));
    let series = prom.wait_query(&format!("container_info{{container_id=\"{}\"}}", c.id), 1);
    assert_eq!(
        label(&series[0], "container_label_ce_big").map(str::len),
        Some(LIMIT - 1)
    );
}

/// 200 labels, all allowed by a glob, with `--attribute-count-limit 50`: the first 50 in key
/// order on the page (`container_info` and every series of the cAdvisor page) and in OTLP,
/// the other 150 counted and warned about once.
#[test]
fn labels_past_the_count_are_left_out_everywhere() {
    let rx = Receiver::start(Proto::Http);
    let exp = Exporter::start(&[
        "--interval",
        "1s",
        "--container-labels",
        "cn.*",
        "--attribute-count-limit",
        "50",
        "--podman-host",
        "off",
        "--cri-endpoint",
        "off",
        "--otlp-endpoint",
        &rx.endpoint(),
        "--otlp-protocol",
        rx.protocol(),
    ]);
    let cadvisor = Exporter::start(&[
        "--interval",
        "1s",
        "--container-labels",
        "cn.*",
        "--attribute-count-limit",
        "50",
        "--prometheus-names",
        "cadvisor",
        "--podman-host",
        "off",
        "--cri-endpoint",
        "off",
    ]);
    // Listed in reverse, so that key order is not the order Docker keeps them in by chance.
    let labels: serde_json::Map<String, serde_json::Value> = (0..200)
        .rev()
        .map(|i| {
            (
                format!("cn.l{i:03}"),
                serde_json::Value::from(i.to_string()),
            )
        })
        .collect();
    let c = container_with_labels(&serde_json::Value::Object(labels));
    let want: Vec<String> = (0..50).map(|i| format!("cn_l{i:03}")).collect();
    let shown = |labels: &std::collections::BTreeMap<String, String>| -> Vec<String> {
        labels
            .keys()
            .filter_map(|k| k.strip_prefix("container_label_"))
            .map(str::to_owned)
            .collect()
    };

    let page = info_with_label(&exp, &c.id, "container_label_cn_l000");
    let info = &page.series("container_info", &[("container_id", &c.id)])[0];
    assert_eq!(shown(&info.labels), want);
    assert_eq!(info.labels["container_label_cn_l049"], "49");
    // Exactly its 150: the other test of this file, run alongside, allows `ce.*` only.
    assert_eq!(
        page.value("container_exporter_metadata_values_cut_total", &[]),
        150.0
    );

    // The cAdvisor page: the same 50 on every series of the container.
    let page = cadvisor.wait_for(
        "the container's series with its labels",
        Duration::from_secs(30),
        &c.id,
        |p| {
            p.samples.iter().any(|s| {
                s.name == "container_cpu_usage_seconds_total"
                    && s.labels.get("id").is_some_and(|id| id.ends_with(&c.id))
                    && s.labels.contains_key("container_label_cn_l000")
            })
        },
    );
    let series: Vec<_> = page
        .samples
        .iter()
        .filter(|s| s.labels.get("id").is_some_and(|id| id.ends_with(&c.id)))
        .collect();
    assert!(series.len() > 10, "{} series", series.len());
    for s in &series {
        assert_eq!(shown(&s.labels), want, "{}", s.name);
    }

    // OTLP: the same 50 attributes on the container's resource.
    let keys = rx.wait_for(
        "the container's resource over OTLP",
        Duration::from_secs(15),
        |got| {
            got.iter().rev().find_map(|g| {
                let r = resource(&g.request, &c.id)?;
                let keys: Vec<String> = r
                    .resource
                    .as_ref()?
                    .attributes
                    .iter()
                    .filter_map(|kv| kv.key.strip_prefix("container.label."))
                    .map(|k| k.replace('.', "_"))
                    .collect();
                (!keys.is_empty()).then_some(keys)
            })
        },
    );
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, want);

    let log = exp.log_text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(&c.id))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("150 labels past --attribute-count-limit (50)"),
        "{}",
        warnings[0]
    );
}
