//! Config of the state stage (dedup, thresholds, risk, retention) and of the responders' common settings.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ByteSize, Seconds};

/// Local state: the sled store, dedup windows, risk and retention.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Directory for rampart's own state (the store, file positions).
    #[serde(default = "default_state_dir")]
    pub dir: PathBuf,
    /// Dedup window for playbooks that set none (`dedup_window` in `meta()`).
    #[serde(default = "default_dedup_window")]
    pub dedup_window: Seconds,
    /// Least time between two "seen N times" updates of one alert.
    #[serde(default = "default_update_interval")]
    pub update_interval: Seconds,
    /// How long a handled event is remembered so that a replay of it changes nothing.
    #[serde(default = "default_replay_memory")]
    pub replay_memory: Seconds,
    /// How long alerts and journal entries are kept (`rampart alerts`, `rampart actions`).
    #[serde(default = "default_retention")]
    pub retention: Seconds,
    /// How often closed windows are summarised and expired entries removed.
    #[serde(default = "default_sweep_interval")]
    pub sweep_interval: Seconds,
    /// Entity risk.
    #[serde(default)]
    pub risk: RiskConfig,
    /// The store's page cache (sled); its memory grows somewhat beyond this with the number of keys.
    #[serde(default = "default_cache")]
    pub cache: ByteSize,
}

/// Entity risk: every alert adds its score to its actor's and source address's risk.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskConfig {
    /// Risk at which one "high-risk entity" alert is raised; 0 turns these alerts off.
    #[serde(default = "default_risk_threshold")]
    pub threshold: f64,
    /// Time in which risk halves.
    #[serde(default = "default_half_life")]
    pub half_life: Seconds,
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            threshold: default_risk_threshold(),
            half_life: default_half_life(),
        }
    }
}

fn default_cache() -> ByteSize {
    ByteSize(crate::state::sled_store::DEFAULT_CACHE)
}
fn default_state_dir() -> PathBuf {
    PathBuf::from(".rampart-state")
}
fn default_dedup_window() -> Seconds {
    Seconds::from_secs(3600)
}
fn default_update_interval() -> Seconds {
    Seconds::from_secs(60)
}
fn default_replay_memory() -> Seconds {
    Seconds::from_secs(86_400)
}
fn default_retention() -> Seconds {
    Seconds::from_secs(30 * 86_400)
}
fn default_sweep_interval() -> Seconds {
    Seconds::from_secs(10)
}
fn default_risk_threshold() -> f64 {
    150.0
}
fn default_half_life() -> Seconds {
    Seconds::from_secs(3600)
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            dir: default_state_dir(),
            dedup_window: default_dedup_window(),
            update_interval: default_update_interval(),
            replay_memory: default_replay_memory(),
            retention: default_retention(),
            sweep_interval: default_sweep_interval(),
            risk: RiskConfig::default(),
            cache: default_cache(),
        }
    }
}

impl StateConfig {
    /// The stage's settings; `sinks` are the responders every alert goes to.
    pub fn settings(&self, sinks: Vec<String>) -> crate::state::StateSettings {
        let secs = |s: Seconds| i64::try_from(s.get().as_secs()).unwrap_or(i64::MAX);
        crate::state::StateSettings {
            dedup_window: secs(self.dedup_window),
            update_interval: secs(self.update_interval),
            replay_memory: secs(self.replay_memory),
            retention: secs(self.retention),
            risk: crate::state::risk::RiskSettings {
                threshold: self.risk.threshold,
                half_life: secs(self.risk.half_life),
            },
            sinks,
        }
    }
}

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
        }
    }
}

/// Problems of the state and respond sections.
pub(super) fn validate(s: &StateConfig, r: &RespondConfig, p: &mut Vec<super::Problem>) {
    let mut bad = |path: &str, message: &str| {
        p.push(super::Problem {
            path: path.to_owned(),
            message: message.to_owned(),
        });
    };
    for (path, v) in [
        ("state.dedup_window", s.dedup_window),
        ("state.replay_memory", s.replay_memory),
        ("state.retention", s.retention),
        ("state.sweep_interval", s.sweep_interval),
        ("state.risk.half_life", s.risk.half_life),
        ("respond.outbox_ttl", r.outbox_ttl),
        ("respond.backoff_min", r.backoff_min),
    ] {
        if v.get().is_zero() {
            bad(path, "must be greater than zero");
        }
    }
    if !(s.risk.threshold >= 0.0 && s.risk.threshold.is_finite()) {
        bad(
            "state.risk.threshold",
            "must be a number ≥ 0 (0 turns risk alerts off)",
        );
    }
    if r.backoff_max < r.backoff_min {
        bad("respond.backoff_max", "must not be less than backoff_min");
    }
    crate::respond::webhook::validate(&r.webhooks, p);
    if let Some(sl) = &r.slack {
        sl.validate("respond.slack", p);
    }
    if let Some(k) = &r.kubernetes {
        k.validate("respond.kubernetes", p);
    }
}
