//! `respond`: what every responder shares (dry-run, retries, the outbox's patience) and each responder's own section, composed from the responders' config types.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{Problem, Seconds};

/// What every responder shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondConfig {
    /// Record what responders would do without doing it (as `--dry-run`).
    #[serde(default)]
    pub dry_run: bool,
    /// Every alert, update and follow-up as one JSON line, exactly once per delivery.
    #[serde(default)]
    pub alerts_file: Option<PathBuf>,
    /// Every alert, update and follow-up on stdout, formatted as the Slack message would be.
    #[serde(default)]
    pub console: bool,
    /// Undelivered work older than this is journaled as expired instead of retried.
    #[serde(default = "default_outbox_ttl")]
    pub outbox_ttl: Seconds,
    /// First retry delay; doubles per attempt (with jitter) up to `backoff_max`.
    #[serde(default = "default_backoff_min")]
    pub backoff_min: Seconds,
    /// Longest retry delay.
    #[serde(default = "default_backoff_max")]
    pub backoff_max: Seconds,
    /// Webhooks: playbooks call them by name with `webhook("name")`; `every_alert` ones get every alert.
    #[serde(default)]
    pub webhooks: Vec<crate::respond::webhook::WebhookConfig>,
    /// The alerts topic on the `kafka` connection.
    #[serde(default)]
    pub kafka: Option<crate::respond::kafka_alerts::KafkaAlertsConfig>,
    /// Slack: alerts for on-call, threads, edits and approvals.
    #[serde(default)]
    pub slack: Option<crate::respond::slack::SlackConfig>,
    /// Binding revocation through the Kubernetes API (`revoke_binding()`, `delete_binding()`).
    #[serde(default)]
    pub kubernetes: Option<crate::respond::kubernetes::KubernetesConfig>,
    /// PagerDuty: page on-call for alerts at or above a severity (Events API v2).
    #[serde(default)]
    pub pagerduty: Option<crate::respond::pagerduty::PagerDutyConfig>,
}

fn default_outbox_ttl() -> Seconds {
    Seconds::from_secs(7 * 86_400)
}
fn default_backoff_min() -> Seconds {
    Seconds::from_millis(500)
}
fn default_backoff_max() -> Seconds {
    Seconds::from_secs(300)
}

impl Default for RespondConfig {
    fn default() -> Self {
        Self {
            dry_run: false,
            alerts_file: None,
            console: false,
            outbox_ttl: default_outbox_ttl(),
            backoff_min: default_backoff_min(),
            backoff_max: default_backoff_max(),
            webhooks: Vec::new(),
            kafka: None,
            slack: None,
            kubernetes: None,
            pagerduty: None,
        }
    }
}

impl RespondConfig {
    /// Problems of the `respond` section and of each responder's own.
    pub fn validate(&self, p: &mut Vec<Problem>) {
        for (path, v) in [
            ("respond.outbox_ttl", self.outbox_ttl),
            ("respond.backoff_min", self.backoff_min),
        ] {
            if v.get().is_zero() {
                p.push(Problem {
                    path: path.to_owned(),
                    message: "must be greater than zero".to_owned(),
                });
            }
        }
        if self.backoff_max < self.backoff_min {
            p.push(Problem {
                path: "respond.backoff_max".to_owned(),
                message: "must not be less than backoff_min".to_owned(),
            });
        }
        crate::respond::webhook::validate(&self.webhooks, p);
        if let Some(sl) = &self.slack {
            sl.validate("respond.slack", p);
        }
        if let Some(k) = &self.kubernetes {
            k.validate("respond.kubernetes", p);
        }
        if let Some(pd) = &self.pagerduty {
            pd.validate(p);
        }
    }
}
