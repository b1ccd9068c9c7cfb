//! Container-shaped cgroups on this machine's real cgroupfs: created in every mounted
//! hierarchy (v1 controllers and the unified one), with processes of a known behaviour moved
//! into them, and removed when dropped. Needs root.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use container_exporter::cgroup::{Layout, LayoutKind};

/// A container-shaped cgroup (`ce-test.slice/docker-<id>.scope`) in every hierarchy,
/// removed on drop after its processes are killed.
pub struct TestCgroup {
    pub id: String,
    pub rel: PathBuf,
    pub dirs: Vec<PathBuf>,
    pub children: Vec<Child>,
}

pub fn layout() -> Layout {
    let l = Layout::detect(Path::new("/sys/fs/cgroup"), Path::new("/proc"))
        .expect("cgroup layout of this machine");
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests create cgroups and must run as root"
    );
    // What the daemon does before it opens any container's files: the tests build collectors
    // that hold every container-shaped cgroup on the host open, several at a time.
    container_exporter::host::limits::raise_fd_limit();
    l
}

/// The environment variable that names the cgroup layout CI machines have: `v1`, `v2` or
/// `hybrid`. `.ci/run` sets it (to `hybrid` unless it is set already).
pub const EXPECT_LAYOUT: &str = "CE_EXPECT_CGROUP_LAYOUT";

/// Whether this host's layout `l` is one of `needs`, the layouts on which `what` can be tested
/// at all. When it is not, the test cannot test `what` here, and:
/// - fails when [`EXPECT_LAYOUT`] names one of `needs`: CI is expected to have such a layout,
///   so a CI machine without it is broken, not a reason to pass;
/// - says `NOT TESTED` loudly otherwise (a developer's host of another layout, or a CI machine
///   declared to be of another layout), in the test output and in `.ci/run`'s summary.
///
/// A `false` means: return from the test, nothing more can be checked on this host.
pub fn layout_is(l: &Layout, needs: &[LayoutKind], what: &str) -> bool {
    if needs.contains(&l.kind) {
        return true;
    }
    let needs_text = needs
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(" or ");
    let expected = std::env::var(EXPECT_LAYOUT).unwrap_or_default();
    if needs.iter().any(|k| k.as_str() == expected) {
        panic!(
            "{what} needs a {needs_text} cgroup layout, and {EXPECT_LAYOUT}={expected} says this              machine has one, but this host's layout is {}. Fix the machine, or set              {EXPECT_LAYOUT}={} to have this reported as not tested.",
            l.kind.as_str(),
            l.kind.as_str()
        );
    }
    super::not_tested(
        what,
        &format!(
            "needs a {needs_text} cgroup layout, this host's is {} ({EXPECT_LAYOUT}={})",
            l.kind.as_str(),
            if expected.is_empty() {
                "unset"
            } else {
                &expected
            }
        ),
    );
    false
}

pub fn mounts(l: &Layout) -> Vec<PathBuf> {
    let mut m: Vec<PathBuf> = [&l.unified, &l.cpu, &l.cpuacct, &l.memory, &l.blkio, &l.pids]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    m.sort();
    m.dedup();
    m
}

impl TestCgroup {
    pub fn new(l: &Layout, tag: u32) -> TestCgroup {
        let seed = format!("{}-{}-{tag}", std::process::id(), line!());
        let mut id = String::new();
        let mut h: u64 = 0xcbf29ce484222325;
        while id.len() < 64 {
            for b in seed.bytes().chain(id.clone().bytes()) {
                h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
            }
            id.push_str(&format!("{h:016x}"));
        }
        id.truncate(64);
        let rel = PathBuf::from(format!("ce-test.slice/docker-{id}.scope"));
        let mut dirs = Vec::new();
        for m in mounts(l) {
            let d = m.join(&rel);
            // Another test's drop may remove the shared `ce-test.slice` between the two
            // mkdirs of `create_dir_all`: try again then.
            let mut tries = 0;
            while let Err(e) = fs::create_dir_all(&d) {
                tries += 1;
                assert!(
                    tries < 20 && e.kind() == std::io::ErrorKind::NotFound,
                    "mkdir {}: {e}",
                    d.display()
                );
            }
            dirs.push(d);
        }
        TestCgroup {
            id,
            rel,
            dirs,
            children: Vec::new(),
        }
    }

    pub fn procs_files(&self) -> Vec<String> {
        self.dirs
            .iter()
            .map(|d| d.join("cgroup.procs").to_string_lossy().into_owned())
            .collect()
    }

    /// Runs `perl -e CODE` inside the cgroup: the shell moves itself into every hierarchy,
    /// then execs perl, so everything perl does is charged to the cgroup.
    pub fn spawn_perl(&mut self, code: &str) -> &mut Child {
        self.spawn_moved(code, r#"exec perl -e "$CE_PERL""#)
    }

    /// As [`spawn_perl`](Self::spawn_perl), in a network namespace of its own whose loopback
    /// is up (`unshare -n` runs in the same process: the cgroup's first process is perl).
    pub fn spawn_perl_in_own_network(&mut self, code: &str) -> &mut Child {
        self.spawn_moved(
            code,
            r#"exec unshare -n sh -c 'ip link set lo up && exec perl -e "$CE_PERL"'"#,
        )
    }

    /// A shell that moves itself into every hierarchy of the cgroup, then runs `then` (with
    /// `CE_PERL` set to `code`).
    fn spawn_moved(&mut self, code: &str, then: &str) -> &mut Child {
        let script = format!(r#"for f in "$@"; do echo $$ > "$f" || exit 99; done; {then}"#);
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .args(self.procs_files())
            .env("CE_PERL", code)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        self.children.push(child);
        self.children.last_mut().unwrap()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in &self.dirs {
            // The kernel may need a moment to release a cgroup whose last task just died.
            for _ in 0..50 {
                if fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            // Leave the host as it was: the shared slice goes with its last scope (rmdir
            // fails, harmlessly, while another test's scope is still in it).
            if let Some(slice) = d.parent() {
                let _ = fs::remove_dir(slice);
            }
        }
    }
}

pub fn read_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim().to_string()
}
