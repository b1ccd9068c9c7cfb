//! Flags before a command (issue 18): `container-exporter --docker-host X snapshot` must be
//! `snapshot --docker-host X`, never a flag accepted and then ignored; a flag the command does
//! not take is refused with a message that says where it goes. The real binary runs; where
//! it connects is seen by sockets of the test's own that count the connections they get.

mod common;

use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::TempDir;

/// A Unix socket that accepts connections, counts them and closes each at once (so a
/// client that came fails fast instead of waiting for an answer). Connections from this test
/// process itself are markers, not counted: see [`CountingSocket::connections`].
struct CountingSocket {
    path: std::path::PathBuf,
    connections: Arc<AtomicUsize>,
    markers: Arc<AtomicUsize>,
}

/// The process id at the other end of an accepted Unix socket (`SO_PEERCRED`).
fn peer_pid(conn: &UnixStream) -> Option<u32> {
    use nix::libc;
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for the kernel to write, and `len` is their size.
    let rc = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cred.pid as u32)
}

impl CountingSocket {
    fn new(dir: &TempDir, name: &str) -> CountingSocket {
        let path = dir.0.join(name);
        let listener = UnixListener::bind(&path).expect("bind a test socket");
        let connections = Arc::new(AtomicUsize::new(0));
        let markers = Arc::new(AtomicUsize::new(0));
        let (n, m) = (connections.clone(), markers.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                if peer_pid(&conn) == Some(std::process::id()) {
                    m.fetch_add(1, Ordering::SeqCst);
                } else {
                    n.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        CountingSocket {
            path,
            connections,
            markers,
        }
    }

    fn url(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Connections seen from other processes, once every connection made so far is counted:
    /// the test connects a marker of its own, and waits until the accepting thread has taken
    /// it. The listener's queue is first in, first out, so whatever the binary (which has
    /// exited) connected before is counted by then.
    fn connections(&self) -> usize {
        let marked = self.markers.load(Ordering::SeqCst);
        let _marker = UnixStream::connect(&self.path).expect("connect a marker");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.markers.load(Ordering::SeqCst) <= marked {
            assert!(
                Instant::now() < deadline,
                "the test socket's accepting thread never took the marker"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.connections.load(Ordering::SeqCst)
    }
}

/// Runs the binary with `args` and `env`, and nothing of the caller's environment that
/// would point it elsewhere (Docker, Podman and CRI are off unless `args` or `env` say).
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_container-exporter"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CONTAINER_EXPORTER_") || k == "DOCKER_HOST" || k.starts_with("OTEL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("CONTAINER_EXPORTER_PODMAN_HOST", "off")
        .env("CONTAINER_EXPORTER_CRI_ENDPOINT", "off")
        .env("RUST_LOG", "warn")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run container-exporter")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_metadata_flag_before_snapshot_is_snapshots() {
    let dir = TempDir::new();
    let flag = CountingSocket::new(&dir, "flag.sock");
    let out = run(
        &["--docker-host", &flag.url(), "snapshot", "--format", "json"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        flag.connections() > 0,
        "snapshot did not go to the --docker-host given before it:\n{}",
        text(&out)
    );

    // `off` before the command turns Docker off: DOCKER_HOST, the default without the
    // flag, is not asked.
    let default = CountingSocket::new(&dir, "default.sock");
    let out = run(
        &["--docker-host", "off", "snapshot", "--format", "json"],
        &[("DOCKER_HOST", &default.url())],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        default.connections(),
        0,
        "--docker-host off before snapshot was ignored:\n{}",
        text(&out)
    );
}

#[test]
fn daemon_flags_before_check_are_checks() {
    let dir = TempDir::new();
    let flag = CountingSocket::new(&dir, "flag.sock");
    let out = run(
        &[
            "--docker-host",
            &flag.url(),
            "--prometheus-listen",
            "off",
            "--otlp-endpoint",
            "off",
            "check",
        ],
        &[],
    );
    let t = text(&out);
    let docker = t
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with("docker ")))
        .unwrap_or_else(|| panic!("no docker line:\n{t}"));
    assert!(
        docker.contains(&flag.path.display().to_string()),
        "check did not use the --docker-host given before it: {docker}"
    );
    assert!(flag.connections() > 0, "{t}");
    assert!(
        t.contains("the page is off (--prometheus-listen off)"),
        "check did not use the --prometheus-listen given before it:\n{t}"
    );

    // After the command, as before.
    let out = run(&["check", "--docker-host", "off"], &[]);
    assert!(
        text(&out).contains("off (--docker-host off)"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_flag_the_command_does_not_take_is_refused_saying_where_it_goes() {
    for (args, flag, cmd) in [
        (
            &["--interval", "5s", "snapshot"][..],
            "--interval",
            "snapshot",
        ),
        (
            &["--prometheus-listen", "off", "snapshot"][..],
            "--prometheus-listen",
            "snapshot",
        ),
        (
            &["--web.config.file", "/nonexistent", "snapshot"][..],
            "--web.config.file",
            "snapshot",
        ),
    ] {
        let out = run(args, &[]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?} was accepted:\n{t}");
        let first = t.lines().next().unwrap_or_default();
        assert!(
            first.contains(&format!("`{flag}` is not a flag of `{cmd}`"))
                && first.contains("the daemon")
                && first.contains("`check`"),
            "{args:?}: the message does not say where it goes: {first}"
        );
    }
}

#[test]
fn a_flag_given_before_and_after_the_command_is_refused() {
    let out = run(
        &["--docker-host", "off", "snapshot", "--docker-host", "off"],
        &[],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("`--docker-host` is given both before and after `snapshot`"),
        "{t}"
    );
    let out = run(&["--interval", "5s", "check", "--interval", "6s"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn variables_apply_to_every_command_and_a_flag_beats_them_wherever_it_stands() {
    let dir = TempDir::new();
    let env = CountingSocket::new(&dir, "env.sock");
    let flag = CountingSocket::new(&dir, "flag.sock");
    let out = run(
        &["snapshot", "--format", "json"],
        &[("CONTAINER_EXPORTER_DOCKER_HOST", &env.url())],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(env.connections() > 0, "the variable applies to snapshot");

    let before = env.connections();
    let out = run(
        &["--docker-host", &flag.url(), "snapshot", "--format", "json"],
        &[("CONTAINER_EXPORTER_DOCKER_HOST", &env.url())],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(flag.connections() > 0, "the flag before the command counts");
    assert_eq!(
        env.connections(),
        before,
        "the flag before the command beats the variable"
    );

    // A variable of a flag the command does not take is no error: one environment serves
    // the daemon and its commands alike.
    let out = run(
        &["snapshot", "--format", "json", "--docker-host", "off"],
        &[("CONTAINER_EXPORTER_INTERVAL", "5s")],
    );
    assert!(out.status.success(), "{}", text(&out));
}
