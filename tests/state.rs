//! The state stage as a user sees it: one alert per dedup window with its count, follow-up summaries, thresholds, distinct counts, sequences, entity risk, restarts and replays — under paused tokio time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rampart::event::AuditEvent;
use rampart::model::{Gating, Threshold};
use rampart::playbook::{Severity, Verdict};
use rampart::respond::{BoxFuture, Effect, Responder, Retry};
use rampart::state::model::{AlertKind, Delivery, Status};
use rampart::state::{MemoryStore, SledStore, StateSettings, StateStage, StateStore};

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn event(id: &str, user: &str, name: &str, t: i64, verdicts: Vec<Verdict>) -> AuditEvent {
    let mut ev: AuditEvent = serde_json::from_value(serde_json::json!({
        "auditID": id,
        "stage": "ResponseComplete",
        "verb": "get",
        "requestURI": format!("/api/v1/namespaces/prod/secrets/{name}"),
        "user": {"username": user},
        "sourceIPs": ["203.0.113.7"],
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": name},
        "requestReceivedTimestamp": rampart::event::time::format_rfc3339(t),
    }))
    .unwrap();
    ev.provenance.cluster = "prod-eu".into();
    ev.verdicts = verdicts;
    ev
}

fn verdict(playbook: &str, dedup: &str, score: i64, gating: Gating) -> Verdict {
    Verdict {
        playbook: playbook.into(),
        title: format!("{playbook} fired"),
        severity: Severity::Medium,
        score,
        dedup: dedup.into(),
        context: Default::default(),
        responses: Vec::new(),
        mitre: vec!["T1552".into()],
        gating,
    }
}

fn settings() -> StateSettings {
    StateSettings {
        dedup_window: 600,
        update_interval: 60,
        sinks: vec!["sink".into()],
        ..StateSettings::default()
    }
}

fn stage(store: Arc<dyn StateStore>, s: StateSettings) -> StateStage {
    StateStage::open(store, s).unwrap()
}

fn in_memory(s: StateSettings) -> StateStage {
    stage(Arc::new(MemoryStore::default()), s)
}

/// Everything queued for the sink, in order.
fn queued(st: &StateStage) -> Vec<Delivery> {
    st.outbox()
        .head("sink", 10_000)
        .unwrap()
        .into_iter()
        .map(|(_, d)| d)
        .collect()
}

fn kinds(st: &StateStage) -> Vec<AlertKind> {
    queued(st).iter().map(|d| d.alert.kind).collect()
}

#[tokio::test(start_paused = true)]
async fn matches_in_one_window_collapse_into_one_alert_with_a_count_and_a_follow_up_when_it_closes()
{
    let st = in_memory(settings());
    let v = || vec![verdict("secret-read", "alice", 40, Gating::default())];
    // 37 reads by alice over ~6 minutes of event time.
    for i in 0..37 {
        let o = st
            .process(&event(&format!("a{i}"), "alice", "db", T0 + i * 10, v()))
            .unwrap();
        assert_eq!(
            (o.alerts, o.suppressed),
            if i == 0 { (1, 0) } else { (0, 1) }
        );
    }
    st.commit().unwrap();
    let alerts = st.alerts().unwrap();
    assert_eq!(alerts.len(), 1, "one alert, not 37");
    let a = &alerts[0];
    assert_eq!(a.id, "prod-eu/a0/secret-read");
    assert_eq!(a.count, 37);
    assert_eq!(
        a.summary(),
        "seen 37 times since 2026-01-01T00:00:00Z, last at 2026-01-01T00:06:00Z"
    );
    // The first alert, then an update per minute of event time (not one per match).
    let k = kinds(&st);
    assert_eq!(k[0], AlertKind::Alert);
    assert_eq!(k.iter().filter(|k| **k == AlertKind::Update).count(), 6);

    // Nothing more arrives; ten minutes after the first match the window closes on its own.
    assert_eq!(st.sweep().unwrap(), 0);
    tokio::time::advance(Duration::from_secs(240)).await;
    st.sweep().unwrap();
    let follow: Vec<Delivery> = queued(&st)
        .into_iter()
        .filter(|d| d.alert.kind == AlertKind::FollowUp)
        .collect();
    assert_eq!(follow.len(), 1);
    assert_eq!(
        follow[0].alert.thread.as_deref(),
        Some("prod-eu/a0/secret-read")
    );
    assert_eq!(follow[0].alert.count, 37);
    assert!(
        follow[0].alert.title.contains("seen 37 times"),
        "{}",
        follow[0].alert.title
    );
    assert_eq!(st.open_windows().unwrap(), 0);

    // A later match opens a new window: a new alert.
    let o = st
        .process(&event("late", "alice", "db", T0 + 1000, v()))
        .unwrap();
    assert_eq!(o.alerts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_window_with_a_single_match_closes_without_a_follow_up() {
    let st = in_memory(settings());
    st.process(&event(
        "x",
        "bob",
        "db",
        T0,
        vec![verdict("p", "bob", 20, Gating::default())],
    ))
    .unwrap();
    tokio::time::advance(Duration::from_secs(601)).await;
    st.sweep().unwrap();
    assert_eq!(kinds(&st), vec![AlertKind::Alert]);
}

#[tokio::test(start_paused = true)]
async fn a_restart_inside_a_window_does_not_re_alert_and_a_replayed_event_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let v = || vec![verdict("secret-read", "alice", 40, Gating::default())];
    {
        let st = stage(Arc::new(SledStore::open(dir.path()).unwrap()), settings());
        st.process(&event("e1", "alice", "db", T0, v())).unwrap();
        st.commit().unwrap();
    }
    let st = stage(Arc::new(SledStore::open(dir.path()).unwrap()), settings());
    let replay = st.process(&event("e1", "alice", "db", T0, v())).unwrap();
    assert_eq!(
        (replay.replayed, replay.alerts),
        (1, 0),
        "the same auditID again"
    );
    let later = st
        .process(&event("e2", "alice", "db", T0 + 300, v()))
        .unwrap();
    assert_eq!(
        (later.alerts, later.suppressed),
        (0, 1),
        "inside the window across the restart"
    );
    assert_eq!(st.alerts().unwrap()[0].count, 2);
    assert_eq!(
        kinds(&st),
        vec![AlertKind::Alert, AlertKind::Update],
        "one alert in total, and its count update"
    );
}

#[tokio::test(start_paused = true)]
async fn a_count_threshold_fires_on_the_nth_match_inside_its_window() {
    let st = in_memory(settings());
    let gate = Gating {
        threshold: Some(Threshold {
            at_least: 20,
            window: 600,
            distinct: None,
        }),
        ..Gating::default()
    };
    let v = || vec![verdict("forbidden-burst", "203.0.113.7", 40, gate.clone())];
    // 19 forbidden responses in ten minutes: nothing.
    for i in 0..19 {
        let o = st
            .process(&event(&format!("f{i}"), "eve", "x", T0 + i * 30, v()))
            .unwrap();
        assert_eq!(o.below_threshold, 1);
    }
    assert!(kinds(&st).is_empty());
    // The 20th, still inside the window of the first: one alert.
    let o = st
        .process(&event("f19", "eve", "x", T0 + 590, v()))
        .unwrap();
    assert_eq!(o.alerts, 1);
    // Much later the old hits have left the window: below the threshold again.
    let o = st
        .process(&event("f20", "eve", "x", T0 + 5000, v()))
        .unwrap();
    assert_eq!(o.below_threshold, 1);
}

#[tokio::test(start_paused = true)]
async fn a_distinct_threshold_counts_different_values_not_repeats() {
    let st = in_memory(settings());
    let gate = |name: &str| Gating {
        threshold: Some(Threshold {
            at_least: 10,
            window: 300,
            distinct: Some("name".into()),
        }),
        value: Some(name.into()),
        ..Gating::default()
    };
    let read = |i: i64, name: &str| {
        event(
            &format!("r{i}-{name}"),
            "mallory",
            name,
            T0 + i,
            vec![verdict("secrets-enum", "mallory", 70, gate(name))],
        )
    };
    for i in 0..50 {
        assert_eq!(
            st.process(&read(i, "same")).unwrap().below_threshold,
            1,
            "one secret read 50 times"
        );
    }
    let mut fired = 0;
    for i in 0..9 {
        fired += st.process(&read(100 + i, &format!("s{i}"))).unwrap().alerts;
    }
    assert_eq!(fired, 1, "\"same\" plus 9 new names is 10 distinct");
}

#[tokio::test(start_paused = true)]
async fn risk_adds_up_across_playbooks_raises_one_high_risk_alert_and_decays() {
    let s = StateSettings {
        risk: rampart::state::risk::RiskSettings {
            threshold: 150.0,
            half_life: 3600,
        },
        ..settings()
    };
    let st = in_memory(s);
    let weak = |i: i64, p: &str| {
        event(
            &format!("w{i}"),
            "carol",
            "x",
            T0 + i,
            vec![verdict(p, &format!("carol-{p}"), 40, Gating::default())],
        )
    };
    st.process(&weak(0, "odd-hour-login")).unwrap();
    st.process(&weak(1, "new-country")).unwrap();
    st.process(&weak(2, "rbac-probe")).unwrap();
    assert!(st
        .alerts()
        .unwrap()
        .iter()
        .all(|a| a.kind == AlertKind::Alert));
    let o = st.process(&weak(3, "secret-list")).unwrap();
    assert_eq!(
        o.high_risk, 2,
        "the actor and the source address each crossed 150"
    );
    let high: Vec<_> = st
        .alerts()
        .unwrap()
        .into_iter()
        .filter(|a| a.kind == AlertKind::HighRisk)
        .collect();
    let carol = high.iter().find(|a| a.dedup == "carol").unwrap();
    assert_eq!(carol.contributions.len(), 4);
    assert_eq!(carol.contributions[0].playbook, "odd-hour-login");
    // One more weak signal: no second high-risk alert for carol.
    assert_eq!(st.process(&weak(4, "exec")).unwrap().high_risk, 0);
    let r0 = st.risk("prod-eu", "carol").unwrap();
    assert!((199.0..=200.0).contains(&r0), "{r0}");
    tokio::time::advance(Duration::from_secs(3600)).await;
    let r1 = st.risk("prod-eu", "carol").unwrap();
    assert!(
        (r1 - r0 / 2.0).abs() < 1.0,
        "halved after an hour: {r0} -> {r1}"
    );
}

/// Waits (paused time auto-advancing through backoffs) until the dispatcher has emptied the outbox.
async fn outbox_empty(st: &StateStage) {
    while st.outbox().pending().unwrap() > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stop_all(
    stop: tokio_util::sync::CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
) {
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
}

/// A responder that fails `fail` times, then succeeds; counts calls.
struct Flaky {
    fail: u32,
    calls: AtomicU32,
}

impl Responder for Flaky {
    fn name(&self) -> &str {
        "sink"
    }
    fn deliver<'a>(
        &'a self,
        _d: &'a Delivery,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Effect, Retry>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail {
                Err(Retry {
                    error: "503 from the far side".into(),
                    after: None,
                })
            } else if dry_run {
                Ok(Effect::with_status(Status::DryRun, "would post"))
            } else {
                Ok(Effect::done("posted"))
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn the_dispatcher_retries_with_backoff_journals_once_and_skips_what_the_journal_has() {
    let st = Arc::new(in_memory(settings()));
    let flaky = Arc::new(Flaky {
        fail: 3,
        calls: AtomicU32::new(0),
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let tasks = rampart::respond::dispatch::spawn(
        st.clone(),
        vec![flaky.clone()],
        Default::default(),
        stop.clone(),
    );
    let mut ev = event(
        "e1",
        "alice",
        "db",
        T0,
        vec![verdict("p", "alice", 40, Gating::default())],
    );
    ev.verdicts[0]
        .responses
        .push(rampart::playbook::ResponseRequest {
            kind: "revoke_binding".into(),
            approval: false,
            params: Default::default(),
        });
    st.process(&ev).unwrap();
    st.commit().unwrap();
    // Paused time auto-advances through the backoff sleeps.
    outbox_empty(&st).await;
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 4);
    let journal = st.outbox().journal_entries().unwrap();
    let sink = journal.iter().find(|j| j.responder == "sink").unwrap();
    assert_eq!((sink.status, sink.attempts), (Status::Done, 4));
    let revoke = journal
        .iter()
        .find(|j| j.responder == "revoke_binding")
        .unwrap();
    assert_eq!(
        revoke.status,
        Status::Skipped,
        "no Kubernetes responder configured"
    );
    assert_eq!(revoke.id, "prod-eu/e1/p/revoke_binding.0");

    // The same delivery queued again (a crash between effect and journal, then replay): not delivered twice.
    let again = st.outbox().journal("prod-eu/e1/p/sink").unwrap().unwrap();
    let d = Delivery {
        id: again.id.clone(),
        responder: "sink".into(),
        alert: st.alerts().unwrap()[0].clone(),
        response: None,
        enqueued_ms: rampart::state::model::wall_ms(),
        attempts: 0,
        not_before_ms: 0,
        target: None,
        approved: None,
    };
    st.outbox()
        .store()
        .apply(&[st.outbox().enqueue(&d)])
        .unwrap();
    st.outbox().wake();
    outbox_empty(&st).await;
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 4, "the journal had it");
    stop_all(stop, tasks).await;
}

#[tokio::test(start_paused = true)]
async fn dry_run_journals_what_would_have_been_done() {
    let st = Arc::new(in_memory(settings()));
    let flaky = Arc::new(Flaky {
        fail: 0,
        calls: AtomicU32::new(0),
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let s = rampart::respond::dispatch::DispatchSettings {
        dry_run: true,
        ..Default::default()
    };
    let tasks = rampart::respond::dispatch::spawn(st.clone(), vec![flaky], s, stop.clone());
    st.process(&event(
        "e1",
        "alice",
        "db",
        T0,
        vec![verdict("p", "alice", 40, Gating::default())],
    ))
    .unwrap();
    st.commit().unwrap();
    outbox_empty(&st).await;
    let j = st.outbox().journal_entries().unwrap();
    assert_eq!(j[0].status, Status::DryRun);
    assert_eq!(j[0].detail, "would post");
    stop_all(stop, tasks).await;
}

#[tokio::test(start_paused = true)]
async fn the_alerts_file_holds_each_delivery_once_even_when_it_is_delivered_again_after_a_restart()
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.jsonl");
    let st = Arc::new(in_memory(StateSettings {
        sinks: vec!["alerts_file".into()],
        ..settings()
    }));
    st.process(&event(
        "e1",
        "alice",
        "db",
        T0,
        vec![verdict("p", "alice", 40, Gating::default())],
    ))
    .unwrap();
    let d = queued_for(&st, "alerts_file");
    let file = rampart::respond::alerts_file::AlertsFile::open(&path).unwrap();
    assert_eq!(
        file.deliver(&d, false).await.unwrap().detail,
        format!("written to {}", path.display())
    );
    // A crash before the journal write; the next process opens the file again and gets the same delivery.
    drop(file);
    let file = rampart::respond::alerts_file::AlertsFile::open(&path).unwrap();
    assert!(file
        .deliver(&d, false)
        .await
        .unwrap()
        .detail
        .starts_with("already in"));
    let lines = common::read_jsonl(&path);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["delivery"], "prod-eu/e1/p/alerts_file");
    assert_eq!(lines[0]["kind"], "alert");
    assert_eq!(lines[0]["event"]["user"]["username"], "alice");
}

fn queued_for(st: &StateStage, responder: &str) -> Delivery {
    st.outbox().head(responder, 1).unwrap().remove(0).1
}

/// A playbook directory with one file.
fn one_playbook(body: &str) -> (tempfile::TempDir, rampart::playbook::PlaybookSet) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.rhai"), body).unwrap();
    let cfg = rampart::config::PlaybooksConfig {
        dir: dir.path().to_owned(),
        ..Default::default()
    };
    let set = rampart::playbook::load_dir(dir.path(), &cfg).unwrap();
    (dir, set)
}

fn api_event(id: &str, user: &str, verb: &str, resource: &str, t: i64) -> rampart::playbook::Ev {
    let mut ev = event(id, user, "n", t, Vec::new());
    ev.verb = verb.into();
    ev.object_ref.as_mut().unwrap().resource = Some(resource.into());
    rampart::playbook::Ev::new(ev)
}

#[test]
fn a_sequence_fires_in_event_time_order_tolerates_modest_reordering_and_expires() {
    let (_d, set) = one_playbook(
        r#"
fn meta() { #{ id: "bind-then-deploy", title: "privileged binding then a workload", severity: "high",
               on: #{ verbs: ["create", "patch"], resources: ["rolebindings", "deployments"] } } }
fn rule(e) {
    if e.resource == "rolebindings" { sequence(e.user, 1, 2, "5m") } else { sequence(e.user, 2, 2, "5m") }
}
"#,
    );
    let fires = |id: &str, user: &str, verb: &str, res: &str, t: i64| {
        !set.evaluate(&api_event(id, user, verb, res, t))
            .verdicts
            .is_empty()
    };
    // In order, within five minutes.
    assert!(!fires("1", "alice", "create", "rolebindings", T0));
    assert!(fires("2", "alice", "patch", "deployments", T0 + 200));
    // Too late: the workload came 6 minutes after the binding.
    assert!(!fires("3", "bob", "create", "rolebindings", T0));
    assert!(!fires("4", "bob", "create", "deployments", T0 + 360));
    // Out of order on arrival, 10 s apart in event time: tolerated.
    assert!(!fires("5", "carol", "create", "deployments", T0 + 10));
    assert!(!fires("6", "carol", "create", "rolebindings", T0));
    assert!(fires("7", "carol", "create", "deployments", T0 + 11));
    // Only one step: nothing.
    assert!(!fires("8", "dave", "create", "deployments", T0));
}

#[test]
fn thresholds_and_dedup_windows_are_declared_in_meta_and_reach_the_state_stage() {
    let (_d, set) = one_playbook(
        r#"
fn meta() { #{ id: "secrets-enum", title: "many secrets read", severity: "high", dedup_window: "30m",
               threshold: #{ distinct: 10, of: "name", window: "5m" }, on: #{ verbs: ["get"], resources: ["secrets"] } } }
fn rule(e) { true }
fn dedup(e) { e.user }
"#,
    );
    let st = in_memory(settings());
    let mut alerts = 0;
    for i in 0..12 {
        let mut ev = event(
            &format!("g{i}"),
            "mallory",
            &format!("secret-{i}"),
            T0 + i,
            Vec::new(),
        );
        ev.verdicts = set
            .evaluate(&rampart::playbook::Ev::new(ev.clone()))
            .verdicts;
        assert_eq!(
            ev.verdicts[0].gating.value.as_deref(),
            Some(format!("secret-{i}").as_str())
        );
        alerts += st.process(&ev).unwrap().alerts;
    }
    assert_eq!(alerts, 1, "fires at the 10th distinct secret, once");
    let a = &st.alerts().unwrap()[0];
    assert_eq!((a.count, a.dedup.as_str()), (3, "mallory"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.rhai"),
        "fn meta() { #{ title: \"x\", severity: \"low\", threshold: #{ distinct: 3, of: \"password\", window: \"soon\" } } }\nfn rule(e) { true }\n",
    )
    .unwrap();
    let cfg = rampart::config::PlaybooksConfig {
        dir: dir.path().to_owned(),
        ..Default::default()
    };
    let problems: Vec<String> = rampart::playbook::load_dir(dir.path(), &cfg)
        .err()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("threshold.window: invalid duration \"soon\"")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("unknown field \"password\"")),
        "{problems:?}"
    );
}
