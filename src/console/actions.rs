//! What the console's forms do: mark an alert, snooze its group, suppress, revoke, decide on a waiting response, apply a tuning suggestion — each as the signed-in user, each answered with the page that shows the result.

use std::collections::HashMap;

use super::html::alert_href;
use super::{ConsoleError, Done};
use crate::state::approvals::DecideOutcome;
use crate::state::model::{wall_ms, Decision};
use crate::triage::access::User;
use crate::triage::api::Desk;
use crate::triage::{NewSuppression, Scope, TriageError, Verdict};

type Form = HashMap<String, String>;

fn field<'a>(f: &'a Form, k: &str) -> &'a str {
    f.get(k).map(|v| v.trim()).unwrap_or_default()
}

/// A user's mistake becomes a sentence on the page; a failing store stays an error.
fn said(to: String, r: Result<String, TriageError>) -> Result<Done, ConsoleError> {
    match r {
        Ok(message) => Ok(Done {
            to,
            message,
            error: false,
        }),
        Err(TriageError::State(e)) => Err(e.into()),
        Err(e) => Ok(Done {
            to,
            message: e.to_string(),
            error: true,
        }),
    }
}

pub fn mark(d: &Desk, u: &User, f: &Form) -> Result<Done, ConsoleError> {
    let id = field(f, "alert");
    let Some(v) = Verdict::parse(field(f, "outcome")) else {
        return Err(ConsoleError::BadRequest(
            "outcome: use true_positive, benign or false_positive".into(),
        ));
    };
    let r = d
        .triage
        .mark(id, v, field(f, "note"), &u.name)
        .map(|o| format!("{} marked {} by {}", o.alert, o.verdict.label(), o.by));
    said(alert_href(id), r)
}

pub fn snooze(d: &Desk, u: &User, f: &Form) -> Result<Done, ConsoleError> {
    let id = field(f, "alert");
    let a = d.triage.alert(id)?;
    let reason = match field(f, "reason") {
        "" => "snoozed from the console",
        r => r,
    };
    let r = d
        .triage
        .suppress(
            NewSuppression {
                playbook: Some(a.playbook.clone()),
                scope: Scope::Group {
                    cluster: a.cluster.clone(),
                    dedup: a.dedup.clone(),
                },
                reason: reason.to_owned(),
                for_secs: 86_400,
            },
            &u.name,
        )
        .map(|s| {
            format!(
                "{}: {} snoozed for {} until {}",
                s.id,
                s.scope.describe(),
                a.playbook,
                super::html::time_ms(s.expires_ms)
            )
        });
    said(alert_href(id), r)
}

/// From an alert's page (`alert`, `scope`, `days`) or the Suppressions page (`playbook`, `scope`, `value`, `for`).
pub fn suppress(d: &Desk, u: &User, f: &Form) -> Result<Done, ConsoleError> {
    let scope_kind = field(f, "scope");
    let (to, playbook, value, secs) = if f.contains_key("alert") {
        let id = field(f, "alert");
        let a = d.triage.alert(id)?;
        let ev = a.event();
        let value = match scope_kind {
            "principal" => ev.user.username.clone(),
            "namespace" => ev
                .object_ref
                .as_ref()
                .and_then(|o| o.namespace.clone())
                .unwrap_or_default(),
            "network" => ev.source_ips.first().cloned().unwrap_or_default(),
            _ => String::new(),
        };
        let days: u64 = field(f, "days")
            .parse()
            .ok()
            .filter(|d| (1..=365).contains(d))
            .ok_or_else(|| ConsoleError::BadRequest("days: a number from 1 to 365".into()))?;
        (
            alert_href(id),
            Some(a.playbook.clone()),
            value,
            days * 86_400,
        )
    } else {
        let secs = humantime::parse_duration(field(f, "for"))
            .map_err(|e| ConsoleError::BadRequest(format!("for: {e} (e.g. 24h, 7d)")))?
            .as_secs();
        let pb = Some(field(f, "playbook").to_owned()).filter(|p| !p.is_empty());
        (
            "/console/suppressions".to_owned(),
            pb,
            field(f, "value").to_owned(),
            secs,
        )
    };
    let scope = match scope_kind {
        "principal" => Scope::Principal { name: value },
        "namespace" => Scope::Namespace { name: value },
        "network" => Scope::Network { cidr: value },
        other => {
            return Err(ConsoleError::BadRequest(format!(
                "scope {other:?}: use principal, namespace or network"
            )))
        }
    };
    let r = d
        .triage
        .suppress(
            NewSuppression {
                playbook,
                scope,
                reason: field(f, "reason").to_owned(),
                for_secs: secs,
            },
            &u.name,
        )
        .map(|s| {
            format!(
                "{}: {} suppressed for {} until {}",
                s.id,
                s.scope.describe(),
                s.playbook.as_deref().unwrap_or("every playbook"),
                super::html::time_ms(s.expires_ms)
            )
        });
    said(to, r)
}

pub fn revoke(d: &Desk, u: &User, f: &Form) -> Result<Done, ConsoleError> {
    let r = d
        .triage
        .revoke(field(f, "id"), &u.name)
        .map(|s| format!("{} ({}) revoked by {}", s.id, s.scope.describe(), u.name));
    said("/console/suppressions".into(), r)
}

/// Approve or reject a waiting response: the first decision wins, as with Slack's buttons.
pub fn decide(d: &Desk, u: &User, f: &Form) -> Result<Done, ConsoleError> {
    let id = field(f, "delivery");
    let approve = match field(f, "decision") {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(ConsoleError::BadRequest(format!(
                "decision {other:?}: approve or reject"
            )))
        }
    };
    let decision = Decision {
        approve,
        by: u.name.clone(),
        at_ms: wall_ms(),
    };
    let now = i64::try_from(wall_ms() / 1000).unwrap_or(i64::MAX);
    let keep_until = d.state.now().unwrap_or(now) + d.state.settings().retention;
    let out = d.state.outbox().decide(id, decision, keep_until)?;
    let (message, error) = match out {
        DecideOutcome::Approved => (format!("{id} approved by {}; it runs now", u.name), false),
        DecideOutcome::Rejected => (
            format!("{id} rejected by {}; it will not run", u.name),
            false,
        ),
        DecideOutcome::AlreadyDecided(first) => (
            format!(
                "{id} was already {} by {} at {}; this decision changed nothing",
                if first.approve {
                    "approved"
                } else {
                    "rejected"
                },
                first.by,
                super::html::time_ms(first.at_ms)
            ),
            true,
        ),
        DecideOutcome::Expired => (
            format!("{id}: no one decided in time; it expired and did not run"),
            true,
        ),
        DecideOutcome::Unknown => (format!("no response waits under {id:?}"), true),
    };
    tracing::info!(delivery = id, user = %u.name, approve, result = %message, "console decision");
    Ok(Done {
        to: "/console/approvals".into(),
        message,
        error,
    })
}

pub fn apply(d: &Desk, u: &User, f: &Form) -> Result<Done, ConsoleError> {
    let r = d.apply(field(f, "list"), field(f, "value"), &u.name);
    said("/console/tuning".into(), r)
}
