//! A private containerd driven over the CRI the way the kubelet drives it: real pods and
//! containers, with Kubernetes' cgroup layout and names, and no Kubernetes.
//!
//! [`Containerd::start`] runs Debian's containerd 1.6 (it has the CRI plugin) with its own
//! config, socket, root, state and runc root in a directory of its own, so nothing touches the
//! system's containerd or Docker's, and imports the busybox-static images that
//! `.ci/containerd-up.sh` builds. Its methods are the kubelet's calls: `RunPodSandbox` with
//! the pod's metadata, labels and `cgroup_parent` (`/kubepods/<qos>/pod<uid>`, guaranteed pods
//! directly under `/kubepods`), `CreateContainer` with the image *id* from `ImageStatus` and the
//! kubelet's labels and annotations, `StartContainer`, and the stops and removals. Dropping it
//! removes every pod over the CRI, stops containerd, unmounts what it left, and removes the pod
//! cgroups (runc removes only the containers' own) and the bridge.
//!
//! What this machine taught (../shared/cri-lab/RECIPE.md has the details):
//! - `restrict_oom_score_adj = true`: without CAP_SYS_RESOURCE, runc cannot give the sandbox
//!   the kubelet's `oom_score_adj` of -998 and RunPodSandbox fails with "can't get final child's
//!   PID from pipe: EOF".
//! - Host-network pods get no hostname (runc refuses one without a private UTS namespace), as
//!   the kubelet does.
//! - Pod-network pods need a CNI network that gives `eth0` an address: a bridge of this
//!   instance's own, without an address on the host side and without routes, so pods reach
//!   each other but neither the host nor anything else (the CRI's `--network none`).
//!
//! The calls go through the messages of `cri_api.rs`, written apart from the exporter's.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tonic::Status;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

use super::cri_api::{self as api, path};

/// The script that installs containerd and builds the images.
pub const CONTAINERD_SETUP: &str = ".ci/containerd-up.sh";
/// The images `.ci/containerd-up.sh` builds, as containerd names them.
pub const BUSYBOX: &str = "docker.io/library/busybox:ce-test";
/// Same files as [`BUSYBOX`], another image id, and a registry with a port.
pub const TOOLS: &str = "registry.local:5000/ce/tools:v2";
pub const PAUSE: &str = "localhost/ce/pause:1";

/// A container's command: waits, and exits at once on SIGTERM (a plain `sleep` as pid 1
/// would ignore it and make every stop wait for the grace period).
pub const SLEEPER: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done";

const CALL_TIMEOUT: Duration = Duration::from_secs(60);
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Where `.ci/containerd-up.sh` put the image archives (`CE_CRI_DIR`, as for the script).
pub fn images_dir() -> PathBuf {
    std::env::var_os("CE_CRI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/container-exporter-ci/cri"))
}

/// An image archive and the name and id containerd gives it.
#[derive(Debug, Clone)]
pub struct TestImage {
    pub file: PathBuf,
    pub name: String,
    pub id: String,
}

/// The archives listed in `images.txt`; fails (never skips) naming the setup script.
pub fn test_images() -> Vec<TestImage> {
    let dir = images_dir();
    let list = dir.join("images.txt");
    let text = fs::read_to_string(&list).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run {CONTAINERD_SETUP} as root first",
            list.display()
        )
    });
    let images: Vec<TestImage> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(TestImage {
                file: dir.join(f.next()?),
                name: f.next()?.to_owned(),
                id: f.next()?.to_owned(),
            })
        })
        .collect();
    for want in [PAUSE, BUSYBOX, TOOLS] {
        let img = images.iter().find(|i| i.name == want);
        assert!(
            img.is_some_and(|i| i.file.is_file()),
            "image {want} missing from {}; run {CONTAINERD_SETUP} as root first",
            list.display()
        );
    }
    images
}

/// The cgroup hierarchies a container's cgroup shows up in: every v1 controller (and
/// `unified` on a hybrid host), or the single v2 root.
pub fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.procs").exists() {
        return vec![root.to_path_buf()];
    }
    let mut seen = Vec::new();
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(root) {
        for e in entries.flatten() {
            let p = e.path();
            if !p.join("cgroup.procs").exists() {
                continue;
            }
            let real = fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
            if !seen.contains(&real) {
                seen.push(real);
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The hierarchy discovery reads on this host: the memory controller on v1, the v2 root.
pub fn discovery_root() -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    if v1.join("cgroup.procs").exists() {
        v1.to_path_buf()
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

/// Whether the cgroup `rel` (relative to a hierarchy's mount) exists in every hierarchy.
pub fn cgroup_everywhere(rel: &str) -> bool {
    hierarchies().iter().all(|h| h.join(rel).is_dir())
}

/// Whether it exists in any.
pub fn cgroup_anywhere(rel: &str) -> bool {
    hierarchies().iter().any(|h| h.join(rel).is_dir())
}

/// A pod's quality-of-service class, which decides where the kubelet puts its cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    BestEffort,
    Burstable,
    Guaranteed,
}

impl Qos {
    /// The kubelet's cgroupfs naming: `/kubepods/<qos>/pod<uid>`, guaranteed pods directly
    /// under `/kubepods`.
    pub fn cgroup_parent(self, uid: &str) -> String {
        match self {
            Qos::BestEffort => format!("/kubepods/besteffort/pod{uid}"),
            Qos::Burstable => format!("/kubepods/burstable/pod{uid}"),
            Qos::Guaranteed => format!("/kubepods/pod{uid}"),
        }
    }

    /// What the kubelet asks for a container of this class (CPU shares, quota, memory
    /// limit, OOM score).
    fn resources(self) -> api::Resources {
        match self {
            Qos::BestEffort => api::Resources {
                cpu_shares: 2,
                oom_score_adj: 1000,
                ..Default::default()
            },
            Qos::Burstable => api::Resources {
                cpu_shares: 102,
                oom_score_adj: 999,
                ..Default::default()
            },
            Qos::Guaranteed => api::Resources {
                cpu_shares: 102,
                cpu_period: 100_000,
                cpu_quota: 10_000,
                memory_limit_in_bytes: 64 << 20,
                oom_score_adj: -997,
            },
        }
    }
}

/// The pod's network: the node's (`hostNetwork: true`) or its own, on this instance's bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    Host,
    Pod,
}

/// A pod sandbox as created.
#[derive(Debug, Clone)]
pub struct Pod {
    pub uid: String,
    pub name: String,
    pub namespace: String,
    pub qos: Qos,
    pub net: Net,
    pub sandbox_id: String,
    /// `/kubepods/<qos>/pod<uid>`.
    pub cgroup_parent: String,
    config: api::SandboxConfig,
}

impl Pod {
    /// The pod's cgroup relative to a hierarchy's mount (`kubepods/besteffort/pod<uid>`).
    pub fn cgroup_rel(&self) -> String {
        self.cgroup_parent.trim_start_matches('/').to_owned()
    }

    /// A container's (or the sandbox's) cgroup: `kubepods/…/pod<uid>/<id>`.
    pub fn cgroup_of(&self, id: &str) -> String {
        format!("{}/{id}", self.cgroup_rel())
    }
}

/// A kubelet-shaped pod uid (random, version 4 layout).
pub fn new_uid() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_usize(N.fetch_add(1, Ordering::SeqCst));
    let a = h.finish();
    h.write_u64(a);
    let b = h.finish();
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// A containerd of the test's own; see the module doc.
pub struct Containerd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    /// `unix://<socket>`.
    pub endpoint: String,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// The CNI bridge for pod-network pods (created by the bridge plugin on first use).
    pub bridge: String,
    pub subnet: String,
    cri: bool,
    /// containerd's `[debug] level`: `trace` logs every CRI call (see [`Containerd::cri_calls`]).
    log_level: &'static str,
    rt: Option<tokio::runtime::Runtime>,
    grpc: Mutex<Option<tonic::client::Grpc<Channel>>>,
    /// Pod cgroups to remove at the end (also those of failed RunPodSandbox calls).
    pods: Mutex<Vec<String>>,
}

/// Instances alive in this process: the shared `kubepods` class directories are removed by
/// the last one only, never while another test's runc may be creating a pod under them.
static LIVE: AtomicUsize = AtomicUsize::new(0);

impl Containerd {
    /// Starts a containerd with the CRI plugin and imports the test images.
    pub fn start() -> Containerd {
        Self::start_inner(true, "info")
    }

    /// One that logs every CRI call it serves (containerd's `trace` level), for
    /// [`cri_calls`](Self::cri_calls).
    pub fn start_tracing() -> Containerd {
        Self::start_inner(true, "trace")
    }

    /// One whose CRI plugin is disabled, as Docker's packaging of containerd has it: its
    /// socket answers gRPC but not `runtime.v1`.
    pub fn start_without_cri() -> Containerd {
        Self::start_inner(false, "info")
    }

    fn start_inner(cri: bool, log_level: &'static str) -> Containerd {
        let images = test_images();
        // Short: unix socket paths are limited to 108 bytes, and the shim's are derived
        // from this one.
        let dir = std::env::temp_dir().join(super::unique_name());
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("cni/net.d"))
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let socket = dir.join("c.sock");
        let (bridge, subnet) = pick_bridge();
        LIVE.fetch_add(1, Ordering::SeqCst);
        let mut cd = Containerd {
            endpoint: format!("unix://{}", socket.display()),
            config: dir.join("config.toml"),
            log: dir.join("containerd.log"),
            socket,
            child: None,
            bridge,
            subnet,
            cri,
            log_level,
            rt: Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("tokio runtime"),
            ),
            grpc: Mutex::new(None),
            pods: Mutex::new(Vec::new()),
            dir,
        };
        cd.write_config();
        cd.start_again();
        if cri {
            for img in &images {
                cd.ctr(&[
                    "-n",
                    "k8s.io",
                    "images",
                    "import",
                    &img.file.to_string_lossy(),
                ]);
            }
        }
        cd
    }

    fn write_config(&self) {
        let d = self.dir.display();
        let level = self.log_level;
        let disabled = if self.cri {
            ""
        } else {
            "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
        };
        let config = format!(
            r#"# A private containerd for one test (tests/common/cri.rs).
version = 2
root = "{d}/root"
state = "{d}/state"
oom_score = 0
{disabled}
[grpc]
  address = "{d}/c.sock"

[ttrpc]
  address = "{d}/c.sock.ttrpc"

[debug]
  address = ""
  level = "{level}"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{d}/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{PAUSE}"
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    disable_apparmor = true
    disable_tcp_service = true
    netns_mounts_under_state_dir = true
    enable_selinux = false
    systemd_cgroup = false
    # No CAP_SYS_RESOURCE here: clamp the sandbox's oom_score_adj to containerd's own.
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "{d}/cni/net.d"
      max_conf_num = 1
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          BinaryName = "/usr/sbin/runc"
          Root = "{d}/state/runc"
"#
        );
        fs::write(&self.config, config).expect("write containerd config");
        // The bridge has no address on the host and the pods no routes: they reach each other
        // and nothing else. containerd adds the loopback network itself.
        let cni = format!(
            r#"{{
  "cniVersion": "1.0.0",
  "name": "{bridge}",
  "plugins": [
    {{
      "type": "bridge",
      "bridge": "{bridge}",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": false,
      "ipam": {{
        "type": "host-local",
        "dataDir": "{d}/cni/ipam",
        "ranges": [[{{ "subnet": "{subnet}" }}]]
      }}
    }}
  ]
}}
"#,
            bridge = self.bridge,
            subnet = self.subnet
        );
        fs::write(self.dir.join("cni/net.d/10-ce-bridge.conflist"), cni).expect("write CNI config");
    }

    /// Starts containerd (again, after [`stop`](Self::stop)) and waits until it answers.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "containerd already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("containerd log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start containerd: {e}; run {CONTAINERD_SETUP} as root first")
            });
        self.child = Some(child);
        let start = Instant::now();
        loop {
            let up = if self.cri {
                self.version().is_ok()
            } else {
                self.ctr_status(&["version"])
            };
            if up {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                panic!("containerd exited with {status}:\n{}", self.log_tail());
            }
            assert!(
                start.elapsed() < START_TIMEOUT,
                "containerd did not answer within {START_TIMEOUT:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops containerd (SIGTERM, as a restart does). The pods keep running in their shims.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            super::terminate(
                &mut child,
                Duration::from_secs(10),
                Duration::from_millis(20),
            );
        }
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    pub fn log_tail(&self) -> String {
        super::log_tail(&self.log, 30)
    }

    /// The length of containerd's log so far: a mark for [`cri_calls`](Self::cri_calls).
    pub fn log_len(&self) -> u64 {
        fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// The CRI calls containerd served since `mark` (a [`log_len`](Self::log_len)), as it
    /// logged them at `trace` ([`start_tracing`](Self::start_tracing)): each call's method and
    /// the rest of its line's message (`ContainerStatus`, `for "<id>"`). containerd 1.6 writes
    /// `msg="<Method> for …"` or `msg="<Method> with …"` on entering each method of its CRI
    /// service (and a second line with ` returns ` on leaving it, which is left out).
    pub fn cri_calls(&self, mark: u64) -> Vec<(String, String)> {
        assert_eq!(self.log_level, "trace", "cri_calls needs start_tracing");
        let log = fs::read(&self.log).expect("containerd log");
        let from = (mark as usize).min(log.len());
        String::from_utf8_lossy(&log[from..])
            .lines()
            .filter(|l| l.contains("level=trace"))
            .filter_map(|l| {
                let msg = l.split_once("msg=\"")?.1;
                let (method, rest) = msg.split_once(' ')?;
                let cri = method.chars().next()?.is_ascii_uppercase()
                    && method.chars().all(|c| c.is_ascii_alphanumeric())
                    && (rest.starts_with("for ") || rest.starts_with("with "))
                    // The line it writes on returning (`… for "<id>" returns status …`).
                    && !rest.contains(" returns ");
                cri.then(|| (method.to_owned(), rest.trim_end_matches('"').to_owned()))
            })
            .collect()
    }

    /// `ctr -a <socket> args…`, which must succeed.
    pub fn ctr(&self, args: &[&str]) -> String {
        let out = Command::new("ctr")
            .arg("-a")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run ctr: {e}; run {CONTAINERD_SETUP} first"));
        assert!(
            out.status.success(),
            "ctr {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ctr_status(&self, args: &[&str]) -> bool {
        Command::new("ctr")
            .arg("-a")
            .arg(&self.socket)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    // -----------------------------------------------------------------------------------------
    // CRI calls
    // -----------------------------------------------------------------------------------------

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("runtime")
    }

    fn grpc(&self) -> tonic::client::Grpc<Channel> {
        let mut g = self.grpc.lock().unwrap_or_else(|e| e.into_inner());
        g.get_or_insert_with(|| {
            let _enter = self.rt().enter();
            let channel = Endpoint::from_shared(self.endpoint.clone())
                .expect("endpoint")
                .connect_timeout(Duration::from_secs(2))
                .connect_lazy();
            tonic::client::Grpc::new(channel)
        })
        .clone()
    }

    /// Runs `fut` on this harness's runtime from any thread (also a test's tokio thread).
    fn block_on<T: Send>(&self, fut: impl std::future::Future<Output = T> + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| self.rt().block_on(fut))
                .join()
                .expect("CRI call thread panicked")
        })
    }

    /// One unary call.
    pub fn call<Req, Resp>(&self, path: &'static str, req: Req) -> Result<Resp, Status>
    where
        Req: prost::Message + Send + 'static,
        Resp: prost::Message + Default + Send + 'static,
    {
        let mut grpc = self.grpc();
        self.block_on(async move {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let mut r = tonic::Request::new(req);
            r.set_timeout(CALL_TIMEOUT);
            let call = grpc.unary(
                r,
                PathAndQuery::from_static(path),
                ProstCodec::<Req, Resp>::default(),
            );
            match tokio::time::timeout(CALL_TIMEOUT, call).await {
                Ok(r) => r.map(tonic::Response::into_inner),
                Err(_) => Err(Status::deadline_exceeded("harness call timed out")),
            }
        })
    }

    pub fn version(&self) -> Result<api::VersionResp, Status> {
        self.call(
            path::VERSION,
            api::VersionReq {
                version: "v1".into(),
            },
        )
    }

    /// What `GetContainerEvents` answers: `Ok` when the runtime keeps the stream open (it
    /// has events), the error otherwise (UNIMPLEMENTED where it has none).
    pub fn events_answer(&self) -> Result<(), Status> {
        let mut grpc = self.grpc();
        self.block_on(async move {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let call = grpc.server_streaming(
                tonic::Request::new(api::Empty {}),
                PathAndQuery::from_static(path::GET_CONTAINER_EVENTS),
                ProstCodec::<api::Empty, api::Empty>::default(),
            );
            // A runtime with events sends headers only with the first event.
            match tokio::time::timeout(Duration::from_secs(2), call).await {
                Err(_) => Ok(()),
                Ok(r) => r.map(|_| ()),
            }
        })
    }

    /// `ImageStatus`: the image's id, which the kubelet passes to CreateContainer.
    pub fn image_id(&self, image: &str) -> String {
        let r: api::ImageStatusResp = self
            .call(
                path::IMAGE_STATUS,
                api::ImageStatusReq {
                    image: Some(api::Spec {
                        image: image.into(),
                    }),
                },
            )
            .unwrap_or_else(|s| panic!("ImageStatus {image}: {s:?}"));
        let img = r
            .image
            .unwrap_or_else(|| panic!("image {image} is not in this containerd"));
        assert!(img.id.starts_with("sha256:"), "{img:?}");
        img.id
    }

    /// `RunPodSandbox` as the kubelet sends it for a pod of this name, namespace, class and
    /// network, with these pod labels.
    pub fn run_pod(
        &self,
        name: &str,
        namespace: &str,
        qos: Qos,
        net: Net,
        labels: &[(&str, &str)],
    ) -> Pod {
        self.run_pod_as(&new_uid(), name, namespace, qos, net, labels)
    }

    /// The same with a uid of the test's (to watch the pod's cgroup before the call returns).
    pub fn run_pod_as(
        &self,
        uid: &str,
        name: &str,
        namespace: &str,
        qos: Qos,
        net: Net,
        labels: &[(&str, &str)],
    ) -> Pod {
        let uid = uid.to_owned();
        let cgroup_parent = qos.cgroup_parent(&uid);
        let log_directory = self
            .dir
            .join("pods")
            .join(format!("{namespace}_{name}_{uid}"));
        fs::create_dir_all(&log_directory).expect("pod log dir");
        // kubelet newPodLabels: the pod's labels plus its identity.
        let mut pod_labels: HashMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pod_labels.insert("io.kubernetes.pod.name".into(), name.into());
        pod_labels.insert("io.kubernetes.pod.namespace".into(), namespace.into());
        pod_labels.insert("io.kubernetes.pod.uid".into(), uid.clone());
        let config = api::SandboxConfig {
            metadata: Some(api::SandboxMeta {
                name: name.into(),
                uid: uid.clone(),
                namespace: namespace.into(),
                attempt: 0,
            }),
            // The kubelet sets none for host-network pods.
            hostname: if net == Net::Host {
                String::new()
            } else {
                name.into()
            },
            log_directory: log_directory.to_string_lossy().into_owned(),
            labels: pod_labels,
            annotations: HashMap::from([
                ("kubernetes.io/config.source".into(), "api".into()),
                (
                    "kubernetes.io/config.seen".into(),
                    "2024-01-01T00:00:00.000000000Z".into(),
                ),
            ]),
            linux: Some(api::SandboxLinux {
                cgroup_parent: cgroup_parent.clone(),
                security_context: Some(api::SandboxSecurity {
                    namespace_options: Some(namespaces(net)),
                }),
            }),
        };
        // Before the call: a failed RunPodSandbox leaves its pod cgroup too.
        self.pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cgroup_parent.clone());
        let r: api::SandboxIdResp = self
            .call(
                path::RUN_POD_SANDBOX,
                api::RunSandboxReq {
                    config: Some(config.clone()),
                    runtime_handler: String::new(),
                },
            )
            .unwrap_or_else(|s| {
                panic!(
                    "RunPodSandbox {namespace}/{name}: {s:?}\n{}",
                    self.log_tail()
                )
            });
        Pod {
            uid,
            name: name.into(),
            namespace: namespace.into(),
            qos,
            net,
            sandbox_id: r.pod_sandbox_id,
            cgroup_parent,
            config,
        }
    }

    /// `CreateContainer` as the kubelet sends it: the image by id, the kubelet's labels and
    /// annotations, `attempt` as the restart count. Runs [`SLEEPER`].
    pub fn create_container(&self, pod: &Pod, name: &str, image: &str, attempt: u32) -> String {
        self.create_container_cmd(pod, name, image, attempt, SLEEPER)
    }

    /// The same with a shell script of the test's.
    pub fn create_container_cmd(
        &self,
        pod: &Pod,
        name: &str,
        image: &str,
        attempt: u32,
        script: &str,
    ) -> String {
        self.create_container_adj(pod, name, image, attempt, script, None)
    }

    /// The same with another `oom_score_adj` than the pod's class asks for (containerd, with
    /// `restrict_oom_score_adj`, raises one below its own to its own).
    pub fn create_container_adj(
        &self,
        pod: &Pod,
        name: &str,
        image: &str,
        attempt: u32,
        script: &str,
        oom_score_adj: Option<i64>,
    ) -> String {
        let image_id = self.image_id(image);
        let logdir = PathBuf::from(&pod.config.log_directory).join(name);
        fs::create_dir_all(&logdir).expect("container log dir");
        let labels = HashMap::from([
            ("io.kubernetes.pod.name".to_owned(), pod.name.clone()),
            (
                "io.kubernetes.pod.namespace".to_owned(),
                pod.namespace.clone(),
            ),
            ("io.kubernetes.pod.uid".to_owned(), pod.uid.clone()),
            ("io.kubernetes.container.name".to_owned(), name.to_owned()),
        ]);
        let annotations = HashMap::from([
            (
                "io.kubernetes.container.hash".to_owned(),
                "5e1f2a3b".to_owned(),
            ),
            (
                "io.kubernetes.container.restartCount".to_owned(),
                attempt.to_string(),
            ),
            (
                "io.kubernetes.container.terminationMessagePath".to_owned(),
                "/dev/termination-log".to_owned(),
            ),
            (
                "io.kubernetes.container.terminationMessagePolicy".to_owned(),
                "File".to_owned(),
            ),
            (
                "io.kubernetes.pod.terminationGracePeriod".to_owned(),
                "30".to_owned(),
            ),
        ]);
        let config = api::CtrConfig {
            metadata: Some(api::CtrMeta {
                name: name.into(),
                attempt,
            }),
            image: Some(api::Spec { image: image_id }),
            command: vec!["/bin/sh".into(), "-c".into()],
            args: vec![script.into()],
            working_dir: "/".into(),
            labels,
            annotations,
            log_path: format!("{name}/{attempt}.log"),
            linux: Some(api::CtrLinux {
                resources: Some(api::Resources {
                    oom_score_adj: oom_score_adj.unwrap_or(pod.qos.resources().oom_score_adj),
                    ..pod.qos.resources()
                }),
                security_context: Some(api::CtrSecurity {
                    namespace_options: Some(namespaces(pod.net)),
                }),
            }),
        };
        let r: api::CtrId = self
            .call(
                path::CREATE_CONTAINER,
                api::CreateReq {
                    pod_sandbox_id: pod.sandbox_id.clone(),
                    config: Some(config),
                    sandbox_config: Some(pod.config.clone()),
                },
            )
            .unwrap_or_else(|s| {
                panic!(
                    "CreateContainer {}/{name}: {s:?}\n{}",
                    pod.name,
                    self.log_tail()
                )
            });
        r.container_id
    }

    pub fn start_container(&self, id: &str) {
        let _: api::Empty = self
            .call(
                path::START_CONTAINER,
                api::CtrId {
                    container_id: id.into(),
                },
            )
            .unwrap_or_else(|s| panic!("StartContainer {id}: {s:?}\n{}", self.log_tail()));
    }

    /// Create and start; returns the id.
    pub fn run_container(&self, pod: &Pod, name: &str, image: &str, attempt: u32) -> String {
        let id = self.create_container(pod, name, image, attempt);
        self.start_container(&id);
        id
    }

    pub fn stop_container(&self, id: &str) {
        let _: api::Empty = self
            .call(
                path::STOP_CONTAINER,
                api::StopReq {
                    container_id: id.into(),
                    timeout: 5,
                },
            )
            .unwrap_or_else(|s| panic!("StopContainer {id}: {s:?}"));
    }

    pub fn remove_container(&self, id: &str) {
        let _: api::Empty = self
            .call(
                path::REMOVE_CONTAINER,
                api::CtrId {
                    container_id: id.into(),
                },
            )
            .unwrap_or_else(|s| panic!("RemoveContainer {id}: {s:?}"));
    }

    /// `StopPodSandbox` then `RemovePodSandbox`, as the kubelet deletes a pod.
    pub fn remove_pod(&self, pod: &Pod) {
        self.remove_sandbox(&pod.sandbox_id)
            .unwrap_or_else(|s| panic!("removing pod {}: {s:?}", pod.name));
    }

    fn remove_sandbox(&self, id: &str) -> Result<(), Status> {
        let req = api::SandboxIdReq {
            pod_sandbox_id: id.into(),
        };
        let _: api::Empty = self.call(path::STOP_POD_SANDBOX, req.clone())?;
        let _: api::Empty = self.call(path::REMOVE_POD_SANDBOX, req)?;
        Ok(())
    }

    pub fn list_sandboxes(&self) -> Vec<api::SandboxItem> {
        let r: api::ListSandboxResp = self
            .call(path::LIST_POD_SANDBOX, api::Empty {})
            .unwrap_or_else(|s| panic!("ListPodSandbox: {s:?}"));
        r.items
    }

    pub fn list_containers(&self) -> Vec<api::CtrItem> {
        let r: api::ListCtrResp = self
            .call(path::LIST_CONTAINERS, api::Empty {})
            .unwrap_or_else(|s| panic!("ListContainers: {s:?}"));
        r.containers
    }

    /// A container's state and (when running) the pid of its first process, from
    /// `ContainerStatus` (verbose).
    pub fn container_status(&self, id: &str) -> (i32, Option<u32>) {
        let r: api::CtrStatusResp = self
            .call(
                path::CONTAINER_STATUS,
                api::CtrStatusReq {
                    container_id: id.into(),
                    verbose: true,
                },
            )
            .unwrap_or_else(|s| panic!("ContainerStatus {id}: {s:?}"));
        (
            r.status.map_or(-1, |s| s.state),
            info_pid(&r.info).filter(|&p| p > 0),
        )
    }

    /// What the runtime says about a container's end: (exit code, reason), once it finished.
    pub fn exit_status(&self, id: &str) -> Option<(i32, String)> {
        let r: api::CtrStatusResp = self
            .call(
                path::CONTAINER_STATUS,
                api::CtrStatusReq {
                    container_id: id.into(),
                    verbose: false,
                },
            )
            .unwrap_or_else(|s| panic!("ContainerStatus {id}: {s:?}"));
        let s = r.status?;
        (s.finished_at > 0).then_some((s.exit_code, s.reason))
    }

    /// The sandbox's pause process and (for a pod-network pod) its address.
    pub fn sandbox_status(&self, pod: &Pod) -> (Option<u32>, String) {
        let r: api::SandboxStatusResp = self
            .call(
                path::POD_SANDBOX_STATUS,
                api::SandboxStatusReq {
                    pod_sandbox_id: pod.sandbox_id.clone(),
                    verbose: true,
                },
            )
            .unwrap_or_else(|s| panic!("PodSandboxStatus {}: {s:?}", pod.name));
        let ip = r
            .status
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .unwrap_or_default();
        (info_pid(&r.info).filter(|&p| p > 0), ip)
    }

    // -----------------------------------------------------------------------------------------
    // Cleanup
    // -----------------------------------------------------------------------------------------

    /// Removes every pod and container over the CRI.
    fn remove_everything(&self) {
        if let Ok(r) = self.call::<_, api::ListSandboxResp>(path::LIST_POD_SANDBOX, api::Empty {}) {
            for s in r.items {
                let _ = self.remove_sandbox(&s.id);
            }
        }
        if let Ok(r) = self.call::<_, api::ListCtrResp>(path::LIST_CONTAINERS, api::Empty {}) {
            for c in r.containers {
                let _: Result<api::Empty, _> =
                    self.call(path::REMOVE_CONTAINER, api::CtrId { container_id: c.id });
            }
        }
    }
}

fn namespaces(net: Net) -> api::NamespaceOpts {
    api::NamespaceOpts {
        network: if net == Net::Host {
            api::NS_NODE
        } else {
            api::NS_POD
        },
        pid: api::NS_CONTAINER,
        ipc: api::NS_POD,
    }
}

/// `"pid"` from a verbose status's `info` JSON.
fn info_pid(info: &HashMap<String, String>) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    v.get("pid")?.as_u64().and_then(|p| u32::try_from(p).ok())
}

/// A bridge name and subnet no other instance (of this or another test binary) uses.
fn pick_bridge() -> (String, String) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = std::process::id() as usize * 7 + N.fetch_add(1, Ordering::SeqCst) * 13;
    for i in 0..250 {
        let idx = (base + i) % 250;
        let name = format!("cecri{idx}");
        if !Path::new("/sys/class/net").join(&name).exists() {
            return (name, format!("10.213.{idx}.0/24"));
        }
    }
    panic!("no free cecri<N> bridge name");
}

/// Removes a cgroup and everything below it, deepest first, in every hierarchy.
pub fn remove_cgroup_tree(rel: &str) {
    for h in hierarchies() {
        let top = h.join(rel);
        if !top.is_dir() {
            continue;
        }
        let mut dirs = vec![top.clone()];
        let mut i = 0;
        while i < dirs.len() {
            if let Ok(entries) = fs::read_dir(&dirs[i]) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        dirs.push(e.path());
                    }
                }
            }
            i += 1;
        }
        for d in dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // The pods' processes live in their shims: remove them through containerd, started
        // again if a test stopped it.
        if self.cri {
            if self.child.is_none() {
                let restarted =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.start_again()));
                if restarted.is_err() {
                    self.child = None;
                }
            }
            if self.child.is_some() {
                self.remove_everything();
            }
        }
        self.stop();
        // Mounts it left (rootfs overlays, network namespaces), deepest first.
        if let Ok(info) = fs::read_to_string("/proc/self/mountinfo") {
            let mut mounts: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split_whitespace().nth(4))
                .filter(|m| Path::new(m).starts_with(&self.dir))
                .collect();
            mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in mounts {
                let _ = Command::new("umount").arg("-l").arg(m).status();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
        // runc removes containers' cgroups; the pods' are the kubelet's to remove.
        let pods = std::mem::take(&mut *self.pods.lock().unwrap_or_else(|e| e.into_inner()));
        for parent in &pods {
            remove_cgroup_tree(parent.trim_start_matches('/'));
        }
        if LIVE.fetch_sub(1, Ordering::SeqCst) == 1 {
            // The class directories are shared with other tests: removed only once empty.
            for rel in ["kubepods/besteffort", "kubepods/burstable", "kubepods"] {
                for h in hierarchies() {
                    let _ = fs::remove_dir(h.join(rel));
                }
            }
        }
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
            let _ = Command::new("ip")
                .args(["link", "del", &self.bridge])
                .status();
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
