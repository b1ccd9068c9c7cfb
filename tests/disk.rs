//! Disk usage against the real thing: real Docker containers (overlay2 on ext4) write a known
//! number of MiB and files into their root filesystem and lines to stdout, and the exporter's
//! figures, on the page, over OTLP and on the cAdvisor page, are checked against the workload
//! and against an independent `du -x` of the same directories; deleting the data shows within
//! the disk interval. Then the faults: a symlink loop, a name that is not UTF-8, mounts inside
//! the layer (another filesystem, and a bind mount of the same one), a container that writes
//! and deletes all the time, one without a log file, a directory the exporter may not read,
//! and a layer of 200,000 files next to a small container that keeps its cadence.
//!
//! Podman and containerd over the CRI are in `tests/disk_runtimes.rs`. Needs Docker
//! (.ci/docker-up.sh); runs as root (it mounts a tmpfs into a layer). Long because each fault
//! is a container of its own with its own ground truth.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::exporter::Exporter;
use common::otlp::{Proto, Receiver, points, resource};
use common::page::Page;
use common::{Container, docker};

/// `du -s -x` of `p`: (bytes as `-B1`, inodes as `--inodes`), the independent figure.
pub fn du(p: &Path) -> (u64, u64) {
    du_with(p, &[])
}

fn du_with(p: &Path, extra: &[&str]) -> (u64, u64) {
    let run = |arg: &str| -> u64 {
        let out = Command::new("du")
            .args(["-s", "-x", arg])
            .args(extra)
            .arg(p)
            .output()
            .expect("run du");
        assert!(
            out.status.success(),
            "du {}: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        );
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn upperdir(c: &Container) -> PathBuf {
    PathBuf::from(inspect(c, "{{.GraphDriver.Data.UpperDir}}"))
}

fn log_path(c: &Container) -> PathBuf {
    PathBuf::from(inspect(c, "{{.LogPath}}"))
}

fn exec(c: &Container, script: &str) {
    let out = docker(&["exec", &c.id, "sh", "-c", script]);
    assert!(
        out.status.success(),
        "docker exec {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until `path` exists inside the container.
fn wait_file(c: &Container, path: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !docker(&["exec", &c.id, "test", "-e", path])
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "{path} did not appear in {} within {timeout:?}; logs:\n{}",
            c.name,
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn usage(page: &Page, id: &str) -> Option<f64> {
    page.get("container_filesystem_usage_bytes", &[("container_id", id)])
}

fn inodes(page: &Page, id: &str) -> Option<f64> {
    page.get("container_filesystem_inode_used", &[("container_id", id)])
}

fn logs(page: &Page, id: &str) -> Option<f64> {
    page.get(
        "container_log_filesystem_usage_bytes",
        &[("container_id", id)],
    )
}

/// The device the filesystem holding `p` is mounted from, by `findmnt` (as cAdvisor names it;
/// `-v`: without the `[/dir]` of a bind mount).
fn device_of(p: &Path) -> String {
    let out = Command::new("findmnt")
        .args(["-n", "-v", "-o", "SOURCE", "--target"])
        .arg(p)
        .output()
        .expect("findmnt");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const MIB: u64 = 1 << 20;

/// Writes `files` files of 256 KiB under /data, `lines` lines to stdout, then waits for /go to
/// delete /data.
fn writer_script(files: u32, lines: u32) -> String {
    format!(
        "mkdir /data; i=0; while [ $i -lt {files} ]; do dd if=/dev/urandom of=/data/f$i bs=64k count=4 2>/dev/null; i=$((i+1)); done; \
         i=0; while [ $i -lt {lines} ]; do echo \"log line $i of the disk test, padded to a fixed length\"; i=$((i+1)); done; \
         touch /ready; while [ ! -e /go ]; do sleep 0.2; done; rm -rf /data; touch /deleted; \
         trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"
    )
}

const LINE_LEN: u64 = "log line 0 of the disk test, padded to a fixed length\n".len() as u64;

#[test]
fn docker_layer_and_logs_match_du_on_every_output_and_deletion_shows_within_the_interval() {
    let rx = Receiver::start(Proto::Http);
    let e = Exporter::start(&[
        "--interval",
        "1s",
        "--disk-interval",
        "2s",
        "--otlp-endpoint",
        &rx.endpoint(),
    ]);
    let cad = Exporter::start(&[
        "--interval",
        "1s",
        "--disk-interval",
        "2s",
        "--prometheus-names",
        "cadvisor",
    ]);
    let files = 40;
    let lines = 500;
    let c = Container::sh(&[], &writer_script(files, lines));
    wait_file(&c, "/ready", Duration::from_secs(60));
    let upper = upperdir(&c);
    let log = log_path(&c);
    let written = u64::from(files) * 256 * 1024;

    // The page: exactly what du says once the container is done writing, and within what the
    // workload wrote (its files, plus a few KiB of directories and the marker file).
    let page = e.wait_for(
        "layer usage equal to du",
        Duration::from_secs(30),
        &c.id,
        // Bytes and inodes: a walk made just before the (empty) marker file was created has
        // the bytes already, one inode short.
        |p| {
            let (bytes, count) = du(&upper);
            usage(p, &c.id) == Some(bytes as f64) && inodes(p, &c.id) == Some(count as f64)
        },
    );
    let (bytes, count) = du(&upper);
    assert!(
        (written..=written + 64 * 1024).contains(&bytes),
        "du says {bytes} for {written} bytes written"
    );
    assert_eq!(usage(&page, &c.id), Some(bytes as f64));
    assert_eq!(inodes(&page, &c.id), Some(count as f64));
    assert!(count > u64::from(files), "{count} inodes for {files} files");
    let cap = page
        .get(
            "container_filesystem_capacity_bytes",
            &[("container_id", &c.id)],
        )
        .unwrap();
    let avail = page
        .get(
            "container_filesystem_available_bytes",
            &[("container_id", &c.id)],
        )
        .unwrap();
    let st = nix::sys::statvfs::statvfs(&upper).unwrap();
    assert_eq!(cap, (st.blocks() * st.fragment_size()) as f64);
    assert!(avail > 0.0 && avail < cap, "{avail} of {cap}");
    assert!(
        page.get(
            "container_filesystem_inode_free",
            &[("container_id", &c.id)]
        )
        .is_some_and(|v| v > 0.0)
    );

    // Logs: Docker's json-file, as du counts it, and at least the bytes written to stdout.
    let page = e.wait_for(
        "log usage equal to du",
        Duration::from_secs(30),
        &c.id,
        |p| logs(p, &c.id) == Some(du(&log).0 as f64),
    );
    assert!(
        logs(&page, &c.id).unwrap() >= (u64::from(lines) * LINE_LEN) as f64,
        "{:?} for {} bytes of stdout",
        logs(&page, &c.id),
        u64::from(lines) * LINE_LEN
    );
    // Not a Kubernetes container: no ephemeral-storage parts.
    assert!(
        page.series(
            "k8s_container_ephemeral_storage_usage_bytes",
            &[("container_id", &c.id)]
        )
        .is_empty()
    );

    // OTLP: the same figure.
    let want = du(&upper).0 as f64;
    rx.wait_for(
        "container.filesystem.usage over OTLP",
        Duration::from_secs(30),
        |got| {
            got.iter().rev().find_map(|g| {
                let r = resource(&g.request, &c.id)?;
                let p = points(r, "container.filesystem.usage");
                (p.len() == 1 && p[0].1 == want).then_some(())
            })
        },
    );

    // The cAdvisor page: layer plus log file, on the device the layer is on.
    let device = device_of(&upper);
    assert!(device.starts_with("/dev/"), "{device}");
    let page = cad.wait_for(
        "container_fs_usage_bytes = layer + log",
        Duration::from_secs(30),
        &c.id,
        |p| {
            p.get(
                "container_fs_usage_bytes",
                &[("name", &c.name), ("device", &device)],
            ) == Some((du(&upper).0 + du(&log).0) as f64)
        },
    );
    assert_eq!(
        page.get(
            "container_fs_inodes_total",
            &[("name", &c.name), ("device", &device)]
        ),
        Some(du(&upper).1 as f64)
    );
    assert_eq!(
        page.get(
            "container_fs_limit_bytes",
            &[("name", &c.name), ("device", &device)]
        ),
        Some(cap)
    );
    assert!(
        page.get(
            "container_fs_inodes_free",
            &[("name", &c.name), ("device", &device)]
        )
        .is_some()
    );

    // Deleting the data shows at the next walks (disk interval 2 s, tick 1 s). A promised
    // bound, with a wide margin: 60 s is far less than the 10-minute full pass, so a deletion
    // only the full pass would notice fails here; how fast it shows is not asserted.
    exec(&c, "touch /go");
    wait_file(&c, "/deleted", Duration::from_secs(30));
    let deleted_at = Instant::now();
    let page = e.wait_for(
        "the deletion on the page",
        Duration::from_secs(60),
        &c.id,
        |p| usage(p, &c.id).is_some_and(|u| u < (64 * 1024) as f64),
    );
    let took = deleted_at.elapsed();
    assert_eq!(usage(&page, &c.id), Some(du(&upper).0 as f64));
    eprintln!("deletion shown {took:?} after it happened (disk interval 2 s, tick 1 s)");
}

/// A tmpfs mounted on the host inside a container's layer, unmounted when dropped (before the
/// container is removed: declare it after the container).
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount(args: &[&str], target: &Path) -> Mounted {
    let st = Command::new("mount")
        .args(args)
        .arg(target)
        .status()
        .expect("mount");
    assert!(st.success(), "mount {args:?} {}", target.display());
    Mounted(target.to_path_buf())
}

#[test]
fn faults_in_layers_lose_nothing_else() {
    let e = Exporter::start(&["--interval", "1s", "--disk-interval", "1s"]);
    let ready = "touch /ready; trap 'exit 0' TERM; while :; do sleep 3600 & wait; done";
    // A symlink loop, links to / and to ., and a dangling one.
    let links = Container::sh(
        &[],
        &format!(
            "dd if=/dev/zero of=/one bs=1M count=1 2>/dev/null; ln -s /loop-b /loop-a; \
             ln -s /loop-a /loop-b; ln -s / /rootlink; mkdir /d; ln -s . /d/self; \
             ln -s /nowhere /dangling; {ready}"
        ),
    );
    // Names that are not UTF-8, a directory among them.
    let names = Container::sh(
        &[],
        &format!(
            "mkdir \"/$(printf 'd\\351j\\340')\"; echo x > \"/$(printf 'd\\351j\\340')/$(printf '\\377\\376')\"; \
             dd if=/dev/zero of=\"/$(printf 'caf\\351')\" bs=1k count=100 2>/dev/null; {ready}"
        ),
    );
    // Mount points made inside the layer (on the host): another filesystem, and a bind mount
    // of a directory of the same one.
    let mounts = Container::sh(
        &[],
        &format!(
            "mkdir -p /m/tmp /m/bind; dd if=/dev/zero of=/m/f bs=1M count=1 2>/dev/null; {ready}"
        ),
    );
    // Writes and deletes 100 files over and over, next to a stable 4 MiB.
    let churn = Container::sh(
        &[],
        "mkdir /churn; dd if=/dev/zero of=/stable bs=1M count=4 2>/dev/null; touch /ready; \
         trap 'exit 0' TERM; while :; do i=0; while [ $i -lt 100 ]; do echo xxxxxxxx > /churn/$i; \
         i=$((i+1)); done; rm -f /churn/*; done",
    );
    // A log driver that writes no file: no log figure, no error.
    let nolog = Container::sh(
        &["--log-driver", "none"],
        &format!("dd if=/dev/zero of=/f bs=1M count=2 2>/dev/null; echo hello; {ready}"),
    );
    for c in [&links, &names, &mounts, &churn, &nolog] {
        wait_file(c, "/ready", Duration::from_secs(30));
    }
    let up = upperdir(&mounts);
    let _tmp = mount(
        &["-t", "tmpfs", "-o", "size=8m", "ce-disk-test"],
        &up.join("m/tmp"),
    );
    std::fs::write(up.join("m/tmp/inside"), vec![1u8; 3 << 20]).unwrap();
    let src = common::TempDir::new();
    std::fs::write(src.0.join("bound"), vec![1u8; 2 << 20]).unwrap();
    let _bind = mount(&["--bind", &src.0.to_string_lossy()], &up.join("m/bind"));
    // Written from the host: the container used no CPU for it, so it is seen at the next
    // walk its own CPU time or the idle interval brings. Make it move.
    exec(&mounts, "true");

    for c in [&links, &names] {
        let upper = upperdir(c);
        e.wait_for("usage equal to du", Duration::from_secs(30), &c.id, |p| {
            usage(p, &c.id) == Some(du(&upper).0 as f64)
                && inodes(p, &c.id) == Some(du(&upper).1 as f64)
        });
    }
    // du -x enters the bind mount (same device); the exporter enters no mount point at all: it
    // counts the mount point (what is mounted there is seen) but nothing below it.
    let (excl_bytes, excl_inodes) = du_with(&up, &["--exclude=bind"]);
    let st = nix::sys::stat::stat(&up.join("m/bind")).unwrap();
    let want = (excl_bytes + st.st_blocks as u64 * 512, excl_inodes + 1);
    let page = e.wait_for(
        "mounts not entered",
        Duration::from_secs(30),
        &mounts.id,
        |p| {
            usage(p, &mounts.id) == Some(want.0 as f64)
                && inodes(p, &mounts.id) == Some(want.1 as f64)
        },
    );
    assert!(usage(&page, &mounts.id).unwrap() < (2 * MIB) as f64);
    assert!(du(&up).0 > 2 * MIB, "du -x does enter the bind mount");

    // The churning container: every walk completes, within the stable file and the most the
    // loop can have at once.
    let before = e.metrics().value(
        "container_exporter_disk_walks_total",
        &[("outcome", "complete")],
    );
    let page = e.wait_for("walks go on", Duration::from_secs(30), &churn.id, |p| {
        p.value(
            "container_exporter_disk_walks_total",
            &[("outcome", "complete")],
        ) >= before + 5.0
            && usage(p, &churn.id).is_some()
    });
    let u = usage(&page, &churn.id).unwrap();
    assert!(
        ((4 * MIB) as f64..=(4 * MIB + 101 * 4096 + 64 * 1024) as f64).contains(&u),
        "churning container: {u}"
    );

    // No log file: the layer is there, the log figure is not, and nothing was logged about it.
    let upper = upperdir(&nolog);
    let page = e.wait_for(
        "layer without a log",
        Duration::from_secs(30),
        &nolog.id,
        |p| usage(p, &nolog.id) == Some(du(&upper).0 as f64),
    );
    assert_eq!(logs(&page, &nolog.id), None);
    assert!(logs(&page, &links.id).is_some());

    let log = e.log_text();
    for c in [&links, &names, &mounts, &churn, &nolog] {
        let warned: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") && l.contains(&c.id))
            .collect();
        assert!(warned.is_empty(), "warnings about {}: {warned:?}", c.name);
    }
    assert_eq!(
        page.value(
            "container_exporter_disk_walks_total",
            &[("outcome", "denied")]
        ),
        0.0
    );
}

#[test]
fn an_unreadable_directory_gives_one_warning_and_no_wrong_number() {
    // Without CAP_DAC_READ_SEARCH (every capability dropped), root cannot list a directory of
    // another user's with mode 700.
    let e = Exporter::start_under(
        &[
            "setpriv",
            "--bounding-set",
            "-all",
            "--inh-caps",
            "-all",
            "--",
        ],
        &["--interval", "1s", "--disk-interval", "1s"],
        &[],
    );
    let ready = "touch /ready; trap 'exit 0' TERM; while :; do sleep 1 & wait; done";
    let locked = Container::sh(
        &[],
        &format!(
            "mkdir /secret; echo x > /secret/f; chown -R 4242 /secret; chmod 700 /secret; \
             dd if=/dev/zero of=/f bs=1M count=1 2>/dev/null; {ready}"
        ),
    );
    let open = Container::sh(
        &[],
        &format!("dd if=/dev/zero of=/f bs=1M count=1 2>/dev/null; {ready}"),
    );
    wait_file(&locked, "/ready", Duration::from_secs(30));
    wait_file(&open, "/ready", Duration::from_secs(30));
    let upper = upperdir(&open);
    let page = e.wait_for(
        "the readable container's usage",
        Duration::from_secs(30),
        &open.id,
        |p| {
            usage(p, &open.id) == Some(du(&upper).0 as f64)
                && p.value(
                    "container_exporter_disk_walks_total",
                    &[("outcome", "denied")],
                ) >= 3.0
        },
    );
    // Walked again and again (its CPU moves), denied every time, never shown.
    assert_eq!(usage(&page, &locked.id), None);
    assert!(page.has_container(&locked.id));
    assert!(
        logs(&page, &locked.id).is_some(),
        "its log is still measured"
    );
    let log = e.log_text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(&locked.id) && l.contains("permission denied"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("./secret"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("CAP_DAC_READ_SEARCH"),
        "{}",
        warnings[0]
    );
}

/// The exporter's resident memory, from its page.
fn rss(page: &Page) -> f64 {
    page.value("process_resident_memory_bytes", &[])
}

#[test]
fn a_layer_of_200000_files_holds_back_neither_ticks_nor_other_containers() {
    // 3 % of a CPU: the big walk (about 2.4 µs of CPU an entry in a debug build) takes some
    // 15 s, long enough to watch what happens meanwhile.
    let e = Exporter::start(&[
        "--interval",
        "1s",
        "--disk-interval",
        "2s",
        "--disk-cpu-budget",
        "3%",
    ]);
    let small = Container::sh(
        &[],
        "dd if=/dev/zero of=/f bs=1M count=1 2>/dev/null; touch /ready; \
         while [ ! -e /go ]; do sleep 0.2; done; dd if=/dev/zero of=/more bs=1M count=2 2>/dev/null; \
         touch /done; trap 'exit 0' TERM; while :; do sleep 1 & wait; done",
    );
    wait_file(&small, "/ready", Duration::from_secs(30));
    let small_up = upperdir(&small);
    e.wait_for(
        "the small container's usage",
        Duration::from_secs(30),
        &small.id,
        |p| usage(p, &small.id) == Some(du(&small_up).0 as f64),
    );

    // The big one: created, filled from the host (200 directories of 1,000 files), started.
    let mut big = Container {
        name: common::unique_name(),
        id: String::new(),
        host: None,
    };
    let out = docker(&[
        "create",
        "--network",
        "none",
        "--name",
        &big.name,
        common::IMAGE,
        "sh",
        "-c",
        "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    big.id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let big_up = upperdir(&big);
    for d in 0..200 {
        let dir = big_up.join(format!("d{d}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..1000 {
            std::fs::write(dir.join(format!("f{f}")), b"0123456789").unwrap();
        }
    }
    let big_du = du(&big_up);
    assert!(big_du.1 > 200_000, "{big_du:?}");
    let before = e.metrics();
    let entries0 = before.value("container_exporter_disk_entries_total", &[]);
    let rss0 = rss(&before);
    assert!(docker(&["start", &big.id]).status.success());

    // Its walk is under way (and far from done).
    let page = e.wait_for(
        "the big walk under way",
        Duration::from_secs(60),
        &big.id,
        |p| p.value("container_exporter_disk_entries_total", &[]) > entries0 + 5_000.0,
    );
    assert_eq!(
        usage(&page, &big.id),
        None,
        "the big walk was over too soon to watch it"
    );
    let ticks0 = page.value("container_exporter_collections_total", &[]);
    let watch_from = Instant::now();

    // The small container writes: its new usage shows within the disk interval, a tick and a
    // few slices (each at most 5 ms of CPU, then a pause to keep within the budget), while the
    // big walk goes on.
    exec(&small, "touch /go");
    wait_file(&small, "/done", Duration::from_secs(30));
    let written = Instant::now();
    let page = e.wait_for(
        "the small container's new usage during the big walk",
        Duration::from_secs(30),
        &small.id,
        |p| usage(p, &small.id) == Some(du(&small_up).0 as f64),
    );
    let took = written.elapsed();
    eprintln!("small container's write shown after {took:?} during the big walk");
    // Not behind the big walk: it showed while the big walk was still under way (the order of
    // events, not a time).
    assert_eq!(
        usage(&page, &big.id),
        None,
        "the big walk ended before the small container's turn: nothing was shown"
    );

    // Ticks went on meanwhile: three more, while the big walk is still under way. (How many
    // per second is speed, for the benchmarks.)
    let page = e.wait_for(
        "three more ticks during the big walk",
        Duration::from_secs(60),
        &big.id,
        |p| p.value("container_exporter_collections_total", &[]) >= ticks0 + 3.0,
    );
    let ticks = page.value("container_exporter_collections_total", &[]) - ticks0;
    assert_eq!(
        usage(&page, &big.id),
        None,
        "still walking after {ticks} ticks: the ticks did not wait for the walk"
    );

    // The big layer, once walked, is what du says; memory stayed bounded meanwhile.
    let page = e.wait_for(
        "the big layer's usage",
        Duration::from_secs(180),
        &big.id,
        |p| usage(p, &big.id).is_some(),
    );
    assert_eq!(usage(&page, &big.id), Some(big_du.0 as f64));
    assert_eq!(inodes(&page, &big.id), Some(big_du.1 as f64));
    eprintln!(
        "big walk over after {:?}; disk thread CPU {} s for {} entries",
        watch_from.elapsed(),
        page.value("container_exporter_disk_cpu_time_seconds_total", &[]),
        page.value("container_exporter_disk_entries_total", &[])
    );
    let grew = rss(&page) - rss0;
    assert!(
        grew < (16 * MIB) as f64,
        "resident memory grew by {grew} bytes while walking 200,000 files"
    );

    // Removed while walked again: no warning, the small one unaffected.
    exec(&big, "touch /again");
    let entries1 = page.value("container_exporter_disk_entries_total", &[]);
    e.wait_for(
        "the big walk again",
        Duration::from_secs(60),
        &big.id,
        |p| p.value("container_exporter_disk_entries_total", &[]) > entries1 + 5_000.0,
    );
    big.remove();
    exec(&small, "dd if=/dev/zero of=/last bs=1M count=1 2>/dev/null");
    e.wait_for(
        "the small container after the big one went",
        Duration::from_secs(30),
        &small.id,
        |p| usage(p, &small.id) == Some(du(&small_up).0 as f64) && !p.has_container(&big.id),
    );
    let warned: Vec<String> = e
        .log_text()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(&big.id))
        .map(str::to_string)
        .collect();
    assert!(warned.is_empty(), "{warned:?}");
}

/// `container-exporter check` with `args`: its output.
fn check(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_container-exporter"))
        .arg("check")
        .args(args)
        .output()
        .expect("run check");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn check_says_whether_disk_usage_works_and_why_not() {
    let c = Container::sh(
        &[],
        "touch /ready; trap 'exit 0' TERM; while :; do sleep 3600 & wait; done",
    );
    wait_file(&c, "/ready", Duration::from_secs(30));
    let disk = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains(" disk "))
            .map(str::to_string)
            .collect()
    };
    let ok = check(&[]);
    assert!(
        disk(&ok)
            .iter()
            .any(|l| l.starts_with("ok") && l.contains("docker: ") && l.contains("on overlay")),
        "{ok}"
    );
    let wrong = check(&["--host-root", "/nonexistent-host-root"]);
    assert!(
        disk(&wrong)
            .iter()
            .any(|l| l.starts_with("warn") && l.contains("cannot open --host-root")),
        "{wrong}"
    );
    // A host root that exists but does not hold the layers.
    let empty = common::TempDir::new();
    let elsewhere = check(&["--host-root", &empty.0.to_string_lossy()]);
    assert!(
        disk(&elsewhere)
            .iter()
            .any(|l| l.starts_with("warn") && l.contains("not below --host-root")),
        "{elsewhere}"
    );
    let off = check(&["--disk-interval", "off"]);
    assert!(
        disk(&off)
            .iter()
            .any(|l| l.starts_with("note") && l.contains("off")),
        "{off}"
    );
}
