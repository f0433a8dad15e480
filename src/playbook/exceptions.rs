//! Exceptions: entries of the list `exceptions` (`lists/exceptions.yaml`, or a cluster's own) that exempt what they describe from one playbook, checked natively before its script runs — an allowlist for every playbook without a script edit, and where `rampart tune` puts a false positive that no allowlist of the playbook's own can take.
//!
//! An entry is `PLAYBOOK FIELD=PATTERN[, FIELD=PATTERN…]`: the playbook's id (or a `*` glob over
//! ids), then conditions that must all hold, each on a `meta().on.where` field with an exact
//! value, a `*` glob or a `re:` regex:
//!
//! ```yaml
//! - "exec-into-pod user=system:serviceaccount:ci:debugger"
//! - "secret-read-* user=alice@example.com, namespace=sandbox-*"
//! ```

use std::collections::HashMap;

use super::host::Lists;
use super::prefilter::{self, Clause};
use crate::enrich::Pattern;
use crate::event::AuditEvent;

/// The list that holds them.
pub const LIST: &str = "exceptions";

/// One entry, compiled.
#[derive(Debug, Clone)]
struct Exception {
    playbook: Pattern,
    conditions: Vec<Clause>,
}

/// Parses one entry; the problem says what is wrong with it.
fn parse(entry: &str) -> Result<Exception, String> {
    let entry = entry.trim();
    let (id, rest) = entry
        .split_once(char::is_whitespace)
        .ok_or_else(|| "write PLAYBOOK FIELD=PATTERN[, FIELD=PATTERN…]".to_owned())?;
    let playbook = Pattern::parse(id).map_err(|e| format!("playbook {id:?}: {e}"))?;
    let mut conditions = Vec::new();
    for cond in rest.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let (field, pattern) = cond
            .split_once('=')
            .ok_or_else(|| format!("{cond:?} is not FIELD=PATTERN"))?;
        conditions.push(prefilter::matching(field.trim(), pattern.trim())?);
    }
    if conditions.is_empty() {
        return Err("an exception needs at least one FIELD=PATTERN".into());
    }
    Ok(Exception {
        playbook,
        conditions,
    })
}

/// The exceptions of a playbook set, per playbook: global ones, and each cluster's own.
#[derive(Debug, Default)]
pub struct Exceptions {
    /// By playbook index: the global exceptions, then per cluster.
    global: Vec<Vec<Vec<Clause>>>,
    per_cluster: HashMap<String, Vec<Vec<Vec<Clause>>>>,
}

impl Exceptions {
    /// Compiles the `exceptions` list for `ids` (the set's playbooks, in order); every bad entry is
    /// reported (`entry: problem`).
    pub fn build(lists: &Lists, ids: &[&str]) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut compile = |entries: Option<&std::collections::HashSet<String>>| {
            let mut by_playbook: Vec<Vec<Vec<Clause>>> = vec![Vec::new(); ids.len()];
            let mut sorted: Vec<&String> = entries.into_iter().flatten().collect();
            sorted.sort();
            for e in sorted {
                match parse(e) {
                    Ok(x) => {
                        for (i, id) in ids.iter().enumerate() {
                            if x.playbook.matches(id) {
                                by_playbook[i].push(x.conditions.clone());
                            }
                        }
                    }
                    Err(why) => problems.push(format!("{e:?}: {why}")),
                }
            }
            by_playbook
        };
        let global = compile(lists.global.get(LIST));
        let per_cluster = lists
            .per_cluster
            .iter()
            .filter_map(|(c, l)| l.get(LIST).map(|e| (c.clone(), compile(Some(e)))))
            .collect();
        if problems.is_empty() {
            Ok(Self {
                global,
                per_cluster,
            })
        } else {
            Err(problems)
        }
    }

    /// Whether an exception exempts `ev` from playbook `i` (id `id`).
    pub fn exempts(&self, i: usize, id: &str, ev: &AuditEvent, lists: &Lists) -> bool {
        let holds = |set: &Vec<Vec<Vec<Clause>>>| {
            set.get(i).is_some_and(|xs| {
                xs.iter()
                    .any(|conds| prefilter::admits(conds, ev, id, lists))
            })
        };
        holds(&self.global)
            || self
                .per_cluster
                .get(ev.provenance.cluster.as_str())
                .is_some_and(holds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: &str, ns: &str) -> AuditEvent {
        serde_json::from_value(serde_json::json!({
            "auditID": "a", "stage": "ResponseComplete", "verb": "create",
            "requestURI": "/", "user": {"username": user},
            "objectRef": {"resource": "pods", "namespace": ns, "subresource": "exec"},
        }))
        .unwrap()
    }

    fn lists(entries: &[&str]) -> Lists {
        let mut l = Lists::default();
        l.global.insert(
            LIST.to_owned(),
            entries.iter().map(|s| (*s).to_owned()).collect(),
        );
        l
    }

    #[test]
    fn an_entry_exempts_only_its_playbook_and_only_when_every_condition_holds() {
        let l = lists(&[
            "exec-into-pod user=ci-bot",
            "secret-* user=alice, namespace=sandbox-*",
        ]);
        let ids = ["exec-into-pod", "secret-read", "other"];
        let x = Exceptions::build(&l, &ids).unwrap();
        assert!(x.exempts(0, ids[0], &event("ci-bot", "payments"), &l));
        assert!(!x.exempts(0, ids[0], &event("mallory", "payments"), &l));
        assert!(!x.exempts(2, ids[2], &event("ci-bot", "payments"), &l));
        assert!(x.exempts(1, ids[1], &event("alice", "sandbox-7"), &l));
        assert!(
            !x.exempts(1, ids[1], &event("alice", "payments"), &l),
            "both conditions"
        );
    }

    #[test]
    fn a_cluster_s_own_exceptions_apply_to_its_events_only() {
        let mut l = Lists::default();
        l.per_cluster.insert(
            "staging".into(),
            [(
                LIST.to_owned(),
                ["exec-into-pod user=ci-bot".to_owned()].into(),
            )]
            .into(),
        );
        let x = Exceptions::build(&l, &["exec-into-pod"]).unwrap();
        let mut ev = event("ci-bot", "payments");
        assert!(!x.exempts(0, "exec-into-pod", &ev, &l));
        ev.provenance.cluster = "staging".into();
        assert!(x.exempts(0, "exec-into-pod", &ev, &l));
    }

    #[test]
    fn bad_entries_are_all_reported() {
        let l = lists(&["exec-into-pod", "x usr=alice", "y user=re:(", "z user"]);
        let problems = Exceptions::build(&l, &["x"]).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("unknown field \"usr\"")),
            "{problems:?}"
        );
    }
}
