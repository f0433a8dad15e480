//! Slack approvals: the interactivity endpoint verifies Slack's signature, refuses stale, replayed and unlisted requests, decides once and shows who decided; and no secret of the Slack setup reaches logs, details or the journal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{fake_slack, slack_kit};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_slack::{Behave, FakeSlack};
use rampart::config::{Seconds, Secret};
use rampart::playbook::Severity;
use rampart::respond::dispatch::{self, DispatchSettings};
use rampart::respond::slack::interact::{self, Approvals, DecideError, DecideOutcome};
use rampart::respond::slack::{SlackConfig, SlackResponder};
use rampart::respond::Responder;
use rampart::state::model::{wall_ms, Alert, AlertKind, Decision, Status};
use rampart::state::{MemoryStore, StateSettings, StateStage, StateStore};
use serde_json::{json, Value};
use slack_kit::*;
use tokio_util::sync::CancellationToken;

/// Decisions kept in memory, as the outbox keeps them.
#[derive(Default)]
struct Book {
    calls: Mutex<Vec<(String, Decision)>>,
    waiting: Mutex<HashMap<String, Option<Decision>>>,
    expired: HashSet<String>,
}

impl Approvals for Book {
    fn decide(&self, id: &str, d: Decision) -> Result<DecideOutcome, DecideError> {
        self.calls.lock().unwrap().push((id.to_owned(), d.clone()));
        if self.expired.contains(id) {
            return Ok(DecideOutcome::Expired);
        }
        let mut w = self.waiting.lock().unwrap();
        Ok(match w.get_mut(id) {
            None => DecideOutcome::Unknown,
            Some(Some(prev)) => DecideOutcome::AlreadyDecided(prev.clone()),
            Some(slot) => {
                *slot = Some(d.clone());
                if d.approve {
                    DecideOutcome::Approved
                } else {
                    DecideOutcome::Rejected
                }
            }
        })
    }
}

struct Approval {
    fake: FakeSlack,
    responder: SlackResponder,
    book: Arc<Book>,
    url: String,
    alert: Alert,
    id: String,
    blocks: Value,
}

async fn approval_setup(expired: bool) -> Approval {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    let store = Arc::new(MemoryStore::default());
    let mut cfg = bot_cfg(&fake);
    cfg.approvals = Some(approvals_cfg());
    cfg.channel_interval = Seconds::from_millis(1);
    let responder = responder(cfg, &store);
    let mut a = alert("prod-eu/appr/rbac", Severity::Critical, "rbac");
    a.responses = vec![
        serde_json::from_value(json!({"kind": "slack", "params": {"channel": "#sec"}})).unwrap(),
        serde_json::from_value(json!({"kind": "revoke_binding", "approval": true, "params": {"mode": "remove_subject"}})).unwrap(),
    ];
    let id = format!("{}/revoke_binding.1", a.id);
    let mut book = Book::default();
    book.waiting.lock().unwrap().insert(id.clone(), None);
    if expired {
        book.expired.insert(id.clone());
    }
    let book = Arc::new(book);
    deliver(&responder, &delivery(&a)).await;
    let blocks = fake.to("chat.postMessage")[0].body["blocks"].clone();
    assert!(
        text_of(&blocks).contains(&format!("\"value\":\"{id}\"")),
        "buttons carry the delivery id"
    );
    let app = interact::router(book.clone(), responder.interactions().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/slack/interactions",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Approval {
        fake,
        responder,
        book,
        url,
        alert: a,
        id,
        blocks,
    }
}

fn click(ap: &Approval, user: (&str, &str), action: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user.0, "username": user.1, "name": user.1},
        "actions": [{"type": "button", "action_id": action, "value": ap.id}],
        "response_url": ap.fake.response_url(1),
        "container": {"type": "message", "channel_id": "CSEC", "message_ts": "1700000000.000001"},
        "message": {"ts": "1700000000.000001", "blocks": ap.blocks},
    });
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

fn now() -> i64 {
    (wall_ms() / 1000) as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_approval_decides_once_and_the_message_shows_who_approved() {
    let ap = approval_setup(false).await;
    let body = click(&ap, ("U_ALICE", "alice"), "rampart.approve");
    let ts = now();
    let sig = interact::signature(SIGNING, &ts.to_string(), body.as_bytes());
    assert_eq!(send(&ap.url, ts, &sig, &body).await, 200);
    let calls = ap.book.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, ap.id);
    assert!(calls[0].1.approve && calls[0].1.by.contains("U_ALICE"));
    let reply = &ap
        .fake
        .wait_for("/respond/1", 1, Duration::from_secs(5))
        .await[0]
        .body;
    assert_eq!(reply["replace_original"], true);
    let t = text_of(&reply["blocks"]);
    assert!(
        t.contains("Approved by <@U_ALICE> at ") && t.contains("— executing"),
        "{t}"
    );
    assert!(!t.contains("rampart.approve"), "the buttons are gone");
    assert!(
        t.contains("Secret read from a Tor exit"),
        "the alert itself stays"
    );

    // A later count update keeps showing the decision, not the buttons.
    deliver(
        &ap.responder,
        &delivery(&derived(&ap.alert, AlertKind::Update, 5)),
    )
    .await;
    let up = text_of(&ap.fake.to("chat.update")[0].body);
    assert!(
        up.contains("Approved by <@U_ALICE>") && !up.contains("rampart.approve"),
        "{up}"
    );

    // Someone else clicks Reject on a stale copy: already decided, nothing changes.
    let body = click(&ap, ("U_BOB", "bob"), "rampart.reject");
    let sig = interact::signature(SIGNING, &ts.to_string(), body.as_bytes());
    assert_eq!(send(&ap.url, ts, &sig, &body).await, 200);
    let replies = ap
        .fake
        .wait_for("/respond/1", 2, Duration::from_secs(5))
        .await;
    assert!(text_of(&replies[1].body).contains("(decided before)"));
    assert_eq!(
        ap.book.waiting.lock().unwrap()[&ap.id]
            .as_ref()
            .map(|d| d.approve),
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stale_replayed_or_unlisted_requests_decide_nothing() {
    let ap = approval_setup(false).await;
    let body = click(&ap, ("U_ALICE", "alice"), "rampart.reject");
    let ts = now();
    let good = interact::signature(SIGNING, &ts.to_string(), body.as_bytes());
    let wrong = interact::signature("not-the-secret", &ts.to_string(), body.as_bytes());
    assert_eq!(send(&ap.url, ts, &wrong, &body).await, 401, "bad signature");
    let old = ts - 600;
    let stale = interact::signature(SIGNING, &old.to_string(), body.as_bytes());
    assert_eq!(
        send(&ap.url, old, &stale, &body).await,
        401,
        "stale timestamp"
    );
    let tampered = body.replace("reject", "approve");
    assert_eq!(
        send(&ap.url, ts, &good, &tampered).await,
        401,
        "body changed after signing"
    );
    let mallory = click(&ap, ("U_MALLORY", "mallory"), "rampart.approve");
    let msig = interact::signature(SIGNING, &ts.to_string(), mallory.as_bytes());
    assert_eq!(send(&ap.url, ts, &msig, &mallory).await, 200);
    let reply = &ap
        .fake
        .wait_for("/respond/1", 1, Duration::from_secs(5))
        .await[0]
        .body;
    assert_eq!(reply["response_type"], "ephemeral");
    assert_eq!(reply["replace_original"], false);
    assert!(
        ap.book.calls.lock().unwrap().is_empty(),
        "nothing decided so far"
    );

    assert_eq!(send(&ap.url, ts, &good, &body).await, 200);
    assert_eq!(send(&ap.url, ts, &good, &body).await, 401, "replay");
    let calls = ap.book.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "only the one valid request decided");
    assert!(!calls[0].1.approve);
    let replies = ap
        .fake
        .wait_for("/respond/1", 2, Duration::from_secs(5))
        .await;
    assert!(text_of(&replies[1].body).contains("Rejected by <@U_ALICE>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_approval_says_so() {
    let ap = approval_setup(true).await;
    let body = click(&ap, ("U_BOB", "bob"), "rampart.approve");
    let ts = now();
    let sig = interact::signature(SIGNING, &ts.to_string(), body.as_bytes());
    assert_eq!(
        send(&ap.url, ts, &sig, &body).await,
        200,
        "bob is an approver by username"
    );
    let reply = &ap
        .fake
        .wait_for("/respond/1", 1, Duration::from_secs(5))
        .await[0]
        .body;
    let t = text_of(&reply["blocks"]);
    assert!(
        t.contains("Expired — not run") && !t.contains("rampart.approve"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_details_or_the_journal() {
    let buf = logs();
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    // Webhook mode through the dispatcher: a hang (the client's error would carry the URL), then a refusal.
    fake.script(WEBHOOK_PATH, Behave::Hang);
    fake.script(WEBHOOK_PATH, Behave::Error(403, "action_prohibited"));
    let store = Arc::new(MemoryStore::default());
    let mut cfg = SlackConfig::new(Some(Secret::new(fake.webhook_url())), None);
    cfg.ca_file = Some(fake.ca_file.clone());
    cfg.timeout = Seconds::from_millis(300);
    cfg.approvals = Some(approvals_cfg());
    let debug = format!("{cfg:?}");
    let r = responder(cfg, &store);
    let debug = format!("{debug} {r:?} {:?}", r.interactions());
    let stage = Arc::new(StateStage::open(store.clone(), StateSettings::default()).unwrap());
    let op = stage
        .outbox()
        .enqueue(&delivery(&alert("prod-eu/sec/p", Severity::High, "p")));
    store.apply(&[op]).unwrap();
    let shutdown = CancellationToken::new();
    let settings = DispatchSettings {
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(100),
        ..DispatchSettings::default()
    };
    let tasks = dispatch::spawn(stage.clone(), vec![Arc::new(r)], settings, shutdown.clone());
    stage.outbox().wake();
    let journal = until_done(&stage, 1).await;
    shutdown.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(journal[0].status, Status::Failed);
    assert!(
        journal[0].detail.contains("HTTP 403 action_prohibited"),
        "{}",
        journal[0].detail
    );

    // Bot mode with a wrong token, and a forged interaction.
    let mut bad = bot_cfg(&fake);
    bad.bot_token = Some(Secret::new("xoxb-WrOnGtOkEn"));
    bad.approvals = Some(approvals_cfg());
    let r = responder(bad, &store);
    let e = deliver(&r, &delivery(&alert("prod-eu/sec2/p", Severity::High, "p"))).await;
    let app = interact::router(Arc::new(Book::default()), r.interactions().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/slack/interactions",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    assert_eq!(send(&url, now(), "v0=00", "payload=%7B%7D").await, 401);

    // A TLS failure (the fake's CA not trusted): reqwest's error would name the webhook URL.
    let mut untrusted = SlackConfig::new(Some(Secret::new(fake.webhook_url())), None);
    untrusted.channel_interval = Seconds::from_millis(1);
    let r = responder(untrusted, &store);
    let tls = r
        .deliver(
            &delivery(&alert("prod-eu/sec3/p", Severity::High, "p")),
            false,
        )
        .await
        .unwrap_err();
    assert!(tls.error.starts_with("incoming webhook: "), "{}", tls.error);
    assert!(
        tls.error.contains("certificate"),
        "the cause is kept: {}",
        tls.error
    );

    let journal_text = serde_json::to_string(&stage.outbox().journal_entries().unwrap()).unwrap();
    let logged = String::from_utf8_lossy(&buf.lock().unwrap()).into_owned();
    assert!(
        logged.contains("Slack interaction refused"),
        "the logs were captured"
    );
    assert!(
        logged.contains("delivery failed; it stays in the outbox"),
        "the retry was logged"
    );
    for s in SECRETS {
        for (what, text) in [
            ("logs", &logged),
            ("journal", &journal_text),
            ("detail", &e.detail),
            ("retry error", &tls.error),
            ("Debug", &debug),
        ] {
            assert!(!text.contains(s), "{s} appears in the {what}");
        }
    }
}
