//! The whole approval path as on-call lives it: an audit event arrives, the Slack alert carries Approve/Reject, nothing happens until an approver clicks, a forged or unlisted click changes nothing, and the approved revocation runs exactly once on the (fake) Kubernetes API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use support::{fake_kube, fake_slack, slack_kit};

use std::time::Duration;

use fake_kube::FakeKube;
use fake_slack::FakeSlack;
use rampart::respond::slack::interact;
use rampart::state::model::{wall_ms, Status};
use serde_json::{json, Value};

const CRB: &str = "ClusterRoleBinding";
const TOKEN: &str = "xoxb-e2e-bot-token";
const SIGNING: &str = "e2e-signing-secret";

fn audit_event(obj: &Value) -> String {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": "ev-1", "stage": "ResponseComplete", "verb": "create",
        "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "user": {"username": "mallory@example.com", "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.7"],
        "objectRef": {"resource": "clusterrolebindings", "name": "ops-admin", "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "responseObject": obj,
        "requestReceivedTimestamp": "2026-01-01T00:00:00.000000Z",
        "stageTimestamp": "2026-01-01T00:00:00.010000Z",
    })
    .to_string()
}

/// Every button `value` in a Block Kit message.
fn button_values(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            if m.get("type").and_then(Value::as_str) == Some("button") {
                if let (Some(a), Some(val)) = (
                    m.get("action_id").and_then(Value::as_str),
                    m.get("value").and_then(Value::as_str),
                ) {
                    out.push((a.to_owned(), val.to_owned()));
                }
            }
            m.values().for_each(|x| button_values(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| button_values(x, out)),
        _ => {}
    }
}

fn click(user: (&str, &str), action: &str, id: &str, response_url: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user.0, "username": user.1, "name": user.1},
        "actions": [{"type": "button", "action_id": action, "value": id}],
        "response_url": response_url,
        "container": {"type": "message", "channel_id": "CSEC", "message_ts": "1.1"},
    });
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

async fn send(url: &str, body: &str, secret: &str, ts: i64) -> u16 {
    let sig = interact::signature(secret, &ts.to_string(), body.as_bytes());
    slack_kit::send(url, ts, &sig, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_revocation_runs_once_after_a_signed_click_and_forgeries_change_nothing() {
    let kube = FakeKube::start().await;
    let judged = kube.put(json!({
        "kind": CRB,
        "metadata": {"name": "ops-admin", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "mallory@example.com"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    }));
    let slack = FakeSlack::start(TOKEN, "/hooks/unused").await;
    let s = common::Scratch::new();
    let playbooks = s.path("playbooks");
    std::fs::create_dir_all(&playbooks).unwrap();
    std::fs::write(
        playbooks.join("admin_bound.rhai"),
        r##"fn meta() { #{ id: "admin-bound", title: "cluster-admin bound", severity: "critical",
    on: #{ verbs: ["create"], resources: ["clusterrolebindings"] } } }
fn rule(e) { true }
fn respond(e) { [slack("#sec-oncall"), with_approval(delete_binding())] }
"##,
    )
    .unwrap();
    let rest = format!(
        "playbooks:\n  dir: {}\ntelemetry:\n  listen: 127.0.0.1:0\nrespond:\n  slack:\n    bot_token: {TOKEN}\n    api_url: {}\n    ca_file: {}\n    default_channel: '#sec'\n    channel_interval: 10ms\n    approvals:\n      signing_secret: {SIGNING}\n      approvers: [U_ALICE]\n  kubernetes:\n    kubeconfig: {}\n    context: fake\n",
        playbooks.display(),
        slack.api_url(),
        slack.ca_file.display(),
        kube.kubeconfig.display(),
    );
    let (running, url, shutdown) = common::start_webhook(&s, "", &rest).await;
    let list = format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
        audit_event(&judged)
    );
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(list)
        .send()
        .await
        .unwrap();
    let code = resp.status();
    assert!(code.is_success(), "{code}: {}", resp.text().await.unwrap());

    // The alert reaches both channels (the default route and the playbook's), with the buttons.
    let posts = slack
        .wait_for("chat.postMessage", 2, Duration::from_secs(20))
        .await;
    let mut buttons = Vec::new();
    button_values(&posts[0].body, &mut buttons);
    let id = "default/ev-1/admin-bound/revoke_binding.1";
    assert!(
        buttons
            .iter()
            .any(|(a, v)| a.contains("approve") && v == id),
        "{buttons:?}"
    );
    let st = running.state.clone();
    let pending = common::eventually("pending approval", Duration::from_secs(20), || {
        st.outbox()
            .journal(id)
            .unwrap()
            .filter(|j| j.status == Status::Pending)
    })
    .await;
    assert!(pending.detail.contains("waiting for approval"));
    assert!(
        kube.get(CRB, None, "ops-admin").is_some(),
        "nothing before a decision"
    );

    let endpoint = format!(
        "http://{}/slack/interactions",
        running.telemetry_addr.unwrap()
    );
    let now = (wall_ms() / 1000) as i64;
    let respond_url = slack.response_url(1);
    // Forged (wrong secret), stale (10 minutes old) and unlisted approvers decide nothing.
    let approve_alice = click(("U_ALICE", "alice"), "rampart.approve", id, &respond_url);
    assert_eq!(
        send(&endpoint, &approve_alice, "guessed-secret", now).await,
        401
    );
    assert_eq!(
        send(&endpoint, &approve_alice, SIGNING, now - 600).await,
        401
    );
    let approve_mallory = click(
        ("U_MALLORY", "mallory"),
        "rampart.approve",
        id,
        &respond_url,
    );
    assert_eq!(send(&endpoint, &approve_mallory, SIGNING, now).await, 200);
    assert_eq!(
        st.outbox().journal(id).unwrap().unwrap().status,
        Status::Pending
    );
    assert!(st.outbox().decision(id).unwrap().is_none());

    // Alice approves: the binding judged is deleted, once.
    assert_eq!(send(&endpoint, &approve_alice, SIGNING, now).await, 200);
    let done = common::eventually("revocation done", Duration::from_secs(20), || {
        st.outbox()
            .journal(id)
            .unwrap()
            .filter(|j| j.status == Status::Done)
    })
    .await;
    assert!(kube.get(CRB, None, "ops-admin").is_none());
    assert!(!done.undo.is_null(), "the object is saved for undo");
    let by = st.outbox().decision(id).unwrap().unwrap().by;
    assert!(by.contains("U_ALICE"), "{by}");
    // The same request again is a replay: refused.
    assert_eq!(send(&endpoint, &approve_alice, SIGNING, now).await, 401);
    let deletes = kube
        .binding_writes()
        .iter()
        .filter(|(m, _)| m == "DELETE")
        .count();
    assert_eq!(deletes, 1);
    // The message was updated to say who approved.
    let replies = slack
        .wait_for("/respond/1", 1, Duration::from_secs(10))
        .await;
    assert!(replies
        .iter()
        .any(|r| r.body.to_string().contains("Approved by <@U_ALICE>")));

    shutdown.cancel();
    running.wait().await.unwrap();
}
