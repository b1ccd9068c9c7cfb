//! The page's server under clients that misbehave (issue 11, defects 1, 2 and 9), against the
//! real binary and a real Docker container:
//!
//! - 50 clients that send `GET /metrics` for a page of about 5 MB (a container whose allowed
//!   labels hold 4.8 MB) and never read, arriving over several ticks: the exporter's RSS stays
//!   within a bound stated below, and a normal scrape still gets the whole page.
//! - Under a low descriptor limit (256, more on a host with many containers), 200 idle
//!   connections more than the descriptors left: the exporter keeps descriptors for
//!   the collector (a container started meanwhile is tracked), scrapes answer, and accept
//!   errors are not logged ten times a second.
//! - `Accept-Encoding: gzip;q=0` and `gzipfoo` get no gzip; a 405 names what is allowed; an
//!   absolute-form request for another host is not served.
//!
//! They need root and dockerd with the test image (`.ci/docker-up.sh`). Set `CE_TEST_BIN` to
//! run them against another build of the exporter (they fail against the one before the fix).

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::exporter::Exporter;
use common::tls::exporter_bin;
use common::{Container, HTTP_TIMEOUT, free_port, http_request, require_docker, unique_name};

const MIB: u64 = 1 << 20;

/// Starts the exporter (under `prlimit` when `nofile` is given) and waits for its page.
/// The tests that count the exporter's descriptors and memory run one at a time: each starts
/// containers, which every exporter on the host tracks.
fn alone() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

fn start(args: &[&str], nofile: Option<u64>) -> Exporter {
    require_docker();
    let port = free_port();
    let log = std::env::temp_dir().join(format!("{}-exporter.log", unique_name()));
    let f = fs::File::create(&log).unwrap();
    let mut cmd = match nofile {
        Some(n) => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg(exporter_bin());
            c
        }
        None => Command::new(exporter_bin()),
    };
    cmd.args(["--prometheus-listen", &format!("127.0.0.1:{port}")])
        .args(["--log-level", "info"])
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f);
    let child = cmd.spawn().expect("start the exporter");
    let mut e = Exporter {
        child: Some(child),
        port,
        log,
        group: false,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(http_request(port, "/readyz", &[], HTTP_TIMEOUT), Ok(r) if r.status == 200) {
        if let Some(st) = e.child.as_mut().unwrap().try_wait().unwrap() {
            e.child = None;
            panic!("the exporter exited at start ({st})");
        }
        assert!(Instant::now() < deadline, "not ready:\n{}", e.log_tail());
        std::thread::sleep(Duration::from_millis(50));
    }
    e
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The process's open sockets: its listener, its runtime connections and its clients.
fn open_sockets(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| {
        d.flatten()
            .filter(|e| {
                fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
            })
            .count()
    })
}

/// A client that sends a request and never reads, with a receive buffer as small as the
/// kernel allows, so the response waits in the exporter, not in the client's socket.
fn stalled_reader(rt: &tokio::runtime::Runtime, port: u16) -> tokio::net::TcpStream {
    rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        let mut c = s
            .connect(([127, 0, 0, 1], port).into())
            .await
            .expect("connect");
        use tokio::io::AsyncWriteExt;
        c.write_all(format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        c
    })
}

/// Defect 1. Before the fix, each stalled reader kept the page of its tick alive and nothing
/// ever cut it off: 50 readers arriving one per tick pinned 50 pages for as long as they stayed.
#[test]
fn stalled_readers_do_not_pin_pages() {
    let _alone = alone();
    let labels = std::env::temp_dir().join(format!("{}-labels", unique_name()));
    {
        let mut f = fs::File::create(&labels).unwrap();
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for i in 0..80 {
            // Letters that gzip cannot shrink much (readers here ask for no gzip anyway).
            let v: String = (0..60_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (b'a' + (x % 26) as u8) as char
                })
                .collect();
            writeln!(f, "big.l{i}={v}").unwrap();
        }
    }
    let c = Container::run(
        &["--label-file", &labels.display().to_string()],
        &["sleep", "600"],
    );
    let _ = fs::remove_file(&labels);
    // Values of 60,000 bytes stay whole: past the default cut of 2,048 (tests/long_labels.rs
    // has that) the page would not be big enough to pin anything.
    let e = start(
        &[
            "--interval",
            "250ms",
            "--docker-labels",
            "big.*",
            "--attribute-value-length-limit",
            "65536",
        ],
        None,
    );
    let pid = e.pid();
    // The page holds the labels.
    let deadline = Instant::now() + Duration::from_secs(20);
    let page_len = loop {
        let r = e.get("/metrics", &[]);
        if r.text().contains(&c.id) && r.body.len() > 4_500_000 {
            break r.body.len() as u64;
        }
        assert!(
            Instant::now() < deadline,
            "the labels never reached the page"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Baseline after a few scrapes and ticks.
    for _ in 0..5 {
        e.get("/metrics", &[]);
        std::thread::sleep(Duration::from_millis(300));
    }
    let base = status_kib(pid, "VmRSS:");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut readers = Vec::new();
    let mut max_rss = base;
    // 50 readers over 50 ticks of 250 ms: each reader asks for a page of its own.
    for _ in 0..50 {
        readers.push(stalled_reader(&rt, e.port));
        std::thread::sleep(Duration::from_millis(250));
        max_rss = max_rss.max(status_kib(pid, "VmRSS:"));
    }
    // Held for a few more ticks; a normal scrape meanwhile gets the whole page.
    let mut scrapes = 0;
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(6) {
        let r = http_request(e.port, "/metrics", &[], HTTP_TIMEOUT)
            .unwrap_or_else(|err| panic!("a normal scrape failed among stalled readers: {err}"));
        assert_eq!(r.status, 200);
        assert!(r.body.len() as u64 > page_len / 2, "a short page");
        assert!(r.text().contains(&c.id));
        scrapes += 1;
        max_rss = max_rss.max(status_kib(pid, "VmRSS:"));
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(readers);
    // The bound: the pages readers may pin (the current one, the two before it, and the ticks
    // of the one second a response may lag before it is cut: 6 at 250 ms), the two the
    // collector renders into, and 256 KiB of buffers per connection, with 16 MiB of slack for
    // the allocator. Before the fix every reader pinned the page of its tick: 50 pages.
    let page_kib = page_len / 1024;
    let bound = base + 8 * page_kib + 50 * 256 + 16 * MIB / 1024;
    eprintln!(
        "page {page_kib} KiB, RSS baseline {base} KiB, highest with 50 stalled readers {max_rss} \
         KiB (bound {bound} KiB), {scrapes} normal scrapes answered"
    );
    assert!(
        max_rss <= bound,
        "RSS went from {base} KiB to {max_rss} KiB with 50 stalled readers of a {page_kib} KiB \
         page (bound {bound} KiB)"
    );
    assert!(scrapes >= 5);
}

/// Defect 2. Before the fix, idle connections were accepted until the descriptors ran out:
/// the collector could not open a new container's files, and each failed accept was logged
/// ten times a second.
#[test]
fn idle_connections_leave_descriptors_to_the_collector() {
    let _alone = alone();
    let before: Vec<Container> = (0..4)
        .map(|_| Container::run(&[], &["sleep", "600"]))
        .collect();
    // 256, or more on a host that runs other containers (the collector tracks them all, about
    // 20 descriptors each), so the collector alone fits with room for the late container.
    let running = String::from_utf8_lossy(&common::docker(&["ps", "-q"]).stdout)
        .lines()
        .count() as u64;
    let limit: u64 = (128 + 24 * (running + 1)).max(256);
    let e = start(&["--interval", "500ms"], Some(limit));
    let pid = e.pid();
    e.wait_for(
        "the containers started before the exporter are tracked",
        Duration::from_secs(10),
        "",
        |page| before.iter().all(|c| page.has_container(&c.id)),
    );
    std::thread::sleep(Duration::from_secs(1));
    let baseline = open_fds(pid);
    let baseline_sockets = open_sockets(pid);
    // More idle connections than the descriptors left: at least 300, and 200 past the limit.
    let n = (limit as usize).saturating_sub(baseline).max(100) + 200;
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    let mut idle = Vec::new();
    let mut max_fds = 0;
    let mut max_sockets = 0;
    for _ in 0..n {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", e.port)) {
            idle.push(s);
        }
        max_fds = max_fds.max(open_fds(pid));
        max_sockets = max_sockets.max(open_sockets(pid));
    }
    std::thread::sleep(Duration::from_secs(1));
    max_fds = max_fds.max(open_fds(pid));
    max_sockets = max_sockets.max(open_sockets(pid));
    // A container started now is tracked, and its files opened.
    let late = Container::run(&[], &["sleep", "600"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        max_fds = max_fds.max(open_fds(pid));
        max_sockets = max_sockets.max(open_sockets(pid));
        if let Ok(r) = http_request(e.port, "/metrics", &[], Duration::from_secs(5))
            && r.status == 200
            && r.text().contains(&format!(
                "container_cpu_time_seconds_total{{container_id=\"{}\"",
                late.id
            ))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a container started among {n} idle connections was not tracked within 15 s \
             (open descriptors up to {max_fds} of {limit}):\n{}",
            e.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Idle connections still there keep nobody out for long.
    for _ in 0..5 {
        let r = http_request(e.port, "/metrics", &[], Duration::from_secs(5))
            .expect("a scrape among idle connections");
        assert_eq!(r.status, 200);
        max_fds = max_fds.max(open_fds(pid));
        max_sockets = max_sockets.max(open_sockets(pid));
    }
    let errors = e.log_text().matches("accepting a connection").count();
    eprintln!(
        "open descriptors: {baseline} before {n} connections, at most {max_fds} of {limit}; \
         sockets: {baseline_sockets} before, at most {max_sockets}; accept errors logged: {errors}"
    );
    assert!(
        errors <= 2,
        "{errors} accept errors logged in a few seconds:\n{}",
        e.log_tail()
    );
    // Connections are capped at an eighth of the limit. Counted as sockets, so that the late
    // container's files (about 20, more while its limits are still re-read) are not charged
    // to them; one more is the connection accepted only to be closed at once.
    let cap = limit as usize / 8;
    assert!(
        max_sockets <= baseline_sockets + cap + 8,
        "{max_sockets} sockets open ({baseline_sockets} before) with a cap of {cap} \
         connections: connections took the collector's reserve"
    );
    // And everything together stays clear of the limit: the collector keeps its reserve.
    assert!(
        (max_fds as u64) < limit - limit / 8,
        "{max_fds} descriptors open of {limit} ({baseline} before): the collector's reserve is gone"
    );
    drop(idle);
}

/// A raw request; the status line and headers of the answer, and the body.
fn raw(port: u16, request: &str) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(out.len());
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let body = out.get(split + 4..).unwrap_or_default().to_vec();
    (head, body)
}

/// Defect 9.
#[test]
fn small_http_faults() {
    let e = start(&["--docker-host", "off"], None);
    let p = e.port;
    let encoding = |ae: &str| {
        let r = http_request(p, "/metrics", &[("Accept-Encoding", ae)], HTTP_TIMEOUT).unwrap();
        assert_eq!(r.status, 200);
        r.header("content-encoding").map(str::to_string)
    };
    assert_eq!(encoding("gzip").as_deref(), Some("gzip"));
    assert_eq!(encoding("br, gzip;q=0.5").as_deref(), Some("gzip"));
    assert_eq!(encoding("gzip;q=0"), None, "gzip;q=0 refuses gzip");
    assert_eq!(encoding("gzip; q=0.0, identity"), None);
    assert_eq!(encoding("gzipfoo"), None, "gzipfoo is not gzip");
    assert_eq!(encoding("identity"), None);
    let plain = http_request(
        p,
        "/metrics",
        &[("Accept-Encoding", "gzip;q=0")],
        HTTP_TIMEOUT,
    )
    .unwrap();
    assert!(
        plain
            .text()
            .contains("container_exporter_collections_total")
    );

    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let (head, _) = raw(
            p,
            &format!(
                "{method} /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            ),
        );
        assert!(head.starts_with("HTTP/1.1 405"), "{method}: {head}");
        let allow = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("allow"))
            })
            .map(|(_, v)| v.trim().to_string());
        assert_eq!(allow.as_deref(), Some("GET, HEAD"), "{method}: {head}");
    }

    // Absolute form for another host: not served. For this host (as Host says): served.
    let (head, body) = raw(
        p,
        "GET http://example.com/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(!head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.starts_with("HTTP/1.1 421"), "{head}");
    assert!(!String::from_utf8_lossy(&body).contains("container_exporter"));
    let (head, _) = raw(
        p,
        &format!(
            "GET http://127.0.0.1:{p}/metrics HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\n\
             Connection: close\r\n\r\n"
        ),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}
