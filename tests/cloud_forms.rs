//! EKS, AKS and GKE audit forms decode into the same events, and a playbook reaches the same verdict on the same action in all four forms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rampart::config::PlaybooksConfig;
use rampart::enrich::Enricher;
use rampart::event::{decode_record, AuditEvent, ClusterResolver, SkipReason};
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
    let reasons: Vec<String> = d.failures.iter().map(|f| f.error.to_string()).collect();
    assert!(d.failures.is_empty(), "{reasons:?}");
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
    let enricher =
        Enricher::build(&Default::default(), Arc::new(MemoryStore::default()), "").unwrap();
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

// ---- Delivery forms as the clouds document them (tests/data/cloud-forms/) ----

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/cloud-forms")
            .join(name),
    )
    .unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Kinesis Data Firehose's HTTP-endpoint delivery: each record's `data` is what the CloudWatch Logs
/// subscription put in, a gzip'd message.
fn firehose_http(inner: &[u8]) -> Vec<u8> {
    json!({"requestId": "ed4acda5-034f-9f42-bba1-f29aea6d7d8f", "timestamp": 1794823200500_i64,
           "records": [{"data": base64(&gzip(inner))}]})
    .to_string()
    .into_bytes()
}

/// One Firehose/Kinesis record on its own, as a connector writes it to Kafka.
fn firehose_record(inner: &[u8]) -> Vec<u8> {
    json!({"recordId": "49546986683135544286507457936321625675700192471156785154",
           "approximateArrivalTimestamp": 1794823200400_i64, "data": base64(&gzip(inner))})
    .to_string()
    .into_bytes()
}

/// What a detection reads of an event.
#[derive(Debug, PartialEq)]
struct Facts {
    audit_id: String,
    verb: String,
    user: String,
    target: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
    source_ips: Vec<String>,
    command: String,
}

fn facts(ev: &AuditEvent) -> Facts {
    let o = ev.object_ref.clone().unwrap_or_default();
    Facts {
        audit_id: ev.audit_id.clone(),
        verb: ev.verb.clone(),
        user: ev.user.username.clone(),
        target: (o.resource, o.namespace, o.name, o.subresource),
        source_ips: ev.source_ips.clone(),
        command: rampart::playbook::exec_command(&ev.request_uri),
    }
}

#[test]
fn every_delivery_form_decodes_to_the_facts_of_the_plain_event() {
    let plain = one(&fixture("plain.json"));
    let want = facts(&plain);
    assert_eq!(
        want.command,
        "cat /var/run/secrets/kubernetes.io/serviceaccount/token"
    );
    let cloudwatch = fixture("eks-cloudwatch.json");
    let aks_batch: Value = serde_json::from_slice(&fixture("aks-batch.json")).unwrap();
    let aks_single_string = aks_batch["records"][1].to_string().into_bytes();
    for (form, bytes, cluster) in [
        (
            "EKS CloudWatch Logs message",
            cloudwatch.clone(),
            "prod-eks",
        ),
        (
            "EKS CloudWatch Logs message, gzip'd",
            gzip(&cloudwatch),
            "prod-eks",
        ),
        (
            "EKS through Firehose to HTTP",
            firehose_http(&cloudwatch),
            "prod-eks",
        ),
        (
            "EKS through Firehose, one record",
            firehose_record(&cloudwatch),
            "prod-eks",
        ),
        (
            "AKS Event Hubs batch",
            fixture("aks-batch.json"),
            "prod-aks",
        ),
        (
            "AKS single record, log a string",
            aks_single_string,
            "prod-aks",
        ),
        (
            "AKS single kube-audit-admin record, log an object",
            fixture("aks-single-object-log.json"),
            "prod-aks",
        ),
        (
            "GKE Cloud Logging entry",
            fixture("gke-exec.json"),
            "prod-gke",
        ),
    ] {
        let ev = one(&bytes);
        assert_eq!(facts(&ev), want, "{form}");
        assert_eq!(ev.provenance.cluster, cluster, "{form}");
        assert!(
            ev.provenance.filled.is_empty(),
            "{form}: {:?}",
            ev.provenance.filled
        );
    }
}

#[test]
fn a_project_wide_gke_sink_yields_only_the_kubernetes_entries_and_counts_the_rest() {
    let sink = fixture("gke-sink.jsonl");
    let d = decode_record(&sink, &Default::default());
    let reasons: Vec<String> = d.failures.iter().map(|f| f.error.to_string()).collect();
    assert!(d.failures.is_empty(), "{reasons:?}");
    assert_eq!(d.events.len(), 5, "the five k8s.io entries");
    assert_eq!(d.skipped.len(), 3, "Compute, IAM and Cloud SQL entries");
    assert!(d
        .skipped
        .iter()
        .all(|s| s.reason == SkipReason::GkeNotKubernetes));
    assert!(
        d.skipped[0].detail.contains("compute.googleapis.com"),
        "{:?}",
        d.skipped[0]
    );
    // Delivered one entry a message (Pub/Sub), a foreign entry is skipped, not dead-lettered.
    let lines: Vec<&[u8]> = sink
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let foreign = decode_record(lines[0], &Default::default());
    assert!(foreign.events.is_empty() && foreign.failures.is_empty());
    assert_eq!(foreign.skipped.len(), 1);

    let by_uri = |uri: &str| d.events.iter().find(|e| e.request_uri == uri).unwrap();
    for uri in ["/readyz", "/api/v1", "/HNAP1"] {
        let ev = by_uri(uri);
        assert_eq!(ev.verb, "get", "{uri}");
        assert!(ev.object_ref.is_none(), "{uri} is a non-resource request");
    }
    let probe = by_uri("/HNAP1");
    assert_eq!(
        probe.user.username, "system:anonymous",
        "no principal is unauthenticated"
    );
    assert_eq!(probe.user.groups, ["system:unauthenticated"]);
    let secret = by_uri("/api/v1/namespaces/payments/secrets/db-credentials");
    assert_eq!(secret.user.username, "system:serviceaccount:payments:api");
    let crb = by_uri("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/debug-admin");
    assert_eq!(
        crb.user.username, "system:kube-controller-manager",
        "authoritySelector"
    );
    assert!(d.events.iter().all(|e| e.provenance.cluster == "prod-gke"));
}

#[test]
fn gke_exec_entries_carry_the_command_and_the_stage_they_report() {
    let started = one(&fixture("gke-exec.json"));
    assert_eq!(started.stage.as_str(), "ResponseStarted");
    assert_eq!(started.response_code(), Some(101));
    let mut entry: Value = serde_json::from_slice(&fixture("gke-exec.json")).unwrap();
    entry["operation"]["first"] = json!(false);
    entry["operation"]["last"] = json!(true);
    let complete = one(entry.to_string().as_bytes());
    assert_eq!(complete.stage.as_str(), "ResponseComplete");
    assert_eq!(
        complete.audit_id, started.audit_id,
        "one operation, one auditID"
    );
    assert_eq!(facts(&complete).command, facts(&started).command);
}

#[test]
fn aks_records_that_fail_name_the_form_and_the_field() {
    let record = |log: Value| {
        json!({"time": "2026-11-16T10:00:00Z", "category": "kube-audit-admin",
               "resourceId": "/SUBSCRIPTIONS/0/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS1",
               "properties": {"log": log}})
        .to_string()
    };
    let reason = |rec: String| {
        let d = decode_record(rec.as_bytes(), &Default::default());
        assert!(d.events.is_empty(), "{rec}");
        assert_eq!(d.failures.len(), 1, "{rec}");
        d.failures[0].error.to_string()
    };
    assert_eq!(
        reason(record(json!(42))),
        "AKS record: properties.log is neither a string nor an object"
    );
    assert_eq!(
        reason(record(Value::Null)),
        "AKS record: properties.log is missing"
    );
    let r = reason(record(json!("I1116 10:00:00.1 not an event")));
    assert!(r.starts_with("AKS record 0: properties.log: "), "{r}");
    let r = reason(record(json!({"kind": "Event", "user": {"username": "u"}})));
    assert_eq!(r, "AKS record 0: properties.log: audit event: no verb");
    // Another category is left out on purpose, not dead-lettered.
    let other = json!({"category": "guard", "properties": {"log": "x"}}).to_string();
    let d = decode_record(other.as_bytes(), &Default::default());
    assert!(d.events.is_empty() && d.failures.is_empty());
    assert_eq!(d.skipped[0].reason, SkipReason::AksOtherCategory);
}

/// A create of a cluster-admin binding as a SIEM's normaliser leaves it: no auditID, stage, level or times.
fn trimmed() -> Value {
    json!({"verb": "create", "user": {"username": "mallory@example.com"},
           "sourceIPs": ["81.2.69.142"],
           "objectRef": {"resource": "clusterrolebindings", "name": "debug-admin", "apiGroup": "rbac.authorization.k8s.io"},
           "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
           "requestObject": request_object(),
           "responseStatus": {"code": 201}})
}

#[test]
fn trimmed_events_are_kept_with_a_derived_id_and_say_what_was_filled() {
    let text = trimmed().to_string();
    let ev = one(text.as_bytes());
    assert_eq!(ev.verb, "create");
    assert_eq!(ev.stage.as_str(), "ResponseComplete");
    assert_eq!(ev.provenance.filled, ["auditID", "stage", "level"]);
    assert_eq!(
        one(text.as_bytes()).audit_id,
        ev.audit_id,
        "a replay gets the same ID"
    );
    let mut other = trimmed();
    other["objectRef"]["name"] = json!("debug-admin-2");
    assert_ne!(one(other.to_string().as_bytes()).audit_id, ev.audit_id);
    // The alert's event says what was filled in.
    let summary = serde_json::to_value(rampart::state::summary::EventSummary::of(&ev)).unwrap();
    assert_eq!(
        summary["provenance"]["filled"],
        json!(["auditID", "stage", "level"])
    );
    // Inside an envelope, the envelope's time is the event's time.
    let aks = json!({"time": "2026-11-16T10:00:00.5Z", "category": "kube-audit", "properties": {"log": text}});
    let ev = one(aks.to_string().as_bytes());
    assert_eq!(
        ev.request_received_timestamp.as_deref(),
        Some("2026-11-16T10:00:00.5Z")
    );
    assert!(ev
        .provenance
        .filled
        .contains(&"requestReceivedTimestamp".to_owned()));
    // Without a verb or a user it is dead-lettered, saying which.
    for (drop, why) in [
        ("verb", "audit event: no verb"),
        ("user", "audit event: no user (user.username)"),
    ] {
        let mut v = trimmed();
        v.as_object_mut().unwrap().remove(drop);
        let d = decode_record(v.to_string().as_bytes(), &Default::default());
        assert!(d.events.is_empty());
        assert_eq!(d.failures[0].error.to_string(), why);
    }
}

#[test]
fn old_events_with_timestamp_keep_their_event_time() {
    let mut v = raw_event();
    let m = v.as_object_mut().unwrap();
    m.remove("requestReceivedTimestamp");
    m.remove("stageTimestamp");
    m.insert("apiVersion".into(), json!("audit.k8s.io/v1beta1"));
    m.insert("timestamp".into(), json!("2026-11-16T09:30:00Z"));
    let ev = one(v.to_string().as_bytes());
    assert_eq!(
        ev.event_time(),
        rampart::event::time::parse_rfc3339("2026-11-16T09:30:00Z").unwrap()
    );
    assert_eq!(ev.provenance.filled, ["requestReceivedTimestamp"]);
}

#[tokio::test]
async fn a_replayed_trimmed_event_raises_its_alert_once() {
    let dir = tempfile::tempdir().unwrap();
    let line = trimmed().to_string();
    let once = dir.path().join("once.jsonl");
    std::fs::write(&once, format!("{line}\n")).unwrap();
    let twice = dir.path().join("twice.jsonl");
    std::fs::write(&twice, format!("{line}\n{line}\n")).unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("rampart.yaml");
    let a = rampart::app::replay(&once, Some(&config), quiet())
        .await
        .unwrap();
    let b = rampart::app::replay(&twice, Some(&config), quiet())
        .await
        .unwrap();
    assert!(a.report.alerts >= 1, "the binding alerts: {:?}", a.report);
    assert_eq!(b.report.events, 2);
    assert_eq!(b.report.dead_letters, 0);
    assert_eq!(
        b.report.alerts, a.report.alerts,
        "the same record twice is one alert"
    );
    // Recognised as a replay of the same auditID, not folded in as a second match.
    assert_eq!(b.report.suppressed, a.report.suppressed);
}

#[tokio::test]
async fn a_replay_of_a_shared_gke_sink_reports_what_it_skipped() {
    let sink = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cloud-forms/gke-sink.jsonl");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("rampart.yaml");
    let r = rampart::app::replay(&sink, Some(&config), quiet())
        .await
        .unwrap();
    assert_eq!(
        (r.report.events, r.report.skipped, r.report.dead_letters),
        (5, 3, 0)
    );
    let summary = rampart::app::replay_summary(&sink, &r);
    assert!(
        summary
            .lines()
            .any(|l| l.split_whitespace().eq(["skipped", "3"])),
        "{summary}"
    );
}

fn quiet() -> rampart::app::ReplayOptions {
    rampart::app::ReplayOptions {
        quiet: true,
        ..Default::default()
    }
}
