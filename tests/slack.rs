//! The Slack responder against a fake HTTPS Slack: messages, threads, edits, limits, routing, retries, and secrets kept out of logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{fake_slack, slack_kit};

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fake_slack::{Behave, FakeSlack};
use rampart::config::{Seconds, Secret};
use rampart::playbook::Severity;
use rampart::respond::dispatch::{self, DispatchSettings};
use rampart::respond::slack::SlackConfig;
use rampart::respond::Responder;
use rampart::state::model::{Alert, AlertKind, Status};
use rampart::state::{MemoryStore, StateSettings, StateStage, StateStore};
use serde_json::{json, Value};
use slack_kit::*;
use tokio_util::sync::CancellationToken;

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
    let rec = rampart::respond::slack::store::Messages::new(store.clone())
        .get(alice_id)
        .unwrap()
        .expect("alice's message is recorded");
    let alice_ts = rec.posts[0].ts.clone().unwrap();
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
    identity(&mut a).display_name = Some("Mallory <!channel> & co".into());
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
    identity(&mut a).display_name = Some("<".repeat(3000));
    a.event.as_deref_mut().unwrap().request_uri = "/x".repeat(5000);
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
    // The triage buttons stay last, never cut; the marker is just above them.
    assert_eq!(blocks[49]["block_id"], "triage");
    assert!(blocks[48]["elements"][0]["text"]
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
    identity(&mut other_team).team = Some("web".into());
    cases.push((other_team, vec!["#sec"]));
    let mut kube = alert("c/4/exec", Severity::Medium, "exec");
    let ev = kube.event.as_deref_mut().unwrap();
    ev.object_ref.as_mut().unwrap().namespace = Some("kube-system".into());
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

/// The alert's identity facts, to change them.
fn identity(a: &mut rampart::state::model::Alert) -> &mut rampart::model::Identity {
    &mut a
        .event
        .as_deref_mut()
        .unwrap()
        .enrichment
        .as_mut()
        .unwrap()
        .identity
}

#[test]
fn records_an_older_build_kept_move_to_the_shared_memory_once() {
    use rampart::respond::slack::store::{migrate_legacy, Messages};
    use rampart::state::StateStore;
    let store = Arc::new(MemoryStore::default());
    let rec = json!({"delivery": "prod-eu/a1/p/slack", "posts": [{"channel": "#sec", "channel_id": "CSEC", "ts": "1795000000.000100"}], "at_ms": 1});
    store
        .put(
            "slack_messages",
            b"prod-eu/a1/p",
            rec.to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(migrate_legacy(&*store, 86_400).unwrap(), 1);
    let got = Messages::new(store.clone())
        .get("prod-eu/a1/p")
        .unwrap()
        .expect("the old record is found where the responder looks");
    assert_eq!(got.posts[0].ts.as_deref(), Some("1795000000.000100"));
    assert!(store.scan("slack_messages").unwrap().is_empty());
    assert_eq!(migrate_legacy(&*store, 86_400).unwrap(), 0, "moved once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slow_slack_call_does_not_hold_up_the_alerts_of_other_threads() {
    let fake = FakeSlack::start(TOKEN, WEBHOOK_PATH).await;
    // The first post never gets an answer; the call gives up only after a minute.
    fake.script("chat.postMessage", Behave::Hang);
    let store = Arc::new(MemoryStore::default());
    let mut cfg = bot_cfg(&fake);
    cfg.timeout = Seconds::from_secs(60);
    cfg.channel_interval = Seconds::from_millis(1);
    let r: Arc<dyn Responder> = Arc::new(responder(cfg, &store));
    let settings = StateSettings {
        sinks: vec!["slack".into()],
        ..StateSettings::default()
    };
    let stage = Arc::new(StateStage::open(store.clone(), settings).unwrap());
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let _tasks = dispatch::spawn(stage.clone(), vec![r], Default::default(), shutdown);
    // Three alerts of three threads (three users' dedup groups).
    for (i, user) in ["alice", "bob", "carol"].iter().enumerate() {
        let ev = judged(&format!("s{i}"), 1_795_000_000, user, "secret_read");
        stage.process(&ev).unwrap();
    }
    stage.commit().unwrap();
    // The other two are posted while the first call still hangs (well within its minute).
    fake.wait_for("chat.postMessage", 3, Duration::from_secs(20))
        .await;
    let posted: HashSet<String> = fake.messages().iter().map(|(_, _, b)| text_of(b)).collect();
    assert_eq!(
        posted.len(),
        2,
        "two alerts accepted beside the hung call: {posted:#?}"
    );
}
