//! Shared pieces of the Slack tests: a bot config for the fake Slack, alerts and deliveries, a log capture.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use super::fake_slack::{Behave, FakeSlack};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

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

pub const TOKEN: &str = "xoxb-test-SeCrEtToKeN-1";
pub const WEBHOOK_PATH: &str = "/services/T0001/B0001/SeCrEtWeBhOoK";
pub const SIGNING: &str = "signing-SeCrEt-8f7422";
pub const SECRETS: &[&str] = &[
    "SeCrEtToKeN",
    "SeCrEtWeBhOoK",
    "signing-SeCrEt",
    "WrOnGtOkEn",
];

/// Every log line of this test binary (all tests share one global subscriber).
pub fn logs() -> Arc<Mutex<Vec<u8>>> {
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

pub fn bot_cfg(fake: &FakeSlack) -> SlackConfig {
    let mut c = SlackConfig::new(None, Some(Secret::new(TOKEN)));
    c.api_url = fake.api_url();
    c.ca_file = Some(fake.ca_file.clone());
    c.default_channel = Some("#sec".into());
    c.timeout = Seconds::from_millis(500);
    c.link_template = Some("https://logs.example/search?q={audit_id}&cluster={cluster}".into());
    c
}

pub fn approvals_cfg() -> ApprovalsConfig {
    serde_yaml::from_str(&format!(
        "signing_secret: {SIGNING}\napprovers: [U_ALICE, bob]\n"
    ))
    .unwrap()
}

pub fn responder(cfg: SlackConfig, store: &Arc<MemoryStore>) -> SlackResponder {
    logs();
    SlackResponder::new(cfg, store.clone()).unwrap()
}

pub fn event_json(audit_id: &str, t: &str, user: &str) -> Value {
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

pub fn alert(id: &str, sev: Severity, playbook: &str) -> Alert {
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
        event: serde_json::from_value(event_json(
            "audit-1",
            "2026-11-20T10:00:00Z",
            "alice@example.com",
        ))
        .unwrap(),
        contributions: vec![],
        suppressed: None,
        dry_run: false,
    }
}

pub fn delivery(a: &Alert) -> Delivery {
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

pub fn derived(a: &Alert, kind: AlertKind, count: u64) -> Alert {
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

pub fn text_of(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

pub async fn deliver(r: &SlackResponder, d: &Delivery) -> rampart::respond::Effect {
    r.deliver(d, false).await.unwrap()
}

/// An audit event with a verdict, as the playbook stage hands it to the state stage.
pub fn judged(audit_id: &str, secs: i64, user: &str, playbook: &str) -> AuditEvent {
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

pub async fn until_done(stage: &StateStage, n: usize) -> Vec<rampart::state::model::JournalEntry> {
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

/// Posts an interaction as Slack does: form body, timestamp and signature headers; the status.
pub async fn send(url: &str, ts: i64, sig: &str, body: &str) -> u16 {
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
