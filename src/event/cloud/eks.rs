//! EKS: control-plane logs as a CloudWatch Logs subscription delivers them, directly or through Kinesis Data Firehose.

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::super::decode::{
    decode_bytes, decode_item_in, item_failure, name_failures, DecodeError, DecodeOptions, Decoded,
    Skip, SkipReason,
};
use super::super::lenient::fill_time;
use super::super::time::format_rfc3339;
use super::tag_cluster;

/// Keys a lone Firehose or Kinesis record may carry besides `data`.
pub(super) const FIREHOSE_RECORD_KEYS: [&str; 7] = [
    "data",
    "recordId",
    "approximateArrivalTimestamp",
    "partitionKey",
    "sequenceNumber",
    "kinesisRecordMetadata",
    "metadata",
];

/// A CloudWatch Logs subscription envelope whose `logEvents[].message` holds Event JSON.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CloudWatch<'a> {
    message_type: String,
    #[serde(default)]
    log_group: String,
    #[serde(borrow, default)]
    log_events: Vec<CloudWatchEvent<'a>>,
}

#[derive(Deserialize)]
struct CloudWatchEvent<'a> {
    #[serde(borrow)]
    message: std::borrow::Cow<'a, str>,
    /// When CloudWatch ingested the line, milliseconds since the epoch.
    #[serde(default)]
    timestamp: Option<i64>,
}

/// Firehose's HTTP-endpoint delivery (`requestId`, `timestamp`, `records`) or a transformation batch.
#[derive(Deserialize)]
struct FirehoseBatch<'a> {
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(borrow)]
    records: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FirehoseRecord {
    data: String,
    #[serde(default)]
    approximate_arrival_timestamp: Option<i64>,
}

pub(super) fn cloudwatch(
    text: &str,
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    let cw: CloudWatch<'_> = serde_json::from_str(text)
        .map_err(|e| DecodeError::form("CloudWatch Logs message", e.to_string()))?;
    if cw.message_type != "DATA_MESSAGE" {
        // CONTROL_MESSAGE: CloudWatch's own keep-alive, no events.
        out.skipped.push(Skip {
            reason: SkipReason::CloudWatchControl,
            detail: cw.message_type,
        });
        return Ok(());
    }
    // Log group `/aws/eks/<cluster>/cluster` names the cluster.
    let cluster = cw
        .log_group
        .strip_prefix("/aws/eks/")
        .and_then(|r| r.split('/').next());
    for (i, ev) in cw.log_events.iter().enumerate() {
        let from = out.events.len();
        decode_item_in(
            || format!("CloudWatch Logs message: logEvents[{i}].message"),
            &ev.message,
            i,
            opts,
            depth + 1,
            out,
        );
        tag_cluster(out, from, cluster);
        let time = ev.timestamp.map(|ms| format_rfc3339(ms.div_euclid(1000)));
        fill_time(&mut out.events, from, time.as_deref());
    }
    Ok(())
}

pub(super) fn firehose_batch(
    text: &str,
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    let batch: FirehoseBatch<'_> = serde_json::from_str(text)
        .map_err(|e| DecodeError::form("Firehose delivery", e.to_string()))?;
    for (i, raw) in batch.records.iter().enumerate() {
        record(raw.get(), i, batch.timestamp, opts, depth, out);
    }
    Ok(())
}

pub(super) fn firehose_record(
    text: &str,
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    record(text, 0, None, opts, depth, out);
    Ok(())
}

/// One Firehose record: base64 `data` holding what the source put in (a gzip'd CloudWatch Logs
/// message for EKS subscriptions, or plain Event JSON).
fn record(
    raw: &str,
    index: usize,
    delivered_ms: Option<i64>,
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) {
    const FORM: &str = "Firehose record";
    let fail = |out: &mut Decoded, problem: String| {
        out.failures.push(item_failure(
            DecodeError::form(FORM, problem),
            index,
            raw.as_bytes(),
        ));
    };
    let rec: FirehoseRecord = match serde_json::from_str(raw) {
        Ok(r) => r,
        Err(e) => return fail(out, e.to_string()),
    };
    let data = match base64::engine::general_purpose::STANDARD.decode(rec.data.trim()) {
        Ok(d) => d,
        Err(e) => return fail(out, format!("data is not base64: {e}")),
    };
    let (events, failures) = (out.events.len(), out.failures.len());
    if let Err(e) = decode_bytes(&data, opts, depth + 1, out) {
        // The record as it arrived: `data` may be binary (a gzip body that does not inflate).
        out.failures.push(item_failure(e, index, raw.as_bytes()));
    }
    name_failures(out, failures, &format!("{FORM} {index}: data"));
    let time = rec
        .approximate_arrival_timestamp
        .or(delivered_ms)
        .map(|ms| format_rfc3339(ms.div_euclid(1000)));
    fill_time(&mut out.events, events, time.as_deref());
}
