//! Posts whose outcome is unknown: rampart records each post before sending it, and a repeat of a post that was sent but whose answer was never recorded (killed, or timed out while Slack did post) looks for the message in its channel — by the alert id every message carries in its metadata — before posting again.
//!
//! Slack's Web API has no idempotency key for `chat.postMessage`; message metadata plus
//! `conversations.history` (`.replies` in threads) is the way to ask "is it there already?".
//! The lookup needs the `channels:history` scope (`groups:history` for private channels); without
//! it, or when the channel's id is not known yet (the first post ever to a channel routed by
//! name), the post is repeated and may show twice: at-least-once, never lost.

use serde_json::{json, Value};

use super::client::{Client, Failure, Posted};
use super::store::{Messages, Sending};

/// The metadata `event_type` of rampart's messages.
pub const EVENT_TYPE: &str = "rampart_alert";

/// The metadata every message carries: Slack keeps it with the message and returns it in history.
pub fn metadata(alert_id: &str) -> Value {
    json!({"event_type": EVENT_TYPE, "event_payload": {"alert": alert_id}})
}

/// What became of a post that was sent but never confirmed.
#[derive(Debug)]
pub enum Outcome {
    /// Slack has it: record it, do not post again.
    Posted(Posted),
    /// Slack does not have it: post.
    Absent,
    /// Cannot tell (no channel id, no scope, too much history): post, and say so.
    Unknown(String),
}

/// Seconds of clock difference tolerated between rampart and Slack when searching from the send time.
const SKEW_SECS: u64 = 120;

/// Looks for the message `alert_id` that `s` began to post.
pub async fn find(
    client: &Client,
    messages: &Messages,
    alert_id: &str,
    s: &Sending,
) -> Result<Outcome, Failure> {
    let id = match &s.channel_id {
        Some(id) => Some(id.clone()),
        None => messages
            .channel_id(&s.channel)
            .map_err(|e| Failure::Retry {
                error: format!("slack_channels unreadable: {e}"),
                after: None,
                unanswered: false,
            })?,
    };
    let Some(id) = id else {
        return Ok(Outcome::Unknown(format!(
            "the id of {} is not known yet",
            s.channel
        )));
    };
    let oldest = (s.at_ms / 1000).saturating_sub(SKEW_SECS);
    match client
        .find_message(&id, s.thread_ts.as_deref(), oldest, EVENT_TYPE, alert_id)
        .await
    {
        Ok(Some(p)) => Ok(Outcome::Posted(p)),
        Ok(None) => Ok(Outcome::Absent),
        Err(Failure::Fatal(e)) => Ok(Outcome::Unknown(e)),
        Err(retry) => Err(retry),
    }
}
