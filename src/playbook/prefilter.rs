//! `meta().on.where`: the cheap part of a rule written as data (field patterns, list membership, numeric comparisons), checked natively before any script runs.
//!
//! ```rhai
//! on: #{
//!     verbs: ["create", "update", "patch"],
//!     where: #{
//!         user: #{ not_matches: ["system:*"], not_in_glob_lists: ["control_plane_users"] },
//!         code: #{ lt: 400 },
//!         "annotations.authorization.k8s.io/decision": #{ matches: ["allow"] },
//!         id: #{ not_in_lists: ["falco_disabled"] },
//!     },
//! }
//! ```
//!
//! Every test of every field must hold. A field the event does not have reads
//! as `""` (`code` as 0), as `e.namespace ?? ""` does in a script. Lists are
//! the playbooks' lists (the global entries and the event's cluster's own), with
//! `in_list` semantics for `in_lists` and `in_list_glob` semantics for
//! `in_glob_lists`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::host::Lists;
use crate::enrich::Pattern;
use crate::event::AuditEvent;

/// The tests of one field, as written in `meta().on.where`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Tests {
    /// Matches one of these (exact, `*` glob, or `re:` regex).
    #[serde(default)]
    matches: Option<Vec<Pattern>>,
    /// Matches none of these.
    #[serde(default)]
    not_matches: Option<Vec<Pattern>>,
    /// An entry of one of these lists (exact, as `in_list`).
    #[serde(default)]
    in_lists: Option<Vec<String>>,
    #[serde(default)]
    not_in_lists: Option<Vec<String>>,
    /// Matches an entry of one of these lists (entries may hold `*`, as `in_list_glob`).
    #[serde(default)]
    in_glob_lists: Option<Vec<String>>,
    #[serde(default)]
    not_in_glob_lists: Option<Vec<String>>,
    #[serde(default)]
    lt: Option<i64>,
    #[serde(default)]
    le: Option<i64>,
    #[serde(default)]
    gt: Option<i64>,
    #[serde(default)]
    ge: Option<i64>,
}

/// The fields `where` can test.
pub const FIELDS: &[&str] = &[
    "user",
    "verb",
    "resource",
    "subresource",
    "namespace",
    "name",
    "api_group",
    "uri",
    "user_agent",
    "source_ip",
    "impersonated",
    "stage",
    "code",
    "id",
    "annotations.<key>",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    User,
    Verb,
    Resource,
    Subresource,
    Namespace,
    Name,
    ApiGroup,
    Uri,
    UserAgent,
    SourceIp,
    Impersonated,
    Stage,
    Code,
    Id,
    Annotation(String),
}

impl Field {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "user" => Self::User,
            "verb" => Self::Verb,
            "resource" => Self::Resource,
            "subresource" => Self::Subresource,
            "namespace" => Self::Namespace,
            "name" => Self::Name,
            "api_group" => Self::ApiGroup,
            "uri" => Self::Uri,
            "user_agent" => Self::UserAgent,
            "source_ip" => Self::SourceIp,
            "impersonated" => Self::Impersonated,
            "stage" => Self::Stage,
            "code" => Self::Code,
            "id" => Self::Id,
            other => Self::Annotation(other.strip_prefix("annotations.")?.to_owned()),
        })
    }
}

#[derive(Debug, Clone)]
enum Test {
    Is(Vec<Pattern>),
    Not(Vec<Pattern>),
    InLists(Vec<String>, bool),
    InGlobLists(Vec<String>, bool),
    /// `code` compared with `lt`, `le`, `gt`, `ge`: the lowest and highest it may be.
    Range(i64, i64),
}

/// One field's test.
#[derive(Debug, Clone)]
pub struct Clause {
    field: Field,
    test: Test,
}

/// Builds the clauses of `where`; problems name the field and the test.
pub(super) fn build(spec: BTreeMap<String, Tests>) -> Result<Vec<Clause>, Vec<String>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (name, t) in spec {
        let Some(field) = Field::parse(&name) else {
            problems.push(format!(
                "meta().on.where: unknown field {name:?}; use one of {}",
                FIELDS.join(", ")
            ));
            continue;
        };
        let numeric = [t.lt, t.le, t.gt, t.ge].iter().any(Option::is_some);
        if numeric && field != Field::Code {
            problems.push(format!(
                "meta().on.where.{name}: lt, le, gt and ge compare numbers; only code is one"
            ));
        }
        let mut push = |test| {
            out.push(Clause {
                field: field.clone(),
                test,
            })
        };
        if let Some(p) = t.matches {
            push(Test::Is(p));
        }
        if let Some(p) = t.not_matches {
            push(Test::Not(p));
        }
        if let Some(l) = t.in_lists {
            push(Test::InLists(l, true));
        }
        if let Some(l) = t.not_in_lists {
            push(Test::InLists(l, false));
        }
        if let Some(l) = t.in_glob_lists {
            push(Test::InGlobLists(l, true));
        }
        if let Some(l) = t.not_in_glob_lists {
            push(Test::InGlobLists(l, false));
        }
        if numeric {
            let low = [t.gt.map(|v| v.saturating_add(1)), t.ge]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(i64::MIN);
            let high = [t.lt.map(|v| v.saturating_sub(1)), t.le]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(i64::MAX);
            push(Test::Range(low, high));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The clause "FIELD matches PATTERN" (exact, `*` glob, or `re:` regex), for exceptions.
pub(super) fn matching(field: &str, pattern: &str) -> Result<Clause, String> {
    let f = Field::parse(field)
        .ok_or_else(|| format!("unknown field {field:?}; use one of {}", FIELDS.join(", ")))?;
    let p = Pattern::parse(pattern).map_err(|e| format!("{field}: {e}"))?;
    Ok(Clause {
        field: f,
        test: Test::Is(vec![p]),
    })
}

/// The names of the lists the clauses read (each must be defined somewhere).
pub fn list_names(clauses: &[Clause]) -> impl Iterator<Item = &str> {
    clauses
        .iter()
        .flat_map(|c| match &c.test {
            Test::InLists(l, _) | Test::InGlobLists(l, _) => l.as_slice(),
            _ => &[],
        })
        .map(String::as_str)
}

/// A list that exempts what it holds from a playbook: `where.FIELD.not_in_lists` or
/// `not_in_glob_lists` (the playbook's id tested against a list is a switch, not an allowlist).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Allowlist {
    /// The `where` field it is tested against (`user`, `namespace`, `annotations.<key>`, …).
    pub field: String,
    pub list: String,
    /// Entries may hold `*` (`in_list_glob` semantics).
    pub glob: bool,
}

/// The allowlists among the clauses, in the order written.
pub fn allowlists(clauses: &[Clause]) -> Vec<Allowlist> {
    let mut out = Vec::new();
    for c in clauses {
        let (lists, glob) = match &c.test {
            Test::InLists(l, false) => (l, false),
            Test::InGlobLists(l, false) => (l, true),
            _ => continue,
        };
        if matches!(c.field, Field::Id | Field::Code) {
            continue;
        }
        for list in lists {
            out.push(Allowlist {
                field: c.field.name(),
                list: list.clone(),
                glob,
            });
        }
    }
    out
}

impl Field {
    fn name(&self) -> String {
        match self {
            Field::Annotation(k) => format!("annotations.{k}"),
            f => FIELDS[[
                Field::User,
                Field::Verb,
                Field::Resource,
                Field::Subresource,
                Field::Namespace,
                Field::Name,
                Field::ApiGroup,
                Field::Uri,
                Field::UserAgent,
                Field::SourceIp,
                Field::Impersonated,
                Field::Stage,
                Field::Code,
                Field::Id,
            ]
            .iter()
            .position(|x| x == f)
            .unwrap_or(0)]
            .to_owned(),
        }
    }
}

/// The value of `field` on `ev` (`""` when absent).
fn text<'a>(ev: &'a AuditEvent, field: &'a Field, id: &'a str) -> std::borrow::Cow<'a, str> {
    let o = ev.object_ref.as_ref();
    let part = |f: fn(&crate::event::ObjectReference) -> Option<&String>| {
        o.and_then(f).map_or("", String::as_str)
    };
    std::borrow::Cow::Borrowed(match field {
        Field::User => ev.user.username.as_str(),
        Field::Verb => ev.verb.as_str(),
        Field::Resource => part(|o| o.resource.as_ref()),
        Field::Subresource => part(|o| o.subresource.as_ref()),
        Field::Namespace => part(|o| o.namespace.as_ref()),
        Field::Name => part(|o| o.name.as_ref()),
        Field::ApiGroup => part(|o| o.api_group.as_ref()),
        Field::Uri => ev.request_uri.as_str(),
        Field::UserAgent => ev.user_agent.as_deref().unwrap_or(""),
        Field::SourceIp => ev.source_ips.first().map_or("", String::as_str),
        Field::Impersonated => ev
            .impersonated_user
            .as_ref()
            .map_or("", |u| u.username.as_str()),
        Field::Stage => ev.stage.as_str(),
        Field::Id => id,
        Field::Annotation(key) => ev.annotations.get(key).map_or("", String::as_str),
        Field::Code => return std::borrow::Cow::Owned(code(ev).to_string()),
    })
}

fn code(ev: &AuditEvent) -> i64 {
    i64::from(ev.response_code().unwrap_or(0))
}

/// Whether every clause holds for `ev` (playbook `id`, lists as the event's cluster sees them).
pub fn admits(clauses: &[Clause], ev: &AuditEvent, id: &str, lists: &Lists) -> bool {
    let cluster = ev.provenance.cluster.as_str();
    clauses.iter().all(|c| match &c.test {
        Test::Range(low, high) => (*low..=*high).contains(&code(ev)),
        Test::Is(p) => {
            let v = text(ev, &c.field, id);
            p.iter().any(|p| p.matches(&v))
        }
        Test::Not(p) => {
            let v = text(ev, &c.field, id);
            !p.iter().any(|p| p.matches(&v))
        }
        Test::InLists(names, want) => {
            let v = text(ev, &c.field, id);
            names.iter().any(|n| lists.contains(cluster, n, &v)) == *want
        }
        Test::InGlobLists(names, want) => {
            let v = text(ev, &c.field, id);
            names
                .iter()
                .any(|n| super::host_detect::list_matches(lists, cluster, n, &v))
                == *want
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn clauses(src: serde_json::Value) -> Result<Vec<Clause>, Vec<String>> {
        build(serde_json::from_value(src).unwrap())
    }

    fn event(user: &str, code: i32) -> AuditEvent {
        serde_json::from_value(serde_json::json!({
            "auditID": "a", "stage": "ResponseComplete", "verb": "get", "requestURI": "/api/v1/secrets",
            "user": {"username": user}, "responseStatus": {"code": code},
            "annotations": {"authorization.k8s.io/decision": "allow"}
        }))
        .unwrap()
    }

    fn lists() -> Lists {
        let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<HashSet<_>>();
        Lists {
            global: HashMap::from([
                ("ops".to_owned(), set(&["system:kube-*", "alice"])),
                ("off".to_owned(), set(&["rule-a"])),
            ]),
            per_cluster: HashMap::new(),
        }
    }

    #[test]
    fn every_test_must_hold() {
        let c = clauses(serde_json::json!({
            "user": {"not_matches": ["system:*"], "not_in_glob_lists": ["ops"]},
            "code": {"lt": 400},
            "annotations.authorization.k8s.io/decision": {"matches": ["allow"]},
            "id": {"not_in_lists": ["off"]}
        }))
        .unwrap();
        let l = lists();
        assert!(admits(&c, &event("bob", 200), "rule-b", &l));
        assert!(
            !admits(&c, &event("bob", 200), "rule-a", &l),
            "disabled by list"
        );
        assert!(!admits(&c, &event("bob", 403), "rule-b", &l), "code");
        assert!(!admits(&c, &event("system:node:n1", 200), "rule-b", &l));
        assert!(!admits(&c, &event("alice", 200), "rule-b", &l), "glob list");
        // `in_lists` is exact: the glob entry does not match.
        let exact = clauses(serde_json::json!({"user": {"in_lists": ["ops"]}})).unwrap();
        assert!(!admits(&exact, &event("system:kube-proxy", 200), "x", &l));
        assert!(admits(&exact, &event("alice", 200), "x", &l));
    }

    #[test]
    fn reports_unknown_fields_and_numbers_on_text() {
        let e =
            clauses(serde_json::json!({"usr": {"matches": ["a"]}, "user": {"lt": 3}})).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("\"usr\"") || e[1].contains("\"usr\""));
    }
}
