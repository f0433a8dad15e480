//! The alerts list (with its filters) and an alert's page (event, enrichment, context, related alerts, journal, outcome, and the forms to mark, snooze and suppress).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;

use super::html::{self, esc};
use super::session::Session;
use super::{ConsoleError, Rendered};
use crate::model::Severity;
use crate::state::model::{wall_ms, Alert};
use crate::triage::{Outcome, Verdict};

/// Most rows the list shows.
const MAX_ROWS: usize = 500;

/// The time ranges the list offers (name, seconds; 0 = all).
const RANGES: [(&str, &str, i64); 4] = [
    ("1h", "last hour", 3600),
    ("24h", "last 24 hours", 86_400),
    ("7d", "last 7 days", 7 * 86_400),
    ("all", "all time", 0),
];

const SEVERITIES: [(&str, Severity); 5] = [
    ("info", Severity::Info),
    ("low", Severity::Low),
    ("medium", Severity::Medium),
    ("high", Severity::High),
    ("critical", Severity::Critical),
];

/// The filters, as the query string gives them.
#[derive(Debug, Default)]
struct Filters {
    severity: String,
    playbook: String,
    cluster: String,
    principal: String,
    outcome: String,
    range: String,
}

impl Filters {
    fn from(q: &HashMap<String, String>) -> Self {
        let get = |k: &str| q.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
        Self {
            severity: get("severity"),
            playbook: get("playbook"),
            cluster: get("cluster"),
            principal: get("principal"),
            outcome: get("outcome"),
            range: get("range"),
        }
    }

    fn keeps(&self, a: &Alert, outcome: Option<&Outcome>, now: i64) -> bool {
        if let Some((_, min)) = SEVERITIES.iter().find(|(n, _)| *n == self.severity) {
            if a.severity < *min {
                return false;
            }
        }
        if !self.playbook.is_empty() && a.playbook != self.playbook {
            return false;
        }
        if !self.cluster.is_empty() && a.cluster != self.cluster {
            return false;
        }
        if !self.principal.is_empty()
            && !principal(a)
                .to_lowercase()
                .contains(&self.principal.to_lowercase())
        {
            return false;
        }
        match self.outcome.as_str() {
            "" => {}
            "unmarked" => {
                if outcome.is_some() {
                    return false;
                }
            }
            v => {
                if outcome.map(|o| o.verdict) != Verdict::parse(v) {
                    return false;
                }
            }
        }
        if let Some((_, _, secs)) = RANGES.iter().find(|(n, _, _)| *n == self.range) {
            if *secs > 0 && a.last_seen < now - secs {
                return false;
            }
        }
        true
    }
}

/// The principal an alert is about: its event's user (or, for high-risk alerts, the entity in its dedup key).
pub(crate) fn principal(a: &Alert) -> &str {
    let u = &a.event().user.username;
    if u.is_empty() {
        &a.dedup
    } else {
        u
    }
}

/// The outcome badge.
pub(crate) fn outcome_badge(o: Option<&Outcome>) -> String {
    match o {
        None => "<span class=\"muted\">unmarked</span>".into(),
        Some(o) => {
            let class = match o.verdict {
                Verdict::TruePositive => "tp",
                Verdict::Benign => "benign",
                Verdict::FalsePositive => "fp",
            };
            format!(
                "<span class=\"badge {class}\" title=\"by {}\">{}</span>",
                esc(&o.by),
                o.verdict.label()
            )
        }
    }
}

fn suppressed_badge(a: &Alert) -> String {
    match &a.suppressed {
        Some(s) => format!(
            " <span class=\"badge sup\" title=\"silenced by {}\">suppressed</span>",
            esc(s)
        ),
        None => String::new(),
    }
}

fn options(values: impl IntoIterator<Item = String>, all: &str) -> Vec<(String, String)> {
    std::iter::once((String::new(), all.to_owned()))
        .chain(values.into_iter().map(|v| (v.clone(), v)))
        .collect()
}

/// The alerts list.
pub fn alerts(d: &crate::triage::api::Desk, _s: &Session, q: &HashMap<String, String>) -> Rendered {
    let all = d.state.alerts()?;
    let outcomes = d.triage.outcomes()?;
    let f = Filters::from(q);
    let now = i64::try_from(wall_ms() / 1000).unwrap_or(i64::MAX);
    let playbooks: BTreeSet<String> = all.iter().map(|a| a.playbook.clone()).collect();
    let clusters: BTreeSet<String> = all.iter().map(|a| a.cluster.clone()).collect();
    let mut h = String::from("<h1>Alerts</h1><form class=\"filters\" method=\"get\" action=\"/console/alerts\" id=\"filters\">");
    let sev: Vec<(String, String)> = std::iter::once((String::new(), "any".to_owned()))
        .chain(
            SEVERITIES
                .iter()
                .map(|(n, _)| ((*n).to_owned(), format!("{n} and above"))),
        )
        .collect();
    h.push_str(&html::select("severity", "Severity", &sev, &f.severity));
    h.push_str(&html::select(
        "playbook",
        "Playbook",
        &options(playbooks, "any"),
        &f.playbook,
    ));
    h.push_str(&html::select(
        "cluster",
        "Cluster",
        &options(clusters, "any"),
        &f.cluster,
    ));
    let _ = write!(
        h,
        "<label>Principal<input name=\"principal\" value=\"{}\" placeholder=\"user or service account\"></label>",
        esc(&f.principal)
    );
    let outs: Vec<(String, String)> = [("", "any"), ("unmarked", "unmarked")]
        .iter()
        .map(|(v, l)| ((*v).to_owned(), (*l).to_owned()))
        .chain(
            Verdict::ALL
                .iter()
                .map(|v| (v.as_str().to_owned(), v.label().to_owned())),
        )
        .collect();
    h.push_str(&html::select("outcome", "Outcome", &outs, &f.outcome));
    let ranges: Vec<(String, String)> = RANGES
        .iter()
        .map(|(v, l, _)| ((*v).to_owned(), (*l).to_owned()))
        .collect();
    let range = if f.range.is_empty() { "all" } else { &f.range };
    h.push_str(&html::select("range", "Time", &ranges, range));
    h.push_str("<button class=\"go\" id=\"apply-filters\">Filter</button> <a href=\"/console/alerts\">clear</a></form>");

    let shown: Vec<&Alert> = all
        .iter()
        .filter(|a| f.keeps(a, outcomes.get(a.root()), now))
        .collect();
    let _ = write!(
        h,
        "<p class=\"muted\" id=\"count\">{} of {} alerts{}</p>",
        shown.len(),
        all.len(),
        if shown.len() > MAX_ROWS {
            format!(" (the newest {MAX_ROWS} shown)")
        } else {
            String::new()
        }
    );
    h.push_str("<table id=\"alerts\"><tr><th>Last seen</th><th>Severity</th><th>Alert</th><th>Playbook</th><th>Cluster</th><th>Principal</th><th class=\"num\">Count</th><th>Outcome</th></tr>");
    for a in shown.iter().take(MAX_ROWS) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td><a href=\"{}\">{}</a>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            html::time(a.last_seen),
            html::severity(a.severity),
            esc(&html::alert_href(&a.id)),
            esc(&a.title),
            if a.kind == crate::state::model::AlertKind::Alert {
                String::new()
            } else {
                format!(" <span class=\"badge\">{}</span>", a.kind.as_str())
            },
            suppressed_badge(a),
            esc(&a.playbook),
            esc(&a.cluster),
            esc(principal(a)),
            a.count,
            outcome_badge(outcomes.get(a.root()))
        );
    }
    h.push_str("</table>");
    Ok(("Alerts".into(), h))
}

/// One alert's page.
pub fn alert(d: &crate::triage::api::Desk, s: &Session, id: &str) -> Rendered {
    let all = d.state.alerts()?;
    let Some(a) = all.iter().find(|a| a.id == id) else {
        return Err(ConsoleError::NotFound(format!("alert {id:?}")));
    };
    let outcome = d.triage.outcome(a.root())?;
    let ev = a.event();
    let mut h = format!(
        "<h1 id=\"title\">{} {}{}</h1>",
        html::severity(a.severity),
        esc(&a.title),
        suppressed_badge(a)
    );
    h.push_str("<dl id=\"facts\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(h, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    };
    fact("id", esc(&a.id));
    fact("playbook", esc(&a.playbook));
    fact("kind", a.kind.as_str().into());
    if let Some(t) = a.thread.as_deref().filter(|t| *t != a.id) {
        fact(
            "thread",
            format!("<a href=\"{}\">{}</a>", esc(&html::alert_href(t)), esc(t)),
        );
    }
    fact("cluster", esc(&a.cluster));
    fact("dedup group", esc(&a.dedup));
    fact("count", esc(&a.summary()));
    fact("score", a.score.to_string());
    if let Some(r) = a.risk {
        fact("actor risk", format!("{r:.1}"));
    }
    if !a.mitre.is_empty() {
        fact("MITRE ATT&amp;CK", esc(&a.mitre.join(", ")));
    }
    if let Some(sup) = &a.suppressed {
        fact(
            "suppressed by",
            format!(
                "<a href=\"/console/suppressions#{}\">{}</a> (stored, delivered to no responder)",
                esc(sup),
                esc(sup)
            ),
        );
    }
    if a.dry_run {
        fact(
            "dry run",
            "responders only record what they would do".into(),
        );
    }
    fact("outcome", {
        let mut o = outcome_badge(outcome.as_ref());
        if let Some(x) = &outcome {
            let _ = write!(
                o,
                " by {} at {}{}",
                esc(&x.by),
                html::time_ms(x.at_ms),
                if x.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", esc(&x.note))
                }
            );
        }
        o
    });
    h.push_str("</dl>");

    if html::can_act(s) {
        h.push_str(&forms(s, a));
    }

    h.push_str("<h2>Event</h2><dl id=\"event\">");
    let mut row = |k: &str, v: &str| {
        if !v.is_empty() {
            let _ = write!(h, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
        }
    };
    row("user", &ev.user.username);
    row("groups", &ev.user.groups.join(", "));
    if let Some(u) = &ev.impersonated_user {
        row("impersonating", &u.username);
    }
    row("verb", &ev.verb);
    row("request URI", &ev.request_uri);
    if let Some(o) = &ev.object_ref {
        let parts: Vec<&str> = [
            &o.api_group,
            &o.resource,
            &o.subresource,
            &o.namespace,
            &o.name,
        ]
        .iter()
        .filter_map(|x| x.as_deref())
        .filter(|x| !x.is_empty())
        .collect();
        row("object", &parts.join(" / "));
    }
    row("source IPs", &ev.source_ips.join(", "));
    row("user agent", ev.user_agent.as_deref().unwrap_or_default());
    if let Some(r) = &ev.response_status {
        row(
            "response code",
            &r.code.map(|c| c.to_string()).unwrap_or_default(),
        );
    }
    row("audit ID", &ev.audit_id);
    row(
        "received",
        ev.request_received_timestamp.as_deref().unwrap_or_default(),
    );
    h.push_str("</dl>");
    if let Some(e) = &ev.enrichment {
        h.push_str("<h2>Enrichment</h2><div id=\"enrichment\">");
        h.push_str(&html::value(&serde_json::to_value(e).unwrap_or_default()));
        h.push_str("</div>");
    }
    if !a.context.is_empty() {
        h.push_str("<h2>Context</h2>");
        h.push_str(&html::value(&serde_json::Value::Object(a.context.clone())));
    }
    if !a.contributions.is_empty() {
        h.push_str("<h2>What added up</h2><table><tr><th>Alert</th><th>Playbook</th><th class=\"num\">Score</th><th>At</th></tr>");
        for c in &a.contributions {
            let _ = write!(
                h,
                "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&html::alert_href(&c.alert)),
                esc(&c.title),
                esc(&c.playbook),
                c.score,
                html::time(c.at)
            );
        }
        h.push_str("</table>");
    }
    if !a.responses.is_empty() {
        h.push_str("<h2>Responses requested</h2><ul>");
        for r in &a.responses {
            let _ = write!(
                h,
                "<li>{}{} {}</li>",
                esc(&r.kind),
                if r.approval { " (needs approval)" } else { "" },
                esc(&serde_json::Value::Object(r.params.clone()).to_string())
            );
        }
        h.push_str("</ul>");
    }
    h.push_str(&journal(d, a, &all)?);
    h.push_str(&related(a, &all));
    h.push_str("<h2>The stored alert</h2><details><summary>JSON</summary>");
    h.push_str(&html::json_block(
        &serde_json::to_value(a).unwrap_or_default(),
    ));
    h.push_str("</details>");
    Ok((a.title.clone(), h))
}

/// The forms an approver gets: mark, snooze the group, suppress the playbook for a scope.
fn forms(s: &Session, a: &Alert) -> String {
    let ev = a.event();
    let mut h = format!(
        "<h2>Triage</h2><form class=\"act\" method=\"post\" action=\"/console/mark\" id=\"mark\">{}\
<input type=\"hidden\" name=\"alert\" value=\"{}\">",
        html::csrf_field(s),
        esc(&a.id)
    );
    let verdicts: Vec<(String, String)> = Verdict::ALL
        .iter()
        .map(|v| (v.as_str().to_owned(), v.label().to_owned()))
        .collect();
    h.push_str(&html::select("outcome", "Outcome", &verdicts, ""));
    h.push_str("<label>Note<input name=\"note\" size=\"40\"></label><button class=\"go\">Mark</button></form>");
    let _ = write!(
        h,
        "<form class=\"act\" method=\"post\" action=\"/console/snooze\" id=\"snooze\">{}\
<input type=\"hidden\" name=\"alert\" value=\"{}\">\
<label>Reason<input name=\"reason\" size=\"40\" value=\"snoozed from the console\"></label>\
<button>Snooze this group for 24h</button></form>",
        html::csrf_field(s),
        esc(&a.id)
    );
    let mut scopes = Vec::new();
    if !ev.user.username.is_empty() {
        scopes.push((
            "principal".to_owned(),
            format!("principal {}", ev.user.username),
        ));
    }
    if let Some(ns) = ev.object_ref.as_ref().and_then(|o| o.namespace.as_deref()) {
        if !ns.is_empty() {
            scopes.push(("namespace".to_owned(), format!("namespace {ns}")));
        }
    }
    if let Some(ip) = ev.source_ips.first() {
        scopes.push(("network".to_owned(), format!("network {ip}")));
    }
    if !scopes.is_empty() {
        let _ = write!(
            h,
            "<form class=\"act\" method=\"post\" action=\"/console/suppress\" id=\"suppress\">{}\
<input type=\"hidden\" name=\"alert\" value=\"{}\"><span>Suppress {} for</span>",
            html::csrf_field(s),
            esc(&a.id),
            esc(&a.playbook)
        );
        h.push_str(&html::select("scope", "Scope", &scopes, ""));
        h.push_str("<label>Days<input type=\"number\" name=\"days\" value=\"7\" min=\"1\" max=\"365\"></label>\
<label>Reason<input name=\"reason\" size=\"30\" required></label><button>Suppress</button></form>");
    }
    h
}

/// The journal entries of the alert's thread.
fn journal(d: &crate::triage::api::Desk, a: &Alert, all: &[Alert]) -> Result<String, ConsoleError> {
    let thread: BTreeSet<&str> = all
        .iter()
        .filter(|x| x.root() == a.root())
        .map(|x| x.id.as_str())
        .chain([a.id.as_str(), a.root()])
        .collect();
    let entries: Vec<_> = d
        .state
        .outbox()
        .journal_entries()?
        .into_iter()
        .filter(|j| thread.contains(j.alert.as_str()))
        .collect();
    let parked: BTreeSet<String> = d
        .state
        .outbox()
        .parked()?
        .into_iter()
        .map(|p| p.delivery.id)
        .collect();
    let mut h = String::from("<h2>Journal</h2>");
    if entries.is_empty() {
        h.push_str("<p class=\"muted\">Nothing delivered yet.</p>");
        return Ok(h);
    }
    h.push_str("<table id=\"journal\"><tr><th>At</th><th>Responder</th><th>Status</th><th>Detail</th><th>Delivery</th></tr>");
    for j in entries {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            html::time_ms(j.at_ms),
            esc(&j.responder),
            j.status.as_str(),
            esc(&j.detail),
            esc(&j.id),
            if parked.contains(&j.id) {
                " <a href=\"/console/approvals\">decide</a>"
            } else {
                ""
            }
        );
    }
    h.push_str("</table>");
    Ok(h)
}

/// Which alerts a related-alerts table keeps.
type Related<'a> = Box<dyn Fn(&Alert) -> bool + 'a>;

/// Alerts by the same principal, and in the same dedup group.
fn related(a: &Alert, all: &[Alert]) -> String {
    let mut h = String::new();
    let who = principal(a);
    let groups: [(&str, &str, Related<'_>); 2] = [
        (
            "same-group",
            "In the same dedup group",
            Box::new(|x: &Alert| {
                x.cluster == a.cluster && x.dedup == a.dedup && x.playbook == a.playbook
            }),
        ),
        (
            "same-principal",
            "By the same principal",
            Box::new(move |x: &Alert| !who.is_empty() && principal(x) == who),
        ),
    ];
    for (id, title, keep) in groups {
        let rel: Vec<&Alert> = all
            .iter()
            .filter(|x| x.id != a.id && keep(x))
            .take(25)
            .collect();
        let _ = write!(h, "<h2>{title}</h2>");
        if rel.is_empty() {
            h.push_str("<p class=\"muted\">None.</p>");
            continue;
        }
        let _ = write!(h, "<table id=\"{id}\"><tr><th>Last seen</th><th>Severity</th><th>Alert</th><th>Playbook</th><th class=\"num\">Count</th></tr>");
        for x in rel {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td><a href=\"{}\">{}</a>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                html::time(x.last_seen),
                html::severity(x.severity),
                esc(&html::alert_href(&x.id)),
                esc(&x.title),
                suppressed_badge(x),
                esc(&x.playbook),
                x.count
            );
        }
        h.push_str("</table>");
    }
    h
}
