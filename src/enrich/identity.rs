//! Identity: who did it — derived from the event (human, service account, node, system, anonymous; impersonation; auth hints) and looked up in the user's directory.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::matcher::Pattern;
use super::EnrichError;
use crate::event::AuditEvent;

pub use crate::model::enrichment::{Identity, PrincipalKind};

/// One directory entry's facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub slack: Option<String>,
    #[serde(default)]
    pub oncall: Option<String>,
    /// human or bot.
    #[serde(default)]
    pub kind: Option<String>,
    /// Where the person works, as an IANA time zone (`Europe/Berlin`): behavioural analytics
    /// judge hours of the week in it (UTC when absent).
    #[serde(default)]
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(rename = "match")]
    pattern: Pattern,
    #[serde(flatten)]
    person: Person,
}

/// `enrichers/identity.yaml`: users, groups and service accounts (as `namespace/name`), exact or glob.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    #[serde(default)]
    users: Vec<Entry>,
    #[serde(default)]
    groups: Vec<Entry>,
    #[serde(default)]
    service_accounts: Vec<Entry>,
}

impl Directory {
    pub fn load(path: &Path) -> Result<Self, EnrichError> {
        let text = std::fs::read_to_string(path).map_err(|source| EnrichError::Read {
            path: path.to_owned(),
            source,
        })?;
        let d: Self = serde_yaml::from_str(&text).map_err(|e| EnrichError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let unknown: Vec<String> = [&d.users, &d.service_accounts, &d.groups]
            .into_iter()
            .flatten()
            .filter_map(|e| e.person.timezone.as_deref())
            .filter(|z| super::baseline::zone::parse(z).is_none())
            .map(|z| format!("{z:?}"))
            .collect();
        if !unknown.is_empty() {
            return Err(EnrichError::Parse {
                path: path.to_owned(),
                message: format!(
                    "unknown time zone {}: use IANA names such as Europe/Berlin",
                    unknown.join(", ")
                ),
            });
        }
        Ok(d)
    }

    /// The first matching entry: users, then service accounts, then groups.
    pub fn lookup(&self, id: &Identity, groups: &[String]) -> Option<&Person> {
        fn by<'a>(entries: &'a [Entry], s: &str) -> Option<&'a Person> {
            entries
                .iter()
                .find(|e| e.pattern.matches(s))
                .map(|e| &e.person)
        }
        by(&self.users, &id.actor)
            .or_else(|| match (&id.sa_namespace, &id.sa_name) {
                (Some(ns), Some(n)) => by(&self.service_accounts, &format!("{ns}/{n}")),
                _ => None,
            })
            .or_else(|| groups.iter().find_map(|g| by(&self.groups, g)))
    }
}

/// Control-plane users (`system:*` but service accounts) and kube-system's
/// service accounts: what playbooks mean by a system user (`is_system_user(e)`, `on.system_users`).
pub fn is_system_user(username: &str) -> bool {
    username.starts_with("system:") && !username.starts_with("system:serviceaccount:")
        || username.starts_with("system:serviceaccount:kube-system:")
}

/// The facts the event itself gives.
pub fn derive(ev: &AuditEvent) -> Identity {
    let actor = ev.user.username.clone();
    let mut id = Identity {
        impersonated: ev.impersonated_user.as_ref().map(|u| u.username.clone()),
        ..Identity::default()
    };
    if let Some(rest) = actor.strip_prefix("system:serviceaccount:") {
        id.kind = PrincipalKind::ServiceAccount;
        if let Some((ns, name)) = rest.split_once(':') {
            id.sa_namespace = Some(ns.to_owned());
            id.sa_name = Some(name.to_owned());
        }
        id.auth = Some("serviceaccount-token".to_owned());
    } else if let Some(node) = actor.strip_prefix("system:node:") {
        id.kind = PrincipalKind::Node;
        id.node = Some(node.to_owned());
        id.auth = Some("x509".to_owned());
    } else if actor == "system:anonymous"
        || ev.user.groups.iter().any(|g| g == "system:unauthenticated")
    {
        id.kind = PrincipalKind::Anonymous;
    } else if actor.starts_with("system:") || actor.starts_with("kube-") && !actor.contains('@') {
        id.kind = PrincipalKind::System;
    } else {
        id.kind = PrincipalKind::Human;
    }
    let extra = &ev.user.extra;
    let first = |k: &str| extra.get(k).and_then(|v| v.first()).cloned();
    if let Some(arn) = first("arn").or_else(|| first("sessionName").and(first("arn"))) {
        id.auth = Some("aws-iam".to_owned());
        id.cloud_principal = Some(arn);
    } else if let Some(p) =
        first("iam.gke.io/user-assertion").or_else(|| first("user-assertion.cloud.google.com"))
    {
        id.auth = Some("gcp-iam".to_owned());
        id.cloud_principal = Some(p);
    } else if extra.contains_key("oid") || actor.starts_with("aad:") {
        id.auth = Some("azure-ad".to_owned());
        id.cloud_principal = first("oid");
    } else if id.kind == PrincipalKind::Human
        && (extra.keys().any(|k| k.contains("credential-id")) || actor.contains('@'))
        && id.auth.is_none()
    {
        id.auth = Some("oidc".to_owned());
    }
    id.actor = actor;
    id
}

/// Copies a directory entry's facts onto the identity.
pub fn apply(id: &mut Identity, p: &Person) {
    id.known = true;
    id.display_name.clone_from(&p.name);
    id.team.clone_from(&p.team);
    id.email.clone_from(&p.email);
    id.slack.clone_from(&p.slack);
    id.oncall.clone_from(&p.oncall);
    id.directory_kind.clone_from(&p.kind);
    id.timezone.clone_from(&p.timezone);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{decode_record, DecodeOptions};

    fn event(user: &str, extra: &str) -> AuditEvent {
        let raw = format!(
            r#"{{"auditID":"1","stage":"ResponseComplete","verb":"get","user":{{"username":"{user}","groups":["system:authenticated","sre"]{extra}}}}}"#
        );
        decode_record(raw.as_bytes(), &DecodeOptions::default())
            .events
            .remove(0)
    }

    #[test]
    fn derives_service_accounts_nodes_system_anonymous_and_humans() {
        let sa = derive(&event("system:serviceaccount:payments:api", ""));
        assert_eq!(sa.kind, PrincipalKind::ServiceAccount);
        assert_eq!(
            (sa.sa_namespace.as_deref(), sa.sa_name.as_deref()),
            (Some("payments"), Some("api"))
        );
        let node = derive(&event("system:node:ip-10-0-1-12.ec2.internal", ""));
        assert_eq!(node.kind, PrincipalKind::Node);
        assert_eq!(node.node.as_deref(), Some("ip-10-0-1-12.ec2.internal"));
        assert_eq!(
            derive(&event("system:kube-scheduler", "")).kind,
            PrincipalKind::System
        );
        assert_eq!(
            derive(&event("system:anonymous", "")).kind,
            PrincipalKind::Anonymous
        );
        let human = derive(&event("alice@example.com", ""));
        assert_eq!(human.kind, PrincipalKind::Human);
        assert_eq!(human.auth.as_deref(), Some("oidc"));
        assert!(!human.known);
    }

    #[test]
    fn keeps_the_real_actor_behind_impersonation() {
        let raw = r#"{"auditID":"1","stage":"ResponseComplete","verb":"get","user":{"username":"mallory@example.com"},"impersonatedUser":{"username":"system:admin","groups":["system:masters"]}}"#;
        let ev = decode_record(raw.as_bytes(), &DecodeOptions::default())
            .events
            .remove(0);
        let id = derive(&ev);
        assert_eq!(id.actor, "mallory@example.com");
        assert_eq!(id.impersonated.as_deref(), Some("system:admin"));
        assert_eq!(id.kind, PrincipalKind::Human);
    }

    #[test]
    fn reads_cloud_iam_hints_from_user_extra() {
        let eks = derive(&event(
            "kubernetes-admin",
            r#","extra":{"arn":["arn:aws:iam::111122223333:role/Admin"],"accessKeyId":["AKIA..."],"sessionName":["alice"]}"#,
        ));
        assert_eq!(eks.auth.as_deref(), Some("aws-iam"));
        assert_eq!(
            eks.cloud_principal.as_deref(),
            Some("arn:aws:iam::111122223333:role/Admin")
        );
        let aks = derive(&event("aad:bob", r#","extra":{"oid":["0000-1111"]}"#));
        assert_eq!(aks.auth.as_deref(), Some("azure-ad"));
    }

    #[test]
    fn directory_matches_users_then_service_accounts_then_groups() {
        let dir: Directory = serde_yaml::from_str(
            r#"
users:
  - { match: "alice@example.com", name: Alice, team: payments, slack: "@alice", oncall: payments-primary, kind: human }
  - { match: "*@contractor.io", team: vendors }
service_accounts:
  - { match: "payments/*", team: payments, kind: bot }
groups:
  - { match: sre, team: sre }
"#,
        )
        .unwrap();
        let groups = vec!["sre".to_owned()];
        let alice = derive(&event("alice@example.com", ""));
        assert_eq!(
            dir.lookup(&alice, &groups).unwrap().name.as_deref(),
            Some("Alice")
        );
        let vendor = derive(&event("eve@contractor.io", ""));
        assert_eq!(
            dir.lookup(&vendor, &[]).unwrap().team.as_deref(),
            Some("vendors")
        );
        let sa = derive(&event("system:serviceaccount:payments:worker", ""));
        assert_eq!(dir.lookup(&sa, &[]).unwrap().kind.as_deref(), Some("bot"));
        let bob = derive(&event("bob@example.com", ""));
        assert_eq!(
            dir.lookup(&bob, &groups).unwrap().team.as_deref(),
            Some("sre")
        );
        assert!(
            dir.lookup(&bob, &[]).is_none(),
            "unknown principals stay unknown"
        );
    }
}
