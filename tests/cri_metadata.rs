//! CRI metadata (`src/metadata/sources/cri/`) against a real containerd driven the way the kubelet
//! drives it (tests/common/cri.rs: a private Debian containerd 1.6 per test, pods with
//! Kubernetes' cgroup parents, containers created with the image id).
//!
//! - Two pods of two containers each: every container, sandbox and pod is in the store with
//!   the names, namespace, uid, image name, tag and id, and restart count the kubelet gave it;
//!   one pod is found by the first lists, the other through discovery's asks. A container
//!   recreated as attempt 1 gets its new id and restart count. The figures that matter are
//!   printed: how long until a name is there, and how many CRI calls a new pod and a new
//!   container cost; while nothing changes, discovery asking again costs no call at all.
//!   A sandbox is never in the store without its image (read without pause from another
//!   thread): its first series already carry the `image` label.
//! - A removed pod leaves the store after the removal delay, not before.
//! - containerd stopped and started again under the follower: the lost connection is noticed,
//!   the follower reconnects, and names are right again (also for a new container).
//! - Absent sockets, stale sockets and a containerd without its CRI plugin: never connected,
//!   nothing panics, and `probe` says why; against the real one it gives the runtime's name
//!   and version.
//! - The harness itself, and what the daemon tests need to know: where the cgroups of pods,
//!   sandboxes and containers are, and whether the lists show them before their cgroups exist.
//!
//! "Discovery" here is the exporter's own cgroup walk (`discovery::walk`) run every 20 ms,
//! asking the store for every id of the test's pods it does not know, on every pass: the worst
//! case for the follower, which must still not make a call per ask.
//!
//! These tests need root and `.ci/containerd-up.sh`; without them they fail (they do not skip).

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use container_exporter::discovery;
use container_exporter::metadata::sources::cri::{self, CriConfig, CriError};
use container_exporter::metadata::{MetadataStore, SourceStats};
use tokio::sync::oneshot;

use common::cri::{
    BUSYBOX, Containerd, Net, PAUSE, Pod, Qos, TOOLS, cgroup_anywhere, cgroup_everywhere,
    discovery_root, new_uid, test_images,
};
use common::cri_api::{CONTAINER_CREATED, CONTAINER_RUNNING};

// ---------------------------------------------------------------------------------------------
// The follower under test, and discovery
// ---------------------------------------------------------------------------------------------

/// `cri::run` on a runtime of its own, with the discovery stand-in.
struct Follower {
    rt: Option<tokio::runtime::Runtime>,
    store: MetadataStore,
    stats: Arc<SourceStats>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Pod uids whose cgroups discovery reports (the test's own, not other tests').
    pods: Arc<Mutex<HashSet<String>>>,
    /// When discovery first saw each id.
    seen: Arc<Mutex<HashMap<String, Instant>>>,
    /// Passes discovery has made over the whole tree.
    passes: Arc<AtomicUsize>,
    discovering: Arc<AtomicBool>,
    discovery: Option<thread::JoinHandle<()>>,
}

impl Follower {
    fn start(cfg: CriConfig) -> Follower {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let store = MetadataStore::new();
        let stats = Arc::new(SourceStats::default());
        let (tx, rx) = oneshot::channel();
        let task = rt.spawn(cri::run(cfg, store.clone(), stats.clone(), async {
            let _ = rx.await;
        }));
        let pods: Arc<Mutex<HashSet<String>>> = Arc::default();
        let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let discovering = Arc::new(AtomicBool::new(true));
        let passes = Arc::new(AtomicUsize::new(0));
        let discovery = {
            let (store, pods, seen, on, passes) = (
                store.clone(),
                pods.clone(),
                seen.clone(),
                discovering.clone(),
                passes.clone(),
            );
            thread::spawn(move || {
                let root = discovery_root();
                while on.load(Ordering::Relaxed) {
                    let ours = pods.lock().unwrap().clone();
                    for f in discovery::walk(&root) {
                        let Some(uid) = f.pod_uid.filter(|u| ours.contains(u)) else {
                            continue;
                        };
                        let now = Instant::now();
                        let mut seen = seen.lock().unwrap();
                        seen.entry(f.id.clone()).or_insert(now);
                        seen.entry(uid.clone()).or_insert(now);
                        if store.get(&f.id).is_none() {
                            store.want(&f.id);
                        }
                        if store.get_pod(&uid).is_none() {
                            store.want(&uid);
                        }
                    }
                    passes.fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Follower {
            rt: Some(rt),
            store,
            stats,
            stop: Some(tx),
            task: Some(task),
            pods,
            seen,
            passes,
            discovering,
            discovery: Some(discovery),
        }
    }

    /// Waits until discovery has made `n` more passes over the tree (each one asking for
    /// whatever of the test's pods the store does not know).
    fn discovery_passes(&self, n: usize) {
        let from = self.passes.load(Ordering::SeqCst);
        wait_for(
            &format!("{n} passes of discovery"),
            Duration::from_secs(60),
            || self.passes.load(Ordering::SeqCst) >= from + n,
        );
    }

    fn watch(&self, pod: &Pod) {
        self.pods.lock().unwrap().insert(pod.uid.clone());
    }

    fn seen_at(&self, id: &str) -> Option<Instant> {
        self.seen.lock().unwrap().get(id).copied()
    }

    fn calls(&self) -> u64 {
        self.stats.calls.load(Ordering::Relaxed)
    }
    fn lookups(&self) -> u64 {
        self.stats.lookups.load(Ordering::Relaxed)
    }
    fn api_errors(&self) -> u64 {
        self.stats.api_errors.load(Ordering::Relaxed)
    }
    fn reconnects(&self) -> u64 {
        self.stats.reconnects.load(Ordering::Relaxed)
    }
    fn connected(&self) -> bool {
        self.stats.connected.load(Ordering::Relaxed)
    }

    /// Shutdown must end `run`, whatever state it is in.
    fn stop(mut self) {
        self.discovering.store(false, Ordering::Relaxed);
        if let Some(d) = self.discovery.take() {
            d.join().unwrap();
        }
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        let rt = self.rt.take().unwrap();
        rt.block_on(async {
            // A promised bound: shutdown ends `run` (it waits on nothing). 10 s is a wide
            // margin for a loaded machine, and ends a hang.
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("run did not return within 10 s of shutdown")
                .expect("run panicked");
        });
        assert!(!self.connected(), "still marked connected after shutdown");
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.discovering.store(false, Ordering::Relaxed);
        if let Some(t) = &self.task {
            t.abort();
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns how long it took.
fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn cfg(cd: &Containerd, removal_delay: Duration, resync_interval: Duration) -> CriConfig {
    CriConfig {
        endpoint: Some(cd.endpoint.clone()),
        label_globs: vec!["io.kubernetes.container.*".into()],
        pod_label_globs: vec!["app".into(), "tier".into()],
        removal_delay,
        resync_interval,
        ..CriConfig::default()
    }
}

fn image_id_of(name: &str) -> String {
    test_images()
        .into_iter()
        .find(|i| i.name == name)
        .unwrap()
        .id
}

/// Asserts what the store holds for a container the harness created.
fn check_container(
    f: &Follower,
    id: &str,
    pod: &Pod,
    name: &str,
    image: &str,
    attempt: u32,
    image_id: &str,
) {
    let m = f
        .store
        .get(id)
        .unwrap_or_else(|| panic!("{name} ({id}) not in the store"));
    let (image_name, tag) = image.rsplit_once(':').unwrap();
    assert_eq!(m.name.as_deref(), Some(name), "{m:?}");
    assert_eq!(m.k8s_container_name.as_deref(), Some(name), "{m:?}");
    assert_eq!(m.k8s_pod_name.as_deref(), Some(pod.name.as_str()), "{m:?}");
    assert_eq!(
        m.k8s_namespace_name.as_deref(),
        Some(pod.namespace.as_str()),
        "{m:?}"
    );
    assert_eq!(m.k8s_pod_uid.as_deref(), Some(pod.uid.as_str()), "{m:?}");
    assert_eq!(m.k8s_container_restart_count, Some(attempt), "{m:?}");
    assert_eq!(m.image_name.as_deref(), Some(image_name), "{m:?}");
    assert_eq!(m.image_tags, [tag], "{m:?}");
    assert_eq!(m.image_id.as_deref(), Some(image_id), "{m:?}");
    assert_eq!(m.runtime_name.as_deref(), Some("containerd"), "{m:?}");
    assert!(!m.sandbox, "{m:?}");
    // The allow-list keeps the container-name label only.
    assert_eq!(
        m.labels,
        [("io.kubernetes.container.name".to_owned(), name.to_owned())],
        "{m:?}"
    );
}

/// Asserts the sandbox's entry and the pod's.
fn check_pod(f: &Follower, pod: &Pod, labels: &[(&str, &str)]) {
    let s = f
        .store
        .get(&pod.sandbox_id)
        .unwrap_or_else(|| panic!("sandbox of {} not in the store", pod.name));
    assert!(s.sandbox, "{s:?}");
    assert_eq!(s.name, None, "{s:?}");
    assert_eq!(s.k8s_pod_name.as_deref(), Some(pod.name.as_str()), "{s:?}");
    assert_eq!(
        s.k8s_namespace_name.as_deref(),
        Some(pod.namespace.as_str()),
        "{s:?}"
    );
    assert_eq!(s.k8s_pod_uid.as_deref(), Some(pod.uid.as_str()), "{s:?}");
    assert_eq!(s.runtime_name.as_deref(), Some("containerd"), "{s:?}");
    let p = f
        .store
        .get_pod(&pod.uid)
        .unwrap_or_else(|| panic!("pod {} not in the store", pod.name));
    assert_eq!(p.name.as_deref(), Some(pod.name.as_str()), "{p:?}");
    assert_eq!(
        p.namespace.as_deref(),
        Some(pod.namespace.as_str()),
        "{p:?}"
    );
    let want: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(p.labels, want, "pod labels on the allow-list [app, tier]");
}

/// Reads the store's entries of the sandboxes it is given, without pause, from a thread of its
/// own, and keeps every read of one without its image: what a collector would have published
/// then (a pod's network series without the `image` label, then a new series when it came).
struct SandboxWatch {
    store: MetadataStore,
    ids: Arc<Mutex<Vec<String>>>,
    bare: Arc<Mutex<Vec<String>>>,
    reads: Arc<AtomicUsize>,
    on: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl SandboxWatch {
    fn start(store: &MetadataStore) -> SandboxWatch {
        let mut w = SandboxWatch {
            store: store.clone(),
            ids: Arc::default(),
            bare: Arc::default(),
            reads: Arc::default(),
            on: Arc::new(AtomicBool::new(true)),
            thread: None,
        };
        let (store, ids, bare, reads, on) = (
            w.store.clone(),
            w.ids.clone(),
            w.bare.clone(),
            w.reads.clone(),
            w.on.clone(),
        );
        w.thread = Some(thread::spawn(move || {
            while on.load(Ordering::Relaxed) {
                let watched = ids.lock().unwrap().clone();
                for id in &watched {
                    if let Some(m) = store.get(id) {
                        reads.fetch_add(1, Ordering::Relaxed);
                        if m.image_name.is_none() {
                            bare.lock().unwrap().push(format!("{id}: {m:?}"));
                        }
                    }
                }
                thread::yield_now();
            }
        }));
        w
    }

    fn watch(&self, pod: &Pod) {
        self.ids.lock().unwrap().push(pod.sandbox_id.clone());
    }

    /// Stops, and asserts that no read found a sandbox without its image.
    fn check(mut self) {
        self.on.store(false, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        let bare = self.bare.lock().unwrap();
        let reads = self.reads.load(Ordering::Relaxed);
        eprintln!(
            "{reads} reads of the sandboxes' entries, {} without image",
            bare.len()
        );
        assert!(reads > 0, "the watch never read a sandbox's entry");
        assert!(
            bare.is_empty(),
            "{} of {reads} reads found a sandbox stored without its image, first: {}",
            bare.len(),
            bare[0]
        );
    }
}

fn named(f: &Follower, id: &str) -> bool {
    f.store.get(id).is_some_and(|m| m.name.is_some())
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

#[test]
fn pods_and_containers_are_named_as_the_kubelet_created_them() {
    let cd = Containerd::start();
    // What this runtime answers to GetContainerEvents decides how the follower learns of new
    // containers; Debian's containerd 1.6 has no events.
    let events = cd.events_answer();
    eprintln!("GetContainerEvents on this containerd: {events:?}");
    let busybox_id = cd.image_id(BUSYBOX);
    let tools_id = cd.image_id(TOOLS);
    assert_eq!(
        busybox_id,
        image_id_of(BUSYBOX),
        "ImageStatus vs images.txt"
    );
    assert_eq!(tools_id, image_id_of(TOOLS));
    assert_ne!(busybox_id, tools_id);

    // Pod A exists before the follower starts: found by its first lists.
    let a_labels = [("app", "web"), ("secret", "x"), ("tier", "front")];
    let a = cd.run_pod("web-0", "ce-prod", Qos::BestEffort, Net::Host, &a_labels);
    let a_app = cd.run_container(&a, "app", BUSYBOX, 0);
    let a_side = cd.run_container(&a, "sidecar", TOOLS, 0);

    let f = Follower::start(cfg(&cd, Duration::from_secs(3), Duration::from_secs(600)));
    // A sandbox is stored with its image, from its first entry on, whether the first lists
    // find it (pod A) or discovery's asks do (pod B).
    let watch = SandboxWatch::start(&f.store);
    watch.watch(&a);
    f.watch(&a);
    let took = wait_for("pod A's names", Duration::from_secs(10), || {
        f.connected()
            && named(&f, &a_app)
            && named(&f, &a_side)
            && f.store.get(&a.sandbox_id).is_some()
            && f.store.get_pod(&a.uid).is_some()
            // The sandbox's image, from its verbose status.
            && f.store
                .get(&a.sandbox_id)
                .is_some_and(|m| m.image_name.is_some())
    });
    eprintln!("pod A named {took:?} after the follower started");
    check_container(&f, &a_app, &a, "app", BUSYBOX, 0, &busybox_id);
    check_container(&f, &a_side, &a, "sidecar", TOOLS, 0, &tools_id);
    check_pod(&f, &a, &[("app", "web"), ("tier", "front")]);
    let sandbox = f.store.get(&a.sandbox_id).unwrap();
    assert_eq!(
        (sandbox.image_name.as_deref(), sandbox.image_tags.as_slice()),
        (Some("localhost/ce/pause"), &["1".to_string()][..]),
        "the pause image, as the containerd config names it ({PAUSE})"
    );
    if events.is_err() {
        // Version, ListPodSandbox, ListContainers, ListImages, GetContainerEvents, and one
        // verbose PodSandboxStatus for the sandbox's image.
        assert_eq!(f.calls(), 6, "calls at connect");
    }
    assert_eq!(
        f.lookups(),
        0,
        "no lookups yet: everything came with the first lists"
    );

    // Pod B comes after: its sandbox, pod and containers are found by discovery's asks.
    let calls0 = f.calls();
    let b = cd.run_pod(
        "job-1",
        "ce-batch",
        Qos::Guaranteed,
        Net::Host,
        &[("app", "job")],
    );
    watch.watch(&b);
    f.watch(&b);
    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    for (name, image) in [("worker", BUSYBOX), ("helper", TOOLS)] {
        let id = cd.create_container(&b, name, image, 0);
        let created = Instant::now();
        cd.start_container(&id);
        wait_for(name, Duration::from_secs(10), || named(&f, &id));
        let since_cgroup = f.seen_at(&id).map(|t| t.elapsed());
        latencies.push((name, created.elapsed(), since_cgroup));
        ids.push(id);
    }
    wait_for("pod B's sandbox and pod", Duration::from_secs(10), || {
        f.store.get(&b.sandbox_id).is_some() && f.store.get_pod(&b.uid).is_some()
    });
    let new_pod_calls = f.calls() - calls0;
    watch.check();
    check_container(&f, &ids[0], &b, "worker", BUSYBOX, 0, &busybox_id);
    check_container(&f, &ids[1], &b, "helper", TOOLS, 0, &tools_id);
    check_pod(&f, &b, &[("app", "job")]);
    for (name, since_create, since_cgroup) in &latencies {
        eprintln!(
            "{name}: named {since_create:?} after CreateContainer returned ({since_cgroup:?} \
             after discovery saw its cgroup)"
        );
    }
    eprintln!("a new pod with 2 containers cost {new_pod_calls} CRI calls");

    // Nothing new: discovery keeps walking (and would ask for anything unknown), no calls.
    let idle0 = f.calls();
    f.discovery_passes(50);
    assert_eq!(
        f.calls(),
        idle0,
        "calls over 50 passes of discovery while nothing changed"
    );

    // One more container in a known pod.
    let calls1 = f.calls();
    let late = cd.run_container(&a, "late", BUSYBOX, 0);
    wait_for("late", Duration::from_secs(10), || named(&f, &late));
    let one_calls = f.calls() - calls1;
    eprintln!("a new container in a known pod cost {one_calls} CRI calls");
    check_container(&f, &late, &a, "late", BUSYBOX, 0, &busybox_id);
    if events.is_err() {
        // One ListContainers, and a retry at most (the cgroup may show before the list).
        assert!(one_calls <= 2, "{one_calls} calls for one container");
        // Sandbox, pod, 2 containers: each ask answered by a list or two, batched; and the
        // sandbox's image.
        assert!(new_pod_calls <= 13, "{new_pod_calls} calls for one pod");
    }

    // The kubelet restarts `app`: the old one exits, attempt 1 is a new container.
    cd.stop_container(&a_app);
    let app1 = cd.run_container(&a, "app", BUSYBOX, 1);
    wait_for("app, attempt 1", Duration::from_secs(10), || {
        named(&f, &app1)
    });
    check_container(&f, &app1, &a, "app", BUSYBOX, 1, &busybox_id);
    assert_ne!(app1, a_app);
    // The exited attempt stays for the removal delay (its final sample), then goes.
    assert!(f.store.get(&a_app).is_some(), "attempt 0 dropped at once");
    let gone = wait_for("attempt 0 to leave", Duration::from_secs(15), || {
        f.store.get(&a_app).is_none()
    });
    eprintln!("the exited attempt left the store {gone:?} after attempt 1 was named");

    assert_eq!(f.api_errors(), 0);
    assert_eq!(f.reconnects(), 0);
    if events.is_err() {
        assert_eq!(f.stats.events.load(Ordering::Relaxed), 0);
    }
    // Everything of both pods, the exited attempt no more.
    let ids_now: HashSet<String> = f.store.ids().into_iter().collect();
    let want: HashSet<String> = [
        &a.sandbox_id,
        &a_side,
        &late,
        &app1,
        &b.sandbox_id,
        &ids[0],
        &ids[1],
    ]
    .into_iter()
    .cloned()
    .collect();
    assert_eq!(ids_now, want);
    f.stop();
}

#[test]
fn a_removed_pod_leaves_the_store_after_the_delay() {
    let cd = Containerd::start();
    let keep = cd.run_pod("keep", "ce-ns", Qos::Burstable, Net::Host, &[]);
    let keep_c = cd.run_container(&keep, "c", BUSYBOX, 0);
    let gone = cd.run_pod("gone", "ce-ns", Qos::BestEffort, Net::Host, &[]);
    let gone_c = cd.run_container(&gone, "c", BUSYBOX, 0);
    let delay = Duration::from_secs(1);
    let f = Follower::start(cfg(&cd, delay, Duration::from_secs(1)));
    f.watch(&keep);
    f.watch(&gone);
    wait_for("both pods", Duration::from_secs(10), || {
        named(&f, &keep_c) && named(&f, &gone_c) && f.store.get_pod(&gone.uid).is_some()
    });

    // Timed from before the removal: nothing of it can be noticed earlier. Each entry must
    // stay at least the delay from then (the final sample needs its names), then go.
    let removing = Instant::now();
    cd.remove_pod(&gone);
    assert!(
        !cgroup_anywhere(&gone.cgroup_of(&gone_c)),
        "runc left the cgroup"
    );
    let mut left: HashMap<&str, Duration> = HashMap::new();
    // A promised bound: the entries go one resync (1 s) and the delay (1 s) after the removal;
    // 30 s only ends a wait for entries that never go.
    wait_for("the removed pod to leave", Duration::from_secs(30), || {
        let now = removing.elapsed();
        for (what, gone_now) in [
            ("container", f.store.get(&gone_c).is_none()),
            ("sandbox", f.store.get(&gone.sandbox_id).is_none()),
            ("pod", f.store.get_pod(&gone.uid).is_none()),
        ] {
            if gone_now {
                left.entry(what).or_insert(now);
            }
        }
        left.len() == 3
    });
    eprintln!("the removed pod's entries left the store {left:?} after RemovePodSandbox began");
    for (what, took) in &left {
        assert!(
            *took >= delay,
            "the {what} left {took:?} after the removal began, before the delay ({delay:?}): \
             the final sample would have no name"
        );
    }
    assert!(named(&f, &keep_c) && f.store.get_pod(&keep.uid).is_some());
    assert_eq!(f.store.len(), 2, "{:?}", f.store.ids());
    assert_eq!(f.api_errors(), 0);
    f.stop();
}

// ---------------------------------------------------------------------------------------------
// Outages
// ---------------------------------------------------------------------------------------------

#[test]
fn containerd_restarted_under_the_follower() {
    let mut cd = Containerd::start();
    let pod = cd.run_pod("web-0", "ce-prod", Qos::BestEffort, Net::Host, &[]);
    let c0 = cd.run_container(&pod, "app", BUSYBOX, 0);
    let f = Follower::start(cfg(&cd, Duration::from_secs(60), Duration::from_secs(600)));
    f.watch(&pod);
    wait_for("the container", Duration::from_secs(10), || named(&f, &c0));

    let stopping = Instant::now();
    cd.stop();
    let exited = stopping.elapsed();
    wait_for("the follower to notice", Duration::from_secs(30), || {
        !f.connected()
    });
    eprintln!(
        "containerd took {exited:?} to exit after SIGTERM; the follower had noticed {:?} after \
         SIGTERM (no call needed)",
        stopping.elapsed()
    );
    // While it is away, names stay, and retries back off: three more failed attempts (the
    // loss itself is the first) take at least the backoff's shortest waits, 250, 500 and
    // 1000 ms jittered to half, since the stop began. A retry loop without backoff takes
    // milliseconds; a slow machine only takes longer.
    let errors0 = f.api_errors();
    wait_for("three failed reconnects", Duration::from_secs(60), || {
        f.api_errors() >= errors0 + 3
    });
    let away = stopping.elapsed();
    let shortest = Duration::from_millis(125 + 250 + 500);
    assert!(
        away >= shortest,
        "{} failed attempts within {away:?} of the stop: no backoff (at least {shortest:?})",
        f.api_errors() - errors0 + 1
    );
    assert!(named(&f, &c0), "names dropped while the runtime is away");

    let starting = Instant::now();
    cd.start_again();
    // A promised bound: retries are at most 5 s apart (the backoff's cap); 30 s is a wide
    // margin, and ends a wait for a follower that gave up.
    let back = wait_for("the reconnect", Duration::from_secs(30), || {
        f.connected() && f.reconnects() == 1
    });
    eprintln!(
        "containerd answered {:?} after it was started; the follower was back {back:?} later",
        starting.elapsed() - back
    );
    check_container(&f, &c0, &pod, "app", BUSYBOX, 0, &image_id_of(BUSYBOX));
    let c1 = cd.run_container(&pod, "after", TOOLS, 0);
    wait_for(
        "a container created after the restart",
        Duration::from_secs(10),
        || named(&f, &c1),
    );
    check_container(&f, &c1, &pod, "after", TOOLS, 0, &image_id_of(TOOLS));
    check_pod(&f, &pod, &[]);
    f.stop();
}

#[test]
fn absent_stale_and_foreign_sockets_never_connect_and_probe_says_why() {
    let dir = common::TempDir::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let absent = format!("unix://{}/absent.sock", dir.0.display());
    let e = rt.block_on(cri::probe(&absent)).unwrap_err();
    assert!(matches!(e, CriError::Connect { .. }), "{e}");
    let e = e.to_string();
    assert!(e.contains("no socket there") && e.contains(&absent), "{e}");

    // A socket file nobody listens on (a runtime that died).
    let stale_path = dir.0.join("stale.sock");
    let listener = std::os::unix::net::UnixListener::bind(&stale_path);
    drop(listener.unwrap_or_else(|e| panic!("bind {}: {e}", stale_path.display())));
    let stale = format!("unix://{}", stale_path.display());
    let e = rt.block_on(cri::probe(&stale)).unwrap_err();
    assert!(matches!(e, CriError::Connect { .. }), "{e}");
    assert!(e.to_string().contains("nothing listens"), "{e}");

    // A containerd without its CRI plugin (Docker's packaging ships it so).
    let no_cri = Containerd::start_without_cri();
    let e = rt.block_on(cri::probe(&no_cri.endpoint)).unwrap_err();
    assert!(matches!(e, CriError::Version { .. }), "{e}");
    assert!(e.to_string().contains("does not serve the CRI"), "{e}");

    // The real thing: its name and the version the binary reports.
    let cd = Containerd::start();
    let v = rt.block_on(cri::probe(&cd.endpoint)).unwrap();
    let out = std::process::Command::new("containerd")
        .arg("--version")
        .output()
        .unwrap();
    let binary = String::from_utf8_lossy(&out.stdout);
    eprintln!("probe: {v:?}; `containerd --version`: {}", binary.trim());
    assert_eq!(v.runtime_name, "containerd");
    assert_eq!(v.runtime_api_version, "v1");
    assert!(
        !v.runtime_version.is_empty() && binary.contains(&v.runtime_version),
        "{v:?} vs {binary}"
    );
    assert_eq!(v.endpoint, cd.endpoint);
    // A bare path works as well.
    let bare = cd.endpoint.trim_start_matches("unix://").to_owned();
    assert_eq!(
        rt.block_on(cri::probe(&bare)).unwrap().runtime_name,
        "containerd"
    );

    // Followers on the bad sockets: never connected, errors counted with backoff, an empty
    // store, prompt shutdown.
    for endpoint in [absent, stale, no_cri.endpoint.clone()] {
        let started = Instant::now();
        let f = Follower::start(CriConfig {
            endpoint: Some(endpoint.clone()),
            ..Default::default()
        });
        // It keeps trying (four failed attempts), and backs off: 250 ms doubling, jittered to
        // half at the least, so the fourth comes 125 + 250 + 500 ms after the first at the
        // earliest. A loop without backoff takes milliseconds; a slow machine only longer.
        wait_for(
            &format!("{endpoint}: four failed attempts"),
            Duration::from_secs(60),
            || f.api_errors() >= 4,
        );
        let took = started.elapsed();
        let shortest = Duration::from_millis(125 + 250 + 500);
        assert!(
            took >= shortest,
            "{endpoint}: {} attempts within {took:?}: no backoff (at least {shortest:?})",
            f.api_errors()
        );
        assert!(!f.connected(), "{endpoint}");
        assert!(f.store.is_empty());
        assert_eq!(f.reconnects(), 0);
        f.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// The harness, and what the daemon tests need to know
// ---------------------------------------------------------------------------------------------

#[test]
fn harness_pods_have_the_kubelets_cgroups_and_networks() {
    let cd = Containerd::start();

    // While RunPodSandbox runs: when does the sandbox's cgroup appear, and when does
    // ListPodSandbox show the sandbox?
    let uid = new_uid();
    let pod_rel = Qos::BestEffort
        .cgroup_parent(&uid)
        .trim_start_matches('/')
        .to_owned();
    let root = discovery_root();
    let t0 = Instant::now();
    // The watchers look until they see what they look for: once RunPodSandbox has returned,
    // both hold, so each sees it at its next look. Their deadline only ends a wait for
    // something that never comes; a failed RunPodSandbox ends it at once.
    let watch_until = t0 + Duration::from_secs(120);
    let abandoned = AtomicBool::new(false);
    let watching = || !abandoned.load(Ordering::Relaxed) && Instant::now() < watch_until;
    struct AbandonOnPanic<'a>(&'a AtomicBool);
    impl Drop for AbandonOnPanic<'_> {
        fn drop(&mut self) {
            if thread::panicking() {
                self.0.store(true, Ordering::Relaxed);
            }
        }
    }
    let (pod, returned, first_cgroup, first_listed) = thread::scope(|s| {
        let _abandon = AbandonOnPanic(&abandoned);
        let cgroup = s.spawn(|| {
            while watching() {
                let has_child = std::fs::read_dir(root.join(&pod_rel)).is_ok_and(|mut d| {
                    d.any(|e| e.is_ok_and(|e| e.file_type().is_ok_and(|t| t.is_dir())))
                });
                if has_child {
                    return Some(Instant::now());
                }
                thread::sleep(Duration::from_millis(1));
            }
            None
        });
        let listed = s.spawn(|| {
            while watching() {
                let items = cd.list_sandboxes();
                if items
                    .iter()
                    .any(|i| i.metadata.as_ref().is_some_and(|m| m.uid == uid))
                {
                    return Some(Instant::now());
                }
                thread::sleep(Duration::from_millis(2));
            }
            None
        });
        let pod = cd.run_pod_as(&uid, "timeline", "ce-ns", Qos::BestEffort, Net::Host, &[]);
        let returned = Instant::now();
        (
            pod,
            returned,
            cgroup.join().unwrap(),
            listed.join().unwrap(),
        )
    });
    eprintln!(
        "RunPodSandbox took {:?}; the sandbox's cgroup appeared {:?} and ListPodSandbox showed \
         it {:?} after the call began",
        returned - t0,
        first_cgroup.map(|t| t - t0),
        first_listed.map(|t| t - t0),
    );
    let first_cgroup = first_cgroup.expect("the sandbox's cgroup never appeared");
    let first_listed = first_listed.expect("the sandbox was never listed");
    assert!(first_cgroup <= returned);
    assert!(
        first_cgroup <= first_listed,
        "listed before its cgroup existed: then discovery's asks would always find it"
    );
    // When it returns: the sandbox's cgroup in every hierarchy, under the pod's, and listed.
    assert!(cgroup_everywhere(&pod.cgroup_rel()));
    assert!(cgroup_everywhere(&pod.cgroup_of(&pod.sandbox_id)));
    let sb = cd.list_sandboxes();
    assert!(sb.iter().any(|s| s.id == pod.sandbox_id), "{sb:?}");
    let (pause_pid, _) = cd.sandbox_status(&pod);
    let pause_cgroup =
        std::fs::read_to_string(format!("/proc/{}/cgroup", pause_pid.unwrap())).unwrap();
    assert!(
        pause_cgroup.contains(&pod.cgroup_of(&pod.sandbox_id)),
        "{pause_cgroup}"
    );

    // A created container is listed before its cgroup exists; StartContainer makes it.
    let id = cd.create_container(&pod, "app", BUSYBOX, 0);
    let listed = cd.list_containers();
    let item = listed
        .iter()
        .find(|c| c.id == id)
        .expect("created container listed");
    assert_eq!(item.state, CONTAINER_CREATED);
    assert!(
        !cgroup_anywhere(&pod.cgroup_of(&id)),
        "cgroup before StartContainer"
    );
    cd.start_container(&id);
    assert!(cgroup_everywhere(&pod.cgroup_of(&id)));
    let (state, pid) = cd.container_status(&id);
    assert_eq!(state, CONTAINER_RUNNING);
    let pid = pid.expect("pid of a running container");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&pod.cgroup_of(&id)), "{cg}");
    // Discovery classifies both as containerd containers of the pod, and the pod's own cgroup
    // as the pod.
    let (pods, found): (Vec<_>, Vec<_>) = discovery::walk(&discovery_root())
        .into_iter()
        .filter(|f| f.pod_uid.as_deref() == Some(uid.as_str()))
        .partition(|f| f.kind == discovery::Kind::Pod);
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0].id, uid);
    let mut found_ids: Vec<&str> = found.iter().map(|f| f.id.as_str()).collect();
    found_ids.sort();
    let mut want = vec![pod.sandbox_id.as_str(), id.as_str()];
    want.sort();
    assert_eq!(found_ids, want);
    assert!(
        found
            .iter()
            .all(|f| f.runtime == discovery::Runtime::Containerd)
    );
    // Stopped: the cgroup goes with the container's last process.
    cd.stop_container(&id);
    wait_for(
        "the stopped container's cgroup to go",
        Duration::from_secs(30),
        || !cgroup_anywhere(&pod.cgroup_of(&id)),
    );

    // A guaranteed pod sits directly under /kubepods.
    let g = cd.run_pod("g", "ce-ns", Qos::Guaranteed, Net::Host, &[]);
    assert_eq!(g.cgroup_parent, format!("/kubepods/pod{}", g.uid));
    let gc = cd.run_container(&g, "app", BUSYBOX, 0);
    assert!(cgroup_everywhere(&g.cgroup_of(&gc)));
    // Its CPU limit (0.1 CPU) in the file of this host's layout: v1's quota (pure v1 and
    // hybrid), or the first field of v2's `cpu.max`.
    let rel = g.cgroup_of(&gc);
    let quota = if PathBuf::from("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from("/sys/fs/cgroup").join(&rel).join("cpu.max")
    } else {
        PathBuf::from("/sys/fs/cgroup/cpu")
            .join(&rel)
            .join("cpu.cfs_quota_us")
    };
    let text = std::fs::read_to_string(&quota)
        .unwrap_or_else(|e| panic!("the guaranteed pod's CPU limit, {}: {e}", quota.display()));
    assert_eq!(
        text.split_whitespace().next(),
        Some("10000"),
        "{}: {text:?}",
        quota.display()
    );

    // Pod network: an address on the instance's bridge, and a network namespace of the pod's
    // own, shared by its containers.
    let p = cd.run_pod("net", "ce-ns", Qos::BestEffort, Net::Pod, &[]);
    let (p_pause, ip) = cd.sandbox_status(&p);
    let prefix = cd.subnet.trim_end_matches("0/24");
    assert!(ip.starts_with(prefix), "pod ip {ip:?} not in {}", cd.subnet);
    let pc = cd.run_container(&p, "app", BUSYBOX, 0);
    let (_, pc_pid) = cd.container_status(&pc);
    // Each network namespace has its own `net/dev` inode (no ptrace access needed).
    let netns = |pid: u32| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("/proc/{pid}/net/dev"))
            .unwrap()
            .ino()
    };
    let host = netns(1);
    assert_ne!(netns(p_pause.unwrap()), host);
    assert_eq!(netns(pc_pid.unwrap()), netns(p_pause.unwrap()));
    // Host-network pods share the host's.
    let (g_pause, g_ip) = cd.sandbox_status(&g);
    assert_eq!(netns(g_pause.unwrap()), host);
    assert!(g_ip.is_empty(), "{g_ip}");
}
