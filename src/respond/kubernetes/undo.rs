//! Undo of a revocation from its journal record: recreate a deleted binding, or put removed subjects back, without overwriting a binding that changed since in a conflicting way.

use serde_json::{json, Map, Value};

use super::client::{Api, BindingRef, Failure};
use super::events::{self, Action, Reporter};
use super::revoke::UNDO_VERSION;
use super::safety::Subject;

/// The annotation a recreated binding carries: the uid of the object rampart deleted.
pub const RESTORED_FROM: &str = "rampart.dev/restored-from";

/// Why an undo did not happen (never a token or URL in the text).
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    /// The record is not one this responder wrote.
    #[error("not a binding revocation record: {0}")]
    Invalid(String),
    /// The binding changed since in a way a restore would overwrite.
    #[error("{0}")]
    Conflict(String),
    /// rampart's identity may not restore it.
    #[error("{0}")]
    Forbidden(String),
    /// The API server could not be reached or failed; try again later.
    #[error("{0}")]
    Unavailable(String),
    /// The API server refused the restore.
    #[error("{0}")]
    Rejected(String),
    /// No client could be built.
    #[error(transparent)]
    Connect(#[from] super::client::ConnectError),
}

fn map_failure(e: Failure, verb: &str, b: &BindingRef) -> UndoError {
    match e {
        Failure::Forbidden(m) => UndoError::Forbidden(format!(
            "the identity running undo may not {verb} {} ({b}); restoring a binding needs {verb} on {} and bind on its role: {m}",
            b.kind.resource(),
            b.kind.resource()
        )),
        Failure::Conflict(m) => UndoError::Conflict(format!(
            "{b} changed while it was being restored; nothing was changed, run undo again: {m}"
        )),
        Failure::NotFound => UndoError::Conflict(format!(
            "{b} disappeared while it was being restored; run undo again"
        )),
        e @ (Failure::Unauthorized | Failure::Unavailable { .. }) => {
            UndoError::Unavailable(format!("{verb} {b}: {e}; try again later"))
        }
        Failure::Rejected { code, message } => UndoError::Rejected(format!(
            "the API server rejected the {verb} of {b} ({code}): {message}"
        )),
    }
}

/// The saved object, ready to be created again: server-set fields dropped, labels and
/// annotations kept, and `rampart.dev/restored-from` naming the uid it was.
pub fn recreatable(saved: &Value, b: &BindingRef) -> Value {
    let mut obj = saved.clone();
    let uid = saved
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            m.remove(f);
        }
        let ann = m
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !ann.is_object() {
            *ann = Value::Object(Map::new());
        }
        if let Some(a) = ann.as_object_mut() {
            a.insert(RESTORED_FROM.into(), json!(uid));
        }
    }
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), json!("rbac.authorization.k8s.io/v1"));
        o.insert("kind".into(), json!(b.kind.as_str()));
        o.remove("status");
    }
    obj
}

struct Record<'a> {
    b: BindingRef,
    mode: &'a str,
    object: &'a Value,
    uid: &'a str,
    removed: Vec<Subject>,
    delivery: &'a str,
}

fn parse(rec: &Value) -> Result<Record<'_>, UndoError> {
    let s = |k: &str| rec.get(k).and_then(Value::as_str);
    if s("responder") != Some("revoke_binding") {
        return Err(UndoError::Invalid(
            "it was not written by the revoke_binding responder".into(),
        ));
    }
    if rec.get("version").and_then(Value::as_u64) != Some(UNDO_VERSION) {
        return Err(UndoError::Invalid(format!(
            "unknown record version {} (this rampart writes {UNDO_VERSION})",
            rec.get("version").unwrap_or(&Value::Null)
        )));
    }
    let mode = match s("mode") {
        Some(m @ ("delete" | "remove_subject")) => m,
        other => return Err(UndoError::Invalid(format!("unknown mode {other:?}"))),
    };
    let b = BindingRef::new(
        s("kind").unwrap_or(""),
        s("namespace"),
        s("name").unwrap_or(""),
    )
    .map_err(|e| UndoError::Invalid(e.to_string()))?;
    let object = rec
        .get("object")
        .filter(|o| o.is_object())
        .ok_or_else(|| UndoError::Invalid("it holds no saved object".into()))?;
    let uid = object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .ok_or_else(|| UndoError::Invalid("the saved object has no uid".into()))?;
    let removed = rec
        .get("removed")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Subject::from_value).collect())
        .unwrap_or_default();
    Ok(Record {
        b,
        mode,
        object,
        uid,
        removed,
        delivery: s("delivery").unwrap_or("?"),
    })
}

fn subjects_of(v: &Value) -> Vec<Subject> {
    v.get("subjects")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Subject::from_value).collect())
        .unwrap_or_default()
}

fn names(v: &[Subject]) -> String {
    let n: Vec<String> = v.iter().map(ToString::to_string).collect();
    format!(
        "subject{} {}",
        if v.len() == 1 { "" } else { "s" },
        n.join(", ")
    )
}

/// Restores what the revocation recorded in `rec` changed; says what it did in one sentence.
pub async fn restore(api: &Api, reporter: &Reporter, rec: &Value) -> Result<String, UndoError> {
    let r = parse(rec)?;
    let b = &r.b;
    let note = |what: &str| format!("rampart {what} (undo of delivery {})", r.delivery);
    let live = match api.get(b).await {
        Ok(v) => Some(v),
        Err(Failure::NotFound) => None,
        Err(e) => return Err(map_failure(e, "get", b)),
    };
    let Some(live) = live else {
        let obj = recreatable(r.object, b);
        let created = api
            .create(b, &obj)
            .await
            .map_err(|e| match e {
                Failure::Conflict(_) => UndoError::Conflict(format!(
                    "{b} was created by someone else while rampart restored it; nothing was changed, compare it with the saved object"
                )),
                e => map_failure(e, "create", b),
            })?;
        let new_uid = created
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let detail = format!(
            "recreated {b} (new uid {new_uid}) from the object rampart saved (uid {}) with its {} and roleRef",
            r.uid,
            names(&subjects_of(r.object))
        );
        events::record(api, reporter, b, &created, Action::Restore, &note(&detail)).await;
        return Ok(detail);
    };
    let live_uid = live
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let restored_from = live
        .pointer(&format!(
            "/metadata/annotations/{}",
            RESTORED_FROM.replace('/', "~1")
        ))
        .and_then(Value::as_str);
    let ours = live_uid == r.uid || restored_from == Some(r.uid);
    if r.mode == "delete" {
        return if restored_from == Some(r.uid) {
            Ok(format!(
                "{b} is already restored (uid {live_uid}, restored from {})",
                r.uid
            ))
        } else {
            Err(UndoError::Conflict(format!(
                "{b} exists again (uid {live_uid}) and was not restored by rampart; it was not overwritten, compare it with the saved object by hand"
            )))
        };
    }
    if !ours {
        return Err(UndoError::Conflict(format!(
            "{b} was recreated since the revocation (uid now {live_uid}, was {}); it was not changed, add the subjects back by hand if still wanted",
            r.uid
        )));
    }
    if live.get("roleRef") != r.object.get("roleRef") {
        return Err(UndoError::Conflict(format!(
            "{b} now refers to another role; it was not changed"
        )));
    }
    let present = subjects_of(&live);
    let missing: Vec<&Subject> = r
        .removed
        .iter()
        .filter(|s| !present.iter().any(|p| p.same_as(s)))
        .collect();
    if missing.is_empty() {
        return Ok(format!(
            "{b} already has {} again; nothing to restore",
            names(&r.removed)
        ));
    }
    let rv = live
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let saved: Vec<&Value> = rec
        .get("removed")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|v| {
                    Subject::from_value(v).is_some_and(|s| missing.iter().any(|m| m.same_as(&s)))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ops = vec![
        json!({"op": "test", "path": "/metadata/uid", "value": live_uid}),
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}),
    ];
    if live.get("subjects").is_some_and(Value::is_array) {
        ops.extend(
            saved
                .iter()
                .map(|v| json!({"op": "add", "path": "/subjects/-", "value": v})),
        );
    } else {
        ops.push(json!({"op": "add", "path": "/subjects", "value": saved}));
    }
    let patched = api
        .json_patch(b, &Value::Array(ops))
        .await
        .map_err(|e| map_failure(e, "patch", b))?;
    let back: Vec<Subject> = missing.into_iter().cloned().collect();
    let detail = format!("added {} back to {b} (uid {live_uid})", names(&back));
    events::record(api, reporter, b, &patched, Action::Restore, &note(&detail)).await;
    Ok(detail)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn recreatable_drops_server_fields_and_marks_the_origin() {
        let b = BindingRef::new("ClusterRoleBinding", None, "x").unwrap();
        let saved = json!({
            "kind": "ClusterRoleBinding",
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {
                "name": "x", "uid": "u1", "resourceVersion": "9",
                "creationTimestamp": "2024-01-01T00:00:00Z",
                "managedFields": [{}],
                "labels": {"team": "a"},
                "annotations": {"note": "keep"}
            },
            "subjects": [{"kind": "User", "name": "bob"}],
            "roleRef": {"kind": "ClusterRole", "name": "view", "apiGroup": "rbac.authorization.k8s.io"}
        });
        let o = recreatable(&saved, &b);
        let m = &o["metadata"];
        assert!(m.get("uid").is_none() && m.get("resourceVersion").is_none());
        assert!(m.get("creationTimestamp").is_none() && m.get("managedFields").is_none());
        assert_eq!(m["labels"]["team"], "a");
        assert_eq!(m["annotations"]["note"], "keep");
        assert_eq!(m["annotations"][RESTORED_FROM], "u1");
        assert_eq!(o["subjects"], saved["subjects"]);
    }

    #[test]
    fn foreign_records_are_refused() {
        assert!(matches!(
            parse(&json!({"responder": "slack"})),
            Err(UndoError::Invalid(_))
        ));
        assert!(matches!(
            parse(&json!({"responder": "revoke_binding", "version": 99})),
            Err(UndoError::Invalid(_))
        ));
    }
}
