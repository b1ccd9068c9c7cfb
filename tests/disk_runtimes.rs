//! Disk usage of the other runtimes, against the real thing and an independent `du`: a real
//! Podman container (overlay, `k8s-file` log), and a real pod of containerd over the CRI with
//! two containers and `emptyDir` volumes made in the kubelet's layout (one on disk, one
//! memory-backed), whose ephemeral storage is its containers' layers, its logs and the
//! on-disk volume. The layers' directories are taken from the runtimes themselves (Podman's
//! inspect, containerd's snapshot mounts), not from the mountinfo the exporter reads.
//!
//! Needs Podman (.ci/podman-up.sh) and containerd with its images (.ci/containerd-up.sh);
//! runs as root.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::cri::{BUSYBOX, Containerd, Net, Qos, TOOLS};
use common::exporter::Exporter;
use common::page::Page;
use common::{IMAGE, TempDir, unique_name};

fn du(p: &Path) -> (u64, u64) {
    let run = |arg: &str| -> u64 {
        let out = Command::new("du")
            .args(["-s", "-x", arg])
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

fn get(page: &Page, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    page.get(name, labels)
}

const MIB: u64 = 1 << 20;
const LINE: &str = "a line of the disk test's container, padded to a fixed length";

/// Writes `mib` MiB into /data in 256 KiB files and `lines` lines to stdout, then waits (and
/// deletes /data when /go appears).
fn writer(mib: u64, lines: u32) -> String {
    format!(
        "mkdir /data; i=0; while [ $i -lt {n} ]; do dd if=/dev/urandom of=/data/f$i bs=64k count=4 2>/dev/null; i=$((i+1)); done; \
         i=0; while [ $i -lt {lines} ]; do echo \"{LINE}\"; i=$((i+1)); done; touch /ready; \
         trap 'exit 0' TERM INT; while [ ! -e /go ]; do sleep 0.2; done; rm -rf /data; touch /deleted; \
         while :; do sleep 3600 & wait; done",
        n = mib * 4
    )
}

// ---------------------------------------------------------------------------------------------
// Podman
// ---------------------------------------------------------------------------------------------

const PODMAN_HOST: &str = "unix:///run/ce-podman/podman.sock";

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .env("CONTAINERS_CONF", "/etc/ce-podman/containers.conf")
        .env("CONTAINERS_STORAGE_CONF", "/etc/ce-podman/storage.conf")
        .output()
        .unwrap_or_else(|e| panic!("cannot run podman: {e}; run .ci/podman-up.sh"))
}

fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "`podman {}` failed: {} (run .ci/docker-up.sh and .ci/podman-up.sh)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

struct PodmanCtr(String);

impl Drop for PodmanCtr {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.0]);
    }
}

fn podman_wait_file(id: &str, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !podman(&["exec", id, "test", "-e", path]).status.success() {
        assert!(Instant::now() < deadline, "{path} never appeared in {id}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn podman_layer_and_log_match_du_and_deletion_shows() {
    let e = Exporter::start(&[
        "--interval",
        "1s",
        "--disk-interval",
        "2s",
        "--podman-host",
        PODMAN_HOST,
    ]);
    let name = unique_name();
    let id = podman_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        &writer(6, 300),
    ]);
    let _guard = PodmanCtr(id.clone());
    podman_wait_file(&id, "/ready");
    let upper = PathBuf::from(podman_ok(&[
        "inspect",
        "-f",
        "{{.GraphDriver.Data.UpperDir}}",
        &id,
    ]));
    let log = PathBuf::from(podman_ok(&[
        "inspect",
        "--type",
        "container",
        "-f",
        "{{.HostConfig.LogConfig.Path}}",
        &id,
    ]));
    assert!(upper.is_dir() && log.is_file(), "{upper:?} {log:?}");

    let page = e.wait_for(
        "Podman layer and log equal to du",
        Duration::from_secs(30),
        &id,
        |p| {
            get(
                p,
                "container_filesystem_usage_bytes",
                &[("container_id", &id)],
            ) == Some(du(&upper).0 as f64)
                && get(
                    p,
                    "container_log_filesystem_usage_bytes",
                    &[("container_id", &id)],
                ) == Some(du(&log).0 as f64)
        },
    );
    let used = get(
        &page,
        "container_filesystem_usage_bytes",
        &[("container_id", &id)],
    )
    .unwrap();
    assert!(
        ((6 * MIB) as f64..=(6 * MIB + 64 * 1024) as f64).contains(&used),
        "{used} for 6 MiB written"
    );
    let logged = get(
        &page,
        "container_log_filesystem_usage_bytes",
        &[("container_id", &id)],
    );
    assert!(
        logged.unwrap() >= (300 * (LINE.len() + 1)) as f64,
        "{logged:?}"
    );
    assert_eq!(
        get(
            &page,
            "container_filesystem_inode_used",
            &[("container_id", &id)]
        ),
        Some(du(&upper).1 as f64)
    );

    assert!(podman(&["exec", &id, "touch", "/go"]).status.success());
    podman_wait_file(&id, "/deleted");
    // Shown at the next walks: a promised bound, with a wide margin (60 s, far less than the
    // 10-minute full pass); how fast it shows is not asserted.
    e.wait_for("the deletion", Duration::from_secs(60), &id, |p| {
        get(
            p,
            "container_filesystem_usage_bytes",
            &[("container_id", &id)],
        )
        .is_some_and(|u| u < (64 * 1024) as f64)
    });
}

// ---------------------------------------------------------------------------------------------
// containerd over the CRI, in the kubelet's layout
// ---------------------------------------------------------------------------------------------

/// The writable layer of a CRI container as containerd says it: the `upperdir` of the mounts
/// of its snapshot.
fn cri_upperdir(cd: &Containerd, id: &str) -> PathBuf {
    let info: serde_json::Value =
        serde_json::from_str(&cd.ctr(&["-n", "k8s.io", "containers", "info", id])).unwrap();
    let key = info["SnapshotKey"]
        .as_str()
        .expect("a snapshot key")
        .to_owned();
    let mounts = cd.ctr(&["-n", "k8s.io", "snapshots", "mounts", "/mnt", &key]);
    let upper = mounts
        .split([',', ' ', '\n'])
        .find_map(|o| o.strip_prefix("upperdir="))
        .unwrap_or_else(|| panic!("no upperdir in {mounts:?}"));
    PathBuf::from(upper)
}

/// Waits until `path` exists in a CRI container's layer (its root filesystem's writes).
fn wait_in_layer(upper: &Path, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !upper.join(path).exists() {
        assert!(
            Instant::now() < deadline,
            "{path} never appeared in {}",
            upper.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_cri_pods_ephemeral_storage_is_its_layers_logs_and_disk_backed_empty_dirs() {
    let cd = Containerd::start();
    let kubelet = TempDir::new();
    let pod_logs = cd.dir.join("pods");
    let e = Exporter::start_with_env(
        &[
            "--interval",
            "1s",
            "--disk-interval",
            "2s",
            "--cri-endpoint",
            &cd.endpoint,
            "--docker-host",
            "off",
            "--podman-host",
            "off",
            "--kubelet-root",
            &kubelet.0.to_string_lossy(),
            "--pod-logs-dir",
            &pod_logs.to_string_lossy(),
        ],
        &[],
    );
    let pod = cd.run_pod("shop-0", "disk", Qos::BestEffort, Net::Host, &[]);
    // The kubelet's directories for the pod: an emptyDir on disk with 3 MiB in it, and a
    // memory-backed one (a tmpfs), which is not ephemeral storage.
    let vols = kubelet
        .0
        .join("pods")
        .join(&pod.uid)
        .join("volumes/kubernetes.io~empty-dir");
    std::fs::create_dir_all(vols.join("cache/sub")).unwrap();
    std::fs::write(vols.join("cache/a"), vec![1u8; 2 << 20]).unwrap();
    std::fs::write(vols.join("cache/sub/b"), vec![1u8; 1 << 20]).unwrap();
    std::fs::create_dir_all(vols.join("shm")).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "ce-disk-shm"])
        .arg(vols.join("shm"))
        .status()
        .unwrap();
    assert!(st.success());
    let _shm = Tmpfs(vols.join("shm"));
    std::fs::write(vols.join("shm/in-memory"), vec![1u8; 4 << 20]).unwrap();

    let app = cd.create_container_cmd(&pod, "app", BUSYBOX, 0, &writer(5, 400));
    cd.start_container(&app);
    let side = cd.create_container_cmd(&pod, "side", TOOLS, 0, &writer(2, 100));
    cd.start_container(&side);
    let (app_up, side_up) = (cri_upperdir(&cd, &app), cri_upperdir(&cd, &side));
    wait_in_layer(&app_up, "ready");
    wait_in_layer(&side_up, "ready");
    let pod_log_dir = pod_logs.join(format!("{}_{}_{}", pod.namespace, pod.name, pod.uid));
    let app_log = pod_log_dir.join("app");

    // Each container: its layer and its log directory, as du says.
    for (id, up, mib) in [(&app, &app_up, 5), (&side, &side_up, 2)] {
        let page = e.wait_for(
            "a CRI container's layer",
            Duration::from_secs(30),
            id,
            |p| {
                get(
                    p,
                    "container_filesystem_usage_bytes",
                    &[("container_id", id)],
                ) == Some(du(up).0 as f64)
            },
        );
        let u = get(
            &page,
            "container_filesystem_usage_bytes",
            &[("container_id", id)],
        )
        .unwrap();
        assert!(
            ((mib * MIB) as f64..=(mib * MIB + 64 * 1024) as f64).contains(&u),
            "{u} for {mib} MiB"
        );
        assert_eq!(
            get(
                &page,
                "k8s_container_ephemeral_storage_usage_bytes",
                &[
                    ("container_id", id),
                    ("k8s_container_ephemeral_storage_fs_type", "rootfs")
                ]
            ),
            Some(u)
        );
    }
    let page = e.wait_for("the app's log", Duration::from_secs(30), &app, |p| {
        get(
            p,
            "container_log_filesystem_usage_bytes",
            &[("container_id", &app)],
        ) == Some(du(&app_log).0 as f64)
    });
    assert!(
        du(&app_log.join("0.log")).0 >= (400 * (LINE.len() + 1)) as u64,
        "the CRI log holds what was written"
    );
    assert_eq!(
        get(
            &page,
            "k8s_container_ephemeral_storage_usage_bytes",
            &[
                ("container_id", &app),
                ("k8s_container_ephemeral_storage_fs_type", "logs")
            ]
        ),
        Some(du(&app_log).0 as f64)
    );

    // The pod: both layers, the pod's log directory, and the on-disk emptyDir (its own
    // directory, not the volumes' parent), not the memory-backed one.
    let want = || {
        let layers = du(&app_up).0 + du(&side_up).0;
        let logs = du(&pod_log_dir).0;
        let empty = du(&vols.join("cache")).0;
        (layers, logs, empty)
    };
    let uid = pod.uid.as_str();
    let part = |p: &Page, t: &str| {
        get(
            p,
            "k8s_pod_ephemeral_storage_usage_bytes",
            &[
                ("k8s_pod_uid", uid),
                ("k8s_container_ephemeral_storage_fs_type", t),
            ],
        )
    };
    let page = e.wait_for(
        "the pod's ephemeral storage",
        Duration::from_secs(30),
        uid,
        |p| {
            let (layers, logs, empty) = want();
            get(p, "k8s_pod_filesystem_usage_bytes", &[("k8s_pod_uid", uid)])
                == Some((layers + logs + empty) as f64)
                && part(p, "rootfs") == Some(layers as f64)
                && part(p, "logs") == Some(logs as f64)
                && get(p, "k8s_pod_empty_dir_usage_bytes", &[("k8s_pod_uid", uid)])
                    == Some(empty as f64)
        },
    );
    let (_, _, empty) = want();
    assert!(
        (3 * MIB..4 * MIB).contains(&empty),
        "{empty}: the memory-backed volume is not in it"
    );
    assert!(
        get(
            &page,
            "k8s_pod_filesystem_capacity_bytes",
            &[("k8s_pod_uid", uid)]
        )
        .is_some()
    );
    assert!(
        get(
            &page,
            "k8s_pod_log_filesystem_usage_bytes",
            &[("k8s_pod_uid", uid)]
        )
        .is_some()
    );
    // The sandbox is neither shown nor summed.
    assert!(!page.has_container(&pod.sandbox_id));

    // Deleting the app's data shows in the container and the pod.
    cd.ctr(&[
        "-n",
        "k8s.io",
        "tasks",
        "exec",
        "--exec-id",
        "go",
        &app,
        "touch",
        "/go",
    ]);
    wait_in_layer(&app_up, "deleted");
    e.wait_for(
        "the deletion in the pod's total",
        Duration::from_secs(30),
        uid,
        |p| {
            let (layers, logs, empty) = want();
            get(
                p,
                "container_filesystem_usage_bytes",
                &[("container_id", &app)],
            )
            .is_some_and(|u| u < (64 * 1024) as f64)
                && get(p, "k8s_pod_filesystem_usage_bytes", &[("k8s_pod_uid", uid)])
                    == Some((layers + logs + empty) as f64)
        },
    );
}
