//! Revocation of one judged binding: read it, make sure it is exactly the object the event showed and nothing protected, then delete it or remove subjects with preconditions, record an Event, and keep the object as read for undo.

use serde_json::{json, Value};

use super::client::{BindingRef, Failure};
use super::events::{self, Action};
use super::safety::{Subject, SubjectSelector};
use super::KubernetesResponder;
use super::{BindingTarget, Refusal};
use crate::respond::{Effect, Retry};
use crate::state::model::{Delivery, Status};

/// A binding created up to this long after the judged event's (second-truncated) receive time is
/// taken as the judged object: creation happens while the judged request is being served, which
/// admission webhooks can stretch to several seconds.
pub const CREATION_GRACE_SECS: i64 = 10;

/// The version of the undo record this module writes.
pub const UNDO_VERSION: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Delete,
    RemoveSubject,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Delete => "delete",
            Mode::RemoveSubject => "remove_subject",
        }
    }
}

/// Which subjects `remove_subject` takes out.
#[derive(Debug, Clone)]
enum Removal {
    /// Those the judged object had.
    Judged(Vec<Subject>),
    /// The one the playbook named.
    Selected(SubjectSelector),
}

impl Removal {
    fn matches(&self, s: &Subject) -> bool {
        match self {
            Removal::Judged(v) => v.iter().any(|j| j.same_as(s)),
            Removal::Selected(sel) => sel.matches(s),
        }
    }
    fn describe(&self) -> String {
        match self {
            Removal::Judged(v) => list(v),
            Removal::Selected(SubjectSelector::Exact(s)) => format!("subject {s}"),
            Removal::Selected(SubjectSelector::Named(n)) => format!("subjects named {n}"),
        }
    }
}

/// One revocation, as the delivery asks for it.
struct Job<'a> {
    d: &'a Delivery,
    target: BindingTarget,
    b: BindingRef,
    mode: Mode,
    removal: Option<Removal>,
}

/// What to do with the object as read.
enum Judgement {
    /// Touch nothing, for this reason (a clause after "refused to change X: ").
    Refuse(String),
    /// Nothing left to do (a whole sentence).
    Nothing(String),
    Delete {
        uid: String,
        rv: String,
    },
    Patch {
        ops: Value,
        removed: Vec<Subject>,
    },
}

fn list(v: &[Subject]) -> String {
    let names: Vec<String> = v.iter().map(ToString::to_string).collect();
    format!(
        "subject{} {}",
        if v.len() == 1 { "" } else { "s" },
        names.join(", ")
    )
}

fn failed(detail: String) -> Effect {
    Effect::with_status(Status::Failed, detail)
}

fn meta<'v>(live: &'v Value, f: &str) -> Option<&'v str> {
    live.pointer(&format!("/metadata/{f}"))
        .and_then(Value::as_str)
}

impl<'a> Job<'a> {
    fn from_delivery(d: &'a Delivery) -> Result<Self, Refusal> {
        let target = BindingTarget::of(d).ok_or(Refusal::NoTarget)?;
        let b = BindingRef::new(&target.kind, target.namespace.as_deref(), &target.name)?;
        let params = d.response.as_ref().map(|r| &r.params);
        let mode = match params.and_then(|p| p.get("mode")).and_then(Value::as_str) {
            Some("delete") => Mode::Delete,
            Some("remove_subject") => Mode::RemoveSubject,
            Some(other) => return Err(Refusal::UnknownMode(other.to_owned())),
            None => return Err(Refusal::NoMode),
        };
        let removal = match (mode, params.and_then(|p| p.get("subject"))) {
            (Mode::Delete, _) => None,
            (Mode::RemoveSubject, Some(v)) => Some(Removal::Selected(SubjectSelector::parse(v)?)),
            (Mode::RemoveSubject, None) => {
                let judged: Vec<Subject> = target
                    .subjects
                    .iter()
                    .filter_map(Subject::from_value)
                    .collect();
                if judged.is_empty() {
                    return Err(Refusal::SubjectsNotRecorded(b.to_string()));
                }
                Some(Removal::Judged(judged))
            }
        };
        Ok(Self {
            d,
            target,
            b,
            mode,
            removal,
        })
    }

    fn actor(&self) -> &str {
        self.d.alert.event().username().unwrap_or("unknown")
    }

    fn note(&self, what: &str) -> String {
        format!(
            "rampart {what} (playbook {}, alert {}, actor {})",
            self.d.alert.playbook,
            self.d.alert.id,
            self.actor()
        )
    }

    /// Is `live` exactly the judged object, and may it be changed?
    fn judge(&self, r: &KubernetesResponder, live: &Value) -> Judgement {
        if let Some(why) = r.policy.binding_refusal(&self.b) {
            return Judgement::Refuse(why);
        }
        let (Some(uid), Some(rv)) = (meta(live, "uid"), meta(live, "resourceVersion")) else {
            return Judgement::Refuse(
                "the API server returned it without uid or resourceVersion".into(),
            );
        };
        match &self.target.uid {
            Some(judged) if judged != uid => {
                return Judgement::Refuse(format!(
                    "it was recreated since the judged event (uid now {uid}, judged {judged})"
                ))
            }
            Some(_) => {}
            None => {
                let created =
                    meta(live, "creationTimestamp").and_then(crate::event::time::parse_rfc3339);
                match created {
                    Some(c) if c > self.target.judged_at + CREATION_GRACE_SECS => {
                        return Judgement::Refuse(format!(
                            "it was created at {} after the judged event at {}, so it is another object",
                            crate::event::time::format_rfc3339(c),
                            crate::event::time::format_rfc3339(self.target.judged_at)
                        ))
                    }
                    Some(_) => {}
                    None => {
                        return Judgement::Refuse(
                            "the event carried no uid and the live object no creationTimestamp, so rampart cannot tell it is the judged object".into(),
                        )
                    }
                }
            }
        }
        if let Some(why) = r.policy.label_refusal(live) {
            return Judgement::Refuse(why);
        }
        let subjects: Vec<(usize, Subject)> = live
            .get("subjects")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .enumerate()
                    .filter_map(|(i, v)| Subject::from_value(v).map(|s| (i, s)))
                    .collect()
            })
            .unwrap_or_default();
        if let Some((_, own)) = subjects.iter().find(|(_, s)| r.policy.is_own(s)) {
            return Judgement::Refuse(format!("it grants rampart's own service account ({own})"));
        }
        let affected: Vec<&(usize, Subject)> = match &self.removal {
            None => subjects.iter().collect(),
            Some(rm) => subjects.iter().filter(|(_, s)| rm.matches(s)).collect(),
        };
        for (_, s) in &affected {
            if let Some(why) = r.policy.subject_refusal(s) {
                return Judgement::Refuse(why);
            }
        }
        match &self.removal {
            None => Judgement::Delete {
                uid: uid.to_owned(),
                rv: rv.to_owned(),
            },
            Some(rm) if affected.is_empty() => Judgement::Nothing(format!(
                "{} already absent from {} (uid {uid}); nothing to remove",
                rm.describe(),
                self.b
            )),
            Some(_) => {
                // Exactly the object read: the tests fail (422) if it changed in between.
                let mut ops = vec![
                    json!({"op": "test", "path": "/metadata/uid", "value": uid}),
                    json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}),
                ];
                for (i, _) in affected.iter().rev() {
                    ops.push(json!({"op": "remove", "path": format!("/subjects/{i}")}));
                }
                Judgement::Patch {
                    ops: Value::Array(ops),
                    removed: affected.iter().map(|(_, s)| s.clone()).collect(),
                }
            }
        }
    }

    fn undo_record(&self, live: &Value, removed: &[Subject]) -> Value {
        let removed_values: Vec<Value> = live
            .get("subjects")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter(|v| {
                        Subject::from_value(v)
                            .is_some_and(|s| removed.iter().any(|r| r.same_as(&s)))
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "responder": "revoke_binding",
            "version": UNDO_VERSION,
            "delivery": self.d.id,
            "alert": self.d.alert.id,
            "playbook": self.d.alert.playbook,
            "cluster": self.d.alert.cluster,
            "mode": self.mode.as_str(),
            "kind": self.b.kind.as_str(),
            "namespace": self.b.namespace,
            "name": self.b.name,
            "uid": meta(live, "uid"),
            "removed": removed_values,
            "object": live,
        })
    }
}

/// What an API failure means for the delivery: a permanent, reported failure, or a retry later.
pub(super) fn classify(e: Failure, verb: &str, b: &BindingRef) -> Result<Effect, Retry> {
    match e {
        Failure::Forbidden(m) => {
            // Changing subjects passes the API server's escalation check only with `bind` on the role.
            let hint = if verb == "patch" {
                "removing subjects also needs the bind verb on the binding's role \
                 (deploy/rbac/optional-bind.yaml), or use delete_binding()"
            } else {
                "grant it with deploy/rbac or act by hand"
            };
            Ok(failed(format!(
                "rampart's service account may not {verb} {} ({b}); {hint}: {m}",
                b.kind.resource()
            )))
        }
        Failure::Unauthorized => Err(Retry {
            error: format!("{verb} {b}: {}", Failure::Unauthorized),
            after: None,
        }),
        Failure::Unavailable { error, after } => Err(Retry { error, after }),
        Failure::NotFound => Ok(Effect::done(format!("{b} is already absent"))),
        Failure::Conflict(m) => Ok(failed(format!(
            "{b} changed while rampart tried to {verb} it; nothing was changed: {m}"
        ))),
        Failure::Rejected { code, message } => Ok(failed(format!(
            "the API server rejected the {verb} of {b} ({code}): {message}"
        ))),
    }
}

/// Carries out (or, dry-run, describes) one revocation.
pub(super) async fn deliver(
    r: &KubernetesResponder,
    d: &Delivery,
    dry_run: bool,
) -> Result<Effect, Retry> {
    if let Some(dec) = &d.approved {
        if !dec.approve {
            return Ok(Effect::with_status(
                Status::Rejected,
                format!("{} rejected the revocation; nothing was changed", dec.by),
            ));
        }
    }
    if d.awaits_approval() && !dry_run {
        // The dispatcher should not hand over unapproved work; if it does, nothing happens yet.
        return Err(Retry {
            error: "the revocation waits for a human's approval".into(),
            after: None,
        });
    }
    let job = match Job::from_delivery(d) {
        Ok(j) => j,
        Err(why) => return Ok(failed(format!("refused: {why}; nothing was changed"))),
    };
    let b = &job.b;
    let approval = if d.awaits_approval() {
        " once approved"
    } else {
        ""
    };
    let static_refusal = r.policy.binding_refusal(b);
    let refused = |why: &str| failed(format!("refused to change {b}: {why}; nothing was changed"));
    for attempt in 0..2 {
        let live = match r.api.get(b).await {
            Ok(v) => v,
            Err(e) => {
                if let Some(why) = &static_refusal {
                    return Ok(refused(why));
                }
                return match e {
                    Failure::NotFound if dry_run => Ok(Effect::with_status(
                        Status::DryRun,
                        format!("would do nothing: {b} is already absent"),
                    )),
                    Failure::NotFound => Ok(Effect::done(format!(
                        "{b} is already absent; nothing to revoke"
                    ))),
                    e => classify(e, "get", b),
                };
            }
        };
        let uid = meta(&live, "uid").unwrap_or("?").to_owned();
        let (what, removed, result, verb) = match job.judge(r, &live) {
            Judgement::Refuse(why) => {
                if !dry_run {
                    let note = job.note(&format!("refused to change this binding: {why}"));
                    events::record(&r.api, &r.reporter, b, &live, Action::Refused, &note).await;
                }
                return Ok(refused(&why));
            }
            Judgement::Nothing(detail) => {
                let status = if dry_run {
                    Status::DryRun
                } else {
                    Status::Done
                };
                return Ok(Effect::with_status(status, detail));
            }
            Judgement::Delete { uid, rv } => {
                let what = format!("delete {b} (uid {uid})");
                let res = if dry_run {
                    Ok(())
                } else {
                    r.api.delete(b, &uid, &rv).await
                };
                (what, Vec::new(), res, "delete")
            }
            Judgement::Patch { ops, removed } => {
                let what = format!("remove {} from {b} (uid {uid})", list(&removed));
                let res = if dry_run {
                    Ok(())
                } else {
                    r.api.json_patch(b, &ops).await.map(|_| ())
                };
                (what, removed, res, "patch")
            }
        };
        if dry_run {
            return Ok(Effect::with_status(
                Status::DryRun,
                format!("would {what}{approval}"),
            ));
        }
        match result {
            Ok(()) => {
                let done = match job.mode {
                    Mode::Delete => format!("deleted {b} (uid {uid})"),
                    Mode::RemoveSubject => {
                        format!("removed {} from {b} (uid {uid})", list(&removed))
                    }
                };
                let note = job.note(&done);
                events::record(&r.api, &r.reporter, b, &live, Action::Revoke, &note).await;
                tracing::info!(
                    binding = %b,
                    uid = %uid,
                    mode = job.mode.as_str(),
                    delivery = %d.id,
                    "binding revoked"
                );
                return Ok(Effect {
                    status: Status::Done,
                    detail: done,
                    undo: job.undo_record(&live, &removed),
                });
            }
            Err(Failure::NotFound) => {
                return Ok(Effect::done(format!(
                    "{b} was deleted by someone else while rampart acted; nothing left to revoke"
                )))
            }
            Err(Failure::Conflict(m)) if attempt == 0 => {
                tracing::info!(
                    binding = %b,
                    reason = %m,
                    "binding changed since it was read; reading it again"
                );
            }
            Err(Failure::Conflict(m)) => {
                return Ok(failed(format!(
                    "{b} changed again while rampart re-read it; nothing was changed, \
                     review it by hand ({m})"
                )))
            }
            Err(e) => return classify(e, verb, b),
        }
    }
    Ok(failed(format!(
        "{b} kept changing while rampart acted; nothing was changed, review it by hand"
    )))
}
