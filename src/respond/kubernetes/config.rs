//! The `kubernetes` responder's configuration: how to reach the API server, which bindings are never touched, and how rampart names itself there.

use std::path::PathBuf;

use serde::Deserialize;

use super::refusal::SelectorError;
use crate::config::{Problem, Seconds};

/// How the binding revocation responder reaches the cluster and what it must never touch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// A kubeconfig file; without it: in-cluster service account, else `KUBECONFIG` / `~/.kube/config`.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: the file's current context).
    #[serde(default)]
    pub context: Option<String>,
    /// Bindings and subjects that are refused on top of the built-in `system:` rules.
    #[serde(default)]
    pub protected: ProtectedConfig,
    /// rampart's own identity and bindings: never changed, whatever a playbook asks.
    #[serde(default)]
    pub own: OwnConfig,
    /// Record a Kubernetes Event on each binding acted on (or refused).
    #[serde(default = "default_true")]
    pub events: bool,
    /// Field manager of writes and `reportingController` of Events.
    #[serde(default = "default_manager")]
    pub field_manager: String,
    /// `reportingInstance` of Events (default: `POD_NAME`, else `HOSTNAME`, else `rampart`).
    #[serde(default)]
    pub reporting_instance: Option<String>,
    /// Longest one API request may take before the attempt is retried later.
    #[serde(default = "default_timeout")]
    pub timeout: Seconds,
    /// Only read and journal what would be done, whatever `respond.dry_run` says.
    #[serde(default)]
    pub dry_run: bool,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            context: None,
            protected: ProtectedConfig::default(),
            own: OwnConfig::default(),
            events: true,
            field_manager: default_manager(),
            reporting_instance: None,
            timeout: default_timeout(),
            dry_run: false,
        }
    }
}

/// Configured protection; the `system:` rules always apply as well.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectedConfig {
    /// Binding names (`name`, or `namespace/name` for RoleBindings); `*` matches any run of characters.
    #[serde(default)]
    pub names: Vec<String>,
    /// Subject names (`alice`, `ops-admins`, `system:serviceaccount:ns:sa`); `*` as above.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// Live bindings whose labels match are refused: `k=v` and `k` terms, comma-separated, all must hold.
    #[serde(default)]
    pub label_selector: Option<String>,
}

/// rampart's own identity and bindings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnConfig {
    /// The service account rampart runs as: a binding that grants it is never changed.
    #[serde(default)]
    pub service_account: Option<ServiceAccountRef>,
    /// rampart's own bindings (`name`, or `namespace/name` for RoleBindings).
    #[serde(default)]
    pub bindings: Vec<String>,
}

/// A service account by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountRef {
    pub namespace: String,
    pub name: String,
}

fn default_true() -> bool {
    true
}

fn default_manager() -> String {
    "rampart".to_owned()
}

fn default_timeout() -> Seconds {
    Seconds::from_secs(10)
}

/// One term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelTerm {
    /// `k=v` (or `k==v`): the label is present with this value.
    Equals(String, String),
    /// `k`: the label is present.
    Exists(String),
}

/// Parses `k=v,k2,k3==v3`; every term must hold for the selector to match.
pub fn parse_label_selector(s: &str) -> Result<Vec<LabelTerm>, SelectorError> {
    let mut terms = Vec::new();
    for raw in s.split(',') {
        let t = raw.trim();
        if t.is_empty() {
            return Err(SelectorError::EmptyTerm(s.to_owned()));
        }
        if t.contains("!=") || t.starts_with('!') || t.contains(" in ") || t.contains(" notin ") {
            return Err(SelectorError::Unsupported(t.to_owned()));
        }
        let term = match t.split_once('=') {
            Some((k, v)) => {
                let v = v.strip_prefix('=').unwrap_or(v).trim();
                let k = k.trim();
                check_key(k)?;
                check_value(v)?;
                LabelTerm::Equals(k.to_owned(), v.to_owned())
            }
            None => {
                check_key(t)?;
                LabelTerm::Exists(t.to_owned())
            }
        };
        terms.push(term);
    }
    Ok(terms)
}

fn name_ok(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn check_key(k: &str) -> Result<(), SelectorError> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    });
    if prefix_ok && name_ok(name, 63) {
        Ok(())
    } else {
        Err(SelectorError::Key(k.to_owned()))
    }
}

fn check_value(v: &str) -> Result<(), SelectorError> {
    if v.is_empty() || name_ok(v, 63) {
        Ok(())
    } else {
        Err(SelectorError::Value(v.to_owned()))
    }
}

impl KubernetesConfig {
    /// Reports every problem, each with its dotted path under `path`.
    pub fn validate(&self, path: &str, problems: &mut Vec<Problem>) {
        let mut add = |field: &str, message: String| {
            problems.push(Problem {
                path: if path.is_empty() {
                    field.to_owned()
                } else {
                    format!("{path}.{field}")
                },
                message,
            })
        };
        if let Some(p) = &self.kubeconfig {
            if p.as_os_str().is_empty() {
                add("kubeconfig", "must not be empty".into());
            } else if !p.is_file() {
                add(
                    "kubeconfig",
                    format!("{} does not exist or is not a file", p.display()),
                );
            }
        }
        if self.context.as_deref().is_some_and(|c| c.trim().is_empty()) {
            add("context", "must not be empty".into());
        }
        for (i, n) in self.protected.names.iter().enumerate() {
            if let Some(m) = binding_pattern_problem(n) {
                add(&format!("protected.names[{i}]"), m);
            }
        }
        for (i, n) in self.protected.subjects.iter().enumerate() {
            if n.trim().is_empty() {
                add(
                    &format!("protected.subjects[{i}]"),
                    "must not be empty".into(),
                );
            }
        }
        if let Some(sel) = &self.protected.label_selector {
            if let Err(e) = parse_label_selector(sel) {
                add("protected.label_selector", e.to_string());
            }
        }
        if let Some(sa) = &self.own.service_account {
            if !name_ok(&sa.namespace, 63) {
                add(
                    "own.service_account.namespace",
                    format!("invalid namespace {:?}", sa.namespace),
                );
            }
            if !name_ok(&sa.name, 253) {
                add(
                    "own.service_account.name",
                    format!("invalid service account name {:?}", sa.name),
                );
            }
        }
        for (i, n) in self.own.bindings.iter().enumerate() {
            if let Some(m) = binding_pattern_problem(n) {
                add(&format!("own.bindings[{i}]"), m);
            }
        }
        if self.field_manager.trim().is_empty() || self.field_manager.len() > 128 {
            add(
                "field_manager",
                "must be 1 to 128 characters (it names rampart in managedFields and Events)".into(),
            );
        }
        if let Some(i) = &self.reporting_instance {
            if i.trim().is_empty() || i.len() > 128 {
                add("reporting_instance", "must be 1 to 128 characters".into());
            }
        }
        if self.timeout.get().is_zero() {
            add("timeout", "must be more than 0s".into());
        }
    }

    /// `reportingInstance` for Events.
    pub fn instance(&self) -> String {
        let raw = self
            .reporting_instance
            .clone()
            .or_else(|| std::env::var("POD_NAME").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "rampart".to_owned());
        raw.chars().take(128).collect()
    }
}

fn binding_pattern_problem(p: &str) -> Option<String> {
    if p.trim().is_empty() {
        return Some("must not be empty".into());
    }
    if p.matches('/').count() > 1 {
        return Some(format!(
            "{p:?}: write `name` or `namespace/name` (one slash at most)"
        ));
    }
    if p.split('/').any(str::is_empty) {
        return Some(format!("{p:?}: namespace and name must not be empty"));
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_selectors_with_both_forms() {
        assert_eq!(
            parse_label_selector("rampart.dev/protected=true, tier").unwrap(),
            vec![
                LabelTerm::Equals("rampart.dev/protected".into(), "true".into()),
                LabelTerm::Exists("tier".into())
            ]
        );
        assert_eq!(
            parse_label_selector("a==b").unwrap(),
            vec![LabelTerm::Equals("a".into(), "b".into())]
        );
        assert!(parse_label_selector("a!=b").is_err());
        assert!(parse_label_selector("a,,b").is_err());
        assert!(parse_label_selector("bad key=x").is_err());
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let yaml = r#"
kubeconfig: /nonexistent/kubeconfig
protected:
  names: ["", "a/b/c"]
  label_selector: "x!=y"
own:
  service_account: { namespace: "", name: rampart }
field_manager: ""
timeout: 0s
"#;
        let c: KubernetesConfig = serde_yaml::from_str(yaml).unwrap();
        let mut p = Vec::new();
        c.validate("respond.kubernetes", &mut p);
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "respond.kubernetes.kubeconfig",
                "respond.kubernetes.protected.names[0]",
                "respond.kubernetes.protected.names[1]",
                "respond.kubernetes.protected.label_selector",
                "respond.kubernetes.own.service_account.namespace",
                "respond.kubernetes.field_manager",
                "respond.kubernetes.timeout",
            ]
        );
    }

    #[test]
    fn defaults_are_valid_and_unknown_fields_are_rejected() {
        let c: KubernetesConfig = serde_yaml::from_str("{}").unwrap();
        assert!(c.events);
        assert_eq!(c.field_manager, "rampart");
        let mut p = Vec::new();
        c.validate("k", &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert!(serde_yaml::from_str::<KubernetesConfig>("kubconfig: x").is_err());
    }
}
