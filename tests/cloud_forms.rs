//! EKS, AKS and GKE audit forms decode into the same events, and a playbook reaches the same verdict on the same action in all four forms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rampart::config::PlaybooksConfig;
use rampart::enrich::Enricher;
use rampart::event::{decode_record, AuditEvent, ClusterResolver};
use rampart::playbook::{load_dir, Ev};
use rampart::state::MemoryStore;
use serde_json::{json, Value};

/// An unknown human binds cluster-admin: the raw audit.k8s.io Event.
fn raw_event() -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": "0b8a4c1e-6f2d-4b1a-9a0e-1f2e3d4c5b6a", "stage": "ResponseComplete",
        "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "verb": "create",
        "user": {"username": "mallory@example.com", "groups": ["system:authenticated"]},
        "sourceIPs": ["81.2.69.142"], "userAgent": "kubectl/v1.30.1 (linux/amd64) kubernetes/7c3a3d2",
        "objectRef": {"resource": "clusterrolebindings", "name": "debug-admin", "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": request_object(),
        "requestReceivedTimestamp": "2026-11-16T10:00:00.000000Z", "stageTimestamp": "2026-11-16T10:00:00.004000Z",
        "annotations": {"authorization.k8s.io/decision": "allow"}
    })
}

fn request_object() -> Value {
    json!({"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "debug-admin"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
           "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "mallory@example.com"}]})
}

/// EKS: a gzip'd CloudWatch Logs subscription message, as Firehose/Kinesis deliver it.
fn eks() -> Vec<u8> {
    let envelope = json!({
        "messageType": "DATA_MESSAGE", "owner": "111122223333",
        "logGroup": "/aws/eks/prod-eks/cluster", "logStream": "kube-apiserver-audit-5f2c0e",
        "subscriptionFilters": ["rampart"],
        "logEvents": [{"id": "37811520345678901234567890123456789012345678901234567890", "timestamp": 1794823200000_i64, "message": raw_event().to_string()}]
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(envelope.to_string().as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// AKS: Azure diagnostic records from Event Hubs, with a non-audit category mixed in.
fn aks() -> Vec<u8> {
    json!({"records": [
        {"time": "2026-11-16T10:00:00.0050000Z", "category": "kube-apiserver", "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
         "resourceId": "/SUBSCRIPTIONS/0000/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/PROD-AKS",
         "properties": {"log": "I1116 10:00:00.005 1 controller.go:42] not an audit event", "stream": "stderr"}},
        {"time": "2026-11-16T10:00:00.0050000Z", "category": "kube-audit", "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
         "resourceId": "/SUBSCRIPTIONS/0000/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/PROD-AKS",
         "properties": {"log": raw_event().to_string(), "stream": "stdout", "pod": "kube-apiserver-7d9f8c6b5-abcde"}}
    ]})
    .to_string()
    .into_bytes()
}

/// GKE: a Cloud Logging entry with a Kubernetes AuditLog protoPayload.
fn gke() -> Vec<u8> {
    json!({
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": "mallory@example.com"},
            "authorizationInfo": [{"granted": true, "permission": "io.k8s.authorization.rbac.v1.clusterrolebindings.create",
                                   "resource": "rbac.authorization.k8s.io/v1/clusterrolebindings/debug-admin"}],
            "methodName": "io.k8s.authorization.rbac.v1.clusterrolebindings.create",
            "requestMetadata": {"callerIp": "81.2.69.142", "callerSuppliedUserAgent": "kubectl/v1.30.1 (linux/amd64) kubernetes/7c3a3d2"},
            "resourceName": "rbac.authorization.k8s.io/v1/clusterrolebindings/debug-admin",
            "serviceName": "k8s.io",
            "status": {"code": 0},
            "request": request_object(),
            "response": request_object()
        },
        "insertId": "c3f6b2a1-0d3e-4a9b-8b7c-6d5e4f3a2b1c",
        "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "prod-gke", "location": "europe-west1", "project_id": "acme-prod"}},
        "timestamp": "2026-11-16T10:00:00.000000Z", "receiveTimestamp": "2026-11-16T10:00:00.412345Z",
        "severity": "NOTICE", "logName": "projects/acme-prod/logs/cloudaudit.googleapis.com%2Factivity",
        "operation": {"id": "0b8a4c1e-6f2d-4b1a-9a0e-1f2e3d4c5b6a", "producer": "k8s.io", "first": true, "last": true},
        "labels": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""}
    })
    .to_string()
    .into_bytes()
}

fn one(bytes: &[u8]) -> AuditEvent {
    let mut d = decode_record(bytes, &Default::default());
    assert!(d.failures.is_empty(), "{:?}", d.failures);
    assert_eq!(d.events.len(), 1);
    let mut ev = d.events.remove(0);
    let resolver = ClusterResolver::new(&Default::default());
    ev.provenance.cluster = resolver.resolve(&None, &ev);
    ev
}

#[test]
fn each_cloud_form_decodes_to_the_event_with_its_cluster() {
    for (form, bytes, cluster) in [
        ("eks", eks(), "prod-eks"),
        ("aks", aks(), "prod-aks"),
        ("gke", gke(), "prod-gke"),
    ] {
        let ev = one(&bytes);
        let o = ev.object_ref.clone().unwrap();
        assert_eq!(ev.verb, "create", "{form}");
        assert_eq!(ev.user.username, "mallory@example.com", "{form}");
        assert_eq!(ev.source_ips, ["81.2.69.142"], "{form}");
        assert_eq!(o.resource.as_deref(), Some("clusterrolebindings"), "{form}");
        assert_eq!(o.name.as_deref(), Some("debug-admin"), "{form}");
        assert_eq!(
            o.api_group.as_deref(),
            Some("rbac.authorization.k8s.io"),
            "{form}"
        );
        assert_eq!(
            ev.audit_id, "0b8a4c1e-6f2d-4b1a-9a0e-1f2e3d4c5b6a",
            "{form}"
        );
        assert!(ev.request_object.is_some(), "{form}");
        assert_eq!(ev.provenance.cluster, cluster, "{form}");
        assert!(
            ev.response_code().is_some_and(|c| (200..300).contains(&c)),
            "{form}"
        );
    }
    let g = one(&gke());
    assert_eq!(
        g.request_uri,
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/debug-admin"
    );
    assert_eq!(g.annotations["authorization.k8s.io/decision"], "allow");
}

#[test]
fn gke_maps_namespaces_subresources_and_denials() {
    let entry = json!({
        "protoPayload": {"methodName": "io.k8s.core.v1.pods.exec.create", "resourceName": "core/v1/namespaces/kube-system/pods/etcd-0/exec",
                         "authenticationInfo": {"principalEmail": "system:serviceaccount:ci:deployer"},
                         "authorizationInfo": [{"granted": false}], "status": {"code": 7, "message": "forbidden"},
                         "requestMetadata": {"callerIp": "10.0.0.9"}},
        "insertId": "x1", "timestamp": "2026-11-16T10:00:00Z", "resource": {"labels": {"cluster_name": "c"}}
    });
    let ev = one(entry.to_string().as_bytes());
    let o = ev.object_ref.clone().unwrap();
    assert_eq!(
        (o.resource.as_deref(), o.subresource.as_deref()),
        (Some("pods"), Some("exec"))
    );
    assert_eq!(
        (o.namespace.as_deref(), o.name.as_deref()),
        (Some("kube-system"), Some("etcd-0"))
    );
    assert_eq!(o.api_group, None);
    assert_eq!(ev.response_code(), Some(403));
    assert_eq!(ev.annotations["authorization.k8s.io/decision"], "forbid");
    assert_eq!(
        ev.request_uri,
        "/api/v1/namespaces/kube-system/pods/etcd-0/exec"
    );
}

#[test]
fn control_messages_and_other_categories_yield_no_events_and_no_failures() {
    let control = json!({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "", "logEvents": [{"id": "", "timestamp": 0, "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]});
    let d = decode_record(control.to_string().as_bytes(), &Default::default());
    assert!(d.events.is_empty() && d.failures.is_empty());
    let corrupt = [0x1f, 0x8b, 0x08, 0x00, 0x01];
    let d = decode_record(&corrupt, &Default::default());
    assert_eq!(d.failures.len(), 1, "a broken gzip record is dead-lettered");
}

#[tokio::test]
async fn the_same_playbook_reaches_the_same_verdict_in_all_four_forms() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pcfg = PlaybooksConfig {
        dir: repo.join("playbooks"),
        ..PlaybooksConfig::default()
    };
    pcfg.lists
        .insert("admin_roles".into(), vec!["cluster-admin".into()]);
    let set = load_dir(&pcfg.dir, &pcfg).unwrap();
    let enricher = Enricher::build(&Default::default(), Arc::new(MemoryStore::default())).unwrap();
    let mut verdicts = Vec::new();
    for bytes in [raw_event().to_string().into_bytes(), eks(), aks(), gke()] {
        let mut ev = one(&bytes);
        enricher.enrich(&mut ev).await;
        let e = set.evaluate(&Ev::new(ev));
        let v: Vec<(String, String, String, Vec<String>)> = e
            .verdicts
            .iter()
            .map(|v| {
                (
                    v.playbook.clone(),
                    v.title.clone(),
                    format!("{:?}", v.severity),
                    v.responses.iter().map(|r| r.kind.clone()).collect(),
                )
            })
            .collect();
        verdicts.push(v);
    }
    assert_eq!(verdicts[0].len(), 1, "{:?}", verdicts[0]);
    assert_eq!(verdicts[0][0].0, "cluster-admin-binding");
    for (i, v) in verdicts.iter().enumerate().skip(1) {
        assert_eq!(v, &verdicts[0], "form {i} differs");
    }
}
