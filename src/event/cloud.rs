//! Managed-cloud audit forms mapped onto the same Event: EKS (CloudWatch Logs subscription), AKS (Azure diagnostic records), GKE (Cloud Logging AuditLog).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::decode::{DecodeError, DecodeOptions, Decoded};
use super::{AuditEvent, EventKind, Level, ObjectReference, ResponseStatus, Stage, UserInfo};

/// EKS: a CloudWatch Logs subscription envelope whose `logEvents[].message` holds Event JSON.
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
}

/// AKS: Azure Monitor diagnostic records as delivered through Event Hubs.
#[derive(Deserialize)]
struct AzureRecords {
    records: Vec<AzureRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzureRecord {
    #[serde(default)]
    category: String,
    #[serde(default, rename = "resourceId")]
    resource_id: String,
    #[serde(default)]
    properties: Option<AzureProperties>,
}

#[derive(Deserialize)]
struct AzureProperties {
    #[serde(default)]
    log: Option<String>,
}

/// Which cloud form a JSON object is, judged by its top-level keys.
pub fn detect(
    probe: &std::collections::HashMap<std::borrow::Cow<'_, str>, &RawValue>,
) -> Option<&'static str> {
    if probe.contains_key("logEvents") && probe.contains_key("messageType") {
        Some("eks")
    } else if probe.contains_key("records") {
        Some("aks")
    } else if probe.contains_key("protoPayload") {
        Some("gke")
    } else {
        None
    }
}

/// Decodes one cloud envelope into `out`; items that fail become failures, the rest events.
pub fn decode(
    form: &str,
    text: &str,
    opts: &DecodeOptions,
    depth: usize,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    let invalid = |e: serde_json::Error| DecodeError::Invalid(e.to_string());
    match form {
        "eks" => {
            let cw: CloudWatch<'_> = serde_json::from_str(text).map_err(invalid)?;
            if cw.message_type != "DATA_MESSAGE" {
                return Ok(()); // CONTROL_MESSAGE: CloudWatch's own keep-alive, no events
            }
            // Log group `/aws/eks/<cluster>/cluster` names the cluster.
            let cluster = cw
                .log_group
                .strip_prefix("/aws/eks/")
                .and_then(|r| r.split('/').next())
                .map(str::to_owned);
            for (i, ev) in cw.log_events.iter().enumerate() {
                super::decode::decode_item(&ev.message, i, opts, depth + 1, out);
                tag_cluster(out, &cluster);
            }
            Ok(())
        }
        "aks" => {
            let recs: AzureRecords = serde_json::from_str(text).map_err(invalid)?;
            for (i, r) in recs.records.iter().enumerate() {
                if r.category != "kube-audit" && r.category != "kube-audit-admin" {
                    continue; // other diagnostic categories share the hub
                }
                let Some(log) = r.properties.as_ref().and_then(|p| p.log.as_deref()) else {
                    continue;
                };
                super::decode::decode_item(log, i, opts, depth + 1, out);
                let cluster = r
                    .resource_id
                    .rsplit('/')
                    .next()
                    .filter(|c| !c.is_empty())
                    .map(str::to_lowercase);
                tag_cluster(out, &cluster);
            }
            Ok(())
        }
        _ => {
            let v: Value = serde_json::from_str(text).map_err(invalid)?;
            out.events.push(gke(&v)?);
            Ok(())
        }
    }
}

/// Sets the cluster named by the envelope on the event just decoded.
fn tag_cluster(out: &mut Decoded, cluster: &Option<String>) {
    if let (Some(c), Some(ev)) = (cluster, out.events.last_mut()) {
        if ev.provenance.cluster.is_empty() {
            ev.provenance.cluster.clone_from(c);
        }
    }
}

/// google.rpc.Code to the HTTP status the API server answered.
fn http_code(rpc: i64) -> i32 {
    match rpc {
        0 => 200,
        1 => 499,
        3 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        9 => 412,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    }
}

const VERBS: &[&str] = &[
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "get",
    "list",
    "watch",
    "proxy",
    "connect",
];

/// GKE: a Cloud Logging entry whose `protoPayload` is a Kubernetes AuditLog.
fn gke(v: &Value) -> Result<AuditEvent, DecodeError> {
    let p = &v["protoPayload"];
    let s = |x: &Value| x.as_str().map(str::to_owned);
    let method = p["methodName"]
        .as_str()
        .ok_or_else(|| DecodeError::Invalid("GKE entry without protoPayload.methodName".into()))?;
    // resourceName: <group>/<version>[/namespaces/<ns>]/<resource>[/<name>[/<subresource>]]
    let rn: Vec<&str> = p["resourceName"]
        .as_str()
        .unwrap_or("")
        .split('/')
        .filter(|x| !x.is_empty())
        .collect();
    let group = rn.first().copied().unwrap_or("");
    let version = rn.get(1).copied().unwrap_or("");
    let mut rest: &[&str] = rn.get(2..).unwrap_or(&[]);
    let mut namespace = None;
    if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        namespace = Some(rest[1].to_owned());
        rest = &rest[2..];
    }
    let mut resource = rest.first().copied().unwrap_or("");
    let mut name = rest.get(1).map(|s| (*s).to_owned());
    let mut subresource = rest.get(2).copied();
    // methodName: io.k8s.<group parts>.<version>.<resource>[.<subresource>].<verb>
    let parts: Vec<&str> = method.split('.').collect();
    let verb = parts
        .last()
        .copied()
        .filter(|v| VERBS.contains(v))
        .unwrap_or("unknown");
    if let Some(vi) = parts
        .iter()
        .position(|x| *x == version && !version.is_empty())
    {
        match &parts[vi + 1..] {
            [r, sub, _verb] => {
                resource = r;
                subresource = Some(sub);
            }
            [r, _verb] => resource = r,
            _ => {}
        }
    }
    if resource == "namespaces" && name.is_none() {
        name = namespace.take();
    }
    let api_group = if group == "core" {
        String::new()
    } else {
        group.to_owned()
    };
    let prefix = if api_group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{api_group}/{version}")
    };
    let mut uri = prefix;
    if let Some(ns) = &namespace {
        uri.push_str(&format!("/namespaces/{ns}"));
    }
    uri.push_str(&format!("/{resource}"));
    if let Some(n) = &name {
        uri.push_str(&format!("/{n}"));
    }
    if let Some(sub) = subresource {
        uri.push_str(&format!("/{sub}"));
    }
    let granted = p["authorizationInfo"]
        .as_array()
        .map(|a| a.iter().all(|x| x["granted"].as_bool() != Some(false)));
    let mut annotations = BTreeMap::new();
    if let Some(labels) = v["labels"].as_object() {
        for (k, val) in labels {
            if let Some(val) = val.as_str() {
                annotations.insert(k.clone(), val.to_owned());
            }
        }
    }
    if let Some(g) = granted {
        annotations
            .entry("authorization.k8s.io/decision".into())
            .or_insert_with(|| if g { "allow" } else { "forbid" }.into());
    }
    let raw = |x: &Value| {
        (!x.is_null())
            .then(|| RawValue::from_string(x.to_string()).ok())
            .flatten()
    };
    let code = p["status"]["code"].as_i64().unwrap_or(0);
    let mut ev = AuditEvent {
        kind: Some(EventKind::Event),
        api_version: Some("audit.k8s.io/v1".into()),
        level: if p["request"].is_null() && p["response"].is_null() {
            Level::Metadata
        } else {
            Level::RequestResponse
        },
        audit_id: s(&v["operation"]["id"])
            .or_else(|| s(&v["insertId"]))
            .unwrap_or_default(),
        stage: Stage::ResponseComplete,
        request_uri: uri,
        verb: verb.to_owned(),
        user: UserInfo {
            username: s(&p["authenticationInfo"]["principalEmail"]).unwrap_or_default(),
            ..UserInfo::default()
        },
        impersonated_user: None,
        source_ips: s(&p["requestMetadata"]["callerIp"]).into_iter().collect(),
        user_agent: s(&p["requestMetadata"]["callerSuppliedUserAgent"]),
        object_ref: Some(ObjectReference {
            resource: Some(resource.to_owned()).filter(|r| !r.is_empty()),
            namespace,
            name,
            api_group: Some(api_group).filter(|g| !g.is_empty()),
            api_version: Some(version.to_owned()).filter(|v| !v.is_empty()),
            subresource: subresource.map(str::to_owned),
            ..ObjectReference::default()
        }),
        response_status: Some(ResponseStatus {
            code: Some(http_code(code)),
            message: s(&p["status"]["message"]).filter(|m| !m.is_empty()),
            ..ResponseStatus::default()
        }),
        request_object: raw(&p["request"]),
        response_object: raw(&p["response"]),
        request_received_timestamp: s(&v["timestamp"]),
        stage_timestamp: s(&v["receiveTimestamp"]).or_else(|| s(&v["timestamp"])),
        annotations,
        provenance: Default::default(),
        enrichment: None,
        verdicts: Vec::new(),
    };
    if let Some(c) = v["resource"]["labels"]["cluster_name"].as_str() {
        ev.provenance.cluster = c.to_owned();
    }
    if ev.audit_id.is_empty() {
        return Err(DecodeError::Invalid(
            "GKE entry without operation.id or insertId".into(),
        ));
    }
    Ok(ev)
}
