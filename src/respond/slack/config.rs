//! `respond.slack` in rampart.yaml: where Slack messages go, how fast, and who may approve responses; validation that reports every problem with its path.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{Problem, Seconds, Secret};
use crate::enrich::Pattern;
use crate::playbook::Severity;

/// The Slack responder's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// An incoming webhook (`https://hooks.slack.com/services/...`): posts to its one channel only.
    #[serde(default)]
    pub webhook_url: Option<Secret>,
    /// A bot token (`xoxb-...`, scope `chat:write`): routes, threads and edits. Preferred over `webhook_url` when both are set.
    #[serde(default)]
    pub bot_token: Option<Secret>,
    /// The Web API's base URL (a proxy or a test server may stand in).
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Extra root certificates (PEM) to trust besides the built-in ones, for a TLS-inspecting proxy or a test server.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Where alerts go that no route matches (bot mode).
    #[serde(default)]
    pub default_channel: Option<String>,
    /// Alerts go to every matching route's channel (bot mode).
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Alerts below this severity are not posted unless a playbook asked for a channel itself.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// A link under every message; placeholders `{audit_id}`, `{cluster}`, `{alert_id}`,
    /// `{playbook}`, `{namespace}`, `{user}` are replaced by their URL-encoded values.
    #[serde(default)]
    pub link_template: Option<String>,
    /// At most one message (post or edit) per channel in this interval.
    #[serde(default = "default_channel_interval")]
    pub channel_interval: Seconds,
    /// Longest one HTTP call to Slack may take before it counts as failed (and is retried).
    #[serde(default = "default_timeout")]
    pub timeout: Seconds,
    /// Approve / Reject buttons for responses a playbook wants approved.
    #[serde(default)]
    pub approvals: Option<ApprovalsConfig>,
}

/// One routing rule: every non-empty list must match; values are globs (`prod-*`) or `re:` regexes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(default)]
    pub severity: Vec<Severity>,
    #[serde(default)]
    pub playbook: Vec<Pattern>,
    /// The namespace of the object acted on.
    #[serde(default)]
    pub namespace: Vec<Pattern>,
    /// The actor's team, from the identity directory.
    #[serde(default)]
    pub team: Vec<Pattern>,
    /// `#name` or a channel id (`C0123ABCD`).
    pub channel: String,
}

/// Slack interactivity: who may approve, and how requests are checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// The app's signing secret (Basic Information → App Credentials).
    pub signing_secret: Secret,
    /// Slack user ids (`U0123ABCD`) or usernames allowed to approve or reject, and to use the triage buttons.
    pub approvers: Vec<String>,
    /// A response not decided within this time expires (enforced by the outbox).
    #[serde(default = "default_ttl")]
    pub ttl: Seconds,
    /// The path of the Interactivity Request URL on rampart's HTTP listener.
    #[serde(default = "default_path")]
    pub path: String,
}

fn default_api_url() -> String {
    "https://slack.com/api".to_owned()
}
fn default_channel_interval() -> Seconds {
    Seconds::from_secs(1)
}
fn default_timeout() -> Seconds {
    Seconds::from_secs(10)
}
fn default_ttl() -> Seconds {
    Seconds::from_secs(3600)
}
fn default_path() -> String {
    "/slack/interactions".to_owned()
}

/// The placeholders `link_template` may use.
pub const LINK_PLACEHOLDERS: &[&str] = &[
    "audit_id",
    "cluster",
    "alert_id",
    "playbook",
    "namespace",
    "user",
];

impl SlackConfig {
    /// A config with defaults and the given credentials (tests, programmatic use).
    pub fn new(webhook_url: Option<Secret>, bot_token: Option<Secret>) -> Self {
        Self {
            webhook_url,
            bot_token,
            api_url: default_api_url(),
            ca_file: None,
            default_channel: None,
            routes: Vec::new(),
            min_severity: None,
            link_template: None,
            channel_interval: default_channel_interval(),
            timeout: default_timeout(),
            approvals: None,
        }
    }

    /// True when messages go through the Web API (routing, threads, edits).
    pub fn bot_mode(&self) -> bool {
        self.bot_token.is_some()
    }

    /// Adds every problem with this config to `problems`, each with its dotted path under `path`.
    pub fn validate(&self, path: &str, problems: &mut Vec<Problem>) {
        let mut problem = |p: String, message: String| problems.push(Problem { path: p, message });
        let at = |field: &str| format!("{path}.{field}");
        if self.webhook_url.is_none() && self.bot_token.is_none() {
            problem(
                path.to_owned(),
                "set bot_token (routing, threads, edits) or webhook_url (one channel)".into(),
            );
        }
        if let Some(w) = &self.webhook_url {
            // Never echo the URL: it is the credential.
            if !w.expose().starts_with("https://") {
                problem(at("webhook_url"), "must be an https:// URL".into());
            }
        }
        if let Some(t) = &self.bot_token {
            if t.expose().trim().is_empty() {
                problem(at("bot_token"), "is empty".into());
            } else if t.expose().starts_with("xoxp-") {
                problem(
                    at("bot_token"),
                    "is a user token (xoxp-); use the app's bot token (xoxb-)".into(),
                );
            }
        }
        if !(self.api_url.starts_with("https://") || self.api_url.starts_with("http://")) {
            problem(
                at("api_url"),
                format!("{:?} is not an http(s) URL", self.api_url),
            );
        }
        if let Some(ca) = &self.ca_file {
            if let Err(e) = std::fs::metadata(ca) {
                problem(at("ca_file"), format!("cannot read {}: {e}", ca.display()));
            }
        }
        if let Some(c) = &self.default_channel {
            if let Some(m) = channel_problem(c) {
                problem(at("default_channel"), m);
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            if let Some(m) = channel_problem(&r.channel) {
                problem(format!("{path}.routes[{i}].channel"), m);
            }
        }
        if !self.bot_mode() && (!self.routes.is_empty() || self.default_channel.is_some()) {
            problem(
                at("routes"),
                "routes and default_channel need bot_token: an incoming webhook posts to its own channel only".into(),
            );
        }
        if let Some(t) = &self.link_template {
            let mut rest = t.as_str();
            while let Some(open) = rest.find('{') {
                let after = &rest[open + 1..];
                let Some(close) = after.find('}') else {
                    problem(at("link_template"), "has an unclosed {".into());
                    break;
                };
                let name = &after[..close];
                if !LINK_PLACEHOLDERS.contains(&name) {
                    problem(
                        at("link_template"),
                        format!(
                            "unknown placeholder {{{name}}}; use {}",
                            LINK_PLACEHOLDERS
                                .iter()
                                .map(|p| format!("{{{p}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
                rest = &after[close + 1..];
            }
            if !t.starts_with("https://") && !t.starts_with("http://") {
                problem(
                    at("link_template"),
                    "must start with https:// or http://".into(),
                );
            }
        }
        if self.channel_interval.get().is_zero() {
            problem(
                at("channel_interval"),
                "must be above 0 (Slack allows about one message per second per channel)".into(),
            );
        }
        if self.timeout.get().is_zero() {
            problem(at("timeout"), "must be above 0".into());
        }
        if let Some(a) = &self.approvals {
            if a.signing_secret.expose().trim().is_empty() {
                problem(at("approvals.signing_secret"), "is empty".into());
            }
            if a.approvers.is_empty() {
                problem(
                    at("approvals.approvers"),
                    "is empty: nobody could approve a response".into(),
                );
            }
            for (i, who) in a.approvers.iter().enumerate() {
                if who.trim().is_empty() || who.contains(char::is_whitespace) {
                    problem(
                        format!("{path}.approvals.approvers[{i}]"),
                        format!("{who:?} is not a Slack user id or username"),
                    );
                }
            }
            if !a.path.starts_with('/') {
                problem(at("approvals.path"), "must start with /".into());
            }
            if a.ttl.get().is_zero() {
                problem(at("approvals.ttl"), "must be above 0".into());
            }
        }
    }
}

fn channel_problem(c: &str) -> Option<String> {
    let name = c.strip_prefix('#').unwrap_or(c);
    if name.is_empty() {
        return Some("is empty".into());
    }
    if name.len() > 80
        || name
            .chars()
            .any(|ch| ch.is_whitespace() || (ch.is_uppercase() && c.starts_with('#')))
    {
        return Some(format!(
            "{c:?} is not a channel: write #name (lowercase, no spaces) or a channel id"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        let cfg: SlackConfig = serde_yaml::from_str(yaml).unwrap();
        let mut p = Vec::new();
        cfg.validate("respond.slack", &mut p);
        p.into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn reports_every_problem_with_its_path_and_no_secret() {
        let p = problems(
            "bot_token: xoxp-user-token-abc\nroutes:\n  - {severity: [high], channel: '#ok'}\n  - {channel: '#ok2'}\n  - {channel: '#Bad Name'}\nlink_template: 'https://logs/?q={audit}'\nchannel_interval: 0s\napprovals:\n  signing_secret: s3cr3t-value\n  approvers: []\n",
        );
        let joined = p.join("\n");
        assert!(
            joined.contains("respond.slack.routes[2].channel:"),
            "{joined}"
        );
        assert!(joined.contains("respond.slack.link_template: unknown placeholder {audit}"));
        assert!(joined.contains("respond.slack.channel_interval:"));
        assert!(joined.contains("respond.slack.approvals.approvers: is empty"));
        assert!(joined.contains("respond.slack.bot_token: is a user token"));
        assert!(!joined.contains("xoxp-user-token-abc") && !joined.contains("s3cr3t-value"));
        assert_eq!(p.len(), 5, "{joined}");
    }

    #[test]
    fn needs_a_credential_and_routes_need_a_bot() {
        let p = problems("default_channel: '#sec'\n");
        assert!(p.iter().any(|p| p.contains("set bot_token")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("need bot_token")), "{p:?}");
        assert!(problems("bot_token: xoxb-1\ndefault_channel: '#sec'\n").is_empty());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_yaml::from_str::<SlackConfig>("bot_token: x\nchanel: '#a'\n").is_err());
    }
}
