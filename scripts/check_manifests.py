"""Checks a rendered kustomize output (scripts/validate-deploy.sh calls it per overlay).

Always: splits the manifest into one file per built-in object (Prometheus Operator objects
have no schema to validate against) and checks the RBAC rampart ships: the responder's
ClusterRole must grant exactly the verbs the code uses.

With --overlay (a rampart deployment), also what keeps rampart's guarantees with several
replicas: a StatefulSet (no Deployment) whose state directory is a volumeClaimTemplate, not an
emptyDir; its headless Service; the POD_NAME downward-API env; optional Slack secret refs;
selectors of the Services and the PDB that match the pods; the overlay config's static
membership, playbook packs that the image or a mounted ConfigMap provides, mounted GeoIP
paths; and no ConfigMap carrying a (partial) copy of a shipped pack.

With --local-config PATH, writes the overlay's rampart.yaml with the image's and the mounts'
paths mapped onto this checkout (for `rampart check`) and prints `playbooks=N`, the number of
playbooks that config loads (0 without a playbooks section)."""
import argparse
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE_DIR = "/var/lib/rampart"
IMAGE_PACK = "/etc/rampart/playbooks"
IMAGE_FALCO_PACK = "/etc/rampart/playbooks/falco"
LOCAL_PACK = "/etc/rampart/local-playbooks"
# Where each ConfigMap-backed mount's files come from in this checkout (base/kustomization.yaml).
CONFIGMAP_SOURCES = {
    LOCAL_PACK: "deploy/kustomize/base/local-playbooks",
    "/etc/rampart/enrichers": "enrichers",
}

EXPECTED_RULES = {
    ("rbac.authorization.k8s.io", "clusterrolebindings"): {"get", "list", "patch", "delete"},
    ("rbac.authorization.k8s.io", "rolebindings"): {"get", "list", "patch", "delete"},
    ("events.k8s.io", "events"): {"create"},
}


def fail(where, message):
    sys.exit(f"check_manifests: {where}: {message}")


def check_rbac(docs, where):
    roles = 0
    for doc in docs:
        if doc["kind"] not in ("ClusterRole", "Role"):
            continue
        roles += 1
        granted = {}
        for rule in doc.get("rules", []):
            for group in rule.get("apiGroups", []):
                for res in rule.get("resources", []):
                    granted.setdefault((group, res), set()).update(rule.get("verbs", []))
        if granted != EXPECTED_RULES:
            fail(where, f"{doc['kind']} {doc['metadata']['name']} grants {granted}, expected exactly {EXPECTED_RULES}")
    if roles != 1:
        fail(where, f"expected exactly one Role/ClusterRole, found {roles}")


def image_copies():
    """The final stage's `COPY <repo path> <image path>` lines of deploy/Dockerfile."""
    copies = {}
    for line in open(os.path.join(ROOT, "deploy/Dockerfile")):
        words = line.split()
        if not words:
            continue
        if words[0].upper() == "FROM":
            copies = {}
        elif words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
            src, dest = words[-2], words[-1]
            copies[dest.rstrip("/")] = src.rstrip("/")
    return copies


def under(path, prefix):
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def the_statefulset(docs, where):
    deployments = [d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"]
    if deployments:
        fail(where, f"renders a Deployment ({', '.join(deployments)}): rampart runs as a StatefulSet so that each replica keeps its state claim")
    sets = [d for d in docs if d["kind"] == "StatefulSet"]
    if len(sets) != 1:
        fail(where, f"expected exactly one StatefulSet, found {len(sets)}")
    sts = sets[0]
    containers = [c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "rampart"]
    if len(containers) != 1:
        fail(where, "the StatefulSet has no container named rampart")
    return sts, containers[0]


def check_state_volume(sts, container, where):
    pod = sts["spec"]["template"]["spec"]
    if sts["spec"].get("podManagementPolicy") != "Parallel":
        fail(where, "StatefulSet podManagementPolicy must be Parallel (replicas do not wait for each other)")
    claims = {t["metadata"]["name"]: t for t in sts["spec"].get("volumeClaimTemplates", [])}
    state = claims.get("state")
    if state is None:
        fail(where, "StatefulSet has no volumeClaimTemplate named state")
    if state["spec"].get("accessModes") != ["ReadWriteOnce"]:
        fail(where, f"the state claim must be ReadWriteOnce, is {state['spec'].get('accessModes')}")
    if not state["spec"].get("resources", {}).get("requests", {}).get("storage"):
        fail(where, "the state claim requests no storage size")
    mounts = {m["mountPath"].rstrip("/"): m["name"] for m in container.get("volumeMounts", [])}
    if mounts.get(STATE_DIR) != "state":
        fail(where, f"{STATE_DIR} must be mounted from the state volumeClaimTemplate, is {mounts.get(STATE_DIR)!r}")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    if "state" in volumes:
        fail(where, f"a pod volume named state ({volumes['state']}) would shadow the state claim")
    for path, name in mounts.items():
        if "emptyDir" in volumes.get(name, {}) and (under(path, STATE_DIR) or under(STATE_DIR, path)):
            fail(where, f"emptyDir volume {name} at {path} holds state: it dies with the pod")


def check_env(container, where):
    env = {e["name"]: e for e in container.get("env", [])}
    field = env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    if field != "metadata.name":
        fail(where, "env POD_NAME must come from the downward API (fieldRef metadata.name): it is the Kafka static member id")
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"):
        ref = env.get(name, {}).get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            fail(where, f"env {name} must come from the rampart-slack secret")
        if ref.get("optional") is not True:
            fail(where, f"env {name}: secretKeyRef must be optional: true (rampart without Slack starts without the secret)")


def check_selectors(docs, sts, where):
    labels = sts["spec"]["template"]["metadata"].get("labels", {})
    if not matches(sts["spec"]["selector"].get("matchLabels", {}), labels):
        fail(where, "the StatefulSet's selector does not match its pod labels")
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    governing = services.get(sts["spec"].get("serviceName"))
    if governing is None:
        fail(where, f"serviceName {sts['spec'].get('serviceName')!r} names no Service in the render")
    if governing["spec"].get("clusterIP") != "None":
        fail(where, f"Service {governing['metadata']['name']} (the StatefulSet's serviceName) must be headless (clusterIP: None)")
    for svc in services.values():
        if not matches(svc["spec"].get("selector", {}), labels):
            fail(where, f"Service {svc['metadata']['name']} selects no rampart pod")
    for pdb in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        if not matches(pdb["spec"]["selector"].get("matchLabels", {}), labels):
            fail(where, f"PodDisruptionBudget {pdb['metadata']['name']} does not select the StatefulSet's pods")
    for mon in (d for d in docs if d["kind"] == "ServiceMonitor"):
        wanted = {e.get("port") for e in mon["spec"].get("endpoints", [])}
        scraped = [s["metadata"]["name"] for s in services.values()
                   if matches(mon["spec"]["selector"].get("matchLabels", {}), s["metadata"].get("labels", {}))
                   and any(p.get("name") in wanted for p in s["spec"].get("ports", []))]
        if len(scraped) != 1:
            fail(where, f"ServiceMonitor {mon['metadata']['name']} scrapes through {scraped}: exactly one Service, or each pod is scraped more than once")


CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


def check_references(docs, sts, where):
    """Every object in rampart's namespace; the pod's ConfigMaps and claims are in the render."""
    spaces = [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]
    if len(spaces) != 1:
        fail(where, f"expected one Namespace, found {spaces}")
    for d in docs:
        if d["kind"] not in CLUSTER_SCOPED and d["metadata"].get("namespace") != spaces[0]:
            fail(where, f"{d['kind']} {d['metadata']['name']} is in namespace {d['metadata'].get('namespace')!r}, not {spaces[0]} (set namespace: in the kustomization)")
    rendered = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for vol in sts["spec"]["template"]["spec"].get("volumes", []):
        if "configMap" in vol and ("ConfigMap", vol["configMap"]["name"]) not in rendered:
            fail(where, f"volume {vol['name']} mounts ConfigMap {vol['configMap']['name']}, which the render does not hold (a generated name without its hash?)")
        claim = vol.get("persistentVolumeClaim", {}).get("claimName")
        if claim and ("PersistentVolumeClaim", claim) not in rendered:
            fail(where, f"volume {vol['name']} mounts claim {claim}, which the render does not hold")


def shipped_playbooks():
    names = set()
    for d in (os.path.join(ROOT, "playbooks"), os.path.join(ROOT, "playbooks/falco")):
        names.update(f for f in os.listdir(d) if f.endswith(".rhai") or f.endswith(".tests.yaml"))
    return names


def check_configmaps(docs, where):
    shipped = shipped_playbooks()
    for cm in (d for d in docs if d["kind"] == "ConfigMap"):
        copies = sorted(set(cm.get("data", {})) & shipped)
        if copies:
            fail(where, f"ConfigMap {cm['metadata']['name']} carries a copy of shipped playbooks ({', '.join(copies)}): the image carries both packs whole; the ConfigMap is for your own")


def overlay_config(docs, where):
    cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("rampart-config")]
    if len(cms) != 1 or "rampart.yaml" not in cms[0].get("data", {}):
        fail(where, "expected one rampart-config ConfigMap with rampart.yaml")
    return yaml.safe_load(cms[0]["data"]["rampart.yaml"])


def mounts_of(sts, container):
    """mountPath -> the pod volume (or {'claim': name} for a volumeClaimTemplate)."""
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"].get("volumes", [])}
    claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
    out = {}
    for m in container.get("volumeMounts", []):
        vol = volumes.get(m["name"]) or ({"claim": m["name"]} if m["name"] in claims else {})
        out[m["mountPath"].rstrip("/")] = dict(vol, readOnly=m.get("readOnly", False))
    return out


def repo_dir_for(path, sts, container, where):
    """Where an image or ConfigMap path's files come from in this checkout, or fail."""
    mounts = mounts_of(sts, container)
    for dest, src in sorted(image_copies().items(), key=lambda kv: -len(kv[0])):
        if under(path, dest):
            hiding = [m for m in mounts if under(path, m) or under(m, path)]
            if hiding:
                fail(where, f"{path} is in the image, but the volume mounted at {hiding[0]} hides (part of) it")
            return os.path.join(ROOT, src, os.path.relpath(path, dest))
    for mount, src in CONFIGMAP_SOURCES.items():
        if under(path, mount) and "configMap" in mounts.get(mount, {}):
            return os.path.join(ROOT, src, os.path.relpath(path, mount))
    fail(where, f"{path} is neither copied into the image (deploy/Dockerfile) nor a mounted ConfigMap")


def rhai_count(d):
    return len([f for f in os.listdir(d) if f.endswith(".rhai")])


def check_config(cfg, sts, container, where):
    """Checks the overlay's rampart.yaml; returns the checkout folder of each playbook path."""
    kafka = (cfg.get("sources") or {}).get("kafka")
    if kafka is not None and kafka.get("group_instance_id") != "${POD_NAME}":
        fail(where, "sources.kafka.group_instance_id must be ${POD_NAME} (static membership: the pod's stable name)")
    if (cfg.get("state") or {}).get("dir", "").rstrip("/") != STATE_DIR:
        fail(where, f"state.dir must be {STATE_DIR}, where the state claim is mounted")
    pb = cfg.get("playbooks")
    if kafka is not None:
        if pb is None:
            fail(where, "consumes the audit topic but loads no playbooks")
        packs = [p.rstrip("/") for p in pb.get("packs", [])]
        if pb.get("dir", "").rstrip("/") != IMAGE_PACK:
            fail(where, f"playbooks.dir must be {IMAGE_PACK}, the default pack as the image carries it")
        for want in (IMAGE_FALCO_PACK, LOCAL_PACK):
            if want not in packs:
                fail(where, f"playbooks.packs must include {want}")
    dirs = {}
    if pb is not None:
        for path in [pb.get("dir", "playbooks")] + list(pb.get("packs", [])):
            local = repo_dir_for(path.rstrip("/"), sts, container, where)
            if not os.path.isdir(local):
                fail(where, f"playbook path {path}: {os.path.relpath(local, ROOT)} does not exist in the repository")
            if under(path, IMAGE_PACK) and not rhai_count(local):
                fail(where, f"playbook path {path}: {os.path.relpath(local, ROOT)} holds no .rhai playbook")
            dirs[path.rstrip("/")] = local
    mounts = mounts_of(sts, container)
    geoip = (((cfg.get("enrich") or {}).get("network") or {}).get("geoip") or {})
    for key in ("city", "asn", "anonymous"):
        if geoip.get(key):
            path = geoip[key]
            mount = next((m for m in mounts if under(path, m)), None)
            if mount is None or not (mounts[mount].get("persistentVolumeClaim") or mounts[mount].get("claim")):
                fail(where, f"enrich.network.geoip.{key} ({path}) is on no mounted claim")
            if mount != STATE_DIR and not mounts[mount]["readOnly"]:
                fail(where, f"the GeoIP mount {mount} must be readOnly")
    return dirs


def map_paths(value, mapping):
    if isinstance(value, dict):
        return {k: map_paths(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [map_paths(v, mapping) for v in value]
    if isinstance(value, str):
        for prefix, local in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
            if under(value, prefix):
                return os.path.normpath(os.path.join(local, os.path.relpath(value, prefix)))
    return value


def write_local_config(cfg, dirs, sts, container, path):
    """The config with every mount and image path mapped onto the checkout or scratch."""
    scratch = os.path.splitext(path)[0] + ".scratch"
    mapping = {}
    for mount in mounts_of(sts, container):
        mapping[mount] = os.path.join(scratch, mount.strip("/").replace("/", "_"))
        os.makedirs(mapping[mount], exist_ok=True)
    for mount, src in CONFIGMAP_SOURCES.items():
        mapping[mount] = os.path.join(ROOT, src)
    for dest, src in image_copies().items():
        mapping[dest] = os.path.join(ROOT, src)
    with open(path, "w") as f:
        yaml.safe_dump(map_paths(cfg, mapping), f, sort_keys=False)
    print(f"playbooks={sum(rhai_count(d) for d in dirs.values())}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rendered")
    ap.add_argument("outdir")
    ap.add_argument("--overlay", action="store_true", help="the render is a rampart deployment: check all of it")
    ap.add_argument("--local-config", help="write the overlay config mapped onto this checkout here")
    args = ap.parse_args()
    where = os.path.basename(args.rendered)
    os.makedirs(args.outdir, exist_ok=True)
    docs = [d for d in yaml.safe_load_all(open(args.rendered)) if d]
    for i, doc in enumerate(docs):
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue
        with open(os.path.join(args.outdir, f"{i:02d}-{doc['kind'].lower()}.yaml"), "w") as f:
            yaml.safe_dump(doc, f)
    check_rbac(docs, where)
    if not args.overlay:
        return
    sts, container = the_statefulset(docs, where)
    check_state_volume(sts, container, where)
    check_env(container, where)
    check_selectors(docs, sts, where)
    check_references(docs, sts, where)
    check_configmaps(docs, where)
    cfg = overlay_config(docs, where)
    dirs = check_config(cfg, sts, container, where)
    if args.local_config:
        write_local_config(cfg, dirs, sts, container, args.local_config)


if __name__ == "__main__":
    main()
