//! From audit event to revoked binding and back: the pipeline reads an event, a playbook asks to delete the binding, the responder deletes exactly it on a fake Kubernetes API, and `rampart actions undo` restores it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use support::fake_kube;

use std::process::Command;

use fake_kube::FakeKube;
use serde_json::{json, Value};

const CRB: &str = "ClusterRoleBinding";

fn audit_event(obj: &Value, id: &str) -> String {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": id, "stage": "ResponseComplete", "verb": "create",
        "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "user": {"username": "mallory@example.com", "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.7"], "userAgent": "kubectl/v1.31.0",
        "objectRef": {"resource": "clusterrolebindings", "name": obj["metadata"]["name"], "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": {"kind": CRB, "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": obj["metadata"]["name"]}, "subjects": obj["subjects"], "roleRef": obj["roleRef"]},
        "responseObject": obj,
        "requestReceivedTimestamp": "2026-01-01T00:00:00.000000Z",
        "stageTimestamp": "2026-01-01T00:00:00.010000Z",
    })
    .to_string()
}

fn rampart(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playbook_deletes_exactly_the_judged_binding_and_undo_restores_it() {
    let fake = FakeKube::start().await;
    let judged = fake.put(json!({
        "kind": CRB,
        "metadata": {"name": "ops-admin", "labels": {"team": "ops"}, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "mallory@example.com"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    }));
    // A binding the playbook did not judge: never touched.
    fake.put(json!({
        "kind": CRB,
        "metadata": {"name": "other-admin"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice@example.com"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    }));
    let s = common::Scratch::new();
    let playbooks = s.path("playbooks");
    std::fs::create_dir_all(&playbooks).unwrap();
    std::fs::write(
        playbooks.join("admin_bound.rhai"),
        r#"fn meta() { #{ id: "admin-bound", title: "cluster-admin bound", severity: "critical",
    on: #{ verbs: ["create"], resources: ["clusterrolebindings"] } } }
fn rule(e) { true }
fn respond(e) { [delete_binding()] }
"#,
    )
    .unwrap();
    let audit = s.path("audit.jsonl");
    std::fs::write(&audit, audit_event(&judged, "a-1") + "\n").unwrap();
    let yaml = format!(
        "sources:\n  files:\n    - path: {}\nplaybooks:\n  dir: {}\nrespond:\n  kubernetes:\n    kubeconfig: {}\n    context: fake\n",
        audit.display(),
        playbooks.display(),
        fake.kubeconfig.display()
    );
    let cfg = s.config(&yaml);
    let report = common::run_to_end(&cfg).await;
    assert_eq!(report.alerts, 1);

    assert!(
        fake.get(CRB, None, "ops-admin").is_none(),
        "the judged binding is deleted"
    );
    assert!(fake.get(CRB, None, "other-admin").is_some());
    let events = fake.events();
    assert_eq!(events.last().unwrap()["reportingController"], "rampart");

    // The same config, written out for the CLI (it reads the journal from state.dir).
    let cfg_file = s.path("rampart.yaml");
    std::fs::write(
        &cfg_file,
        format!(
            "{yaml}output:\n  console: off\nstate:\n  dir: {}\n",
            s.path("state").display()
        ),
    )
    .unwrap();
    let c = cfg_file.to_str().unwrap();
    let (ok, out, err) = rampart(&["actions", "-c", c, "--json"]);
    assert!(ok, "{err}");
    let actions: Vec<Value> = serde_json::from_str(&out).unwrap();
    let revoke = actions
        .iter()
        .find(|a| a["responder"] == "revoke_binding")
        .unwrap();
    assert_eq!(revoke["status"], "done", "{revoke}");
    let id = revoke["id"].as_str().unwrap().to_owned();
    assert_eq!(id, "default/a-1/admin-bound/revoke_binding.0");

    let (ok, out, err) = rampart(&["actions", "undo", &id, "-c", c]);
    assert!(ok, "undo failed: {out}{err}");
    assert!(
        out.contains("recreated ClusterRoleBinding/ops-admin"),
        "{out}"
    );
    let back = fake.get(CRB, None, "ops-admin").expect("restored");
    assert_eq!(back["subjects"], judged["subjects"]);
    assert_eq!(back["roleRef"], judged["roleRef"]);

    let (_, out, _) = rampart(&["actions", "-c", c]);
    assert!(out.contains("undone"), "{out}");
    // Undoing twice is refused, and says why.
    let (ok, _, err) = rampart(&["actions", "undo", &id, "-c", c]);
    assert!(!ok);
    assert!(err.contains("already undone"), "{err}");
    let (ok, _, err) = rampart(&[
        "actions",
        "undo",
        "default/nope/x/revoke_binding.0",
        "-c",
        c,
    ]);
    assert!(!ok);
    assert!(err.contains("no action"), "{err}");
}
