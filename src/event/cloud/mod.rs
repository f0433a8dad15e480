//! Managed-cloud audit forms mapped onto the same Event: EKS (CloudWatch Logs subscriptions, Firehose records), AKS (Azure diagnostic records), GKE (Cloud Logging AuditLog entries).

mod aks;
mod eks;
mod gke;

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::value::RawValue;

use super::decode::{DecodeError, DecodeOptions, Decoded};

/// A cloud delivery form, recognised by an object's top-level keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A CloudWatch Logs subscription message (EKS control-plane logs).
    CloudWatch,
    /// Kinesis Data Firehose: an HTTP-endpoint delivery or a transformation batch (`records[].data`).
    FirehoseBatch,
    /// One Firehose/Kinesis record on its own (`data`, base64), as a Kafka connector delivers it.
    FirehoseRecord,
    /// Azure Monitor diagnostic records as Event Hubs delivers them (`records[]`).
    AzureBatch,
    /// One Azure diagnostic record without the `records[]` wrapper, as batch-splitting shippers deliver it.
    AzureRecord,
    /// A Cloud Logging entry (GKE), Kubernetes or not.
    Gke,
}

type Probe<'a> = HashMap<Cow<'a, str>, &'a RawValue>;

/// Which cloud form a JSON object is, judged by its top-level keys.
pub fn detect(probe: &Probe<'_>) -> Option<Form> {
    let has = |k: &str| probe.contains_key(k);
    if has("logEvents") && has("messageType") {
        Some(Form::CloudWatch)
    } else if has("records") && (has("requestId") || has("deliveryStreamArn")) {
        Some(Form::FirehoseBatch)
    } else if has("records") {
        Some(Form::AzureBatch)
    } else if has("protoPayload") {
        Some(Form::Gke)
    } else if has("category") && has("properties") {
        Some(Form::AzureRecord)
    } else if probe.get("data").is_some_and(|d| d.get().starts_with('"'))
        && probe
            .keys()
            .all(|k| eks::FIREHOSE_RECORD_KEYS.contains(&k.as_ref()))
    {
        Some(Form::FirehoseRecord)
    } else {
        None
    }
}

/// Decodes one cloud envelope into `out`; items that fail become failures, the rest events.
pub fn decode(
    form: Form,
    text: &str,
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    match form {
        Form::CloudWatch => eks::cloudwatch(text, opts, depth, out),
        Form::FirehoseBatch => eks::firehose_batch(text, opts, depth, out),
        Form::FirehoseRecord => eks::firehose_record(text, opts, depth, out),
        Form::AzureBatch => aks::batch(text, opts, depth, out),
        Form::AzureRecord => aks::single(text, opts, depth, out),
        Form::Gke => gke::entry(text, out),
    }
}

/// Sets the cluster named by the envelope on the events decoded from `from` on.
fn tag_cluster(out: &mut Decoded, from: usize, cluster: Option<&str>) {
    let Some(c) = cluster.filter(|c| !c.is_empty()) else {
        return;
    };
    for ev in out.events.iter_mut().skip(from) {
        if ev.provenance.cluster.is_empty() {
            c.clone_into(&mut ev.provenance.cluster);
        }
    }
}
