//! Which channels an alert goes to: every matching route (else the default channel), above the minimum severity, plus any channel the playbook asked for.

use serde_json::Value;

use super::config::{Route, SlackConfig};
use crate::state::model::Alert;

/// Where an alert goes, or why nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    Channels(Vec<String>),
    Nowhere(String),
}

/// The namespace of the object the alert's event acted on.
pub fn namespace(alert: &Alert) -> Option<&str> {
    alert.event().namespace()
}

/// The actor's team, as the identity enrichment found it.
pub fn team(alert: &Alert) -> Option<&str> {
    let e = alert.event().enrichment.as_ref()?;
    e.identity.team.as_deref().filter(|s| !s.is_empty())
}

/// Channels the playbook requested with `slack("#channel")`.
pub fn requested(alert: &Alert) -> Vec<String> {
    alert
        .responses
        .iter()
        .filter(|r| r.kind == "slack")
        .filter_map(|r| r.params.get("channel").and_then(Value::as_str))
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_owned())
        .collect()
}

fn matches(r: &Route, alert: &Alert) -> bool {
    let any = |pats: &[crate::enrich::Pattern], v: Option<&str>| {
        pats.is_empty() || v.is_some_and(|v| pats.iter().any(|p| p.matches(v)))
    };
    (r.severity.is_empty() || r.severity.contains(&alert.severity))
        && any(&r.playbook, Some(&alert.playbook))
        && any(&r.namespace, namespace(alert))
        && any(&r.team, team(alert))
}

/// True when the alert is at or above `min_severity`.
pub fn severe_enough(cfg: &SlackConfig, alert: &Alert) -> bool {
    cfg.min_severity.is_none_or(|m| alert.severity >= m)
}

/// The channels for `alert`, in order and without repeats.
pub fn channels(cfg: &SlackConfig, alert: &Alert) -> Routing {
    let mut out: Vec<String> = Vec::new();
    let mut push = |c: &str| {
        if !out.iter().any(|o| o == c) {
            out.push(c.to_owned());
        }
    };
    let severe = severe_enough(cfg, alert);
    if severe {
        let mut matched = false;
        for r in cfg.routes.iter().filter(|r| matches(r, alert)) {
            matched = true;
            push(&r.channel);
        }
        if !matched {
            if let Some(d) = &cfg.default_channel {
                push(d);
            }
        }
    }
    for c in requested(alert) {
        push(&c);
    }
    if !out.is_empty() {
        return Routing::Channels(out);
    }
    Routing::Nowhere(if severe {
        "no route matched and no default_channel is set".to_owned()
    } else {
        format!(
            "severity {:?} is below min_severity {:?}",
            alert.severity,
            cfg.min_severity.unwrap_or_default()
        )
        .to_lowercase()
    })
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::playbook::{ResponseRequest, Severity};
    use crate::state::model::AlertKind;

    pub(crate) fn alert(sev: Severity, playbook: &str, ns: &str, team: &str) -> Alert {
        Alert {
            id: "c/a/p".into(),
            kind: AlertKind::Alert,
            thread: None,
            playbook: playbook.into(),
            title: "t".into(),
            severity: sev,
            score: 1,
            mitre: vec![],
            cluster: "c".into(),
            dedup: "d".into(),
            count: 1,
            first_seen: 0,
            last_seen: 0,
            risk: None,
            context: Default::default(),
            responses: vec![],
            event: Some(Box::new(crate::state::summary::EventSummary {
                object_ref: Some(crate::event::ObjectReference {
                    namespace: Some(ns.into()),
                    ..Default::default()
                }),
                enrichment: Some(crate::model::Enrichment {
                    identity: crate::model::Identity {
                        team: Some(team.into()),
                        ..Default::default()
                    },
                    ..Default::default()
                }),
                ..Default::default()
            })),
            contributions: vec![],
            suppressed: None,
            dry_run: false,
        }
    }

    fn cfg() -> SlackConfig {
        serde_yaml::from_str(
            "bot_token: x\ndefault_channel: '#all'\nmin_severity: medium\nroutes:\n  - {severity: [critical], channel: '#page'}\n  - {playbook: ['rbac.*'], channel: '#rbac'}\n  - {namespace: ['prod-*'], team: [payments], channel: '#payments'}\n",
        )
        .unwrap()
    }

    #[test]
    fn routes_by_severity_playbook_namespace_and_team() {
        let c = cfg();
        let ch = |a: &Alert| match channels(&c, a) {
            Routing::Channels(v) => v,
            Routing::Nowhere(why) => vec![why],
        };
        assert_eq!(
            ch(&alert(Severity::Critical, "rbac.escalation", "x", "y")),
            ["#page", "#rbac"]
        );
        assert_eq!(
            ch(&alert(Severity::High, "exec", "prod-eu", "payments")),
            ["#payments"]
        );
        assert_eq!(
            ch(&alert(Severity::High, "exec", "prod-eu", "web")),
            ["#all"]
        );
        assert_eq!(
            ch(&alert(Severity::Low, "rbac.x", "prod-eu", "payments")),
            ["severity low is below min_severity medium"]
        );
        let mut asked = alert(Severity::Low, "x", "", "");
        asked.responses.push(ResponseRequest {
            kind: "slack".into(),
            approval: false,
            params: serde_json::from_str(r##"{"channel": "#team-x"}"##).unwrap(),
        });
        assert_eq!(
            ch(&asked),
            ["#team-x"],
            "a playbook's own channel passes min_severity"
        );
    }
}
