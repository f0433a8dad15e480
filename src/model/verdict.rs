//! The typed result of a playbook that fired: what the state stage and the responders receive.

use serde::{Deserialize, Serialize};

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    #[default]
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    /// The score a rule-based playbook adds when it fires.
    pub fn default_score(self) -> i64 {
        match self {
            Severity::Info => 5,
            Severity::Low => 20,
            Severity::Medium => 40,
            Severity::High => 70,
            Severity::Critical => 90,
        }
    }
}

/// The response kinds a playbook may request.
pub const RESPONSE_KINDS: &[&str] = &["slack", "revoke_binding", "webhook", "kafka"];

/// A response a playbook asks for; executed (or proposed for approval) by the responders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseRequest {
    pub kind: String,
    #[serde(default)]
    pub approval: bool,
    /// Everything else the constructor set (channel, mode, name, ...).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// One playbook's verdict on one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub playbook: String,
    pub title: String,
    pub severity: Severity,
    pub score: i64,
    pub dedup: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub context: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<ResponseRequest>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitre: Vec<String>,
    /// Dedup window and threshold from the playbook's metadata.
    #[serde(default, skip_serializing_if = "Gating::is_empty")]
    pub gating: Gating,
}

/// A playbook's "fire only after N matches (or N distinct values) in a window", as declared in `meta().threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub at_least: u64,
    /// Seconds of event time.
    pub window: i64,
    /// Count distinct values of this field instead of matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct: Option<String>,
}

/// What the state stage needs beside the verdict: how to group and gate it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Gating {
    /// Dedup window in seconds (the state stage's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
    /// The value counted by a distinct threshold, taken from the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `meta().dry_run`: this playbook's alerts and responses are only recorded, never sent or executed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

impl Gating {
    pub fn is_empty(&self) -> bool {
        self.window.is_none() && self.threshold.is_none() && !self.dry_run
    }
}
