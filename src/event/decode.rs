//! Decoders for every wire form of audit events: single Event, EventList, JSON array, shipper-wrapped, JSON lines.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::AuditEvent;

/// How records are decoded; built from the `decode` config section.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Fields under which shippers wrap an event (Fluent Bit's `log`, Vector's `message`).
    pub wrapped_fields: Vec<String>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            wrapped_fields: vec!["log".to_owned(), "message".to_owned()],
        }
    }
}

/// Why a record, or one item of it, could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty record")]
    Empty,
    #[error("not an audit event: {0}")]
    Invalid(String),
    #[error("record nests wrapped events more than {0} levels deep")]
    TooDeep(usize),
    /// A form was recognised (`AKS record`, `GKE entry`, ...) but one of its fields is wrong.
    #[error("{form}: {problem}")]
    Form { form: &'static str, problem: String },
    /// An event inside a recognised envelope failed; `context` says where (`AKS record 3: properties.log`).
    #[error("{context}: {source}")]
    Inside {
        context: String,
        #[source]
        source: Box<DecodeError>,
    },
}

impl DecodeError {
    pub(super) fn form(form: &'static str, problem: impl Into<String>) -> Self {
        DecodeError::Form {
            form,
            problem: problem.into(),
        }
    }
}

/// Why a record that is well-formed was left out on purpose: not a Kubernetes audit event at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A Cloud Logging entry of another Google service (Compute, IAM, Billing, ...) in a shared sink.
    GkeNotKubernetes,
    /// An Azure diagnostic record of another category (kube-apiserver, guard, ...) on the same hub.
    AksOtherCategory,
    /// CloudWatch Logs' own keep-alive (CONTROL_MESSAGE), which carries no events.
    CloudWatchControl,
}

impl SkipReason {
    /// Every reason, in the order of their counters.
    pub const ALL: [SkipReason; 3] = [
        SkipReason::GkeNotKubernetes,
        SkipReason::AksOtherCategory,
        SkipReason::CloudWatchControl,
    ];

    /// The `reason` label of `rampart_records_skipped_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::GkeNotKubernetes => "gke_not_kubernetes",
            SkipReason::AksOtherCategory => "aks_other_category",
            SkipReason::CloudWatchControl => "cloudwatch_control",
        }
    }
}

/// One entry left out on purpose, with what it was (a service name, a category) for the debug log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub reason: SkipReason,
    pub detail: String,
}

/// One undecodable record or item, with the bytes to dead-letter.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: DecodeError,
    /// Index of the item inside its record (0 for a whole record).
    pub index: u32,
    /// Whether `bytes` is the whole record or only one item of it.
    pub whole_record: bool,
    pub bytes: Vec<u8>,
}

/// The outcome of decoding one record: the events found, what failed, and what was left out on purpose.
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: Vec<AuditEvent>,
    pub failures: Vec<Failure>,
    pub skipped: Vec<Skip>,
}

const MAX_WRAP_DEPTH: usize = 3;

/// Decodes one record (a Kafka message, a webhook body, a log line) into events.
///
/// Never fails as a whole: anything that is not an event becomes a [`Failure`]
/// so the caller can dead-letter it and go on.
pub fn decode_record(bytes: &[u8], opts: &DecodeOptions) -> Decoded {
    let mut out = Decoded::default();
    let inflated = match inflate(bytes) {
        Ok(inflated) => inflated,
        Err(error) => {
            out.failures.push(whole(error, bytes));
            return out;
        }
    };
    // What a failure dead-letters is what was decoded: a gzip'd record's inflated text.
    let bytes = inflated.as_deref().unwrap_or(bytes);
    if let Err(error) = decode_utf8(bytes, opts, 0, &mut out) {
        out.failures.push(whole(error, bytes));
    }
    // Index items in the order they were found so provenance can point at them.
    for (i, ev) in out.events.iter_mut().enumerate() {
        ev.provenance.index = u32::try_from(i).unwrap_or(u32::MAX);
    }
    out
}

/// Decodes bytes that may be gzip'd (CloudWatch Logs subscriptions, Firehose records) and must be UTF-8 JSON.
pub(super) fn decode_bytes(
    bytes: &[u8],
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    let inflated = inflate(bytes)?;
    decode_utf8(inflated.as_deref().unwrap_or(bytes), opts, depth, out)
}

/// Inflates a gzip'd body, bounded by [`MAX_INFLATED`]; `None` when the body is not gzip'd.
fn inflate(bytes: &[u8]) -> Result<Option<Vec<u8>>, DecodeError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(None);
    }
    gunzip(bytes, MAX_INFLATED).map(Some).map_err(|e| {
        DecodeError::Invalid(match e {
            Gunzip::TooLarge => format!("gzip record inflates beyond {MAX_INFLATED} bytes"),
            Gunzip::Corrupt => "invalid gzip record".to_owned(),
        })
    })
}

/// Decodes bytes that must be UTF-8 JSON.
fn decode_utf8(
    bytes: &[u8],
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| DecodeError::Invalid(format!("record is not UTF-8: {e}")))?;
    decode_text(text, opts, depth, out)
}

/// Most a gzip'd record may inflate to.
const MAX_INFLATED: usize = 64 << 20;

/// Why a gzip body could not be inflated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gunzip {
    TooLarge,
    Corrupt,
}

/// Inflates at most `limit` bytes, so a gzip bomb costs no more memory than a plain body.
pub fn gunzip(raw: &[u8], limit: usize) -> Result<Vec<u8>, Gunzip> {
    use std::io::Read;
    let mut dec = flate2::read::GzDecoder::new(raw);
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(limit));
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match dec.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(Gunzip::Corrupt),
        };
        if n > limit - out.len() {
            return Err(Gunzip::TooLarge);
        }
        // Grown by hand up to `limit`: read_to_end would double a full buffer to twice the
        // limit (three times while moving it) only to find the byte that makes it too large.
        if out.capacity() - out.len() < n {
            let want = out
                .capacity()
                .saturating_mul(2)
                .max(out.len() + n)
                .min(limit);
            out.reserve_exact(want - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

fn whole(error: DecodeError, bytes: &[u8]) -> Failure {
    Failure {
        error,
        index: 0,
        whole_record: true,
        bytes: bytes.to_vec(),
    }
}

/// Decodes a text that holds one JSON value, several (JSON lines), or an array.
fn decode_text(
    text: &str,
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    // JSON's own whitespace only: a record led by any other is not JSON.
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r']);
    if trimmed.is_empty() {
        return Err(DecodeError::Empty);
    }
    if trimmed.starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(trimmed).map_err(invalid)?;
        for (i, item) in items.into_iter().enumerate() {
            decode_item(item.get(), i, opts, depth, out);
        }
        return Ok(());
    }
    // Fast path: one event per record, the overwhelmingly common case.
    match serde_json::from_str::<AuditEvent>(trimmed) {
        Ok(ev) => {
            out.events.push(super::lenient::complete(ev));
            Ok(())
        }
        Err(first) if first.is_syntax() || first.is_eof() => {
            decode_values(trimmed, first, opts, depth, out)
        }
        Err(first) => {
            // An EventList whose items are all good decodes in one typed pass;
            // anything else takes the item-by-item path below.
            if let Ok(list) = serde_json::from_str::<TypedEventList>(trimmed) {
                out.events
                    .extend(list.items.into_iter().map(super::lenient::complete));
                return Ok(());
            }
            decode_container(trimmed, first, opts, depth, out)
        }
    }
}

/// Several JSON values one after another (JSON lines in one record), each decoded as an item.
fn decode_values(
    text: &str,
    first: serde_json::Error,
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    let values: Result<Vec<&RawValue>, _> = serde_json::Deserializer::from_str(text)
        .into_iter()
        .collect();
    match values {
        Ok(values) if values.len() > 1 => {
            for (i, v) in values.into_iter().enumerate() {
                decode_item(v.get(), i, opts, depth, out);
            }
            Ok(())
        }
        _ => Err(invalid(first)),
    }
}

/// The webhook backend's batch, decoded in one pass when every item is valid.
#[derive(Deserialize)]
struct TypedEventList {
    #[allow(dead_code)]
    kind: EventListKind,
    #[serde(default)]
    items: Vec<AuditEvent>,
}

/// Accepts only `"EventList"`, so other objects fail fast.
struct EventListKind;

impl<'de> Deserialize<'de> for EventListKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(d)?;
        if s == "EventList" {
            Ok(EventListKind)
        } else {
            Err(serde::de::Error::custom("not an EventList"))
        }
    }
}

/// Decodes one element of a batch; its failure is recorded without failing the batch.
pub(super) fn decode_item(
    text: &str,
    index: usize,
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) {
    let before = out.events.len();
    let result = match serde_json::from_str::<AuditEvent>(text) {
        Ok(ev) => {
            out.events.push(super::lenient::complete(ev));
            Ok(())
        }
        Err(first) => decode_container(text, first, opts, depth, out),
    };
    if let Err(error) = result {
        out.events.truncate(before);
        out.failures
            .push(item_failure(error, index, text.as_bytes()));
    }
}

/// Like [`decode_item`], naming where the item sat (`AKS record 2: properties.log`) in its failure.
pub(super) fn decode_item_in(
    context: impl FnOnce() -> String,
    text: &str,
    index: usize,
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) {
    let before = out.failures.len();
    decode_item(text, index, opts, depth, out);
    if out.failures.len() > before {
        name_failures(out, before, &context());
    }
}

/// Says where the failures from `from` on sat inside their envelope.
pub(super) fn name_failures(out: &mut Decoded, from: usize, context: &str) {
    for f in out.failures.iter_mut().skip(from) {
        let source = Box::new(f.error.clone());
        f.error = DecodeError::Inside {
            context: context.to_owned(),
            source,
        };
    }
}

/// A failure of one item of a record, with the item's bytes.
pub(super) fn item_failure(error: DecodeError, index: usize, bytes: &[u8]) -> Failure {
    Failure {
        error,
        index: u32::try_from(index).unwrap_or(u32::MAX),
        whole_record: false,
        bytes: bytes.to_vec(),
    }
}

#[derive(Deserialize)]
struct EventListItems<'a> {
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
}

/// An object that is not itself an event: an EventList, or a shipper's wrapper.
fn decode_container(
    text: &str,
    first: serde_json::Error,
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    if depth >= MAX_WRAP_DEPTH {
        return Err(DecodeError::TooDeep(MAX_WRAP_DEPTH));
    }
    let probe: HashMap<Cow<'_, str>, &RawValue> = match serde_json::from_str(text) {
        Ok(p) => p,
        // JSON lines whose first value is an object but not an event (GKE entries, AKS records).
        Err(_) => return decode_values(text, first, opts, depth, out),
    };
    let kind = probe.get("kind").map(|k| k.get());
    if kind == Some("\"EventList\"") {
        let list: EventListItems<'_> = serde_json::from_str(text).map_err(invalid)?;
        for (i, item) in list.items.unwrap_or_default().into_iter().enumerate() {
            decode_item(item.get(), i, opts, depth + 1, out);
        }
        return Ok(());
    }
    if let Some(form) = super::cloud::detect(&probe) {
        return super::cloud::decode(form, text, opts, depth, out);
    }
    // An event a shipper or a SIEM trimmed (no auditID, stage, ...): kept when it still says who did what.
    if kind == Some("\"Event\"")
        || ["verb", "user", "auditID", "requestURI", "objectRef"]
            .iter()
            .any(|k| probe.contains_key(*k))
    {
        let ev = super::lenient::event(text, &first)?;
        out.events.push(ev);
        return Ok(());
    }
    for field in &opts.wrapped_fields {
        let Some(inner) = probe.get(field.as_str()) else {
            continue;
        };
        let raw = inner.get();
        if raw.starts_with('"') {
            let s: String = serde_json::from_str(raw).map_err(invalid)?;
            return decode_text(&s, opts, depth + 1, out);
        }
        if raw.starts_with('{') || raw.starts_with('[') {
            return decode_text(raw, opts, depth + 1, out);
        }
    }
    if first.to_string().starts_with("missing field") {
        // serde names the first required field it missed, which says nothing useful here.
        return Err(DecodeError::Invalid(
            "an object with no verb, user, objectRef or requestURI, and no known envelope".into(),
        ));
    }
    Err(invalid(first))
}

fn invalid(e: serde_json::Error) -> DecodeError {
    DecodeError::Invalid(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"list","user":{"username":"alice","groups":["dev"]},"sourceIPs":["10.0.0.1"],"objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2024-01-01T00:00:00.000000Z","stageTimestamp":"2024-01-01T00:00:00.001000Z"}"#;

    fn opts() -> DecodeOptions {
        DecodeOptions::default()
    }

    #[test]
    fn gunzip_takes_exactly_the_limit_and_never_holds_more() {
        use std::io::Write;
        let gz = |n: usize| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&vec![b'x'; n]).unwrap();
            enc.finish().unwrap()
        };
        let limit = 3 << 20;
        let at = gunzip(&gz(limit), limit).unwrap();
        assert_eq!(at.len(), limit);
        assert!(at.capacity() <= limit, "capacity {}", at.capacity());
        assert_eq!(gunzip(&gz(limit + 1), limit), Err(Gunzip::TooLarge));
        assert_eq!(gunzip(&gz(10), limit).unwrap(), b"xxxxxxxxxx");
        let mut cut = gz(1000);
        cut.truncate(cut.len() - 12);
        assert_eq!(gunzip(&cut, limit), Err(Gunzip::Corrupt));
    }

    #[test]
    fn decodes_a_single_event_with_all_common_fields() {
        let d = decode_record(EVENT.as_bytes(), &opts());
        assert!(d.failures.is_empty(), "{:?}", d.failures);
        let ev = &d.events[0];
        assert_eq!(ev.audit_id, "a1");
        assert_eq!(ev.verb, "list");
        assert_eq!(ev.user.username, "alice");
        assert_eq!(ev.source_ips, vec!["10.0.0.1"]);
        assert_eq!(ev.resource_path(), "pods");
        assert_eq!(ev.response_code(), Some(200));
    }

    #[test]
    fn decodes_every_item_of_an_event_list() {
        let list = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{EVENT},{EVENT}]}}"#
        );
        let d = decode_record(list.as_bytes(), &opts());
        assert_eq!(d.events.len(), 2);
        assert_eq!(d.events[1].provenance.index, 1);
        assert!(d.failures.is_empty());
    }

    #[test]
    fn an_event_list_with_one_bad_item_keeps_the_good_ones() {
        let list = format!(r#"{{"kind":"EventList","items":[{EVENT},{{"kind":0}},{EVENT}]}}"#);
        let d = decode_record(list.as_bytes(), &opts());
        assert_eq!(d.events.len(), 2);
        assert_eq!(d.failures.len(), 1);
        assert_eq!(d.failures[0].index, 1);
        assert!(!d.failures[0].whole_record);
        assert_eq!(d.failures[0].bytes, br#"{"kind":0}"#);
    }

    #[test]
    fn decodes_a_json_array_and_json_lines() {
        let arr = format!("[{EVENT},{EVENT},{EVENT}]");
        assert_eq!(decode_record(arr.as_bytes(), &opts()).events.len(), 3);
        let lines = format!("{EVENT}\n{EVENT}\n");
        assert_eq!(decode_record(lines.as_bytes(), &opts()).events.len(), 2);
    }

    #[test]
    fn unwraps_a_shipper_string_field_and_an_object_field() {
        let as_string = serde_json::json!({ "log": EVENT, "stream": "stdout" }).to_string();
        let d = decode_record(as_string.as_bytes(), &opts());
        assert_eq!(d.events.len(), 1, "{:?}", d.failures);
        let as_object = format!(r#"{{"host":"cp-1","message":{EVENT}}}"#);
        assert_eq!(decode_record(as_object.as_bytes(), &opts()).events.len(), 1);
    }

    #[test]
    fn wrapped_field_names_are_configurable() {
        let rec = format!(r#"{{"payload":{EVENT}}}"#);
        assert_eq!(decode_record(rec.as_bytes(), &opts()).events.len(), 0);
        let custom = DecodeOptions {
            wrapped_fields: vec!["payload".into()],
        };
        assert_eq!(decode_record(rec.as_bytes(), &custom).events.len(), 1);
    }

    #[test]
    fn malformed_records_fail_with_a_reason_and_their_bytes() {
        for bad in [
            &br#"{"kind": 0}"#[..],
            b"not json",
            b"",
            b"   ",
            b"\xff\xfe",
            br#"{"kind":"Event","auditID":"x"}"#,
        ] {
            let d = decode_record(bad, &opts());
            assert!(d.events.is_empty());
            assert_eq!(d.failures.len(), 1, "{:?}", String::from_utf8_lossy(bad));
            assert!(d.failures[0].whole_record);
            assert_eq!(d.failures[0].bytes, bad);
            assert!(!d.failures[0].error.to_string().is_empty());
        }
        let d = decode_record(br#"{"kind": 0}"#, &opts());
        assert_eq!(
            d.failures[0].error.to_string(),
            "not an audit event: invalid type: integer `0`, expected kind \"Event\" at line 1 column 10"
        );
    }

    #[test]
    fn a_gzipped_record_that_fails_dead_letters_its_inflated_text() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"not json").unwrap();
        let d = decode_record(&enc.finish().unwrap(), &opts());
        assert_eq!(d.failures.len(), 1);
        assert!(d.failures[0].whole_record);
        assert_eq!(d.failures[0].bytes, b"not json");
    }

    #[test]
    fn an_object_that_is_no_event_and_no_envelope_says_so() {
        let d = decode_record(br#"{"host":"cp-1","msg":"started"}"#, &opts());
        assert_eq!(
            d.failures[0].error.to_string(),
            "not an audit event: an object with no verb, user, objectRef or requestURI, and no known envelope"
        );
    }

    #[test]
    fn deeply_nested_wrappers_are_refused() {
        let mut rec = EVENT.to_owned();
        for _ in 0..5 {
            rec = serde_json::json!({ "log": rec }).to_string();
        }
        let d = decode_record(rec.as_bytes(), &opts());
        assert!(d.events.is_empty());
        assert_eq!(d.failures[0].error, DecodeError::TooDeep(MAX_WRAP_DEPTH));
    }
}
