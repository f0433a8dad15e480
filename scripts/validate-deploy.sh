#!/usr/bin/env bash
# Renders every kustomize overlay under deploy/ and validates the output offline
# against the Kubernetes schemas (kubernetes-validate), checks that the rendered
# RBAC grants exactly the verbs rampart's responders use, and checks what keeps
# rampart's guarantees with several replicas (scripts/check_manifests.py --overlay:
# StatefulSet with a state claim per replica, POD_NAME, optional Slack secrets,
# static membership, both packs from the image). When a rampart binary is at hand,
# each overlay's rampart.yaml must also pass `rampart check` with its paths mapped
# onto this checkout.
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

# The binary for `rampart check`: RAMPART_BIN, else a build in the target dir (scripts/test.sh
# runs this script after clippy and before `cargo test`, so on a fresh CI clone there may be
# none yet), else one on PATH.
rampart=""
for candidate in "${RAMPART_BIN:-}" "${CARGO_TARGET_DIR:-target}/debug/rampart" target/debug/rampart \
  "${CARGO_TARGET_DIR:-target}/release/rampart" target/release/rampart "$(command -v rampart || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    rampart=$candidate
    break
  fi
done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for overlay in deploy/kustomize/overlays/*/; do
  name=$(basename "$overlay")
  kubectl kustomize --load-restrictor LoadRestrictionsNone "$overlay" > "$out/$name.yaml"
  # Loud on any failure: the script names the overlay and what is wrong.
  count=$(python3 scripts/check_manifests.py --overlay --local-config "$out/$name.rampart.yaml" \
    "$out/$name.yaml" "$out/$name")
  kubernetes-validate --strict --quiet "$out/$name"/*.yaml
  echo "deploy: overlay $name renders, validates and keeps state per replica ($(ls "$out/$name" | wc -l) objects)"
  if [ -z "$rampart" ]; then
    echo "deploy: overlay $name: no rampart binary (target/debug, target/release, PATH); rampart check skipped"
    continue
  fi
  # Stand-ins for what the pod gets from the downward API and its secrets (not real values).
  if ! report=$(env -u RAMPART_LOG POD_NAME=rampart-0 KAFKA_PASSWORD=not-a-real-password \
    SLACK_BOT_TOKEN=xoxb-not-a-real-token SLACK_SIGNING_SECRET=not-a-real-signing-secret \
    "$rampart" check -c "$out/$name.rampart.yaml" 2>&1); then
    echo "deploy: overlay $name: its rampart.yaml fails \`$rampart check\`:" >&2
    echo "$report" >&2
    exit 1
  fi
  want=${count#playbooks=}
  if [ "$want" != 0 ] && ! grep -q "; $want playbooks in " <<<"$report"; then
    echo "deploy: overlay $name: expected $want playbooks (both packs and the local one), rampart check said:" >&2
    echo "$report" >&2
    exit 1
  fi
  if [ "$want" = 0 ]; then want="no"; fi
  echo "deploy: overlay $name: rampart check ok with $rampart ($want playbooks)"
done
# The standalone RBAC (for running the responder out of cluster) grants the same rules.
kubectl kustomize deploy/rbac > "$out/rbac.yaml"
python3 scripts/check_manifests.py "$out/rbac.yaml" "$out/rbac"
kubernetes-validate --strict --quiet "$out/rbac"/*.yaml
echo "deploy: deploy/rbac renders and validates"
