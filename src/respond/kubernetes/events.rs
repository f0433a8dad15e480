//! Kubernetes Events on the bindings rampart revoked, refused or restored, so that `kubectl describe` shows who changed what and why.

use serde_json::{json, Value};

use super::client::{Api, BindingRef};

/// What an Event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Revoke,
    Refused,
    Restore,
}

impl Action {
    fn parts(self) -> (&'static str, &'static str, &'static str) {
        // (action, reason, type)
        match self {
            Action::Revoke => ("Revoke", "Revoked", "Warning"),
            Action::Refused => ("Refused", "Refused", "Warning"),
            Action::Restore => ("Restore", "Restored", "Normal"),
        }
    }
}

/// Who reports Events, and whether at all.
#[derive(Debug, Clone)]
pub struct Reporter {
    pub enabled: bool,
    pub controller: String,
    pub instance: String,
}

/// Now as a `MicroTime` (`2006-01-02T15:04:05.000000Z`).
fn micro_time_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let base = crate::event::time::format_rfc3339(secs);
    format!("{}.{:06}Z", base.trim_end_matches('Z'), now.subsec_micros())
}

/// The `events.k8s.io/v1` Event about `live` (the binding as read).
pub fn build(r: &Reporter, b: &BindingRef, live: &Value, action: Action, note: &str) -> Value {
    let (action, reason, kind) = action.parts();
    let meta = |f: &str| live.pointer(&format!("/metadata/{f}")).cloned();
    let mut regarding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": b.kind.as_str(),
        "name": b.name,
    });
    if let Some(ns) = &b.namespace {
        regarding["namespace"] = json!(ns);
    }
    for (from, to) in [("uid", "uid"), ("resourceVersion", "resourceVersion")] {
        if let Some(v) = meta(from) {
            regarding[to] = v;
        }
    }
    // The API server limits notes to 1 kB.
    let mut note: String = note.to_owned();
    if note.len() > 1000 {
        let mut cut = 1000;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": { "generateName": "rampart-", "namespace": b.event_namespace() },
        "eventTime": micro_time_now(),
        "reportingController": r.controller,
        "reportingInstance": r.instance,
        "action": action,
        "reason": reason,
        "type": kind,
        "regarding": regarding,
        "note": note,
    })
}

/// Records the Event; a failure is logged, never fatal (the change itself is what matters).
pub async fn record(
    api: &Api,
    r: &Reporter,
    b: &BindingRef,
    live: &Value,
    action: Action,
    note: &str,
) {
    if !r.enabled {
        return;
    }
    let ev = build(r, b, live, action, note);
    if let Err(e) = api.create_event(b.event_namespace(), &ev).await {
        tracing::warn!(binding = %b, error = %e, "could not record a Kubernetes Event for the binding");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn events_name_rampart_and_the_exact_object() {
        let r = Reporter {
            enabled: true,
            controller: "rampart".into(),
            instance: "rampart-0".into(),
        };
        let b = BindingRef::new("ClusterRoleBinding", None, "x").unwrap();
        let live = json!({"metadata": {"uid": "u1", "resourceVersion": "7"}});
        let ev = build(&r, &b, &live, Action::Revoke, &"n".repeat(3000));
        assert_eq!(ev["reportingController"], "rampart");
        assert_eq!(ev["metadata"]["namespace"], "default");
        assert_eq!(ev["regarding"]["uid"], "u1");
        assert_eq!(ev["action"], "Revoke");
        assert_eq!(ev["note"].as_str().unwrap().len(), 1000);
        let t = ev["eventTime"].as_str().unwrap();
        assert_eq!(t.len(), "2006-01-02T15:04:05.000000Z".len(), "{t}");
    }
}
