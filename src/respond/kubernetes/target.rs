//! What a revocation acts on: the RoleBinding or ClusterRoleBinding the judged event touched, found in the event when the alert is raised and carried by the delivery.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::AuditEvent;

/// The RoleBinding or ClusterRoleBinding an event acted on, as the event recorded it: exactly
/// this object (by uid, or by creation time when the audit level carried no uid) may be changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindingTarget {
    /// `RoleBinding` or `ClusterRoleBinding`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// The object's uid (from the response object, else objectRef), when the event carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Subjects in the judged object (response object, else request object); empty at Metadata level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<Value>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub role_ref: Value,
    /// Event time (seconds since the epoch) of the judged event: a binding created later is another object.
    pub judged_at: i64,
}

/// The binding `ev` acted on, when its object is a RoleBinding or ClusterRoleBinding.
pub fn binding_target(ev: &AuditEvent) -> Option<BindingTarget> {
    let o = ev.object_ref.as_ref()?;
    if o.api_group.as_deref() != Some("rbac.authorization.k8s.io") || o.subresource.is_some() {
        return None;
    }
    let kind = match o.resource.as_deref()? {
        "rolebindings" => "RoleBinding",
        "clusterrolebindings" => "ClusterRoleBinding",
        _ => return None,
    };
    let parse = |raw: &Option<Box<serde_json::value::RawValue>>| -> Value {
        raw.as_ref()
            .and_then(|r| serde_json::from_str(r.get()).ok())
            .unwrap_or(Value::Null)
    };
    // The response object is the binding as stored; the request object is what was asked for.
    let resp = parse(&ev.response_object);
    let req = parse(&ev.request_object);
    let obj = if resp.get("kind").and_then(Value::as_str) == Some(kind) {
        &resp
    } else {
        &req
    };
    let meta = |f: &str| {
        obj.pointer(&format!("/metadata/{f}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let name = o
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| meta("name"))?;
    let from_resp = |f: &str| {
        resp.pointer(&format!("/metadata/{f}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Some(BindingTarget {
        kind: kind.to_owned(),
        namespace: o.namespace.clone().filter(|n| !n.is_empty()),
        name,
        uid: from_resp("uid").or_else(|| o.uid.clone().filter(|u| !u.is_empty())),
        resource_version: from_resp("resourceVersion"),
        subjects: obj
            .get("subjects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        role_ref: obj.get("roleRef").cloned().unwrap_or(Value::Null),
        judged_at: ev.event_time(),
    })
}

impl BindingTarget {
    /// The target a delivery carries, when it carries one of this form.
    pub fn of(d: &crate::state::model::Delivery) -> Option<Self> {
        d.target
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}
