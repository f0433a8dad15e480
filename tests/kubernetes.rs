//! The binding revocation responder against a fake Kubernetes API server over HTTPS, connected through a generated kubeconfig: what it changes, what it refuses, and how it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{fake_kube, kube_kit};

use std::time::Duration;

use fake_kube::{FakeKube, Fault, On};
use kube_kit::*;
use rampart::config::Seconds;
use rampart::respond::kubernetes::ServiceAccountRef;
use rampart::respond::{Responder, Retry};
use rampart::state::model::Status;
use serde_json::{json, Value};

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
