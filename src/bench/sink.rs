//! A Slack-like HTTP server for `rampart bench`: answers `chat.postMessage` and `chat.update` as Slack does and records when each alert arrived, keyed by the audit ID in its link.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::BenchError;

/// The link template's prefix; the audit ID follows it in every message.
pub(super) const LINK_PREFIX: &str = "https://bench.invalid/audit/";

/// One message posted: when it arrived and the audit ID it links to.
#[derive(Debug, Clone)]
pub(super) struct Post {
    pub at: Instant,
    pub audit_id: Option<String>,
}

#[derive(Default)]
struct Seen {
    posts: Vec<Post>,
    updates: usize,
}

/// The running server.
pub(super) struct SlackSink {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

/// The audit ID after [`LINK_PREFIX`] in a message body.
fn audit_id(body: &str) -> Option<String> {
    let rest = &body[body.find(LINK_PREFIX)? + LINK_PREFIX.len()..];
    let id: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '.')
        .collect();
    (!id.is_empty()).then_some(id)
}

async fn post_message(State(seen): State<Arc<Mutex<Seen>>>, body: String) -> Json<Value> {
    let at = Instant::now();
    let mut s = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    s.posts.push(Post {
        at,
        audit_id: audit_id(&body),
    });
    let ts = format!("1700000000.{:06}", s.posts.len());
    Json(json!({"ok": true, "channel": "C0BENCH01", "ts": ts}))
}

async fn update(State(seen): State<Arc<Mutex<Seen>>>) -> Json<Value> {
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .updates += 1;
    Json(json!({"ok": true, "channel": "C0BENCH01"}))
}

impl SlackSink {
    pub async fn start() -> Result<Self, BenchError> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/chat.update", post(update))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, seen, task })
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// The `respond.slack` section (indented to sit under `respond:`) that posts every alert here, linking to its event's audit ID.
    pub fn responder_yaml(&self) -> String {
        format!(
            r##"  slack:
    bot_token: xoxb-bench-stand-in
    api_url: {api}
    default_channel: "#bench"
    channel_interval: 1ms
    link_template: "{LINK_PREFIX}{{audit_id}}"
"##,
            api = self.api_url(),
        )
    }

    /// Every message posted so far.
    pub fn posts(&self) -> Vec<Post> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .posts
            .clone()
    }

    /// Messages edited so far ("seen N times" updates).
    pub fn updates(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .updates
    }
}

impl Drop for SlackSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_audit_id_in_a_message() {
        let body = format!(r#"{{"blocks":[{{"text":"<{LINK_PREFIX}3f2a-11-b|open>"}}]}}"#);
        assert_eq!(audit_id(&body).as_deref(), Some("3f2a-11-b"));
        assert_eq!(audit_id("{}"), None);
    }
}
