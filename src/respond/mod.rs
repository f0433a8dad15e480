//! Responders: where alerts and actions leave rampart. Each takes its work from the durable outbox through the dispatcher and reports an outcome for the journal.

pub mod alerts_file;
pub mod config;
pub mod console;
pub mod console_alerts;
pub mod dispatch;
pub mod kafka_alerts;
pub mod kubernetes;
pub mod on_triage;
pub mod pagerduty;
pub mod registry;
pub mod slack;
pub mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::state::model::{Delivery, Status};

/// An alert as rampart hands it to other systems (webhooks, the alerts topic, the alerts file):
/// the alert's fields plus `delivery`, the idempotency key receivers deduplicate on.
pub fn alert_document(d: &Delivery) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        delivery: &'a str,
        #[serde(flatten)]
        alert: &'a crate::state::model::Alert,
    }
    serde_json::to_vec(&Doc {
        delivery: &d.id,
        alert: &d.alert,
    })
    .unwrap_or_default()
}

/// Hex of HMAC-SHA256 over `parts` (concatenated) with `key`: webhook signatures and Slack's.
pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Longest `Retry-After` honoured: a far side asking for more is retried after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` in seconds (the HTTP-date form counts as absent), capped at [`MAX_RETRY_AFTER`].
pub fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    h.get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// A boxed future, so that responders can live behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a responder did with a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    pub status: Status,
    /// One sentence for the journal and on-call (never a secret).
    pub detail: String,
    /// What is needed to undo it (e.g. the object as it was).
    pub undo: serde_json::Value,
}

impl Effect {
    pub fn done(detail: impl Into<String>) -> Self {
        Self {
            status: Status::Done,
            detail: detail.into(),
            undo: serde_json::Value::Null,
        }
    }
    pub fn with_status(status: Status, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            undo: serde_json::Value::Null,
        }
    }
}

/// What a responder checks before delivering: an alert below its minimum severity (the setting
/// named `setting`) is skipped, and in dry-run it only says what it would do (`would`).
pub fn gate(
    d: &Delivery,
    min: Option<crate::model::Severity>,
    setting: &str,
    dry_run: bool,
    would: impl FnOnce() -> String,
) -> Option<Effect> {
    if min.is_some_and(|m| d.alert.severity < m) {
        return Some(Effect::with_status(
            Status::Skipped,
            format!("below {setting}"),
        ));
    }
    dry_run.then(|| Effect::with_status(Status::DryRun, would()))
}

/// A failure worth retrying: the item stays in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub error: String,
    /// The far side said when (e.g. `Retry-After`).
    pub after: Option<Duration>,
}

/// One kind of response.
pub trait Responder: Send + Sync {
    /// The name deliveries are queued under (`alerts_file`, `slack`, `revoke_binding`, ...).
    fn name(&self) -> &str;
    /// True for alert sinks: every alert, update and follow-up is queued for them,
    /// not only the responses a playbook requests by this name.
    fn takes_every_alert(&self) -> bool {
        false
    }
    /// How many deliveries may be in flight at once (never two of one alert's thread).
    fn concurrency(&self) -> usize {
        1
    }
    /// What a response of this kind acts on, found in the event that raised the alert when the
    /// alert is raised (the event itself is not kept); the delivery carries it as `target`.
    fn target(&self, _ev: &crate::event::AuditEvent) -> Option<serde_json::Value> {
        None
    }
    /// Work that follows on-call's triage of alerts this responder handled (PagerDuty acknowledges
    /// or resolves the incident it opened): queued in the outbox with the change ([`on_triage`]).
    fn after_triage(
        &self,
        _change: &crate::triage::Change<'_>,
        _outbox: &crate::state::outbox::Outbox,
    ) -> Result<Vec<Delivery>, crate::state::StateError> {
        Ok(Vec::new())
    }
    /// Carries out `d`, or (dry-run) only says what it would do; idempotent under repeats of the same `d.id`.
    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Effect, Retry>>;
}

/// The configured responders as the state stage's [`ResponseTargets`](crate::state::ResponseTargets):
/// each finds its own responses' targets.
pub struct Targets(pub Vec<Arc<dyn Responder>>);

impl crate::state::ResponseTargets for Targets {
    fn target(&self, kind: &str, ev: &crate::event::AuditEvent) -> Option<serde_json::Value> {
        self.0.iter().find(|r| r.name() == kind)?.target(ev)
    }
}
