//! The console's other pages: responses waiting for approval, suppressions, the tuning report and playbook health.

use std::fmt::Write;

use super::html::{self, esc};
use super::session::Session;
use super::Rendered;
use crate::state::model::wall_ms;
use crate::triage::api::Desk;

/// Most decided responses the approvals page recalls.
const RECENT: usize = 20;

/// Responses waiting for a decision, and the latest decided.
pub fn approvals(d: &Desk, s: &Session) -> Rendered {
    let outbox = d.state.outbox();
    let mut parked = outbox.parked()?;
    parked.sort_by_key(|p| std::cmp::Reverse(p.delivery.enqueued_ms));
    let mut h = String::from("<h1>Approvals</h1>");
    if parked.is_empty() {
        h.push_str(
            "<p class=\"muted\" id=\"none-waiting\">No response is waiting for approval.</p>",
        );
    } else {
        h.push_str("<table id=\"parked\"><tr><th>Alert</th><th>Response</th><th>Responder</th><th>Principal</th><th>Waiting since</th><th>Expires</th><th></th></tr>");
        for p in &parked {
            let dl = &p.delivery;
            let what = dl
                .response
                .as_ref()
                .map(|r| format!("{} {}", r.kind, serde_json::Value::Object(r.params.clone())))
                .unwrap_or_default();
            let buttons = if html::can_act(s) {
                format!(
                    "{} {}",
                    html::button(
                        s,
                        "/console/decide",
                        &[("delivery", &dl.id), ("decision", "approve")],
                        "Approve",
                        "go"
                    ),
                    html::button(
                        s,
                        "/console/decide",
                        &[("delivery", &dl.id), ("decision", "reject")],
                        "Reject",
                        "bad"
                    )
                )
            } else {
                "<span class=\"muted\">approvers decide</span>".into()
            };
            let _ = write!(
                h,
                "<tr data-delivery=\"{}\"><td>{} <a href=\"{}\">{}</a><br><span class=\"muted\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{buttons}</td></tr>",
                esc(&dl.id),
                html::severity(dl.alert.severity),
                esc(&html::alert_href(&dl.alert.id)),
                esc(&dl.alert.title),
                esc(&dl.id),
                esc(&what),
                esc(&dl.responder),
                esc(super::pages::principal(&dl.alert)),
                html::time_ms(dl.enqueued_ms),
                html::time_ms(p.expires_ms),
            );
        }
        h.push_str("</table>");
    }
    // The latest decisions, with what became of each response.
    let mut decided = Vec::new();
    for j in outbox.journal_entries()?.into_iter().take(500) {
        if decided.len() >= RECENT {
            break;
        }
        if let Some(dec) = outbox.decision(&j.id)? {
            decided.push((j, dec));
        }
    }
    h.push_str("<h2>Recently decided</h2>");
    if decided.is_empty() {
        h.push_str("<p class=\"muted\">No decisions yet.</p>");
        return Ok(("Approvals".into(), h));
    }
    h.push_str("<table id=\"decided\"><tr><th>Delivery</th><th>Decision</th><th>By</th><th>At</th><th>Status now</th><th>Detail</th></tr>");
    for (j, dec) in decided {
        let _ = write!(
            h,
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&html::alert_href(&j.alert)),
            esc(&j.id),
            if dec.approve { "approved" } else { "rejected" },
            esc(&dec.by),
            html::time_ms(dec.at_ms),
            j.status.as_str(),
            esc(&j.detail)
        );
    }
    h.push_str("</table>");
    Ok(("Approvals".into(), h))
}

/// Every suppression still listed, with the form to create one.
pub fn suppressions(d: &Desk, s: &Session) -> Rendered {
    let now = wall_ms();
    let list = d.triage.suppressions();
    let mut h = String::from("<h1>Suppressions</h1>");
    if list.is_empty() {
        h.push_str("<p class=\"muted\">No suppressions.</p>");
    } else {
        h.push_str("<table id=\"suppressions\"><tr><th>Id</th><th>State</th><th>Playbook</th><th>Scope</th><th>Author</th><th>Reason</th><th>Created</th><th>Expires</th><th></th></tr>");
        for x in list.iter() {
            let state = x.state(now);
            let end = match (&x.revoked_by, x.revoked_ms) {
                (Some(by), Some(at)) => {
                    format!(
                        "<br><span class=\"muted\">revoked by {} at {}</span>",
                        esc(by),
                        html::time_ms(at)
                    )
                }
                _ => String::new(),
            };
            let revoke = if state == "active" && html::can_act(s) {
                html::button(s, "/console/revoke", &[("id", &x.id)], "Revoke", "bad")
            } else {
                String::new()
            };
            let _ = write!(
                h,
                "<tr id=\"{}\"><td>{}</td><td><span class=\"badge\">{state}</span>{end}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{revoke}</td></tr>",
                esc(&x.id),
                esc(&x.id),
                esc(x.playbook.as_deref().unwrap_or("every playbook")),
                esc(&x.scope.describe()),
                esc(&x.author),
                esc(&x.reason),
                html::time_ms(x.created_ms),
                html::time_ms(x.expires_ms),
            );
        }
        h.push_str("</table>");
    }
    if html::can_act(s) {
        let playbooks: Vec<(String, String)> =
            std::iter::once((String::new(), "every playbook".to_owned()))
                .chain(
                    d.playbooks
                        .iter()
                        .flat_map(|p| {
                            p.current()
                                .playbooks()
                                .iter()
                                .map(|p| p.id.clone())
                                .collect::<Vec<_>>()
                        })
                        .map(|id| (id.clone(), id)),
                )
                .collect();
        let scopes: Vec<(String, String)> = ["principal", "namespace", "network"]
            .iter()
            .map(|x| ((*x).to_owned(), (*x).to_owned()))
            .collect();
        let _ = write!(
            h,
            "<h2>New suppression</h2><form class=\"act\" method=\"post\" action=\"/console/suppress\" id=\"new-suppression\">{}{}{}\
<label>Principal, namespace or address/CIDR<input name=\"value\" required size=\"30\"></label>\
<label>For (e.g. 24h, 7d)<input name=\"for\" value=\"7d\" size=\"6\"></label>\
<label>Reason<input name=\"reason\" required size=\"30\"></label><button class=\"go\">Suppress</button></form>",
            html::csrf_field(s),
            html::select("playbook", "Playbook", &playbooks, ""),
            html::select("scope", "Scope", &scopes, "principal"),
        );
    }
    Ok(("Suppressions".into(), h))
}

/// The tuning report, with an Apply button per suggestion.
pub fn tuning(d: &Desk, s: &Session) -> Rendered {
    let r = d.report()?;
    let mut h = String::from("<h1>Tuning</h1><h2>Playbooks</h2>");
    h.push_str("<table id=\"tuning\"><tr><th>Playbook</th><th class=\"num\">Alerts</th><th class=\"num\">Fires</th><th class=\"num\">Dedup keys</th><th class=\"num\">True pos.</th><th class=\"num\">Benign</th><th class=\"num\">False pos.</th><th class=\"num\">Unmarked</th><th class=\"num\">Precision</th><th class=\"num\">Suppressed</th><th class=\"num\">Active suppressions</th></tr>");
    for p in &r.playbooks {
        let _ = write!(
            h,
            "<tr><td><a href=\"/console/alerts?playbook={}\">{}</a></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&html::url(&p.playbook)),
            esc(&p.playbook),
            p.alerts,
            p.fires,
            p.dedup_keys,
            p.true_positive,
            p.benign,
            p.false_positive,
            p.unmarked,
            p.precision.map(|x| format!("{:.0}%", x * 100.0)).unwrap_or_else(|| "—".into()),
            p.suppressed,
            p.active_suppressions
        );
    }
    h.push_str("</table><h2>Noisiest principals</h2><table id=\"principals\"><tr><th>Principal</th><th class=\"num\">Alerts</th><th class=\"num\">False pos.</th><th>Playbooks</th></tr>");
    for p in &r.principals {
        let _ = write!(
            h,
            "<tr><td><a href=\"/console/alerts?principal={}\">{}</a></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&html::url(&p.principal)),
            esc(&p.principal),
            p.alerts,
            p.false_positive,
            esc(&p.playbooks.join(", "))
        );
    }
    h.push_str("</table><h2>Suggestions</h2>");
    if r.suggestions.is_empty() {
        h.push_str("<p class=\"muted\">No suggestions: they come from alerts marked false positive (an entry of the playbook's allowlists, or an exception for the playbook and the principal).</p>");
    } else {
        h.push_str("<table id=\"suggestions\"><tr><th>Playbook</th><th>Add</th><th>To list</th><th>Field</th><th class=\"num\">False positives silenced</th><th>Also silences</th><th>File</th><th></th></tr>");
        for x in &r.suggestions {
            let apply = if html::can_act(s) {
                html::button(
                    s,
                    "/console/apply",
                    &[("list", &x.list), ("value", &x.value)],
                    "Apply",
                    "go",
                )
            } else {
                String::new()
            };
            let _ = write!(
                h,
                "<tr data-key=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{apply}</td></tr>",
                esc(&x.key()),
                esc(&x.playbook),
                esc(&x.value),
                esc(&x.list),
                esc(&x.field),
                x.alerts.len(),
                esc(&x.also_silences.join(", ")),
                esc(&x.file.display().to_string()),
            );
        }
        h.push_str("</table>");
    }
    if !r.without_allowlist.is_empty() {
        let _ = write!(
            h,
            "<p>False positives with nothing to suggest (no principal on the event, no allowlist in <code>meta().on.where</code>): {}</p>",
            esc(&r.without_allowlist.join(", "))
        );
    }
    Ok(("Tuning".into(), h))
}

/// Playbooks loaded, the last reload's errors, faults per playbook.
pub fn health(d: &Desk, _s: &Session) -> Rendered {
    let mut h = String::from("<h1>Health</h1>");
    let Some(p) = &d.playbooks else {
        h.push_str("<p>No playbooks are configured (<code>playbooks.dir</code>).</p>");
        return Ok(("Health".into(), h));
    };
    let set = p.current();
    let faults = crate::internal_events::playbook_faults();
    match p.rejected() {
        Some((at, lines)) => {
            let _ = write!(
                h,
                "<h2>Reload errors</h2><div class=\"note err\" id=\"rejected\">The edit of {} was refused; the previous set keeps running.<ul>",
                html::time_ms(at)
            );
            for l in &lines {
                let _ = write!(h, "<li><code>{}</code></li>", esc(l));
            }
            h.push_str("</ul></div>");
        }
        None => h.push_str("<p id=\"rejected\">The last reload succeeded (no errors).</p>"),
    }
    let _ = write!(
        h,
        "<h2>Playbooks loaded: <span id=\"loaded\">{}</span></h2><table id=\"playbooks\"><tr><th>Id</th><th>Severity</th><th>Title</th><th class=\"num\">Faults</th><th>File</th></tr>",
        set.len()
    );
    for pb in set.playbooks() {
        let n = faults.get(&pb.id).copied().unwrap_or(0);
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&pb.id),
            html::severity(pb.severity),
            esc(&pb.title),
            if n > 0 {
                format!("<strong>{n}</strong>")
            } else {
                "0".into()
            },
            esc(&pb.file.display().to_string())
        );
    }
    h.push_str("</table><p class=\"muted\">Faults: limits broken or errors thrown since rampart started (<code>rampart_playbook_faults_total</code>).</p>");
    Ok(("Health".into(), h))
}
