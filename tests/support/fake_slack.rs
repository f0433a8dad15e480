//! A local HTTPS server that behaves like Slack for the responder's tests: incoming webhooks, `chat.postMessage`, `chat.update`, `conversations.history` / `.replies` (with message metadata) and `response_url`, bearer-token auth, Slack's message limits, scripted 429 / 5xx / hangs (one request at a time, or all of them during an outage), and a record of every request with its arrival time.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Req {
    pub path: String,
    pub auth: Option<String>,
    pub body: Value,
    pub at: Instant,
}

impl Req {
    pub fn method(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }
}

/// What the next matching request gets instead of the normal answer.
#[derive(Debug, Clone)]
pub enum Behave {
    /// HTTP 429 with `Retry-After: secs`.
    RateLimit(u64),
    /// HTTP 503.
    Unavailable,
    /// Never answers.
    Hang,
    /// Does the work (posts the message), then never answers: the answer is lost on the way.
    Lost,
    /// HTTP 200 `{"ok": false, "error": ...}` (or, for webhooks, that HTTP status and code).
    Error(u16, &'static str),
}

struct St {
    token: String,
    webhook_path: String,
    reqs: Mutex<Vec<Req>>,
    script: Mutex<VecDeque<(String, Behave)>>,
    /// While set, every request gets these, in turn (an outage).
    outage: Mutex<Option<(Vec<Behave>, usize)>>,
    ts: AtomicU64,
    /// ts → (channel id, latest body).
    messages: Mutex<HashMap<String, (String, Value)>>,
    /// ts → wall-clock seconds it was posted (the ts itself counts from a fixed base, for stable tests).
    posted_at: Mutex<HashMap<String, f64>>,
    arrived: tokio::sync::Notify,
}

/// The server; dropped with the test's runtime.
pub struct FakeSlack {
    pub url: String,
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
    st: Arc<St>,
}

fn channel_id(name: &str) -> String {
    if name.starts_with('C') {
        return name.to_owned();
    }
    format!(
        "C{}",
        name.trim_start_matches('#')
            .to_uppercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
    )
}

/// Slack's Block Kit limits, as Slack enforces them: `Some(error)` when `body` breaks one.
pub fn limits_broken(body: &Value) -> Option<String> {
    let blocks = body["blocks"].as_array()?;
    if blocks.len() > 50 {
        return Some(format!("{} blocks", blocks.len()));
    }
    let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    for b in blocks {
        match b["type"].as_str() {
            Some("header") if len(&b["text"]["text"]) > 150 => return Some("header".into()),
            Some("section") => {
                if len(&b["text"]["text"]) > 3000 {
                    return Some("section text".into());
                }
                if let Some(f) = b["fields"].as_array() {
                    if f.len() > 10 || f.iter().any(|f| len(&f["text"]) > 2000) {
                        return Some("section fields".into());
                    }
                }
            }
            Some("context")
                if b["elements"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| len(&e["text"]) > 2000)) =>
            {
                return Some("context".into());
            }
            Some("actions") => {
                let e = b["elements"].as_array()?;
                if e.len() > 25
                    || e.iter()
                        .any(|e| len(&e["value"]) > 2000 || len(&e["text"]["text"]) > 75)
                {
                    return Some("actions".into());
                }
            }
            _ => {}
        }
        if len(&b["block_id"]) > 255 {
            return Some("block_id".into());
        }
    }
    None
}

impl FakeSlack {
    /// Starts on 127.0.0.1 with a fresh CA (written to `ca_file`); `token` is the bot token it accepts.
    pub async fn start(token: &str, webhook_path: &str) -> Self {
        let t = super::test_tls::server_tls();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &t.ca_pem).unwrap();
        let tls = t.server;
        let st = Arc::new(St {
            token: token.to_owned(),
            webhook_path: webhook_path.to_owned(),
            reqs: Mutex::default(),
            script: Mutex::default(),
            outage: Mutex::default(),
            ts: AtomicU64::new(0),
            messages: Mutex::default(),
            posted_at: Mutex::default(),
            arrived: tokio::sync::Notify::new(),
        });
        let app = axum::Router::new().fallback(handle).with_state(st.clone());
        let handle: axum_server::Handle<SocketAddr> = axum_server::Handle::new();
        let server = axum_server::bind_rustls(
            "127.0.0.1:0".parse().unwrap(),
            axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls)),
        )
        .handle(handle.clone());
        tokio::spawn(async move { server.serve(app.into_make_service()).await });
        let addr = handle.listening().await.expect("fake Slack listens");
        Self {
            url: format!("https://{addr}"),
            ca_file,
            _dir: dir,
            st,
        }
    }

    pub fn api_url(&self) -> String {
        format!("{}/api", self.url)
    }

    pub fn webhook_url(&self) -> String {
        format!("{}{}", self.url, self.st.webhook_path)
    }

    pub fn response_url(&self, n: u32) -> String {
        format!("{}/respond/{n}", self.url)
    }

    /// The next request whose path ends with `path` gets `b`.
    pub fn script(&self, path: &str, b: Behave) {
        self.st
            .script
            .lock()
            .unwrap()
            .push_back((path.to_owned(), b));
    }

    /// Every request gets `b` until [`FakeSlack::recover`].
    pub fn outage(&self, b: Behave) {
        self.outage_cycle(vec![b]);
    }

    /// Requests get each of `bs` in turn until [`FakeSlack::recover`].
    pub fn outage_cycle(&self, bs: Vec<Behave>) {
        *self.st.outage.lock().unwrap() = Some((bs, 0));
    }

    /// The outage is over: requests are served again.
    pub fn recover(&self) {
        *self.st.outage.lock().unwrap() = None;
    }

    pub fn requests(&self) -> Vec<Req> {
        self.st.reqs.lock().unwrap().clone()
    }

    /// Requests to paths ending with `path`.
    pub fn to(&self, path: &str) -> Vec<Req> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with(path))
            .collect()
    }

    /// Waits (up to `deadline`) until `n` requests went to paths ending with `path`.
    pub async fn wait_for(&self, path: &str, n: usize, deadline: Duration) -> Vec<Req> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let notified = self.st.arrived.notified();
            let got = self.to(path);
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                panic!(
                    "{} request(s) to {path} within {deadline:?}, wanted {n}",
                    got.len()
                );
            }
        }
    }

    /// Every accepted message as (ts, channel id, current body), in order of posting.
    pub fn messages(&self) -> Vec<(String, String, Value)> {
        let mut v: Vec<_> = self
            .st
            .messages
            .lock()
            .unwrap()
            .iter()
            .map(|(ts, (ch, b))| (ts.clone(), ch.clone(), b.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The current body of the message `ts` (after edits).
    pub fn message(&self, ts: &str) -> Option<(String, Value)> {
        self.st.messages.lock().unwrap().get(ts).cloned()
    }
}

fn ok_false(error: &str) -> Response {
    axum::Json(json!({"ok": false, "error": error})).into_response()
}

/// `conversations.history` (top-level messages, newest first) or `.replies` (a thread, oldest
/// first) of a channel id, from `oldest` on, metadata only when asked for, paged by an offset cursor.
fn history(st: &St, replies: bool, query: Option<&str>) -> Response {
    let q: HashMap<String, String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let Some(channel) = q.get("channel") else {
        return ok_false("channel_not_found");
    };
    let oldest: f64 = q.get("oldest").and_then(|o| o.parse().ok()).unwrap_or(0.0);
    let posted_at = st.posted_at.lock().unwrap().clone();
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let from: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let metadata = q.get("include_all_metadata").is_some_and(|v| v == "true");
    let thread = q.get("ts");
    let mut found: Vec<(String, Value)> = st
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter(|(ts, (ch, b))| {
            let in_thread = match (replies, thread) {
                (true, Some(t)) => *ts == t || b["thread_ts"].as_str() == Some(t.as_str()),
                (true, None) => false,
                (false, _) => b.get("thread_ts").is_none(),
            };
            ch == channel && in_thread && posted_at.get(*ts).copied().unwrap_or(0.0) >= oldest
        })
        .map(|(ts, (_, b))| (ts.clone(), b.clone()))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    if !replies {
        found.reverse();
    }
    let page: Vec<Value> = found
        .iter()
        .skip(from)
        .take(limit)
        .map(|(ts, b)| {
            let mut m = json!({"type": "message", "ts": ts, "text": b["text"]});
            if metadata && b.get("metadata").is_some() {
                m["metadata"] = b["metadata"].clone();
            }
            m
        })
        .collect();
    let more = from + page.len() < found.len();
    let next = if more {
        (from + page.len()).to_string()
    } else {
        String::new()
    };
    axum::Json(json!({"ok": true, "messages": page, "has_more": more,
        "response_metadata": {"next_cursor": next}}))
    .into_response()
}

async fn handle(State(st): State<Arc<St>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let req = Req {
        path: path.clone(),
        auth: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at: Instant::now(),
    };
    st.reqs.lock().unwrap().push(req.clone());
    st.arrived.notify_waiters();
    let outage = st.outage.lock().unwrap().as_mut().map(|(bs, i)| {
        *i += 1;
        bs[(*i - 1) % bs.len()].clone()
    });
    let scripted = outage.or_else(|| {
        let mut s = st.script.lock().unwrap();
        let i = s.iter().position(|(p, _)| path.ends_with(p.as_str()));
        i.and_then(|i| s.remove(i)).map(|(_, b)| b)
    });
    let webhook = path == st.webhook_path;
    match scripted {
        Some(Behave::RateLimit(secs)) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", secs.to_string())],
                "rate_limited",
            )
                .into_response()
        }
        Some(Behave::Unavailable) => {
            return (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").into_response()
        }
        Some(Behave::Hang) => std::future::pending::<()>().await,
        Some(Behave::Error(status, code)) if webhook => {
            return (StatusCode::from_u16(status).unwrap(), code).into_response()
        }
        Some(Behave::Error(_, code)) => return ok_false(code),
        Some(Behave::Lost) => {
            drop(serve(&st, &uri, &path, &req, webhook));
            std::future::pending::<()>().await
        }
        None => {}
    }
    serve(&st, &uri, &path, &req, webhook)
}

/// The normal answer to a request.
fn serve(st: &St, uri: &Uri, path: &str, req: &Req, webhook: bool) -> Response {
    if webhook {
        if let Some(e) = limits_broken(&req.body) {
            return (StatusCode::BAD_REQUEST, format!("invalid_blocks {e}")).into_response();
        }
        return "ok".into_response();
    }
    if path.starts_with("/respond/") {
        return axum::Json(json!({"ok": true})).into_response();
    }
    if !path.starts_with("/api/") {
        return StatusCode::NOT_FOUND.into_response();
    }
    if req.auth.as_deref() != Some(&format!("Bearer {}", st.token)) {
        return ok_false("invalid_auth");
    }
    if limits_broken(&req.body).is_some() {
        return ok_false("invalid_blocks");
    }
    let b = &req.body;
    match path {
        "/api/chat.postMessage" => {
            let ch = b["channel"].as_str().unwrap_or_default();
            if ch == "#missing" {
                return ok_false("channel_not_found");
            }
            if let Some(t) = b["thread_ts"].as_str() {
                if !st.messages.lock().unwrap().contains_key(t) {
                    return ok_false("thread_not_found");
                }
            }
            let n = st.ts.fetch_add(1, Ordering::SeqCst) + 1;
            let ts = format!("1700000000.{n:06}");
            let id = channel_id(ch);
            st.messages
                .lock()
                .unwrap()
                .insert(ts.clone(), (id.clone(), b.clone()));
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            st.posted_at.lock().unwrap().insert(ts.clone(), now);
            axum::Json(json!({"ok": true, "channel": id, "ts": ts})).into_response()
        }
        "/api/chat.update" => {
            let (ch, ts) = (
                b["channel"].as_str().unwrap_or_default(),
                b["ts"].as_str().unwrap_or_default(),
            );
            let mut m = st.messages.lock().unwrap();
            match m.get_mut(ts) {
                Some((id, body)) if id == ch => {
                    *body = b.clone();
                    axum::Json(json!({"ok": true, "channel": ch, "ts": ts})).into_response()
                }
                _ => ok_false("message_not_found"),
            }
        }
        "/api/conversations.history" => history(st, false, uri.query()),
        "/api/conversations.replies" => history(st, true, uri.query()),
        _ => ok_false("unknown_method"),
    }
}
