#!/usr/bin/env bash
# Validates deploy/ without a cluster, a registry or pulled images:
#
# - deploy/kubernetes/*.yaml against the Kubernetes JSON schemas, offline, with the
#   `kubernetes-validate` package from PyPI (strict: unknown fields are errors), for the oldest
#   and the newest Kubernetes versions we claim; kustomization.yaml (not a Kubernetes object)
#   by checking it lists exactly the manifests that exist;
# - the manifests' and the compose file's promises: the same image, port, probes, host mounts
#   and capabilities everywhere, as the README explains them;
# - deploy/compose/: YAML that loads, every file it mounts exists, the services it names
#   reach each other on the ports they listen on; `promtool check config` on prometheus.yml
#   when promtool is installed (.ci/prometheus-up.sh), `docker compose config` when the plugin is;
# - deploy/grafana/: the provisioning points at the mounted dashboards, the dashboard JSON
#   loads and every panel has PromQL (tests/dashboard.rs runs each query against a real
#   Prometheus);
# - deploy/prometheus-operator/ (optional overlay: the cAdvisor page and a ServiceMonitor that
#   scrapes it as the kubelet's cAdvisor job): built with kubectl's kustomize when kubectl is
#   installed, its Kubernetes objects validated as above; the ServiceMonitor, a custom resource
#   the Kubernetes schemas do not have, against the Prometheus Operator's CRD schema as the npm
#   package @kubernetes-models/prometheus-operator ships it (compiled from the operator's CRDs):
#   its validator (types, enums, patterns, required fields) and its TypeScript types, with which
#   `tsc` rejects any field the schema does not have (what --strict does for the others); and
#   what it must do: job="kubelet", metrics_path="/metrics/cadvisor", node, honorLabels, the
#   exporter's own pod labels dropped, the Service it selects.
#
# Needs python3 with venv (Debian: python3-venv), node and npm, and network access to PyPI and
# npm on the first run; the virtualenv and the npm packages are cached under $CE_CACHE_DIR
# (default ~/.cache/container-exporter).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'validate-deploy: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

KV_VERSION=1.37.0
# The oldest Kubernetes minor still widely run, and the newest the package knows.
K8S_VERSIONS=(1.29 1.37)

cache="${CE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/container-exporter}"
venv="$cache/validate-deploy-venv"
if ! "$venv/bin/python" -c "import yaml, kubernetes_validate" 2>/dev/null ||
   [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null)" != "$KV_VERSION" ]; then
    command -v python3 >/dev/null || die "python3 is missing (Debian: apt-get install python3 python3-venv)"
    log "creating $venv (kubernetes-validate $KV_VERSION, PyYAML)"
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KV_VERSION" PyYAML
fi
py="$venv/bin/python"

# --- Kubernetes schemas ----------------------------------------------------------------------
manifests=()
for f in deploy/kubernetes/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
[ "${#manifests[@]}" -gt 0 ] || die "no manifests in deploy/kubernetes/"
for v in "${K8S_VERSIONS[@]}"; do
    out=$("$venv/bin/kubernetes-validate" --strict -k "$v" "${manifests[@]}" 2>&1) || {
        printf '%s\n' "$out" >&2
        die "deploy/kubernetes/ does not validate against Kubernetes $v"
    }
    # An unknown kind or apiVersion is only a warning to kubernetes-validate: not here.
    if grep -v '^INFO .* passed for resource ' <<<"$out" | grep -q .; then
        printf '%s\n' "$out" >&2
        die "kubernetes-validate had warnings for Kubernetes $v"
    fi
    log "Kubernetes $v schemas: ${#manifests[@]} manifests valid"
done

# --- deploy/prometheus-operator/: the overlay and its ServiceMonitor ---------------------------
# Pinned: the models package (the operator's CRD schemas, compiled) and the TypeScript compiler
# that checks the manifest against its types. Newer operator versions only add fields.
SM_MODELS_VERSION=6.0.0
SM_TS_VERSION=5.9.3
built=$(mktemp -d)
trap 'rm -rf "$built"' EXIT
if command -v kubectl >/dev/null 2>&1; then
    kubectl kustomize deploy/kubernetes/ >"$built/base.yaml" ||
        die "kustomize cannot build deploy/kubernetes/"
    kubectl kustomize deploy/prometheus-operator/ >"$built/overlay.yaml" ||
        die "kustomize cannot build deploy/prometheus-operator/"
    # The overlay's Kubernetes objects (the patched DaemonSet among them) against the schemas.
    "$py" - "$built/overlay.yaml" "$built/overlay-core.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
yaml.safe_dump_all([d for d in docs if d["kind"] != "ServiceMonitor"], open(sys.argv[2], "w"))
PY
    for v in "${K8S_VERSIONS[@]}"; do
        out=$("$venv/bin/kubernetes-validate" --strict -k "$v" "$built/overlay-core.yaml" 2>&1) || {
            printf '%s\n' "$out" >&2
            die "deploy/prometheus-operator/ builds objects that do not validate against Kubernetes $v"
        }
    done
    log "deploy/prometheus-operator/ builds, and its Kubernetes objects are valid"
else
    log "kubectl is not installed: the kustomizations are not built, only their files checked"
fi

command -v node >/dev/null && command -v npm >/dev/null ||
    die "node and npm are missing (Debian: apt-get install nodejs npm)"
smc="$cache/servicemonitor-check"
want="$SM_MODELS_VERSION $SM_TS_VERSION"
if [ "$(cat "$smc/versions" 2>/dev/null)" != "$want" ]; then
    log "installing @kubernetes-models/prometheus-operator $SM_MODELS_VERSION and typescript $SM_TS_VERSION in $smc"
    rm -rf "$smc"
    mkdir -p "$smc"
    printf '{"private": true, "type": "module"}\n' >"$smc/package.json"
    (cd "$smc" && npm install --no-audit --no-fund --no-package-lock --loglevel=error \
        "@kubernetes-models/prometheus-operator@$SM_MODELS_VERSION" "typescript@$SM_TS_VERSION") >&2 ||
        die "npm could not install the ServiceMonitor schema packages"
    echo "$want" >"$smc/versions"
fi
"$py" - deploy/prometheus-operator/servicemonitor.yaml "$smc" <<'PY'
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
assert len(docs) == 1 and docs[0]["kind"] == "ServiceMonitor", "servicemonitor.yaml: one ServiceMonitor"
body = json.dumps(docs[0], indent=1)
with open(f"{sys.argv[2]}/check.ts", "w") as f:
    f.write('import type { IServiceMonitor } from '
            '"@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";\n'
            f"export const monitor: IServiceMonitor = {body};\n")
with open(f"{sys.argv[2]}/servicemonitor.json", "w") as f:
    f.write(body)
PY
cat >"$smc/validate.mjs" <<'JS'
import { readFileSync } from "node:fs";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
try {
    new ServiceMonitor(JSON.parse(readFileSync(process.argv[2], "utf8"))).validate();
} catch (e) {
    console.error(e.message ?? e);
    process.exit(1);
}
JS
(cd "$smc" && node validate.mjs servicemonitor.json) >&2 ||
    die "deploy/prometheus-operator/servicemonitor.yaml does not validate against the ServiceMonitor schema"
(cd "$smc" && node_modules/.bin/tsc --noEmit --strict --module nodenext --moduleResolution nodenext \
    --target es2022 check.ts) >&2 ||
    die "deploy/prometheus-operator/servicemonitor.yaml has fields the ServiceMonitor schema does not (tsc above; line numbers are of $smc/check.ts)"
log "ServiceMonitor valid against the operator's schema (@kubernetes-models/prometheus-operator $SM_MODELS_VERSION)"

# --- Cross-file checks -----------------------------------------------------------------------
"$py" - <<'PY'
import glob, json, os, re, sys
import yaml

errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]

# Kubernetes ------------------------------------------------------------------------------------
kdir = "deploy/kubernetes"
kust = load_all(f"{kdir}/kustomization.yaml")[0]
check(kust.get("kind") == "Kustomization", "kustomization.yaml: kind is not Kustomization")
listed = kust.get("resources", [])
for r in listed:
    check(os.path.isfile(os.path.join(kdir, r)), f"kustomization.yaml lists {r}, which does not exist")
present = sorted(os.path.basename(p) for p in glob.glob(f"{kdir}/*.yaml") if not p.endswith("kustomization.yaml"))
for p in present:
    check(p in listed, f"{kdir}/{p} is not listed in kustomization.yaml resources")
check(len(listed) == len(set(listed)), "kustomization.yaml lists a resource twice")

objs = {}
for p in present:
    for d in load_all(f"{kdir}/{p}"):
        objs[(d["kind"], d["metadata"]["name"])] = d
        if d["kind"] != "Namespace":
            check(d["metadata"].get("namespace") == kust.get("namespace"),
                  f"{p}: {d['kind']} is not in namespace {kust.get('namespace')}")

ds = objs.get(("DaemonSet", "container-exporter"))
svc = objs.get(("Service", "container-exporter"))
sa = objs.get(("ServiceAccount", "container-exporter"))
check(ds is not None, "no DaemonSet container-exporter")
check(svc is not None, "no Service container-exporter")
check(sa is not None and sa.get("automountServiceAccountToken") is False,
      "the ServiceAccount must exist with automountServiceAccountToken: false")
check(("Namespace", kust.get("namespace")) in objs, "the namespace is not created by a manifest")
if ds:
    pod = ds["spec"]["template"]["spec"]
    c = pod["containers"][0]
    sc = c.get("securityContext", {})
    env = {e["name"]: e for e in c.get("env", [])}
    check(pod.get("hostPID") is True, "DaemonSet: hostPID must be true (cgroup.procs pids are per PID namespace)")
    check(pod.get("serviceAccountName") == "container-exporter", "DaemonSet: serviceAccountName")
    check(pod.get("automountServiceAccountToken") is False, "DaemonSet: automountServiceAccountToken must be false")
    check({"operator": "Exists"} in pod.get("tolerations", []), "DaemonSet: must tolerate every taint")
    check(c["image"] == "container-exporter:latest" and c.get("imagePullPolicy") == "IfNotPresent",
          "DaemonSet: image must be container-exporter:latest, IfNotPresent")
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
    labels = ds["spec"]["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in ds["spec"]["selector"]["matchLabels"].items()),
          "DaemonSet: selector does not match the pod labels")
    if svc:
        check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
              "Service: selector does not match the DaemonSet's pods")
        sp = svc["spec"]["ports"][0]
        check(sp["port"] == 9464 and sp.get("targetPort") in ("metrics", 9464), "Service: port 9464 -> metrics")
        ann = svc["metadata"].get("annotations", {})
        check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9464",
              "Service: prometheus.io/scrape and prometheus.io/port annotations")

# The Prometheus Operator overlay -----------------------------------------------------------------
odir = "deploy/prometheus-operator"
okust = load_all(f"{odir}/kustomization.yaml")[0]
check(okust.get("kind") == "Kustomization", f"{odir}/kustomization.yaml: kind is not Kustomization")
check(okust.get("resources") == ["../kubernetes", "servicemonitor.yaml"],
      f"{odir}/kustomization.yaml: resources must be ../kubernetes and servicemonitor.yaml")
opatches = [p.get("path") for p in okust.get("patches", [])]
check(opatches == ["cadvisor-names.yaml"], f"{odir}/kustomization.yaml: the one patch is cadvisor-names.yaml")
present_o = sorted(os.path.basename(p) for p in glob.glob(f"{odir}/*.yaml"))
check(present_o == sorted(["kustomization.yaml", "servicemonitor.yaml", "cadvisor-names.yaml"]),
      f"{odir}: unexpected files {present_o}")
patch = load_all(f"{odir}/cadvisor-names.yaml")[0]
check(patch["kind"] == "DaemonSet" and ds is not None and patch["metadata"]["name"] == ds["metadata"]["name"],
      f"{odir}/cadvisor-names.yaml must patch the DaemonSet")
pc = patch["spec"]["template"]["spec"]["containers"]
check(len(pc) == 1 and ds is not None and pc[0]["name"] == ds["spec"]["template"]["spec"]["containers"][0]["name"]
      and {"name": "CONTAINER_EXPORTER_PROMETHEUS_NAMES", "value": "cadvisor"} in pc[0].get("env", []),
      f"{odir}/cadvisor-names.yaml must set CONTAINER_EXPORTER_PROMETHEUS_NAMES=cadvisor on the exporter's container")
sm = load_all(f"{odir}/servicemonitor.yaml")[0]
smspec = sm["spec"]
if svc:
    check(sm["metadata"]["namespace"] == svc["metadata"]["namespace"], "ServiceMonitor: not in the Service's namespace")
    check(smspec.get("namespaceSelector", {}).get("matchNames") == [svc["metadata"]["namespace"]],
          "ServiceMonitor: namespaceSelector must name the Service's namespace")
    check(all(svc["metadata"].get("labels", {}).get(k) == v for k, v in smspec["selector"]["matchLabels"].items()),
          "ServiceMonitor: selector does not match the Service's labels")
eps = smspec.get("endpoints", [])
check(len(eps) == 1, "ServiceMonitor: one endpoint")
ep = eps[0] if eps else {}
if svc:
    check(ep.get("port") == svc["spec"]["ports"][0]["name"], "ServiceMonitor: endpoint port must be the Service's port name")
check(ep.get("path") == "/metrics", "ServiceMonitor: the page is at /metrics")
check(ep.get("honorLabels") is True, "ServiceMonitor: honorLabels must be true (the page's namespace, pod, container win)")
rel = ep.get("relabelings", [])
def sets(label, value):
    return any(r.get("targetLabel") == label and r.get("action", "replace").lower() == "replace"
               and not r.get("sourceLabels") and r.get("replacement") == value for r in rel)
check(sets("job", "kubelet"), 'ServiceMonitor: must set job="kubelet"')
check(sets("metrics_path", "/metrics/cadvisor"), 'ServiceMonitor: must set metrics_path="/metrics/cadvisor"')
check(any(r.get("targetLabel") == "node" and r.get("sourceLabels") == ["__meta_kubernetes_pod_node_name"]
          for r in rel), "ServiceMonitor: node must come from __meta_kubernetes_pod_node_name")
dropped = [r.get("regex", "") for r in rel if r.get("action", "").lower() == "labeldrop"]
for label in ("namespace", "pod", "container"):
    check(any(re.fullmatch(rx, label) for rx in dropped),
          f"ServiceMonitor: the target's {label} label (the exporter's own pod) must be dropped")
for label in ("job", "metrics_path", "node", "instance", "service", "endpoint"):
    check(not any(re.fullmatch(rx, label) for rx in dropped), f"ServiceMonitor: must not drop {label}")
for r in ep.get("metricRelabelings", []):
    check(r.get("action", "").lower() == "drop", "ServiceMonitor: metricRelabelings only drop")

# Compose ---------------------------------------------------------------------------------------
cdir = "deploy/compose"
compose = load_all(f"{cdir}/compose.yaml")[0]
services = compose.get("services", {})
for s in ("container-exporter", "otel-collector", "prometheus", "grafana"):
    check(s in services, f"compose.yaml: no service {s}")

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
check(exp.get("image") == "container-exporter:latest", "compose.yaml: the exporter's image must be container-exporter:latest")
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
ds_uids = set()
for f in dsfiles:
    for d in load_all(f)[0].get("datasources", []):
        ds_uids.add(d.get("uid"))
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

# Nothing may name a registry image for the exporter: there is none.
for path in glob.glob("deploy/**/*", recursive=True):
    if os.path.isfile(path):
        with open(path, errors="replace") as fh:
            check("ghcr.io" not in fh.read(), f"{path}: names ghcr.io")

if errors:
    for e in errors:
        print(f"validate-deploy: error: {e}", file=sys.stderr)
    sys.exit(1)
print("validate-deploy: manifests, compose stack and Grafana provisioning agree", file=sys.stderr)
PY

# --- Tools, where installed ------------------------------------------------------------------
if command -v promtool >/dev/null 2>&1; then
    promtool check config deploy/compose/prometheus.yml >&2 || die "promtool rejects deploy/compose/prometheus.yml"
else
    log "promtool not installed (.ci/prometheus-up.sh installs it): prometheus.yml checked structurally only"
fi
if docker compose version >/dev/null 2>&1; then
    docker compose -f deploy/compose/compose.yaml config -q || die "docker compose rejects deploy/compose/compose.yaml"
    log "docker compose config: ok"
else
    log "the docker compose plugin is not installed: compose.yaml checked structurally only"
fi
log "ok"
