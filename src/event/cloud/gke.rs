//! GKE: Cloud Logging entries whose protoPayload is a Kubernetes AuditLog (service `k8s.io`, resource `k8s_cluster`); other services' entries are skipped.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::Value;

use super::super::decode::{DecodeError, Decoded, Skip, SkipReason};
use super::super::lenient::{complete, derived_id};
use super::super::{
    AuditEvent, EventKind, Level, ObjectReference, ResponseStatus, Stage, UserInfo,
};

const FORM: &str = "GKE entry";

/// Verbs of resource requests, the last part of a methodName.
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

/// Verbs of non-resource requests: the lowercased HTTP method, as the API server logs them.
const HTTP_VERBS: &[&str] = &["get", "head", "post", "put", "patch", "delete", "options"];

pub(super) fn entry(text: &str, out: &mut Decoded) -> Result<(), DecodeError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| DecodeError::form(FORM, e.to_string()))?;
    if let Some(detail) = foreign(&v) {
        out.skipped.push(Skip {
            reason: SkipReason::GkeNotKubernetes,
            detail,
        });
        return Ok(());
    }
    out.events.push(event(&v, text)?);
    Ok(())
}

/// What a non-Kubernetes entry is (its service or resource type), or `None` for a Kubernetes one.
///
/// A sink that carries a project's audit logs delivers Compute, IAM and Billing entries too; only
/// `protoPayload.serviceName: k8s.io` on a `k8s_cluster` resource is the API server's audit log.
fn foreign(v: &Value) -> Option<String> {
    let p = &v["protoPayload"];
    let service = p["serviceName"].as_str();
    let kind = v["resource"]["type"].as_str();
    let kubernetes_method = p["methodName"]
        .as_str()
        .is_some_and(|m| m.starts_with("io.k8s."));
    let service_ok = service.map_or(kubernetes_method, |s| s == "k8s.io");
    let kind_ok = kind.is_none_or(|k| k == "k8s_cluster");
    (!(service_ok && kind_ok)).then(|| {
        format!(
            "serviceName {}, resource.type {}",
            service.unwrap_or("(none)"),
            kind.unwrap_or("(none)")
        )
    })
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

/// `v1`, `v1beta1`, `v2alpha3`: the second part of a resource request's resourceName.
fn is_version(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next() == Some('v')
        && chars.next().is_some_and(|c| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The request's target: object reference, URI and verb.
struct Target {
    object_ref: Option<ObjectReference>,
    uri: String,
    verb: String,
}

/// resourceName `<group>/<version>[/namespaces/<ns>]/<resource>[/<name>[/<subresource>]]` and
/// methodName `io.k8s.<group parts>.<version>.<resource>[.<subresource>].<verb>`; anything else
/// (`readyz`, `api/v1`, `apis`, `openapi/v2`, a scanner's `HNAP1`) is a non-resource request.
fn target(method: &str, resource_name: &str) -> Target {
    let path = resource_name.trim_start_matches('/');
    let rn: Vec<&str> = path.split('/').filter(|x| !x.is_empty()).collect();
    let parts: Vec<&str> = method.split('.').collect();
    let last = parts.last().copied().unwrap_or("");
    if rn.len() < 3 || !is_version(rn[1]) {
        let verb = if HTTP_VERBS.contains(&last) {
            last
        } else {
            "get"
        };
        return Target {
            object_ref: None,
            uri: format!("/{path}"),
            verb: verb.to_owned(),
        };
    }
    let (group, version) = (rn[0], rn[1]);
    let mut rest = &rn[2..];
    let mut namespace = None;
    if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        namespace = Some(rest[1].to_owned());
        rest = &rest[2..];
    }
    let mut resource = rest.first().copied().unwrap_or("");
    let mut name = rest.get(1).map(|s| (*s).to_owned());
    let mut subresource = rest.get(2).copied();
    let verb = if VERBS.contains(&last) {
        last
    } else {
        "unknown"
    };
    if let Some(vi) = parts.iter().position(|x| *x == version) {
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
    let api_group = if group == "core" { "" } else { group };
    let mut uri = if api_group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{api_group}/{version}")
    };
    for seg in [
        namespace.as_deref().map(|ns| format!("namespaces/{ns}")),
        Some(resource.to_owned()),
        name.clone(),
        subresource.map(str::to_owned),
    ]
    .into_iter()
    .flatten()
    {
        uri.push('/');
        uri.push_str(&seg);
    }
    Target {
        object_ref: Some(ObjectReference {
            resource: Some(resource.to_owned()).filter(|r| !r.is_empty()),
            namespace,
            name,
            api_group: Some(api_group.to_owned()).filter(|g| !g.is_empty()),
            api_version: Some(version.to_owned()),
            subresource: subresource.map(str::to_owned),
            ..ObjectReference::default()
        }),
        uri,
        verb: verb.to_owned(),
    }
}

/// The query an exec or attach request carried (`command=...&container=...&stdin=true`), rebuilt
/// from the PodExecOptions / PodAttachOptions GKE records as the request.
fn exec_query(request: &Value) -> Option<String> {
    let mut q = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    match &request["command"] {
        Value::Array(cmd) => {
            for c in cmd.iter().filter_map(Value::as_str) {
                q.append_pair("command", c);
                any = true;
            }
        }
        Value::String(c) => {
            q.append_pair("command", c);
            any = true;
        }
        _ => {}
    }
    if let Some(c) = request["container"].as_str() {
        q.append_pair("container", c);
        any = true;
    }
    for flag in ["stdin", "stdout", "stderr", "tty"] {
        if let Some(b) = request[flag].as_bool() {
            q.append_pair(flag, if b { "true" } else { "false" });
            any = true;
        }
    }
    any.then(|| q.finish())
}

/// Who made the request: `principalEmail`, else `authoritySelector`, else `principalSubject`; with
/// none at all the request was unauthenticated, as the API server itself would have logged it.
fn user(p: &Value) -> UserInfo {
    let auth = &p["authenticationInfo"];
    let principal = ["principalEmail", "authoritySelector", "principalSubject"]
        .iter()
        .filter_map(|k| auth[*k].as_str())
        .map(|s| {
            s.strip_prefix("user:")
                .or_else(|| s.strip_prefix("serviceAccount:"))
                .unwrap_or(s)
        })
        .find(|s| !s.is_empty());
    match principal {
        Some(name) if name != "system:anonymous" => UserInfo {
            username: name.to_owned(),
            ..UserInfo::default()
        },
        _ => UserInfo {
            username: "system:anonymous".to_owned(),
            groups: vec!["system:unauthenticated".to_owned()],
            ..UserInfo::default()
        },
    }
}

/// GKE: a Cloud Logging entry whose `protoPayload` is a Kubernetes AuditLog.
fn event(v: &Value, text: &str) -> Result<AuditEvent, DecodeError> {
    let p = &v["protoPayload"];
    let s = |x: &Value| x.as_str().map(str::to_owned);
    let method = p["methodName"]
        .as_str()
        .ok_or_else(|| DecodeError::form(FORM, "protoPayload.methodName is missing"))?;
    let mut t = target(method, p["resourceName"].as_str().unwrap_or(""));
    let sub = t.object_ref.as_ref().and_then(|o| o.subresource.as_deref());
    let streaming = matches!(sub, Some("exec" | "attach"));
    if streaming {
        if let Some(q) = exec_query(&p["request"]) {
            t.uri.push('?');
            t.uri.push_str(&q);
        }
    }
    // An operation logged in more than one entry (exec, attach) says which one is the last.
    let op = &v["operation"];
    let stage = if op["last"].as_bool() == Some(false) {
        Stage::ResponseStarted
    } else {
        Stage::ResponseComplete
    };
    let rpc = p["status"]["code"].as_i64().unwrap_or(0);
    let code = if rpc == 0 && streaming && stage == Stage::ResponseStarted {
        101 // Switching Protocols: the stream was opened
    } else {
        http_code(rpc)
    };
    let mut filled = Vec::new();
    let audit_id = s(&op["id"])
        .or_else(|| s(&v["insertId"]))
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| {
            filled.push("auditID".to_owned());
            derived_id(text)
        });
    let mut annotations = BTreeMap::new();
    if let Some(labels) = v["labels"].as_object() {
        for (k, val) in labels {
            if let Some(val) = val.as_str() {
                annotations.insert(k.clone(), val.to_owned());
            }
        }
    }
    if let Some(a) = p["authorizationInfo"].as_array() {
        let granted = a.iter().all(|x| x["granted"].as_bool() != Some(false));
        annotations
            .entry("authorization.k8s.io/decision".into())
            .or_insert_with(|| if granted { "allow" } else { "forbid" }.into());
    }
    let raw = |x: &Value| {
        (!x.is_null())
            .then(|| RawValue::from_string(x.to_string()).ok())
            .flatten()
    };
    let mut ev = AuditEvent {
        kind: Some(EventKind::Event),
        api_version: Some("audit.k8s.io/v1".into()),
        level: if p["request"].is_null() && p["response"].is_null() {
            Level::Metadata
        } else {
            Level::RequestResponse
        },
        audit_id,
        stage,
        request_uri: t.uri,
        verb: t.verb,
        user: user(p),
        impersonated_user: None,
        source_ips: s(&p["requestMetadata"]["callerIp"]).into_iter().collect(),
        user_agent: s(&p["requestMetadata"]["callerSuppliedUserAgent"]),
        object_ref: t.object_ref,
        response_status: Some(ResponseStatus {
            code: Some(code),
            message: s(&p["status"]["message"]).filter(|m| !m.is_empty()),
            ..ResponseStatus::default()
        }),
        request_object: raw(&p["request"]),
        response_object: raw(&p["response"]),
        request_received_timestamp: s(&v["timestamp"]),
        stage_timestamp: s(&v["receiveTimestamp"]).or_else(|| s(&v["timestamp"])),
        annotations,
        legacy_timestamp: None,
        provenance: Default::default(),
        enrichment: None,
        verdicts: Vec::new(),
    };
    ev.provenance.filled = filled;
    if let Some(c) = v["resource"]["labels"]["cluster_name"].as_str() {
        c.clone_into(&mut ev.provenance.cluster);
    }
    // An entry without `timestamp` takes its receive time, as a plain event without
    // requestReceivedTimestamp takes its stage time: the same entry, re-read as the event it
    // became, is the same event.
    Ok(complete(ev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_resource_requests_keep_their_path() {
        for (method, rn, uri) in [
            ("io.k8s.readyz", "readyz", "/readyz"),
            ("io.k8s.livez", "livez", "/livez"),
            ("io.k8s.healthz", "healthz/etcd", "/healthz/etcd"),
            ("io.k8s.version", "version", "/version"),
            ("io.k8s.api.v1", "api/v1", "/api/v1"),
            ("io.k8s.apis", "apis", "/apis"),
            ("io.k8s.apis.apps.v1", "apis/apps/v1", "/apis/apps/v1"),
            ("io.k8s.openapi.v2", "openapi/v2", "/openapi/v2"),
            ("io.k8s.HNAP1", "HNAP1", "/HNAP1"),
        ] {
            let t = target(method, rn);
            assert_eq!(t.uri, uri, "{method}");
            assert!(t.object_ref.is_none(), "{method}");
            assert_eq!(t.verb, "get", "{method}");
        }
    }

    #[test]
    fn resource_requests_map_to_the_api_servers_uri() {
        let t = target(
            "io.k8s.apps.v1.deployments.scale.patch",
            "apps/v1/namespaces/web/deployments/front/scale",
        );
        assert_eq!(
            t.uri,
            "/apis/apps/v1/namespaces/web/deployments/front/scale"
        );
        assert_eq!(t.verb, "patch");
        let o = t.object_ref.unwrap();
        assert_eq!(o.subresource.as_deref(), Some("scale"));
        let t = target("io.k8s.core.v1.namespaces.get", "core/v1/namespaces/web");
        assert_eq!(t.uri, "/api/v1/namespaces/web");
        assert_eq!(t.object_ref.unwrap().name.as_deref(), Some("web"));
    }

    #[test]
    fn the_principal_falls_back_and_none_is_anonymous() {
        let p = |auth: Value| serde_json::json!({ "authenticationInfo": auth });
        let u = user(&p(serde_json::json!({"principalEmail": "a@example.com"})));
        assert_eq!(u.username, "a@example.com");
        let u = user(&p(
            serde_json::json!({"authoritySelector": "system:kube-scheduler"}),
        ));
        assert_eq!(u.username, "system:kube-scheduler");
        let u = user(&p(
            serde_json::json!({"principalSubject": "user:bob@example.com"}),
        ));
        assert_eq!(u.username, "bob@example.com");
        let u = user(&p(serde_json::json!({})));
        assert_eq!(u.username, "system:anonymous");
        assert_eq!(u.groups, ["system:unauthenticated"]);
    }
}
