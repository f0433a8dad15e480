//! Asset classification: what was touched and how sensitive it is, from user rules and built-in defaults; first match wins.

use std::path::Path;

use serde::Deserialize;

use super::matcher::Pattern;
use super::EnrichError;
use crate::event::AuditEvent;

pub use crate::model::enrichment::{Asset, Tier};

/// Conditions of a rule; every one given must match.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    #[serde(default)]
    namespace: Option<Pattern>,
    #[serde(default)]
    resource: Option<Pattern>,
    #[serde(default)]
    subresource: Option<Pattern>,
    #[serde(default)]
    name: Option<Pattern>,
    #[serde(default)]
    api_group: Option<Pattern>,
}

/// One classification rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(rename = "match")]
    when: Match,
    tier: Tier,
    data_class: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(skip)]
    id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rules: Vec<Rule>,
}

impl Match {
    fn matches(&self, ev: &AuditEvent) -> bool {
        let o = ev.object_ref.as_ref();
        let field = |p: &Option<Pattern>, v: Option<&str>| {
            p.as_ref().is_none_or(|p| p.matches(v.unwrap_or("")))
        };
        field(&self.namespace, o.and_then(|o| o.namespace.as_deref()))
            && field(&self.resource, o.and_then(|o| o.resource.as_deref()))
            && field(&self.subresource, o.and_then(|o| o.subresource.as_deref()))
            && field(&self.name, o.and_then(|o| o.name.as_deref()))
            && field(&self.api_group, o.and_then(|o| o.api_group.as_deref()))
    }
}

fn builtin(id: &str, tier: Tier, class: &str, m: &[(&str, &str)]) -> Rule {
    let mut when = Match::default();
    for (field, pat) in m {
        let p = Pattern::parse(pat).ok();
        match *field {
            "namespace" => when.namespace = p,
            "resource" => when.resource = p,
            "subresource" => when.subresource = p,
            "name" => when.name = p,
            _ => when.api_group = p,
        }
    }
    Rule {
        when,
        tier,
        data_class: class.to_owned(),
        owner: None,
        id: format!("builtin:{id}"),
    }
}

/// The defaults, most specific first; user rules come before all of them.
fn builtins() -> Vec<Rule> {
    use Tier::*;
    vec![
        builtin(
            "serviceaccount-token",
            Critical,
            "secrets",
            &[("resource", "serviceaccounts"), ("subresource", "token")],
        ),
        builtin("secrets", Critical, "secrets", &[("resource", "secrets")]),
        builtin(
            "rbac",
            Critical,
            "rbac",
            &[("api_group", "rbac.authorization.k8s.io")],
        ),
        builtin(
            "admission-webhooks",
            Critical,
            "admission",
            &[(
                "resource",
                "re:^(mutating|validating)webhookconfigurations$",
            )],
        ),
        builtin(
            "csr",
            Critical,
            "pki",
            &[("resource", "certificatesigningrequests")],
        ),
        builtin(
            "kube-system",
            Critical,
            "platform",
            &[("namespace", "kube-system")],
        ),
        builtin(
            "audit-stack",
            High,
            "audit",
            &[(
                "namespace",
                "re:^(rampart|logging|audit|falco|fluent.*|vector)$",
            )],
        ),
        builtin(
            "crds",
            High,
            "platform",
            &[("resource", "customresourcedefinitions")],
        ),
        builtin("nodes", High, "infrastructure", &[("resource", "nodes")]),
        builtin(
            "exec",
            High,
            "workload",
            &[("subresource", "re:^(exec|attach|portforward|proxy)$")],
        ),
        builtin(
            "network",
            Medium,
            "network",
            &[(
                "resource",
                "re:^(services|ingresses|networkpolicies|endpoints|endpointslices)$",
            )],
        ),
        builtin("config", Medium, "config", &[("resource", "configmaps")]),
        builtin(
            "workloads",
            Medium,
            "workload",
            &[(
                "resource",
                "re:^(pods|deployments|daemonsets|statefulsets|replicasets|jobs|cronjobs)$",
            )],
        ),
        builtin(
            "namespaces",
            Medium,
            "platform",
            &[("resource", "namespaces")],
        ),
    ]
}

/// Classifies events: user rules in file order, then the built-ins, then `low/other`.
#[derive(Debug, Clone)]
pub struct AssetClassifier {
    rules: Vec<Rule>,
}

impl AssetClassifier {
    pub fn new(user: Vec<Rule>, with_builtins: bool) -> Self {
        let mut rules = user;
        if with_builtins {
            rules.extend(builtins());
        }
        Self { rules }
    }

    pub fn load(path: &Path) -> Result<Vec<Rule>, EnrichError> {
        let text = std::fs::read_to_string(path).map_err(|source| EnrichError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: RulesFile = serde_yaml::from_str(&text).map_err(|e| EnrichError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        Ok(file
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.id = format!("{name}#{}", i + 1);
                r
            })
            .collect())
    }

    pub fn classify(&self, ev: &AuditEvent) -> Asset {
        match self.rules.iter().find(|r| r.when.matches(ev)) {
            Some(r) => Asset {
                tier: r.tier,
                data_class: r.data_class.clone(),
                owner: r.owner.clone(),
                rule: r.id.clone(),
            },
            None => Asset {
                tier: Tier::Low,
                data_class: "other".to_owned(),
                owner: None,
                rule: "default".to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(oref: serde_json::Value) -> AuditEvent {
        let raw = serde_json::json!({"auditID": "1", "stage": "ResponseComplete", "verb": "get", "user": {"username": "u"}, "objectRef": oref}).to_string();
        crate::event::decode_record(raw.as_bytes(), &Default::default())
            .events
            .remove(0)
    }

    #[test]
    fn builtins_classify_the_sensitive_kinds() {
        let c = AssetClassifier::new(vec![], true);
        let cases = [
            (
                serde_json::json!({"resource": "secrets", "namespace": "default", "name": "db"}),
                Tier::Critical,
                "secrets",
            ),
            (
                serde_json::json!({"resource": "serviceaccounts", "subresource": "token", "namespace": "ci"}),
                Tier::Critical,
                "secrets",
            ),
            (
                serde_json::json!({"resource": "clusterrolebindings", "apiGroup": "rbac.authorization.k8s.io"}),
                Tier::Critical,
                "rbac",
            ),
            (
                serde_json::json!({"resource": "mutatingwebhookconfigurations", "apiGroup": "admissionregistration.k8s.io"}),
                Tier::Critical,
                "admission",
            ),
            (
                serde_json::json!({"resource": "certificatesigningrequests", "apiGroup": "certificates.k8s.io"}),
                Tier::Critical,
                "pki",
            ),
            (
                serde_json::json!({"resource": "configmaps", "namespace": "kube-system"}),
                Tier::Critical,
                "platform",
            ),
            (
                serde_json::json!({"resource": "customresourcedefinitions"}),
                Tier::High,
                "platform",
            ),
            (
                serde_json::json!({"resource": "nodes", "name": "n1"}),
                Tier::High,
                "infrastructure",
            ),
            (
                serde_json::json!({"resource": "pods", "subresource": "exec", "namespace": "default"}),
                Tier::High,
                "workload",
            ),
            (
                serde_json::json!({"resource": "configmaps", "namespace": "default"}),
                Tier::Medium,
                "config",
            ),
            (
                serde_json::json!({"resource": "leases", "namespace": "kube-node-lease"}),
                Tier::Low,
                "other",
            ),
        ];
        for (oref, tier, class) in cases {
            let a = c.classify(&ev(oref.clone()));
            assert_eq!((a.tier, a.data_class.as_str()), (tier, class), "{oref}");
        }
    }

    #[test]
    fn user_rules_come_first_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("assets.yaml");
        std::fs::write(
            &p,
            r#"
rules:
  - match: { namespace: "payments", resource: secrets }
    tier: critical
    data_class: pii
    owner: payments
  - match: { namespace: "payments" }
    tier: high
    data_class: workload
    owner: payments
  - match: { resource: secrets, name: "re:^sh\\.helm\\.release" }
    tier: low
    data_class: helm
"#,
        )
        .unwrap();
        let c = AssetClassifier::new(AssetClassifier::load(&p).unwrap(), true);
        let a = c.classify(&ev(
            serde_json::json!({"resource": "secrets", "namespace": "payments", "name": "cards"}),
        ));
        assert_eq!(
            (
                a.tier,
                a.data_class.as_str(),
                a.owner.as_deref(),
                a.rule.as_str()
            ),
            (Tier::Critical, "pii", Some("payments"), "assets.yaml#1")
        );
        let b = c.classify(&ev(
            serde_json::json!({"resource": "pods", "namespace": "payments"}),
        ));
        assert_eq!((b.tier, b.rule.as_str()), (Tier::High, "assets.yaml#2"));
        let helm = c.classify(&ev(serde_json::json!({"resource": "secrets", "namespace": "default", "name": "sh.helm.release.v1.web.v3"})));
        assert_eq!(
            (helm.tier, helm.data_class.as_str()),
            (Tier::Low, "helm"),
            "a user rule overrides the built-in secrets rule"
        );
        let other = c.classify(&ev(
            serde_json::json!({"resource": "secrets", "namespace": "default", "name": "x"}),
        ));
        assert_eq!(other.rule, "builtin:secrets");
    }
}
