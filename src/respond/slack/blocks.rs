//! Block Kit messages from enriched alerts: who, from where, to what, how often, what rampart did or proposes (with Approve / Reject buttons), and the triage buttons ([`super::triage`]) — escaped and kept within Slack's limits.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::playbook::{ResponseRequest, Severity};
use crate::state::model::{Alert, AlertKind};
use crate::state::summary::{non_empty, EventSummary};

/// Most blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Longest text of a section block.
pub const MAX_SECTION: usize = 3000;
/// Longest text of a header block.
pub const MAX_HEADER: usize = 150;
/// Longest text of one section field or context element.
pub const MAX_FIELD: usize = 2000;
/// Longest value of a button.
pub const MAX_BUTTON_VALUE: usize = 2000;
/// Appended where text was cut.
pub const TRUNCATED: &str = "… (truncated)";
/// `action_id` of the buttons.
pub const APPROVE: &str = "rampart.approve";
pub const REJECT: &str = "rampart.reject";

/// A message as `chat.postMessage`, `chat.update` and incoming webhooks take it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The notification and fallback text.
    pub text: String,
    pub blocks: Vec<Value>,
}

/// What a message shows besides the alert.
#[derive(Debug, Clone, Default)]
pub struct View<'a> {
    pub link_template: Option<&'a str>,
    /// Approve / Reject buttons are offered (interactivity configured).
    pub buttons: bool,
    /// The alert whose responses are shown (the first alert, for updates).
    pub root_id: &'a str,
    pub responses: &'a [ResponseRequest],
    /// Decided approvals: delivery id → status line.
    pub decisions: Option<&'a BTreeMap<String, String>>,
    /// Triage buttons are offered (interactivity configured).
    pub triage: bool,
    /// What was done with them so far: `mark` / `snooze` → line.
    pub triaged: Option<&'a BTreeMap<String, String>>,
}

/// Escapes the three characters mrkdwn treats specially (`&`, `<`, `>`), so user text cannot mention, link or break out.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` cut to at most `max` characters, ending with [`TRUNCATED`] when cut (never inside an `&amp;`-style entity).
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let keep = max.saturating_sub(TRUNCATED.chars().count());
    let mut cut: String = s.chars().take(keep).collect();
    if let Some(amp) = cut.rfind('&') {
        if !cut[amp..].contains(';') && cut.len() - amp < 6 {
            cut.truncate(amp);
        }
    }
    cut.push_str(TRUNCATED);
    cut
}

/// The delivery id of response `i` of alert `root_id` — the value of its buttons.
pub fn approval_id(root_id: &str, kind: &str, i: usize) -> String {
    format!("{root_id}/{kind}.{i}")
}

fn emoji(s: Severity) -> &'static str {
    match s {
        Severity::Critical => ":rotating_light:",
        Severity::High => ":red_circle:",
        Severity::Medium => ":large_orange_circle:",
        Severity::Low => ":large_yellow_circle:",
        Severity::Info => ":information_source:",
    }
}

fn sev(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Info => "info",
    }
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION)}})
}

fn context(text: &str) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, MAX_FIELD)}]})
}

/// "HH:MMZ" of a wall-clock millisecond.
pub fn hhmm(ms: u64) -> String {
    let t = crate::event::time::format_rfc3339(i64::try_from(ms / 1000).unwrap_or(i64::MAX));
    t.get(11..16).map_or(t.clone(), |h| format!("{h}Z"))
}

fn actor(ev: &EventSummary) -> Option<String> {
    let id = ev.enrichment.as_ref().map(|e| &e.identity);
    let actor = id.map(|i| i.actor.as_str()).filter(|a| !a.is_empty());
    let who = id
        .and_then(|i| non_empty(&i.display_name))
        .or(actor)
        .or(ev.username())?;
    let mut text = format!("*Actor*\n{}", escape(who));
    if let Some(actor) = actor.filter(|a| *a != who) {
        text.push_str(&format!(" (`{}`)", escape(actor)));
    }
    let mut facts = Vec::new();
    if let Some(i) = id {
        facts.push(i.kind.as_str().replace('_', " "));
        if let Some(team) = non_empty(&i.team) {
            facts.push(format!("team {}", escape(team)));
        }
        if let Some(slack) = non_empty(&i.slack) {
            facts.push(format!("Slack {}", escape(slack)));
        }
    }
    if !facts.is_empty() {
        text.push_str(&format!("\n{}", facts.join(" · ")));
    }
    let imp = id.and_then(|i| non_empty(&i.impersonated)).or_else(|| {
        ev.impersonated_user
            .as_ref()
            .map(|u| u.username.as_str())
            .filter(|u| !u.is_empty())
    });
    if let Some(i) = imp {
        text.push_str(&format!(
            "\n:performing_arts: impersonating `{}`",
            escape(i)
        ));
    }
    Some(text)
}

fn source(ev: &EventSummary) -> Option<String> {
    let n = ev.enrichment.as_ref().map(|e| &e.network);
    let ip = n.and_then(|n| non_empty(&n.client_ip)).or_else(|| {
        ev.source_ips
            .first()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    })?;
    let mut text = format!("*Source*\n`{}`", escape(ip));
    let Some(n) = n else {
        return Some(text);
    };
    let place: Vec<&str> = [non_empty(&n.geo.city), non_empty(&n.geo.country)]
        .into_iter()
        .flatten()
        .collect();
    if !place.is_empty() {
        text.push_str(&format!(" · {}", escape(&place.join(", "))));
    }
    if let Some(asn) = n.geo.asn {
        text.push_str(&format!("\nAS{asn}"));
        if let Some(org) = non_empty(&n.geo.as_org) {
            text.push_str(&format!(" {}", escape(org)));
        }
    }
    if let Some(class) = non_empty(&n.class) {
        text.push_str(&format!("\n{}", escape(class)));
    }
    let g = &n.geo;
    let flags: Vec<&str> = [
        (g.tor_exit, "Tor exit"),
        (g.anonymous_vpn, "VPN"),
        (g.public_proxy, "public proxy"),
        (g.anonymous, "anonymiser"),
        (g.hosting, "hosting provider"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, label)| label)
    .collect();
    if !flags.is_empty() {
        text.push_str(&format!("\n:warning: {}", flags.join(", ")));
    }
    Some(text)
}

fn target(ev: &EventSummary) -> Option<String> {
    let o = ev.target();
    let mut what = non_empty(&o.resource)?.to_owned();
    if let Some(sub) = non_empty(&o.subresource) {
        what.push('/');
        what.push_str(sub);
    }
    if let Some(g) = non_empty(&o.api_group) {
        what.push('.');
        what.push_str(g);
    }
    let mut text = format!("*Target*\n`{}`", escape(&what));
    if let Some(name) = non_empty(&o.name) {
        text.push_str(&format!(" `{}`", escape(name)));
    }
    match non_empty(&o.namespace) {
        Some(ns) => text.push_str(&format!(" in `{}`", escape(ns))),
        None => text.push_str(" (cluster-wide)"),
    }
    let mut facts = Vec::new();
    if let Some(a) = ev.enrichment.as_ref().map(|e| &e.asset) {
        facts.push(format!("tier {}", a.tier.as_str()));
        if !a.data_class.is_empty() {
            facts.push(escape(&a.data_class));
        }
        if let Some(owner) = non_empty(&a.owner) {
            facts.push(format!("owner {}", escape(owner)));
        }
    }
    if !facts.is_empty() {
        text.push_str(&format!("\n{}", facts.join(" · ")));
    }
    Some(text)
}

fn request(ev: &EventSummary) -> Option<String> {
    let verb = Some(ev.verb.as_str()).filter(|v| !v.is_empty())?;
    let mut text = format!("*Request*\n`{}`", escape(verb));
    if let Some(code) = ev.code() {
        let icon = if (200..300).contains(&code) {
            ":heavy_check_mark:"
        } else {
            ":no_entry_sign:"
        };
        text.push_str(&format!(" → {code} {icon}"));
    }
    if !ev.request_uri.is_empty() {
        text.push_str(&format!("\n`{}`", truncate(&escape(&ev.request_uri), 300)));
    }
    if let Some(ua) = non_empty(&ev.user_agent) {
        text.push_str(&format!("\n{}", truncate(&escape(ua), 200)));
    }
    Some(text)
}

fn params(p: &Map<String, Value>) -> String {
    let parts: Vec<String> = p
        .iter()
        .map(|(k, v)| {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            format!("{}: {}", escape(k), escape(&v))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", truncate(&parts.join(", "), 500))
    }
}

/// The blocks of the requested responses: taken, awaiting approval (with buttons), or decided.
fn responses(v: &View<'_>) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, r) in v.responses.iter().enumerate() {
        if r.kind == "slack" {
            continue;
        }
        let id = approval_id(v.root_id, &r.kind, i);
        let head = format!("*{}*{}", escape(&r.kind), params(&r.params));
        let decided = v.decisions.and_then(|d| d.get(&id));
        let (status, buttons) = match (r.approval, decided) {
            (_, Some(line)) => (line.clone(), false),
            (false, None) => (":zap: runs automatically".to_owned(), false),
            (true, None) if !v.buttons => (
                ":hourglass: awaiting approval — no one can approve it here (respond.slack.approvals is not configured), so it expires unexecuted".to_owned(),
                false,
            ),
            (true, None) if id.chars().count() > MAX_BUTTON_VALUE => (
                ":hourglass: awaiting approval — the id is too long for a Slack button, so it expires unexecuted".to_owned(),
                false,
            ),
            (true, None) => (":hourglass: awaiting approval".to_owned(), true),
        };
        let mut sec = section(&format!("{head}\n{status}"));
        sec["block_id"] = json!(format!("resp.{i}"));
        out.push(sec);
        if buttons {
            out.push(json!({
                "type": "actions",
                "block_id": format!("act.{i}"),
                "elements": [
                    {"type": "button", "action_id": APPROVE, "style": "primary", "value": id,
                     "text": {"type": "plain_text", "text": "Approve"},
                     "confirm": {"title": {"type": "plain_text", "text": "Run this response?"},
                                 "text": {"type": "mrkdwn", "text": truncate(&format!("rampart will run {head}."), 300)},
                                 "confirm": {"type": "plain_text", "text": "Approve"},
                                 "deny": {"type": "plain_text", "text": "Cancel"}}},
                    {"type": "button", "action_id": REJECT, "style": "danger", "value": id,
                     "text": {"type": "plain_text", "text": "Reject"}}
                ]
            }));
        }
    }
    out
}

/// `link_template` with its placeholders filled in (URL-encoded).
pub fn link(template: &str, a: &Alert) -> String {
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let ev = a.event();
    template
        .replace("{audit_id}", &enc(&ev.audit_id))
        .replace("{cluster}", &enc(&a.cluster))
        .replace("{alert_id}", &enc(&a.id))
        .replace("{playbook}", &enc(&a.playbook))
        .replace("{namespace}", &enc(ev.namespace().unwrap_or("")))
        .replace("{user}", &enc(&ev.user.username))
}

fn footer(a: &Alert, v: &View<'_>) -> Value {
    let mut parts = Vec::new();
    if let Some(t) = v.link_template {
        let url = link(t, a);
        // A link Slack cannot show whole is left out rather than cut into a wrong one.
        if url.len() < MAX_FIELD - 200 && !url.contains(['<', '>', '|']) {
            parts.push(format!("<{url}|Open in log search>"));
        }
    }
    parts.push(format!("alert `{}`", escape(v.root_id)));
    context(&parts.join(" · "))
}

/// The fallback text of an alert (notifications, clients without blocks).
pub fn fallback(a: &Alert) -> String {
    let prefix = match a.kind {
        AlertKind::FollowUp => "Follow-up: ",
        AlertKind::HighRisk => "High risk: ",
        _ => "",
    };
    truncate(
        &format!(
            "[{}] {prefix}{} ({})",
            sev(a.severity).to_uppercase(),
            escape(&a.title),
            escape(&a.cluster)
        ),
        MAX_SECTION,
    )
}

/// The message for `a`.
pub fn render(a: &Alert, v: &View<'_>) -> Message {
    let mut blocks = Vec::new();
    if a.kind == AlertKind::FollowUp {
        blocks.push(section(&format!(
            ":repeat: *Follow-up* — {}",
            escape(&a.title)
        )));
        blocks.push(footer(a, v));
        return Message {
            text: fallback(a),
            blocks,
        };
    }
    blocks.push(
        json!({"type": "header", "text": {"type": "plain_text", "emoji": true,
        "text": truncate(&format!("{} {}", emoji(a.severity), a.title), MAX_HEADER)}}),
    );
    let mut summary = format!(
        "*Severity:* {}   *Score:* {}   *Cluster:* `{}`\n*Playbook:* `{}`",
        sev(a.severity),
        a.score,
        escape(&a.cluster),
        escape(&a.playbook)
    );
    if !a.mitre.is_empty() {
        summary.push_str(&format!("   *MITRE:* {}", escape(&a.mitre.join(", "))));
    }
    blocks.push(section(&summary));
    let ev = a.event();
    let fields: Vec<Value> = [actor(ev), source(ev), target(ev), request(ev)]
        .into_iter()
        .flatten()
        .map(|t| json!({"type": "mrkdwn", "text": truncate(&t, MAX_FIELD)}))
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let mut seen = format!(":eyes: {}", a.summary());
    if let Some(r) = a.risk {
        seen.push_str(&format!("   *Risk:* {r:.0}"));
    }
    blocks.push(section(&seen));
    if !a.context.is_empty() {
        let lines: Vec<String> = a
            .context
            .iter()
            .map(|(k, v)| {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                format!("• *{}:* {}", escape(k), escape(&v))
            })
            .collect();
        blocks.push(section(&lines.join("\n")));
    }
    if !a.contributions.is_empty() {
        let lines: Vec<String> = a
            .contributions
            .iter()
            .map(|c| {
                format!(
                    "• +{} `{}` {} ({})",
                    c.score,
                    escape(&c.playbook),
                    escape(&c.title),
                    crate::event::time::format_rfc3339(c.at)
                )
            })
            .collect();
        blocks.push(section(&format!("*What added up*\n{}", lines.join("\n"))));
    }
    blocks.push(footer(a, v));
    blocks.extend(responses(v));
    // The triage buttons stay last and are never cut.
    let tail = super::triage::card_blocks(a, v);
    let room = MAX_BLOCKS - tail.len();
    if blocks.len() > room {
        let left = blocks.len() - (room - 1);
        blocks.truncate(room - 1);
        blocks.push(context(&format!(
            "{TRUNCATED}: {left} more block(s); see `rampart actions`"
        )));
    }
    blocks.extend(tail);
    Message {
        text: fallback(a),
        blocks,
    }
}

/// `blocks` with the approval whose buttons carry `delivery_id` replaced by `line` (buttons removed); `None` if not found.
pub fn decided(blocks: &[Value], delivery_id: &str, line: &str) -> Option<Vec<Value>> {
    let act = blocks.iter().find(|b| {
        b["type"] == "actions"
            && b["elements"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["value"] == delivery_id))
    })?;
    let act_id = act["block_id"].as_str()?.to_owned();
    let resp_id = act_id.replacen("act.", "resp.", 1);
    Some(
        blocks
            .iter()
            .filter(|b| b["block_id"] != act_id.as_str())
            .map(|b| {
                if b["block_id"] != resp_id.as_str() {
                    return b.clone();
                }
                let old = b["text"]["text"].as_str().unwrap_or_default();
                let head = old.split_once('\n').map_or(old, |(h, _)| h);
                let mut nb = b.clone();
                nb["text"]["text"] = json!(truncate(&format!("{head}\n{line}"), MAX_SECTION));
                nb
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn escapes_and_truncates_with_a_visible_marker() {
        assert_eq!(escape("<!here> & <@U1>"), "&lt;!here&gt; &amp; &lt;@U1&gt;");
        let t = truncate(&"x".repeat(5000), 3000);
        assert_eq!(t.chars().count(), 3000);
        assert!(t.ends_with(TRUNCATED));
        // Never ends in half an entity.
        let long = format!("{}&amp;{}", "a".repeat(20), "tail".repeat(10));
        let e = truncate(&long, 23 + TRUNCATED.chars().count());
        assert_eq!(e, format!("{}{TRUNCATED}", "a".repeat(20)));
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn a_decision_replaces_the_buttons_of_that_response_only() {
        let r: Vec<ResponseRequest> = serde_json::from_value(json!([
            {"kind": "revoke_binding", "approval": true},
            {"kind": "webhook", "approval": true}
        ]))
        .unwrap();
        let a = super::super::route::tests::alert(Severity::High, "p", "ns", "team");
        let v = View {
            buttons: true,
            root_id: &a.id,
            responses: &r,
            ..View::default()
        };
        let m = render(&a, &v);
        let id0 = approval_id(&a.id, "revoke_binding", 0);
        let out = decided(&m.blocks, &id0, "approved by <@U1>").unwrap();
        assert_eq!(out.len(), m.blocks.len() - 1);
        let text = serde_json::to_string(&out).unwrap();
        assert!(text.contains("approved by <@U1>") && !text.contains(&format!("\"{id0}\"")));
        assert!(text.contains(&approval_id(&a.id, "webhook", 1)));
        assert!(decided(&out, &id0, "again").is_none());
    }
}
