//! Responses that wait for a human, and responders working on several alerts at once: what on-call sees in the journal when they approve, reject, decide late or twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use common::Dispatching;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart::event::AuditEvent;
use rampart::playbook::{ResponseRequest, Severity, Verdict};
use rampart::respond::dispatch::DispatchSettings;
use rampart::respond::{BoxFuture, Effect, Responder, Retry};
use rampart::state::approvals::DecideOutcome;
use rampart::state::model::{wall_ms, Decision, Delivery, Status};
use rampart::state::{MemoryStore, StateSettings, StateStage};

const T0: i64 = 1_767_225_600;

fn event(id: &str, user: &str, approval: bool) -> AuditEvent {
    let mut ev: AuditEvent = serde_json::from_value(serde_json::json!({
        "auditID": id,
        "stage": "ResponseComplete",
        "verb": "create",
        "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "user": {"username": user},
        "sourceIPs": ["203.0.113.7"],
        "objectRef": {"resource": "clusterrolebindings", "apiGroup": "rbac.authorization.k8s.io", "name": format!("admin-{user}")},
        "requestReceivedTimestamp": rampart::event::time::format_rfc3339(T0),
    }))
    .unwrap();
    ev.provenance.cluster = "prod".into();
    ev.verdicts = vec![Verdict {
        playbook: "cluster-admin-binding".into(),
        title: "admin binding".into(),
        severity: Severity::Critical,
        score: 90,
        dedup: user.into(),
        context: Default::default(),
        responses: vec![ResponseRequest {
            kind: "revoke".into(),
            approval,
            params: Default::default(),
        }],
        mitre: Vec::new(),
        gating: Default::default(),
    }];
    ev
}

/// Records what it was asked to do, holding each call `hold` long.
struct Recorder {
    name: &'static str,
    concurrency: usize,
    hold: Duration,
    calls: Mutex<Vec<Delivery>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    threads_in_flight: Mutex<Vec<String>>,
    same_thread_overlap: AtomicUsize,
    dry: Mutex<Vec<bool>>,
}

impl Recorder {
    fn new(name: &'static str, concurrency: usize, hold: Duration) -> Arc<Self> {
        Arc::new(Self {
            name,
            concurrency,
            hold,
            calls: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            threads_in_flight: Mutex::default(),
            same_thread_overlap: AtomicUsize::new(0),
            dry: Mutex::default(),
        })
    }
}

impl Responder for Recorder {
    fn name(&self) -> &str {
        self.name
    }
    fn takes_every_alert(&self) -> bool {
        self.name == "chat"
    }
    fn concurrency(&self) -> usize {
        self.concurrency
    }
    fn deliver<'a>(&'a self, d: &'a Delivery, dry: bool) -> BoxFuture<'a, Result<Effect, Retry>> {
        Box::pin(async move {
            self.dry.lock().unwrap().push(dry);
            let thread = d.alert.thread.clone().unwrap_or_else(|| d.alert.id.clone());
            {
                let mut t = self.threads_in_flight.lock().unwrap();
                if t.contains(&thread) {
                    self.same_thread_overlap.fetch_add(1, Ordering::SeqCst);
                }
                t.push(thread.clone());
            }
            let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(self.hold).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.threads_in_flight
                .lock()
                .unwrap()
                .retain(|t| *t != thread);
            self.calls.lock().unwrap().push(d.clone());
            Ok(Effect::done(format!("did {}", d.id)))
        })
    }
}

fn start(responders: Vec<Arc<dyn Responder>>) -> Dispatching {
    Dispatching::start(responders, DispatchSettings::default())
}

/// Waits (paused time) until the journal shows `id` as `want`.
async fn status_of(r: &Dispatching, id: &str, want: Status) -> rampart::state::model::JournalEntry {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(j) = r.st.outbox().journal(id).unwrap() {
            if j.status == want {
                return j;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never became {want:?}: {:?}",
            r.st.outbox().journal(id).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn decision(approve: bool, by: &str) -> Decision {
    Decision {
        approve,
        by: by.into(),
        at_ms: wall_ms(),
    }
}

const ID: &str = "prod/e1/cluster-admin-binding/revoke.0";

#[tokio::test(start_paused = true)]
async fn an_approved_response_runs_once_after_the_approval_and_a_second_decision_changes_nothing() {
    let revoke = Recorder::new("revoke", 1, Duration::ZERO);
    let r = start(vec![revoke.clone()]);
    r.feed(&event("e1", "mallory", true));

    let pending = status_of(&r, ID, Status::Pending).await;
    assert!(
        pending.detail.contains("waiting for approval"),
        "{pending:?}"
    );
    assert!(
        revoke.calls.lock().unwrap().is_empty(),
        "nothing runs before a human decides"
    );
    assert_eq!(r.st.outbox().parked().unwrap().len(), 1);

    let out =
        r.st.outbox()
            .decide(ID, decision(true, "U042 (alice)"), T0 + 86_400)
            .unwrap();
    assert_eq!(out, DecideOutcome::Approved);
    let done = status_of(&r, ID, Status::Done).await;
    assert_eq!(done.detail, format!("did {ID}"));
    let calls = revoke.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].approved.as_ref().unwrap().by, "U042 (alice)");

    let again =
        r.st.outbox()
            .decide(ID, decision(false, "U077 (bob)"), T0 + 86_400)
            .unwrap();
    assert!(
        matches!(&again, DecideOutcome::AlreadyDecided(d) if d.approve && d.by == "U042 (alice)"),
        "{again:?}"
    );
    assert!(r.st.outbox().parked().unwrap().is_empty());
    assert_eq!(revoke.calls.lock().unwrap().len(), 1, "still exactly once");
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_rejected_response_never_runs_and_the_journal_says_who_rejected_it() {
    let revoke = Recorder::new("revoke", 1, Duration::ZERO);
    let r = start(vec![revoke.clone()]);
    r.feed(&event("e1", "mallory", true));
    status_of(&r, ID, Status::Pending).await;
    let out =
        r.st.outbox()
            .decide(ID, decision(false, "U077 (bob)"), T0 + 86_400)
            .unwrap();
    assert_eq!(out, DecideOutcome::Rejected);
    let j = status_of(&r, ID, Status::Rejected).await;
    assert!(
        j.detail.starts_with("rejected by U077 (bob) at "),
        "{}",
        j.detail
    );
    assert!(revoke.calls.lock().unwrap().is_empty());
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_approval_that_comes_too_late_does_nothing() {
    let revoke = Recorder::new("revoke", 1, Duration::ZERO);
    let r = start(vec![revoke.clone()]);
    r.feed(&event("e1", "mallory", true));
    status_of(&r, ID, Status::Pending).await;
    let parked = r.st.outbox().parked().unwrap();
    let expiry = parked[0].expires_ms;
    assert!(expiry > wall_ms() + 3_000_000, "an hour by default");

    // The sweep runs past the deadline; the click arrives afterwards.
    assert_eq!(r.st.outbox().expire_parked(expiry).unwrap(), 1);
    let j = status_of(&r, ID, Status::Expired).await;
    assert!(j.detail.contains("not executed"), "{}", j.detail);
    let late =
        r.st.outbox()
            .decide(ID, decision(true, "U042 (alice)"), T0 + 86_400)
            .unwrap();
    assert_eq!(late, DecideOutcome::Expired);
    assert!(revoke.calls.lock().unwrap().is_empty());

    // A decision on something that never waited is refused.
    let unknown =
        r.st.outbox()
            .decide("prod/nope/x/revoke.0", decision(true, "U042"), T0)
            .unwrap();
    assert_eq!(unknown, DecideOutcome::Unknown);
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_decision_made_before_the_responder_reaches_the_item_is_honoured() {
    // No dispatcher yet: the response is still queued when the human clicks.
    let revoke = Recorder::new("revoke", 1, Duration::ZERO);
    let st = Arc::new(
        StateStage::open(Arc::new(MemoryStore::default()), StateSettings::default()).unwrap(),
    );
    st.process(&event("e1", "mallory", true)).unwrap();
    st.commit().unwrap();
    let out = st
        .outbox()
        .decide(ID, decision(true, "U042 (alice)"), T0 + 86_400)
        .unwrap();
    assert_eq!(out, DecideOutcome::Approved);

    let r = Dispatching::over(st, vec![revoke.clone()], DispatchSettings::default());
    status_of(&r, ID, Status::Done).await;
    assert_eq!(revoke.calls.lock().unwrap().len(), 1);
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn responses_without_approval_run_at_once_and_unconfigured_ones_with_approval_are_skipped() {
    let revoke = Recorder::new("revoke", 1, Duration::ZERO);
    let r = start(vec![revoke.clone()]);
    r.feed(&event("e1", "mallory", false));
    status_of(&r, ID, Status::Done).await;
    r.stop().await;

    let r = start(vec![]);
    r.feed(&event("e1", "mallory", true));
    let j = status_of(&r, ID, Status::Skipped).await;
    assert_eq!(j.detail, "no revoke responder is configured");
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_responder_works_on_several_alerts_at_once_but_on_one_thread_in_order() {
    let chat = Recorder::new("chat", 4, Duration::from_millis(500));
    let r = start(vec![chat.clone()]);
    // Eight alerts (distinct users) and, for each, a second match that becomes an update.
    for i in 0..8 {
        let mut ev = event(&format!("a{i}"), &format!("user{i}"), false);
        ev.verdicts[0].responses.clear();
        r.st.process(&ev).unwrap();
    }
    for i in 0..8 {
        let mut ev = event(&format!("b{i}"), &format!("user{i}"), false);
        ev.verdicts[0].responses.clear();
        ev.request_received_timestamp = Some(rampart::event::time::format_rfc3339(T0 + 120));
        r.st.process(&ev).unwrap();
    }
    r.st.commit().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    // Eight alerts and eight updates (the shared source address also raises a high-risk alert).
    let delivered = || {
        chat.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.alert.kind != rampart::state::model::AlertKind::HighRisk)
            .count()
    };
    while delivered() < 16 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} delivered",
            delivered()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        chat.most_in_flight.load(Ordering::SeqCst),
        4,
        "the limit, and no more"
    );
    assert_eq!(chat.same_thread_overlap.load(Ordering::SeqCst), 0);
    // Within each thread the alert went out before its update.
    let calls = chat.calls.lock().unwrap().clone();
    for i in 0..8 {
        let id = format!("prod/a{i}/cluster-admin-binding");
        let first = calls.iter().position(|d| d.alert.id == id).unwrap();
        let update = calls
            .iter()
            .position(|d| d.alert.thread.as_deref() == Some(id.as_str()))
            .unwrap();
        assert!(first < update, "{id}: update before the alert");
    }
    r.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_playbook_in_dry_run_only_records_what_its_responses_would_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trial.rhai"),
        r#"fn meta() { #{ id: "trial", title: "new idea", severity: "high", dry_run: true } }
fn rule(e) { true }
fn respond(e) { [revoke_binding()] }
"#,
    )
    .unwrap();
    let cfg = rampart::config::PlaybooksConfig {
        dir: dir.path().to_owned(),
        ..Default::default()
    };
    let set = rampart::playbook::load_dir(dir.path(), &cfg).unwrap();
    let mut ev = event("e1", "mallory", false);
    ev.verdicts = set
        .evaluate(&rampart::playbook::Ev::new(ev.clone()))
        .verdicts;
    assert!(ev.verdicts[0].gating.dry_run);

    let revoke = Recorder::new("revoke_binding", 1, Duration::ZERO);
    let chat = Recorder::new("chat", 1, Duration::ZERO);
    let r = start(vec![revoke.clone(), chat.clone()]);
    r.feed(&ev);
    status_of(&r, "prod/e1/trial/revoke_binding.0", Status::Done).await;
    status_of(&r, "prod/e1/trial/chat", Status::Done).await;
    assert_eq!(*revoke.dry.lock().unwrap(), vec![true]);
    assert_eq!(*chat.dry.lock().unwrap(), vec![true]);
    assert_eq!(
        r.st.risk("prod", "mallory").unwrap(),
        0.0,
        "a trial adds no risk"
    );

    // The same playbook without dry_run acts for real.
    let mut ev2 = event("e2", "trent", false);
    ev2.verdicts = set
        .evaluate(&rampart::playbook::Ev::new(ev2.clone()))
        .verdicts;
    ev2.verdicts[0].gating.dry_run = false;
    r.feed(&ev2);
    status_of(&r, "prod/e2/trial/revoke_binding.0", Status::Done).await;
    assert_eq!(*revoke.dry.lock().unwrap(), vec![true, false]);
    r.stop().await;
}
