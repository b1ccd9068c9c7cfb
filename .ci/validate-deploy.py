"""The promises of deploy/ and the Dockerfile that no schema checks, for .ci/validate-deploy.sh.

    python validate-deploy.py BUILT_DIR

BUILT_DIR holds what kustomize built (base.yaml, otel.yaml, cadvisor.yaml); this writes
compose.json there, the compose file interpolated as `docker compose` would with
GRAFANA_ADMIN_PASSWORD set, for the Compose Specification schema check that follows. Every
failed promise is printed; the exit status is 1 if there was one.
"""

import glob
import json
import os
import re
import sys

import yaml

BUILT = sys.argv[1]
errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


with open("Cargo.toml") as f:
    VERSION = re.search(r'(?m)^version = "([^"]+)"$', f.read()).group(1)
IMAGE = f"container-exporter:{VERSION}"
NAMESPACE = "container-exporter"


def mebibytes(q):
    """A Kubernetes memory quantity in MiB."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?", str(q))
    if not m:
        return None
    unit = {None: 1, "Ki": 1024, "Mi": 1 << 20, "Gi": 1 << 30, "k": 1e3, "M": 1e6, "G": 1e9}
    return float(m.group(1)) * unit[m.group(2)] / (1 << 20)


# Kubernetes: deploy/kubernetes/ --------------------------------------------------------------------
kdir = "deploy/kubernetes"
kust = load_all(f"{kdir}/kustomization.yaml")[0]
check(kust.get("kind") == "Kustomization", "kustomization.yaml: kind is not Kustomization")
check(kust.get("namespace") == NAMESPACE,
      f"kustomization.yaml: the namespace must be {NAMESPACE}, the exporter's own (not a shared one: "
      "its Pod Security exemption would cover every other pod there)")
listed = kust.get("resources", [])
for r in listed:
    check(os.path.isfile(os.path.join(kdir, r)), f"kustomization.yaml lists {r}, which does not exist")
present = sorted(os.path.basename(p) for p in glob.glob(f"{kdir}/*.yaml") if not p.endswith("kustomization.yaml"))
for p in present:
    check(p in listed, f"{kdir}/{p} is not listed in kustomization.yaml resources")
check(len(listed) == len(set(listed)), "kustomization.yaml lists a resource twice")
images = kust.get("images", [])
check(len(images) == 1 and images[0].get("name") == "container-exporter"
      and images[0].get("newTag") == VERSION,
      f"kustomization.yaml: `images` must give container-exporter the tag {VERSION!r}, the crate's "
      "version (Cargo.toml), as .ci/build-image.sh tags it")

objs = {}
for p in present:
    for d in load_all(f"{kdir}/{p}"):
        objs[(d["kind"], d["metadata"]["name"])] = d
        if d["kind"] != "Namespace":
            check(d["metadata"].get("namespace") == NAMESPACE, f"{p}: {d['kind']} is not in namespace {NAMESPACE}")

ns = objs.get(("Namespace", NAMESPACE))
check(ns is not None, f"no manifest creates the namespace {NAMESPACE}")
if ns:
    check(ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") == "privileged",
          "namespace.yaml: the exporter needs pod-security.kubernetes.io/enforce: privileged")
ds = objs.get(("DaemonSet", "container-exporter"))
svc = objs.get(("Service", "container-exporter"))
sa = objs.get(("ServiceAccount", "container-exporter"))
check(ds is not None, "no DaemonSet container-exporter")
check(svc is not None, "no Service container-exporter")
check(sa is not None and sa.get("automountServiceAccountToken") is False,
      "the ServiceAccount must exist with automountServiceAccountToken: false")
if ds:
    pod = ds["spec"]["template"]["spec"]
    c = pod["containers"][0]
    sc = c.get("securityContext", {})
    env = {e["name"]: e for e in c.get("env", [])}
    check(pod.get("hostPID") is True, "DaemonSet: hostPID must be true (cgroup.procs pids are per PID namespace)")
    check(pod.get("serviceAccountName") == "container-exporter", "DaemonSet: serviceAccountName")
    check(pod.get("automountServiceAccountToken") is False, "DaemonSet: automountServiceAccountToken must be false")
    check({"operator": "Exists"} in pod.get("tolerations", []), "DaemonSet: must tolerate every taint")
    check(pod.get("priorityClassName") == "system-node-critical",
          "DaemonSet: priorityClassName must be system-node-critical, as node agents have it")
    check(c["image"] == "container-exporter" and c.get("imagePullPolicy") == "IfNotPresent",
          "DaemonSet: image must be the name `container-exporter` alone (kustomization.yaml `images` "
          "gives the tag), IfNotPresent")
    check(sc.get("readOnlyRootFilesystem") is True, "DaemonSet: readOnlyRootFilesystem")
    check(sc.get("allowPrivilegeEscalation") is False, "DaemonSet: allowPrivilegeEscalation false")
    check(sc.get("privileged") in (None, False), "DaemonSet: must not be privileged")
    caps = sc.get("capabilities", {})
    check(caps.get("drop") == ["ALL"] and caps.get("add", []) in ([], ["DAC_READ_SEARCH"]),
          "DaemonSet: capabilities must be drop ALL, nothing added but DAC_READ_SEARCH (disk usage)")
    psc = pod.get("securityContext", {})
    cri = env.get("CONTAINER_EXPORTER_CRI_ENDPOINT", {}).get("value", "")
    cri_path = cri[len("unix://"):] if cri.startswith("unix://") else cri
    if psc.get("runAsUser") == 0:
        # Root only for the CRI socket (root:root 0660), and then with no capability at all.
        check(cri_path.startswith("/"), "DaemonSet: runs as uid 0 but reads no CRI socket")
    else:
        check(psc.get("runAsNonRoot") is True, "DaemonSet: runAsNonRoot (nothing it reads needs root)")
    if cri_path.startswith("/"):
        m = {m["mountPath"]: m for m in c.get("volumeMounts", [])}.get(cri_path)
        check(m is not None, f"DaemonSet: CONTAINER_EXPORTER_CRI_ENDPOINT {cri} is not mounted")
        if m is not None:
            v = {v["name"]: v for v in pod.get("volumes", [])}.get(m["name"], {})
            check(v.get("hostPath", {}).get("path") == cri_path and v["hostPath"].get("type") == "Socket",
                  f"DaemonSet: the CRI socket must be the host's {cri_path}, type Socket")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports.get("metrics") == 9464, "DaemonSet: container port `metrics` must be 9464")
    check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", "DaemonSet: liveness on /healthz")
    check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", "DaemonSet: readiness on /readyz")
    for probe in ("livenessProbe", "readinessProbe"):
        check(c.get(probe, {}).get("httpGet", {}).get("port") in ("metrics", 9464), f"DaemonSet: {probe} port")
    res = c.get("resources", {})
    check(res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory")
          and res.get("limits", {}).get("memory"), "DaemonSet: requests and a memory limit")
    # The memory request is at or above the peak measured at the documented scale, whose figure
    # the manifest states in one place: `Measured peak: N MiB`.
    with open(f"{kdir}/daemonset.yaml") as fh:
        peak = re.findall(r"(?m)^\s*#.*Measured peak: (\d+(?:\.\d+)?) MiB", fh.read())
    check(len(peak) == 1, "daemonset.yaml: one comment must state `Measured peak: N MiB` (the figure the memory request follows)")
    req = mebibytes(res.get("requests", {}).get("memory", ""))
    lim = mebibytes(res.get("limits", {}).get("memory", ""))
    if len(peak) == 1 and req is not None:
        check(req >= float(peak[0]),
              f"DaemonSet: the memory request ({req:g} MiB) is below the measured peak ({peak[0]} MiB)")
    check(req is not None and lim is not None and lim >= req, "DaemonSet: the memory limit is below the request")
    nn = env.get("CONTAINER_EXPORTER_HOST_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    check(nn == "spec.nodeName", "DaemonSet: CONTAINER_EXPORTER_HOST_NAME from spec.nodeName")
    check("OTEL_EXPORTER_OTLP_ENDPOINT" in env, "DaemonSet: OTEL_EXPORTER_OTLP_ENDPOINT")
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for name, m in mounts.items():
        check(name in vols, f"DaemonSet: volumeMount {name} has no volume")
        check(m.get("readOnly") is True, f"DaemonSet: host mount {name} must be readOnly")
    # Disk usage: the host paths the runtimes name are read below CONTAINER_EXPORTER_HOST_ROOT,
    # so every host directory mounted below it must sit at its own path there.
    hr = env.get("CONTAINER_EXPORTER_HOST_ROOT", {}).get("value")
    if hr:
        for n, m in mounts.items():
            hp = vols.get(n, {}).get("hostPath", {}).get("path", "")
            if m["mountPath"].startswith(hr.rstrip("/") + "/") and hp:
                check(m["mountPath"] == hr.rstrip("/") + hp,
                      f"DaemonSet: {n} is mounted at {m['mountPath']}, not at {hr.rstrip('/') + hp} (its host path below CONTAINER_EXPORTER_HOST_ROOT)")
        check(any(m["mountPath"].startswith(hr.rstrip("/") + "/var/lib/") for m in mounts.values()),
              "DaemonSet: CONTAINER_EXPORTER_HOST_ROOT is set but no runtime data directory is mounted below it")
    check(not caps.get("add") or hr, "DaemonSet: DAC_READ_SEARCH is added but no host root is set for disk usage")
    cg = env.get("CONTAINER_EXPORTER_CGROUP_ROOT", {}).get("value")
    check(any(m["mountPath"] == cg and vols.get(n, {}).get("hostPath", {}).get("path") == "/sys/fs/cgroup"
              for n, m in mounts.items()),
          "DaemonSet: CONTAINER_EXPORTER_CGROUP_ROOT must be where the host's /sys/fs/cgroup is mounted")
    meta = ds["spec"]["template"]["metadata"]
    labels = meta["labels"]
    check(all(labels.get(k) == v for k, v in ds["spec"]["selector"]["matchLabels"].items()),
          "DaemonSet: selector does not match the pod labels")
    # Scrape annotations in one place, the Service: on both, annotation-driven configurations
    # that have a job for each scrape every exporter twice.
    check(not any(k.startswith("prometheus.io/") for k in meta.get("annotations", {})),
          "DaemonSet: no prometheus.io/* annotations on the pods (they are on the Service only)")
    if svc:
        check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
              "Service: selector does not match the DaemonSet's pods")
        sp = svc["spec"]["ports"][0]
        check(sp["port"] == 9464 and sp.get("targetPort") in ("metrics", 9464), "Service: port 9464 -> metrics")
        check(svc["spec"].get("clusterIP") == "None", "Service: headless (clusterIP: None), one endpoint per node")
        ann = svc["metadata"].get("annotations", {})
        check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9464"
              and ann.get("prometheus.io/path") == "/metrics",
              "Service: prometheus.io/scrape, /port and /path annotations")

# What kustomize built: deploy/kubernetes/ and the two operator overlays ---------------------------
built = {name: load_all(f"{BUILT}/{name}.yaml") for name in ("base", "otel", "cadvisor")}
for name, docs in built.items():
    for d in docs:
        if d["kind"] != "Namespace":
            check(d["metadata"].get("namespace") == NAMESPACE,
                  f"{name}: {d['kind']}/{d['metadata']['name']} is not in namespace {NAMESPACE}")
        for ctr in (d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])):
            check(ctr.get("image") == IMAGE,
                  f"{name}: {d['kind']}/{d['metadata']['name']} runs {ctr.get('image')!r}, not {IMAGE!r} (the crate's version)")
    text = json.dumps(docs)
    check(":latest" not in text, f"{name}: names a `:latest` image")


def daemonset_env(docs):
    for d in docs:
        if d["kind"] == "DaemonSet":
            return {e["name"]: e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    return {}


check("CONTAINER_EXPORTER_PROMETHEUS_NAMES" not in daemonset_env(built["base"]),
      "deploy/kubernetes: serves the OpenTelemetry names (no CONTAINER_EXPORTER_PROMETHEUS_NAMES)")
check("CONTAINER_EXPORTER_PROMETHEUS_NAMES" not in daemonset_env(built["otel"]),
      "deploy/prometheus-operator/otel: serves the OpenTelemetry names")
check(daemonset_env(built["cadvisor"]).get("CONTAINER_EXPORTER_PROMETHEUS_NAMES") == "cadvisor",
      "deploy/prometheus-operator/cadvisor: must serve the cAdvisor page (CONTAINER_EXPORTER_PROMETHEUS_NAMES=cadvisor)")
for name in ("otel", "cadvisor"):
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in built[name])
    base_kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in built["base"])
    extra = sorted(set(kinds) - set(base_kinds))
    check(extra == ["Role/prometheus-discovery", "RoleBinding/prometheus-discovery", "ServiceMonitor/container-exporter"],
          f"deploy/prometheus-operator/{name}: adds {extra} to deploy/kubernetes, not its ServiceMonitor and the discovery Role")

# The Prometheus Operator overlays ------------------------------------------------------------------
odir = "deploy/prometheus-operator"
check(sorted(os.listdir(odir)) == ["cadvisor", "otel", "rbac"], f"{odir}: unexpected entries {sorted(os.listdir(odir))}")
want_files = {
    "cadvisor": ["cadvisor-names.yaml", "kustomization.yaml", "servicemonitor.yaml"],
    "otel": ["kustomization.yaml", "servicemonitor.yaml"],
    "rbac": ["kustomization.yaml", "prometheus-discovery.yaml"],
}
for sub, files in want_files.items():
    got = sorted(os.listdir(f"{odir}/{sub}"))
    check(got == files, f"{odir}/{sub}: files {got}, expected {files}")
for sub, patches in (("cadvisor", ["cadvisor-names.yaml"]), ("otel", [])):
    k = load_all(f"{odir}/{sub}/kustomization.yaml")[0]
    check(k.get("resources") == ["../../kubernetes", "../rbac", "servicemonitor.yaml"],
          f"{odir}/{sub}/kustomization.yaml: resources must be ../../kubernetes, ../rbac and servicemonitor.yaml")
    check([p.get("path") for p in k.get("patches", [])] == patches, f"{odir}/{sub}/kustomization.yaml: patches {patches}")
patch = load_all(f"{odir}/cadvisor/cadvisor-names.yaml")[0]
check(patch["kind"] == "DaemonSet" and ds is not None and patch["metadata"]["name"] == ds["metadata"]["name"],
      f"{odir}/cadvisor/cadvisor-names.yaml must patch the DaemonSet")
for d in load_all(f"{odir}/rbac/prometheus-discovery.yaml"):
    check(d["metadata"].get("namespace") == NAMESPACE, f"{odir}/rbac: {d['kind']} is not in {NAMESPACE}")
    if d["kind"] == "Role":
        for r in d["rules"]:
            check(set(r["verbs"]) <= {"get", "list", "watch"}, f"{odir}/rbac: the Role may only read")


def endpoint_of(path):
    sm = load_all(path)[0]
    spec = sm["spec"]
    check(sm["metadata"]["namespace"] == NAMESPACE, f"{path}: not in the Service's namespace")
    check(spec.get("namespaceSelector", {}).get("matchNames") == [NAMESPACE],
          f"{path}: namespaceSelector must name {NAMESPACE}")
    if svc:
        check(all(svc["metadata"].get("labels", {}).get(k) == v for k, v in spec["selector"]["matchLabels"].items()),
              f"{path}: selector does not match the Service's labels")
    eps = spec.get("endpoints", [])
    check(len(eps) == 1, f"{path}: one endpoint")
    ep = eps[0] if eps else {}
    if svc:
        check(ep.get("port") == svc["spec"]["ports"][0]["name"], f"{path}: endpoint port must be the Service's port name")
    check(ep.get("path") == "/metrics", f"{path}: the page is at /metrics")
    rel = ep.get("relabelings", [])
    check(any(r.get("targetLabel") == "node" and r.get("sourceLabels") == ["__meta_kubernetes_pod_node_name"]
              for r in rel), f"{path}: node must come from __meta_kubernetes_pod_node_name")
    dropped = [r.get("regex", "") for r in rel if r.get("action", "").lower() == "labeldrop"]
    for label in ("namespace", "pod", "container"):
        check(any(re.fullmatch(rx, label) for rx in dropped),
              f"{path}: the target's {label} label (the exporter's own pod) must be dropped")
    for label in ("job", "metrics_path", "node", "instance", "service", "endpoint"):
        check(not any(re.fullmatch(rx, label) for rx in dropped), f"{path}: must not drop {label}")
    for r in ep.get("metricRelabelings", []):
        check(r.get("action", "").lower() == "drop", f"{path}: metricRelabelings only drop")
    return ep, rel


ep, rel = endpoint_of(f"{odir}/cadvisor/servicemonitor.yaml")
check(ep.get("honorLabels") is True, "cadvisor ServiceMonitor: honorLabels must be true (the page's namespace, pod, container win)")


def sets(label, value):
    return any(r.get("targetLabel") == label and r.get("action", "replace").lower() == "replace"
               and not r.get("sourceLabels") and r.get("replacement") == value for r in rel)


check(sets("job", "kubelet"), 'cadvisor ServiceMonitor: must set job="kubelet"')
check(sets("metrics_path", "/metrics/cadvisor"), 'cadvisor ServiceMonitor: must set metrics_path="/metrics/cadvisor"')
ep, rel = endpoint_of(f"{odir}/otel/servicemonitor.yaml")
check(not ep.get("honorLabels"), "otel ServiceMonitor: honorLabels false (the page has none of the target's labels)")
check(not any(r.get("targetLabel") == "job" for r in rel), "otel ServiceMonitor: keeps the operator's job (the Service's name)")

# Compose ---------------------------------------------------------------------------------------
cdir = "deploy/compose"
compose_raw = load_all(f"{cdir}/compose.yaml")[0]


def interpolate(node, env, where="compose.yaml"):
    """Variables as Compose substitutes them in values: $$, $NAME, ${NAME}, ${NAME:-default},
    ${NAME-default}, ${NAME:?message}, ${NAME?message}, ${NAME:+alt}, ${NAME+alt}."""
    if isinstance(node, dict):
        return {k: interpolate(v, env, f"{where}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env, where) for v in node]
    if not isinstance(node, str):
        return node

    def one(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        val = env.get(name)
        unset_or_empty = not val
        if op in (":-", "-"):
            return arg if (unset_or_empty if op == ":-" else val is None) else val
        if op in (":?", "?"):
            if unset_or_empty if op == ":?" else val is None:
                raise KeyError(f"{where}: required variable {name} is missing: {arg}")
            return val
        if op in (":+", "+"):
            return arg if not (unset_or_empty if op == ":+" else val is None) else ""
        if val is None:
            raise KeyError(f"{where}: {name} has no default and is not required: Compose would put an empty string")
        return val

    rx = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")
    return rx.sub(one, node)


try:
    compose = interpolate(compose_raw, {"GRAFANA_ADMIN_PASSWORD": "validate-deploy"})
except KeyError as e:
    errors.append(str(e.args[0]))
    compose = compose_raw
with open(f"{BUILT}/compose.json", "w") as fh:
    json.dump(compose, fh)
# No default password: without GRAFANA_ADMIN_PASSWORD Compose must refuse the file.
try:
    interpolate(compose_raw, {})
    errors.append("compose.yaml: starts without GRAFANA_ADMIN_PASSWORD (it must be required: ${GRAFANA_ADMIN_PASSWORD:?...})")
except KeyError as e:
    check("GRAFANA_ADMIN_PASSWORD" in str(e), f"compose.yaml: without variables: {e}")

services = compose.get("services", {})
for s in ("container-exporter", "otel-collector", "prometheus", "grafana"):
    check(s in services, f"compose.yaml: no service {s}")
check(services.get("grafana", {}).get("environment", {}).get("GF_SECURITY_ADMIN_PASSWORD") == "validate-deploy",
      "compose.yaml: Grafana's admin password must be GRAFANA_ADMIN_PASSWORD, with no default")
for name, s in services.items():
    # Ports on the loopback address unless PUBLISH_ADDRESS says otherwise.
    for p in s.get("ports", []):
        check(isinstance(p, str) and p.startswith("127.0.0.1:"),
              f"compose.yaml: {name} publishes {p!r}, not on 127.0.0.1 by default")
    for p in compose_raw["services"][name].get("ports", []):
        check(p.startswith("${PUBLISH_ADDRESS:-127.0.0.1}:"), f"compose.yaml: {name} port {p!r} must be published on ${{PUBLISH_ADDRESS:-127.0.0.1}}")
    # A healthcheck wherever the image can run a probe; where it cannot, the reason.
    hc = s.get("healthcheck")
    check(bool(hc) != bool(s.get("x-healthcheck-none")),
          f"compose.yaml: {name} needs a healthcheck, or x-healthcheck-none saying why it cannot have one")
    if hc:
        check(isinstance(hc.get("test"), list) and hc["test"][0] == "CMD",
              f"compose.yaml: {name}'s healthcheck runs a program (CMD), not a shell line")
    deps = s.get("depends_on", {})
    check(isinstance(deps, dict), f"compose.yaml: {name}'s depends_on must say a condition for each service")
    for dep, cond in (deps.items() if isinstance(deps, dict) else []):
        check(dep in services, f"compose.yaml: {name} depends on {dep}, which is not a service")
        if cond.get("condition") == "service_healthy":
            check(services.get(dep, {}).get("healthcheck"), f"compose.yaml: {name} waits for {dep} to be healthy, which has no healthcheck")
    img = s.get("image", "")
    if name != "container-exporter":
        # Third-party images by exact version (no registry is reachable here to read digests).
        check(re.fullmatch(r"[a-z0-9][a-z0-9./_-]*:v?\d+\.\d+\.\d+", img),
              f"compose.yaml: {name}'s image {img!r} is not pinned to an exact version")


def mounts_of(svc):
    out = []
    for v in services.get(svc, {}).get("volumes", []):
        parts = v.split(":") if isinstance(v, str) else [v["source"], v["target"]]
        out.append((parts[0], parts[1], parts[2:] if len(parts) > 2 else []))
    return out


named_volumes = set((compose.get("volumes") or {}).keys())
for name in services:
    for src, dst, opts in mounts_of(name):
        if src.startswith("."):
            check(os.path.exists(os.path.join(cdir, src)), f"compose.yaml: {name} mounts {src}, which does not exist")
        elif not src.startswith("/"):
            check(src in named_volumes, f"compose.yaml: {name} uses volume {src}, not declared")

exp = services.get("container-exporter", {})
build = exp.get("build", {})
ctx = os.path.normpath(os.path.join(cdir, build.get("context", ".")))
check(os.path.samefile(ctx, "."), "compose.yaml: the exporter must be built from the repository root")
dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
check(os.path.isfile(dockerfile), "compose.yaml: the exporter's Dockerfile does not exist")
if os.path.isfile(dockerfile) and build.get("target"):
    with open(dockerfile) as fh:
        stages = re.findall(r"(?im)^FROM\s+\S+\s+AS\s+(\S+)", fh.read())
    check(build["target"] in stages, f"compose.yaml: build target {build['target']} is not a stage of the Dockerfile ({stages})")
check(exp.get("image") == IMAGE, f"compose.yaml: the exporter's image must be {IMAGE} (the crate's version)")
check(exp.get("pid") == "host", "compose.yaml: the exporter needs pid: host")
check(exp.get("cap_drop") == ["ALL"] and exp.get("cap_add", []) in ([], ["DAC_READ_SEARCH"]),
      "compose.yaml: cap_drop ALL, nothing added but DAC_READ_SEARCH (disk usage)")
check(exp.get("read_only") is True, "compose.yaml: the exporter's root filesystem must be read_only")
check(not exp.get("privileged"), "compose.yaml: the exporter must not be privileged")
eenv = exp.get("environment", {})
emounts = {dst: (src, opts) for src, dst, opts in mounts_of("container-exporter")}
for dst, (src, opts) in emounts.items():
    check("ro" in opts, f"compose.yaml: the exporter's mount of {src} must be read-only")
hr = eenv.get("CONTAINER_EXPORTER_HOST_ROOT")
if hr:
    for dst, (src, opts) in emounts.items():
        if dst.startswith(hr.rstrip("/") + "/"):
            check(dst == hr.rstrip("/") + src, f"compose.yaml: {src} is mounted at {dst}, not at its host path below CONTAINER_EXPORTER_HOST_ROOT")
    check(emounts.get(hr.rstrip("/") + "/var/lib/docker", ("",))[0] == "/var/lib/docker",
          "compose.yaml: CONTAINER_EXPORTER_HOST_ROOT is set but Docker's data directory is not mounted below it")
cg = eenv.get("CONTAINER_EXPORTER_CGROUP_ROOT")
check(emounts.get(cg, ("",))[0] == "/sys/fs/cgroup", "compose.yaml: CONTAINER_EXPORTER_CGROUP_ROOT must be the mounted /sys/fs/cgroup")
otlp = eenv.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
m = re.match(r"https?://([^:/]+):(\d+)", otlp)
check(m is not None and m.group(1) == "otel-collector", "compose.yaml: OTEL_EXPORTER_OTLP_ENDPOINT must point at otel-collector")

# Collector: the config mounted where the command looks, the receiver on the port the exporter uses.
col = services.get("otel-collector", {})
cmd = " ".join(col.get("command", []))
cfg_path = re.search(r"--config=(\S+)", cmd)
cmounts = {dst: src for src, dst, _ in mounts_of("otel-collector")}
check(cfg_path is not None and cmounts.get(cfg_path.group(1)) == "./otel-collector.yaml",
      "compose.yaml: the collector's --config must be the mounted otel-collector.yaml")
oc = load_all(f"{cdir}/otel-collector.yaml")[0]
for pname, p in oc["service"]["pipelines"].items():
    for kind in ("receivers", "processors", "exporters"):
        for comp in p.get(kind, []):
            check(comp in (oc.get(kind) or {}), f"otel-collector.yaml: pipeline {pname} uses undefined {kind[:-1]} {comp}")
if m:
    proto = eenv.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    key = "grpc" if proto == "grpc" else "http"
    ep = oc["receivers"]["otlp"]["protocols"].get(key, {}).get("endpoint", "")
    check(ep.endswith(":" + m.group(2)), f"otel-collector.yaml: the otlp {key} receiver is not on port {m.group(2)} ({ep!r})")
prom_exp_port = oc["exporters"].get("prometheus", {}).get("endpoint", ":").rsplit(":", 1)[1]

# Prometheus: scrape targets are compose services on the ports they serve.
pmounts = {dst: src for src, dst, _ in mounts_of("prometheus")}
pcmd = " ".join(services.get("prometheus", {}).get("command", []))
pcfg = re.search(r"--config.file=(\S+)", pcmd)
check(pcfg is not None and pcmd and pmounts.get(pcfg.group(1)) == "./prometheus.yml",
      "compose.yaml: Prometheus's --config.file must be the mounted prometheus.yml")
prom = load_all(f"{cdir}/prometheus.yml")[0]
targets = [t for sc in prom["scrape_configs"] for c in sc.get("static_configs", []) for t in c["targets"]]
check("container-exporter:9464" in targets, "prometheus.yml: does not scrape container-exporter:9464")
if prom_exp_port:
    check(f"otel-collector:{prom_exp_port}" in targets, f"prometheus.yml: does not scrape otel-collector:{prom_exp_port}")
for t in targets:
    host = t.split(":")[0]
    check(host == "localhost" or host in services, f"prometheus.yml: target {t} is not a compose service")

# Grafana: provisioning mounted, the data source is the compose Prometheus, the dashboards path
# is where the dashboards are mounted.
gmounts = {src: dst for src, dst, _ in mounts_of("grafana")}
check(gmounts.get("../grafana/provisioning") == "/etc/grafana/provisioning", "compose.yaml: grafana provisioning mount")
dash_dir = gmounts.get("../grafana/dashboards")
check(dash_dir is not None, "compose.yaml: grafana dashboards mount")
gdir = "deploy/grafana"
dsfiles = glob.glob(f"{gdir}/provisioning/datasources/*.yaml")
check(dsfiles, "no Grafana data source provisioning file")
for f in dsfiles:
    for d in load_all(f)[0].get("datasources", []):
        if d.get("type") == "prometheus":
            check(d.get("url") == "http://prometheus:9090", f"{f}: data source URL must be http://prometheus:9090")
            ti = d.get("jsonData", {}).get("timeInterval")
            check(ti == prom["global"]["scrape_interval"], f"{f}: timeInterval {ti} is not the scrape interval")
dbfiles = glob.glob(f"{gdir}/provisioning/dashboards/*.yaml")
check(dbfiles, "no Grafana dashboard provisioning file")
for f in dbfiles:
    for p in load_all(f)[0].get("providers", []):
        check(p.get("options", {}).get("path") == dash_dir, f"{f}: provider path is not the mounted {dash_dir}")
home = services.get("grafana", {}).get("environment", {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
if home:
    check(os.path.isfile(os.path.join(gdir, "dashboards", os.path.relpath(home, dash_dir or "/"))),
          f"compose.yaml: home dashboard {home} does not exist")

dashboards = glob.glob(f"{gdir}/dashboards/*.json")
check(dashboards, "no dashboards in deploy/grafana/dashboards")
uids = set()
for f in dashboards:
    with open(f) as fh:
        d = json.load(fh)
    check(d.get("uid") and d["uid"] not in uids, f"{f}: missing or duplicate uid")
    uids.add(d.get("uid"))
    ids = set()
    for p in d.get("panels", []):
        check(p.get("id") not in ids, f"{f}: duplicate panel id {p.get('id')}")
        ids.add(p.get("id"))
        if p.get("type") == "row":
            continue
        check(p.get("targets"), f"{f}: panel {p.get('title')!r} has no queries")
        for t in p.get("targets", []):
            check(t.get("expr", "").strip(), f"{f}: panel {p.get('title')!r} query {t.get('refId')} has no expr")

# Dockerfile ------------------------------------------------------------------------------------
with open("Dockerfile") as fh:
    lines = [ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
stages = []  # (name, base, instructions)
for ln in lines:
    mm = re.match(r"(?i)FROM\s+(\S+)(?:\s+AS\s+(\S+))?$", ln)
    if mm:
        stages.append((mm.group(2), mm.group(1), []))
    elif stages:
        stages[-1][2].append(ln)
names = [s[0] for s in stages]
check(names[:1] == ["prebuilt"] and names[-1:] == ["runtime"],
      f"Dockerfile: `prebuilt` must be the first stage (the classic builder builds the stages before the target) and `runtime` the last (the default target): {names}")
for name, base, _ in stages:
    check(base == "scratch" or base in names
          or re.fullmatch(r"[a-z0-9][a-z0-9./_-]*:\d+\.\d+\.\d+(-[a-z0-9]+)?(@sha256:[0-9a-f]{64})?", base),
          f"Dockerfile: stage {name} is FROM {base!r}, not an exact version")
by_name = {s[0]: s for s in stages}
if "prebuilt" in by_name and "runtime" in by_name:
    pre, run = by_name["prebuilt"][2], by_name["runtime"][2]
    check(pre[:1] == ["COPY rootfs/ /"] and run[:1] == ["COPY --from=build /rootfs/ /"] and pre[1:] == run[1:],
          "Dockerfile: `prebuilt` and `runtime` must copy the same root filesystem and say the same after it "
          f"(user, port, entrypoint): {pre} vs {run}")
    check("USER 65534:65534" in run and 'ENTRYPOINT ["/container-exporter"]' in run and "EXPOSE 9464" in run,
          "Dockerfile: the image runs /container-exporter as 65534:65534 and exposes 9464")
build_stage = by_name.get("build", (None, None, []))[2]
check(any("rootfs.sh" in i for i in build_stage), "Dockerfile: the build stage must lay out /rootfs with deploy/image/rootfs.sh")
copies = [i for i in build_stage if i.startswith("COPY")]
check(copies[:1] == ["COPY Cargo.toml Cargo.lock ./"] and copies[-1:] == ["COPY . ."] and len(copies) == 3,
      "Dockerfile: the build stage copies Cargo.toml and Cargo.lock (and the stub script) before the sources, "
      f"so the dependencies are a layer of their own: {copies}")
with open(".dockerignore") as fh:
    ignored = fh.read().split()
for p in ("target/", ".git/", "deploy/compose/.env"):
    check(p in ignored, f".dockerignore: must leave out {p}")

# Nothing may name a registry image for the exporter: there is none.
for path in glob.glob("deploy/**/*", recursive=True):
    if os.path.isfile(path):
        with open(path, errors="replace") as fh:
            check("ghcr.io" not in fh.read(), f"{path}: names ghcr.io")

if errors:
    for e in errors:
        print(f"validate-deploy: error: {e}", file=sys.stderr)
    sys.exit(1)
print("validate-deploy: manifests, overlays, compose stack, Grafana provisioning and Dockerfile keep their promises",
      file=sys.stderr)
