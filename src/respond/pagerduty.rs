//! PagerDuty: alerts at or above a severity page on-call through the Events API v2, one incident per alert thread (its dedup key), updates and follow-ups added to the same incident; marking the alert acknowledges (true positive) or resolves (benign, false positive) the incident, and snoozing its group resolves it.

use serde::Deserialize;
use serde_json::{json, Value};

use super::registry::{BuildContext, Built, RespondError};
use super::{BoxFuture, Effect, Responder, Retry};
use crate::config::{Problem, Seconds, Secret};
use crate::model::{ResponseRequest, Severity};
use crate::state::model::{wall_ms, Alert, AlertKind, Delivery, Status};
use crate::state::outbox::Outbox;
use crate::state::StateError;
use crate::triage::{Change, Verdict};

/// The queue name, and the `kind` of the acknowledge / resolve requests it queues for itself.
pub const NAME: &str = "pagerduty";

/// `respond.pagerduty`: page on-call for serious alerts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// The integration key of an Events API v2 integration on the service to page (a secret).
    pub routing_key: Secret,
    /// Only alerts at least this severe page.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// The Events API endpoint (the EU service region uses `https://events.eu.pagerduty.com/v2/enqueue`).
    #[serde(default = "default_url")]
    pub url: String,
    /// Longest one request may take.
    #[serde(default = "default_timeout")]
    pub timeout: Seconds,
    /// Other services to page, by the actor's team or the alert's severity or cluster: the first
    /// route that matches an alert takes it (its acknowledge and resolve too); the rest go to
    /// `routing_key`.
    #[serde(default)]
    pub routes: Vec<PagerDutyRoute>,
}

/// One route: where alerts that match every test given go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyRoute {
    /// The integration key of that service's Events API v2 integration (a secret).
    pub routing_key: Secret,
    /// The actor's team (identity enrichment) is one of these.
    #[serde(default)]
    pub teams: Vec<String>,
    /// The alert is at least this severe.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// The alert's cluster is one of these.
    #[serde(default)]
    pub clusters: Vec<String>,
}

impl PagerDutyRoute {
    fn matches(&self, a: &Alert) -> bool {
        let team = a
            .event()
            .enrichment
            .as_ref()
            .and_then(|e| e.identity.team.as_deref());
        (self.teams.is_empty() || team.is_some_and(|t| self.teams.iter().any(|x| x == t)))
            && self.min_severity.is_none_or(|m| a.severity >= m)
            && (self.clusters.is_empty() || self.clusters.contains(&a.cluster))
    }
}

fn default_min_severity() -> Severity {
    Severity::High
}
fn default_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}
fn default_timeout() -> Seconds {
    Seconds::from_secs(10)
}

impl PagerDutyConfig {
    /// Problems of `respond.pagerduty`.
    pub fn validate(&self, p: &mut Vec<Problem>) {
        if self.routing_key.expose().trim().is_empty() {
            p.push(Problem {
                path: "respond.pagerduty.routing_key".into(),
                message: "must be the integration key of an Events API v2 integration".into(),
            });
        }
        for (i, r) in self.routes.iter().enumerate() {
            let at = format!("respond.pagerduty.routes[{i}]");
            if r.routing_key.expose().trim().is_empty() {
                p.push(Problem {
                    path: format!("{at}.routing_key"),
                    message: "must be the integration key of an Events API v2 integration".into(),
                });
            }
            if r.teams.is_empty() && r.min_severity.is_none() && r.clusters.is_empty() {
                p.push(Problem {
                    path: at,
                    message: "matches every alert: give teams, min_severity or clusters".into(),
                });
            }
        }
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            p.push(Problem {
                path: "respond.pagerduty.url".into(),
                message: format!("must be an http(s) URL, not {:?}", self.url),
            });
        }
    }
}

/// `respond.pagerduty` (registered in [`super::registry`]).
pub fn build<'a>(
    cx: &'a BuildContext<'a>,
    out: &'a mut Built,
) -> BoxFuture<'a, Result<(), RespondError>> {
    Box::pin(async move {
        if let Some(cfg) = &cx.config.respond.pagerduty {
            let http = reqwest::Client::builder()
                .timeout(cfg.timeout.get())
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("rampart/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| RespondError::PagerDuty(e.without_url().to_string()))?;
            out.responders.push(std::sync::Arc::new(PagerDuty {
                cfg: cfg.clone(),
                http,
            }));
        }
        Ok(())
    })
}

/// Sends alerts to PagerDuty's Events API v2.
pub struct PagerDuty {
    cfg: PagerDutyConfig,
    http: reqwest::Client,
}

/// PagerDuty's severities: critical, error, warning, info.
fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "info",
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(1);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The Events API v2 event for a delivery: one incident per alert thread (`dedup_key` is the
/// first alert's id, at most 255 bytes), so a repeat, an update or a follow-up never opens a second.
pub fn event(routing_key: &str, d: &Delivery) -> Value {
    let a = &d.alert;
    let e = a.event();
    let o = e.target();
    let prefix = match a.kind {
        AlertKind::Alert => "",
        AlertKind::Update => "[update] ",
        AlertKind::FollowUp => "[follow-up] ",
        AlertKind::HighRisk => "[high risk] ",
    };
    let actor = e
        .enrichment
        .as_ref()
        .map(|x| x.identity.actor.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(&e.user.username);
    let summary = cut(&format!("{prefix}{} ({})", a.title, a.cluster), 1024);
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": cut(a.root(), 255),
        "client": "rampart",
        "payload": {
            "summary": summary,
            "source": a.cluster,
            "severity": severity(a.severity),
            "timestamp": crate::event::time::format_rfc3339(a.last_seen),
            "component": o.resource.as_deref().unwrap_or("cluster"),
            "group": o.namespace.as_deref().unwrap_or(""),
            "class": a.playbook,
            "custom_details": {
                "alert": a.id,
                "kind": a.kind.as_str(),
                "playbook": a.playbook,
                "score": a.score,
                "mitre": a.mitre,
                "seen": a.summary(),
                "risk": a.risk,
                "actor": actor,
                "verb": e.verb,
                "uri": e.request_uri,
                "source_ips": e.source_ips,
                "target": {"resource": o.resource, "namespace": o.namespace, "name": o.name},
                "context": a.context,
                "delivery": d.id,
            },
        },
    })
}

/// `acknowledge` or `resolve` when `d` is one of those (queued after triage), else `None` (a trigger).
pub fn closing_action(d: &Delivery) -> Option<&str> {
    let r = d.response.as_ref().filter(|r| r.kind == NAME)?;
    r.params
        .get("event_action")
        .and_then(Value::as_str)
        .filter(|a| ["acknowledge", "resolve"].contains(a))
}

/// The Events API v2 acknowledge or resolve of the incident `d`'s alert thread opened: only the
/// routing key, the dedup key and the action.
pub fn closing_event(routing_key: &str, d: &Delivery, action: &str) -> Value {
    json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": cut(d.alert.root(), 255),
    })
}

/// The delivery that acknowledges or resolves `a`'s incident, once (`{root}/pagerduty/{action}`).
pub fn closing_delivery(a: &Alert, action: &str) -> Delivery {
    let mut params = serde_json::Map::new();
    params.insert("event_action".into(), json!(action));
    Delivery {
        id: format!("{}/{NAME}/{action}", a.root()),
        responder: NAME.into(),
        alert: a.clone(),
        response: Some(ResponseRequest {
            kind: NAME.into(),
            approval: false,
            params,
        }),
        enqueued_ms: wall_ms(),
        attempts: 0,
        not_before_ms: 0,
        target: None,
        approved: None,
    }
}

impl PagerDuty {
    /// True when PagerDuty was (or, still queued, will be) paged for `a`: at or above
    /// `min_severity`, not on trial, not silenced, and its trigger not skipped, refused or dry-run.
    fn paged(&self, a: &Alert, outbox: &Outbox) -> Result<bool, StateError> {
        if a.severity < self.cfg.min_severity || a.dry_run {
            return Ok(false);
        }
        Ok(match outbox.journal(&format!("{}/{NAME}", a.id))? {
            Some(j) => j.status == Status::Done,
            // Still queued: the acknowledge or resolve waits behind it (one thread, in order).
            None => a.suppressed.is_none(),
        })
    }

    /// The routing key of the service that takes `a`: the first matching route's, else the default.
    fn routing_key(&self, a: &Alert) -> &str {
        self.cfg
            .routes
            .iter()
            .find(|r| r.matches(a))
            .map_or(&self.cfg.routing_key, |r| &r.routing_key)
            .expose()
    }

    async fn send(&self, d: &Delivery) -> Result<Effect, Retry> {
        let closing = closing_action(d);
        let key = self.routing_key(&d.alert);
        let body = match closing {
            Some(action) => closing_event(key, d, action),
            None => event(key, d),
        };
        let resp = self
            .http
            .post(&self.cfg.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| Retry {
                error: format!("PagerDuty: {}", e.without_url()),
                after: None,
            })?;
        let code = resp.status().as_u16();
        let after = super::retry_after(resp.headers());
        // The answer names what was wrong with an event; it never holds the routing key.
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        let said = |k: &str| {
            answer
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        match code {
            200..=299 => Ok(Effect::done(match closing {
                Some("acknowledge") => format!(
                    "acknowledged the PagerDuty incident (key {})",
                    said("dedup_key")
                ),
                Some(_) => format!(
                    "resolved the PagerDuty incident (key {})",
                    said("dedup_key")
                ),
                None => format!("paged PagerDuty (incident key {})", said("dedup_key")),
            })),
            // Throttled or unavailable: retried with the dispatcher's backoff (or Retry-After).
            429 | 408 | 500..=599 => Err(Retry {
                error: format!("PagerDuty answered {code}"),
                after,
            }),
            _ => {
                let errors = answer
                    .get("errors")
                    .map(Value::to_string)
                    .unwrap_or_default();
                Ok(Effect::with_status(
                    Status::Failed,
                    format!(
                        "PagerDuty refused the event: HTTP {code} {} {errors}",
                        said("message")
                    ),
                ))
            }
        }
    }
}

impl Responder for PagerDuty {
    fn name(&self) -> &str {
        NAME
    }
    fn takes_every_alert(&self) -> bool {
        true
    }
    /// True positive: acknowledge; benign or false positive: resolve; a new suppression: resolve
    /// the incidents of the alerts it silences — each only for an alert PagerDuty was paged for.
    fn after_triage(
        &self,
        change: &Change<'_>,
        outbox: &Outbox,
    ) -> Result<Vec<Delivery>, StateError> {
        let (action, alerts): (&str, &[Alert]) = match change {
            Change::Marked { alert, outcome } => (
                if outcome.verdict == Verdict::TruePositive {
                    "acknowledge"
                } else {
                    "resolve"
                },
                std::slice::from_ref(*alert),
            ),
            Change::Suppressed { alerts, .. } => ("resolve", *alerts),
        };
        let mut out = Vec::new();
        for a in alerts {
            if self.paged(a, outbox)? {
                out.push(closing_delivery(a, action));
            }
        }
        Ok(out)
    }
    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Effect, Retry>> {
        Box::pin(async move {
            let min = Some(self.cfg.min_severity);
            let would = || match closing_action(d) {
                Some(action) => format!("would {action} the PagerDuty incident: {}", d.alert.title),
                None => format!("would page PagerDuty: {}", d.alert.title),
            };
            match super::gate(d, min, "respond.pagerduty.min_severity", dry_run, would) {
                Some(effect) => Ok(effect),
                None => self.send(d).await,
            }
        })
    }
}
