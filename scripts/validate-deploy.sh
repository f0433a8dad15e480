#!/usr/bin/env bash
# Renders every kustomize overlay under deploy/ and validates the output offline
# against the Kubernetes schemas (kubernetes-validate), then checks that the
# rendered RBAC grants exactly the verbs rampart's responders use.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v kubectl >/dev/null 2>&1; then
  source scripts/deps.sh
  ensure_apt kubernetes-client
fi
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  python3 -m pip install --quiet kubernetes-validate
fi
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for overlay in deploy/kustomize/overlays/*/; do
  name=$(basename "$overlay")
  kubectl kustomize --load-restrictor LoadRestrictionsNone "$overlay" > "$out/$name.yaml"
  python3 scripts/check_manifests.py "$out/$name.yaml" "$out/$name"
  kubernetes-validate --strict --quiet "$out/$name"/*.yaml
  echo "deploy: overlay $name renders and validates ($(ls "$out/$name" | wc -l) objects)"
done
# The standalone RBAC (for running the responder out of cluster) grants the same rules.
kubectl kustomize deploy/rbac > "$out/rbac.yaml"
python3 scripts/check_manifests.py "$out/rbac.yaml" "$out/rbac"
kubernetes-validate --strict --quiet "$out/rbac"/*.yaml
echo "deploy: deploy/rbac renders and validates"
