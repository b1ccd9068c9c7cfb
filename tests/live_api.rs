//! The live view's JSON API and its guards, over HTTP against the real binary (issue #25):
//! basic auth covers the page, its files and its API (401 without credentials); with
//! `--live-view=false` they are all 404; every answer carries the CSP; the API is incremental
//! (`since`), bounded (`limit`), and says what is wrong with a bad request (400, 404, 405);
//! a container's own answer has its attributes, and one that ended is listed with its exit.
//!
//! The tests with containers need root and `.ci/docker-up.sh`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::exporter::Exporter;
use common::{Container, TempDir};
use serde_json::Value;

fn json(e: &Exporter, path: &str) -> (u16, Value) {
    let r = e.get(path, &[]);
    let v =
        serde_json::from_slice(&r.body).unwrap_or_else(|err| panic!("{path}: {err}: {}", r.text()));
    (r.status, v)
}

/// Polls `path` until `ok` holds.
fn wait_json(e: &Exporter, what: &str, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, v) = json(e, path);
        if status == 200 && ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within 30 s; last answer {status}: {v}\n{}",
            e.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn no_runtimes() -> [&'static str; 6] {
    [
        "--docker-host",
        "off",
        "--podman-host",
        "off",
        "--cri-endpoint",
        "off",
    ]
}

#[test]
fn basic_auth_guards_the_page_its_files_and_its_api() {
    let dir = TempDir::new();
    let config = dir.0.join("web.yml");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(&config, format!("basic_auth_users:\n  viewer: {hash}\n")).unwrap();
    let mut args = vec![
        "--interval",
        "1s",
        "--web.config.file",
        config.to_str().unwrap(),
    ];
    args.extend(no_runtimes());
    let e = Exporter::start_with_env(&args, &[]);
    use base64::Engine;
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("viewer:s3cret")
    );
    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("viewer:wrong")
    );
    for path in [
        "/",
        "/ui/app.js",
        "/ui/uPlot.iife.min.js",
        "/api/v1/overview",
        "/api/v1/ended",
    ] {
        let r = e.get(path, &[]);
        assert_eq!(r.status, 401, "{path} without credentials: {}", r.text());
        assert_eq!(r.header("www-authenticate"), Some("Basic"), "{path}");
        assert!(
            !r.text().contains("container"),
            "{path}: a 401 says nothing: {}",
            r.text()
        );
        assert_eq!(
            e.get(path, &[("Authorization", &bad)]).status,
            401,
            "{path}: a wrong password"
        );
        let r = e.get(path, &[("Authorization", &good)]);
        assert_eq!(r.status, 200, "{path} with credentials: {}", r.text());
    }
    // Probes stay open, as before.
    assert_eq!(e.get("/healthz", &[]).status, 200);
}

#[test]
fn turned_off_the_page_and_its_api_are_not_found() {
    let mut args = vec!["--interval", "1s", "--live-view=false"];
    args.extend(no_runtimes());
    let e = Exporter::start_with_env(&args, &[]);
    for path in [
        "/",
        "/ui/app.js",
        "/api/v1/overview",
        "/api/v1/containers/x",
    ] {
        assert_eq!(e.get(path, &[]).status, 404, "{path}");
    }
    assert_eq!(e.get("/metrics", &[]).status, 200);
}

/// `method path` with no body; the status.
fn status_of(port: u16, method: &str, path: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_api_is_incremental_bounded_and_says_what_is_wrong() {
    let mut args = vec!["--interval", "1s", "--live-history", "5s"];
    args.extend(no_runtimes());
    let e = Exporter::start_with_env(&args, &[]);
    // The page and its files, with the headers that keep hostile values inert.
    let page = e.get("/", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").unwrap_or_default();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(page.text().contains("/ui/app.js"));
    let js = e.get("/ui/app.js", &[]);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let tag = js.header("etag").unwrap().to_string();
    assert_eq!(e.get("/ui/app.js", &[("If-None-Match", &tag)]).status, 304);
    assert_eq!(e.get("/ui/nothing.js", &[]).status, 404);

    // Incremental: a tick later, `since` gives just the new one.
    let first = wait_json(&e, "two ticks", "/api/v1/overview", |v| {
        v["seq"].as_u64() >= Some(2)
    });
    assert_eq!(first["version"], 1);
    assert_eq!(first["capacity"], 5, "5s of history at 1s");
    assert_eq!(first["series"].as_array().unwrap().len(), 10);
    let seq = first["seq"].as_u64().unwrap();
    let (_, next) = json(&e, &format!("/api/v1/overview?since={}", seq - 1));
    assert_eq!(next["from"], seq, "{next}");
    let ticks = next["times"].as_array().unwrap().len() as u64;
    assert_eq!(ticks, next["seq"].as_u64().unwrap() - seq + 1, "{next}");
    // The ring keeps five ticks: older `since` gives what is kept.
    let later = wait_json(&e, "eight ticks", "/api/v1/overview?since=0", |v| {
        v["seq"].as_u64() >= Some(8)
    });
    assert_eq!(later["times"].as_array().unwrap().len(), 5, "{later}");
    let r = e.get("/api/v1/overview", &[("Accept-Encoding", "gzip")]);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("application/json"));

    // Bad requests: 400 with a JSON error that says why; unknown things 404; other methods 405.
    let bad = [
        ("/api/v1/overview?since=abc", 400, "not a whole number"),
        (
            "/api/v1/overview?since=99999999",
            400,
            "past the newest tick",
        ),
        ("/api/v1/overview?limit=0", 400, "one row at least"),
        ("/api/v1/overview?limit=100000", 400, "rows per response"),
        ("/api/v1/overview?limit=1&limit=2", 400, "given twice"),
        (
            "/api/v1/overview?color=red",
            400,
            "unknown parameter `color`",
        ),
        ("/api/v1/ended?since=1", 400, "unknown parameter"),
        (
            "/api/v1/containers/0123456789abcdef",
            404,
            "no container or pod",
        ),
        ("/api/v1/nothing", 404, "no such path"),
        ("/api/v2/overview", 404, "no such path"),
    ];
    for (path, status, says) in bad {
        let (got, v) = json(&e, path);
        assert_eq!(got, status, "{path}: {v}");
        assert_eq!(v["status"], status, "{path}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{path}: {v}");
    }
    for method in ["POST", "PUT", "DELETE"] {
        assert_eq!(
            status_of(e.port, method, "/api/v1/overview"),
            405,
            "{method}"
        );
    }
}

#[test]
fn a_container_its_own_view_and_its_end() {
    let e = Exporter::start(&[
        "--interval",
        "1s",
        "--podman-host",
        "off",
        "--cri-endpoint",
        "off",
        "--container-labels",
        "team",
    ]);
    let c = Container::run(&["--label", "team=<b>blue</b>"], &["sleep", "3600"]);
    let ends = Container::sh(&[], "sleep 3; exit 3");
    // Its cgroup may be found a tick before Docker has named it: wait for the name.
    let v = wait_json(
        &e,
        "the container, named, in the overview",
        "/api/v1/overview",
        |v| {
            v["rows"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == c.id.as_str() && r["identity"]["image"].is_string())
        },
    );
    let row = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == c.id.as_str())
        .unwrap();
    assert_eq!(row["kind"], "container");
    assert_eq!(row["running"], true);
    assert_eq!(row["identity"]["image"], "ce-busybox:test", "{row}");
    assert_eq!(row["identity"]["runtime"], "docker");
    assert_eq!(row["points"].as_array().unwrap().len(), 10);
    // Its identity comes again only when it changes.
    let seq = v["seq"].as_u64().unwrap();
    let later = wait_json(
        &e,
        "a later tick",
        &format!("/api/v1/overview?since={seq}"),
        |v| v["seq"].as_u64() > Some(seq),
    );
    let row = later["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == c.id.as_str())
        .unwrap();
    assert!(row.get("identity").is_none(), "{row}");
    assert!(
        row["points"][1]
            .as_array()
            .unwrap()
            .iter()
            .any(Value::is_number),
        "memory: {row}"
    );

    // Its own view, by a 12-character prefix of its id too: its labels as they are.
    let (status, one) = json(&e, &format!("/api/v1/containers/{}", &c.id[..12]));
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["id"], c.id.as_str());
    let attrs = one["attributes"].as_array().unwrap();
    assert!(
        attrs
            .iter()
            .any(|a| a[0] == "container.label.team" && a[1] == "<b>blue</b>"),
        "{one}"
    );
    assert!(
        attrs
            .iter()
            .any(|a| a[0] == "container.name" && a[1] == c.name.as_str()),
        "{one}"
    );
    // The raw body never carries the markup as such.
    let raw = e.get(&format!("/api/v1/containers/{}", c.id), &[]).text();
    assert!(
        !raw.contains("<b>") && raw.contains("\\u003cb\\u003e"),
        "{raw}"
    );
    // Viewed, it is followed: every series from the next tick on.
    let path = format!("/api/v1/containers/{}", c.id);
    let full = wait_json(&e, "its every series", &path, |v| {
        v["detail"]
            .as_array()
            .is_some_and(|d| d.iter().any(|s| s["metric"] == "container.memory.usage"))
    });
    assert!(full["limits"]["memory"]["changes"].is_array(), "{full}");

    // One that ended is listed with its exit.
    ends.wait_exit();
    let ended = wait_json(&e, "the ended container", "/api/v1/ended", |v| {
        v["ended"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == ends.id.as_str())
    });
    let row = ended["ended"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == ends.id.as_str())
        .unwrap();
    assert_eq!(row["exit_code"], 3, "{row}");
    assert_eq!(row["reason"], "Error", "{row}");
    assert_eq!(row["identity"]["name"], ends.name.as_str(), "{row}");
    assert!(row["cpu_seconds"].is_number(), "{row}");
    // Its view still answers, with its end.
    let (status, gone) = json(&e, &format!("/api/v1/containers/{}", ends.id));
    assert_eq!(status, 200, "{gone}");
    assert_eq!(gone["running"], false);
    assert_eq!(gone["ended"][0]["exit_code"], 3, "{gone}");
}
