//! The Kubernetes API as the revocation responder uses it: connecting (kubeconfig, in-cluster), the few requests it makes, and every answer sorted into what the caller must do — with no URL, header or token in any message.

use std::fmt;
use std::time::Duration;

use http::{header, Method, Request, StatusCode};
use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use super::config::KubernetesConfig;
use super::refusal::Refusal;

/// The two kinds of binding rampart may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    RoleBinding,
    ClusterRoleBinding,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RoleBinding" => Some(Kind::RoleBinding),
            "ClusterRoleBinding" => Some(Kind::ClusterRoleBinding),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RoleBinding => "RoleBinding",
            Kind::ClusterRoleBinding => "ClusterRoleBinding",
        }
    }
    /// The plural resource name, as RBAC rules and API paths spell it.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::RoleBinding => "rolebindings",
            Kind::ClusterRoleBinding => "clusterrolebindings",
        }
    }
}

/// One binding by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRef {
    pub kind: Kind,
    /// Always set for RoleBindings, never for ClusterRoleBindings.
    pub namespace: Option<String>,
    pub name: String,
}

/// True for a name that can stand in an API path as one segment.
fn path_safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s != "."
        && s != ".."
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_' | '@' | '+' | '=')
        })
}

impl BindingRef {
    /// The binding a delivery names, when it is one and its names are well-formed.
    pub fn new(kind: &str, namespace: Option<&str>, name: &str) -> Result<Self, Refusal> {
        let kind = Kind::parse(kind).ok_or_else(|| Refusal::NotABinding(kind.to_owned()))?;
        if !path_safe(name) {
            return Err(Refusal::InvalidName(name.to_owned()));
        }
        let namespace = match (kind, namespace.filter(|n| !n.is_empty())) {
            (Kind::RoleBinding, None) => return Err(Refusal::NoNamespace(name.to_owned())),
            (Kind::RoleBinding, Some(ns)) if !path_safe(ns) => {
                return Err(Refusal::InvalidNamespace(ns.to_owned()))
            }
            (Kind::RoleBinding, Some(ns)) => Some(ns.to_owned()),
            (Kind::ClusterRoleBinding, _) => None,
        };
        Ok(Self {
            kind,
            namespace,
            name: name.to_owned(),
        })
    }

    fn collection(&self) -> String {
        match &self.namespace {
            Some(ns) => format!(
                "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/{}",
                self.kind.resource()
            ),
            None => format!(
                "/apis/rbac.authorization.k8s.io/v1/{}",
                self.kind.resource()
            ),
        }
    }

    fn path(&self) -> String {
        format!("{}/{}", self.collection(), self.name)
    }

    /// Where Events about it go: its namespace, or `default` for cluster-scoped bindings (as kubectl does).
    pub fn event_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }
}

impl fmt::Display for BindingRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "RoleBinding {ns}/{}", self.name),
            None => write!(f, "ClusterRoleBinding/{}", self.name),
        }
    }
}

/// Why a request did not succeed, sorted by what the caller must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// 404: the object is not there.
    NotFound,
    /// 409, or 422 from a failed JSON-patch `test`: the object is not the one read.
    Conflict(String),
    /// 403: rampart's identity may not do it.
    Forbidden(String),
    /// 401: the credentials were rejected (they may be rotated; worth retrying).
    Unauthorized,
    /// 5xx, 429, time-outs and connection failures: try again later.
    Unavailable {
        error: String,
        after: Option<Duration>,
    },
    /// Any other refusal (400, 422 validation, ...): retrying the same request will not help.
    Rejected { code: u16, message: String },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NotFound => f.write_str("not found (404)"),
            Failure::Conflict(m) => write!(f, "conflict: {m}"),
            Failure::Forbidden(m) => write!(f, "forbidden (403): {m}"),
            Failure::Unauthorized => {
                f.write_str("the API server rejected rampart's credentials (401)")
            }
            Failure::Unavailable { error, .. } => f.write_str(error),
            Failure::Rejected { code, message } => write!(f, "rejected ({code}): {message}"),
        }
    }
}

/// Removes what must never reach a log or the journal from an error text: URLs (they may carry
/// credentials or internal names), bearer tokens, and anything past a sane length.
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(400));
    let mut redact_next = false;
    let mut words = s.split(' ').peekable();
    let mut first = true;
    while let Some(word) = words.next() {
        if !first {
            out.push(' ');
        }
        first = false;
        let lower = word.to_ascii_lowercase();
        let bare = lower.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
        if redact_next {
            out.push_str("<redacted>");
            redact_next = false;
            continue;
        }
        if bare.starts_with("http://") || bare.starts_with("https://") {
            out.push_str("<api-server>");
            continue;
        }
        out.push_str(word);
        if bare.starts_with("bearer") || bare.starts_with("token") {
            redact_next = true;
        } else if bare.starts_with("authorization") {
            // `Authorization: Bearer X` redacts X; `Authorization: X` redacts X.
            let next_is_scheme = words
                .peek()
                .is_some_and(|w| w.to_ascii_lowercase().starts_with("bearer"));
            redact_next = !next_is_scheme;
        }
    }
    if out.chars().count() > 300 {
        out = out.chars().take(300).collect::<String>() + "…";
    }
    out
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    sanitize(&s)
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot configure the Kubernetes client: {0}")]
pub struct ConnectError(String);

/// Builds the client: the configured kubeconfig (and context), else the in-cluster service
/// account, else `KUBECONFIG` / `~/.kube/config`.
pub async fn connect(cfg: &KubernetesConfig) -> Result<kube::Client, ConnectError> {
    // The crate's TLS uses ring; make it the process default if nothing else has yet.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = KubeConfigOptions {
        context: cfg.context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = if let Some(path) = &cfg.kubeconfig {
        let kc = Kubeconfig::read_from(path)
            .map_err(|e| ConnectError(format!("kubeconfig {}: {}", path.display(), chain(&e))))?;
        Config::from_custom_kubeconfig(kc, &options)
            .await
            .map_err(|e| ConnectError(format!("kubeconfig {}: {}", path.display(), chain(&e))))?
    } else if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        Config::incluster().map_err(|e| ConnectError(format!("in-cluster: {}", chain(&e))))?
    } else {
        Config::from_kubeconfig(&options).await.map_err(|e| {
            ConnectError(format!(
                "no kubeconfig given, not in a cluster, and KUBECONFIG/~/.kube/config unusable: {}",
                chain(&e)
            ))
        })?
    };
    // Each request's whole exchange is bounded by `Api::call`; the connection's own
    // timeouts only back that up, so that a slow answer reads "no answer within …".
    let t = cfg.timeout.get();
    config.connect_timeout = Some(t);
    config.read_timeout = Some(t + Duration::from_secs(5));
    config.write_timeout = Some(t + Duration::from_secs(5));
    kube::Client::try_from(config).map_err(|e| ConnectError(chain(&e)))
}

/// The requests the responder makes, each bounded by `timeout`.
#[derive(Clone)]
pub struct Api {
    client: kube::Client,
    timeout: Duration,
    field_manager: String,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("timeout", &self.timeout)
            .field("field_manager", &self.field_manager)
            .finish_non_exhaustive()
    }
}

fn query_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~') {
                c.to_string()
            } else {
                let mut b = [0u8; 4];
                c.encode_utf8(&mut b)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect()
}

/// `Retry-After` in seconds (the API server sends seconds, never a date).
fn retry_after(h: &http::HeaderMap, body: &Value) -> Option<Duration> {
    crate::respond::retry_after(h).or_else(|| {
        body.pointer("/details/retryAfterSeconds")
            .and_then(Value::as_u64)
            .map(|s| Duration::from_secs(s).min(crate::respond::MAX_RETRY_AFTER))
    })
}

impl Api {
    pub fn new(client: kube::Client, timeout: Duration, field_manager: &str) -> Self {
        Self {
            client,
            timeout,
            field_manager: field_manager.to_owned(),
        }
    }

    async fn call(
        &self,
        method: Method,
        uri: String,
        content_type: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        let mut b = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(header::ACCEPT, "application/json");
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        let bytes = body
            .map(|v| serde_json::to_vec(v).unwrap_or_default())
            .unwrap_or_default();
        let req = b
            .body(kube::client::Body::from(bytes))
            .map_err(|e| Failure::Rejected {
                code: 0,
                message: format!("cannot build the request: {}", sanitize(&e.to_string())),
            })?;
        let what = format!("{method} {}", self.describe(&uri));
        let exchange = async {
            let res = self
                .client
                .send(req)
                .await
                .map_err(|e| Failure::Unavailable {
                    error: format!("{what}: {}", chain(&e)),
                    after: None,
                })?;
            let (parts, body) = res.into_parts();
            let bytes = body
                .collect_bytes()
                .await
                .map_err(|e| Failure::Unavailable {
                    error: format!("{what}: reading the answer: {}", chain(&e)),
                    after: None,
                })?;
            Ok::<_, Failure>((parts, bytes))
        };
        let (parts, bytes) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(Failure::Unavailable {
                    error: format!(
                        "{what}: no answer from the API server within {}",
                        humantime::format_duration(self.timeout)
                    ),
                    after: None,
                })
            }
        };
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let status = parts.status;
        if status.is_success() {
            return Ok(body);
        }
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .map(sanitize)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned());
        Err(match status {
            StatusCode::NOT_FOUND => Failure::NotFound,
            StatusCode::CONFLICT => Failure::Conflict(message),
            // A failed JSON-patch `test` is answered 422 ("testing value /p failed: test failed";
            // "Testing value /p failed" from older API servers).
            StatusCode::UNPROCESSABLE_ENTITY
                if message.to_ascii_lowercase().contains("testing value") =>
            {
                Failure::Conflict(message)
            }
            StatusCode::FORBIDDEN => Failure::Forbidden(message),
            StatusCode::UNAUTHORIZED => Failure::Unauthorized,
            StatusCode::TOO_MANY_REQUESTS => Failure::Unavailable {
                error: format!("{what}: the API server is throttling rampart (429)"),
                after: retry_after(&parts.headers, &body),
            },
            s if s.is_server_error() => Failure::Unavailable {
                error: format!("{what}: the API server failed ({}): {message}", s.as_u16()),
                after: retry_after(&parts.headers, &body),
            },
            s => Failure::Rejected {
                code: s.as_u16(),
                message,
            },
        })
    }

    /// `GET rolebindings ns/x`, without host or query: what an error may say about a request.
    fn describe(&self, uri: &str) -> String {
        let path = uri.split('?').next().unwrap_or("");
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            [.., "namespaces", ns, res, name] => format!("{res} {ns}/{name}"),
            [.., "namespaces", ns, res] => format!("{res} in {ns}"),
            [.., res, name] if *res == "clusterrolebindings" => format!("{res}/{name}"),
            [.., res] => (*res).to_owned(),
            _ => String::new(),
        }
    }

    /// Reads a binding as stored.
    pub async fn get(&self, b: &BindingRef) -> Result<Value, Failure> {
        self.call(Method::GET, b.path(), None, None).await
    }

    /// Deletes exactly the object with this uid and resourceVersion.
    pub async fn delete(&self, b: &BindingRef, uid: &str, rv: &str) -> Result<(), Failure> {
        let opts = serde_json::json!({
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "preconditions": { "uid": uid, "resourceVersion": rv },
        });
        self.call(
            Method::DELETE,
            b.path(),
            Some("application/json"),
            Some(&opts),
        )
        .await
        .map(|_| ())
    }

    /// Applies a JSON patch (RFC 6902); its `test` operations make it all-or-nothing.
    pub async fn json_patch(&self, b: &BindingRef, ops: &Value) -> Result<Value, Failure> {
        let uri = format!(
            "{}?fieldManager={}",
            b.path(),
            query_value(&self.field_manager)
        );
        self.call(
            Method::PATCH,
            uri,
            Some("application/json-patch+json"),
            Some(ops),
        )
        .await
    }

    /// Creates a binding (for undo).
    pub async fn create(&self, b: &BindingRef, obj: &Value) -> Result<Value, Failure> {
        let uri = format!(
            "{}?fieldManager={}",
            b.collection(),
            query_value(&self.field_manager)
        );
        self.call(Method::POST, uri, Some("application/json"), Some(obj))
            .await
    }

    /// Creates an `events.k8s.io/v1` Event in `namespace`.
    pub async fn create_event(&self, namespace: &str, ev: &Value) -> Result<(), Failure> {
        let uri = format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events");
        self.call(Method::POST, uri, Some("application/json"), Some(ev))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn sanitize_strips_urls_and_bearer_tokens() {
        let s = sanitize("error sending request for url (https://10.0.0.1:6443/apis/x?watch=1): Authorization: Bearer abc.def");
        assert!(!s.contains("10.0.0.1"), "{s}");
        assert!(!s.contains("abc.def"), "{s}");
        assert!(s.contains("<api-server>"), "{s}");
    }

    #[test]
    fn binding_refs_reject_names_that_are_not_one_path_segment() {
        assert!(BindingRef::new("ClusterRoleBinding", None, "x/../y").is_err());
        assert!(BindingRef::new("RoleBinding", None, "x").is_err());
        assert!(BindingRef::new("Role", Some("a"), "x").is_err());
        let b = BindingRef::new("RoleBinding", Some("team"), "edit").unwrap();
        assert_eq!(
            b.path(),
            "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings/edit"
        );
        assert_eq!(b.to_string(), "RoleBinding team/edit");
        let c = BindingRef::new("ClusterRoleBinding", Some("ignored"), "admin").unwrap();
        assert_eq!(c.event_namespace(), "default");
        assert_eq!(c.to_string(), "ClusterRoleBinding/admin");
    }
}
