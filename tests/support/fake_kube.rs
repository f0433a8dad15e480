//! A fake Kubernetes API server for the revocation tests: HTTPS (rustls, rcgen CA) on 127.0.0.1, bearer-token auth, RoleBindings and ClusterRoleBindings in memory with uids, resourceVersions, delete preconditions, JSON patch with `test`, create, Events, and switches for 403/500/429/hangs and concurrent changes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};

const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";

/// A failure the server answers with instead of doing its job.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 403 with an RBAC message.
    Forbidden,
    /// 500 Internal Server Error.
    ServerError,
    /// 429 with `Retry-After: n`.
    Throttle(u64),
    /// Never answers.
    Hang,
}

/// Which requests a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// GETs of bindings.
    Reads,
    /// PATCH, DELETE and POST of bindings.
    Writes,
    /// POSTs of Events.
    Events,
}

#[derive(Default)]
struct Inner {
    objects: BTreeMap<String, Value>,
    counter: u64,
    events: Vec<Value>,
    log: Vec<(String, String)>,
    faults: Vec<(On, Fault, usize)>,
    interfere: usize,
    unauthorized: usize,
    token: String,
}

type Shared = Arc<Mutex<Inner>>;

/// A running fake API server; stops when dropped.
pub struct FakeKube {
    pub url: String,
    pub token: String,
    pub kubeconfig: PathBuf,
    state: Shared,
    handle: axum_server::Handle<std::net::SocketAddr>,
    _dir: tempfile::TempDir,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// The object path of a binding (`kind` RoleBinding or ClusterRoleBinding).
pub fn path_of(kind: &str, ns: Option<&str>, name: &str) -> String {
    match (kind, ns) {
        ("RoleBinding", Some(ns)) => format!("{RBAC}/namespaces/{ns}/rolebindings/{name}"),
        ("ClusterRoleBinding", _) => format!("{RBAC}/clusterrolebindings/{name}"),
        _ => panic!("not a binding: {kind} {ns:?}"),
    }
}

fn now_rfc3339() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    rampart::event::time::format_rfc3339(s as i64)
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

fn resource_of(path: &str) -> &'static str {
    if path.contains("/clusterrolebindings") {
        "clusterrolebindings"
    } else if path.contains("/rolebindings") {
        "rolebindings"
    } else {
        "events"
    }
}

impl FakeKube {
    pub async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = super::test_tls::server_tls();
        let cfg = tls.server;

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let token = format!("tok-{}-{}-SECRET", std::process::id(), addr.port());
        let state: Shared = Arc::new(Mutex::new(Inner {
            token: token.clone(),
            ..Inner::default()
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(
            listener,
            axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(cfg)),
        )
        .unwrap()
        .handle(handle.clone());
        tokio::spawn(async move {
            let _ = server.serve(app.into_make_service()).await;
        });

        let url = format!("https://127.0.0.1:{}", addr.port());
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let ca_b64 = base64::engine::general_purpose::STANDARD.encode(&tls.ca_pem);
        // Two contexts: the current one has a wrong token, so tests that name `fake` prove the context is honoured.
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}
    certificate-authority-data: {ca_b64}
users:
- name: rampart
  user:
    token: {token}
- name: stranger
  user:
    token: not-the-token
contexts:
- name: fake
  context:
    cluster: fake
    user: rampart
- name: wrong
  context:
    cluster: fake
    user: stranger
current-context: wrong
"
            ),
        )
        .unwrap();
        Self {
            url,
            token,
            kubeconfig,
            state,
            handle,
            _dir: dir,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap()
    }

    /// Stores a binding as if created now (or at its `creationTimestamp`, when given): uid and resourceVersion assigned.
    pub fn put(&self, mut obj: Value) -> Value {
        let mut g = self.lock();
        let kind = obj["kind"].as_str().unwrap().to_owned();
        let ns = obj["metadata"]["namespace"].as_str().map(str::to_owned);
        let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
        obj["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
        g.counter += 1;
        let n = g.counter;
        obj["metadata"]["uid"] = json!(format!("{n:08x}-0000-4000-8000-{n:012x}"));
        obj["metadata"]["resourceVersion"] = json!((1000 + n).to_string());
        if obj["metadata"].get("creationTimestamp").is_none() {
            obj["metadata"]["creationTimestamp"] = json!(now_rfc3339());
        }
        g.objects
            .insert(path_of(&kind, ns.as_deref(), &name), obj.clone());
        obj
    }

    /// The binding as stored now.
    pub fn get(&self, kind: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        self.lock().objects.get(&path_of(kind, ns, name)).cloned()
    }

    /// Removes a binding behind the responder's back.
    pub fn remove(&self, kind: &str, ns: Option<&str>, name: &str) {
        self.lock().objects.remove(&path_of(kind, ns, name));
    }

    /// Events created so far.
    pub fn events(&self) -> Vec<Value> {
        self.lock().events.clone()
    }

    /// Every request as (method, path), in order.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.lock().log.clone()
    }

    /// Writes to bindings (anything but GET on an RBAC path).
    pub fn binding_writes(&self) -> Vec<(String, String)> {
        self.requests()
            .into_iter()
            .filter(|(m, p)| m != "GET" && p.starts_with(RBAC))
            .collect()
    }

    /// Requests rejected for lack of the right token.
    pub fn unauthorized(&self) -> usize {
        self.lock().unauthorized
    }

    /// The next `times` requests of kind `on` get `fault`.
    pub fn fault(&self, on: On, fault: Fault, times: usize) {
        self.lock().faults.push((on, fault, times));
    }

    /// Every fault set so far is lifted (an outage ends).
    pub fn heal(&self) {
        self.lock().faults.clear();
    }

    /// Before each of the next `n` binding writes, someone else changes the binding (a label), so its resourceVersion moves on.
    pub fn interfere(&self, n: usize) {
        self.lock().interfere = n;
    }
}

fn take_fault(g: &mut Inner, on: On) -> Option<Fault> {
    let i = g.faults.iter().position(|(o, _, n)| *o == on && *n > 0)?;
    g.faults[i].2 -= 1;
    Some(g.faults[i].1.clone())
}

fn fault_response(f: Fault, method: &Method, path: &str) -> Option<Response> {
    let res = resource_of(path);
    match f {
        Fault::Forbidden => Some(status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{res}.rbac.authorization.k8s.io is forbidden: User \"system:serviceaccount:rampart:rampart\" cannot {} resource \"{res}\" in API group \"rbac.authorization.k8s.io\"",
                method.as_str().to_lowercase()
            ),
        )),
        Fault::ServerError => Some(status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "Internal error occurred: etcdserver: request timed out".into(),
        )),
        Fault::Throttle(secs) => {
            let mut r = status(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "too many requests, please try again later".into(),
            );
            r.headers_mut()
                .insert("retry-after", secs.to_string().parse().unwrap());
            Some(r)
        }
        Fault::Hang => None,
    }
}

async fn handle(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let fault = {
        let mut g = s.lock().unwrap();
        g.log.push((method.to_string(), path.clone()));
        let want = format!("Bearer {}", g.token);
        let token_ok = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == want);
        if !token_ok {
            g.unauthorized += 1;
            return status(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Unauthorized".into(),
            );
        }
        let on = if path.starts_with("/apis/events.k8s.io") || path.starts_with("/api/v1") {
            On::Events
        } else if method == Method::GET {
            On::Reads
        } else {
            On::Writes
        };
        take_fault(&mut g, on)
    };
    if let Some(f) = fault {
        match fault_response(f, &method, &path) {
            Some(r) => return r,
            None => return std::future::pending().await,
        }
    }
    let mut g = s.lock().unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if path.starts_with("/apis/events.k8s.io/v1/namespaces/") && method == Method::POST {
        return create_event(&mut g, &path, body);
    }
    let Some(rest) = path.strip_prefix(RBAC) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".into(),
        );
    };
    let segs: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let (collection, name) = match segs.as_slice() {
        ["clusterrolebindings"] | ["namespaces", _, "rolebindings"] => (path.clone(), None),
        ["clusterrolebindings", n] | ["namespaces", _, "rolebindings", n] => (
            path.rsplit_once('/').unwrap().0.to_owned(),
            Some((*n).to_owned()),
        ),
        _ => {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource".into(),
            )
        }
    };
    let res = resource_of(&path);
    let not_found = |n: &str| {
        status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{res}.rbac.authorization.k8s.io \"{n}\" not found"),
        )
    };
    match (method.clone(), name) {
        (Method::GET, Some(n)) => match g.objects.get(&path) {
            Some(o) => axum::Json(o.clone()).into_response(),
            None => not_found(&n),
        },
        (Method::DELETE, Some(n)) => {
            interfere(&mut g, &path);
            let Some(o) = g.objects.get(&path).cloned() else {
                return not_found(&n);
            };
            let pre = &body["preconditions"];
            for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
                if let Some(want) = pre.get(field).and_then(Value::as_str) {
                    let have = o["metadata"][field].as_str().unwrap_or("");
                    if want != have {
                        return status(
                            StatusCode::CONFLICT,
                            "Conflict",
                            format!("Operation cannot be fulfilled on {res}.rbac.authorization.k8s.io \"{n}\": Precondition failed: {label} in precondition: {want}, {label} in object meta: {have}"),
                        );
                    }
                }
            }
            g.objects.remove(&path);
            axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {"name": n, "uid": o["metadata"]["uid"]}})).into_response()
        }
        (Method::PATCH, Some(n)) => {
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if ct != "application/json-patch+json" {
                return status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json; got {ct}"));
            }
            interfere(&mut g, &path);
            let Some(mut o) = g.objects.get(&path).cloned() else {
                return not_found(&n);
            };
            if let Err(e) = apply_patch(&mut o, &body) {
                return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", e);
            }
            g.counter += 1;
            o["metadata"]["resourceVersion"] = json!((1000 + g.counter).to_string());
            g.objects.insert(path.clone(), o.clone());
            axum::Json(o).into_response()
        }
        (Method::POST, None) => {
            let Some(n) = body["metadata"]["name"].as_str().map(str::to_owned) else {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "metadata.name: Required value".into(),
                );
            };
            let key = format!("{collection}/{n}");
            if g.objects.contains_key(&key) {
                return status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("{res}.rbac.authorization.k8s.io \"{n}\" already exists"),
                );
            }
            let mut o = body;
            for f in ["uid", "resourceVersion", "creationTimestamp"] {
                if o["metadata"].get(f).is_some() && f != "creationTimestamp" {
                    return status(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid",
                        format!("metadata.{f}: must be empty on create"),
                    );
                }
            }
            if let Some(ns) = segs.get(1).filter(|_| segs[0] == "namespaces") {
                o["metadata"]["namespace"] = json!(ns);
            }
            g.counter += 1;
            let c = g.counter;
            o["metadata"]["uid"] = json!(format!("{c:08x}-0000-4000-8000-{c:012x}"));
            o["metadata"]["resourceVersion"] = json!((1000 + c).to_string());
            o["metadata"]["creationTimestamp"] = json!(now_rfc3339());
            g.objects.insert(key, o.clone());
            (StatusCode::CREATED, axum::Json(o)).into_response()
        }
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} is not supported here"),
        ),
    }
}

fn interfere(g: &mut Inner, path: &str) {
    if g.interfere == 0 {
        return;
    }
    g.interfere -= 1;
    g.counter += 1;
    let rv = (1000 + g.counter).to_string();
    if let Some(o) = g.objects.get_mut(path) {
        o["metadata"]["resourceVersion"] = json!(rv);
        o["metadata"]["labels"]["touched-by"] = json!("someone-else");
    }
}

fn create_event(g: &mut Inner, path: &str, mut ev: Value) -> Response {
    for f in [
        "eventTime",
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
        "type",
        "regarding",
    ] {
        if ev.get(f).is_none_or(Value::is_null) {
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                format!("{f}: Required value"),
            );
        }
    }
    let ns = path.split('/').nth(5).unwrap_or("").to_owned();
    g.counter += 1;
    let prefix = ev["metadata"]["generateName"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    ev["metadata"]["name"] = json!(format!("{prefix}{:05x}", g.counter));
    ev["metadata"]["namespace"] = json!(ns);
    g.events.push(ev.clone());
    (StatusCode::CREATED, axum::Json(ev)).into_response()
}

/// RFC 6902 with the operations the responder uses (test, remove, add, replace), all or nothing.
fn apply_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops.as_array().ok_or("the patch is not a JSON array")?;
    let mut work = doc.clone();
    for op in ops {
        let path = op["path"].as_str().ok_or("op without path")?;
        match op["op"].as_str() {
            Some("test") => {
                if work.pointer(path) != Some(&op["value"]) {
                    return Err(format!("testing value {path} failed: test failed"));
                }
            }
            Some("remove") => {
                let (parent, key) = split(path);
                let p = work.pointer_mut(parent).ok_or(format!(
                    "remove operation does not apply: doc is missing path: {path}"
                ))?;
                match p {
                    Value::Array(a) => {
                        let i: usize = key.parse().map_err(|_| format!("bad index in {path}"))?;
                        if i >= a.len() {
                            return Err(format!(
                                "remove operation does not apply: doc is missing path: {path}"
                            ));
                        }
                        a.remove(i);
                    }
                    Value::Object(m) => {
                        m.remove(key).ok_or(format!(
                            "remove operation does not apply: doc is missing path: {path}"
                        ))?;
                    }
                    _ => return Err(format!("cannot remove {path}")),
                }
            }
            Some(o @ ("add" | "replace")) => {
                let (parent, key) = split(path);
                let v = op["value"].clone();
                let p = work.pointer_mut(parent).ok_or(format!(
                    "{o} operation does not apply: doc is missing path: {path}"
                ))?;
                match p {
                    Value::Array(a) if key == "-" => a.push(v),
                    Value::Array(a) => {
                        let i: usize = key.parse().map_err(|_| format!("bad index in {path}"))?;
                        if o == "add" && i <= a.len() {
                            a.insert(i, v);
                        } else if i < a.len() {
                            a[i] = v;
                        } else {
                            return Err(format!("index out of range in {path}"));
                        }
                    }
                    Value::Object(m) => {
                        m.insert(key.replace("~1", "/").replace("~0", "~"), v);
                    }
                    _ => return Err(format!("cannot {o} {path}")),
                }
            }
            other => return Err(format!("unsupported op {other:?}")),
        }
    }
    *doc = work;
    Ok(())
}

fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}
