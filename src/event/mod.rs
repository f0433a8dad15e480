//! The audit.k8s.io Event model that every later stage reads, and the provenance each event carries.

mod cloud;
mod cluster;
mod decode;
mod lenient;
pub mod time;

pub use cluster::{ClusterHint, ClusterResolver};
pub use decode::{
    decode_record, gunzip, DecodeError, DecodeOptions, Decoded, Failure, Gunzip, Skip, SkipReason,
};
pub use lenient::FILLABLE;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One Kubernetes API audit event (audit.k8s.io/v1 `Event`, v1beta1 accepted).
///
/// Request and response objects stay as raw JSON: most events are never
/// inspected that deeply, and later stages parse only what they look at.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Present in every API-server event; when present it must say `Event`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<EventKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default)]
    pub level: Level,
    #[serde(rename = "auditID")]
    pub audit_id: String,
    pub stage: Stage,
    #[serde(rename = "requestURI", default)]
    pub request_uri: String,
    pub verb: String,
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
    pub request_object: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_object: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_received_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `timestamp` of audit.k8s.io/v1beta1 events, read into `requestReceivedTimestamp`; never written.
    #[serde(rename = "timestamp", default, skip_serializing)]
    pub legacy_timestamp: Option<String>,
    /// Where this event came from; filled by the pipeline, never by the wire.
    #[serde(skip_deserializing, default)]
    pub provenance: Provenance,
    /// Who, from where, to what, and how unusual; filled by the enrichers.
    #[serde(skip_deserializing, default, skip_serializing_if = "Option::is_none")]
    pub enrichment: Option<Box<crate::model::Enrichment>>,
    /// What the playbooks concluded; empty when none fired.
    #[serde(skip_deserializing, default, skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<crate::model::Verdict>,
}

/// The only accepted value of `kind` on a single event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventKind {
    Event,
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = EventKind;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("kind \"Event\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EventKind, E> {
                if v == "Event" {
                    Ok(EventKind::Event)
                } else {
                    Err(E::custom(format!("kind is {v:?}, expected \"Event\"")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// How much of the request the API server recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Level {
    None,
    #[default]
    Metadata,
    Request,
    RequestResponse,
}

/// The point in request handling at which the event was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
    Panic,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }
}

/// The authenticated (or impersonated) user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    #[serde(default)]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The object the request was about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
}

/// The response status (a metav1.Status subset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The kind of source an event arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    #[default]
    Kafka,
    Webhook,
    File,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Kafka => "kafka",
            SourceKind::Webhook => "webhook",
            SourceKind::File => "file",
        }
    }
}

/// Where an event came from, precisely enough to find the original record again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub source: SourceKind,
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Position of the event inside its record (EventList item, array element).
    #[serde(default)]
    pub index: u32,
    /// Receive time, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// Fields the record lacked and the decoder filled in (`auditID`, `stage`, `level`,
    /// `requestReceivedTimestamp`, `stageTimestamp`); empty for a complete event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filled: Vec<String>,
}

impl AuditEvent {
    /// `resource` or `resource/subresource`, empty when the request had no object.
    pub fn resource_path(&self) -> String {
        match &self.object_ref {
            Some(o) => match (&o.resource, &o.subresource) {
                (Some(r), Some(s)) => format!("{r}/{s}"),
                (Some(r), None) => r.clone(),
                _ => String::new(),
            },
            None => String::new(),
        }
    }

    /// When the API server received the request (seconds since the epoch), else when rampart did.
    pub fn event_time(&self) -> i64 {
        self.request_received_timestamp
            .as_deref()
            .and_then(time::parse_rfc3339)
            .unwrap_or(self.provenance.received_at_ms / 1000)
    }

    /// The HTTP status code of the response, when the stage has one.
    pub fn response_code(&self) -> Option<i32> {
        self.response_status.as_ref().and_then(|s| s.code)
    }
}
