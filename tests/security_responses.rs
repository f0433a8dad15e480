//! Responses that must not happen, through the whole pipeline: a playbook asking to revoke protected bindings changes none of them, and no forged, stale, future, tampered, replayed or unlisted Slack click decides anything (an approved one still cannot touch a protected binding).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use support::{fake_kube, fake_slack, kube_kit, spawned};

use std::time::Duration;

use fake_kube::{path_of, FakeKube};
use fake_slack::FakeSlack;
use kube_kit::{binding, group, sa, user, CRB, RB};
use rampart::respond::slack::interact;
use rampart::state::model::{wall_ms, Status};
use serde_json::{json, Value};

const PROTECTION: &str = "  kubernetes:\n    kubeconfig: KUBECONFIG\n    context: fake\n    protected:\n      names: [break-glass-*]\n      subjects: [oncall-*]\n      label_selector: rampart.dev/protected=true\n    own:\n      service_account: {namespace: rampart, name: rampart}\n      bindings: [rampart-responder]\n";

const PLAYBOOK: &str = r##"fn meta() { #{ id: "revoke-any", title: "binding judged dangerous", severity: "critical",
    on: #{ verbs: ["create"], resources: ["clusterrolebindings", "rolebindings"] } } }
fn rule(e) { true }
fn dedup(e) { e.name }
fn respond(e) {
    let n = e.name;
    if n == "pager" { return [revoke_binding()]; }
    if n == "team-edit" {
        let r = revoke_binding();
        r.subject = "system:serviceaccount:kube-system:deployer";
        return [r];
    }
    if n == "team-view" {
        let r = revoke_binding();
        r.subject = "ServiceAccount/rampart/rampart";
        return [r];
    }
    if n.starts_with("ask-") { return [slack("#sec"), with_approval(delete_binding())]; }
    [delete_binding()]
}
"##;

fn audit_event(obj: &Value, id: &str) -> String {
    let ns = obj["metadata"]["namespace"].as_str();
    let resource = if ns.is_some() {
        "rolebindings"
    } else {
        "clusterrolebindings"
    };
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": id, "stage": "ResponseComplete", "verb": "create",
        "requestURI": format!("/apis/rbac.authorization.k8s.io/v1/{resource}"),
        "user": {"username": "mallory@example.com", "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.7"],
        "objectRef": {"resource": resource, "namespace": ns, "name": obj["metadata"]["name"], "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "responseObject": obj,
        "requestReceivedTimestamp": rampart::event::time::format_rfc3339(kube_kit::now()),
        "stageTimestamp": rampart::event::time::format_rfc3339(kube_kit::now()),
    })
    .to_string()
}

fn write_playbook(s: &common::Scratch) -> std::path::PathBuf {
    let dir = s.path("playbooks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("revoke_any.rhai"), PLAYBOOK).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playbook_asking_to_revoke_protected_bindings_changes_none_of_them() {
    let kube = FakeKube::start().await;
    let mut labelled = binding(CRB, None, "labelled", vec![user("mallory")]);
    labelled["metadata"]["labels"]["rampart.dev/protected"] = json!("true");
    let cases: Vec<(Value, &str)> = vec![
        (
            binding(CRB, None, "system:controller:evil", vec![user("mallory")]),
            "starts with system:",
        ),
        (
            binding(CRB, None, "masters-too", vec![group("system:masters")]),
            "Kubernetes system identity",
        ),
        (
            binding(CRB, None, "deployer", vec![sa("kube-system", "deployer")]),
            "kube-system service account",
        ),
        (
            binding(CRB, None, "rampart-responder", vec![user("mallory")]),
            "rampart's own bindings",
        ),
        (
            binding(
                CRB,
                None,
                "shared",
                vec![user("mallory"), sa("rampart", "rampart")],
            ),
            "rampart's own service account",
        ),
        (
            binding(CRB, None, "break-glass-1", vec![user("mallory")]),
            "protected.names",
        ),
        (labelled, "protected.label_selector"),
        (
            binding(CRB, None, "pager", vec![user("oncall-bob")]),
            "protected.subjects",
        ),
        // The playbook names the subject itself: a kube-system service account, then rampart's own.
        (
            binding(
                RB,
                Some("payments"),
                "team-edit",
                vec![user("mallory"), sa("kube-system", "deployer")],
            ),
            "kube-system service account",
        ),
        (
            binding(
                RB,
                Some("payments"),
                "team-view",
                vec![user("mallory"), sa("rampart", "rampart")],
            ),
            "rampart's own service account",
        ),
    ];
    let stored: Vec<(Value, &str)> = cases.into_iter().map(|(b, w)| (kube.put(b), w)).collect();
    // The control: an unprotected binding, which the same playbook does delete.
    let control = kube.put(binding(CRB, None, "ops-admin", vec![user("mallory")]));

    let s = common::Scratch::new();
    let playbooks = write_playbook(&s);
    let audit = s.path("audit.jsonl");
    let lines: Vec<String> = stored
        .iter()
        .map(|(b, _)| b)
        .chain([&control])
        .enumerate()
        .map(|(i, b)| audit_event(b, &format!("p-{i}")))
        .collect();
    std::fs::write(&audit, lines.join("\n") + "\n").unwrap();
    let yaml = format!(
        "sources:\n  files:\n    - path: {}\nplaybooks:\n  dir: {}\nrespond:\n{}",
        audit.display(),
        playbooks.display(),
        PROTECTION.replace("KUBECONFIG", kube.kubeconfig.to_str().unwrap())
    );
    let report = common::run_to_end(&s.config(&yaml)).await;
    // One per binding, plus mallory's and her address's high-risk alerts.
    assert!(report.alerts > stored.len() as u64, "{}", report.alerts);

    let cfg = s.path("rampart.yaml");
    std::fs::write(
        &cfg,
        format!(
            "{yaml}output:\n  console: off\nstate:\n  dir: {}\n",
            s.path("state").display()
        ),
    )
    .unwrap();
    let (ok, out, err) = spawned::output(&["actions", "-c", cfg.to_str().unwrap(), "--json"], &[]);
    assert!(ok.success(), "{err}");
    let journal: Vec<Value> = serde_json::from_str(&out).unwrap();
    let mut refused = 0;
    for (b, why) in &stored {
        let name = b["metadata"]["name"].as_str().unwrap();
        let kind = b["kind"].as_str().unwrap();
        let ns = b["metadata"]["namespace"].as_str();
        assert_eq!(kube.get(kind, ns, name).as_ref(), Some(b), "{name} changed");
        let named = match ns {
            Some(ns) => format!("{kind} {ns}/{name}:"),
            None => format!("{kind}/{name}:"),
        };
        let e = journal
            .iter()
            .find(|e| {
                e["responder"] == "revoke_binding" && e["detail"].as_str().unwrap().contains(&named)
            })
            .unwrap_or_else(|| panic!("no journal entry for {name}: {journal:#?}"));
        let detail = e["detail"].as_str().unwrap();
        assert_eq!(e["status"], "failed", "{name}: {detail}");
        assert!(detail.starts_with("refused to change"), "{detail}");
        assert!(detail.contains(why), "{name}: {detail:?} lacks {why:?}");
        refused += 1;
    }
    let writes = kube.binding_writes();
    let protected_writes = writes
        .iter()
        .filter(|(_, p)| !p.ends_with("/clusterrolebindings/ops-admin"))
        .count();
    assert_eq!(protected_writes, 0, "{writes:?}");
    assert_eq!(
        writes,
        [("DELETE".to_owned(), path_of(CRB, None, "ops-admin"))],
        "the control was deleted, and only it"
    );
    assert!(kube.get(CRB, None, "ops-admin").is_none());
    let refusals = kube
        .events()
        .iter()
        .filter(|e| e["action"] == "Refused")
        .count();
    assert_eq!(refusals, stored.len(), "a Kubernetes Event per refusal");
    common::figure(&format!(
        "security: revocation protected_asked={} writes_to_protected={protected_writes} refused_journaled={refused}/{} refusal_events={refusals} control_deleted=1",
        stored.len(),
        stored.len()
    ));
}

fn click(user: (&str, &str), id: &str, response_url: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user.0, "username": user.1, "name": user.1},
        "actions": [{"type": "button", "action_id": "rampart.approve", "value": id}],
        "response_url": response_url,
        "container": {"type": "message", "channel_id": "CSEC", "message_ts": "1.1"},
    });
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

/// POSTs an interaction with the given headers (None leaves one out).
async fn send(url: &str, ts: Option<String>, sig: Option<String>, body: &str) -> u16 {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    if let Some(t) = ts {
        req = req.header("x-slack-request-timestamp", t);
    }
    if let Some(s) = sig {
        req = req.header("x-slack-signature", s);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_forged_click_decides_and_an_approved_one_still_cannot_touch_a_protected_binding() {
    const TOKEN: &str = "xoxb-forgery-bot";
    const SIGNING: &str = "forgery-signing-secret";
    let kube = FakeKube::start().await;
    let judged = kube.put(binding(CRB, None, "ask-break-glass", vec![user("mallory")]));
    let slack = FakeSlack::start(TOKEN, "/hooks/unused").await;
    let s = common::Scratch::new();
    let playbooks = write_playbook(&s);
    let protection = PROTECTION
        .replace("KUBECONFIG", kube.kubeconfig.to_str().unwrap())
        .replace("[break-glass-*]", "[ask-break-*]");
    let rest = format!(
        "playbooks:\n  dir: {}\ntelemetry:\n  listen: 127.0.0.1:0\nrespond:\n  slack:\n    bot_token: {TOKEN}\n    api_url: {}\n    ca_file: {}\n    channel_interval: 10ms\n    approvals:\n      signing_secret: {SIGNING}\n      approvers: [U_ALICE]\n{protection}",
        playbooks.display(),
        slack.api_url(),
        slack.ca_file.display(),
    );
    let (running, url, shutdown) = common::start_webhook(&s, "", &rest).await;
    let list = format!(
        r#"{{"kind":"EventList","items":[{}]}}"#,
        audit_event(&judged, "ask-1")
    );
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(list)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let st = running.state.clone();
    let id = "default/ask-1/revoke-any/revoke_binding.1";
    common::eventually("the parked revocation", Duration::from_secs(20), || {
        st.outbox()
            .journal(id)
            .unwrap()
            .filter(|j| j.status == Status::Pending)
    })
    .await;

    let endpoint = format!(
        "http://{}/slack/interactions",
        running.telemetry_addr.unwrap()
    );
    let now = (wall_ms() / 1000) as i64;
    let sign = |secret: &str, ts: i64, body: &str| {
        interact::signature(secret, &ts.to_string(), body.as_bytes())
    };
    let alice = click(("U_ALICE", "alice"), id, &slack.response_url(1));
    let mallory = click(("U_MALLORY", "mallory"), id, &slack.response_url(1));
    let good = sign(SIGNING, now, &alice);
    let forgeries: Vec<(&str, Option<String>, Option<String>, String)> = vec![
        ("no headers", None, None, alice.clone()),
        ("no signature", Some(now.to_string()), None, alice.clone()),
        ("no timestamp", None, Some(good.clone()), alice.clone()),
        (
            "a signature without v0=",
            Some(now.to_string()),
            Some(good.trim_start_matches("v0=").to_owned()),
            alice.clone(),
        ),
        (
            "a guessed secret",
            Some(now.to_string()),
            Some(sign("guessed", now, &alice)),
            alice.clone(),
        ),
        (
            "ten minutes old",
            Some((now - 600).to_string()),
            Some(sign(SIGNING, now - 600, &alice)),
            alice.clone(),
        ),
        (
            "ten minutes ahead",
            Some((now + 600).to_string()),
            Some(sign(SIGNING, now + 600, &alice)),
            alice.clone(),
        ),
        (
            "mallory's signed click made alice's",
            Some(now.to_string()),
            Some(sign(SIGNING, now, &mallory)),
            alice.clone(),
        ),
        (
            "the timestamp changed after signing",
            Some((now + 1).to_string()),
            Some(good.clone()),
            alice.clone(),
        ),
    ];
    for (what, ts, sig, body) in &forgeries {
        assert_eq!(
            send(&endpoint, ts.clone(), sig.clone(), body).await,
            401,
            "{what}"
        );
    }
    // Correctly signed, but Mallory is not an approver: answered, and nothing decided.
    let unlisted = send(
        &endpoint,
        Some(now.to_string()),
        Some(sign(SIGNING, now, &mallory)),
        &mallory,
    )
    .await;
    assert_eq!(unlisted, 200);
    assert!(
        st.outbox().decision(id).unwrap().is_none(),
        "a forgery decided"
    );
    assert_eq!(
        st.outbox().journal(id).unwrap().unwrap().status,
        Status::Pending
    );

    // Alice approves, once; her request again is a replay.
    assert_eq!(
        send(&endpoint, Some(now.to_string()), Some(good.clone()), &alice).await,
        200
    );
    assert_eq!(
        send(&endpoint, Some(now.to_string()), Some(good), &alice).await,
        401,
        "replay"
    );
    let outcome = common::eventually("the approved revocation", Duration::from_secs(20), || {
        st.outbox()
            .journal(id)
            .unwrap()
            .filter(|j| j.status != Status::Pending)
    })
    .await;
    assert_eq!(outcome.status, Status::Failed, "{outcome:?}");
    assert!(
        outcome
            .detail
            .contains("refused to change ClusterRoleBinding/ask-break-glass")
            && outcome.detail.contains("protected.names"),
        "{}",
        outcome.detail
    );
    assert!(st
        .outbox()
        .decision(id)
        .unwrap()
        .unwrap()
        .by
        .contains("U_ALICE"));
    assert_eq!(kube.get(CRB, None, "ask-break-glass"), Some(judged));
    assert!(
        kube.binding_writes().is_empty(),
        "{:?}",
        kube.binding_writes()
    );
    let metrics = reqwest::get(format!(
        "http://{}/metrics",
        running.telemetry_addr.unwrap()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let counted = metrics
        .lines()
        .find(|l| l.starts_with("rampart_slack_interactions_refused_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert_eq!(counted, forgeries.len() as f64 + 1.0, "{metrics}");
    shutdown.cancel();
    running.wait().await.unwrap();
    common::figure(&format!(
        "security: slack_forgeries refused={}/{} unlisted_decided=0 replay_refused=1 approved_protected_writes=0",
        forgeries.len(),
        forgeries.len()
    ));
}
