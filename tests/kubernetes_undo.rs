//! Revocation beyond the first judgement: undo restores, dry-run only reads, named subjects, kubeconfig contexts, approvals, the bind permission, and the token kept out of logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{fake_kube, kube_kit};

use fake_kube::{FakeKube, Fault, On};
use kube_kit::*;
use rampart::config::Seconds;
use rampart::respond::kubernetes::{KubernetesResponder, UndoError};
use rampart::respond::{Responder, Retry};
use rampart::state::model::Status;
use serde_json::{json, Value};

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
