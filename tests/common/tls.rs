//! Certificates made by the `openssl` CLI for the TLS tests (a CA, server and client
//! certificates signed by it, a second CA that signs nothing the server trusts), `curl` as the
//! client an operator would use, and the exporter started with flags and variables of the
//! test's choosing, ready once its page answers over HTTP or HTTPS.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::exporter::Exporter;
use super::{TempDir, free_port, unique_name};

/// The exporter binary: this build's, or `CE_TEST_BIN` (to run a test against another build,
/// e.g. to show a defect before its fix).
pub fn exporter_bin() -> String {
    std::env::var("CE_TEST_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_container-exporter").into())
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (run .ci/tls-tools-up.sh)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A directory of keys and certificates.
pub struct Pki {
    pub dir: TempDir,
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

impl Pki {
    pub fn new() -> Pki {
        Pki {
            dir: TempDir::new(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    /// A self-signed CA: `<name>.pem`, `<name>.key`.
    pub fn ca(&self, name: &str) -> PathBuf {
        run(Command::new("openssl")
            .current_dir(&self.dir.0)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .args([
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
            ])
            .args(["-subj", &format!("/CN={name}")])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
        self.path(&format!("{name}.pem"))
    }

    /// A leaf `<name>.pem`/`<name>.key` signed by CA `ca` (or self-signed when `ca` is None),
    /// with `san` (`IP:127.0.0.1,DNS:localhost`) and extended key usage `usage`
    /// (`serverAuth`, `clientAuth`).
    pub fn leaf(&self, name: &str, ca: Option<&str>, cn: &str, san: &str, usage: &str) {
        let ext = self.path(&format!("{name}.ext"));
        fs::write(
            &ext,
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage={usage}\nsubjectAltName={san}\n"
            ),
        )
        .unwrap();
        run(Command::new("openssl")
            .current_dir(&self.dir.0)
            .args([
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-keyout", &format!("{name}.key")])
            .args([
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ]));
        let mut sign = Command::new("openssl");
        sign.current_dir(&self.dir.0)
            .args(["x509", "-req", "-days", "2", "-in", &format!("{name}.csr")])
            .args([
                "-out",
                &format!("{name}.pem"),
                "-extfile",
                &format!("{name}.ext"),
            ]);
        match ca {
            Some(ca) => sign.args([
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-set_serial",
                &format!("{}", rand_serial()),
            ]),
            None => sign.args(["-signkey", &format!("{name}.key")]),
        };
        run(&mut sign);
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub fn server(&self, name: &str, ca: &str, cn: &str) {
        self.leaf(
            name,
            Some(ca),
            cn,
            "IP:127.0.0.1,DNS:localhost",
            "serverAuth",
        );
    }

    /// A client certificate.
    pub fn client(&self, name: &str, ca: Option<&str>, san: &str) {
        self.leaf(name, ca, name, san, "clientAuth");
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, text).unwrap();
        p
    }
}

fn rand_serial() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish() >> 1
}

/// What curl saw.
#[derive(Debug)]
pub struct Curl {
    /// curl's exit code (0: a response arrived; 35, 56, 58, 60…: TLS failures).
    pub exit: i32,
    /// The HTTP status, 0 without a response.
    pub status: u16,
    pub headers: String,
    pub body: String,
    pub stderr: String,
}

/// `curl -sS` with `args` and `url`, at most 10 s.
pub fn curl(args: &[&str], url: &str) -> Curl {
    let hdr = std::env::temp_dir().join(format!("{}-curl-headers", unique_name()));
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D"])
        .arg(&hdr)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl: {e} (run .ci/tls-tools-up.sh)"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
    let headers = fs::read_to_string(&hdr).unwrap_or_default();
    let _ = fs::remove_file(&hdr);
    Curl {
        exit: out.status.code().unwrap_or(-1),
        status: code.trim().parse().unwrap_or(0),
        headers,
        body: body.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts the exporter on a free loopback port with `args` and `env` (Docker off, no OTLP
/// variables inherited), and waits until `probe` (curl arguments and scheme) answers
/// `/readyz` with 200 (the first page is rendered).
pub fn start_exporter(args: &[&str], env: &[(&str, &str)], probe: (&[&str], &str)) -> Exporter {
    let port = free_port();
    let log = std::env::temp_dir().join(format!("{}-exporter.log", unique_name()));
    let f = fs::File::create(&log).expect("create the exporter's log file");
    let mut cmd = Command::new(exporter_bin());
    cmd.args(["--prometheus-listen", &format!("127.0.0.1:{port}")])
        .args(["--log-level", "debug", "--docker-host", "off"])
        .args(args)
        .env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") || k.starts_with("CONTAINER_EXPORTER_") {
            cmd.env_remove(k);
        }
    }
    let child = cmd
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .expect("start container-exporter");
    let mut e = Exporter {
        child: Some(child),
        port,
        log,
        group: false,
    };
    let url = format!("{}://127.0.0.1:{port}/readyz", probe.1);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if curl(probe.0, &url).status == 200 {
            return e;
        }
        if let Some(st) = e.child.as_mut().unwrap().try_wait().unwrap() {
            let log = e.log_text();
            e.child = None;
            panic!("container-exporter exited at start ({st}); its log:\n{log}");
        }
        assert!(
            Instant::now() < deadline,
            "container-exporter did not answer {url} within 20 s; its log:\n{}",
            e.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The subject CN of the certificate the server at `port` presents.
pub fn served_cn(port: u16, ca: &Path) -> String {
    let c = curl(
        &[
            "-v",
            "--cacert",
            &ca.display().to_string(),
            "-o",
            "/dev/null",
        ],
        &format!("https://127.0.0.1:{port}/healthz"),
    );
    c.stderr
        .lines()
        .find_map(|l| l.split("subject:").nth(1))
        .and_then(|s| s.split("CN=").nth(1))
        .map(|s| s.split([',', '/']).next().unwrap_or("").trim().to_string())
        .unwrap_or_else(|| panic!("no subject in curl's output: {c:?}"))
}
