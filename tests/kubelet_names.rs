//! Kubernetes names with no CRI socket: a real pod of containerd over the CRI (real cgroups, the
//! real log files containerd writes in the kubelet's pod log layout), the links the kubelet
//! makes in `/var/log/containers` made the same way in a directory of the test's, and the
//! exporter started without the CRI: pod, namespace and container names on the container's
//! series and on the pod's. With the CRI answering, its names win over the links'.
//!
//! Needs containerd with its images (.ci/containerd-up.sh); runs as root.

mod common;

use std::time::Duration;

use common::TempDir;
use common::cri::{BUSYBOX, Containerd, Net, Qos};
use common::exporter::Exporter;
use common::page::Page;

fn exporter(cd: &Containerd, links: &TempDir, cri: &str) -> Exporter {
    Exporter::start_with_env(
        &[
            "--interval",
            "1s",
            "--cri-endpoint",
            cri,
            "--docker-host",
            "off",
            "--podman-host",
            "off",
            "--container-logs-dir",
            &links.0.to_string_lossy(),
            "--pod-logs-dir",
            &cd.dir.join("pods").to_string_lossy(),
        ],
        &[],
    )
}

fn named(page: &Page, id: &str, pod: &str, ns: &str, container: &str) -> bool {
    page.get(
        "container_memory_usage_bytes",
        &[
            ("container_id", id),
            ("k8s_pod_name", pod),
            ("k8s_namespace_name", ns),
            ("k8s_container_name", container),
        ],
    )
    .is_some()
}

#[test]
fn names_from_the_kubelets_log_layout_when_no_cri_answers_and_the_cri_first_when_it_does() {
    let cd = Containerd::start();
    let pod = cd.run_pod("cart-0", "shop", Qos::BestEffort, Net::Host, &[]);
    let app = cd.run_container(&pod, "app", BUSYBOX, 0);
    let log = cd
        .dir
        .join("pods")
        .join(format!("shop_cart-0_{}", pod.uid))
        .join("app/0.log");
    assert!(log.exists(), "containerd writes {}", log.display());

    // The kubelet's link: /var/log/containers/<pod>_<namespace>_<container>-<id>.log.
    let links = TempDir::new();
    std::os::unix::fs::symlink(&log, links.0.join(format!("cart-0_shop_app-{app}.log"))).unwrap();
    // Something else the directory may hold: not a link of the kubelet's shape.
    std::fs::write(links.0.join("README"), b"x").unwrap();

    let e = exporter(&cd, &links, "off");
    let page = e.wait_for(
        "names from the log layout",
        Duration::from_secs(30),
        &app,
        |p| named(p, &app, "cart-0", "shop", "app"),
    );
    let info = page.series("k8s_pod_info", &[("k8s_pod_uid", &pod.uid)]);
    assert_eq!(info.len(), 1, "{:?}", page.container_lines(&pod.uid));
    assert_eq!(
        info[0].labels.get("k8s_pod_name").map(String::as_str),
        Some("cart-0")
    );
    assert_eq!(
        info[0].labels.get("k8s_namespace_name").map(String::as_str),
        Some("shop")
    );
    let cinfo = page.series("container_info", &[("container_id", &app)]);
    assert_eq!(
        cinfo[0]
            .labels
            .get("k8s_container_restart_count")
            .map(String::as_str),
        Some("0"),
        "{:?}",
        cinfo[0].labels
    );
    // The container's log is measured too, through the same layout, once its names are known.
    e.wait_for(
        "the log through the layout",
        Duration::from_secs(30),
        &app,
        |p| {
            p.get(
                "container_log_filesystem_usage_bytes",
                &[("container_id", &app)],
            )
            .is_some()
        },
    );
    drop(e);

    // A link that says otherwise, with the CRI answering: the CRI's names win.
    let decoy = TempDir::new();
    std::os::unix::fs::symlink(&log, decoy.0.join(format!("decoy-9_other_side-{app}.log")))
        .unwrap();
    let e = exporter(&cd, &decoy, &cd.endpoint);
    let page = e.wait_for("the CRI's names", Duration::from_secs(30), &app, |p| {
        named(p, &app, "cart-0", "shop", "app")
    });
    assert!(
        !page.text.contains("decoy-9"),
        "{}",
        page.container_lines(&app)
    );
}
