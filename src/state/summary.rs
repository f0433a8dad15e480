//! The event an alert carries: the audit event without its request and response bodies, with its enrichment, typed so that renderers read fields (a renamed field fails to compile instead of blanking a card).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{
    AuditEvent, Level, ObjectReference, Provenance, ResponseStatus, Stage, UserInfo,
};
use crate::model::Enrichment;

/// The alert's event, in the audit event's own JSON form (camelCase, `auditID`, `requestURI`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default)]
    pub level: Level,
    #[serde(rename = "auditID", default)]
    pub audit_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    #[serde(rename = "requestURI", default)]
    pub request_uri: String,
    #[serde(default)]
    pub verb: String,
    #[serde(default)]
    pub user: UserInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonated_user: Option<UserInfo>,
    #[serde(rename = "sourceIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub source_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<ObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<ResponseStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_received_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub provenance: Provenance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrichment: Option<Enrichment>,
}

/// A present, non-empty text field.
pub fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

impl EventSummary {
    pub fn of(ev: &AuditEvent) -> Self {
        Self {
            kind: ev.kind.map(|_| "Event".to_owned()),
            api_version: ev.api_version.clone(),
            level: ev.level,
            audit_id: ev.audit_id.clone(),
            stage: Some(ev.stage),
            request_uri: ev.request_uri.clone(),
            verb: ev.verb.clone(),
            user: ev.user.clone(),
            impersonated_user: ev.impersonated_user.clone(),
            source_ips: ev.source_ips.clone(),
            user_agent: ev.user_agent.clone(),
            object_ref: ev.object_ref.clone(),
            response_status: ev.response_status.clone(),
            request_received_timestamp: ev.request_received_timestamp.clone(),
            stage_timestamp: ev.stage_timestamp.clone(),
            annotations: ev.annotations.clone(),
            provenance: ev.provenance.clone(),
            enrichment: ev.enrichment.as_deref().cloned(),
        }
    }

    /// The object reference, or an empty one.
    pub fn target(&self) -> &ObjectReference {
        static NONE: ObjectReference = ObjectReference {
            resource: None,
            namespace: None,
            name: None,
            uid: None,
            api_group: None,
            api_version: None,
            resource_version: None,
            subresource: None,
        };
        self.object_ref.as_ref().unwrap_or(&NONE)
    }

    /// The target's namespace, when it has one.
    pub fn namespace(&self) -> Option<&str> {
        non_empty(&self.target().namespace)
    }

    /// Who acted, as the API server named them.
    pub fn username(&self) -> Option<&str> {
        Some(self.user.username.as_str()).filter(|s| !s.is_empty())
    }

    /// The response code, when the event has one.
    pub fn code(&self) -> Option<i32> {
        self.response_status.as_ref()?.code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_event_as_json_without_its_bodies() {
        let raw = serde_json::json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
            "auditID": "a1", "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/x/secrets/s",
            "verb": "get", "user": {"username": "alice", "groups": ["dev"], "extra": {"k": ["v"]}},
            "impersonatedUser": {"username": "bob"}, "sourceIPs": ["203.0.113.7", "10.0.0.1"],
            "userAgent": "kubectl/v1.31", "objectRef": {"resource": "secrets", "namespace": "x", "name": "s"},
            "responseStatus": {"code": 200}, "requestObject": {"a": 1}, "responseObject": {"b": 2},
            "requestReceivedTimestamp": "2026-12-07T10:00:00Z", "stageTimestamp": "2026-12-07T10:00:01Z",
            "annotations": {"authorization.k8s.io/decision": "allow"}
        });
        let mut ev = crate::event::decode_record(raw.to_string().as_bytes(), &Default::default())
            .events
            .remove(0);
        ev.enrichment = Some(Box::new(Enrichment {
            identity: crate::model::Identity {
                actor: "alice".into(),
                team: Some("payments".into()),
                ..Default::default()
            },
            ..Default::default()
        }));
        let mut before = serde_json::to_value(&ev).unwrap();
        let m = before.as_object_mut().unwrap();
        for k in ["requestObject", "responseObject", "verdicts"] {
            m.remove(k);
        }
        let summary = serde_json::to_value(EventSummary::of(&ev)).unwrap();
        assert_eq!(summary, before);
        let back: EventSummary = serde_json::from_value(summary).unwrap();
        assert_eq!(back, EventSummary::of(&ev));
    }
}
