//! Webhook responders: POST each alert as JSON (rampart's schema, or Falco's so that Falcosidekick can fan it out) to configured URLs, HMAC-signed, retried on 429/5xx.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::registry::{BuildContext, Built, RespondError};
use super::{BoxFuture, Effect, Responder, Retry};
use crate::config::{Problem, Seconds, Secret};
use crate::playbook::Severity;
use crate::state::model::{Delivery, Status};
use crate::state::summary::non_empty;

/// The payload's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// rampart's alert document (`docs/alerts.md`), the same as a line of the alerts file.
    #[default]
    Rampart,
    /// A Falco event (`rule`, `priority`, `output`, `output_fields`, ...), as Falcosidekick accepts on `/`.
    Falcosidekick,
}

/// One webhook target (`respond.webhooks[]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// What playbooks call it: `webhook("soar")`.
    pub name: String,
    /// The URL (a secret: URLs often carry tokens).
    pub url: Secret,
    /// HMAC-SHA256 key for the `X-Rampart-Signature` header.
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub format: WebhookFormat,
    /// Every alert, update and follow-up goes here, not only those a playbook asks for.
    #[serde(default)]
    pub every_alert: bool,
    /// With `every_alert`: only alerts at least this severe.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Extra headers (e.g. an API key), values secret.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Extra root certificate (PEM) to trust, for private CAs.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_timeout")]
    pub timeout: Seconds,
    /// Deliveries in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

fn default_timeout() -> Seconds {
    Seconds::from_secs(10)
}
fn default_concurrency() -> usize {
    4
}

/// Problems of `respond.webhooks`.
pub fn validate(hooks: &[WebhookConfig], p: &mut Vec<Problem>) {
    let mut names = std::collections::HashSet::new();
    for (i, h) in hooks.iter().enumerate() {
        let path = format!("respond.webhooks[{i}]");
        let mut bad = |f: &str, m: String| {
            p.push(Problem {
                path: format!("{path}.{f}"),
                message: m,
            })
        };
        if h.name.is_empty()
            || !h
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        {
            bad(
                "name",
                "must be non-empty letters, digits, '-' or '_'".into(),
            );
        }
        if !names.insert(h.name.clone()) {
            bad("name", format!("{:?} is used twice", h.name));
        }
        let url = h.url.expose();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            bad("url", "must be an http:// or https:// URL".into());
        }
        if h.concurrency == 0 {
            bad("concurrency", "must be at least 1".into());
        }
        if h.timeout.get().is_zero() {
            bad("timeout", "must be greater than zero".into());
        }
        if let Some(ca) = &h.ca_file {
            if !ca.is_file() {
                bad(
                    "ca_file",
                    format!("{} is not a readable file", ca.display()),
                );
            }
        }
        for k in h.headers.keys() {
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                bad("headers", format!("{k:?} is not a valid header name"));
            }
        }
    }
}

/// Why a webhook responder could not be built.
#[derive(Debug, thiserror::Error)]
#[error("respond.webhooks[{name}]: {message}")]
pub struct WebhookError {
    pub name: String,
    pub message: String,
}

struct Target {
    cfg: WebhookConfig,
    client: reqwest::Client,
}

/// POSTs alerts to one or more webhook targets.
pub struct Webhook {
    queue: String,
    every_alert: bool,
    concurrency: usize,
    targets: Vec<std::sync::Arc<Target>>,
}

/// `respond.webhooks` (registered in [`super::registry`]).
pub fn build<'a>(
    cx: &'a BuildContext<'a>,
    out: &'a mut Built,
) -> super::BoxFuture<'a, Result<(), RespondError>> {
    Box::pin(async move {
        for w in Webhook::build(&cx.config.respond.webhooks)? {
            out.responders.push(std::sync::Arc::new(w));
        }
        Ok(())
    })
}

impl Webhook {
    /// The responders for `hooks`: one sink per `every_alert` webhook (`webhook.<name>`), and
    /// `webhook` for the deliveries playbooks request by name.
    pub fn build(hooks: &[WebhookConfig]) -> Result<Vec<Webhook>, WebhookError> {
        let mut out = Vec::new();
        let mut all = Vec::new();
        for h in hooks {
            // One client per target, shared by its sink and the by-name queue.
            let t = std::sync::Arc::new(target(h)?);
            if h.every_alert {
                out.push(Webhook {
                    queue: format!("webhook.{}", h.name),
                    every_alert: true,
                    concurrency: h.concurrency,
                    targets: vec![t.clone()],
                });
            }
            all.push(t);
        }
        if !all.is_empty() {
            out.push(Webhook {
                queue: "webhook".into(),
                every_alert: false,
                concurrency: hooks.iter().map(|h| h.concurrency).max().unwrap_or(1),
                targets: all,
            });
        }
        Ok(out)
    }
}

fn target(h: &WebhookConfig) -> Result<Target, WebhookError> {
    let err = |message: String| WebhookError {
        name: h.name.clone(),
        message,
    };
    let mut b = reqwest::Client::builder()
        .timeout(h.timeout.get())
        // A redirect would carry the alert and the secret `headers` (reqwest drops only
        // Authorization and cookies) to wherever the receiver points: answer it as a refusal.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("rampart/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &h.ca_file {
        let pem =
            std::fs::read(ca).map_err(|e| err(format!("cannot read {}: {e}", ca.display())))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| err(format!("{} is not a PEM certificate: {e}", ca.display())))?;
        b = b.add_root_certificate(cert);
    }
    let client = b.build().map_err(|e| err(e.without_url().to_string()))?;
    Ok(Target {
        cfg: h.clone(),
        client,
    })
}

/// `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`: what receivers recompute to trust a delivery.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let mac = super::hmac_sha256_hex(secret, &[ts.as_bytes(), b".", body]);
    format!("v1={mac}")
}

/// The Falco event Falcosidekick expects, from an alert.
pub fn falco_event(d: &Delivery) -> serde_json::Value {
    let a = &d.alert;
    let e = a.event();
    let o = e.target();
    // Absent fields are null, as Falco prints them (`<NA>`).
    let opt = |s: &Option<String>| serde_json::json!(non_empty(s));
    let text = |s: &str| serde_json::json!(Some(s).filter(|s| !s.is_empty()));
    let priority = match a.severity {
        Severity::Critical => "Critical",
        Severity::High => "Error",
        Severity::Medium => "Warning",
        Severity::Low => "Notice",
        Severity::Info => "Informational",
    };
    // One rule name per playbook (a Falco rule's own name for the Falco pack), never the
    // per-alert title: Falcosidekick counts by rule and Falco Talon matches on it.
    let rule = a
        .context
        .get("falco_rule")
        .and_then(|v| v.as_str())
        .unwrap_or(&a.playbook);
    let annotation = |k: &str| text(e.annotations.get(k).map_or("", String::as_str));
    let (user, verb, uri) = (&e.user.username, &e.verb, &e.request_uri);
    let time = crate::event::time::format_rfc3339(a.last_seen);
    let mut tags: Vec<String> = vec!["k8s".into(), "rampart".into(), a.playbook.clone()];
    tags.extend(a.mitre.iter().cloned());
    serde_json::json!({
        "uuid": uuid_of(&d.id),
        "output": format!("{time}: {priority} {} (user={user} verb={verb} uri={uri} cluster={} count={})", a.title, a.cluster, a.count),
        "priority": priority,
        "rule": rule,
        "time": time,
        "source": "k8s_audit",
        "hostname": "rampart",
        "tags": tags,
        "output_fields": {
            "ka.auditid": text(&e.audit_id),
            "ka.cluster.name": text(&a.cluster),
            "ka.stage": e.stage,
            "ka.auth.decision": annotation("authorization.k8s.io/decision"),
            "ka.auth.reason": annotation("authorization.k8s.io/reason"),
            "ka.response.reason": e.response_status.as_ref().and_then(|r| r.reason.as_deref()),
            "ka.user.name": text(user),
            "ka.user.groups": (!e.user.groups.is_empty()).then_some(&e.user.groups),
            "ka.impuser.name": e.impersonated_user.as_ref().map(|u| &u.username),
            "ka.verb": text(verb),
            "ka.uri": text(uri),
            "ka.useragent": opt(&e.user_agent),
            "ka.sourceips": (!e.source_ips.is_empty()).then_some(&e.source_ips),
            "ka.target.resource": opt(&o.resource),
            "ka.target.subresource": opt(&o.subresource),
            "ka.target.namespace": opt(&o.namespace),
            "ka.target.name": opt(&o.name),
            "ka.response.code": e.code(),
            "rampart.alert": a.id,
            "rampart.title": a.title,
            "rampart.kind": a.kind.as_str(),
            "rampart.playbook": a.playbook,
            "rampart.cluster": a.cluster,
            "rampart.count": a.count,
            "rampart.risk": a.risk,
        },
    })
}

/// A stable UUID-shaped id for a delivery (Falco events carry one).
fn uuid_of(id: &str) -> String {
    let h1 = crate::state::stable_hash([id.as_bytes()]);
    let h2 = crate::state::stable_hash([id.as_bytes(), b"2"]);
    let x = format!("{h1:016x}{h2:016x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &x[0..8],
        &x[8..12],
        &x[13..16],
        &x[17..20],
        &x[20..32]
    )
}

impl Webhook {
    async fn post(&self, t: &Target, d: &Delivery) -> Result<Effect, Retry> {
        let body = match t.cfg.format {
            WebhookFormat::Rampart => super::alert_document(d),
            WebhookFormat::Falcosidekick => serde_json::to_vec(&falco_event(d)).unwrap_or_default(),
        };
        let ts = crate::state::model::wall_ms() / 1000;
        let mut req = t
            .client
            .post(t.cfg.url.expose())
            .header("content-type", "application/json")
            .header("x-rampart-delivery", &d.id)
            .header("x-rampart-timestamp", ts.to_string());
        if let Some(secret) = &t.cfg.secret {
            req = req.header(
                "x-rampart-signature",
                signature(secret.expose().as_bytes(), ts, &body),
            );
        }
        for (k, v) in &t.cfg.headers {
            req = req.header(k.as_str(), v.expose());
        }
        let name = &t.cfg.name;
        let resp = req.body(body).send().await.map_err(|e| Retry {
            // Without the URL: it may hold a token.
            error: format!("webhook {name}: {}", e.without_url()),
            after: None,
        })?;
        let code = resp.status();
        if code.is_success() {
            return Ok(Effect::done(format!(
                "posted to webhook {name} ({})",
                code.as_u16()
            )));
        }
        if code.as_u16() == 429 || code.is_server_error() || code.as_u16() == 408 {
            return Err(Retry {
                error: format!("webhook {name} answered {}", code.as_u16()),
                after: super::retry_after(resp.headers()),
            });
        }
        Ok(Effect::with_status(
            Status::Failed,
            format!(
                "webhook {name} refused the delivery: HTTP {}",
                code.as_u16()
            ),
        ))
    }
}

impl Responder for Webhook {
    fn name(&self) -> &str {
        &self.queue
    }
    fn takes_every_alert(&self) -> bool {
        self.every_alert
    }
    fn concurrency(&self) -> usize {
        self.concurrency
    }
    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Effect, Retry>> {
        Box::pin(async move {
            let t = if self.every_alert {
                self.targets.first()
            } else {
                let want = d
                    .response
                    .as_ref()
                    .and_then(|r| r.params.get("name"))
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                self.targets.iter().find(|t| t.cfg.name == want)
            };
            let Some(t) = t else {
                return Ok(Effect::with_status(
                    Status::Failed,
                    "the playbook asked for a webhook that is not configured (respond.webhooks[].name)",
                ));
            };
            let min = t.cfg.min_severity.filter(|_| self.every_alert);
            let setting = format!("webhook {}'s min_severity", t.cfg.name);
            let would = || format!("would post {} to webhook {}", d.alert.title, t.cfg.name);
            match super::gate(d, min, &setting, dry_run, would) {
                Some(effect) => Ok(effect),
                None => self.post(t, d).await,
            }
        })
    }
}
