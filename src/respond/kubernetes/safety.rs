//! What the revocation responder refuses to touch: `system:` bindings and subjects, kube-system service accounts, rampart's own identity and bindings, configured names and subjects, and bindings carrying the protection label.

use serde_json::Value;

use super::client::BindingRef;
use super::config::{parse_label_selector, KubernetesConfig, LabelTerm};
use super::refusal::Refusal;

/// A subject of a binding (`User`, `Group` or `ServiceAccount`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub kind: String,
    pub name: String,
    /// Only meaningful for service accounts.
    pub namespace: Option<String>,
}

impl Subject {
    pub fn from_value(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            kind: s("kind")?,
            name: s("name")?,
            namespace: s("namespace").filter(|n| !n.is_empty()),
        })
    }

    /// The same subject as RBAC sees it: kind and name, and namespace for service accounts.
    pub fn same_as(&self, other: &Subject) -> bool {
        self.kind == other.kind
            && self.name == other.name
            && (self.kind != "ServiceAccount" || self.namespace == other.namespace)
    }

    /// The user name Kubernetes authenticates it as (`system:serviceaccount:ns:name` for service accounts).
    pub fn username(&self) -> String {
        match (self.kind.as_str(), &self.namespace) {
            ("ServiceAccount", Some(ns)) => format!("system:serviceaccount:{ns}:{}", self.name),
            _ => self.name.clone(),
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) if self.kind == "ServiceAccount" => {
                write!(f, "ServiceAccount/{ns}/{}", self.name)
            }
            _ => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// Which subjects a playbook's `subject` parameter names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectSelector {
    /// Exactly this subject.
    Exact(Subject),
    /// Every subject with this name, whatever its kind.
    Named(String),
}

impl SubjectSelector {
    /// `{kind, name, namespace}`, `Kind/name`, `ServiceAccount/ns/name`,
    /// `system:serviceaccount:ns:name`, or a bare name.
    pub fn parse(v: &Value) -> Result<Self, Refusal> {
        if v.is_object() {
            return Subject::from_value(v)
                .map(SubjectSelector::Exact)
                .ok_or(Refusal::SubjectIncomplete);
        }
        let s = v
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(Refusal::SubjectNotAName)?;
        if let Some(rest) = s.strip_prefix("system:serviceaccount:") {
            if let Some((ns, name)) = rest.split_once(':') {
                return Ok(SubjectSelector::Exact(Subject {
                    kind: "ServiceAccount".into(),
                    name: name.into(),
                    namespace: Some(ns.into()),
                }));
            }
        }
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            ["ServiceAccount", ns, name] => Ok(SubjectSelector::Exact(Subject {
                kind: "ServiceAccount".into(),
                name: (*name).into(),
                namespace: Some((*ns).into()),
            })),
            [kind @ ("User" | "Group"), name] => Ok(SubjectSelector::Exact(Subject {
                kind: (*kind).into(),
                name: (*name).into(),
                namespace: None,
            })),
            [name] => Ok(SubjectSelector::Named((*name).into())),
            _ => Err(Refusal::SubjectUnreadable(s.to_owned())),
        }
    }

    pub fn matches(&self, s: &Subject) -> bool {
        match self {
            SubjectSelector::Exact(e) => e.same_as(s),
            SubjectSelector::Named(n) => &s.name == n || s.username() == *n,
        }
    }
}

/// `*` matches any run of characters; everything else literally.
pub fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// Namespaces whose service accounts run the cluster itself.
const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// The refusal rules, built once from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    names: Vec<String>,
    subjects: Vec<String>,
    selector: Vec<LabelTerm>,
    own_sa: Option<Subject>,
    own_bindings: Vec<String>,
}

fn binding_matches(pattern: &str, b: &BindingRef) -> bool {
    match (pattern.split_once('/'), &b.namespace) {
        (Some((ns, name)), Some(bns)) => glob(ns, bns) && glob(name, &b.name),
        (Some(_), None) => false,
        (None, _) => glob(pattern, &b.name),
    }
}

impl Policy {
    /// The rules of `cfg` (an invalid label selector is reported by `validate`; here it protects everything).
    pub fn new(cfg: &KubernetesConfig) -> Self {
        let selector = match cfg.protected.label_selector.as_deref() {
            Some(s) => {
                parse_label_selector(s).unwrap_or_else(|_| vec![LabelTerm::Exists(String::new())])
            }
            None => Vec::new(),
        };
        Self {
            names: cfg.protected.names.clone(),
            subjects: cfg.protected.subjects.clone(),
            selector,
            own_sa: cfg.own.service_account.as_ref().map(|sa| Subject {
                kind: "ServiceAccount".into(),
                name: sa.name.clone(),
                namespace: Some(sa.namespace.clone()),
            }),
            own_bindings: cfg.own.bindings.clone(),
        }
    }

    /// Refusal by the binding's name alone.
    pub fn binding_refusal(&self, b: &BindingRef) -> Option<String> {
        if b.name.starts_with("system:") {
            return Some("its name starts with system: (a Kubernetes system binding)".into());
        }
        if let Some(p) = self.own_bindings.iter().find(|p| binding_matches(p, b)) {
            return Some(format!(
                "it is one of rampart's own bindings (own.bindings {p:?})"
            ));
        }
        if let Some(p) = self.names.iter().find(|p| binding_matches(p, b)) {
            return Some(format!(
                "it is protected by configuration (protected.names {p:?})"
            ));
        }
        None
    }

    /// Refusal because of one subject that would lose access (or stay in a deleted binding).
    pub fn subject_refusal(&self, s: &Subject) -> Option<String> {
        let user = s.username();
        if s.name.starts_with("system:") {
            return Some(format!("subject {s} is a Kubernetes system identity"));
        }
        if s.kind == "ServiceAccount"
            && s.namespace
                .as_deref()
                .is_some_and(|ns| SYSTEM_NAMESPACES.contains(&ns))
        {
            return Some(format!(
                "subject {s} is a {} service account",
                s.namespace.as_deref().unwrap_or("")
            ));
        }
        if self.is_own(s) {
            return Some(format!("subject {s} is rampart's own service account"));
        }
        if let Some(p) = self
            .subjects
            .iter()
            .find(|p| glob(p, &s.name) || glob(p, &user))
        {
            return Some(format!(
                "subject {s} is protected by configuration (protected.subjects {p:?})"
            ));
        }
        None
    }

    /// True when `s` is rampart's own service account (by subject or by user name).
    pub fn is_own(&self, s: &Subject) -> bool {
        self.own_sa
            .as_ref()
            .is_some_and(|own| own.same_as(s) || (s.kind == "User" && s.name == own.username()))
    }

    /// Refusal because the live object's labels match the protection selector.
    pub fn label_refusal(&self, live: &Value) -> Option<String> {
        if self.selector.is_empty() {
            return None;
        }
        let labels = live.pointer("/metadata/labels");
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let all = self.selector.iter().all(|t| match t {
            LabelTerm::Equals(k, v) => label(k) == Some(v.as_str()),
            LabelTerm::Exists(k) => label(k).is_some(),
        });
        all.then(|| "its labels match protected.label_selector".to_owned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::json;

    use super::*;

    fn sub(kind: &str, name: &str, ns: Option<&str>) -> Subject {
        Subject {
            kind: kind.into(),
            name: name.into(),
            namespace: ns.map(Into::into),
        }
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob("admin-*", "admin-alice"));
        assert!(glob("*-break-glass", "ops-break-glass"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXcYYb"));
        assert!(!glob("admin", "admin-alice"));
        assert!(glob("*", ""));
    }

    #[test]
    fn selectors_parse_every_written_form() {
        let sa = sub("ServiceAccount", "ci", Some("build"));
        for s in ["system:serviceaccount:build:ci", "ServiceAccount/build/ci"] {
            assert_eq!(
                SubjectSelector::parse(&json!(s)).unwrap(),
                SubjectSelector::Exact(sa.clone())
            );
        }
        let u = SubjectSelector::parse(&json!("User/mallory")).unwrap();
        assert!(u.matches(&sub("User", "mallory", None)));
        assert!(!u.matches(&sub("Group", "mallory", None)));
        let any = SubjectSelector::parse(&json!("mallory")).unwrap();
        assert!(any.matches(&sub("Group", "mallory", None)));
        let obj = SubjectSelector::parse(&json!({"kind": "User", "name": "bob"})).unwrap();
        assert!(obj.matches(&sub("User", "bob", None)));
        assert!(SubjectSelector::parse(&json!(3)).is_err());
    }

    #[test]
    fn system_and_own_identities_are_refused() {
        let mut cfg = KubernetesConfig::default();
        cfg.own.service_account = Some(super::super::config::ServiceAccountRef {
            namespace: "rampart".into(),
            name: "rampart".into(),
        });
        cfg.own.bindings = vec!["rampart-responder".into()];
        cfg.protected.names = vec!["break-glass-*".into(), "prod/deployers".into()];
        cfg.protected.subjects = vec!["oncall-*".into()];
        cfg.protected.label_selector = Some("rampart.dev/protected=true".into());
        let p = Policy::new(&cfg);
        let crb = |n: &str| BindingRef::new("ClusterRoleBinding", None, n).unwrap();
        let rb = |ns: &str, n: &str| BindingRef::new("RoleBinding", Some(ns), n).unwrap();
        assert!(p.binding_refusal(&crb("system:node")).is_some());
        assert!(p.binding_refusal(&crb("rampart-responder")).is_some());
        assert!(p.binding_refusal(&crb("break-glass-1")).is_some());
        assert!(p.binding_refusal(&rb("prod", "deployers")).is_some());
        assert!(p.binding_refusal(&rb("dev", "deployers")).is_none());
        assert!(p.binding_refusal(&crb("evil")).is_none());

        assert!(p
            .subject_refusal(&sub("Group", "system:masters", None))
            .is_some());
        assert!(p
            .subject_refusal(&sub("ServiceAccount", "x", Some("kube-system")))
            .is_some());
        assert!(p
            .subject_refusal(&sub("ServiceAccount", "rampart", Some("rampart")))
            .is_some());
        assert!(p
            .subject_refusal(&sub("User", "system:serviceaccount:rampart:rampart", None))
            .is_some());
        assert!(p
            .subject_refusal(&sub("User", "oncall-bob", None))
            .is_some());
        assert!(p.subject_refusal(&sub("User", "mallory", None)).is_none());

        assert!(p
            .label_refusal(&json!({"metadata": {"labels": {"rampart.dev/protected": "true"}}}))
            .is_some());
        assert!(p
            .label_refusal(&json!({"metadata": {"labels": {"rampart.dev/protected": "no"}}}))
            .is_none());
        assert!(p.label_refusal(&json!({"metadata": {}})).is_none());
    }
}
