//! Alerts on the terminal as Slack would show them: the same Block Kit message the Slack responder posts, rendered as text, after dedup and thresholds — for the embedded demo and for trying playbooks without a Slack workspace.

use std::io::Write;

use serde_json::Value;

use super::registry::{BuildContext, Built, RespondError};
use super::slack::blocks::{self, View};
use super::{BoxFuture, Effect, Responder, Retry};
use crate::state::model::Delivery;

/// Prints every alert, update and follow-up to stdout as a Slack-formatted block of text.
#[derive(Debug, Default)]
pub struct ConsoleAlerts {
    /// Link template for the "Open in log search" line (as `respond.slack.link_template`).
    pub link_template: Option<String>,
}

/// `respond.console` (registered in [`super::registry`]).
pub fn build<'a>(
    cx: &'a BuildContext<'a>,
    out: &'a mut Built,
) -> super::BoxFuture<'a, Result<(), RespondError>> {
    Box::pin(async move {
        let r = &cx.config.respond;
        if r.console {
            out.responders.push(std::sync::Arc::new(ConsoleAlerts {
                link_template: r.slack.as_ref().and_then(|s| s.link_template.clone()),
            }));
        }
        Ok(())
    })
}

/// The alert as text: Slack's message, with mrkdwn turned into plain terminal text.
pub fn render(d: &Delivery, link_template: Option<&str>) -> String {
    let a = &d.alert;
    let root = a.root();
    let view = View {
        link_template,
        buttons: false,
        root_id: root,
        responses: &a.responses,
        decisions: None,
        triage: false,
        triaged: None,
    };
    let m = blocks::render(a, &view);
    let mut out = String::from("┌─────────────────────────────────────────────────────────────\n");
    for b in &m.blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("header") => line(&mut out, &text(&b["text"]), true),
            Some("section") => {
                if b.get("text").is_some() {
                    line(&mut out, &text(&b["text"]), false);
                }
                if let Some(fields) = b.get("fields").and_then(Value::as_array) {
                    for f in fields {
                        line(&mut out, &text(f), false);
                    }
                }
            }
            Some("context") => {
                for e in b["elements"].as_array().into_iter().flatten() {
                    line(&mut out, &text(e), false);
                }
            }
            _ => {}
        }
    }
    out.push_str("└─────────────────────────────────────────────────────────────\n");
    out
}

fn line(out: &mut String, t: &str, header: bool) {
    for l in t.lines() {
        out.push_str(if header { "│ ■ " } else { "│ " });
        out.push_str(l);
        out.push('\n');
    }
}

/// The plain text of a Block Kit text object: `*bold*` and `` `code` `` marks dropped,
/// `<url|label>` shown as `label (url)`, entities unescaped, emoji codes kept.
fn text(t: &Value) -> String {
    let raw = t.get("text").and_then(Value::as_str).unwrap_or("");
    if t.get("type").and_then(Value::as_str) == Some("plain_text") {
        return emoji(raw);
    }
    let mut s = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('<') {
        s.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find('>') {
            Some(j) => {
                let inner = &after[..j];
                match inner.split_once('|') {
                    Some((url, label)) => s.push_str(&format!("{label} ({url})")),
                    None => s.push_str(inner),
                }
                rest = &after[j + 1..];
            }
            None => {
                s.push('<');
                rest = after;
            }
        }
    }
    s.push_str(rest);
    emoji(
        &s.replace(['*', '`'], "")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// The emoji codes rampart's messages use, as terminals show them.
fn emoji(s: &str) -> String {
    const CODES: &[(&str, &str)] = &[
        (":rotating_light:", "🚨"),
        (":red_circle:", "🔴"),
        (":large_orange_circle:", "🟠"),
        (":large_yellow_circle:", "🟡"),
        (":information_source:", "ℹ️"),
        (":eyes:", "👀"),
        (":heavy_check_mark:", "✔"),
        (":hourglass:", "⏳"),
        (":no_entry_sign:", "🚫"),
        (":performing_arts:", "🎭"),
        (":repeat:", "🔁"),
        (":warning:", "⚠️"),
        (":zap:", "⚡"),
    ];
    let mut out = s.to_owned();
    for (code, e) in CODES {
        if out.contains(code) {
            out = out.replace(code, e);
        }
    }
    out
}

impl Responder for ConsoleAlerts {
    fn name(&self) -> &str {
        "console"
    }
    fn takes_every_alert(&self) -> bool {
        true
    }
    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        _dry_run: bool,
    ) -> BoxFuture<'a, Result<Effect, Retry>> {
        // The terminal is rampart's own output: printed in dry-run too.
        Box::pin(async move {
            let s = render(d, self.link_template.as_deref());
            let mut out = std::io::stdout().lock();
            match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => Ok(Effect::done("printed")),
                // The reader has gone (`rampart run | head`): retrying cannot help.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Effect::with_status(
                    crate::state::model::Status::Failed,
                    "stdout is closed",
                )),
                Err(e) => Err(Retry {
                    error: format!("cannot write to stdout: {e}"),
                    after: None,
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::{ResponseRequest, Severity};
    use crate::state::model::{Alert, AlertKind};

    #[test]
    fn an_alert_reads_like_its_slack_message_without_markup() {
        let alert = Alert {
            id: "prod/e1/admin-bound".into(),
            kind: AlertKind::Alert,
            thread: None,
            playbook: "admin-bound".into(),
            title: "mallory bound cluster-admin <to> eve".into(),
            severity: Severity::Critical,
            score: 90,
            mitre: vec!["T1098".into()],
            cluster: "prod".into(),
            dedup: "mallory".into(),
            count: 3,
            first_seen: 1_767_225_600,
            last_seen: 1_767_225_660,
            risk: Some(130.0),
            context: Default::default(),
            responses: vec![ResponseRequest {
                kind: "revoke_binding".into(),
                approval: true,
                params: serde_json::json!({"mode": "delete"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            }],
            event: serde_json::from_value(serde_json::json!({
                "auditID": "e1", "verb": "create",
                "user": {"username": "mallory@example.com"},
                "sourceIPs": ["203.0.113.7"],
                "objectRef": {"resource": "clusterrolebindings", "name": "ops-admin"},
                "responseStatus": {"code": 201},
            }))
            .unwrap(),
            contributions: Vec::new(),
            suppressed: None,
            dry_run: false,
        };
        let d = Delivery {
            id: "prod/e1/admin-bound/console".into(),
            responder: "console".into(),
            alert,
            response: None,
            enqueued_ms: 0,
            attempts: 0,
            not_before_ms: 0,
            target: None,
            approved: None,
        };
        let t = render(&d, Some("https://logs.example/q?id={audit_id}"));
        for want in [
            "mallory bound cluster-admin <to> eve",
            "Severity: critical",
            "Playbook: admin-bound",
            "T1098",
            "mallory@example.com",
            "203.0.113.7",
            "ops-admin",
            "seen 3 times since 2026-01-01T00:00:00Z",
            "Risk: 130",
            "revoke_binding",
            "awaiting approval",
            "Open in log search (https://logs.example/q?id=e1)",
        ] {
            assert!(t.contains(want), "missing {want:?} in:\n{t}");
        }
        assert!(
            !t.contains('*') && !t.contains('`') && !t.contains("&lt;"),
            "{t}"
        );
    }
}
