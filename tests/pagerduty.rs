//! The PagerDuty responder against a stand-in for the Events API v2: built from `respond.pagerduty` through the responder registry, it pages for serious alerts once per alert thread, skips the rest, retries throttling and outages, reports a refused event without its routing key, and acknowledges or resolves the incident when on-call marks or snoozes the alert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;
use support::fake_pagerduty::FakePagerDuty;

use std::sync::Arc;
use std::time::Duration;

use rampart::event::AuditEvent;
use rampart::model::{Severity, Verdict};
use rampart::respond::dispatch::DispatchSettings;
use rampart::respond::on_triage::FollowUps;
use rampart::respond::registry::{build_all, BuildContext};
use rampart::state::model::{JournalEntry, Status};
use rampart::state::MemoryStore;
use rampart::triage::{NewSuppression, Scope, Triage, Verdict as Outcome};

const T0: i64 = 1_767_225_600;
const KEY: &str = "R0f3e2d1c0b9a8f7e6d5c4b3a29181706";

fn event(id: &str, user: &str, severity: Severity) -> AuditEvent {
    let mut ev: AuditEvent = serde_json::from_value(serde_json::json!({
        "auditID": id, "stage": "ResponseComplete", "verb": "create",
        "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "user": {"username": user}, "sourceIPs": ["203.0.113.7"],
        "objectRef": {"resource": "clusterrolebindings", "name": "ops-admin", "apiGroup": "rbac.authorization.k8s.io"},
        "responseStatus": {"code": 201},
        "requestReceivedTimestamp": rampart::event::time::format_rfc3339(T0),
    }))
    .unwrap();
    ev.provenance.cluster = "prod".into();
    ev.verdicts = vec![Verdict {
        playbook: "cluster-admin-binding".into(),
        title: format!("{user} bound cluster-admin"),
        severity,
        score: 90,
        dedup: format!("{user}/{id}"),
        context: Default::default(),
        responses: vec![],
        mitre: vec!["T1098".into()],
        gating: Default::default(),
    }];
    ev
}

/// The responders `respond.pagerduty` asks for, built as `rampart run` builds them, with the
/// real dispatcher over them.
async fn start(url: &str, key: &str) -> common::Dispatching {
    start_with_triage(url, key).await.0
}

/// As [`start`], with triage over the stage's store and the responders observing it, as
/// `rampart run` wires them.
async fn start_with_triage(url: &str, key: &str) -> (common::Dispatching, Arc<Triage>) {
    start_with(&format!("routing_key: {key}\n    url: {url}\n")).await
}

/// As [`start_with_triage`], with `section` as `respond.pagerduty` (indented four spaces).
async fn start_with(section: &str) -> (common::Dispatching, Arc<Triage>) {
    let s = common::Scratch::new();
    let cfg = s.config(&format!(
        "sources:\n  files:\n    - path: /dev/null\nrespond:\n  pagerduty:\n    {section}"
    ));
    let built = build_all(&BuildContext {
        config: &cfg,
        store: Arc::new(MemoryStore::default()),
    })
    .await
    .unwrap();
    let names: Vec<&str> = built.responders.iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        ["pagerduty"],
        "registered and built from its section"
    );
    let r = common::Dispatching::start(
        built.responders.clone(),
        DispatchSettings {
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_millis(200),
            ..DispatchSettings::default()
        },
    );
    let triage = Arc::new(Triage::open(r.st.outbox().store().clone(), 30 * 86_400).unwrap());
    triage.observe(Arc::new(FollowUps::new(
        built.responders,
        r.st.outbox().clone(),
    )));
    (r, triage)
}

async fn journaled(r: &common::Dispatching, id: &str) -> JournalEntry {
    common::eventually(id, Duration::from_secs(20), || {
        r.st.outbox().journal(id).unwrap()
    })
    .await
}

#[tokio::test]
async fn serious_alerts_page_once_per_thread_and_the_rest_do_not() {
    let pd = FakePagerDuty::start(KEY).await;
    let r = start(&pd.url, KEY).await;
    r.feed(&event("e1", "mallory", Severity::Critical));
    let j = journaled(&r, "prod/e1/cluster-admin-binding/pagerduty").await;
    assert_eq!(j.status, Status::Done, "{j:?}");
    let ev = &pd.events()[0];
    assert_eq!(ev["event_action"], "trigger");
    assert_eq!(ev["dedup_key"], "prod/e1/cluster-admin-binding");
    assert_eq!(ev["payload"]["severity"], "critical");
    assert_eq!(ev["payload"]["source"], "prod");
    assert_eq!(ev["payload"]["class"], "cluster-admin-binding");
    assert_eq!(ev["payload"]["component"], "clusterrolebindings");
    assert_eq!(
        ev["payload"]["summary"],
        "mallory bound cluster-admin (prod)"
    );
    assert_eq!(ev["payload"]["custom_details"]["actor"], "mallory");
    assert_eq!(ev["payload"]["custom_details"]["mitre"][0], "T1098");

    // A replayed event raises nothing, and a high alert maps to PagerDuty's "error".
    r.feed(&event("e1", "mallory", Severity::Critical));
    r.feed(&event("e2", "trent", Severity::High));
    let j = journaled(&r, "prod/e2/cluster-admin-binding/pagerduty").await;
    assert_eq!(j.status, Status::Done);
    assert_eq!(pd.events()[1]["payload"]["severity"], "error");

    // Below the default min_severity (high): journaled as skipped, never sent.
    r.feed(&event("e3", "oscar", Severity::Medium));
    let j = journaled(&r, "prod/e3/cluster-admin-binding/pagerduty").await;
    assert_eq!(j.status, Status::Skipped);
    assert!(j.detail.contains("min_severity"), "{}", j.detail);
    // The address behind e1 and e2 reached risk 180 (90 + 90, threshold 150): one high-risk alert, paged too.
    let events = pd.events();
    assert_eq!(
        pd.requests(),
        3,
        "one request per serious alert: {events:#?}"
    );
    assert!(
        events[2]["payload"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("[high risk]"),
        "{:#}",
        events[2]
    );
    assert!(
        pd.incidents().values().all(|n| *n == 1),
        "{:?}",
        pd.incidents()
    );
    r.stop().await;
}

#[tokio::test]
async fn throttling_and_outages_are_retried_and_a_refused_event_is_reported_without_its_key() {
    let pd = FakePagerDuty::start(KEY).await;
    pd.script(&[429, 503]);
    let r = start(&pd.url, KEY).await;
    r.feed(&event("e1", "mallory", Severity::Critical));
    let j = journaled(&r, "prod/e1/cluster-admin-binding/pagerduty").await;
    assert_eq!((j.status, j.attempts), (Status::Done, 3), "{j:?}");
    assert_eq!(pd.events().len(), 1);
    r.stop().await;

    // A key PagerDuty does not know: refused (400), not retried, and the key is nowhere.
    let wrong = "Rwrong0000000000000000000000000000";
    let r = start(&pd.url, wrong).await;
    r.feed(&event("e9", "mallory", Severity::Critical));
    let j = journaled(&r, "prod/e9/cluster-admin-binding/pagerduty").await;
    assert_eq!(j.status, Status::Failed);
    assert!(
        j.detail.contains("'routing_key' is invalid"),
        "{}",
        j.detail
    );
    let journal = serde_json::to_string(&j).unwrap();
    assert!(
        !journal.contains(wrong) && !journal.contains(KEY),
        "{journal}"
    );
    assert_eq!(pd.events().len(), 1);
    r.stop().await;
}

/// The events the fake accepted for one incident, in order.
fn for_incident(pd: &FakePagerDuty, key: &str) -> Vec<serde_json::Value> {
    pd.events()
        .into_iter()
        .filter(|e| e["dedup_key"] == key)
        .collect()
}

#[tokio::test]
async fn marking_acknowledges_or_resolves_the_incident_and_a_snooze_resolves_it() {
    let pd = FakePagerDuty::start(KEY).await;
    let (r, triage) = start_with_triage(&pd.url, KEY).await;
    let e1 = "prod/e1/cluster-admin-binding";
    r.feed(&event("e1", "mallory", Severity::Critical));
    assert_eq!(
        journaled(&r, &format!("{e1}/pagerduty")).await.status,
        Status::Done
    );

    // False positive: resolved, with only the routing key, the dedup key and the action.
    triage
        .mark(e1, Outcome::FalsePositive, "", "alice")
        .unwrap();
    let j = journaled(&r, &format!("{e1}/pagerduty/resolve")).await;
    assert_eq!(j.status, Status::Done, "{j:?}");
    assert!(
        j.detail.contains("resolved the PagerDuty incident"),
        "{}",
        j.detail
    );
    let events = for_incident(&pd, e1);
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0]["event_action"], "trigger");
    let mut keys: Vec<&String> = events[1].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["dedup_key", "event_action", "routing_key"]);
    assert_eq!(events[1]["event_action"], "resolve");
    assert_eq!(events[1]["routing_key"], KEY);

    // True positive: acknowledged; marking it again sends nothing more (one delivery id).
    let e2 = "prod/e2/cluster-admin-binding";
    r.feed(&event("e2", "trent", Severity::High));
    triage
        .mark(e2, Outcome::TruePositive, "on it", "bob")
        .unwrap();
    let j = journaled(&r, &format!("{e2}/pagerduty/acknowledge")).await;
    assert_eq!(j.status, Status::Done, "{j:?}");
    triage.mark(e2, Outcome::TruePositive, "", "bob").unwrap();
    let events = for_incident(&pd, e2);
    assert_eq!(
        events
            .iter()
            .map(|e| e["event_action"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["trigger", "acknowledge"],
        "the trigger went first (queued before the acknowledge)"
    );

    // A snooze of e3's group resolves its incident.
    let e3 = "prod/e3/cluster-admin-binding";
    r.feed(&event("e3", "oscar", Severity::Critical));
    let s = triage
        .suppress(
            NewSuppression {
                playbook: Some("cluster-admin-binding".into()),
                scope: Scope::Group {
                    cluster: "prod".into(),
                    dedup: "oscar/e3".into(),
                },
                reason: "snoozed from Slack".into(),
                for_secs: 86_400,
            },
            "slack:U1 (alice)",
        )
        .unwrap();
    assert!(s.expires_ms > s.created_ms);
    let j = journaled(&r, &format!("{e3}/pagerduty/resolve")).await;
    assert_eq!(j.status, Status::Done, "{j:?}");
    assert_eq!(for_incident(&pd, e3)[1]["event_action"], "resolve");

    // An alert PagerDuty never paged for (below min_severity) gets nothing.
    let e4 = "prod/e4/cluster-admin-binding";
    r.feed(&event("e4", "peggy", Severity::Medium));
    assert_eq!(
        journaled(&r, &format!("{e4}/pagerduty")).await.status,
        Status::Skipped
    );
    triage
        .mark(e4, Outcome::FalsePositive, "", "alice")
        .unwrap();
    // Marked after it, so delivered after it if it were queued: e1 marked again (already resolved).
    triage.mark(e1, Outcome::TruePositive, "", "alice").unwrap();
    journaled(&r, &format!("{e1}/pagerduty/acknowledge")).await;
    assert!(r
        .st
        .outbox()
        .journal(&format!("{e4}/pagerduty/resolve"))
        .unwrap()
        .is_none());
    assert!(for_incident(&pd, e4).is_empty());
    assert_eq!(
        for_incident(&pd, e2).len(),
        2,
        "the second mark sent nothing"
    );
    r.stop().await;
}

#[tokio::test]
async fn routes_page_the_actor_s_team_or_the_severity_s_service_and_closing_events_follow() {
    const PAYMENTS: &str = "Rpaymentsteam00000000000000000000";
    const CRITICAL: &str = "Rcriticalsvc000000000000000000000";
    let pd = FakePagerDuty::start_with_keys(&[KEY, PAYMENTS, CRITICAL]).await;
    let (r, triage) = start_with(&format!(
        "routing_key: {KEY}\n    url: {}\n    routes:\n      - routing_key: {PAYMENTS}\n        teams: [payments]\n      - routing_key: {CRITICAL}\n        min_severity: critical\n",
        pd.url
    ))
    .await;
    let in_team = |mut ev: AuditEvent, team: &str| {
        let mut x = rampart::model::Enrichment::default();
        x.identity.team = Some(team.to_owned());
        ev.enrichment = Some(Box::new(x));
        ev
    };
    // A payments engineer's critical alert: the first route (the team) wins over the second.
    r.feed(&in_team(
        event("e1", "alice", Severity::Critical),
        "payments",
    ));
    r.feed(&in_team(event("e2", "bob", Severity::Critical), "platform"));
    r.feed(&in_team(event("e3", "carol", Severity::High), "platform"));
    for id in ["e1", "e2", "e3"] {
        let j = journaled(&r, &format!("prod/{id}/cluster-admin-binding/pagerduty")).await;
        assert_eq!(j.status, Status::Done, "{j:?}");
    }
    let key_of = |id: &str| {
        for_incident(&pd, &format!("prod/{id}/cluster-admin-binding"))[0]["routing_key"].clone()
    };
    assert_eq!(key_of("e1"), PAYMENTS);
    assert_eq!(key_of("e2"), CRITICAL);
    assert_eq!(key_of("e3"), KEY, "no route matches: the default service");
    // The resolve goes to the service that holds the incident.
    let e1 = "prod/e1/cluster-admin-binding";
    triage
        .mark(e1, Outcome::FalsePositive, "", "alice")
        .unwrap();
    journaled(&r, &format!("{e1}/pagerduty/resolve")).await;
    let events = for_incident(&pd, e1);
    assert_eq!(events[1]["event_action"], "resolve");
    assert_eq!(events[1]["routing_key"], PAYMENTS);
    r.stop().await;
}

#[test]
fn a_route_that_matches_everything_or_has_no_key_is_refused() {
    let yaml = "sources:\n  files:\n    - path: /dev/null\nrespond:\n  pagerduty:\n    routing_key: Rdefault\n    routes:\n      - routing_key: ''\n      - routing_key: Rother\n        teams: [payments]\n";
    let err = rampart::config::load_str(yaml, "test")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("respond.pagerduty.routes[0].routing_key"),
        "{err}"
    );
    assert!(
        err.contains("respond.pagerduty.routes[0]: matches every alert"),
        "{err}"
    );
    assert!(!err.contains("routes[1]"), "{err}");
}

#[test]
fn a_bad_pagerduty_section_reports_every_problem_with_its_path() {
    let yaml = "sources:\n  files:\n    - path: /dev/null\nrespond:\n  pagerduty:\n    routing_key: ''\n    url: events.pagerduty.com\n    min_severity: urgent\n";
    let err = rampart::config::load_str(yaml, "test")
        .unwrap_err()
        .to_string();
    assert!(err.contains("respond.pagerduty.min_severity"), "{err}");
    let yaml = "sources:\n  files:\n    - path: /dev/null\nrespond:\n  pagerduty:\n    routing_key: ''\n    url: events.pagerduty.com\n";
    let err = rampart::config::load_str(yaml, "test")
        .unwrap_err()
        .to_string();
    for path in ["respond.pagerduty.routing_key", "respond.pagerduty.url"] {
        assert!(err.contains(path), "{path} in {err}");
    }
}
