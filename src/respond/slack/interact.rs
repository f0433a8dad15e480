//! Slack interactivity for approvals and triage: request signatures (HMAC-SHA256, 5-minute window, no replays), the `block_actions` payload, the [`Approvals`] decision the outbox makes, and the message edited to show who decided.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::blocks::{self, APPROVE, REJECT};
use super::client::{Client, Failure};
use super::config::ApprovalsConfig;
use super::store::Messages;
use super::triage::Ask;
use crate::config::Secret;
use crate::state::model::{wall_ms, Decision};
use crate::triage::Triage;

/// Requests older or newer than this (seconds) are refused.
pub const WINDOW: i64 = 300;
/// Most signatures remembered for replay detection; beyond, requests are refused until old ones age out.
const MAX_SEEN: usize = 100_000;
/// Most an interaction body may hold (Slack's are a few KiB, with the message's blocks).
const MAX_BODY: usize = 2 << 20;
/// Longest an interaction body may take to arrive: a stalled sender must not hold its connection.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a request was refused (answered with 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing X-Slack-Request-Timestamp or X-Slack-Signature")]
    Missing,
    #[error("malformed timestamp or signature")]
    Malformed,
    #[error("timestamp more than 5 minutes from now")]
    Stale,
    #[error("signature does not match")]
    BadSignature,
    #[error("replayed request")]
    Replayed,
    #[error("too many recent requests to check for replays")]
    Busy,
}

/// `v0=` + hex(HMAC-SHA256(secret, `v0:{timestamp}:{body}`)): what Slack sends as `X-Slack-Signature`.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mac = crate::respond::hmac_sha256_hex(
        secret.as_bytes(),
        &[b"v0:", timestamp.as_bytes(), b":", body],
    );
    format!("v0={mac}")
}

/// Checks signatures and remembers the ones seen within the window.
#[derive(Debug, Default)]
pub struct Verifier {
    seen: Mutex<BTreeSet<(i64, Vec<u8>)>>,
}

impl Verifier {
    /// Verifies one request as of `now` (seconds since the epoch); a valid one is remembered, so its replay fails.
    pub fn verify(
        &self,
        signing_secret: &Secret,
        timestamp: Option<&str>,
        signature_header: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), Rejection> {
        let (Some(ts), Some(sig)) = (timestamp, signature_header) else {
            return Err(Rejection::Missing);
        };
        let t: i64 = ts.trim().parse().map_err(|_| Rejection::Malformed)?;
        if now.abs_diff(t) > WINDOW.unsigned_abs() {
            return Err(Rejection::Stale);
        }
        if !sig.starts_with("v0=") {
            return Err(Rejection::Malformed);
        }
        let expected = signature(signing_secret.expose(), ts.trim(), body);
        if !bool::from(expected.as_bytes().ct_eq(sig.trim().as_bytes())) {
            return Err(Rejection::BadSignature);
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Entries that left the window can never match again: a request with that timestamp is stale.
        let keep = seen.split_off(&(now - WINDOW, Vec::new()));
        *seen = keep;
        let key = (t, sig.trim().as_bytes().to_vec());
        if seen.contains(&key) {
            return Err(Rejection::Replayed);
        }
        if seen.len() >= MAX_SEEN {
            return Err(Rejection::Busy);
        }
        seen.insert(key);
        Ok(())
    }
}

/// The user who clicked.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Action {
    pub action_id: String,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Container {
    #[serde(default)]
    pub channel_id: Option<String>,
    #[serde(default)]
    pub message_ts: Option<String>,
}

/// The parts of an interaction payload rampart uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Interaction {
    #[serde(rename = "type")]
    pub kind: String,
    pub user: User,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub response_url: Option<String>,
    #[serde(default)]
    pub container: Container,
    /// The message clicked in, with its blocks.
    #[serde(default)]
    pub message: Option<Value>,
}

/// Why an interaction's body cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("no payload field")]
    Missing,
    #[error("invalid payload: {0}")]
    Invalid(#[source] serde_json::Error),
}

/// Parses the `application/x-www-form-urlencoded` body's `payload` field.
pub fn parse(body: &[u8]) -> Result<Interaction, PayloadError> {
    let payload = form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or(PayloadError::Missing)?;
    serde_json::from_str(&payload).map_err(PayloadError::Invalid)
}

/// Why a decision could not be recorded (the button's answer says so; nothing runs).
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error(transparent)]
    Store(#[from] crate::state::StateError),
    #[error("the decision was interrupted: {0}")]
    Interrupted(#[from] tokio::task::JoinError),
}

pub use crate::state::approvals::DecideOutcome;

/// Decisions on responses waiting for approval; implemented by the outbox.
pub trait Approvals: Send + Sync {
    /// Records `decision` on the response delivery `delivery_id`, once.
    fn decide(&self, delivery_id: &str, decision: Decision) -> Result<DecideOutcome, DecideError>;
}

/// The outbox decides: durably, first decision wins, the parked response runs or is discarded.
impl Approvals for crate::state::StateStage {
    fn decide(&self, delivery_id: &str, decision: Decision) -> Result<DecideOutcome, DecideError> {
        let keep_until = self.now().unwrap_or_else(now_secs) + self.settings().retention;
        Ok(self.outbox().decide(delivery_id, decision, keep_until)?)
    }
}

/// What the interactivity endpoint needs (from `SlackResponder::interactions`).
#[derive(Clone)]
pub struct Interactions {
    secret: Secret,
    approvers: Vec<String>,
    path: String,
    pub(super) client: Arc<Client>,
    pub(super) messages: Arc<Messages>,
    verifier: Arc<Verifier>,
}

impl std::fmt::Debug for Interactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interactions")
            .field("secret", &self.secret)
            .field("approvers", &self.approvers)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Interactions {
    pub(super) fn new(cfg: &ApprovalsConfig, client: Arc<Client>, messages: Arc<Messages>) -> Self {
        Self {
            secret: cfg.signing_secret.clone(),
            approvers: cfg.approvers.clone(),
            path: cfg.path.clone(),
            client,
            messages,
            verifier: Arc::default(),
        }
    }

    /// The route the router serves (`approvals.path`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// On the approver list, which also says who may triage.
    pub(super) fn may_decide(&self, u: &User) -> bool {
        self.approvers.iter().any(|a| {
            a == &u.id
                || Some(a.as_str()) == u.username.as_deref()
                || Some(a.as_str()) == u.name.as_deref()
        })
    }
}

struct Shared {
    cfg: Interactions,
    approvals: Arc<dyn Approvals>,
    triage: Option<Arc<Triage>>,
}

/// The interactivity endpoint for approvals only, at `cfg.path()` (triage buttons answer that
/// they cannot record here): merge it into rampart's HTTP server.
pub fn router(approvals: Arc<dyn Approvals>, cfg: Interactions) -> axum::Router {
    router_with(approvals, None, cfg)
}

/// The interactivity endpoint for approvals and, with `triage`, the triage buttons.
pub fn router_with(
    approvals: Arc<dyn Approvals>,
    triage: Option<Arc<Triage>>,
    cfg: Interactions,
) -> axum::Router {
    let path = cfg.path.clone();
    axum::Router::new()
        .route(&path, axum::routing::post(receive))
        .with_state(Arc::new(Shared {
            cfg,
            approvals,
            triage,
        }))
}

fn now_secs() -> i64 {
    i64::try_from(wall_ms() / 1000).unwrap_or(i64::MAX)
}

async fn receive(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let body = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await
    {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response(),
        Err(_) => {
            return (StatusCode::REQUEST_TIMEOUT, "body not received in time").into_response()
        }
    };
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(r) = s.cfg.verifier.verify(
        &s.cfg.secret,
        h("x-slack-request-timestamp"),
        h("x-slack-signature"),
        &body,
        now_secs(),
    ) {
        crate::internal_events::SlackInteractionRefused { reason: &r }.emit();
        return (StatusCode::UNAUTHORIZED, r.to_string()).into_response();
    }
    let p = match parse(&body) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "Slack interaction unreadable");
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
    };
    let triage = p
        .actions
        .first()
        .filter(|_| p.kind == "block_actions")
        .and_then(|a| Some((a, Ask::of(&a.action_id)?)));
    if let (Some((action, ask)), Some(url)) = (triage, p.response_url.clone()) {
        return super::triage::clicked(&s.cfg, s.triage.clone(), &p, action, ask, url).await;
    }
    let action = p
        .actions
        .first()
        .filter(|a| p.kind == "block_actions" && (a.action_id == APPROVE || a.action_id == REJECT));
    let (Some(action), Some(response_url)) = (action, p.response_url.clone()) else {
        return StatusCode::OK.into_response();
    };
    let Some(id) = action.value.clone() else {
        return StatusCode::OK.into_response();
    };
    let approve = action.action_id == APPROVE;
    let name = p
        .user
        .username
        .clone()
        .or(p.user.name.clone())
        .unwrap_or_default();
    if !s.cfg.may_decide(&p.user) {
        tracing::warn!(user = %p.user.id, name = %name, delivery = %id, "Slack user not on the approver list");
        let reply = json!({"response_type": "ephemeral", "replace_original": false,
            "text": "You are not on rampart's approver list (respond.slack.approvals.approvers); nothing was decided."});
        spawn_reply(s.cfg.client.clone(), response_url, reply);
        return StatusCode::OK.into_response();
    }
    let decision = Decision {
        approve,
        by: format!("{name} ({})", p.user.id),
        at_ms: wall_ms(),
    };
    let approvals = s.approvals.clone();
    let (did, dec) = (id.clone(), decision.clone());
    let outcome = tokio::task::spawn_blocking(move || approvals.decide(&did, dec))
        .await
        .unwrap_or_else(|e| Err(e.into()));
    tracing::info!(delivery = %id, user = %p.user.id, approve, outcome = ?outcome, "Slack approval");
    let who = format!("<@{}>", p.user.id);
    let line = match &outcome {
        Ok(DecideOutcome::Approved) => format!(
            ":white_check_mark: Approved by {who} at {} — executing",
            blocks::hhmm(decision.at_ms)
        ),
        Ok(DecideOutcome::Rejected) => {
            format!(":x: Rejected by {who} at {}", blocks::hhmm(decision.at_ms))
        }
        Ok(DecideOutcome::AlreadyDecided(d)) => format!(
            "{} by {} at {} (decided before)",
            if d.approve {
                ":white_check_mark: Approved"
            } else {
                ":x: Rejected"
            },
            blocks::escape(&d.by),
            blocks::hhmm(d.at_ms)
        ),
        Ok(DecideOutcome::Expired) => ":hourglass_flowing_sand: Expired — not run".to_owned(),
        Ok(DecideOutcome::Unknown) => {
            let reply = json!({"response_type": "ephemeral", "replace_original": false,
                "text": "rampart has no response waiting under this button (already done or forgotten)."});
            spawn_reply(s.cfg.client.clone(), response_url, reply);
            return StatusCode::OK.into_response();
        }
        Err(e) => {
            tracing::error!(delivery = %id, error = %e, "cannot record a Slack decision");
            let reply = json!({"response_type": "ephemeral", "replace_original": false,
                "text": "rampart could not record the decision; try again."});
            spawn_reply(s.cfg.client.clone(), response_url, reply);
            return StatusCode::OK.into_response();
        }
    };
    let root = id
        .rsplit_once('/')
        .map_or(id.as_str(), |(r, _)| r)
        .to_owned();
    if let Err(e) = s.cfg.messages.decide(&root, &id, &line) {
        tracing::warn!(delivery = %id, error = %e, "decision not recorded in Slack's memory of the alert");
    }
    let blocks = p
        .message
        .as_ref()
        .and_then(|m| m["blocks"].as_array())
        .and_then(|b| blocks::decided(b, &id, &line));
    let reply = match &blocks {
        Some(b) => json!({"replace_original": true, "text": line, "blocks": b}),
        // Without the message, say it in the channel instead of wiping the alert.
        None => json!({"replace_original": false, "response_type": "in_channel", "text": line}),
    };
    spawn_reply(s.cfg.client.clone(), response_url, reply);
    if let Some(b) = blocks {
        spawn_copies(&s.cfg, &root, &p.container, b, line);
    }
    StatusCode::OK.into_response()
}

/// Answers through `response_url` after the 200 (Slack wants an answer within 3 seconds).
pub(super) fn spawn_reply(client: Arc<Client>, url: String, body: Value) {
    tokio::spawn(async move {
        if let Err(Failure::Retry { error, .. } | Failure::Fatal(error)) =
            client.respond(&url, &body).await
        {
            tracing::warn!(error = %error, "cannot answer the Slack interaction");
        }
    });
}

/// Edits the other channels' copies of the alert (bot mode) to show the decision too.
pub(super) fn spawn_copies(
    cfg: &Interactions,
    root: &str,
    clicked: &Container,
    blocks: Vec<Value>,
    line: String,
) {
    let Ok(Some(rec)) = cfg.messages.get(root) else {
        return;
    };
    let copies: Vec<(String, String)> = rec
        .posts
        .into_iter()
        .filter_map(|p| Some((p.channel_id?, p.ts?)))
        .filter(|(c, ts)| {
            Some(c) != clicked.channel_id.as_ref() || Some(ts) != clicked.message_ts.as_ref()
        })
        .collect();
    if copies.is_empty() {
        return;
    }
    let client = cfg.client.clone();
    tokio::spawn(async move {
        for (channel, ts) in copies {
            let body = json!({"channel": channel, "ts": ts, "text": line, "blocks": blocks});
            if let Err(Failure::Retry { error, .. } | Failure::Fatal(error)) =
                client.update(&body).await
            {
                tracing::warn!(error = %error, "cannot show the decision on a copy of the alert");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_slacks_documented_example() {
        // From Slack's "Verifying requests" guide.
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        assert_eq!(
            signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
    }

    #[test]
    fn refuses_bad_stale_and_replayed_requests() {
        let v = Verifier::default();
        let secret = Secret::new("s");
        let now = 1_700_000_000;
        let ts = now.to_string();
        let sig = signature("s", &ts, b"body");
        let check = |ts: Option<&str>, sig: Option<&str>, body: &[u8], now| {
            v.verify(&secret, ts, sig, body, now)
        };
        assert_eq!(
            check(None, Some(&sig), b"body", now),
            Err(Rejection::Missing)
        );
        assert_eq!(
            check(Some(&ts), Some(&sig), b"other", now),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            check(Some(&ts), Some(&sig), b"body", now + 301),
            Err(Rejection::Stale)
        );
        assert_eq!(check(Some(&ts), Some(&sig), b"body", now), Ok(()));
        assert_eq!(
            check(Some(&ts), Some(&sig), b"body", now + 10),
            Err(Rejection::Replayed)
        );
        // Pruned once out of the window, where it is refused as stale anyway.
        let later = (now + 400).to_string();
        let sig2 = signature("s", &later, b"x");
        assert_eq!(check(Some(&later), Some(&sig2), b"x", now + 400), Ok(()));
        assert_eq!(v.seen.lock().map(|s| s.len()).unwrap_or(0), 1);
    }
}
