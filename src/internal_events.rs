//! rampart's own noteworthy happenings, one type each: `emit()` writes the log line and bumps the metric together, so every metric name is written once, here (the per-source decode counters are in `telemetry::SourceMetrics`).

use std::fmt::Display;
use std::time::Duration;

use metrics::{counter, gauge, histogram};

/// A GeoIP database lookup failed (the event goes on without those facts).
pub struct GeoIpLookupFailed<'a> {
    pub path: &'a std::path::Path,
    pub error: &'a dyn Display,
}

impl GeoIpLookupFailed<'_> {
    pub fn emit(self) {
        counter!("rampart_enrich_errors_total", "enricher" => "geoip").increment(1);
        tracing::debug!(error = %self.error, path = %self.path.display(), "GeoIP lookup failed");
    }
}

/// A playbook's verdict on one event (counted only; the alert says the rest).
pub struct PlaybookFired<'a> {
    pub playbook: &'a str,
}

impl PlaybookFired<'_> {
    pub fn emit(self) {
        counter!("rampart_playbook_fires_total", "playbook" => self.playbook.to_owned())
            .increment(1);
    }
}

/// A playbook broke a limit or threw on one event; the others still judged it.
pub struct PlaybookFaulted<'a> {
    pub playbook: &'a str,
    /// `limit` or `error`.
    pub kind: &'static str,
    /// The fault as the author reads it (`file:line:col: ...`).
    pub fault: &'a dyn Display,
}

impl PlaybookFaulted<'_> {
    pub fn emit(self) {
        counter!("rampart_playbook_faults_total", "playbook" => self.playbook.to_owned(), "kind" => self.kind)
            .increment(1);
        *FAULTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(self.playbook.to_owned())
            .or_default() += 1;
        tracing::warn!(fault = %self.fault, "playbook fault; other playbooks still ran");
    }
}

/// An edited playbook set (scripts or lists) compiled and replaced the running one.
pub struct PlaybooksReloaded {
    pub playbooks: usize,
}

impl PlaybooksReloaded {
    pub fn emit(self) {
        counter!("rampart_playbook_reloads_total").increment(1);
        tracing::info!(playbooks = self.playbooks, "playbooks reloaded");
    }
}

/// Faults per playbook since start, as `rampart_playbook_faults_total` counts them (for the console's Health page).
static FAULTS: std::sync::Mutex<std::collections::BTreeMap<String, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Faults per playbook since the process started.
pub fn playbook_faults() -> std::collections::BTreeMap<String, u64> {
    FAULTS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// An edited playbook set did not compile; the previous set keeps running.
pub struct PlaybookReloadRejected<'a, D: Display> {
    pub diagnostics: &'a [D],
}

impl<D: Display> PlaybookReloadRejected<'_, D> {
    pub fn emit(self) {
        for d in self.diagnostics {
            tracing::error!(diagnostic = %d, "playbook set rejected; the previous set keeps running");
        }
        counter!("rampart_playbook_reload_failures_total").increment(1);
    }
}

/// How much work waits in the outbox (refreshed by the dispatcher).
pub struct OutboxPending(pub usize);

impl OutboxPending {
    pub fn emit(self) {
        gauge!("rampart_outbox_pending").set(self.0 as f64);
    }
}

/// Work already journaled as done was found again (after a crash or a replay) and dropped.
pub struct ReplaySkipped<'a> {
    pub responder: &'a str,
}

impl ReplaySkipped<'_> {
    pub fn emit(self) {
        counter!("rampart_responder_replays_skipped_total", "responder" => self.responder.to_owned())
            .increment(1);
    }
}

/// A response was parked until a human approves or rejects it.
pub struct AwaitingApproval<'a> {
    pub responder: &'a str,
    pub delivery: &'a str,
}

impl AwaitingApproval<'_> {
    pub fn emit(self) {
        outcome(self.responder, "pending");
        tracing::info!(
            responder = self.responder,
            delivery = self.delivery,
            "waiting for approval"
        );
    }
}

/// A delivery failed in a way worth retrying; it stays in the outbox.
pub struct DeliveryRetried<'a> {
    pub responder: &'a str,
    pub delivery: &'a str,
    pub attempts: u32,
    pub retry_in: Duration,
    pub error: &'a str,
}

impl DeliveryRetried<'_> {
    pub fn emit(self) {
        tracing::warn!(
            responder = self.responder,
            delivery = self.delivery,
            attempts = self.attempts,
            retry_in = ?self.retry_in,
            error = self.error,
            "delivery failed; it stays in the outbox"
        );
        counter!("rampart_responder_retries_total", "responder" => self.responder.to_owned())
            .increment(1);
    }
}

/// A delivery ended (done, failed, rejected, expired, ...) and is journaled.
pub struct DeliveryEnded<'a> {
    pub responder: &'a str,
    pub delivery: &'a str,
    /// The journal's status name.
    pub outcome: &'static str,
    pub detail: &'a str,
}

impl DeliveryEnded<'_> {
    pub fn emit(self) {
        outcome(self.responder, self.outcome);
        if self.outcome == "failed" {
            tracing::error!(
                responder = self.responder,
                delivery = self.delivery,
                detail = self.detail,
                "response failed"
            );
        }
    }
}

fn outcome(responder: &str, outcome: &'static str) {
    counter!("rampart_responder_outcomes_total", "responder" => responder.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// One delivery attempt took this long.
pub struct DeliveryAttempted<'a> {
    pub responder: &'a str,
    pub took: Duration,
}

impl DeliveryAttempted<'_> {
    pub fn emit(self) {
        histogram!("rampart_responder_seconds", "responder" => self.responder.to_owned())
            .record(self.took.as_secs_f64());
    }
}

/// A request to the Slack interactivity endpoint was refused (bad signature, stale, unknown).
pub struct SlackInteractionRefused<'a> {
    pub reason: &'a dyn Display,
}

impl SlackInteractionRefused<'_> {
    pub fn emit(self) {
        tracing::warn!(reason = %self.reason, "Slack interaction refused");
        counter!("rampart_slack_interactions_refused_total").increment(1);
    }
}

/// The webhook source answered a request (`2xx`, `4xx` or `5xx`).
pub struct WebhookAnswered {
    pub class: &'static str,
}

impl WebhookAnswered {
    pub fn emit(self) {
        counter!("rampart_webhook_requests_total", "code" => self.class).increment(1);
    }
}

/// The broker's report of how far behind the consumer group is on one partition.
pub struct ConsumerLag<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub lag: i64,
}

impl ConsumerLag<'_> {
    pub fn emit(self) {
        gauge!("rampart_kafka_consumer_lag", "topic" => self.topic.to_owned(), "partition" => self.partition.to_string())
            .set(self.lag as f64);
    }
}

/// The consumer group moved partitions to or from this instance.
pub struct Rebalanced {
    /// `assign` or `revoke`.
    pub kind: &'static str,
    pub partitions: usize,
}

impl Rebalanced {
    pub fn emit(self) {
        counter!("rampart_kafka_rebalances_total", "kind" => self.kind).increment(1);
        match self.kind {
            "revoke" => {
                tracing::info!(partitions = self.partitions, "partitions revoked; draining")
            }
            _ => tracing::info!(partitions = self.partitions, "partitions assigned"),
        }
    }
}

/// Someone marked an alert (true positive, benign, false positive); `replaced` is the earlier mark.
pub struct AlertMarked<'a> {
    pub playbook: &'a str,
    pub verdict: &'static str,
    pub replaced: Option<&'static str>,
}

impl AlertMarked<'_> {
    pub fn emit(self) {
        counter!("rampart_alert_outcomes_total", "playbook" => self.playbook.to_owned(), "outcome" => self.verdict)
            .increment(1);
        if let Some(before) = self.replaced {
            counter!("rampart_alert_outcomes_replaced_total", "playbook" => self.playbook.to_owned(), "outcome" => before)
                .increment(1);
        }
        tracing::info!(
            playbook = self.playbook,
            outcome = self.verdict,
            "alert marked"
        );
    }
}

/// An alert was raised and silenced by a suppression: stored, delivered to no one.
pub struct AlertSuppressed<'a> {
    pub playbook: &'a str,
}

impl AlertSuppressed<'_> {
    pub fn emit(self) {
        counter!("rampart_alerts_suppressed_total", "playbook" => self.playbook.to_owned())
            .increment(1);
    }
}

/// A suppression was created or revoked.
pub struct SuppressionChanged<'a> {
    /// The playbook it silences, `*` for all.
    pub playbook: &'a str,
    /// `created` or `revoked`.
    pub change: &'static str,
}

impl SuppressionChanged<'_> {
    pub fn emit(self) {
        counter!("rampart_suppressions_total", "change" => self.change).increment(1);
        tracing::info!(
            playbook = self.playbook,
            change = self.change,
            "suppression changed"
        );
    }
}
