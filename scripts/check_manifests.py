"""Splits a rendered manifest into one file per built-in object (Prometheus Operator
objects have no schema to validate against) and checks the RBAC rampart ships:
the responder's ClusterRole must grant exactly the verbs the code uses."""
import os
import sys

import yaml

EXPECTED_RULES = {
    ("rbac.authorization.k8s.io", "clusterrolebindings"): {"get", "list", "patch", "delete"},
    ("rbac.authorization.k8s.io", "rolebindings"): {"get", "list", "patch", "delete"},
    ("events.k8s.io", "events"): {"create"},
}

rendered, outdir = sys.argv[1], sys.argv[2]
os.makedirs(outdir, exist_ok=True)
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
roles = 0
for i, doc in enumerate(docs):
    if doc["apiVersion"].startswith("monitoring.coreos.com/"):
        continue
    with open(os.path.join(outdir, f"{i:02d}-{doc['kind'].lower()}.yaml"), "w") as f:
        yaml.safe_dump(doc, f)
    if doc["kind"] in ("ClusterRole", "Role"):
        roles += 1
        granted = {}
        for rule in doc.get("rules", []):
            for group in rule.get("apiGroups", []):
                for res in rule.get("resources", []):
                    granted.setdefault((group, res), set()).update(rule.get("verbs", []))
        if granted != EXPECTED_RULES:
            sys.exit(f"{doc['kind']} {doc['metadata']['name']} grants {granted}, expected exactly {EXPECTED_RULES}")
if roles != 1:
    sys.exit(f"expected exactly one Role/ClusterRole, found {roles}")
