//! Unit tests of outcomes, suppressions and the tuning report over the in-memory store.

use std::sync::Arc;

use super::tune;
use super::*;
use crate::state::model::{Alert, AlertKind};
use crate::state::summary::EventSummary;
use crate::state::MemoryStore;

fn alert(id: &str, playbook: &str, user: &str, ns: &str, ip: &str) -> Alert {
    let mut ev = EventSummary::default();
    ev.user.username = user.to_owned();
    ev.source_ips = vec![ip.to_owned()];
    ev.object_ref = Some(crate::event::ObjectReference {
        namespace: Some(ns.to_owned()),
        name: Some("web-0".to_owned()),
        resource: Some("pods".to_owned()),
        ..Default::default()
    });
    Alert {
        id: id.to_owned(),
        kind: AlertKind::Alert,
        thread: None,
        playbook: playbook.to_owned(),
        title: format!("{playbook} by {user}"),
        severity: crate::model::Severity::High,
        score: 50,
        mitre: vec![],
        cluster: "prod".to_owned(),
        dedup: format!("prod|{user}"),
        count: 3,
        first_seen: 1_700_000_000,
        last_seen: 1_700_000_100,
        risk: None,
        context: Default::default(),
        responses: vec![],
        event: Some(Box::new(ev)),
        contributions: vec![],
        suppressed: None,
        dry_run: false,
    }
}

fn with_alerts(alerts: &[Alert]) -> Triage {
    let store = Arc::new(MemoryStore::default());
    for a in alerts {
        store
            .put(ALERTS, a.id.as_bytes(), &serde_json::to_vec(a).unwrap())
            .unwrap();
    }
    Triage::open(store, 30 * 86_400).unwrap()
}

#[test]
fn a_mark_is_kept_replaced_and_follows_updates_to_their_first_alert() {
    let first = alert("prod/a1/exec", "exec", "alice", "payments", "10.0.0.1");
    let mut update = first.clone();
    update.id = "prod/a1/exec/update/5".into();
    update.kind = AlertKind::Update;
    update.thread = Some(first.id.clone());
    let t = with_alerts(&[first, update]);
    let o = t
        .mark(
            "prod/a1/exec/update/5",
            Verdict::FalsePositive,
            " deploy job ",
            "bob",
        )
        .unwrap();
    assert_eq!(o.alert, "prod/a1/exec");
    assert_eq!(o.note, "deploy job");
    assert_eq!(t.outcome("prod/a1/exec").unwrap().unwrap().by, "bob");
    t.mark("prod/a1/exec", Verdict::TruePositive, "", "carol")
        .unwrap();
    let all = t.outcomes().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all["prod/a1/exec"].verdict, Verdict::TruePositive);
    assert!(matches!(
        t.mark("prod/nope/exec", Verdict::Benign, "", "bob"),
        Err(TriageError::NoAlert(_))
    ));
}

#[test]
fn suppressions_match_their_scope_and_stop_when_revoked() {
    let a = alert("prod/a1/exec", "exec", "alice", "payments", "10.1.2.3");
    let t = with_alerts(&[]);
    let new = |playbook: Option<&str>, scope: Scope| NewSuppression {
        playbook: playbook.map(str::to_owned),
        scope,
        reason: "maintenance".into(),
        for_secs: 3600,
    };
    assert_eq!(t.silencing(&a), None);
    let other = t
        .suppress(
            new(
                Some("other"),
                Scope::Principal {
                    name: "alice".into(),
                },
            ),
            "bob",
        )
        .unwrap();
    assert_eq!(t.silencing(&a), None, "another playbook's suppression");
    let net = t
        .suppress(
            new(
                None,
                Scope::Network {
                    cidr: "10.1.0.0/16".into(),
                },
            ),
            "bob",
        )
        .unwrap();
    assert_eq!(t.silencing(&a), Some(net.id.clone()));
    t.revoke(&net.id, "carol").unwrap();
    assert_eq!(t.silencing(&a), None, "revoked");
    assert!(matches!(
        t.revoke(&net.id, "carol"),
        Err(TriageError::Ended(_))
    ));
    let group = t
        .suppress(
            new(
                Some("exec"),
                Scope::Group {
                    cluster: "prod".into(),
                    dedup: "prod|alice".into(),
                },
            ),
            "bob",
        )
        .unwrap();
    assert_eq!(t.silencing(&a), Some(group.id.clone()));
    let mut elsewhere = a.clone();
    elsewhere.cluster = "staging".into();
    assert_eq!(t.silencing(&elsewhere), None, "a group is per cluster");
    let ns = Scope::Namespace {
        name: "payments".into(),
    };
    assert!(ns.matches(&a));
    assert_eq!(t.suppressions().len(), 3);
    assert!(t.suppressions().iter().any(|s| s.id == other.id));
}

#[test]
fn an_expired_suppression_stops_applying_on_its_own() {
    let a = alert("prod/a1/exec", "exec", "alice", "payments", "10.1.2.3");
    let mut s = Suppression {
        id: "s-1".into(),
        playbook: None,
        scope: Scope::Principal {
            name: "alice".into(),
        },
        author: "bob".into(),
        reason: "r".into(),
        created_ms: 1_000,
        expires_ms: 2_000,
        revoked_by: None,
        revoked_ms: None,
    };
    assert!(s.silences(&a, 1_999));
    assert!(!s.silences(&a, 2_000));
    assert_eq!(s.state(2_000), "expired");
    s.revoked_ms = Some(1_500);
    assert_eq!(s.state(1_600), "revoked");
}

#[test]
fn bad_suppressions_are_refused_with_the_reason() {
    let t = with_alerts(&[]);
    let mut n = NewSuppression {
        playbook: None,
        scope: Scope::Network {
            cidr: "10.0.0.0/33".into(),
        },
        reason: "r".into(),
        for_secs: 60,
    };
    let e = t.suppress(n.clone(), "bob").unwrap_err().to_string();
    assert!(e.contains("network"), "{e}");
    n.scope = Scope::Group {
        cluster: "prod".into(),
        dedup: "x".into(),
    };
    assert!(t
        .suppress(n.clone(), "bob")
        .unwrap_err()
        .to_string()
        .contains("playbook"));
    n.playbook = Some("exec".into());
    n.reason = " ".into();
    assert!(t
        .suppress(n.clone(), "bob")
        .unwrap_err()
        .to_string()
        .contains("reason"));
    n.reason = "r".into();
    n.for_secs = 365 * 86_400;
    assert!(t
        .suppress(n, "bob")
        .unwrap_err()
        .to_string()
        .contains("90 days"));
}

#[test]
fn the_report_counts_outcomes_precision_and_noisy_principals() {
    let alerts = vec![
        alert("prod/1/exec", "exec", "alice", "a", "10.0.0.1"),
        alert("prod/2/exec", "exec", "alice", "a", "10.0.0.1"),
        alert("prod/3/exec", "exec", "bob", "b", "10.0.0.2"),
        alert("prod/4/sweep", "sweep", "bob", "b", "10.0.0.2"),
    ];
    let t = with_alerts(&alerts);
    t.mark("prod/1/exec", Verdict::FalsePositive, "", "x")
        .unwrap();
    t.mark("prod/2/exec", Verdict::TruePositive, "", "x")
        .unwrap();
    t.mark("prod/3/exec", Verdict::Benign, "", "x").unwrap();
    let r = tune::report(&alerts, &t.outcomes().unwrap(), &t.suppressions(), None, 0);
    let exec = &r.playbooks[0];
    assert_eq!(exec.playbook, "exec");
    assert_eq!((exec.alerts, exec.fires, exec.dedup_keys), (3, 9, 2));
    assert_eq!(
        (
            exec.true_positive,
            exec.benign,
            exec.false_positive,
            exec.unmarked
        ),
        (1, 1, 1, 0)
    );
    assert!((exec.precision.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(r.playbooks[1].precision, None);
    // Two alerts each: the tie goes by name.
    assert_eq!(r.principals[0].principal, "alice");
    assert_eq!(r.principals[0].false_positive, 1);
    assert_eq!(r.principals[1].playbooks, vec!["exec", "sweep"]);
}

#[test]
fn applying_an_entry_keeps_the_file_and_rewrites_a_flow_list() {
    let dir = tempfile::tempdir().unwrap();
    let block = dir.path().join("lists/deployers.yaml");
    std::fs::create_dir_all(block.parent().unwrap()).unwrap();
    std::fs::write(
        &block,
        "# CI pipelines\n- \"system:serviceaccount:ci:deployer\"\n",
    )
    .unwrap();
    assert!(tune::apply(&block, "system:serviceaccount:ci:argo", "fp").unwrap());
    let text = std::fs::read_to_string(&block).unwrap();
    assert!(text.starts_with("# CI pipelines\n- \"system:serviceaccount:ci:deployer\"\n"));
    let v: Vec<String> = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        v,
        [
            "system:serviceaccount:ci:deployer",
            "system:serviceaccount:ci:argo"
        ]
    );
    assert!(!tune::apply(&block, "system:serviceaccount:ci:argo", "again").unwrap());
    let flow = dir.path().join("lists/empty.yaml");
    std::fs::write(&flow, "# nothing yet\n[]\n").unwrap();
    tune::apply(&flow, "a: b", "fp").unwrap();
    let text = std::fs::read_to_string(&flow).unwrap();
    assert!(text.starts_with("# nothing yet\n"), "{text}");
    let v: Vec<String> = serde_yaml::from_str(&text).unwrap();
    assert_eq!(v, ["a: b"]);
    let fresh = dir.path().join("lists/new.yaml");
    tune::apply(&fresh, "x", "fp").unwrap();
    let v: Vec<String> = serde_yaml::from_str(&std::fs::read_to_string(&fresh).unwrap()).unwrap();
    assert_eq!(v, ["x"]);
}
