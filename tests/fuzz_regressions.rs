//! Inputs a fuzz target (fuzz/, docs/fuzzing.md) failed on, kept in tests/data/fuzz-regressions/ and fed to the same functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use rampart::config::Secret;
use rampart::event::{decode_record, DecodeError, DecodeOptions};
use rampart::playbook::testcases::parse_cases;
use rampart::respond::slack::interact::{signature, Rejection, Verifier};
use serde_json::Value;

fn input(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz-regressions")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_record_led_by_whitespace_json_does_not_allow_is_dead_lettered_not_dropped() {
    // The decode target's layout: a mode byte (0x09: plain, no wrapped fields), then the record.
    let data = input("decode-vertical-tab-before-empty-array");
    let (&mode, record) = data.split_first().unwrap();
    assert_eq!(mode, 0x09);
    assert_eq!(record, b"\x0b[]");
    let opts = DecodeOptions {
        wrapped_fields: Vec::new(),
    };
    let d = decode_record(record, &opts);
    assert!(d.events.is_empty());
    assert_eq!(d.failures.len(), 1, "the record vanished");
    assert!(d.failures[0].whole_record);
    assert_eq!(d.failures[0].bytes, record);
    assert!(matches!(d.failures[0].error, DecodeError::Invalid(_)));
}

#[test]
fn a_gke_entry_without_timestamp_is_the_same_event_when_read_again() {
    // Mode 0x00: default options. A GKE sink entry whose `timestamp` the fuzzer broke: the event
    // took no request time, while the same event read again as JSON took its stage time.
    let data = input("decode-gke-entry-without-timestamp");
    let (&mode, record) = data.split_first().unwrap();
    assert_eq!(mode, 0x00);
    let d = decode_record(record, &DecodeOptions::default());
    assert!(!d.events.is_empty());
    for ev in &d.events {
        assert!(
            ev.request_received_timestamp.is_some(),
            "{} has no request time",
            ev.audit_id
        );
        let json = serde_json::to_string(ev).unwrap();
        let again = decode_record(json.as_bytes(), &DecodeOptions::default());
        let mut a = serde_json::to_value(ev).unwrap();
        let mut b = serde_json::to_value(&again.events[0]).unwrap();
        a.as_object_mut().unwrap().remove("provenance");
        b.as_object_mut().unwrap().remove("provenance");
        assert_eq!(a, b, "round trip changed {}", ev.audit_id);
    }
}

/// The slack_interaction target's layout: timestamp header, signature header, body, split at the first two newlines.
fn slack_request(data: &[u8]) -> (String, String, Vec<u8>) {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let mut header = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let (ts, sig) = (header(), header());
    (ts, sig, parts.next().unwrap_or_default().to_vec())
}

#[test]
fn a_slack_timestamp_at_the_bottom_of_i64_is_stale_rather_than_an_overflow() {
    let (ts, sig, body) = slack_request(&input("slack_interaction-timestamp-overflow"));
    assert_eq!(ts, i64::MIN.to_string());
    let secret = Secret::new("fuzz-signing-secret");
    let now = 1_800_000_000;
    let verifier = Verifier::default();
    let verdict = verifier.verify(&secret, Some(&ts), Some(&sig), &body, now);
    assert_eq!(verdict, Err(Rejection::Stale));
    // Even correctly signed, that timestamp is outside the window.
    let signed = signature(secret.expose(), &ts, &body);
    let verdict = verifier.verify(&secret, Some(&ts), Some(&signed), &body, now);
    assert_eq!(verdict, Err(Rejection::Stale));
}

fn has_merge_key(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key("<<") || m.values().any(has_merge_key),
        Value::Array(items) => items.iter().any(has_merge_key),
        _ => false,
    }
}

#[test]
fn a_merge_key_merged_in_through_another_merge_key_is_resolved_too() {
    let text = String::from_utf8(input("playbook_tests-chained-merge.tests.yaml")).unwrap();
    let cases = parse_cases(&text).unwrap();
    assert_eq!(cases.len(), 3);
    for case in &cases {
        let event = case.event.as_ref().unwrap();
        assert!(!has_merge_key(event), "{}: {event}", case.name);
        let d = decode_record(event.to_string().as_bytes(), &Default::default());
        assert_eq!(d.events.len(), 1, "{}: {:?}", case.name, d.failures);
    }
    // The chained case has the fields of both mappings it merges, and its own override.
    let chained = &cases[2].event.as_ref().unwrap();
    assert_eq!(chained["verb"], "get");
    assert_eq!(chained["user"]["username"], "alice");
    assert_eq!(
        chained["requestURI"],
        "/api/v1/namespaces/default/secrets/db"
    );
    assert_eq!(chained["auditID"], "a3");
}
