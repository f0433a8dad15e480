//! Config of the state stage: dedup, thresholds, risk, retention and the store.

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

/// Problems of the state section.
pub(super) fn validate(s: &StateConfig, p: &mut Vec<super::Problem>) {
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
}
