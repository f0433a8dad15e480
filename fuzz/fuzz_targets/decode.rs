//! Fuzz target: `decode_record` on any bytes, in every wire form (Event, EventList, arrays, JSON lines, wrapped, trimmed events, EKS CloudWatch and Firehose, AKS batches and single records, GKE), checking what the decoder promises.
//!
//! Input: one mode byte, then the record. The mode's low two bits pick the
//! `wrapped_fields` option; bit 2 gzips the record first (the EKS delivery
//! form) and also decodes it plain, which must give the same outcome.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use rampart::event::{decode_record, gunzip, AuditEvent, DecodeOptions, Decoded, Provenance};

/// What `decode_record` inflates a gzip'd record to at most.
const MAX_INFLATED: usize = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, record)) = data.split_first() else {
        return;
    };
    let opts = options(mode);
    if mode & 0b100 == 0 {
        let d = decode_record(record, &opts);
        check(record, &d);
        return;
    }
    let zipped = gzip(record);
    let d = decode_record(&zipped, &opts);
    check(&zipped, &d);
    if !record.starts_with(&[0x1f, 0x8b]) {
        // A gzip'd record decodes exactly as the record itself would.
        let plain = decode_record(record, &opts);
        assert_eq!(outcome(&d), outcome(&plain), "gzip changed the outcome");
    }
});

fn options(mode: u8) -> DecodeOptions {
    let fields: &[&str] = match mode & 0b11 {
        0 => return DecodeOptions::default(),
        1 => &[],
        2 => &["payload", "log"],
        // Wrapper names that collide with the keys the container forms are recognised by.
        _ => &["kind", "items", "records", "protoPayload", "message"],
    };
    DecodeOptions {
        wrapped_fields: fields.iter().map(|f| (*f).to_owned()).collect(),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// The invariants of one decoded record.
fn check(record: &[u8], d: &Decoded) {
    // Events are numbered in the order they were found.
    for (i, ev) in d.events.iter().enumerate() {
        assert_eq!(ev.provenance.index as usize, i, "provenance.index");
    }
    // What a whole-record failure dead-letters is the record, or what it inflated to.
    let inflated = record
        .starts_with(&[0x1f, 0x8b])
        .then(|| gunzip(record, MAX_INFLATED).ok())
        .flatten();
    let text: &[u8] = inflated.as_deref().unwrap_or(record);
    for f in &d.failures {
        assert!(
            !f.error.to_string().is_empty(),
            "a failure without a reason"
        );
        if f.whole_record {
            // A whole-record failure is the whole outcome: nothing of the record goes on,
            // so nothing of it may also be an event or a second dead letter.
            assert_eq!(d.failures.len(), 1, "a whole-record failure beside others");
            assert!(d.events.is_empty(), "a whole-record failure beside events");
            assert_eq!(f.index, 0);
            assert!(f.bytes == record || f.bytes == text, "dead-lettered bytes");
        } else {
            // Items are cut from the record's text, so they are text too.
            assert!(
                std::str::from_utf8(&f.bytes).is_ok(),
                "item bytes not UTF-8"
            );
        }
    }
    // Nothing is dropped silently: a record that yields neither events nor
    // failures is well-formed JSON (an empty list, a keep-alive, another category).
    if d.events.is_empty() && d.failures.is_empty() {
        let s = std::str::from_utf8(text).expect("an undecodable record vanished (not UTF-8)");
        let mut values = serde_json::Deserializer::from_str(s).into_iter::<serde::de::IgnoredAny>();
        assert!(
            values.next().is_some_and(|v| v.is_ok()),
            "a record vanished: {s:?}"
        );
        assert!(values.all(|v| v.is_ok()), "a record vanished: {s:?}");
    }
    for ev in &d.events {
        round_trip(ev);
    }
}

/// A decoded event serialises, and that JSON decodes to the same event.
fn round_trip(ev: &AuditEvent) {
    let json = serde_json::to_string(ev).expect("a decoded event does not serialise");
    let again = decode_record(json.as_bytes(), &DecodeOptions::default());
    assert!(again.failures.is_empty(), "{json}: {:?}", again.failures);
    assert_eq!(again.events.len(), 1, "{json}");
    assert_eq!(
        wire(ev),
        wire(&again.events[0]),
        "round trip changed the event"
    );
}

/// The event as JSON, without what the pipeline (not the wire) fills in.
fn wire(ev: &AuditEvent) -> String {
    let mut ev = ev.clone();
    ev.provenance = Provenance::default();
    serde_json::to_string(&ev).unwrap_or_default()
}

/// Everything about an outcome, provenance included, comparable: events as JSON, failures as Debug.
fn outcome(d: &Decoded) -> Vec<String> {
    let events = d
        .events
        .iter()
        .map(|ev| serde_json::to_string(ev).unwrap_or_default());
    let failures = d.failures.iter().map(|f| format!("{f:?}"));
    events.chain(failures).collect()
}
