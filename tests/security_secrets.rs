//! No secret reaches a log, an alert or an answer: the `rampart` binary at debug level with every kind of credential configured, driven through successes, failures, refusals and config errors, and every byte it produced searched for them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use support::{fake_kube, fake_slack, spawned};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use fake_kube::{FakeKube, Fault, On};
use fake_slack::{Behave, FakeSlack};
use rampart::respond::slack::interact;
use rampart::state::model::wall_ms;
use serde_json::{json, Value};
use spawned::Spawned;

// Unusual values, so that any match is unambiguous.
const WEBHOOK_TOKEN: &str = "whk-Tq4Zr8Vn2Lx6Wc1Ps9";
const SLACK_BOT: &str = "xoxb-Sb7Kd3Fh9Qm2Zt5Rw8";
const SLACK_SIGNING: &str = "sgn-Hf4wR8yT1uI6Op3Ea7";
const SLACK_HOOK_PATH: &str = "/services/T0SEC/B0SEC/iwh-Lp5kJ2hG9fD4Sa6Qe1";
const HOOK_PATH_TOKEN: &str = "url-Mc7vB3nX0zA5Nb8Yu2";
const HOOK_QUERY_TOKEN: &str = "qry-Wt2yU9iO4pE8Rk1Jh6";
const HOOK_HMAC: &str = "hmac-Rg6fD1sA8qW3Ty7Ui0";
const HOOK_HEADER: &str = "hdr-Nk2mL7jH4gF0Bv5Cx3";
const IDENTITY_TOKEN: &str = "idn-Cx9vZ2bN5mQ8Gh4Jk7";
// Not secrets: planted where each channel must show them, to prove the channel was searched.
const UA_MARKER: &str = "planted-ua-K7f3";
const PRINT_MARKER: &str = "planted-print-K7f3";
const DEAD_MARKER: &str = "planted-dead-K7f3";

/// One request as received: path and query, headers, body.
type Request = (String, BTreeMap<String, String>, String);

/// What the stand-in for the webhook target and the identity API received.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<Request>>,
}

/// Plain HTTP: `/hook/...` answers 500, then 401, then 200; `/identity/...` always 500.
async fn receiver() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let st = seen.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let st = st.clone();
            async move {
                let h = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                let mut reqs = st.requests.lock().unwrap();
                reqs.push((
                    uri.to_string(),
                    h,
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                let hooks = reqs.iter().filter(|r| r.0.starts_with("/hook/")).count();
                match (uri.path().starts_with("/hook/"), hooks) {
                    (true, 1) => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    (true, 2) => axum::http::StatusCode::UNAUTHORIZED,
                    (true, _) => axum::http::StatusCode::OK,
                    (false, _) => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn binding(name: &str) -> Value {
    json!({
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "mallory@example.com"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    })
}

fn audit_event(obj: &Value, id: &str) -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": id, "stage": "ResponseComplete", "verb": "create",
        "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "user": {"username": "mallory@example.com", "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.7"], "userAgent": format!("kubectl/{UA_MARKER}"),
        "objectRef": {"resource": "clusterrolebindings", "name": obj["metadata"]["name"], "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "responseObject": obj,
        "requestReceivedTimestamp": "2026-01-01T00:00:00.000000Z",
        "stageTimestamp": "2026-01-01T00:00:00.010000Z",
    })
}

const PLAYBOOK: &str = r##"fn meta() { #{ id: "admin-bound", title: "cluster-admin bound", severity: "critical",
    on: #{ verbs: ["create"], resources: ["clusterrolebindings"] } } }
fn rule(e) { print("planted-print-K7f3"); true }
fn dedup(e) { e.name }
fn respond(e) {
    let revoke = delete_binding();
    if e.name == "approve-me" { revoke = with_approval(revoke); }
    [slack("#sec-oncall"), webhook("soar"), revoke]
}
"##;

async fn post_batch(url: &str, token: &str, body: String) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get_text(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// Every file under `dir`, as bytes (the sled store included).
fn files_under(dir: &Path, out: &mut Vec<u8>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
}

/// The journal entries of the running instance, once `done` says enough have settled.
async fn settled(api: &str, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v: Vec<Value> = serde_json::from_str(&get_text(api).await).unwrap_or_default();
        if done(&v) {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not settle: {v:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count(v: &[Value], responder: &str, status: &str) -> usize {
    v.iter()
        .filter(|e| e["responder"] == responder && e["status"] == status)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_alerts_answers_files_or_cli_output() {
    let kube = FakeKube::start().await;
    let slack = FakeSlack::start(SLACK_BOT, SLACK_HOOK_PATH).await;
    let (recv, seen) = receiver().await;
    let s = Scratch::new();
    let dir = s.dir.path();
    std::fs::create_dir(s.path("playbooks")).unwrap();
    std::fs::write(s.path("playbooks/admin.rhai"), PLAYBOOK).unwrap();
    for (f, v) in [
        ("webhook-token", WEBHOOK_TOKEN),
        ("slack-signing", SLACK_SIGNING),
        ("hook-hmac", HOOK_HMAC),
    ] {
        std::fs::write(s.path(f), v).unwrap();
    }
    let hook_url = format!("{recv}/hook/{HOOK_PATH_TOKEN}?key={HOOK_QUERY_TOKEN}");
    let slack_hook_url = format!("{}{SLACK_HOOK_PATH}", slack.url);
    let env = [
        ("SEC_SLACK_BOT", SLACK_BOT),
        ("SEC_HOOK_URL", hook_url.as_str()),
        ("SEC_HOOK_HEADER", HOOK_HEADER),
        ("SEC_IDENTITY_TOKEN", IDENTITY_TOKEN),
        ("SEC_SLACK_HOOK_URL", slack_hook_url.as_str()),
    ];
    let base_yaml = |state: &str, telemetry: u16, webhook: u16| {
        format!(
            "sources:\n  webhook:\n    listen: 127.0.0.1:{webhook}\n    bearer_token: {{ file: {d}/webhook-token }}\n    ack_timeout: 20s\ntelemetry:\n  listen: 127.0.0.1:{telemetry}\nenrich:\n  identity:\n    api:\n      url: '{recv}/identity/{{user}}'\n      token: {{ env: SEC_IDENTITY_TOKEN }}\nplaybooks:\n  dir: {d}/playbooks\noutput:\n  console: json\n  file: {d}/{state}-events.jsonl\ndead_letter:\n  file: {d}/dead-letter.jsonl\nstate:\n  dir: {d}/{state}\n",
            d = dir.display()
        )
    };
    let (tel1, hook_port) = (free_port(), free_port());
    let p1 = s.path("p1.yaml");
    std::fs::write(
        &p1,
        format!(
            "{}respond:\n  backoff_min: 50ms\n  backoff_max: 200ms\n  alerts_file: {d}/alerts.jsonl\n  slack:\n    bot_token: {{ env: SEC_SLACK_BOT }}\n    api_url: {api}\n    ca_file: {ca}\n    default_channel: '#sec'\n    channel_interval: 10ms\n    approvals:\n      signing_secret: {{ file: {d}/slack-signing }}\n      approvers: [U_ALICE]\n  webhooks:\n    - name: soar\n      url: {{ env: SEC_HOOK_URL }}\n      secret: {{ file: {d}/hook-hmac }}\n      headers: {{ x-api-key: {{ env: SEC_HOOK_HEADER }} }}\n  kubernetes:\n    kubeconfig: {kc}\n    context: fake\n",
            base_yaml("p1", tel1, hook_port),
            d = dir.display(),
            api = slack.api_url(),
            ca = slack.ca_file.display(),
            kc = kube.kubeconfig.display(),
        ),
    )
    .unwrap();
    let p1s = p1.to_str().unwrap();
    // Every kind of failure a responder can meet, once each.
    slack.script("chat.postMessage", Behave::Unavailable);
    slack.script("chat.postMessage", Behave::Error(200, "invalid_auth"));
    kube.fault(On::Reads, Fault::ServerError, 1);
    kube.fault(On::Writes, Fault::Forbidden, 1);
    kube.fault(On::Events, Fault::ServerError, 1);
    let objs: Vec<Value> = ["ops-admin", "dev-admin", "approve-me"]
        .iter()
        .map(|n| kube.put(binding(n)))
        .collect();

    let mut run1 = Spawned::start(
        dir,
        "p1",
        &[
            "--log-level",
            "debug,rampart=trace",
            "--log-format",
            "json",
            "run",
            "-c",
            p1s,
        ],
        &env,
    );
    let webhook = run1.addr_logged("webhook source listening").await;
    let url = format!("http://{webhook}/audit");
    let base = format!("http://127.0.0.1:{tel1}");
    let mut answers = String::new();
    let items: Vec<String> = objs
        .iter()
        .enumerate()
        .map(|(i, o)| audit_event(o, &format!("sec-{i}")).to_string())
        .collect();
    let batch = format!(r#"{{"kind":"EventList","items":[{}]}}"#, items.join(","));
    let (code, text) = post_batch(&url, "whk-wrong-token", batch.clone()).await;
    assert_eq!(code, 401);
    answers += &text;
    let (code, text) = post_batch(&url, WEBHOOK_TOKEN, format!("{{{DEAD_MARKER}")).await;
    assert_eq!(code, 400);
    answers += &text;
    let (code, text) = post_batch(&url, WEBHOOK_TOKEN, batch).await;
    assert_eq!(code, 200, "{text}");
    answers += &text;

    // The approval: a forged click, then Alice's signed one.
    let actions = format!("{base}/api/actions");
    let pending = settled(&actions, "the parked revocation", |v| {
        count(v, "revoke_binding", "pending") == 1
    })
    .await;
    let id = pending.iter().find(|e| e["status"] == "pending").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let payload = json!({
        "type": "block_actions", "user": {"id": "U_ALICE", "username": "alice"},
        "actions": [{"type": "button", "action_id": "rampart.approve", "value": id}],
        "response_url": slack.response_url(1),
        "container": {"type": "message", "channel_id": "CSEC", "message_ts": "1.1"},
    });
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let ts = (wall_ms() / 1000).to_string();
    let endpoint = format!("{base}/slack/interactions");
    for (secret, want) in [("sgn-forged-secret", 401), (SLACK_SIGNING, 200)] {
        let r = reqwest::Client::new()
            .post(&endpoint)
            .header("x-slack-request-timestamp", &ts)
            .header(
                "x-slack-signature",
                interact::signature(secret, &ts, body.as_bytes()),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want);
        answers += &r.text().await.unwrap();
    }
    let journal = settled(&actions, "every response", |v| {
        count(v, "revoke_binding", "done") == 2
            && count(v, "revoke_binding", "failed") == 1
            && count(v, "webhook", "done") + count(v, "webhook", "failed") == 3
            && count(v, "slack", "failed") >= 1
    })
    .await;
    assert_eq!(count(&journal, "webhook", "failed"), 1, "the 401");
    let mut http = String::new();
    for path in [
        "/metrics",
        "/api/alerts",
        "/api/actions",
        "/healthz",
        "/readyz",
    ] {
        http += &get_text(&format!("{base}{path}")).await;
    }
    // The CLI asks the running instance while it holds the store.
    let mut cli = String::new();
    for args in [
        &["alerts", "-c", p1s, "--json"][..],
        &["actions", "-c", p1s],
        &["--log-level", "debug", "check", "-c", p1s],
    ] {
        let (status, out, err) = spawned::output(args, &env);
        assert!(status.success(), "{args:?}: {err}");
        cli += &format!("{out}{err}");
    }
    let status = run1.stop().await;
    assert!(status.success(), "{status}");
    for args in [
        &["--log-level", "debug", "alerts", "-c", p1s][..],
        &["--log-level", "debug", "actions", "-c", p1s, "--json"],
    ] {
        let (status, out, err) = spawned::output(args, &env);
        assert!(status.success(), "{args:?}: {err}");
        cli += &format!("{out}{err}");
    }

    // Phase 2: Slack by incoming webhook (a 503, then a 403), and a kubeconfig context whose token is refused (401).
    slack.script(SLACK_HOOK_PATH, Behave::Unavailable);
    slack.script(SLACK_HOOK_PATH, Behave::Error(403, "action_prohibited"));
    let (tel2, hook2) = (free_port(), free_port());
    let p2 = s.path("p2.yaml");
    std::fs::write(
        &p2,
        format!(
            "{}respond:\n  backoff_min: 50ms\n  backoff_max: 200ms\n  slack:\n    webhook_url: {{ env: SEC_SLACK_HOOK_URL }}\n    ca_file: {ca}\n  kubernetes:\n    kubeconfig: {kc}\n    context: wrong\n",
            base_yaml("p2", tel2, hook2),
            ca = slack.ca_file.display(),
            kc = kube.kubeconfig.display(),
        ),
    )
    .unwrap();
    let run2 = Spawned::start(
        dir,
        "p2",
        &[
            "--log-level",
            "debug,rampart=trace",
            "run",
            "-c",
            p2.to_str().unwrap(),
        ],
        &env,
    );
    let url2 = format!("http://127.0.0.1:{hook2}/audit");
    let items: Vec<String> = ["p2-a", "p2-b"]
        .iter()
        .map(|n| audit_event(&kube.put(binding(n)), n).to_string())
        .collect();
    let batch = format!(r#"{{"kind":"EventList","items":[{}]}}"#, items.join(","));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (code, text) = loop {
        match reqwest::Client::new()
            .post(&url2)
            .bearer_auth(WEBHOOK_TOKEN)
            .header("content-type", "application/json")
            .body(batch.clone())
            .send()
            .await
        {
            Ok(r) => break (r.status().as_u16(), r.text().await.unwrap()),
            Err(e) => assert!(std::time::Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(code, 200, "{text}");
    answers += &text;
    let journal2 = settled(
        &format!("http://127.0.0.1:{tel2}/api/actions"),
        "phase 2",
        |v| count(v, "slack", "done") == 1 && count(v, "slack", "failed") == 1,
    )
    .await;
    eventually(
        "401s from the Kubernetes API",
        Duration::from_secs(30),
        || (kube.unauthorized() >= 2).then_some(()),
    )
    .await;
    http += &serde_json::to_string(&journal2).unwrap();
    let status = run2.stop().await;
    assert!(status.success(), "{status}");

    // Config errors that involve the secrets (each must be reported without its value).
    let broken = [
        ("slack.webhook_url", format!("respond:\n  slack:\n    webhook_url: http://hooks.example{SLACK_HOOK_PATH}\n")),
        ("slack.bot_token", format!("respond:\n  slack:\n    bot_token: xoxp-{}\n", &SLACK_BOT[5..])),
        ("webhooks[0].url", format!("respond:\n  webhooks:\n    - {{name: soar, url: 'ftp://x/{HOOK_PATH_TOKEN}?key={HOOK_QUERY_TOKEN}', secret: {HOOK_HMAC}, headers: {{'bad header': {HOOK_HEADER}}}}}\n")),
        ("approvals.approvers", format!("respond:\n  slack:\n    bot_token: {SLACK_BOT}\n    approvals:\n      signing_secret: {SLACK_SIGNING}\n      approvers: []\n")),
        ("bearer_token", format!("sources:\n  webhook:\n    listen: 127.0.0.1:0\n    bearer_token: {{ value: {WEBHOOK_TOKEN} }}\n")),
        ("invalid YAML", format!("sources:\n  webhook:\n    listen: 127.0.0.1:0\n    bearer_token: \"{WEBHOOK_TOKEN}\n")),
        ("identity.api", format!("enrich:\n  identity:\n    api:\n      url: x\n      token: {IDENTITY_TOKEN}\n      timeout: 0s\n      bogus: 1\n")),
    ];
    let mut checks = String::new();
    for (i, (want, yaml)) in broken.iter().enumerate() {
        let f = s.path(&format!("broken-{i}.yaml"));
        let source = if yaml.starts_with("sources:") {
            ""
        } else {
            "sources:\n  files: [{path: x.jsonl}]\n"
        };
        std::fs::write(&f, format!("{source}{yaml}")).unwrap();
        let (status, out, err) = spawned::output(
            &["--log-level", "trace", "check", "-c", f.to_str().unwrap()],
            &[],
        );
        assert_eq!(status.code(), Some(2), "{want}: {out}{err}");
        assert!(err.contains(want), "{want} is named:\n{err}");
        checks += &format!("{out}{err}");
    }

    // Everything rampart produced, by channel, with a string each channel must hold.
    let read = |name: &str| std::fs::read_to_string(s.path(name)).unwrap_or_default();
    let mut store = Vec::new();
    files_under(&s.path("p1"), &mut store);
    files_under(&s.path("p2"), &mut store);
    let slack_bodies = slack
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect::<String>();
    let sent_bodies = seen
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.2.clone())
        .collect::<String>()
        + serde_json::to_string(&kube.events()).unwrap().as_str();
    let channels: Vec<(&str, String, &str)> = vec![
        ("p1 stdout", read("p1.stdout"), UA_MARKER),
        ("p1 stderr", read("p1.stderr"), PRINT_MARKER),
        ("p2 stdout", read("p2.stdout"), UA_MARKER),
        ("p2 stderr", read("p2.stderr"), PRINT_MARKER),
        ("alerts file", read("alerts.jsonl"), UA_MARKER),
        ("dead-letter file", read("dead-letter.jsonl"), DEAD_MARKER),
        (
            "events files",
            read("p1-events.jsonl") + read("p2-events.jsonl").as_str(),
            UA_MARKER,
        ),
        (
            "state stores",
            String::from_utf8_lossy(&store).into_owned(),
            UA_MARKER,
        ),
        ("http answers", http, "rampart_webhook_requests_total"),
        ("webhook answers", answers, "unauthenticated"),
        ("cli output", cli, UA_MARKER),
        ("check output", checks, "respond.slack.webhook_url"),
        ("posted to slack", slack_bodies, "cluster-admin bound"),
        ("posted to webhook and kubernetes", sent_bodies, UA_MARKER),
    ];
    let secrets = [
        WEBHOOK_TOKEN,
        SLACK_BOT,
        SLACK_SIGNING,
        SLACK_HOOK_PATH,
        HOOK_PATH_TOKEN,
        HOOK_QUERY_TOKEN,
        HOOK_HMAC,
        HOOK_HEADER,
        IDENTITY_TOKEN,
        kube.token.as_str(),
        "not-the-token",
    ];
    // The secrets were in use: the receivers saw them where they belong.
    let reqs = seen.requests.lock().unwrap().clone();
    assert!(reqs.iter().any(|r| r.0.contains(HOOK_QUERY_TOKEN)
        && r.1.get("x-api-key").map(String::as_str) == Some(HOOK_HEADER)));
    assert!(reqs.iter().any(|r| r.0.starts_with("/identity/")
        && r.1.get("authorization") == Some(&format!("Bearer {IDENTITY_TOKEN}"))));
    assert!(slack.to(SLACK_HOOK_PATH).len() >= 2 && slack.to("chat.postMessage").len() >= 3);
    for log in ["p1.stderr", "p2.stderr"] {
        assert!(read(log).contains("DEBUG"), "{log} was not at debug level");
    }
    let mut leaks = Vec::new();
    let mut total = 0;
    for (name, text, marker) in &channels {
        assert!(
            text.contains(marker),
            "{name} does not hold {marker:?}: not searched for real"
        );
        total += text.len();
        for secret in secrets {
            for needle in [secret, &secret[..12], &secret[secret.len() - 12..]] {
                if text.contains(needle) {
                    leaks.push(format!("{needle} in {name}"));
                }
            }
        }
        common::figure(&format!(
            "security: secrets channel=\"{name}\" bytes={} leaks={}",
            text.len(),
            leaks.iter().filter(|l| l.ends_with(*name)).count()
        ));
    }
    common::figure(&format!(
        "security: secrets channels={} scanned_bytes={total} secrets={} leaks={}",
        channels.len(),
        secrets.len(),
        leaks.len()
    ));
    assert!(leaks.is_empty(), "{leaks:#?}");
}
