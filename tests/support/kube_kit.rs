//! Shared pieces of the revocation tests: bindings and judged targets, deliveries, a responder on the fake API, a log capture.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use super::fake_kube::{FakeKube, Fault, On};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rampart::config::Seconds;
use rampart::respond::kubernetes::{
    KubernetesConfig, KubernetesResponder, ServiceAccountRef, UndoError,
};
use rampart::respond::{Effect, Responder, Retry};
use rampart::state::model::{Delivery, Status};
use serde_json::{json, Value};

pub const CRB: &str = "ClusterRoleBinding";
pub const RB: &str = "RoleBinding";

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn user(n: &str) -> Value {
    json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": n})
}

pub fn group(n: &str) -> Value {
    json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": n})
}

pub fn sa(ns: &str, n: &str) -> Value {
    json!({"kind": "ServiceAccount", "namespace": ns, "name": n})
}

pub fn binding(kind: &str, ns: Option<&str>, name: &str, subjects: Vec<Value>) -> Value {
    let mut metadata =
        json!({"name": name, "labels": {"team": "platform"}, "annotations": {"owner": "ops"}});
    if let Some(ns) = ns {
        metadata["namespace"] = json!(ns);
    }
    json!({
        "kind": kind,
        "metadata": metadata,
        "subjects": subjects,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    })
}

/// The judged binding as the audit event recorded it (with its uid, or without when `uid` is false).
pub fn target_of(obj: &Value, judged_subjects: Vec<Value>, uid: bool) -> Value {
    let mut t = json!({
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "subjects": judged_subjects,
        "role_ref": obj["roleRef"],
        "judged_at": now(),
    });
    if let Some(ns) = obj["metadata"]["namespace"].as_str() {
        t["namespace"] = json!(ns);
    }
    if uid {
        t["uid"] = obj["metadata"]["uid"].clone();
        t["resource_version"] = obj["metadata"]["resourceVersion"].clone();
    }
    t
}

pub fn delivery(target: Value, mode: &str, subject: Option<Value>) -> Delivery {
    let mut params = json!({"mode": mode});
    if let Some(s) = subject {
        params["subject"] = s;
    }
    serde_json::from_value(json!({
        "id": "prod/audit-1/cluster-admin-binding/revoke_binding.1",
        "responder": "revoke_binding",
        "alert": {
            "id": "prod/audit-1/cluster-admin-binding",
            "kind": "alert",
            "playbook": "cluster-admin-binding",
            "title": "Cluster-admin granted",
            "severity": "critical",
            "score": 90,
            "cluster": "prod",
            "dedup": "d",
            "count": 1,
            "first_seen": 0,
            "last_seen": 0,
            "event": {"user": {"username": "mallory@example.com"}},
        },
        "response": {"kind": "revoke_binding", "params": params},
        "enqueued_ms": 0,
        "attempts": 0,
        "not_before_ms": 0,
        "target": target,
    }))
    .unwrap()
}

pub fn config(fake: &FakeKube) -> KubernetesConfig {
    logs();
    KubernetesConfig {
        kubeconfig: Some(fake.kubeconfig.clone()),
        context: Some("fake".into()),
        reporting_instance: Some("rampart-test-0".into()),
        timeout: Seconds::from_millis(2000),
        ..KubernetesConfig::default()
    }
}

pub async fn responder(cfg: &KubernetesConfig) -> KubernetesResponder {
    KubernetesResponder::from_config(cfg).await.unwrap()
}

pub async fn run(r: &KubernetesResponder, d: &Delivery) -> Effect {
    r.deliver(d, false).await.unwrap()
}

pub fn subjects(obj: &Value) -> Vec<String> {
    obj["subjects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    format!(
                        "{}/{}",
                        s["kind"].as_str().unwrap(),
                        s["name"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Everything this test binary logs, at every level (one global subscriber: per-thread ones
/// miss events whose callsites other threads registered first).
pub fn logs() -> &'static Buf {
    static LOGS: OnceLock<Buf> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Buf::default();
        let b = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || b.clone())
            .finish();
        tracing::subscriber::set_global_default(sub).unwrap();
        buf
    })
}

/// A tracing writer into a shared buffer.
#[derive(Clone, Default)]
pub struct Buf(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
