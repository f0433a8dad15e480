#!/usr/bin/env python3
"""Writes fuzz/seeds/<target>/ from the repository's own test data (run from anywhere; idempotent).

Each target's input layout is described at the top of its fuzz_targets/*.rs.
"""
import base64
import gzip
import json
import pathlib
import shutil
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"


def write(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def decode_seeds():
    lines = (ROOT / "examples/audit.jsonl").read_text().splitlines()
    events = [json.loads(l) for l in lines if l.startswith("{")][:400]
    # A few distinct shapes: different verbs/resources, one with a requestObject.
    picked, seen = [], set()
    for e in events:
        key = (e.get("verb"), (e.get("objectRef") or {}).get("resource"), "requestObject" in e)
        if key not in seen:
            seen.add(key)
            picked.append(e)
        if len(picked) == 6:
            break
    ev = picked[0]
    one = json.dumps(ev)
    for i, e in enumerate(picked):
        write("decode", f"event-{i}", b"\x00" + json.dumps(e).encode())
    evlist = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": picked[:2] + [{"kind": 0}]}
    write("decode", "eventlist", b"\x00" + json.dumps(evlist).encode())
    write("decode", "array", b"\x00" + json.dumps(picked[:2]).encode())
    write("decode", "jsonlines", b"\x00" + (one + "\n" + json.dumps(picked[1]) + "\n").encode())
    write("decode", "wrapped-string", b"\x00" + json.dumps({"log": one, "stream": "stdout"}).encode())
    write("decode", "wrapped-object", b"\x02" + json.dumps({"payload": ev}).encode())
    eks = {"messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": "/aws/eks/prod-eks/cluster",
           "logStream": "kube-apiserver-audit-1", "subscriptionFilters": ["rampart"],
           "logEvents": [{"id": "1", "timestamp": 1794823200000, "message": one}]}
    write("decode", "eks-gzip-by-mode", b"\x04" + json.dumps(eks).encode())
    write("decode", "eks-gzip-raw", b"\x00" + gzip.compress(json.dumps(eks).encode(), mtime=0))
    control = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
               "logEvents": [{"id": "", "timestamp": 0, "message": "CWL CONTROL MESSAGE"}]}
    write("decode", "eks-control", b"\x00" + json.dumps(control).encode())
    rid = "/SUBSCRIPTIONS/0/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/PROD-AKS"
    aks = {"records": [
        {"category": "kube-apiserver", "resourceId": rid, "properties": {"log": "I1116 not an audit event"}},
        {"category": "kube-audit", "resourceId": rid, "properties": {"log": one, "stream": "stdout"}}]}
    write("decode", "aks", b"\x00" + json.dumps(aks).encode())
    gke = {"protoPayload": {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "authenticationInfo": {"principalEmail": "mallory@example.com"},
        "authorizationInfo": [{"granted": True, "permission": "io.k8s.core.v1.pods.exec.create"}],
        "methodName": "io.k8s.core.v1.pods.exec.create",
        "requestMetadata": {"callerIp": "81.2.69.142", "callerSuppliedUserAgent": "kubectl/v1.30.1"},
        "resourceName": "core/v1/namespaces/kube-system/pods/etcd-0/exec",
        "status": {"code": 7, "message": "forbidden"}, "request": {"command": ["sh"]}},
        "insertId": "c3f6", "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "prod-gke"}},
        "timestamp": "2026-11-16T10:00:00.000000Z", "operation": {"id": "0b8a"},
        "labels": {"authorization.k8s.io/decision": "allow"}}
    write("decode", "gke", b"\x00" + json.dumps(gke).encode())
    bad = [l for l in lines if not l.startswith("{")]
    write("decode", "malformed", b"\x00" + (bad[0] if bad else "not json").encode())
    # Every delivery form as the clouds document it (tests/data/cloud-forms), and Firehose around EKS.
    forms = ROOT / "tests/data/cloud-forms"
    for f in sorted(forms.glob("*.json*")):
        write("decode", "form-" + f.stem, b"\x00" + f.read_bytes())
    data = base64.b64encode(gzip.compress((forms / "eks-cloudwatch.json").read_bytes(), mtime=0)).decode()
    write("decode", "firehose-http", b"\x00" + json.dumps(
        {"requestId": "ed4acda5", "timestamp": 1794823200500, "records": [{"data": data}]}).encode())
    write("decode", "firehose-record", b"\x00" + json.dumps(
        {"recordId": "4954", "approximateArrivalTimestamp": 1794823200400, "data": data}).encode())
    trimmed = {k: v for k, v in ev.items() if k not in ("auditID", "stage", "level", "requestReceivedTimestamp", "stageTimestamp")}
    write("decode", "trimmed", b"\x00" + json.dumps(trimmed).encode())
    traces = sorted((ROOT / "tests/data/falco-k8s-audit/traces").glob("*.json"))[:4]
    for t in traces:
        write("decode", "falco-" + t.stem, b"\x00" + t.read_bytes())


def copy_seeds(target, paths):
    for p in paths:
        write(target, p.name, p.read_bytes())


def slack_seeds():
    payload = {"type": "block_actions", "user": {"id": "U1", "username": "alice", "name": "alice"},
               "actions": [{"type": "button", "action_id": "rampart_approve", "value": "d-1"}],
               "response_url": "https://hooks.slack.test/actions/1",
               "container": {"type": "message", "channel_id": "CSEC", "message_ts": "1700000000.000001"},
               "message": {"ts": "1700000000.000001", "blocks": []}}
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    write("slack_interaction", "approve", f"1800000000\nv0=00\n{body}")
    write("slack_interaction", "stale", f"1700000000\nv0=00\npayload=%7B%7D")


def gunzip_seeds():
    event = (ROOT / "examples/audit.jsonl").read_text().splitlines()[0].encode()
    write("gunzip", "event-raw", (4096).to_bytes(2, "little") + event)
    write("gunzip", "event-gzip", (4096).to_bytes(2, "little") + gzip.compress(event, mtime=0))
    write("gunzip", "bomb-small-limit", (16).to_bytes(2, "little") + gzip.compress(b"a" * 8192, mtime=0))


if __name__ == "__main__":
    shutil.rmtree(SEEDS, ignore_errors=True)
    decode_seeds()
    copy_seeds("config", [ROOT / "rampart.yaml", ROOT / "docs/local-kafka.yaml"])
    for overlay in ["kafka-consumer", "webhook-receiver"]:
        p = ROOT / f"deploy/kustomize/overlays/{overlay}/rampart.yaml"
        write("config", overlay + ".yaml", p.read_bytes())
    tests = sorted((ROOT / "playbooks").glob("*.tests.yaml"), key=lambda p: p.stat().st_size)[:6]
    tests += sorted((ROOT / "playbooks/falco").glob("*.tests.yaml"), key=lambda p: p.stat().st_size)[:3]
    copy_seeds("playbook_tests", tests)
    slack_seeds()
    gunzip_seeds()
    # Inputs a target once failed on stay seeds of that target.
    for p in sorted((ROOT / "tests/data/fuzz-regressions").glob("*-*")):
        target, name = p.name.split("-", 1)
        write(target, name, p.read_bytes())
