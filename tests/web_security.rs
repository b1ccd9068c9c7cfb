//! The page's security layer (`--web.config.file`, issue 11) against real clients: a real
//! Prometheus (Debian's `prometheus`) scraping over mutual TLS with basic auth, and `curl` as an
//! operator would probe it, with certificates made here by the `openssl` CLI.
//!
//! - Prometheus scrapes over TLS with a client certificate and basic auth: `up` is 1 and the
//!   exporter's own counters arrive; without credentials curl gets 401, with the wrong CA the
//!   handshake fails, without a client certificate it is refused, plain HTTP gets no page.
//! - A wrong bcrypt hash: Prometheus's scrape is refused (`up` 0, HTTP 401).
//! - Each client_auth_type and client_allowed_sans does what Go's does; HTTP/2 by ALPN unless
//!   `http2: false`; `rate_limit` answers 429 past its burst.
//! - A rotated certificate is served after SIGHUP, and after a plain change of the files; a
//!   broken file keeps the previous configuration.
//! - A file with an unknown key stops the exporter at start with a message naming the key.
//!
//! They need `openssl`, `curl` (`.ci/tls-tools-up.sh`) and `prometheus` (`.ci/prometheus-up.sh`).
//! They fail, not skip, without them.

mod common;

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use common::tls::{Pki, curl, exporter_bin, served_cn, start_exporter};
use common::{free_port, http_get, log_tail, terminate, unique_name, urlencode};

/// `s3cret`, bcrypt cost 4 (any cost is accepted; a low one keeps a debug build quick).
fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

/// A Prometheus server on a loopback port scraping `target` with `job` (YAML lines under the
/// scrape config), every second.
struct Prometheus {
    child: Option<Child>,
    port: u16,
    log: std::path::PathBuf,
    _dir: common::TempDir,
}

impl Prometheus {
    fn start(target: u16, job: &str) -> Prometheus {
        let dir = common::TempDir::new();
        let port = free_port();
        let cfg = dir.0.join("prometheus.yml");
        fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n\
                 - job_name: ce\n{job}  static_configs:\n  - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .unwrap();
        let log = std::env::temp_dir().join(format!("{}-prometheus.log", unique_name()));
        let f = fs::File::create(&log).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("cannot start prometheus (run .ci/prometheus-up.sh)");
        let mut p = Prometheus {
            child: Some(child),
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(http_get(port, "/-/ready"), Ok(r) if r.status == 200) {
            if let Some(st) = p.child.as_mut().unwrap().try_wait().unwrap() {
                p.child = None;
                panic!("prometheus exited ({st}):\n{}", log_tail(&p.log, 30));
            }
            assert!(Instant::now() < deadline, "prometheus not ready in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// The value of an instant query with one result, when it has one.
    fn query(&self, q: &str) -> Option<f64> {
        let r = http_get(self.port, &format!("/api/v1/query?query={}", urlencode(q))).ok()?;
        let v: Value = serde_json::from_slice(&r.body).ok()?;
        let res = v["data"]["result"].as_array()?;
        res.first()?["value"][1].as_str()?.parse().ok()
    }

    /// The last scrape error of the target.
    fn last_error(&self) -> String {
        let r = http_get(self.port, "/api/v1/targets").unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        v["data"]["activeTargets"][0]["lastError"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Polls `q` until `ok` holds of its value.
    fn wait(&self, what: &str, q: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(v) = self.query(q)
                && ok(v)
            {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: `{q}` is {:?} after 30 s; last scrape error: {:?}\n{}",
                self.query(q),
                self.last_error(),
                log_tail(&self.log, 20)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(10), Duration::from_millis(50));
        }
        let _ = fs::remove_file(&self.log);
    }
}

/// A CA, a server certificate, a client certificate, and a second CA with its own client.
fn pki() -> Pki {
    let p = Pki::new();
    p.ca("ca");
    p.ca("other-ca");
    p.server("server", "ca", "first");
    p.client("client", Some("ca"), "DNS:scraper.example");
    p.client("stranger", Some("other-ca"), "DNS:scraper.example");
    p
}

fn s(p: std::path::PathBuf) -> String {
    p.display().to_string()
}

#[test]
fn prometheus_scrapes_over_mutual_tls_with_basic_auth() {
    let p = pki();
    let cfg = p.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  \
             min_version: TLS12\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    \
             X-Content-Type-Options: nosniff\nbasic_auth_users:\n  prom: {}\n",
            hash("s3cret")
        ),
    );
    let ca = s(p.path("ca.pem"));
    let (cert, key) = (s(p.path("client.pem")), s(p.path("client.key")));
    let mtls = ["--cacert", &ca, "--cert", &cert, "--key", &key];
    let e = start_exporter(
        &["--interval", "500ms", "--web.config.file", &s(cfg)],
        &[],
        (&mtls, "https"),
    );
    let base = format!("https://127.0.0.1:{}", e.port);
    let metrics = format!("{base}/metrics");

    // A real Prometheus, with the client certificate and the password.
    let prom = Prometheus::start(
        e.port,
        &format!(
            "  scheme: https\n  tls_config:\n    ca_file: {ca}\n    cert_file: {cert}\n    \
             key_file: {key}\n  basic_auth:\n    username: prom\n    password: s3cret\n"
        ),
    );
    prom.wait("the scrape is up", "up{job=\"ce\"}", |v| v == 1.0);
    // The exporter's own counters arrived through it, and they move.
    let first = prom.wait(
        "collections arrive",
        "container_exporter_collections_total{job=\"ce\"}",
        |v| v > 0.0,
    );
    prom.wait(
        "collections move",
        "container_exporter_collections_total{job=\"ce\"}",
        |v| v > first,
    );

    // curl with everything: 200, the configured headers.
    let ok = curl(&[&mtls[..], &["-u", "prom:s3cret"]].concat(), &metrics);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.body.contains("container_exporter_collections_total"));
    let h = ok.headers.to_ascii_lowercase();
    assert!(h.contains("x-frame-options: deny"), "{}", ok.headers);
    assert!(
        h.contains("x-content-type-options: nosniff"),
        "{}",
        ok.headers
    );

    // Without credentials: 401 and a challenge; a wrong password or user: 401.
    let none = curl(&mtls, &metrics);
    assert_eq!(none.status, 401, "{none:?}");
    assert!(
        none.headers
            .to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{}",
        none.headers
    );
    assert!(
        !none.body.contains("container_"),
        "the page leaked: {}",
        none.body
    );
    for cred in ["prom:wrong", "root:s3cret", "prom:"] {
        let r = curl(&[&mtls[..], &["-u", cred]].concat(), &metrics);
        assert_eq!(r.status, 401, "{cred}: {r:?}");
    }
    // Probes need no password (they learn one bit), but still the client certificate.
    assert_eq!(curl(&mtls, &format!("{base}/healthz")).status, 200);

    // The wrong CA: curl refuses the server's certificate.
    let other = s(p.path("other-ca.pem"));
    let wrong_ca = curl(
        &[
            "--cacert",
            &other,
            "--cert",
            &cert,
            "--key",
            &key,
            "-u",
            "prom:s3cret",
        ],
        &metrics,
    );
    assert_eq!(wrong_ca.status, 0, "{wrong_ca:?}");
    assert_eq!(wrong_ca.exit, 60, "not a certificate failure: {wrong_ca:?}");

    // No client certificate, or one from another CA: the handshake is refused.
    let r = curl(&["--cacert", &ca, "-u", "prom:s3cret"], &metrics);
    assert_eq!(
        r.status, 0,
        "a client without a certificate was served: {r:?}"
    );
    assert_ne!(r.exit, 0);
    let (sc, sk) = (s(p.path("stranger.pem")), s(p.path("stranger.key")));
    let stranger = curl(
        &[
            "--cacert",
            &ca,
            "--cert",
            &sc,
            "--key",
            &sk,
            "-u",
            "prom:s3cret",
        ],
        &metrics,
    );
    assert_eq!(
        stranger.status, 0,
        "another CA's client was served: {stranger:?}"
    );

    // Plain HTTP on the TLS port gets no page.
    let plain = curl(
        &["-u", "prom:s3cret"],
        &format!("http://127.0.0.1:{}/metrics", e.port),
    );
    assert_ne!(plain.status, 200, "{plain:?}");
    assert!(!plain.body.contains("container_exporter"));
}

#[test]
fn wrong_bcrypt_hash_is_refused() {
    let p = pki();
    // The hash of another password than the one Prometheus sends.
    let cfg = p.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n\
             basic_auth_users:\n  prom: {}\n",
            hash("not-the-password")
        ),
    );
    let ca = s(p.path("ca.pem"));
    let e = start_exporter(
        &["--web.config.file", &s(cfg)],
        &[],
        (&["--cacert", &ca], "https"),
    );
    let prom = Prometheus::start(
        e.port,
        &format!(
            "  scheme: https\n  tls_config:\n    ca_file: {ca}\n  basic_auth:\n    \
             username: prom\n    password: s3cret\n"
        ),
    );
    prom.wait("the scrape is down", "up{job=\"ce\"}", |v| v == 0.0);
    let err = prom.last_error();
    assert!(err.contains("401"), "scrape error: {err:?}");
    let r = curl(
        &["--cacert", &ca, "-u", "prom:s3cret"],
        &format!("https://127.0.0.1:{}/metrics", e.port),
    );
    assert_eq!(r.status, 401);
}

/// Each Go client_auth_type, and client_allowed_sans, switched by SIGHUP on one exporter.
#[test]
fn client_auth_types_behave_as_go() {
    let p = pki();
    p.client("selfsigned", None, "DNS:scraper.example");
    let ca = s(p.path("ca.pem"));
    let tls = |extra: &str| {
        format!("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n{extra}")
    };
    let cfg = p.write("web.yml", &tls(""));
    let e = start_exporter(
        &["--web.config.file", &s(cfg.clone())],
        &[],
        (&["--cacert", &ca], "https"),
    );
    let url = format!("https://127.0.0.1:{}/metrics", e.port);
    let with = |name: &str| -> u16 {
        let (c, k) = (
            s(p.path(&format!("{name}.pem"))),
            s(p.path(&format!("{name}.key"))),
        );
        if name.is_empty() {
            curl(&["--cacert", &ca], &url).status
        } else {
            curl(&["--cacert", &ca, "--cert", &c, "--key", &k], &url).status
        }
    };
    let reload = |text: &str| {
        // The reload is logged; wait for it before probing.
        let n = e.log_text().matches("web config reloaded").count();
        fs::write(&cfg, text).unwrap();
        kill(Pid::from_raw(e.pid() as i32), Signal::SIGHUP).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while e.log_text().matches("web config reloaded").count() <= n {
            assert!(Instant::now() < deadline, "no reload:\n{}", e.log_tail());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // NoClientCert: anyone.
    assert_eq!(with(""), 200);
    assert_eq!(with("stranger"), 200);

    reload(&tls("  client_auth_type: RequestClientCert\n"));
    assert_eq!(with(""), 200);
    assert_eq!(with("selfsigned"), 200);

    reload(&tls("  client_auth_type: RequireAnyClientCert\n"));
    assert_eq!(
        with(""),
        0,
        "RequireAnyClientCert served a client without a certificate"
    );
    assert_eq!(with("selfsigned"), 200);

    reload(&tls(
        "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n",
    ));
    assert_eq!(with(""), 200);
    assert_eq!(with("client"), 200);
    assert_eq!(
        with("stranger"),
        0,
        "a certificate from another CA was accepted"
    );

    reload(&tls(
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n",
    ));
    assert_eq!(with(""), 0);
    assert_eq!(with("stranger"), 0);
    assert_eq!(with("client"), 200);

    reload(&tls(
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  \
         client_allowed_sans: [other.example]\n",
    ));
    assert_eq!(
        with("client"),
        0,
        "a client without an allowed SAN was served"
    );
    reload(&tls(
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  \
         client_allowed_sans: [other.example, scraper.example]\n",
    ));
    assert_eq!(with("client"), 200);

    // HTTP/2 is offered by ALPN unless http2 is false; rate_limit answers 429 past its burst.
    let version = || {
        let c = curl(&["--cacert", &ca], &url);
        c.headers.lines().next().unwrap_or_default().to_string()
    };
    reload(&tls(""));
    assert!(version().starts_with("HTTP/2 200"), "{}", version());
    reload(&format!(
        "{}http_server_config:\n  http2: false\nrate_limit:\n  interval: 1m\n  burst: 2\n",
        tls("")
    ));
    assert!(version().starts_with("HTTP/1.1 200"), "{}", version());
    assert_eq!(with(""), 200);
    assert_eq!(with(""), 429, "past the burst of 2 in a minute");
}

#[test]
fn rotated_certificate_is_served_after_sighup_and_on_change() {
    let p = pki();
    let cfg = p.write(
        "web.yml",
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n",
    );
    let ca = p.path("ca.pem");
    let e = start_exporter(
        &["--web.config.file", &s(cfg.clone())],
        &[],
        (&["--cacert", &s(ca.clone())], "https"),
    );
    assert_eq!(served_cn(e.port, &ca), "first");

    // SIGHUP: the new certificate at once.
    p.server("server", "ca", "second");
    kill(Pid::from_raw(e.pid() as i32), Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while served_cn(e.port, &ca) != "second" {
        assert!(
            Instant::now() < deadline,
            "not rotated after SIGHUP:\n{}",
            e.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A broken file keeps the previous configuration, and says why.
    fs::write(
        &cfg,
        "tls_server_config:\n  cert_file: missing.pem\n  key_file: server.key\n",
    )
    .unwrap();
    kill(Pid::from_raw(e.pid() as i32), Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !e.log_text().contains("previous one stays in force") {
        assert!(
            Instant::now() < deadline,
            "no error logged:\n{}",
            e.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(e.log_text().contains("missing.pem"), "{}", e.log_tail());
    assert_eq!(served_cn(e.port, &ca), "second");

    // A change of the files alone, without a signal, is picked up too.
    fs::write(
        &cfg,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n",
    )
    .unwrap();
    p.server("server", "ca", "third");
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_cn(e.port, &ca) != "third" {
        assert!(
            Instant::now() < deadline,
            "not rotated on change:\n{}",
            e.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_bad_file_stops_the_exporter_at_start() {
    let p = pki();
    for (text, want) in [
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth: x\n",
            "tls_server_config: unknown field `client_auth`",
        ),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth: x\n",
            "at line 4 column 3",
        ),
        (
            "http_server_config:\n  http2: maybe\n",
            "http_server_config.http2: invalid type: string \"maybe\", expected a boolean",
        ),
        ("basic_auth_users:\n  prom: s3cret\n", "not a bcrypt hash"),
        (
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  max_version: TLS11\n",
            "max_version",
        ),
    ] {
        let cfg = p.write("bad.yml", text);
        let out = Command::new(exporter_bin())
            .args(["--prometheus-listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--docker-host", "off", "--web.config.file", &s(cfg)])
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{text:?}: {err}");
    }
}
