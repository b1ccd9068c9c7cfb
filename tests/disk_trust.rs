//! Which writable layer the disk walker trusts, against the real thing.
//!
//! - A Docker container with `CAP_SYS_ADMIN` mounts an overlay of its own, with
//!   `upperdir=/usr/share` (a path the host has) or `upperdir=/`, and chroots into it: its root
//!   mount then names that directory. A fresh exporter must still report the layer Docker made
//!   for it (`du` of `GraphDriver.Data.UpperDir`), never the host's directory.
//! - Container-shaped cgroups of this machine's own: a process in the host's mount namespace is
//!   recognised without reading its mountinfo (this machine's pid 1 cannot be inspected); a
//!   process with an overlay root of its own, at a path shaped as containers/storage keeps its
//!   layers, is still resolved from its mountinfo and measured as `du` says; one whose upper
//!   directory is anywhere else is not trusted, and not walked.
//!
//! Needs Docker (.ci/docker-up.sh) and root (it makes cgroups and mounts overlays).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cgroups::{self, TestCgroup};
use common::exporter::Exporter;
use common::page::Page;
use common::{Container, TempDir, docker};

/// `du -s -x` of `p`: (bytes, inodes).
fn du(p: &Path) -> (u64, u64) {
    let run = |arg: &str| -> u64 {
        let out = Command::new("du")
            .args(["-s", "-x", arg])
            .arg(p)
            .output()
            .expect("run du");
        assert!(out.status.success(), "du {}", p.display());
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .expect("du prints a number")
    };
    (run("-B1"), run("--inodes"))
}

fn inspect(c: &Container, format: &str) -> String {
    let out = docker(&["inspect", "-f", format, &c.id]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn usage(page: &Page, id: &str) -> Option<f64> {
    page.get("container_filesystem_usage_bytes", &[("container_id", id)])
}

fn inodes(page: &Page, id: &str) -> Option<f64> {
    page.get("container_filesystem_inode_used", &[("container_id", id)])
}

/// The root mount line of a process, as the host reads it.
fn root_line(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap_or_default()
        .to_string()
}

/// Writes 3 MiB into its own layer, then mounts an overlay whose upper directory is
/// `/usr/share` (a tmpfs of its own at `/usr`) and chroots into it.
const USR_SHARE: &str = "dd if=/dev/zero of=/before bs=1M count=3 2>/dev/null; \
    mkdir -p /usr /m && mount -t tmpfs t /usr && mkdir -p /usr/share /usr/work /usr/low/bin && \
    cp /bin/busybox /usr/low/bin/ && ln -s busybox /usr/low/bin/sh && ln -s busybox /usr/low/bin/sleep && \
    mount -t overlay o -o lowerdir=/usr/low,upperdir=/usr/share,workdir=/usr/work /m && \
    exec chroot /m /bin/sh -c 'trap \"exit 0\" TERM; while :; do sleep 1; done'";

/// The same with `upperdir=/`: chrooted first into a tmpfs directory, with the work and lower
/// directories outside it named through `/proc/self/fd`.
const SLASH: &str = "dd if=/dev/zero of=/before bs=1M count=2 2>/dev/null; \
    mkdir -p /x && mount -t tmpfs t /x && mkdir -p /x/up/proc /x/up/bin /x/up/m /x/work && \
    cp /bin/busybox /x/up/bin/ && ln -s busybox /x/up/bin/sh && mount -t proc proc /x/up/proc && \
    exec 3</x/work 4</ && exec chroot /x/up /bin/sh -c \"mount -t overlay o -o \
    lowerdir=/proc/self/fd/4,upperdir=/,workdir=/proc/self/fd/3 /m && \
    exec chroot /m /bin/sh -c 'trap \\\"exit 0\\\" TERM; while :; do sleep 1; done'\"";

#[test]
fn a_container_that_mounts_its_own_root_is_measured_by_the_layer_docker_made() {
    let caps = [
        "--cap-add",
        "SYS_ADMIN",
        "--security-opt",
        "apparmor=unconfined",
    ];
    let share = Container::sh(&caps, USR_SHARE);
    let slash = Container::sh(&caps, SLASH);
    // Re-rooted, as the host sees it (ground truth from /proc, not from the exporter).
    for (c, upper) in [(&share, "upperdir=/usr/share,"), (&slash, "upperdir=/,")] {
        let pid = inspect(c, "{{.State.Pid}}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !root_line(&pid).contains(upper) {
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not re-root: {}\n{}",
                c.name,
                root_line(&pid),
                c.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let real = |c: &Container| PathBuf::from(inspect(c, "{{.GraphDriver.Data.UpperDir}}"));
    let (share_up, slash_up) = (real(&share), real(&slash));
    let host_share = du(Path::new("/usr/share"));
    assert_ne!(du(&share_up), host_share, "the test needs them to differ");

    // A fresh exporter, started after both re-rooted: nothing seen at their start to go by.
    let e = Exporter::start(&["--interval", "1s", "--disk-interval", "2s"]);
    for (c, up) in [(&share, &share_up), (&slash, &slash_up)] {
        let page = e.wait_for(
            "the container's own layer, as Docker made it",
            Duration::from_secs(60),
            &c.id,
            |p| usage(p, &c.id) == Some(du(up).0 as f64),
        );
        assert_eq!(inodes(&page, &c.id), Some(du(up).1 as f64), "{}", c.name);
        assert!(du(up).0 >= 2 << 20, "{}: {:?}", c.name, du(up));
    }
    let page = e.metrics();
    assert!(
        page.value(
            "container_exporter_disk_layer_lookups_total",
            &[("by", "runtime")]
        ) >= 2.0
    );
}

/// A process of its own in `cg`: it moves itself into every hierarchy, then runs `script`.
fn spawn_in(cg: &mut TestCgroup, script: &str) {
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            r#"for f in "$@"; do echo $$ > "$f" || exit 99; done; {script}"#
        ))
        .arg("sh")
        .args(cg.procs_files())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sh");
    cg.children.push(child);
}

/// A process whose root is an overlay with `upper` as its upper directory, in a mount
/// namespace of its own (as a runtime makes a container's).
fn overlay_root(cg: &mut TestCgroup, dir: &Path, upper: &Path) {
    let (lower, work) = (dir.join("lower"), dir.join("work"));
    std::fs::create_dir_all(&lower).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(upper).unwrap();
    spawn_in(
        cg,
        &format!(
            "exec unshare --mount --propagation private sh -c 'mount -t overlay o -o \
             lowerdir={},upperdir={},workdir={} / && exec sleep 600'",
            lower.display(),
            upper.display(),
            work.display()
        ),
    );
}

/// How often the traced exporter opened `/proc/<pid>/<file>` (or read the link), from
/// strace's record: the ground truth of what it read, not its own accounting.
fn traced(trace: &Path, pid: u32, file: &str) -> usize {
    let needle = format!("\"/proc/{pid}/{file}\"");
    std::fs::read_to_string(trace)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

#[test]
fn the_hosts_own_root_costs_no_mountinfo_and_a_containers_root_is_still_resolved() {
    let l = cgroups::layout();
    let tmp = TempDir::new();
    // A process that never leaves the host's mount namespace.
    let mut host = TestCgroup::new(&l, 1);
    spawn_in(&mut host, "exec sleep 600");
    // One whose root is an overlay, at a path shaped as containers/storage keeps layers.
    let mut good = TestCgroup::new(&l, 2);
    let good_up = tmp.0.join("storage/overlay").join(&good.id).join("diff");
    std::fs::create_dir_all(&good_up).unwrap();
    std::fs::write(good_up.join("data"), vec![7u8; 300_000]).unwrap();
    overlay_root(&mut good, &tmp.0.join("good"), &good_up);
    // One whose upper directory is anywhere else.
    let mut bad = TestCgroup::new(&l, 3);
    let bad_up = tmp.0.join("elsewhere/upper");
    overlay_root(&mut bad, &tmp.0.join("bad"), &bad_up);
    let (host_pid, good_pid) = (host.children[0].id(), good.children[0].id());

    let trace = tmp.0.join("strace");
    let trace_arg = trace.to_string_lossy().into_owned();
    let strace = [
        "strace",
        "-f",
        "-qq",
        "-e",
        "trace=openat,openat2,readlinkat,readlink",
        "-o",
        &trace_arg,
    ];
    let e = Exporter::start_under(&strace, &["--interval", "1s", "--disk-interval", "2s"], &[]);
    let page = e.wait_for(
        "the overlay-rooted process's layer, as du says",
        Duration::from_secs(60),
        &good.id,
        |p| usage(p, &good.id) == Some(du(&good_up).0 as f64),
    );
    assert_eq!(inodes(&page, &good.id), Some(du(&good_up).1 as f64));
    assert!(traced(&trace, good_pid, "mountinfo") >= 1);

    // The host-rooted one is looked at again with a doubling wait (1, 2, 4 s): three looks
    // (each a readlink of its mount namespace, or a mountinfo read), and not one read of its
    // mountinfo.
    e.wait_for(
        "three looks at the host-rooted process",
        Duration::from_secs(60),
        &host.id,
        |_| traced(&trace, host_pid, "ns/mnt") + traced(&trace, host_pid, "mountinfo") >= 3,
    );
    assert_eq!(
        traced(&trace, host_pid, "mountinfo"),
        0,
        "the host-rooted process's mountinfo was read"
    );
    assert_eq!(usage(&e.metrics(), &host.id), None);

    // The untrusted one: warned about, counted, never walked.
    let warned = |e: &Exporter| {
        e.log_text()
            .lines()
            .filter(|l| l.contains(&bad.id) && l.contains("not a layer its runtime made"))
            .count()
    };
    e.wait_for(
        "the warning about the untrusted upper directory",
        Duration::from_secs(60),
        &bad.id,
        |_| warned(&e) == 1,
    );
    let page = e.wait_for(
        "the untrusted layer counted",
        Duration::from_secs(10),
        &bad.id,
        |p| {
            p.get("container_exporter_disk_layers", &[("state", "untrusted")])
                .is_some_and(|v| v >= 1.0)
        },
    );
    assert_eq!(usage(&page, &bad.id), None);
    // The host-rooted one's looks are counted as such.
    e.wait_for(
        "three looks by the host's mount namespace counted",
        Duration::from_secs(10),
        &host.id,
        |p| {
            p.get(
                "container_exporter_disk_layer_lookups_total",
                &[("by", "host_namespace")],
            )
            .is_some_and(|v| v >= 3.0)
        },
    );
}
