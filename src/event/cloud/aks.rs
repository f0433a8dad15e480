//! AKS: Azure Monitor diagnostic records (`kube-audit`, `kube-audit-admin`) as Event Hubs delivers them, batched or one by one.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::super::decode::{
    decode_item_in, item_failure, DecodeError, DecodeOptions, Decoded, Skip, SkipReason,
};
use super::super::lenient::fill_time;
use super::tag_cluster;

const FORM: &str = "AKS record";

#[derive(Deserialize)]
struct AzureBatch<'a> {
    #[serde(borrow)]
    records: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct AzureRecord<'a> {
    #[serde(default)]
    category: String,
    #[serde(default, rename = "resourceId")]
    resource_id: String,
    #[serde(default)]
    time: Option<String>,
    #[serde(default, borrow)]
    properties: Option<AzureProperties<'a>>,
}

#[derive(Deserialize)]
struct AzureProperties<'a> {
    /// The audit event: a JSON string in most records, an object in some `kube-audit-admin` ones.
    #[serde(default, borrow)]
    log: Option<&'a RawValue>,
}

pub(super) fn batch(
    text: &str,
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    let batch: AzureBatch<'_> = serde_json::from_str(text)
        .map_err(|e| DecodeError::form("AKS diagnostic records", e.to_string()))?;
    for (i, raw) in batch.records.iter().enumerate() {
        record(raw.get(), i, opts, depth, out);
    }
    Ok(())
}

/// One record without the `records[]` wrapper: what shippers that split Event Hubs batches deliver.
pub(super) fn single(
    text: &str,
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    record(text, 0, opts, depth, out);
    Ok(())
}

fn record(raw: &str, index: usize, opts: &DecodeOptions, depth: usize, out: &mut Decoded) {
    let fail = |out: &mut Decoded, problem: &str| {
        out.failures.push(item_failure(
            DecodeError::form(FORM, problem),
            index,
            raw.as_bytes(),
        ));
    };
    let r: AzureRecord<'_> = match serde_json::from_str(raw) {
        Ok(r) => r,
        Err(e) => return fail(out, &e.to_string()),
    };
    if r.category != "kube-audit" && r.category != "kube-audit-admin" {
        // Other diagnostic categories (kube-apiserver, guard, cluster-autoscaler, ...) share the hub.
        out.skipped.push(Skip {
            reason: SkipReason::AksOtherCategory,
            detail: r.category,
        });
        return;
    }
    let Some(log) = r.properties.as_ref().and_then(|p| p.log) else {
        return fail(out, "properties.log is missing");
    };
    let from = out.events.len();
    let context = || format!("{FORM} {index}: properties.log");
    let log = log.get();
    if log.starts_with('"') {
        match serde_json::from_str::<String>(log) {
            Ok(s) => decode_item_in(context, &s, index, opts, depth + 1, out),
            Err(e) => return fail(out, &format!("properties.log: {e}")),
        }
    } else if log.starts_with('{') {
        decode_item_in(context, log, index, opts, depth + 1, out);
    } else {
        return fail(out, "properties.log is neither a string nor an object");
    }
    // resourceId ends in `/MANAGEDCLUSTERS/<name>`.
    let cluster = r
        .resource_id
        .rsplit('/')
        .next()
        .filter(|c| !c.is_empty())
        .map(str::to_lowercase);
    tag_cluster(out, from, cluster.as_deref());
    fill_time(&mut out.events, from, r.time.as_deref());
}
