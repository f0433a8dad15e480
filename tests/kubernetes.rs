//! The binding revocation responder against a fake Kubernetes API server over HTTPS, connected through a generated kubeconfig: what it changes, what it refuses, how it fails, and how undo restores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/fake_kube.rs"]
mod fake_kube;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use fake_kube::{FakeKube, Fault, On};
use rampart::config::Seconds;
use rampart::respond::kubernetes::{
    KubernetesConfig, KubernetesResponder, ServiceAccountRef, UndoError,
};
use rampart::respond::{Effect, Responder, Retry};
use rampart::state::model::{Delivery, Status};
use serde_json::{json, Value};

const CRB: &str = "ClusterRoleBinding";
const RB: &str = "RoleBinding";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn user(n: &str) -> Value {
    json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": n})
}

fn group(n: &str) -> Value {
    json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": n})
}

fn sa(ns: &str, n: &str) -> Value {
    json!({"kind": "ServiceAccount", "namespace": ns, "name": n})
}

fn binding(kind: &str, ns: Option<&str>, name: &str, subjects: Vec<Value>) -> Value {
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
fn target_of(obj: &Value, judged_subjects: Vec<Value>, uid: bool) -> Value {
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

fn delivery(target: Value, mode: &str, subject: Option<Value>) -> Delivery {
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

fn config(fake: &FakeKube) -> KubernetesConfig {
    logs();
    KubernetesConfig {
        kubeconfig: Some(fake.kubeconfig.clone()),
        context: Some("fake".into()),
        reporting_instance: Some("rampart-test-0".into()),
        timeout: Seconds::from_millis(2000),
        ..KubernetesConfig::default()
    }
}

async fn responder(cfg: &KubernetesConfig) -> KubernetesResponder {
    KubernetesResponder::from_config(cfg).await.unwrap()
}

async fn run(r: &KubernetesResponder, d: &Delivery) -> Effect {
    r.deliver(d, false).await.unwrap()
}

fn subjects(obj: &Value) -> Vec<String> {
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

#[tokio::test]
async fn removes_only_the_judged_subject_and_records_an_event() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(
        CRB,
        None,
        "sneaky-admin",
        vec![user("alice"), user("mallory"), group("devs")],
    ));
    let other = fake.put(binding(CRB, None, "other-admin", vec![user("mallory")]));
    let r = responder(&config(&fake)).await;

    let e = run(
        &r,
        &delivery(
            target_of(&obj, vec![user("mallory")], true),
            "remove_subject",
            None,
        ),
    )
    .await;

    assert_eq!(e.status, Status::Done, "{}", e.detail);
    let uid = obj["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        e.detail,
        format!("removed subject User/mallory from ClusterRoleBinding/sneaky-admin (uid {uid})")
    );
    let live = fake.get(CRB, None, "sneaky-admin").unwrap();
    assert_eq!(subjects(&live), ["User/alice", "Group/devs"]);
    assert_eq!(live["metadata"]["uid"], obj["metadata"]["uid"]);
    assert_eq!(
        fake.get(CRB, None, "other-admin").unwrap(),
        other,
        "another binding was changed"
    );
    // Exactly one write, to exactly that binding.
    let writes = fake.binding_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].0, "PATCH");
    assert!(writes[0].1.ends_with("/clusterrolebindings/sneaky-admin"));
    // The object as read is kept for undo, with what was removed.
    assert_eq!(e.undo["object"], obj);
    assert_eq!(e.undo["mode"], "remove_subject");
    assert_eq!(e.undo["removed"], json!([user("mallory")]));

    let events = fake.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let ev = &events[0];
    assert_eq!(ev["reportingController"], "rampart");
    assert_eq!(ev["reportingInstance"], "rampart-test-0");
    assert_eq!(ev["action"], "Revoke");
    assert_eq!(ev["regarding"]["kind"], CRB);
    assert_eq!(ev["regarding"]["name"], "sneaky-admin");
    assert_eq!(ev["regarding"]["uid"], obj["metadata"]["uid"]);
    assert_eq!(ev["metadata"]["namespace"], "default");
    let note = ev["note"].as_str().unwrap();
    for part in [
        "cluster-admin-binding",
        "prod/audit-1/cluster-admin-binding",
        "mallory@example.com",
        "User/mallory",
    ] {
        assert!(note.contains(part), "note {note:?} lacks {part}");
    }

    // The same delivery again (a redelivery after a crash): nothing left to do, nothing written.
    let again = run(
        &r,
        &delivery(
            target_of(&obj, vec![user("mallory")], true),
            "remove_subject",
            None,
        ),
    )
    .await;
    assert_eq!(again.status, Status::Done);
    assert!(again.detail.contains("already absent"), "{}", again.detail);
    assert_eq!(fake.binding_writes().len(), 1);
}

#[tokio::test]
async fn delete_mode_deletes_exactly_the_judged_rolebinding() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(RB, Some("team-a"), "edit", vec![user("mallory")]));
    let twin = fake.put(binding(RB, Some("team-b"), "edit", vec![user("mallory")]));
    let r = responder(&config(&fake)).await;

    let e = run(&r, &delivery(target_of(&obj, vec![], true), "delete", None)).await;

    assert_eq!(e.status, Status::Done, "{}", e.detail);
    assert!(
        e.detail
            .starts_with("deleted RoleBinding team-a/edit (uid "),
        "{}",
        e.detail
    );
    assert!(fake.get(RB, Some("team-a"), "edit").is_none());
    assert_eq!(fake.get(RB, Some("team-b"), "edit").unwrap(), twin);
    assert_eq!(e.undo["mode"], "delete");
    assert_eq!(e.undo["object"], obj);
    let ev = &fake.events()[0];
    assert_eq!(ev["metadata"]["namespace"], "team-a");
    assert_eq!(ev["regarding"]["namespace"], "team-a");
    assert_eq!(ev["action"], "Revoke");
}

#[tokio::test]
async fn a_recreated_binding_is_not_touched() {
    let fake = FakeKube::start().await;
    let judged = fake.put(binding(CRB, None, "ops-admin", vec![user("mallory")]));
    let target = target_of(&judged, vec![user("mallory")], true);
    // Deleted and created again under the same name: a new uid.
    fake.remove(CRB, None, "ops-admin");
    let recreated = fake.put(binding(CRB, None, "ops-admin", vec![user("mallory")]));
    let r = responder(&config(&fake)).await;

    for mode in ["remove_subject", "delete"] {
        let e = run(&r, &delivery(target.clone(), mode, None)).await;
        assert_eq!(e.status, Status::Failed, "{}", e.detail);
        assert!(e.detail.contains("recreated"), "{}", e.detail);
        assert!(e.detail.contains("nothing was changed"), "{}", e.detail);
    }
    assert!(
        fake.binding_writes().is_empty(),
        "{:?}",
        fake.binding_writes()
    );
    assert_eq!(fake.get(CRB, None, "ops-admin").unwrap(), recreated);
    assert_eq!(fake.events()[0]["action"], "Refused");
}

#[tokio::test]
async fn a_binding_created_after_the_judged_event_is_not_touched() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(CRB, None, "late", vec![user("mallory")]));
    // Metadata-level event: no uid; it was judged an hour before this object was created.
    let mut target = target_of(&obj, vec![user("mallory")], false);
    target["judged_at"] = json!(now() - 3600);
    let r = responder(&config(&fake)).await;

    let e = run(&r, &delivery(target, "delete", None)).await;

    assert_eq!(e.status, Status::Failed, "{}", e.detail);
    assert!(e.detail.contains("another object"), "{}", e.detail);
    assert!(fake.binding_writes().is_empty());
    assert!(fake.get(CRB, None, "late").is_some());

    // Judged just now, without a uid: the same object by creation time, so it is revoked.
    let e = run(
        &r,
        &delivery(
            target_of(&obj, vec![user("mallory")], false),
            "delete",
            None,
        ),
    )
    .await;
    assert_eq!(e.status, Status::Done, "{}", e.detail);
    assert!(fake.get(CRB, None, "late").is_none());
}

#[tokio::test]
async fn protected_bindings_are_refused_without_a_write() {
    let fake = FakeKube::start().await;
    let mut cfg = config(&fake);
    cfg.protected.names = vec!["break-glass-*".into()];
    cfg.protected.subjects = vec!["oncall-*".into()];
    cfg.protected.label_selector = Some("rampart.dev/protected=true".into());
    cfg.own.service_account = Some(ServiceAccountRef {
        namespace: "rampart".into(),
        name: "rampart".into(),
    });
    cfg.own.bindings = vec!["rampart-responder".into()];
    let r = responder(&cfg).await;

    let mut labelled = binding(CRB, None, "labelled", vec![user("mallory")]);
    labelled["metadata"]["labels"]["rampart.dev/protected"] = json!("true");
    let cases: Vec<(Value, Vec<Value>, &str, &str)> = vec![
        (
            binding(CRB, None, "system:controller:x", vec![user("mallory")]),
            vec![user("mallory")],
            "delete",
            "system",
        ),
        (
            binding(CRB, None, "masters", vec![group("system:masters")]),
            vec![group("system:masters")],
            "delete",
            "system identity",
        ),
        (
            binding(CRB, None, "ks", vec![sa("kube-system", "deployer")]),
            vec![sa("kube-system", "deployer")],
            "remove_subject",
            "kube-system",
        ),
        (
            binding(CRB, None, "break-glass-1", vec![user("mallory")]),
            vec![user("mallory")],
            "delete",
            "protected.names",
        ),
        (
            binding(CRB, None, "pager", vec![user("oncall-bob")]),
            vec![user("oncall-bob")],
            "remove_subject",
            "protected.subjects",
        ),
        (labelled, vec![user("mallory")], "delete", "label_selector"),
        (
            binding(CRB, None, "rampart-responder", vec![user("mallory")]),
            vec![user("mallory")],
            "delete",
            "rampart's own bindings",
        ),
        // Removing someone else from a binding that also grants rampart's own service account.
        (
            binding(
                CRB,
                None,
                "shared",
                vec![user("mallory"), sa("rampart", "rampart")],
            ),
            vec![user("mallory")],
            "remove_subject",
            "rampart's own service account",
        ),
    ];
    for (obj, judged, mode, why) in cases {
        let stored = fake.put(obj);
        let name = stored["metadata"]["name"].as_str().unwrap().to_owned();
        let e = run(&r, &delivery(target_of(&stored, judged, true), mode, None)).await;
        assert_eq!(e.status, Status::Failed, "{name}: {}", e.detail);
        assert!(
            e.detail
                .starts_with(&format!("refused to change ClusterRoleBinding/{name}:")),
            "{}",
            e.detail
        );
        assert!(
            e.detail.contains(why),
            "{name}: {:?} lacks {why:?}",
            e.detail
        );
        assert_eq!(
            fake.get(CRB, None, &name).unwrap(),
            stored,
            "{name} was changed"
        );
        // A dry run refuses alike.
        let dry = r
            .deliver(
                &delivery(target_of(&stored, vec![], true), "delete", None),
                true,
            )
            .await
            .unwrap();
        assert_eq!(dry.status, Status::Failed, "{name}: {}", dry.detail);
    }
    assert!(
        fake.binding_writes().is_empty(),
        "{:?}",
        fake.binding_writes()
    );
    assert!(fake.events().iter().all(|e| e["action"] == "Refused"));
}

#[tokio::test]
async fn a_missing_binding_is_already_absent() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(CRB, None, "gone", vec![user("mallory")]));
    let target = target_of(&obj, vec![user("mallory")], true);
    fake.remove(CRB, None, "gone");
    let r = responder(&config(&fake)).await;

    let e = run(&r, &delivery(target, "delete", None)).await;

    assert_eq!(e.status, Status::Done);
    assert_eq!(
        e.detail,
        "ClusterRoleBinding/gone is already absent; nothing to revoke"
    );
    assert!(fake.binding_writes().is_empty());
    assert!(fake.events().is_empty());
}

#[tokio::test]
async fn forbidden_is_a_reported_failure_not_a_retry() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(CRB, None, "x", vec![user("mallory")]));
    fake.fault(On::Writes, Fault::Forbidden, 1);
    let r = responder(&config(&fake)).await;

    let e = r
        .deliver(
            &delivery(target_of(&obj, vec![], true), "delete", None),
            false,
        )
        .await;

    let e = e.expect("a 403 must be reported, not retried");
    assert_eq!(e.status, Status::Failed);
    assert!(
        e.detail.starts_with(
            "rampart's service account may not delete clusterrolebindings (ClusterRoleBinding/x)"
        ),
        "{}",
        e.detail
    );
    assert!(fake.get(CRB, None, "x").is_some());
}

#[tokio::test]
async fn a_concurrent_change_is_reread_and_judged_again_once() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(
        CRB,
        None,
        "busy",
        vec![user("alice"), user("mallory")],
    ));
    fake.interfere(1);
    let r = responder(&config(&fake)).await;

    let e = run(
        &r,
        &delivery(
            target_of(&obj, vec![user("mallory")], true),
            "remove_subject",
            None,
        ),
    )
    .await;

    assert_eq!(e.status, Status::Done, "{}", e.detail);
    let live = fake.get(CRB, None, "busy").unwrap();
    assert_eq!(subjects(&live), ["User/alice"]);
    // The other writer's change survives: the patch applied to the re-read object.
    assert_eq!(live["metadata"]["labels"]["touched-by"], "someone-else");
    let methods: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|(_, p)| p.contains("/busy"))
        .map(|(m, _)| m)
        .collect();
    assert_eq!(methods, ["GET", "PATCH", "GET", "PATCH"]);
    // The undo record holds the object as read the second time.
    assert_eq!(
        e.undo["object"]["metadata"]["labels"]["touched-by"],
        "someone-else"
    );
}

#[tokio::test]
async fn a_binding_that_keeps_changing_fails_clearly() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(CRB, None, "busy", vec![user("mallory")]));
    fake.interfere(2);
    let r = responder(&config(&fake)).await;

    let e = run(&r, &delivery(target_of(&obj, vec![], true), "delete", None)).await;

    assert_eq!(e.status, Status::Failed, "{}", e.detail);
    assert!(e.detail.contains("changed again"), "{}", e.detail);
    assert!(e.detail.contains("review it by hand"), "{}", e.detail);
    assert!(fake.get(CRB, None, "busy").is_some());
    assert_eq!(fake.binding_writes().len(), 2);
}

#[tokio::test]
async fn server_errors_throttling_and_hangs_are_retried() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(CRB, None, "x", vec![user("mallory")]));
    let mut cfg = config(&fake);
    cfg.timeout = Seconds::from_millis(300);
    let r = responder(&cfg).await;
    let d = delivery(target_of(&obj, vec![], true), "delete", None);

    fake.fault(On::Reads, Fault::ServerError, 1);
    let Err(Retry { error, after }) = r.deliver(&d, false).await else {
        panic!("a 500 must be retried")
    };
    assert!(error.contains("500"), "{error}");
    assert_eq!(after, None);

    fake.fault(On::Writes, Fault::Throttle(7), 1);
    let Err(Retry { error, after }) = r.deliver(&d, false).await else {
        panic!("a 429 must be retried")
    };
    assert!(error.contains("429"), "{error}");
    assert_eq!(after, Some(Duration::from_secs(7)));

    fake.fault(On::Reads, Fault::Hang, 1);
    let Err(Retry { error, .. }) = r.deliver(&d, false).await else {
        panic!("a hang must be retried")
    };
    assert!(error.contains("no answer"), "{error}");

    assert!(
        fake.get(CRB, None, "x").is_some(),
        "nothing may change while retrying"
    );
    // Once the API server is well again, the same delivery succeeds.
    assert_eq!(run(&r, &d).await.status, Status::Done);
    assert!(fake.get(CRB, None, "x").is_none());
}

#[tokio::test]
async fn a_failed_event_does_not_fail_the_revocation() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(CRB, None, "x", vec![user("mallory")]));
    fake.fault(On::Events, Fault::Forbidden, 1);
    let r = responder(&config(&fake)).await;

    let e = run(&r, &delivery(target_of(&obj, vec![], true), "delete", None)).await;

    assert_eq!(e.status, Status::Done, "{}", e.detail);
    assert!(fake.get(CRB, None, "x").is_none());
    assert!(fake.events().is_empty());
}

#[tokio::test]
async fn undo_recreates_a_deleted_binding() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(
        CRB,
        None,
        "x",
        vec![user("mallory"), group("devs")],
    ));
    let r = responder(&config(&fake)).await;
    let e = run(&r, &delivery(target_of(&obj, vec![], true), "delete", None)).await;
    assert!(fake.get(CRB, None, "x").is_none());
    // The journal stores the undo value as JSON.
    let stored: Value = serde_json::from_str(&serde_json::to_string(&e.undo).unwrap()).unwrap();

    let detail = r.undo(&stored).await.unwrap();

    let back = fake.get(CRB, None, "x").expect("binding restored");
    assert_eq!(back["subjects"], obj["subjects"]);
    assert_eq!(back["roleRef"], obj["roleRef"]);
    assert_eq!(back["metadata"]["labels"], obj["metadata"]["labels"]);
    assert_eq!(back["metadata"]["annotations"]["owner"], "ops");
    assert_eq!(
        back["metadata"]["annotations"]["rampart.dev/restored-from"],
        obj["metadata"]["uid"]
    );
    assert_ne!(back["metadata"]["uid"], obj["metadata"]["uid"]);
    assert!(
        detail.starts_with("recreated ClusterRoleBinding/x"),
        "{detail}"
    );
    let ev = fake.events().last().cloned().unwrap();
    assert_eq!(ev["action"], "Restore");
    assert_eq!(ev["reason"], "Restored");

    // Undo twice: already done, nothing written.
    let writes = fake.binding_writes().len();
    let again = r.undo(&stored).await.unwrap();
    assert!(again.contains("already restored"), "{again}");
    assert_eq!(fake.binding_writes().len(), writes);

    // The free function (for the CLI) connects from the config.
    let free = rampart::respond::kubernetes::undo(&config(&fake), &stored)
        .await
        .unwrap();
    assert!(free.contains("already restored"), "{free}");
}

#[tokio::test]
async fn undo_puts_removed_subjects_back() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(
        RB,
        Some("team"),
        "x",
        vec![user("alice"), user("mallory")],
    ));
    let r = responder(&config(&fake)).await;
    let e = run(
        &r,
        &delivery(
            target_of(&obj, vec![user("mallory")], true),
            "remove_subject",
            None,
        ),
    )
    .await;
    assert_eq!(
        subjects(&fake.get(RB, Some("team"), "x").unwrap()),
        ["User/alice"]
    );

    let detail = r.undo(&e.undo).await.unwrap();

    let back = fake.get(RB, Some("team"), "x").unwrap();
    assert_eq!(subjects(&back), ["User/alice", "User/mallory"]);
    assert_eq!(back["metadata"]["uid"], obj["metadata"]["uid"]);
    assert_eq!(
        detail,
        format!(
            "added subject User/mallory back to RoleBinding team/x (uid {})",
            obj["metadata"]["uid"].as_str().unwrap()
        )
    );
}

#[tokio::test]
async fn undo_never_overwrites_a_binding_recreated_since() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(CRB, None, "x", vec![user("mallory")]));
    let r = responder(&config(&fake)).await;
    let e = run(&r, &delivery(target_of(&obj, vec![], true), "delete", None)).await;
    let someone_elses = fake.put(binding(CRB, None, "x", vec![user("carol")]));
    let writes = fake.binding_writes().len();

    let err = r.undo(&e.undo).await.unwrap_err();

    assert!(matches!(err, UndoError::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("not overwritten"), "{err}");
    assert_eq!(fake.get(CRB, None, "x").unwrap(), someone_elses);
    assert_eq!(fake.binding_writes().len(), writes);

    // A record from another responder is refused outright.
    let err = r.undo(&json!({"responder": "slack"})).await.unwrap_err();
    assert!(matches!(err, UndoError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn dry_run_reads_but_never_writes() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(
        CRB,
        None,
        "x",
        vec![user("alice"), user("mallory")],
    ));
    let r = responder(&config(&fake)).await;
    let uid = obj["metadata"]["uid"].as_str().unwrap();

    let e = r
        .deliver(
            &delivery(
                target_of(&obj, vec![user("mallory")], true),
                "remove_subject",
                None,
            ),
            true,
        )
        .await
        .unwrap();
    assert_eq!(e.status, Status::DryRun);
    assert_eq!(
        e.detail,
        format!("would remove subject User/mallory from ClusterRoleBinding/x (uid {uid})")
    );

    let e = r
        .deliver(
            &delivery(target_of(&obj, vec![], true), "delete", None),
            true,
        )
        .await
        .unwrap();
    assert_eq!(e.status, Status::DryRun);
    assert_eq!(
        e.detail,
        format!("would delete ClusterRoleBinding/x (uid {uid})")
    );

    assert!(
        fake.requests().iter().all(|(m, _)| m == "GET"),
        "{:?}",
        fake.requests()
    );
    assert!(fake.events().is_empty());
    assert_eq!(fake.get(CRB, None, "x").unwrap(), obj);
}

#[tokio::test]
async fn a_named_subject_is_removed_even_when_the_event_had_no_subjects() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(
        CRB,
        None,
        "x",
        vec![user("alice"), sa("ci", "builder")],
    ));
    let r = responder(&config(&fake)).await;

    // Metadata level: no subjects recorded, and no subject named: refused before any request.
    let e = run(
        &r,
        &delivery(target_of(&obj, vec![], true), "remove_subject", None),
    )
    .await;
    assert_eq!(e.status, Status::Failed);
    assert!(
        e.detail.contains("did not record the subjects"),
        "{}",
        e.detail
    );
    assert!(fake.requests().is_empty());

    let e = run(
        &r,
        &delivery(
            target_of(&obj, vec![], true),
            "remove_subject",
            Some(json!("system:serviceaccount:ci:builder")),
        ),
    )
    .await;
    assert_eq!(e.status, Status::Done, "{}", e.detail);
    assert_eq!(subjects(&fake.get(CRB, None, "x").unwrap()), ["User/alice"]);
}

#[tokio::test]
async fn the_kubeconfig_context_decides_the_credentials() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(CRB, None, "x", vec![user("mallory")]));
    // The file's current context carries a wrong token: the API server answers 401, which is retried.
    let mut cfg = config(&fake);
    cfg.context = None;
    let r = responder(&cfg).await;
    let Err(Retry { error, .. }) = r
        .deliver(
            &delivery(target_of(&obj, vec![], true), "delete", None),
            false,
        )
        .await
    else {
        panic!("a 401 must be retried")
    };
    assert!(error.contains("401"), "{error}");
    assert!(fake.unauthorized() >= 1);
    assert!(fake.get(CRB, None, "x").is_some());

    let mut cfg = config(&fake);
    cfg.context = Some("no-such-context".into());
    let err = KubernetesResponder::from_config(&cfg).await.unwrap_err();
    assert!(err.to_string().contains("no-such-context"), "{err}");
}

/// Everything this test binary logs, at every level (one global subscriber: per-thread ones
/// miss events whose callsites other threads registered first).
fn logs() -> &'static Buf {
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
struct Buf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_token_never_appears_in_logs_details_or_debug_output() {
    let fake = FakeKube::start().await;
    let mut cfg = config(&fake);
    cfg.timeout = Seconds::from_millis(300);
    let r = responder(&cfg).await;
    let mut details = vec![format!("{r:?}")];
    let a = fake.put(binding(CRB, None, "a", vec![user("mallory")]));
    let b = fake.put(binding(CRB, None, "b", vec![user("mallory")]));
    let c = fake.put(binding(
        CRB,
        None,
        "c",
        vec![user("alice"), user("mallory")],
    ));
    fake.fault(On::Writes, Fault::Forbidden, 1);
    fake.fault(On::Events, Fault::ServerError, 1);
    for (obj, fault) in [
        (&a, None),
        (&b, Some(Fault::ServerError)),
        (&b, Some(Fault::Hang)),
        (&b, None),
    ] {
        if let Some(f) = fault {
            fake.fault(On::Reads, f, 1);
        }
        match r
            .deliver(
                &delivery(target_of(obj, vec![], true), "delete", None),
                false,
            )
            .await
        {
            Ok(e) => details.push(format!("{} {}", e.detail, e.undo)),
            Err(e) => details.push(format!("{e:?}")),
        }
    }
    let e = run(
        &r,
        &delivery(
            target_of(&c, vec![user("mallory")], true),
            "remove_subject",
            None,
        ),
    )
    .await;
    details.push(r.undo(&e.undo).await.unwrap());
    let mut wrong = config(&fake);
    wrong.context = None;
    let w = responder(&wrong).await;
    details.push(format!(
        "{:?}",
        w.deliver(
            &delivery(target_of(&c, vec![], true), "delete", None),
            false
        )
        .await
    ));

    // Every test of this binary logs into the same buffer: no fake server's token may be in it.
    let logs = String::from_utf8(logs().0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("binding revoked"),
        "the test must capture the responder's logs:\n{logs}"
    );
    assert!(!logs.contains(&fake.token), "token in logs:\n{logs}");
    assert!(!logs.contains("-SECRET"), "a token in logs:\n{logs}");
    assert!(!logs.contains("not-the-token"), "token in logs:\n{logs}");
    for d in &details {
        assert!(
            !d.contains(&fake.token) && !d.contains("not-the-token"),
            "token in {d}"
        );
        assert!(!d.contains(&fake.url), "URL in {d}");
    }
    assert!(
        details.iter().any(|d| d.contains("may not delete")),
        "{details:?}"
    );
}

#[tokio::test]
async fn a_forbidden_subject_removal_names_the_missing_bind_permission() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(
        CRB,
        None,
        "x",
        vec![user("alice"), user("mallory")],
    ));
    fake.fault(On::Writes, Fault::Forbidden, 1);
    let r = responder(&config(&fake)).await;

    let e = run(
        &r,
        &delivery(
            target_of(&obj, vec![user("mallory")], true),
            "remove_subject",
            None,
        ),
    )
    .await;

    assert_eq!(e.status, Status::Failed);
    assert!(
        e.detail
            .starts_with("rampart's service account may not patch clusterrolebindings"),
        "{}",
        e.detail
    );
    assert!(e.detail.contains("bind verb"), "{}", e.detail);
    assert_eq!(fake.get(CRB, None, "x").unwrap(), obj);
}

#[tokio::test]
async fn nothing_happens_before_approval_and_a_rejection_is_journaled() {
    let fake = FakeKube::start().await;
    let obj = fake.put(binding(CRB, None, "x", vec![user("mallory")]));
    let r = responder(&config(&fake)).await;
    let mut d = delivery(target_of(&obj, vec![], true), "delete", None);
    d.response.as_mut().unwrap().approval = true;

    // Handed over before anyone approved: kept in the outbox, nothing sent to the API server.
    assert!(r.deliver(&d, false).await.is_err());
    assert!(fake.requests().is_empty());
    // A dry run says what would happen once approved.
    let dry = r.deliver(&d, true).await.unwrap();
    assert_eq!(dry.status, Status::DryRun);
    assert!(dry.detail.ends_with("once approved"), "{}", dry.detail);

    d.approved = Some(
        serde_json::from_value(json!({"approve": false, "by": "U123 (carol)", "at_ms": 1}))
            .unwrap(),
    );
    let e = run(&r, &d).await;
    assert_eq!(e.status, Status::Rejected);
    assert!(e.detail.contains("carol"), "{}", e.detail);
    assert!(fake.binding_writes().is_empty());

    d.approved = Some(
        serde_json::from_value(json!({"approve": true, "by": "U123 (carol)", "at_ms": 1})).unwrap(),
    );
    assert_eq!(run(&r, &d).await.status, Status::Done);
    assert!(fake.get(CRB, None, "x").is_none());
}
