//! The webhook responder against a real local HTTP server: signed deliveries exactly once, retries on 429/5xx with Retry-After, permanent 4xx, redirects refused, the Falcosidekick payload (checked against Falcosidekick's own payload type), and no URL token in errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use rampart::event::AuditEvent;
use rampart::playbook::{ResponseRequest, Severity, Verdict};
use rampart::respond::dispatch::DispatchSettings;
use rampart::respond::webhook::{signature, Webhook, WebhookConfig};
use rampart::respond::Responder;
use rampart::state::model::Status;
use rampart::state::{MemoryStore, StateSettings, StateStage};

const T0: i64 = 1_767_225_600;

#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// An HTTP status to answer with, and its Retry-After.
type Answer = (u16, Option<&'static str>);

#[derive(Clone, Default)]
struct Server {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answers to give, in order, before answering 200.
    script: Arc<Mutex<Vec<Answer>>>,
}

async fn hook(
    State(s): State<Server>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    s.got.lock().unwrap().push(Received {
        at: Instant::now(),
        headers,
        body: body.to_vec(),
    });
    let next = {
        let mut sc = s.script.lock().unwrap();
        (!sc.is_empty()).then(|| sc.remove(0))
    };
    match next {
        Some((code, retry_after)) => {
            let mut h = HeaderMap::new();
            if let Some(r) = retry_after {
                h.insert("retry-after", r.parse().unwrap());
            }
            (StatusCode::from_u16(code).unwrap(), h, "no").into_response()
        }
        None => (StatusCode::OK, "ok").into_response(),
    }
}

async fn serve(s: Server) -> String {
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(s);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}/hook?token=hunter2-url-token")
}

fn hook_config(yaml: &str) -> WebhookConfig {
    serde_yaml::from_str(yaml).unwrap()
}

fn event(id: &str, user: &str, t: i64, webhook: Option<&str>) -> AuditEvent {
    let mut ev: AuditEvent = serde_json::from_value(serde_json::json!({
        "auditID": id,
        "stage": "ResponseComplete",
        "verb": "get",
        "requestURI": "/api/v1/namespaces/prod/secrets/db",
        "user": {"username": user, "groups": ["devs"]},
        "sourceIPs": ["203.0.113.7"],
        "userAgent": "kubectl/v1.31.0",
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": rampart::event::time::format_rfc3339(t),
    }))
    .unwrap();
    ev.provenance.cluster = "prod".into();
    let mut params = serde_json::Map::new();
    if let Some(w) = webhook {
        params.insert("name".into(), w.into());
    }
    ev.verdicts = vec![Verdict {
        playbook: "secret-read".into(),
        title: format!("{user} read a secret"),
        severity: Severity::High,
        score: 40,
        dedup: user.into(),
        context: Default::default(),
        responses: webhook
            .map(|_| ResponseRequest {
                kind: "webhook".into(),
                approval: false,
                params,
            })
            .into_iter()
            .collect(),
        mitre: vec!["T1552.007".into()],
        gating: Default::default(),
    }];
    ev
}

fn run(responders: Vec<Webhook>) -> common::Dispatching {
    let responders = responders
        .into_iter()
        .map(|w| Arc::new(w) as Arc<dyn Responder>)
        .collect();
    common::Dispatching::start(
        responders,
        DispatchSettings {
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_millis(200),
            ..DispatchSettings::default()
        },
    )
}

async fn journaled(r: &common::Dispatching, id: &str) -> rampart::state::model::JournalEntry {
    common::eventually(id, Duration::from_secs(20), || {
        r.st.outbox().journal(id).unwrap()
    })
    .await
}

#[tokio::test]
async fn every_alert_is_posted_once_signed_and_a_replay_posts_nothing() {
    let s = Server::default();
    let url = serve(s.clone()).await;
    let cfg = hook_config(&format!(
        "{{name: siem, url: '{url}', secret: s3cret-key, every_alert: true}}"
    ));
    let r = run(Webhook::build(&[cfg]).unwrap());
    let ev = event("e1", "mallory", T0, None);
    r.feed(&ev);
    let j = journaled(&r, "prod/e1/secret-read/webhook.siem").await;
    assert_eq!(j.status, Status::Done, "{j:?}");
    // The same event again (a replay after a crash) changes nothing.
    r.feed(&ev);
    r.feed(&event("e2", "trent", T0 + 1, None));
    journaled(&r, "prod/e2/secret-read/webhook.siem").await;

    let got = s.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "one POST per alert");
    let first = &got[0];
    let ts: u64 = first.headers["x-rampart-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        first.headers["x-rampart-signature"].to_str().unwrap(),
        signature(b"s3cret-key", ts, &first.body),
        "receivers can verify the HMAC"
    );
    assert_ne!(
        first.headers["x-rampart-signature"].to_str().unwrap(),
        signature(b"wrong-key", ts, &first.body)
    );
    assert_eq!(
        first.headers["x-rampart-delivery"],
        "prod/e1/secret-read/webhook.siem"
    );
    let doc: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(doc["delivery"], "prod/e1/secret-read/webhook.siem");
    assert_eq!(doc["title"], "mallory read a secret");
    assert_eq!(doc["severity"], "high");
    assert_eq!(doc["event"]["user"]["username"], "mallory");
    r.stop().await;
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_honouring_retry_after_and_client_errors_are_not()
{
    let s = Server::default();
    *s.script.lock().unwrap() = vec![(503, None), (429, Some("1"))];
    let url = serve(s.clone()).await;
    let cfg = hook_config(&format!("{{name: soar, url: '{url}'}}"));
    let r = run(Webhook::build(&[cfg]).unwrap());
    r.feed(&event("e1", "mallory", T0, Some("soar")));
    let j = journaled(&r, "prod/e1/secret-read/webhook.0").await;
    assert_eq!((j.status, j.attempts), (Status::Done, 3), "{j:?}");
    let got = s.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    let spacing = got[2].at - got[1].at;
    assert!(
        spacing >= Duration::from_millis(990),
        "Retry-After: 1 honoured, waited {spacing:?}"
    );

    // A 400 is the receiver saying no: reported, not retried.
    *s.script.lock().unwrap() = vec![(400, None)];
    r.feed(&event("e2", "trent", T0 + 1, Some("soar")));
    let j = journaled(&r, "prod/e2/secret-read/webhook.0").await;
    assert_eq!(j.status, Status::Failed);
    assert!(j.detail.contains("HTTP 400"), "{}", j.detail);
    assert_eq!(s.got.lock().unwrap().len(), 4);

    // A name no webhook has.
    r.feed(&event("e3", "oscar", T0 + 2, Some("nope")));
    let j = journaled(&r, "prod/e3/secret-read/webhook.0").await;
    assert_eq!(j.status, Status::Failed);
    assert!(j.detail.contains("not configured"), "{}", j.detail);
    r.stop().await;
}

#[tokio::test]
async fn the_falcosidekick_format_is_a_falco_event() {
    let s = Server::default();
    let url = serve(s.clone()).await;
    let cfg = hook_config(&format!(
        "{{name: sidekick, url: '{url}', format: falcosidekick, every_alert: true, min_severity: medium}}"
    ));
    let r = run(Webhook::build(&[cfg]).unwrap());
    r.feed(&event("e1", "mallory", T0, None));
    journaled(&r, "prod/e1/secret-read/webhook.sidekick").await;
    let mut low = event("e2", "lowly", T0 + 1, None);
    low.verdicts[0].severity = Severity::Low;
    r.feed(&low);
    let j = journaled(&r, "prod/e2/secret-read/webhook.sidekick").await;
    assert_eq!(j.status, Status::Skipped, "below min_severity");

    let got = s.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let f: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(f["priority"], "Error", "high maps to Falco's Error");
    // The rule is the playbook, one per playbook whatever the alert says; the title is kept.
    assert_eq!(f["rule"], "secret-read");
    assert_eq!(f["output_fields"]["rampart.title"], "mallory read a secret");
    assert_eq!(f["source"], "k8s_audit");
    assert_eq!(f["output_fields"]["ka.cluster.name"], "prod");
    assert_eq!(f["output_fields"]["ka.stage"], "ResponseComplete");
    assert_eq!(f["output_fields"]["ka.user.name"], "mallory");
    assert_eq!(f["output_fields"]["ka.target.resource"], "secrets");
    assert_eq!(f["output_fields"]["ka.response.code"], 200);
    assert!(f["output"]
        .as_str()
        .unwrap()
        .contains("Error mallory read a secret"));
    assert!(f["time"]
        .as_str()
        .unwrap()
        .starts_with("2026-01-01T00:00:00"));
    let uuid = f["uuid"].as_str().unwrap();
    assert_eq!(uuid.len(), 36);
    assert!(f["tags"].as_array().unwrap().contains(&"T1552.007".into()));
    r.stop().await;
}

/// Falcosidekick's `types.FalcoPayload` (types/types.go), field for field: `uuid`, `output`,
/// `priority` (a `PriorityType` read from one of Falco's eight names, case-insensitively; any
/// other string reads as the empty default, which its `Check()` refuses), `rule`, `time`
/// (Go's `time.Time`: RFC 3339), `output_fields` (`map[string]interface{}`), `source`, `tags`
/// and `hostname`. Unknown fields are refused here so that a misspelt field fails the test.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct FalcoPayload {
    #[serde(default)]
    uuid: String,
    output: String,
    priority: String,
    rule: String,
    time: String,
    output_fields: serde_json::Map<String, serde_json::Value>,
    source: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    hostname: String,
}

impl FalcoPayload {
    /// Falcosidekick's `FalcoPayload.Check()`: a known priority, a rule, a time, some output fields.
    fn check(&self) -> bool {
        const PRIORITIES: [&str; 8] = [
            "emergency",
            "alert",
            "critical",
            "error",
            "warning",
            "notice",
            "informational",
            "debug",
        ];
        PRIORITIES.contains(&self.priority.to_lowercase().as_str())
            && !self.rule.is_empty()
            && rampart::event::time::parse_rfc3339(&self.time).is_some()
            && !self.output_fields.is_empty()
    }
}

#[tokio::test]
async fn the_falcosidekick_payload_is_falcosidekicks_own_type_and_one_playbook_is_one_rule() {
    let s = Server::default();
    let url = serve(s.clone()).await;
    let cfg = hook_config(&format!(
        "{{name: sidekick, url: '{url}', format: falcosidekick, every_alert: true}}"
    ));
    let r = run(Webhook::build(&[cfg]).unwrap());
    r.feed(&event("e1", "mallory", T0, None));
    r.feed(&event("e2", "trent", T0 + 1, None));
    journaled(&r, "prod/e1/secret-read/webhook.sidekick").await;
    journaled(&r, "prod/e2/secret-read/webhook.sidekick").await;
    let got = s.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    let p: Vec<FalcoPayload> = got
        .iter()
        .map(|g| serde_json::from_slice(&g.body).expect("decodes as Falcosidekick's FalcoPayload"))
        .collect();
    for x in &p {
        assert!(x.check(), "Falcosidekick's Check() accepts it: {x:?}");
        assert_eq!(x.source, "k8s_audit");
        // A Falco Talon rule matches on `rule` and `output_fields` with Falco's k8saudit names.
        for field in [
            "ka.user.name",
            "ka.verb",
            "ka.target.resource",
            "ka.target.namespace",
            "ka.target.name",
            "ka.cluster.name",
        ] {
            assert!(
                x.output_fields[field].is_string(),
                "{field} in {:?}",
                x.output_fields
            );
        }
        assert_eq!(x.output_fields["ka.target.namespace"], "prod");
    }
    // Two alerts of one playbook: one rule (Falcosidekick's metrics and Talon's `match.rules`),
    // each with its own output.
    assert_eq!(p[0].rule, "secret-read");
    assert_eq!(p[0].rule, p[1].rule);
    assert_ne!(p[0].output, p[1].output);
    assert_ne!(p[0].uuid, p[1].uuid);
    r.stop().await;
}

#[tokio::test]
async fn a_token_in_the_url_never_reaches_errors_or_the_journal() {
    // A port nobody listens on: the connection is refused.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let cfg = hook_config(&format!(
        "{{name: siem, url: 'http://{addr}/hook?token=hunter2-url-token'}}"
    ));
    assert!(!format!("{cfg:?}").contains("hunter2"));
    let hooks = Webhook::build(&[cfg]).unwrap();
    let st = StateStage::open(Arc::new(MemoryStore::default()), StateSettings::default()).unwrap();
    st.process(&event("e1", "mallory", T0, Some("siem")))
        .unwrap();
    let (_, d) = st.outbox().head("webhook", 1).unwrap().remove(0);
    let err = hooks[0].deliver(&d, false).await.unwrap_err();
    assert!(err.error.contains("webhook siem"), "{}", err.error);
    assert!(!err.error.contains("hunter2"), "{}", err.error);
    assert!(
        !err.error.contains(&addr.port().to_string()),
        "no URL at all: {}",
        err.error
    );
}

#[tokio::test]
async fn a_redirect_fails_the_delivery_and_neither_the_alert_nor_the_secret_headers_follow_it() {
    // Where the redirect points: it must never hear from rampart.
    let elsewhere = Server::default();
    let target = serve(elsewhere.clone()).await;
    let app = axum::Router::new().fallback(move || {
        let to = target.clone();
        async move { (StatusCode::TEMPORARY_REDIRECT, [("location", to)], "moved") }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let cfg = hook_config(&format!(
        "{{name: soar, url: '{url}', secret: s3cret-key, headers: {{x-api-key: hdr-9f2c-secret}}}}"
    ));
    let r = run(Webhook::build(&[cfg]).unwrap());
    r.feed(&event("e1", "mallory", T0, Some("soar")));
    let j = journaled(&r, "prod/e1/secret-read/webhook.0").await;
    assert_eq!((j.status, j.attempts), (Status::Failed, 1), "{j:?}");
    assert!(j.detail.contains("HTTP 307"), "{}", j.detail);
    let followed = elsewhere.got.lock().unwrap().len();
    assert_eq!(followed, 0, "the redirect was followed");
    common::figure(&format!(
        "security: webhook_redirect status=307 followed={followed} outcome=failed"
    ));
    r.stop().await;
}

#[test]
fn bad_webhook_config_reports_every_problem_with_its_path() {
    let cfg = rampart::config::load_str(
        r#"
sources: {files: [{path: x.jsonl}]}
respond:
  webhooks:
    - {name: "a b", url: "ftp://x", concurrency: 0}
    - {name: ok, url: "https://x", headers: {"bad header": "v"}}
    - {name: ok, url: "https://y"}
"#,
        "rampart.yaml",
    )
    .unwrap_err()
    .to_string();
    for want in [
        "respond.webhooks[0].name",
        "respond.webhooks[0].url",
        "respond.webhooks[0].concurrency",
        "respond.webhooks[1].headers",
        "respond.webhooks[2].name: \"ok\" is used twice",
    ] {
        assert!(cfg.contains(want), "missing {want} in:\n{cfg}");
    }
}
