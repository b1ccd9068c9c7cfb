//! The runtimes' APIs: which of Docker, Podman and the CRI answer, what they are, and how
//! many of the containers found they name.

use std::time::Duration;

use super::probe::answer;
use super::report::{Level, Report};
use crate::config::{HostArgs, MetadataArgs, is_off};
use crate::discovery::{Found, Kind, Runtime};
use crate::metadata::{Metadata, cri, cri_endpoint, docker, podman_host, spawn_sources};
use crate::telemetry::Telemetry;

/// The runtimes' APIs: which answer, what they are, and how many of the containers found they
/// name (the same sources the daemon would start, given a moment to list).
pub fn check(r: &mut Report, args: &MetadataArgs, host: &HostArgs, found: &[Found]) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    else {
        r.add(
            Level::Warn,
            "metadata",
            "cannot start a runtime to ask the container runtimes",
        );
        return;
    };

    // Docker
    let docker_host = args.docker_host.as_deref();
    if docker_host.is_some_and(is_off) {
        r.add(Level::Note, "docker", "off (--docker-host off)");
    } else {
        let url = docker::resolve_host(docker_host);
        match answer(&rt, docker::probe(&url)) {
            Ok((version, api)) => r.add(
                Level::Ok,
                "docker",
                format!("Docker {version} (API {api}) at {url}: names, images and labels"),
            ),
            Err(e)
                if docker_host.is_none() && !found.iter().any(|f| f.runtime == Runtime::Docker) =>
            {
                r.add(
                    Level::Note,
                    "docker",
                    format!("no Docker at {url} ({e}), and no Docker containers"),
                )
            }
            Err(e) => r.add(
                Level::Warn,
                "docker",
                format!(
                    "cannot reach Docker at {url} ({e}): metrics still work, but containers \
                     are reported by id only. Mount the socket (-v /var/run/docker.sock:\
                     /var/run/docker.sock:ro), set --docker-host, or --docker-host off"
                ),
            ),
        }
    }

    // Podman
    match podman_host(args) {
        None if found.iter().any(|f| f.runtime == Runtime::Podman) => r.add(
            Level::Warn,
            "podman",
            "Podman containers found but no Podman API (start `podman system service` or \
             podman.socket, and set --podman-host): they are reported by id",
        ),
        None => {}
        Some(url) => match answer(&rt, docker::probe(&url)) {
            Ok((version, api)) => r.add(
                Level::Ok,
                "podman",
                format!("Podman {version} (Docker API {api}) at {url}"),
            ),
            Err(e) => r.add(
                Level::Warn,
                "podman",
                format!("cannot reach Podman at {url} ({e}): Podman containers are reported by id"),
            ),
        },
    }

    // CRI
    let in_pods = found
        .iter()
        .filter(|f| f.kind == Kind::Container && f.pod_uid.is_some())
        .count();
    match cri_endpoint(args) {
        None if in_pods > 0 => r.add(
            Level::Warn,
            "cri",
            format!(
                "{in_pods} Kubernetes containers found but no CRI socket ({}): they are \
                 reported by id and pod uid, without pod, namespace or container names. Mount \
                 the runtime's socket and set --cri-endpoint",
                cri::DEFAULT_ENDPOINTS.join(", ")
            ),
        ),
        None => {}
        Some(endpoint) => match answer(&rt, cri::probe(&endpoint)) {
            Ok(v) => r.add(
                Level::Ok,
                "cri",
                format!(
                    "{} {} (CRI {}) at {endpoint}: pod, namespace and container names",
                    v.runtime_name, v.runtime_version, v.runtime_api_version
                ),
            ),
            Err(e) => r.add(
                Level::Warn,
                "cri",
                format!(
                    "cannot use the CRI at {endpoint} ({e}): Kubernetes containers are \
                     reported by id and pod uid"
                ),
            ),
        },
    }

    // How many of the containers found have names: what the daemon would show.
    let containers: Vec<&Found> = found.iter().filter(|f| f.kind == Kind::Container).collect();
    if containers.is_empty() {
        return;
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let telemetry = Telemetry::default();
    let store = spawn_sources(
        args,
        host,
        Duration::from_secs(60),
        &telemetry,
        rt.handle(),
        &stopped,
    );
    let named = |s: &Metadata| {
        containers
            .iter()
            .filter(|f| {
                s.container(f.runtime, &f.id)
                    .is_some_and(|m| !m.sandbox && m.name.is_some())
            })
            .count()
    };
    let sandboxes = |s: &Metadata| {
        containers
            .iter()
            .filter(|f| s.container(f.runtime, &f.id).is_some_and(|m| m.sandbox))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline
        && named(&store) + sandboxes(&store) < containers.len()
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (n, sb) = (named(&store), sandboxes(&store));
    let _ = stop_tx.send(true);
    rt.shutdown_timeout(Duration::from_secs(1));
    let shown = containers.len() - sb;
    r.add(
        if n == shown { Level::Ok } else { Level::Note },
        "names",
        format!(
            "{n} of {shown} containers have names{}",
            if sb > 0 {
                format!(" ({sb} Kubernetes pod sandboxes are not reported as containers)")
            } else {
                String::new()
            }
        ),
    );
}
