//! Slack triage buttons end to end: alert cards carry True positive / Benign / False positive / Snooze 24h when interactivity is configured; a signed click by an approver records the outcome or the snooze through the triage and edits the card; bad, replayed and unlisted clicks record nothing; a snoozed group's next alert is stored silenced and never posted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{fake_slack, slack_kit};

use std::sync::Arc;
use std::time::Duration;

use fake_slack::FakeSlack;
use rampart::config::Seconds;
use rampart::playbook::Severity;
use rampart::respond::dispatch::{self, DispatchSettings};
use rampart::respond::slack::interact;
use rampart::respond::Responder;
use rampart::state::model::wall_ms;
use rampart::state::{MemoryStore, StateSettings, StateStage};
use rampart::triage::{Scope, Triage, Verdict};
use serde_json::{json, Value};
use slack_kit::*;
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_795_000_000;
const ALERT: &str = "prod-eu/a1/secret_read";

/// The Slack responder with interactivity, the state stage silenced by the triage, the
/// dispatcher, and the interactivity endpoint over both — as `rampart run` wires them.
struct Desk {
    fake: FakeSlack,
    stage: Arc<StateStage>,
    triage: Arc<Triage>,
    url: String,
    stop: CancellationToken,
}

async fn desk(dedup_window: i64) -> Desk {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    let store = Arc::new(MemoryStore::default());
    let mut cfg = bot_cfg(&fake);
    cfg.approvals = Some(approvals_cfg());
    cfg.channel_interval = Seconds::from_millis(1);
    let r = responder(cfg, &store);
    let interactions = r.interactions().unwrap();
    let triage = Arc::new(Triage::open(store.clone(), 30 * 86_400).unwrap());
    let stage = Arc::new(
        StateStage::open(
            store.clone(),
            StateSettings {
                sinks: vec!["slack".into()],
                dedup_window,
                update_interval: 60,
                ..StateSettings::default()
            },
        )
        .unwrap()
        .with_silencer(triage.clone()),
    );
    let stop = CancellationToken::new();
    let settings = DispatchSettings {
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..DispatchSettings::default()
    };
    let r: Arc<dyn Responder> = Arc::new(r);
    dispatch::spawn(stage.clone(), vec![r], settings, stop.clone());
    let app = interact::router_with(stage.clone(), Some(triage.clone()), interactions);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/slack/interactions",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Desk {
        fake,
        stage,
        triage,
        url,
        stop,
    }
}

impl Desk {
    fn feed(&self, audit_id: &str, secs: i64) {
        self.feed_as(audit_id, secs, "alice");
    }

    fn feed_as(&self, audit_id: &str, secs: i64, user: &str) {
        self.stage
            .process(&judged(audit_id, secs, user, "secret_read"))
            .unwrap();
        self.stage.commit().unwrap();
    }

    /// The posted card: (channel id, ts, blocks).
    fn card(&self) -> (String, String, Value) {
        let (ts, ch, body) = self.fake.messages().into_iter().next().expect("posted");
        (ch, ts, body["blocks"].clone())
    }

    /// A click on `action` by `user`, as Slack sends it: the form body.
    fn click(&self, user: (&str, &str), action: &str, n: u32) -> String {
        let (ch, ts, blocks) = self.card();
        let payload = json!({
            "type": "block_actions",
            "user": {"id": user.0, "username": user.1, "name": user.1},
            "actions": [{"type": "button", "action_id": action, "value": ALERT}],
            "response_url": self.fake.response_url(n),
            "container": {"type": "message", "channel_id": ch, "message_ts": ts},
            "message": {"ts": ts, "blocks": blocks},
        });
        form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish()
    }

    async fn send_signed(&self, body: &str) -> u16 {
        let ts = now();
        let sig = interact::signature(SIGNING, &ts.to_string(), body.as_bytes());
        send(&self.url, ts, &sig, body).await
    }
}

fn now() -> i64 {
    (wall_ms() / 1000) as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_false_positive_click_is_recorded_and_shown_and_bad_clicks_record_nothing() {
    let d = desk(600).await;
    d.feed("a1", T0);
    until_done(&d.stage, 1).await;
    let (_, _, blocks) = d.card();
    let card = text_of(&blocks);
    for id in [
        "rampart.triage.true_positive",
        "rampart.triage.benign",
        "rampart.triage.false_positive",
        "rampart.triage.snooze",
    ] {
        assert!(card.contains(id), "{id} on the card: {card}");
    }
    assert!(card.contains(&format!("\"value\":\"{ALERT}\"")));

    // Badly signed, stale or tampered: refused, nothing recorded.
    let tp = d.click(("U_ALICE", "alice"), "rampart.triage.true_positive", 1);
    let ts = now();
    let wrong = interact::signature("not-the-secret", &ts.to_string(), tp.as_bytes());
    assert_eq!(send(&d.url, ts, &wrong, &tp).await, 401);
    let old = ts - 600;
    let stale = interact::signature(SIGNING, &old.to_string(), tp.as_bytes());
    assert_eq!(send(&d.url, old, &stale, &tp).await, 401);
    let fp = d.click(("U_ALICE", "alice"), "rampart.triage.false_positive", 1);
    let good = interact::signature(SIGNING, &ts.to_string(), fp.as_bytes());
    let tampered = fp.replace("false_positive", "true_positive");
    assert_eq!(send(&d.url, ts, &good, &tampered).await, 401);
    // Someone not on the approver list: a private answer, nothing recorded.
    let mallory = d.click(("U_MALLORY", "mallory"), "rampart.triage.benign", 2);
    assert_eq!(d.send_signed(&mallory).await, 200);
    let reply = &d
        .fake
        .wait_for("/respond/2", 1, Duration::from_secs(5))
        .await[0]
        .body;
    assert_eq!(reply["response_type"], "ephemeral");
    assert_eq!(reply["replace_original"], false);
    assert!(text_of(reply).contains("approver list"), "{reply}");
    assert!(d.triage.outcome(ALERT).unwrap().is_none(), "nothing so far");

    // The signed click by an approver: recorded, and the card edited.
    assert_eq!(send(&d.url, ts, &good, &fp).await, 200);
    let o = d.triage.outcome(ALERT).unwrap().expect("recorded");
    assert_eq!(o.verdict, Verdict::FalsePositive);
    assert_eq!(o.by, "slack:U_ALICE (alice)");
    let reply = &d
        .fake
        .wait_for("/respond/1", 1, Duration::from_secs(5))
        .await[0]
        .body;
    assert_eq!(reply["replace_original"], true);
    let t = text_of(&reply["blocks"]);
    assert!(t.contains("Marked false positive by <@U_ALICE> at "), "{t}");
    assert!(
        t.contains("secret_read by alice"),
        "the card itself stays: {t}"
    );
    assert!(t.contains("rampart.triage.snooze"), "the buttons stay: {t}");

    // Replayed: refused, and the outcome is the one recorded before.
    assert_eq!(send(&d.url, ts, &good, &fp).await, 401);
    assert_eq!(d.triage.outcome(ALERT).unwrap().unwrap().at_ms, o.at_ms);
    assert_eq!(d.triage.outcomes().unwrap().len(), 1);

    // A count update edits the card and keeps showing the mark.
    d.feed("a2", T0 + 61);
    until_done(&d.stage, 2).await;
    let up = text_of(&d.fake.to("chat.update")[0].body);
    assert!(
        up.contains("Marked false positive by <@U_ALICE>") && up.contains("rampart.triage"),
        "{up}"
    );
    d.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snooze_silences_the_group_and_its_next_alert_is_stored_but_not_posted() {
    let d = desk(60).await;
    d.feed("a1", T0);
    until_done(&d.stage, 1).await;
    let body = d.click(("U_BOB", "bob"), "rampart.triage.snooze", 1);
    let before = wall_ms();
    assert_eq!(
        d.send_signed(&body).await,
        200,
        "bob is an approver by username"
    );
    let s = d.triage.suppressions();
    assert_eq!(s.len(), 1);
    let s = &s[0];
    assert_eq!(s.playbook.as_deref(), Some("secret_read"));
    assert_eq!(
        s.scope,
        Scope::Group {
            cluster: "prod-eu".into(),
            dedup: "alice".into()
        }
    );
    assert_eq!(s.reason, "snoozed from Slack");
    assert_eq!(s.author, "slack:U_BOB (bob)");
    assert!(s.expires_ms >= before + 86_400_000 && s.expires_ms <= wall_ms() + 86_400_000);
    let reply = &d
        .fake
        .wait_for("/respond/1", 1, Duration::from_secs(5))
        .await[0]
        .body;
    let t = text_of(&reply["blocks"]);
    assert!(t.contains("Snoozed for 24h by <@U_BOB> (until "), "{t}");
    assert!(t.contains(&s.id), "{t}");

    // The same thing again after the window closed: a new alert, silenced.
    d.feed("a3", T0 + 120);
    let alerts = d.stage.alerts().unwrap();
    let next = alerts
        .iter()
        .find(|a| a.id == "prod-eu/a3/secret_read")
        .expect("stored");
    assert_eq!(next.suppressed.as_deref(), Some(s.id.as_str()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.stage.outbox().pending().unwrap(), 0, "nothing queued");
    assert_eq!(d.fake.to("chat.postMessage").len(), 1, "no new Slack post");
    d.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snoozed_entity_s_high_risk_alert_is_stored_but_not_posted() {
    let d = desk(600).await;
    // As Snooze on a high-risk card creates it: the entity is the card's dedup key.
    d.triage
        .suppress(
            rampart::triage::NewSuppression {
                playbook: Some(rampart::state::risk::PLAYBOOK.into()),
                scope: Scope::Group {
                    cluster: "prod-eu".into(),
                    dedup: "185.220.101.4".into(),
                },
                reason: "snoozed from Slack".into(),
                for_secs: 86_400,
            },
            "slack:U_BOB (bob)",
        )
        .unwrap();
    // Four alerts of 40 from one address cross the risk threshold (150).
    for (i, user) in ["alice", "bob", "carol", "dave"].iter().enumerate() {
        d.feed_as(&format!("r{i}"), T0 + i as i64, user);
    }
    let alerts = d.stage.alerts().unwrap();
    let high: Vec<_> = alerts
        .iter()
        .filter(|a| a.kind == rampart::state::model::AlertKind::HighRisk)
        .collect();
    assert_eq!(high.len(), 1, "{alerts:#?}");
    assert!(high[0].suppressed.is_some());
    until_done(&d.stage, 4).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        d.fake.to("chat.postMessage").len(),
        4,
        "the four alerts only"
    );
    d.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_interactivity_cards_have_no_triage_buttons() {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    let store = Arc::new(MemoryStore::default());
    let mut cfg = bot_cfg(&fake);
    cfg.channel_interval = Seconds::from_millis(1);
    let r = responder(cfg, &store);
    assert!(r.interactions().is_none());
    deliver(&r, &delivery(&alert(ALERT, Severity::High, "secret_read"))).await;
    let posted = text_of(&fake.to("chat.postMessage")[0].body);
    assert!(!posted.contains("rampart.triage"), "{posted}");
}

/// The whole path through `rampart run`: the Slack card's triage buttons reach the triage
/// through the telemetry listener, and marking or snoozing acknowledges or resolves the incident
/// PagerDuty opened for the alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_pipeline_slack_triage_acknowledges_and_resolves_the_pagerduty_incident() {
    use support::common;
    use support::fake_pagerduty::FakePagerDuty;
    const PD_KEY: &str = "R0f3e2d1c0b9a8f7e6d5c4b3a29181706";
    let slack = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    let pd = FakePagerDuty::start(PD_KEY).await;
    let s = common::Scratch::new();
    let playbooks = s.path("playbooks");
    std::fs::create_dir_all(&playbooks).unwrap();
    std::fs::write(
        playbooks.join("admin_bound.rhai"),
        r#"fn meta() { #{ id: "admin-bound", title: "cluster-admin bound", severity: "critical",
    on: #{ verbs: ["create"], resources: ["clusterrolebindings"] } } }
fn rule(e) { true }
"#,
    )
    .unwrap();
    let rest = format!(
        "playbooks:\n  dir: {}\ntelemetry:\n  listen: 127.0.0.1:0\nrespond:\n  slack:\n    bot_token: {TOKEN}\n    api_url: {}\n    ca_file: {}\n    default_channel: '#sec'\n    channel_interval: 10ms\n    approvals:\n      signing_secret: {SIGNING}\n      approvers: [U_ALICE]\n  pagerduty:\n    routing_key: {PD_KEY}\n    url: {}\n",
        playbooks.display(),
        slack.api_url(),
        slack.ca_file.display(),
        pd.url,
    );
    let (running, url, shutdown) = common::start_webhook(&s, "", &rest).await;
    let event = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": "ev-1", "stage": "ResponseComplete", "verb": "create",
        "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "user": {"username": "mallory@example.com"}, "sourceIPs": ["203.0.113.7"],
        "objectRef": {"resource": "clusterrolebindings", "name": "ops-admin", "apiGroup": "rbac.authorization.k8s.io"},
        "responseStatus": {"code": 201},
        "requestReceivedTimestamp": "2026-01-01T00:00:00.000000Z",
        "stageTimestamp": "2026-01-01T00:00:00.010000Z",
    });
    let resp = reqwest::Client::new()
        .post(&url)
        .json(&json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": [event]}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let id = "default/ev-1/admin-bound";
    let st = running.state.clone();
    let journaled = |jid: String| {
        let st = st.clone();
        async move {
            common::eventually(&jid.clone(), Duration::from_secs(20), move || {
                st.outbox()
                    .journal(&jid)
                    .unwrap()
                    .filter(|j| j.status == rampart::state::model::Status::Done)
            })
            .await
        }
    };
    journaled(format!("{id}/pagerduty")).await;
    let post = slack
        .wait_for("chat.postMessage", 1, Duration::from_secs(20))
        .await[0]
        .body
        .clone();
    assert!(text_of(&post).contains("rampart.triage.snooze"));
    let endpoint = format!(
        "http://{}/slack/interactions",
        running.telemetry_addr.unwrap()
    );
    let click = |action: &str, n: u32| {
        let payload = json!({
            "type": "block_actions",
            "user": {"id": "U_ALICE", "username": "alice"},
            "actions": [{"type": "button", "action_id": action, "value": id}],
            "response_url": slack.response_url(n),
            "container": {"type": "message", "channel_id": "CSEC", "message_ts": "1700000000.000001"},
            "message": {"ts": "1700000000.000001", "blocks": post["blocks"]},
        });
        form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish()
    };
    let signed = |body: String| {
        let endpoint = endpoint.clone();
        async move {
            let ts = now();
            let sig = interact::signature(SIGNING, &ts.to_string(), body.as_bytes());
            send(&endpoint, ts, &sig, &body).await
        }
    };
    assert_eq!(signed(click("rampart.triage.true_positive", 1)).await, 200);
    journaled(format!("{id}/pagerduty/acknowledge")).await;
    assert_eq!(signed(click("rampart.triage.snooze", 2)).await, 200);
    journaled(format!("{id}/pagerduty/resolve")).await;
    let actions: Vec<String> = pd
        .events()
        .iter()
        .filter(|e| e["dedup_key"] == id)
        .map(|e| e["event_action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["trigger", "acknowledge", "resolve"]);
    let reply = &slack
        .wait_for("/respond/2", 1, Duration::from_secs(10))
        .await[0]
        .body;
    let t = text_of(&reply["blocks"]);
    assert!(
        t.contains("Marked true positive by <@U_ALICE>")
            && t.contains("Snoozed for 24h by <@U_ALICE>"),
        "both lines on the card: {t}"
    );
    shutdown.cancel();
    running.wait().await.unwrap();
}
