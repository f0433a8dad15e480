//! What the state stage stores and hands to the responders: alerts, their deliveries and the journal of outcomes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::summary::EventSummary;
use crate::model::{ResponseRequest, Severity};

/// Why an alert exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The first match of a dedup group (or the match that crossed a threshold).
    Alert,
    /// Later matches in the same window: the first alert's count has grown.
    Update,
    /// The window closed with suppressed matches: a summary, threaded under the first alert.
    FollowUp,
    /// An entity's accumulated risk crossed the configured threshold.
    HighRisk,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Alert => "alert",
            AlertKind::Update => "update",
            AlertKind::FollowUp => "follow_up",
            AlertKind::HighRisk => "high_risk",
        }
    }
}

/// One fired playbook that added to an entity's risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub alert: String,
    pub playbook: String,
    pub title: String,
    pub score: i64,
    pub at: i64,
}

/// An alert as every responder receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable id: `cluster/auditID/playbook` of the event that raised it (suffixed for updates and follow-ups).
    pub id: String,
    pub kind: AlertKind,
    /// The first alert's id, for updates and follow-ups (responders thread under it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    pub playbook: String,
    pub title: String,
    pub severity: Severity,
    pub score: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitre: Vec<String>,
    pub cluster: String,
    pub dedup: String,
    /// Matches in this dedup window so far.
    pub count: u64,
    /// Event time of the first and the latest match (seconds since the epoch).
    pub first_seen: i64,
    pub last_seen: i64,
    /// The actor's risk when the alert was raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<f64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub context: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<ResponseRequest>,
    /// The enriched event that raised it (request and response bodies left out); none for
    /// high-risk alerts, which many events raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Box<EventSummary>>,
    /// For high-risk alerts: what added up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contributions: Vec<Contribution>,
    /// The suppression that silenced it: stored and counted, delivered to no responder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<String>,
    /// The playbook is in dry-run: responders only record what they would do.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

impl Alert {
    /// The alert's event, or an empty one (high-risk alerts have none).
    pub fn event(&self) -> &EventSummary {
        static EMPTY: std::sync::LazyLock<EventSummary> =
            std::sync::LazyLock::new(EventSummary::default);
        self.event.as_deref().unwrap_or(&EMPTY)
    }

    /// The first alert of this alert's thread: itself, or the one an update or follow-up belongs to.
    pub fn root(&self) -> &str {
        self.thread.as_deref().unwrap_or(&self.id)
    }

    /// "seen 37 times since 10:02:00Z, last at 10:41:13Z"
    pub fn summary(&self) -> String {
        let t = |s: i64| crate::event::time::format_rfc3339(s);
        format!(
            "seen {} time{} since {}, last at {}",
            self.count,
            if self.count == 1 { "" } else { "s" },
            t(self.first_seen),
            t(self.last_seen)
        )
    }
}

/// One piece of work for one responder: deliver an alert, or carry out a requested response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The idempotency key: the alert id and the action (`cluster/auditID/playbook/action`).
    pub id: String,
    /// Which responder takes it (its queue name).
    pub responder: String,
    pub alert: Alert,
    /// The playbook's request, for responses (absent for plain alert deliveries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseRequest>,
    /// Wall-clock milliseconds at which it entered the outbox.
    pub enqueued_ms: u64,
    pub attempts: u32,
    /// Not before this wall-clock millisecond (backoff, rate limits).
    pub not_before_ms: u64,
    /// What the response acts on, as its responder found it in the event (for a revocation, the
    /// binding the playbook judged); opaque to the state stage, read by the responder alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Value>,
    /// For responses that wait for a human: who approved it, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<Decision>,
}

impl Delivery {
    /// True while a response still needs a human's approval before it may run.
    pub fn awaits_approval(&self) -> bool {
        self.response.as_ref().is_some_and(|r| r.approval) && self.approved.is_none()
    }
}

/// A human's decision on a response that waited for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub approve: bool,
    /// The approver as the chat system names them (user id and name).
    pub by: String,
    pub at_ms: u64,
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Done (or found already done).
    Done,
    /// Dry-run: recorded what would have been done.
    DryRun,
    /// Waiting for a human's approval.
    Pending,
    /// A human rejected it, or its approval expired.
    Rejected,
    /// Refused or failed for good (reported, not retried).
    Failed,
    /// No responder of that kind is configured.
    Skipped,
    /// Still undelivered when the outbox retention ran out (or no one approved it in time).
    Expired,
    /// Done, then reversed by `rampart actions undo`.
    Undone,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::DryRun => "dry_run",
            Status::Pending => "pending",
            Status::Rejected => "rejected",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Expired => "expired",
            Status::Undone => "undone",
        }
    }
}

/// The journal's record of one delivery, keyed by its idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub id: String,
    pub responder: String,
    pub alert: String,
    pub playbook: String,
    pub cluster: String,
    pub kind: AlertKind,
    pub status: Status,
    pub attempts: u32,
    /// Wall-clock milliseconds of the outcome.
    pub at_ms: u64,
    /// What happened, in a sentence (never a secret).
    pub detail: String,
    /// What the responder needs to undo it (e.g. the binding as it was before revocation).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub undo: Value,
}

impl JournalEntry {
    /// The journal's record of `d` ending as `status` (attempts so far, no undo data).
    pub fn of(d: &Delivery, status: Status, detail: String) -> Self {
        Self {
            id: d.id.clone(),
            responder: d.responder.clone(),
            alert: d.alert.id.clone(),
            playbook: d.alert.playbook.clone(),
            cluster: d.alert.cluster.clone(),
            kind: d.alert.kind,
            status,
            attempts: d.attempts,
            at_ms: wall_ms(),
            detail,
            undo: Value::Null,
        }
    }
}

/// Milliseconds since the epoch by the wall clock.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
