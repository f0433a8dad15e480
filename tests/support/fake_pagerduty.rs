//! A local HTTP server that behaves like PagerDuty's Events API v2 (`POST /v2/enqueue`): it checks the routing key and the event as PagerDuty documents them (400 "invalid event" with its errors), answers 202 with the dedup key, opens one incident per dedup key, and can be scripted to answer 429 or 5xx.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

#[derive(Default)]
struct St {
    routing_keys: Vec<String>,
    /// Every event accepted, in order.
    events: Mutex<Vec<Value>>,
    /// Every request, accepted or not.
    requests: Mutex<u32>,
    /// Dedup key → triggers received for it; the first opened the incident.
    incidents: Mutex<BTreeMap<String, u32>>,
    /// Statuses to answer next, before the normal answer.
    script: Mutex<Vec<u16>>,
}

/// The server; it lives as long as the test's runtime.
#[derive(Clone)]
pub struct FakePagerDuty {
    pub url: String,
    st: Arc<St>,
}

fn invalid(errors: Vec<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors})),
    )
        .into_response()
}

async fn enqueue(State(st): State<Arc<St>>, body: axum::body::Bytes) -> Response {
    *st.requests.lock().unwrap() += 1;
    let next = {
        let mut s = st.script.lock().unwrap();
        (!s.is_empty()).then(|| s.remove(0))
    };
    if let Some(code) = next {
        return (StatusCode::from_u16(code).unwrap(), axum::Json(json!({"status": "throttle", "message": "Requests for this service are arriving too quickly"}))).into_response();
    }
    let Ok(ev) = serde_json::from_slice::<Value>(&body) else {
        return invalid(vec!["Event object is not valid JSON".into()]);
    };
    let s = |p: &str| {
        ev.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let mut errors = Vec::new();
    if !st.routing_keys.contains(&s("/routing_key")) {
        errors.push("'routing_key' is invalid".into());
    }
    if !["trigger", "acknowledge", "resolve"].contains(&s("/event_action").as_str()) {
        errors.push("'event_action' is invalid".into());
    }
    let dedup = s("/dedup_key");
    if dedup.len() > 255 {
        errors.push("'dedup_key' must be at most 255 characters".into());
    }
    if s("/event_action") == "trigger" {
        let summary = s("/payload/summary");
        if summary.is_empty() || summary.len() > 1024 {
            errors.push("'payload.summary' must be 1 to 1024 characters".into());
        }
        if s("/payload/source").is_empty() {
            errors.push("'payload.source' is missing".into());
        }
        if !["critical", "error", "warning", "info"].contains(&s("/payload/severity").as_str()) {
            errors.push("'payload.severity' is invalid".into());
        }
    }
    if !errors.is_empty() {
        return invalid(errors);
    }
    let dedup = if dedup.is_empty() {
        format!("pd-{}", st.events.lock().unwrap().len())
    } else {
        dedup
    };
    *st.incidents
        .lock()
        .unwrap()
        .entry(dedup.clone())
        .or_default() += 1;
    st.events.lock().unwrap().push(ev);
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "success", "message": "Event processed", "dedup_key": dedup})),
    )
        .into_response()
}

impl FakePagerDuty {
    pub async fn start(routing_key: &str) -> Self {
        Self::start_with_keys(&[routing_key]).await
    }

    /// A server with several integrations (services), one routing key each.
    pub async fn start_with_keys(routing_keys: &[&str]) -> Self {
        let st = Arc::new(St {
            routing_keys: routing_keys.iter().map(|k| (*k).to_owned()).collect(),
            ..St::default()
        });
        let app = axum::Router::new()
            .route("/v2/enqueue", axum::routing::post(enqueue))
            .with_state(st.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Self {
            url: format!("http://{addr}/v2/enqueue"),
            st,
        }
    }

    /// The next answers, before the normal one (e.g. 429, 503).
    pub fn script(&self, codes: &[u16]) {
        self.st.script.lock().unwrap().extend_from_slice(codes);
    }

    pub fn events(&self) -> Vec<Value> {
        self.st.events.lock().unwrap().clone()
    }

    pub fn requests(&self) -> u32 {
        *self.st.requests.lock().unwrap()
    }

    /// Dedup key → triggers received for it.
    pub fn incidents(&self) -> BTreeMap<String, u32> {
        self.st.incidents.lock().unwrap().clone()
    }
}
