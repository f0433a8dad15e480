//! The Slack responder against a local HTTPS server that behaves like Slack: exactly-once delivery through the dispatcher, threads and edits, rate limits and pacing, limits and escaping, routing, approvals, and secrets kept out of logs and the journal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/fake_slack.rs"]
mod fake_slack;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use fake_slack::{Behave, FakeSlack};
use rampart::config::{Seconds, Secret};
use rampart::event::AuditEvent;
use rampart::playbook::{Severity, Verdict};
use rampart::respond::dispatch::{self, DispatchSettings};
use rampart::respond::slack::interact::{self, Approvals, DecideOutcome};
use rampart::respond::slack::{ApprovalsConfig, SlackConfig, SlackResponder};
use rampart::respond::Responder;
use rampart::state::model::{wall_ms, Alert, AlertKind, Decision, Delivery, Status};
use rampart::state::{MemoryStore, StateSettings, StateStage, StateStore};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "xoxb-test-SeCrEtToKeN-1";
const WEBHOOK_PATH: &str = "/services/T0001/B0001/SeCrEtWeBhOoK";
const SIGNING: &str = "signing-SeCrEt-8f7422";
const SECRETS: &[&str] = &[
    "SeCrEtToKeN",
    "SeCrEtWeBhOoK",
    "signing-SeCrEt",
    "WrOnGtOkEn",
];

/// Every log line of this test binary (all tests share one global subscriber).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        struct W(Arc<Mutex<Vec<u8>>>);
        impl Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let b = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || W(b.clone()))
            .try_init();
        buf
    })
    .clone()
}

fn bot_cfg(fake: &FakeSlack) -> SlackConfig {
    let mut c = SlackConfig::new(None, Some(Secret::new(TOKEN)));
    c.api_url = fake.api_url();
    c.ca_file = Some(fake.ca_file.clone());
    c.default_channel = Some("#sec".into());
    c.timeout = Seconds::from_millis(500);
    c.link_template = Some("https://logs.example/search?q={audit_id}&cluster={cluster}".into());
    c
}

fn approvals_cfg() -> ApprovalsConfig {
    serde_yaml::from_str(&format!(
        "signing_secret: {SIGNING}\napprovers: [U_ALICE, bob]\n"
    ))
    .unwrap()
}

fn responder(cfg: SlackConfig, store: &Arc<MemoryStore>) -> SlackResponder {
    logs();
    SlackResponder::new(cfg, store.clone()).unwrap()
}

fn event_json(audit_id: &str, t: &str, user: &str) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": audit_id, "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/payments/secrets/db-password",
        "verb": "get",
        "user": {"username": user, "groups": ["system:authenticated"]},
        "impersonatedUser": {"username": "system:serviceaccount:payments:deployer"},
        "sourceIPs": ["185.220.101.4"],
        "userAgent": "kubectl/v1.31.0 (linux/amd64)",
        "objectRef": {"resource": "secrets", "namespace": "payments", "name": "db-password", "apiVersion": "v1"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": t, "stageTimestamp": t,
        "enrichment": {
            "identity": {"kind": "human", "actor": user, "impersonated": "system:serviceaccount:payments:deployer",
                         "known": true, "display_name": "Alice Example", "team": "payments", "email": "alice@example.com"},
            "network": {"client_ip": "185.220.101.4", "internal": false, "country": "DE", "city": "Berlin",
                        "asn": 208294, "as_org": "Tor Relay Org", "anonymous": true, "anonymous_vpn": true,
                        "tor_exit": true, "hosting": false, "public_proxy": false},
            "asset": {"tier": "critical", "data_class": "credentials", "owner": "team-payments", "rule": "builtin:secrets"}
        }
    })
}

fn alert(id: &str, sev: Severity, playbook: &str) -> Alert {
    Alert {
        id: id.into(),
        kind: AlertKind::Alert,
        thread: None,
        playbook: playbook.into(),
        title: format!("Secret read from a Tor exit ({id})"),
        severity: sev,
        score: 70,
        mitre: vec!["T1552.007".into(), "T1078".into()],
        cluster: "prod-eu".into(),
        dedup: "alice".into(),
        count: 1,
        first_seen: 1_795_000_000,
        last_seen: 1_795_000_000,
        risk: Some(120.0),
        context: Default::default(),
        responses: vec![],
        event: event_json("audit-1", "2026-11-20T10:00:00Z", "alice@example.com"),
        contributions: vec![],
        dry_run: false,
    }
}

fn delivery(a: &Alert) -> Delivery {
    Delivery {
        id: format!("{}/slack", a.id),
        responder: "slack".into(),
        alert: a.clone(),
        response: None,
        enqueued_ms: wall_ms(),
        attempts: 0,
        not_before_ms: 0,
        target: None,
        approved: None,
    }
}

fn derived(a: &Alert, kind: AlertKind, count: u64) -> Alert {
    let mut n = a.clone();
    n.kind = kind;
    n.thread = Some(a.id.clone());
    n.count = count;
    n.responses.clear();
    n.id = match kind {
        AlertKind::Update => format!("{}/update/{count}", a.id),
        _ => format!("{}/follow_up", a.id),
    };
    n
}

fn text_of(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

async fn deliver(r: &SlackResponder, d: &Delivery) -> rampart::respond::Effect {
    r.deliver(d, false).await.unwrap()
}

/// An audit event with a verdict, as the playbook stage hands it to the state stage.
fn judged(audit_id: &str, secs: i64, user: &str, playbook: &str) -> AuditEvent {
    let t = rampart::event::time::format_rfc3339(secs);
    let mut j = event_json(audit_id, &t, user);
    let enrichment = j.as_object_mut().unwrap().remove("enrichment").unwrap();
    let mut ev: AuditEvent = serde_json::from_value(j).unwrap();
    ev.provenance.cluster = "prod-eu".into();
    ev.enrichment = Some(Box::new(serde_json::from_value(enrichment).unwrap()));
    ev.verdicts = vec![Verdict {
        playbook: playbook.into(),
        title: format!("{playbook} by {user}"),
        severity: Severity::High,
        score: 40,
        dedup: user.into(),
        context: Default::default(),
        responses: vec![],
        mitre: vec!["T1078".into()],
        gating: Default::default(),
    }];
    ev
}

async fn until_done(stage: &StateStage, n: usize) -> Vec<rampart::state::model::JournalEntry> {
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let j = stage.outbox().journal_entries().unwrap();
        if j.len() >= n && stage.outbox().pending().unwrap() == 0 {
            return j;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{} of {n} deliveries journaled",
            j.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_is_posted_once_follow_ups_thread_and_updates_edit_through_the_dispatcher() {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    // Slack misbehaves a little: a 503 and a timeout, both to be retried without duplicates.
    fake.script("chat.postMessage", Behave::Unavailable);
    fake.script("chat.postMessage", Behave::Hang);
    let store = Arc::new(MemoryStore::default());
    let mut cfg = bot_cfg(&fake);
    cfg.channel_interval = Seconds::from_millis(20);
    let r: Arc<dyn Responder> = Arc::new(responder(cfg, &store));
    let stage = Arc::new(
        StateStage::open(
            store.clone(),
            StateSettings {
                sinks: vec!["slack".into()],
                dedup_window: 600,
                update_interval: 60,
                ..StateSettings::default()
            },
        )
        .unwrap(),
    );
    let shutdown = CancellationToken::new();
    let settings = DispatchSettings {
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..DispatchSettings::default()
    };
    let tasks = dispatch::spawn(stage.clone(), vec![r], settings, shutdown.clone());

    let t0 = 1_795_000_000;
    let mut evs = Vec::new();
    for (i, user) in ["alice", "bob", "carol", "dave", "erin"].iter().enumerate() {
        evs.push(judged(&format!("a{i}"), t0, user, "secret_read"));
    }
    // alice again: an update at +61 (count 2), none at +62, another at +130 (count 4).
    for (i, dt) in [61, 62, 130].iter().enumerate() {
        evs.push(judged(
            &format!("again{i}"),
            t0 + dt,
            "alice",
            "secret_read",
        ));
    }
    // Stream time passes alice's window: a new alert, then the sweep closes the window with a follow-up.
    evs.push(judged("late", t0 + 700, "frank", "secret_read"));
    for ev in &evs {
        stage.process(ev).unwrap();
    }
    stage.commit().unwrap();
    stage.sweep().unwrap();

    let journal = until_done(&stage, 10).await;
    shutdown.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    // The shared source address crosses the risk threshold at the fourth alert: one high-risk alert.
    assert_eq!(
        journal.len(),
        10,
        "6 alerts, 1 high-risk, 2 updates, 1 follow-up"
    );
    assert!(
        journal.iter().all(|j| j.status == Status::Done),
        "{journal:#?}"
    );
    // 2 failed attempts (503, timeout), then 6 alerts, the high-risk alert and the follow-up.
    assert_eq!(fake.to("chat.postMessage").len(), 10);
    let accepted = fake.messages();
    let top: Vec<String> = accepted
        .iter()
        .filter(|(_, _, b)| b["thread_ts"].is_null())
        .map(|(_, _, b)| b["text"].as_str().unwrap().to_owned())
        .collect();
    let unique: HashSet<&String> = top.iter().collect();
    assert_eq!(
        (top.len(), unique.len()),
        (6, 6),
        "each alert posted exactly once: {top:#?}"
    );

    let alice_id = "prod-eu/a0/secret_read";
    let rec: Value = serde_json::from_slice(
        &store
            .get("slack_messages", alice_id.as_bytes())
            .unwrap()
            .expect("alice's message is recorded"),
    )
    .unwrap();
    let alice_ts = rec["posts"][0]["ts"].as_str().unwrap().to_owned();
    let replies: Vec<&Value> = accepted
        .iter()
        .filter(|(_, _, b)| !b["thread_ts"].is_null())
        .map(|(_, _, b)| b)
        .collect();
    assert_eq!(replies.len(), 2, "the high-risk alert and the follow-up");
    assert!(
        replies.iter().all(|r| r["thread_ts"] == alice_ts.as_str()),
        "threaded under alice's alert"
    );
    let risk = replies
        .iter()
        .find(|r| text_of(r).contains("High risk"))
        .unwrap();
    assert_eq!(
        risk["reply_broadcast"], true,
        "a high-risk alert is also shown in the channel"
    );
    let follow = replies
        .iter()
        .find(|r| text_of(r).contains("Follow-up"))
        .unwrap();
    assert!(text_of(follow).contains("seen 4 times"));

    let updates = fake.to("chat.update");
    assert_eq!(updates.len(), 2);
    assert!(updates.iter().all(|u| u.body["ts"] == alice_ts.as_str()));
    assert!(text_of(&updates[0].body).contains("seen 2 times"));
    assert!(text_of(&updates[1].body).contains("seen 4 times"));
    let (_, now) = fake.message(&alice_ts).unwrap();
    assert!(
        text_of(&now).contains("seen 4 times"),
        "the original now shows the count"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_and_server_errors_are_retried() {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    fake.script("chat.postMessage", Behave::RateLimit(2));
    fake.script("chat.postMessage", Behave::Unavailable);
    fake.script("chat.postMessage", Behave::Error(200, "ratelimited"));
    let store = Arc::new(MemoryStore::default());
    let r: Arc<dyn Responder> = Arc::new(responder(bot_cfg(&fake), &store));
    let stage = Arc::new(StateStage::open(store.clone(), StateSettings::default()).unwrap());
    let a = alert("prod-eu/rl/p", Severity::High, "p");
    let op = stage.outbox().enqueue(&delivery(&a));
    store.apply(&[op]).unwrap();
    stage.outbox().wake();
    let shutdown = CancellationToken::new();
    let settings = DispatchSettings {
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_millis(200),
        ..DispatchSettings::default()
    };
    let tasks = dispatch::spawn(stage.clone(), vec![r], settings, shutdown.clone());
    let journal = until_done(&stage, 1).await;
    shutdown.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(journal[0].status, Status::Done, "{journal:?}");
    assert_eq!(journal[0].attempts, 4);
    let at: Vec<_> = fake.to("chat.postMessage").iter().map(|r| r.at).collect();
    assert_eq!(at.len(), 4);
    assert!(
        at[1] - at[0] >= Duration::from_secs(2),
        "Retry-After: 2 honoured, got {:?}",
        at[1] - at[0]
    );
    assert!(
        at[2] - at[1] < Duration::from_secs(2),
        "a 503 is retried with backoff"
    );
    assert!(
        at[3] - at[2] >= Duration::from_millis(900),
        "ratelimited without Retry-After waits a second"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_one_channel_arrive_at_least_a_second_apart() {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    let store = Arc::new(MemoryStore::default());
    let mut cfg = bot_cfg(&fake);
    cfg.routes = serde_yaml::from_str("- {playbook: [other], channel: '#other'}").unwrap();
    let r = responder(cfg, &store);
    for (i, pb) in ["p", "p", "other", "p"].iter().enumerate() {
        let e = deliver(
            &r,
            &delivery(&alert(&format!("c/{i}/{pb}"), Severity::High, pb)),
        )
        .await;
        assert_eq!(e.status, Status::Done, "{e:?}");
    }
    let reqs = fake.to("chat.postMessage");
    let sec: Vec<_> = reqs
        .iter()
        .filter(|r| r.body["channel"] == "#sec")
        .map(|r| r.at)
        .collect();
    let other: Vec<_> = reqs
        .iter()
        .filter(|r| r.body["channel"] == "#other")
        .map(|r| r.at)
        .collect();
    assert_eq!((sec.len(), other.len()), (3, 1));
    for w in sec.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_secs(1),
            "gap {:?}",
            w[1] - w[0]
        );
    }
    assert!(
        other[0] - sec[1] < Duration::from_millis(500),
        "another channel does not wait for #sec: {:?}",
        other[0] - sec[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_shows_who_from_where_to_what_and_escapes_user_text() {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    let store = Arc::new(MemoryStore::default());
    let r = responder(bot_cfg(&fake), &store);
    let mut a = alert(
        "prod-eu/show/secret_read",
        Severity::Critical,
        "secret_read",
    );
    a.event["enrichment"]["identity"]["display_name"] = json!("Mallory <!channel> & co");
    a.count = 3;
    a.last_seen = a.first_seen + 120;
    deliver(&r, &delivery(&a)).await;
    let body = &fake.to("chat.postMessage")[0].body;
    let t = text_of(body);
    for want in [
        "Secret read from a Tor exit",
        ":rotating_light:",
        "prod-eu",
        "Mallory &lt;!channel&gt; &amp; co",
        "team payments",
        "impersonating `system:serviceaccount:payments:deployer`",
        "185.220.101.4",
        "Berlin, DE",
        "AS208294 Tor Relay Org",
        "Tor exit, VPN",
        "`secrets` `db-password` in `payments`",
        "tier critical",
        "owner team-payments",
        "`get` → 200",
        "`secret_read`",
        "T1552.007, T1078",
        "seen 3 times since",
        "*Risk:* 120",
        "<https://logs.example/search?q=audit-1&cluster=prod-eu|Open in log search>",
    ] {
        assert!(t.contains(want), "message lacks {want:?}: {t}");
    }
    assert!(
        !t.contains("<!channel>"),
        "user text cannot mention the channel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_fields_are_truncated_visibly_and_the_message_stays_within_slacks_limits() {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    let store = Arc::new(MemoryStore::default());
    let mut cfg = bot_cfg(&fake);
    cfg.approvals = Some(approvals_cfg());
    let r = responder(cfg, &store);
    let mut a = alert("prod-eu/long/p", Severity::High, "p");
    a.title = "T".repeat(400);
    a.event["enrichment"]["identity"]["display_name"] = json!("<".repeat(3000));
    a.event["requestURI"] = json!("/x".repeat(5000));
    for i in 0..40 {
        a.context.insert(format!("key{i}"), json!("v".repeat(1000)));
    }
    a.responses = (0..30)
        .map(|_| {
            serde_json::from_value(json!({"kind": "revoke_binding", "approval": true})).unwrap()
        })
        .collect();
    let e = deliver(&r, &delivery(&a)).await;
    assert_eq!(e.status, Status::Done, "Slack accepted it: {e:?}");
    let body = &fake.to("chat.postMessage")[0].body;
    assert_eq!(fake_slack::limits_broken(body), None);
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 50);
    let header = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(header.ends_with("… (truncated)") && header.chars().count() <= 150);
    let t = text_of(body);
    assert!(
        t.matches("… (truncated)").count() >= 3,
        "title, actor, context and blocks are marked"
    );
    assert!(blocks.last().unwrap()["elements"][0]["text"]
        .as_str()
        .unwrap()
        .contains("more block(s)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_pick_channels_by_severity_playbook_namespace_and_team() {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    let store = Arc::new(MemoryStore::default());
    let mut cfg = bot_cfg(&fake);
    cfg.channel_interval = Seconds::from_millis(1);
    cfg.min_severity = Some(Severity::Medium);
    cfg.routes = serde_yaml::from_str(
        "- {severity: [critical], channel: '#page'}\n- {playbook: ['rbac.*'], channel: '#rbac'}\n- {namespace: [payments], team: [payments], channel: '#payments'}\n- {namespace: ['kube-*'], channel: '#platform'}\n",
    )
    .unwrap();
    let r = responder(cfg, &store);
    let mut cases: Vec<(Alert, Vec<&str>)> = vec![
        (
            alert("c/1/rbac.bind", Severity::Critical, "rbac.bind"),
            vec!["#page", "#rbac", "#payments"],
        ),
        (alert("c/2/exec", Severity::High, "exec"), vec!["#payments"]),
    ];
    let mut other_team = alert("c/3/exec", Severity::High, "exec");
    other_team.event["enrichment"]["identity"]["team"] = json!("web");
    cases.push((other_team, vec!["#sec"]));
    let mut kube = alert("c/4/exec", Severity::Medium, "exec");
    kube.event["objectRef"]["namespace"] = json!("kube-system");
    cases.push((kube, vec!["#platform"]));
    let mut asked = alert("c/5/exec", Severity::Low, "exec");
    asked.responses =
        vec![
            serde_json::from_value(json!({"kind": "slack", "params": {"channel": "#team-x"}}))
                .unwrap(),
        ];
    cases.push((asked, vec!["#team-x"]));
    for (a, want) in &cases {
        let before = fake.to("chat.postMessage").len();
        let e = deliver(&r, &delivery(a)).await;
        assert_eq!(e.status, Status::Done, "{e:?}");
        let got: Vec<String> = fake.to("chat.postMessage")[before..]
            .iter()
            .map(|r| r.body["channel"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(&got, want, "{}", a.id);
    }
    let quiet = alert("c/6/exec", Severity::Low, "exec");
    let before = fake.requests().len();
    let e = deliver(&r, &delivery(&quiet)).await;
    assert_eq!(e.status, Status::Skipped);
    assert!(
        e.detail.contains("below min_severity medium"),
        "{}",
        e.detail
    );
    assert_eq!(
        fake.requests().len(),
        before,
        "nothing posted below min_severity"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_and_edits_survive_a_restart_and_a_repeated_delivery_posts_nothing() {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    let store = Arc::new(MemoryStore::default());
    let a = alert("prod-eu/restart/p", Severity::High, "p");
    {
        let r = responder(bot_cfg(&fake), &store);
        assert!(deliver(&r, &delivery(&a))
            .await
            .detail
            .contains("posted to #sec"));
    }
    let ts = fake.to("chat.postMessage")[0].body.clone();
    let first_ts = fake
        .message("1700000000.000001")
        .map(|_| "1700000000.000001")
        .unwrap();
    assert_eq!(ts["channel"], "#sec");
    // "Restart": a new responder over the same store.
    let r = responder(bot_cfg(&fake), &store);
    let again = deliver(&r, &delivery(&a)).await;
    assert_eq!(again.status, Status::Done);
    assert!(
        again.detail.contains("already posted to #sec"),
        "{}",
        again.detail
    );
    assert_eq!(
        fake.to("chat.postMessage").len(),
        1,
        "a repeat posts nothing"
    );

    let e = deliver(&r, &delivery(&derived(&a, AlertKind::Update, 7))).await;
    assert!(
        e.detail.contains("edited the message in #sec"),
        "{}",
        e.detail
    );
    let up = &fake.to("chat.update")[0].body;
    assert_eq!(
        (up["channel"].as_str(), up["ts"].as_str()),
        (Some("CSEC"), Some(first_ts))
    );
    let e = deliver(&r, &delivery(&derived(&a, AlertKind::FollowUp, 9))).await;
    assert!(e.detail.contains("replied in a thread"), "{}", e.detail);
    let reply = &fake.to("chat.postMessage")[1].body;
    assert_eq!(reply["thread_ts"], first_ts);
    assert_eq!(reply["channel"], "CSEC");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_calls_nothing_and_refusals_fail_for_good_with_a_clear_detail() {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    let store = Arc::new(MemoryStore::default());
    let r = responder(bot_cfg(&fake), &store);
    let a = alert("prod-eu/dry/p", Severity::High, "p");
    let e = r.deliver(&delivery(&a), true).await.unwrap();
    assert_eq!(e.status, Status::DryRun);
    assert_eq!(e.detail, format!("would post to #sec: {}", a.title));
    assert!(fake.requests().is_empty(), "dry-run makes no HTTP call");

    let mut missing = alert("prod-eu/missing/p", Severity::High, "p");
    missing.responses =
        vec![
            serde_json::from_value(json!({"kind": "slack", "params": {"channel": "#missing"}}))
                .unwrap(),
        ];
    let e = deliver(&r, &delivery(&missing)).await;
    assert_eq!(e.status, Status::Failed);
    assert!(e.detail.contains("posted to #sec"), "{}", e.detail);
    assert!(
        e.detail
            .contains("#missing: chat.postMessage: channel_not_found"),
        "{}",
        e.detail
    );

    let mut bad = bot_cfg(&fake);
    bad.bot_token = Some(Secret::new("xoxb-WrOnGtOkEn"));
    let r = responder(bad, &store);
    let before = fake.requests().len();
    let e = deliver(&r, &delivery(&alert("prod-eu/auth/p", Severity::High, "p"))).await;
    assert_eq!(e.status, Status::Failed);
    assert_eq!(
        e.detail,
        "Slack refused: #sec: chat.postMessage: invalid_auth (check respond.slack.bot_token)"
    );
    assert_eq!(fake.requests().len(), before + 1, "not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_mode_posts_alerts_and_follow_ups_and_skips_updates() {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    let store = Arc::new(MemoryStore::default());
    let mut cfg = SlackConfig::new(Some(Secret::new(fake.webhook_url())), None);
    cfg.ca_file = Some(fake.ca_file.clone());
    cfg.channel_interval = Seconds::from_millis(1);
    let r = responder(cfg, &store);
    let a = alert("prod-eu/hook/p", Severity::High, "p");
    assert_eq!(deliver(&r, &delivery(&a)).await.status, Status::Done);
    assert_eq!(
        deliver(&r, &delivery(&a)).await.detail,
        "already posted to the incoming webhook's channel"
    );
    let up = deliver(&r, &delivery(&derived(&a, AlertKind::Update, 2))).await;
    assert_eq!(up.status, Status::Skipped);
    assert_eq!(
        deliver(&r, &delivery(&derived(&a, AlertKind::FollowUp, 5)))
            .await
            .status,
        Status::Done
    );
    let hooks = fake.to(WEBHOOK_PATH);
    assert_eq!(hooks.len(), 2);
    assert!(text_of(&hooks[1].body).contains("Follow-up"));
    fake.script(WEBHOOK_PATH, Behave::Error(404, "channel_not_found"));
    let e = deliver(
        &r,
        &delivery(&alert("prod-eu/hook2/p", Severity::High, "p")),
    )
    .await;
    assert_eq!(e.status, Status::Failed);
    assert!(
        e.detail
            .starts_with("incoming webhook: HTTP 404 channel_not_found"),
        "{}",
        e.detail
    );
}

/// Decisions kept in memory, as the outbox keeps them.
#[derive(Default)]
struct Book {
    calls: Mutex<Vec<(String, Decision)>>,
    waiting: Mutex<HashMap<String, Option<Decision>>>,
    expired: HashSet<String>,
}

impl Approvals for Book {
    fn decide(&self, id: &str, d: Decision) -> Result<DecideOutcome, String> {
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

async fn send(url: &str, ts: i64, sig: &str, body: &str) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", sig)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
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
