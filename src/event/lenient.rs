//! Events a shipper or a SIEM trimmed: what the API server always writes (auditID, stage, level, times) is filled in, and the event says so.

use serde_json::{Map, Value};

use super::decode::DecodeError;
use super::AuditEvent;

/// Names of the fields that can be filled in, as listed in `provenance.filled` and counted by
/// `rampart_fields_filled_total{field}`.
pub const FILLABLE: [&str; 5] = [
    "auditID",
    "stage",
    "level",
    "requestReceivedTimestamp",
    "stageTimestamp",
];

/// Completes an event that decoded as it stands: only its time can be missing, as in
/// audit.k8s.io/v1beta1 events that carry `timestamp` instead of `requestReceivedTimestamp`.
pub(super) fn complete(mut ev: AuditEvent) -> AuditEvent {
    if ev.request_received_timestamp.is_none() {
        if let Some(t) = ev
            .legacy_timestamp
            .take()
            .or_else(|| ev.stage_timestamp.clone())
        {
            ev.request_received_timestamp = Some(t);
            ev.provenance.filled.push("requestReceivedTimestamp".into());
        }
    }
    ev
}

/// Decodes an event that lacks fields the model requires, when it still says who (`user.username`),
/// did what (`verb`) to what (`objectRef` or `requestURI`); anything less stays an error naming
/// the field. `strict` is the error of the ordinary decode, kept for text that is not an object.
pub(super) fn event(text: &str, strict: &serde_json::Error) -> Result<AuditEvent, DecodeError> {
    const FORM: &str = "audit event";
    let mut map: Map<String, Value> =
        serde_json::from_str(text).map_err(|_| DecodeError::Invalid(strict.to_string()))?;
    let text_of = |m: &Map<String, Value>, k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if text_of(&map, "verb").is_none() {
        return Err(DecodeError::form(FORM, "no verb"));
    }
    let user = map.get("user").and_then(|u| u.get("username"));
    if user.and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(DecodeError::form(FORM, "no user (user.username)"));
    }
    if !map.get("objectRef").is_some_and(Value::is_object) && text_of(&map, "requestURI").is_none()
    {
        return Err(DecodeError::form(FORM, "neither objectRef nor requestURI"));
    }
    let mut filled: Vec<String> = Vec::new();
    let mut fill = |map: &mut Map<String, Value>, key: &str, value: String| {
        map.insert(key.to_owned(), Value::String(value));
        filled.push(key.to_owned());
    };
    if text_of(&map, "auditID").is_none() {
        fill(&mut map, "auditID", derived_id(text));
    }
    if !map.contains_key("stage") {
        fill(&mut map, "stage", "ResponseComplete".to_owned());
    }
    if !map.contains_key("level") {
        let level = if map.contains_key("responseObject") {
            "RequestResponse"
        } else if map.contains_key("requestObject") {
            "Request"
        } else {
            "Metadata"
        };
        fill(&mut map, "level", level.to_owned());
    }
    if text_of(&map, "requestReceivedTimestamp").is_none() {
        if let Some(t) = text_of(&map, "timestamp").or_else(|| text_of(&map, "stageTimestamp")) {
            fill(&mut map, "requestReceivedTimestamp", t);
        }
    }
    if text_of(&map, "stageTimestamp").is_none() {
        if let Some(t) = text_of(&map, "requestReceivedTimestamp") {
            fill(&mut map, "stageTimestamp", t);
        }
    }
    let mut ev: AuditEvent = serde_json::from_value(Value::Object(map))
        .map_err(|e| DecodeError::form(FORM, e.to_string()))?;
    ev.provenance.filled = filled;
    Ok(ev)
}

/// An auditID derived from the record's own bytes, so a replay of the same record gets the same
/// ID and deduplication and exactly-once effects still hold. Shaped like the API server's UUIDs.
pub(super) fn derived_id(text: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let h: String = d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Gives events decoded from an envelope, from `from` on, the envelope's time when they have none.
pub(super) fn fill_time(events: &mut [AuditEvent], from: usize, time: Option<&str>) {
    let Some(time) = time.filter(|t| !t.is_empty()) else {
        return;
    };
    for ev in events.iter_mut().skip(from) {
        if ev.request_received_timestamp.is_none() {
            ev.request_received_timestamp = Some(time.to_owned());
            ev.provenance.filled.push("requestReceivedTimestamp".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict_err(text: &str) -> serde_json::Error {
        serde_json::from_str::<AuditEvent>(text).unwrap_err()
    }

    fn lenient(v: serde_json::Value) -> Result<AuditEvent, DecodeError> {
        let text = v.to_string();
        event(&text, &strict_err(&text))
    }

    #[test]
    fn a_trimmed_event_is_completed_and_lists_what_was_filled() {
        let ev = lenient(serde_json::json!({
            "verb": "create", "user": {"username": "mallory"},
            "objectRef": {"resource": "clusterrolebindings", "name": "x"},
            "timestamp": "2026-11-16T10:00:00Z"
        }))
        .unwrap();
        assert_eq!(ev.stage.as_str(), "ResponseComplete");
        assert_eq!(
            ev.request_received_timestamp.as_deref(),
            Some("2026-11-16T10:00:00Z")
        );
        assert_eq!(
            ev.provenance.filled,
            [
                "auditID",
                "stage",
                "level",
                "requestReceivedTimestamp",
                "stageTimestamp"
            ]
        );
        assert!(FILLABLE
            .iter()
            .all(|f| ev.provenance.filled.contains(&f.to_string())));
    }

    #[test]
    fn the_derived_id_depends_only_on_the_record() {
        let a = derived_id(r#"{"verb":"get"}"#);
        assert_eq!(a, derived_id(r#"{"verb":"get"}"#));
        assert_ne!(a, derived_id(r#"{"verb":"list"}"#));
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn without_a_verb_a_user_or_a_target_it_is_an_error_naming_the_field() {
        let cases = [
            (
                serde_json::json!({"user": {"username": "a"}, "requestURI": "/api"}),
                "no verb",
            ),
            (
                serde_json::json!({"verb": "get", "user": {}, "requestURI": "/api"}),
                "no user",
            ),
            (
                serde_json::json!({"verb": "get", "user": {"username": "a"}}),
                "neither objectRef nor requestURI",
            ),
        ];
        for (v, why) in cases {
            let e = lenient(v).unwrap_err().to_string();
            assert!(e.starts_with("audit event: "), "{e}");
            assert!(e.contains(why), "{e}");
        }
    }
}
