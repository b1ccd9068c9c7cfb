//! A Linux bridge of a test's own, for a second Docker daemon, and the check that the host's
//! `docker0` is still there and usable.
//!
//! A second dockerd started with `--bridge none` deletes the host's `docker0` (moby removes the
//! default bridge interface for that option, whichever daemon owns it), and the host's daemon
//! then cannot start a container on its default network until it is restarted. So a second
//! daemon gets `--bridge <its own>`: a bridge made here with `ip link`, with an address of its
//! own (so dockerd does not pick a subnet itself), deleted when the guard drops (also when the
//! test panics). A bridge left by a test process that was killed is deleted by the next one.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Container, docker};

/// Every bridge made here is named `PREFIX<pid>n<count>` (at most 15 bytes, the kernel's limit).
const PREFIX: &str = "cedkr";

/// A bridge interface that lives as long as this guard.
pub struct TestBridge {
    pub name: String,
}

impl TestBridge {
    /// A new bridge, up, with `10.214.<n>.1/24` (a /24 no other interface has).
    pub fn new() -> TestBridge {
        delete_stale();
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let name = format!("{PREFIX}{}n{n}", std::process::id());
        assert!(name.len() <= 15, "bridge name {name} is too long");
        // The guard first, so a half-made bridge is deleted too.
        let bridge = TestBridge { name };
        ip(&["link", "add", &bridge.name, "type", "bridge"]);
        let taken = String::from_utf8_lossy(
            &Command::new("ip")
                .args(["-o", "-4", "addr", "show"])
                .output()
                .expect("ip -4 addr")
                .stdout,
        )
        .into_owned();
        let base = std::process::id() as usize * 7 + n * 13;
        let subnet = (0..250)
            .map(|i| (base + i) % 250)
            .find(|i| !taken.contains(&format!(" 10.214.{i}.")))
            .expect("no free 10.214.<n>.0/24 for a test bridge");
        ip(&[
            "addr",
            "add",
            &format!("10.214.{subnet}.1/24"),
            "dev",
            &bridge.name,
        ]);
        ip(&["link", "set", &bridge.name, "up"]);
        bridge
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip {}`: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes the bridges of test processes that no longer run (killed before their guard
/// dropped).
fn delete_stale() {
    let Ok(links) = fs::read_dir("/sys/class/net") else {
        return;
    };
    for l in links.flatten() {
        let name = l.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('n').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = Command::new("ip").args(["link", "del", &name]).status();
        }
    }
}

/// Fails unless the host's `docker0` exists and the host's daemon can start a container on
/// its default bridge network (the container gets an address there), as a developer's
/// `docker run` would after the tests.
pub fn assert_docker0_usable() {
    assert!(
        Path::new("/sys/class/net/docker0").exists(),
        "the host's docker0 is gone: a test's second dockerd deleted it (`--bridge none`?); \
         restart the host's dockerd"
    );
    let c = Container::run(&["--network", "bridge"], &["sleep", "30"]);
    let out = docker(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.Networks.bridge.IPAddress}}",
        &c.id,
    ]);
    let addr = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && addr.parse::<std::net::Ipv4Addr>().is_ok(),
        "a container on the host daemon's default bridge network got no address ({addr:?}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
