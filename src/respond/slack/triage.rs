//! Triage buttons on Slack alert cards — True positive, Benign, False positive, Snooze 24h — and what a click does: the same `Triage::mark` and `Triage::suppress` as the API and the console, for users on the approver list, then the card edited to say who did what.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::blocks::{self, escape, truncate, View, MAX_BUTTON_VALUE, MAX_FIELD};
use super::interact::{spawn_copies, spawn_reply, Action, Interaction, Interactions};
use crate::state::model::{Alert, AlertKind};
use crate::triage::{NewSuppression, Scope, Triage, TriageError, Verdict};

/// What every triage button's `action_id` begins with; the rest names the verdict, or `snooze`.
pub const PREFIX: &str = "rampart.triage.";
pub const TRUE_POSITIVE: &str = "rampart.triage.true_positive";
pub const BENIGN: &str = "rampart.triage.benign";
pub const FALSE_POSITIVE: &str = "rampart.triage.false_positive";
pub const SNOOZE: &str = "rampart.triage.snooze";
/// How long Snooze silences the alert's group (seconds).
pub const SNOOZE_SECS: u64 = 86_400;
/// The `block_id` of the buttons and of the line above them that says what was done.
pub const ACTIONS_BLOCK: &str = "triage";
pub const STATUS_BLOCK: &str = "triage.status";

/// What a triage button asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Mark(Verdict),
    Snooze,
}

impl Ask {
    /// The ask of a button's `action_id`, if it is a triage button.
    pub fn of(action_id: &str) -> Option<Self> {
        let rest = action_id.strip_prefix(PREFIX)?;
        if rest == "snooze" {
            return Some(Ask::Snooze);
        }
        Verdict::parse(rest).map(Ask::Mark)
    }
    /// Which line of the card it sets (a later mark replaces an earlier one; so does a snooze).
    fn key(self) -> &'static str {
        match self {
            Ask::Mark(_) => "mark",
            Ask::Snooze => "snooze",
        }
    }
}

/// The lines saying what was done, in a stable order (mark, then snooze).
pub fn status(lines: &BTreeMap<String, String>) -> String {
    lines.values().cloned().collect::<Vec<_>>().join("\n")
}

fn status_block(text: &str) -> Value {
    json!({"type": "context", "block_id": STATUS_BLOCK,
        "elements": [{"type": "mrkdwn", "text": truncate(text, MAX_FIELD)}]})
}

/// The card's triage blocks (what was done, then the buttons): none for follow-ups, without
/// interactivity, or for an id too long for a button's value.
pub fn card_blocks(a: &Alert, v: &View<'_>) -> Vec<Value> {
    if !v.triage || a.kind == AlertKind::FollowUp || v.root_id.chars().count() > MAX_BUTTON_VALUE {
        return Vec::new();
    }
    let mut out = Vec::new();
    let said = v.triaged.map(status).unwrap_or_default();
    if !said.is_empty() {
        out.push(status_block(&said));
    }
    let button = |id: &str, text: &str| {
        json!({"type": "button", "action_id": id, "value": v.root_id,
            "text": {"type": "plain_text", "text": text}})
    };
    let mut snooze = button(SNOOZE, "Snooze 24h");
    snooze["confirm"] = json!({
        "title": {"type": "plain_text", "text": "Snooze for 24 hours?"},
        "text": {"type": "mrkdwn", "text": truncate(&format!(
            "Alerts of `{}` for this group in `{}` are kept but not sent anywhere for 24 hours.",
            escape(&a.playbook), escape(&a.cluster)), 300)},
        "confirm": {"type": "plain_text", "text": "Snooze"},
        "deny": {"type": "plain_text", "text": "Cancel"}});
    out.push(
        json!({"type": "actions", "block_id": ACTIONS_BLOCK, "elements": [
            button(TRUE_POSITIVE, "True positive"),
            button(BENIGN, "Benign"),
            button(FALSE_POSITIVE, "False positive"),
            snooze,
        ]}),
    );
    out
}

/// `blocks` with the triage line set to `text` (above the buttons, which stay); `None` when the
/// message has no triage buttons.
pub fn with_status(blocks: &[Value], text: &str) -> Option<Vec<Value>> {
    let mut out: Vec<Value> = blocks
        .iter()
        .filter(|b| b["block_id"] != STATUS_BLOCK)
        .cloned()
        .collect();
    let at = out.iter().position(|b| b["block_id"] == ACTIONS_BLOCK)?;
    out.insert(at, status_block(text));
    Some(out)
}

/// "2026-12-08 14:02Z"
fn until(ms: u64) -> String {
    let t = crate::event::time::format_rfc3339(i64::try_from(ms / 1000).unwrap_or(i64::MAX));
    t.get(..16)
        .map_or(t.clone(), |d| format!("{}Z", d.replacen('T', " ", 1)))
}

fn ephemeral(cfg: &Interactions, url: String, text: &str) -> Response {
    let reply = json!({"response_type": "ephemeral", "replace_original": false, "text": text});
    spawn_reply(cfg.client.clone(), url, reply);
    StatusCode::OK.into_response()
}

/// What a click recorded.
enum Done {
    Marked(crate::triage::Outcome),
    Snoozed(crate::triage::Suppression),
}

/// A verified click on a triage button: recorded when the user may, then shown on the card.
pub(super) async fn clicked(
    cfg: &Interactions,
    triage: Option<Arc<Triage>>,
    p: &Interaction,
    action: &Action,
    ask: Ask,
    response_url: String,
) -> Response {
    let Some(root) = action.value.clone() else {
        return StatusCode::OK.into_response();
    };
    let name = p
        .user
        .username
        .clone()
        .or(p.user.name.clone())
        .unwrap_or_default();
    if !cfg.may_decide(&p.user) {
        tracing::warn!(user = %p.user.id, name = %name, alert = %root, "Slack user not on the approver list: triage refused");
        return ephemeral(cfg, response_url, "You are not on rampart's approver list (respond.slack.approvals.approvers), which also says who may triage; nothing was recorded.");
    }
    let Some(triage) = triage else {
        return ephemeral(
            cfg,
            response_url,
            "rampart cannot record triage from here; use the triage API or the console.",
        );
    };
    let by = if name.is_empty() {
        format!("slack:{}", p.user.id)
    } else {
        format!("slack:{} ({name})", p.user.id)
    };
    let (id, who) = (root.clone(), by.clone());
    let done = tokio::task::spawn_blocking(move || match ask {
        Ask::Mark(v) => triage.mark(&id, v, "", &who).map(Done::Marked),
        Ask::Snooze => {
            let a = triage.alert(&id)?;
            let s = triage.suppress(
                NewSuppression {
                    playbook: Some(a.playbook.clone()),
                    scope: Scope::Group {
                        cluster: a.cluster.clone(),
                        dedup: a.dedup.clone(),
                    },
                    reason: "snoozed from Slack".into(),
                    for_secs: SNOOZE_SECS,
                },
                &who,
            )?;
            Ok(Done::Snoozed(s))
        }
    })
    .await
    .unwrap_or_else(|e| Err(TriageError::Invalid(format!("interrupted: {e}"))));
    let who = format!("<@{}>", p.user.id);
    let line = match &done {
        Ok(Done::Marked(o)) => {
            let icon = match o.verdict {
                Verdict::TruePositive => ":rotating_light:",
                Verdict::Benign => ":ok_hand:",
                Verdict::FalsePositive => ":no_entry_sign:",
            };
            format!(
                "{icon} Marked {} by {who} at {}",
                o.verdict.label(),
                blocks::hhmm(o.at_ms)
            )
        }
        Ok(Done::Snoozed(s)) => format!(
            ":zzz: Snoozed for 24h by {who} (until {}, suppression `{}`)",
            until(s.expires_ms),
            escape(&s.id)
        ),
        Err(TriageError::NoAlert(_)) => {
            return ephemeral(cfg, response_url, "rampart no longer has this alert (past the state's retention); nothing was recorded.");
        }
        Err(e) => {
            tracing::error!(alert = %root, error = %e, "cannot record triage from Slack");
            return ephemeral(
                cfg,
                response_url,
                "rampart could not record this; try again.",
            );
        }
    };
    tracing::info!(alert = %root, user = %p.user.id, ask = ?ask, "Slack triage");
    let said = match cfg.messages.triaged(&root, ask.key(), &line) {
        Ok(Some(rec)) => status(&rec.triage),
        Ok(None) => line.clone(),
        Err(e) => {
            tracing::warn!(alert = %root, error = %e, "triage not recorded in Slack's memory of the alert");
            line.clone()
        }
    };
    let blocks = p
        .message
        .as_ref()
        .and_then(|m| m["blocks"].as_array())
        .and_then(|b| with_status(b, &said));
    let reply = match &blocks {
        Some(b) => json!({"replace_original": true, "text": line, "blocks": b}),
        None => json!({"replace_original": false, "response_type": "in_channel", "text": line}),
    };
    spawn_reply(cfg.client.clone(), response_url, reply);
    if let Some(b) = blocks {
        spawn_copies(cfg, &root, &p.container, b, line);
    }
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::playbook::Severity;

    #[test]
    fn cards_carry_the_buttons_with_the_root_id_and_a_click_sets_the_line_above_them() {
        let a = super::super::route::tests::alert(Severity::High, "p", "ns", "team");
        let mut v = View {
            root_id: &a.id,
            ..View::default()
        };
        assert!(
            card_blocks(&a, &v).is_empty(),
            "no interactivity, no buttons"
        );
        v.triage = true;
        let b = card_blocks(&a, &v);
        assert_eq!(b.len(), 1);
        let ids: Vec<&str> = b[0]["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [TRUE_POSITIVE, BENIGN, FALSE_POSITIVE, SNOOZE]);
        assert!(b[0]["elements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["value"] == a.id.as_str()));
        for id in ids {
            assert!(Ask::of(id).is_some(), "{id}");
        }
        assert_eq!(
            Ask::of(FALSE_POSITIVE),
            Some(Ask::Mark(Verdict::FalsePositive))
        );
        assert_eq!(Ask::of("rampart.approve"), None);
        let m = blocks::render(&a, &v);
        let once = with_status(&m.blocks, "marked").unwrap();
        let twice = with_status(&once, "marked\nsnoozed").unwrap();
        assert_eq!(twice.len(), m.blocks.len() + 1);
        let i = twice
            .iter()
            .position(|b| b["block_id"] == STATUS_BLOCK)
            .unwrap();
        assert_eq!(twice[i + 1]["block_id"], ACTIONS_BLOCK);
        assert_eq!(twice[i]["elements"][0]["text"], "marked\nsnoozed");
        let mut f = a.clone();
        f.kind = AlertKind::FollowUp;
        assert!(card_blocks(&f, &v).is_empty(), "follow-ups carry none");
        assert_eq!(until(1_795_000_000_000), "2026-11-18 11:06Z");
    }
}
