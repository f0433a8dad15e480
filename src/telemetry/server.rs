//! The `/metrics`, `/healthz` and `/readyz` endpoints.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::state::outbox::Listing;

/// Liveness and readiness as the orchestrator sees them, and the journal for `rampart alerts` / `rampart actions`.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    /// What keeps rampart from doing its work right now, by component (`kafka`, `state`).
    problems: std::sync::Mutex<std::collections::BTreeMap<&'static str, String>>,
    journal: std::sync::OnceLock<Arc<crate::state::outbox::Outbox>>,
}

impl Health {
    /// Ready once every source is consuming; not ready while starting or draining.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
    /// Ready: started, not draining, and no component reports a problem.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && self.problems().is_empty()
    }
    /// A component reports what keeps it from working (not ready), or that it works again (`None`).
    /// Changes are logged once each: a problem as an error, its end as info.
    pub fn set_problem(&self, component: &'static str, problem: Option<String>) {
        let mut p = self.lock();
        match problem {
            Some(what) => {
                if p.get(component) != Some(&what) {
                    tracing::error!(component, problem = %what, "not ready");
                    p.insert(component, what);
                }
            }
            None => {
                if p.remove(component).is_some() {
                    tracing::info!(component, "recovered");
                }
            }
        }
    }
    /// The problems reported, as `component: problem` lines; the state store's own failure
    /// (any writer — pipeline, dispatcher, sweeper — may have met it) counts as one.
    pub fn problems(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .lock()
            .iter()
            .map(|(c, p)| format!("{c}: {p}"))
            .collect();
        if let Some(f) = self.journal.get().and_then(|o| o.store().failure()) {
            v.push(format!(
                "state: {f}; nothing more is acknowledged (it will be read again) until the store works and rampart is restarted"
            ));
        }
        v
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<&'static str, String>> {
        self.problems.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Serves the journal read-only under `/api/alerts` and `/api/actions` once the state stage is open.
    pub fn set_journal(&self, outbox: Arc<crate::state::outbox::Outbox>) {
        let _ = self.journal.set(outbox);
    }
}

#[derive(serde::Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn api(
    h: Arc<Health>,
    what: crate::state::outbox::Listing,
    limit: Option<usize>,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    let Some(o) = h.journal.get().cloned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"error": "state not open yet"})),
        );
    };
    let limit = limit.unwrap_or(100);
    match tokio::task::spawn_blocking(move || o.listing(what, limit)).await {
        Ok(Ok(v)) => (StatusCode::OK, axum::Json(v)),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({"error": e.to_string()})),
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::Value::Null),
        ),
    }
}

/// Binds the telemetry listener and serves it, with `extra` routes (e.g. Slack's
/// interactivity endpoint), until `shutdown` fires. Returns the bound address.
///
/// It runs on a thread of its own (a small runtime of its own), so that `/healthz`, `/readyz` and
/// `/metrics` answer even when the pipeline's runtime is saturated or stuck on a failing disk:
/// the probes must be able to say "not ready" exactly then.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    extra: Option<Router>,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let handle = super::install_recorder();
    let app = Router::new()
        .route("/metrics", get(move || async move { handle.render() }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/api/alerts",
            get(
                |State(h): State<Arc<Health>>, q: axum::extract::Query<Limit>| {
                    api(h, Listing::Alerts, q.limit)
                },
            ),
        )
        .route(
            "/api/actions",
            get(
                |State(h): State<Arc<Health>>, q: axum::extract::Query<Limit>| {
                    api(h, Listing::Actions, q.limit)
                },
            ),
        )
        .with_state(health);
    let app = match extra {
        Some(r) => app.merge(r),
        None => app,
    };
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("telemetry")
        .build()?;
    tracing::info!(addr = %local, "telemetry listening");
    let task = tokio::task::spawn_blocking(move || {
        rt.block_on(async move {
            // Built inside this runtime, so the socket is driven by it.
            let server = match axum_server::from_tcp(listener) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "telemetry server stopped");
                    return;
                }
            };
            let handle: axum_server::Handle<SocketAddr> = axum_server::Handle::new();
            let mut server = server.handle(handle.clone());
            // Slack's interactivity endpoint faces the internet: a client that never finishes its
            // headers is disconnected (axum's and axum-server's default is to wait for ever).
            server
                .http_builder()
                .http1()
                .header_read_timeout(READ_TIMEOUT);
            tokio::spawn(async move {
                shutdown.cancelled().await;
                handle.graceful_shutdown(Some(READ_TIMEOUT));
            });
            if let Err(e) = server.serve(app.into_make_service()).await {
                tracing::warn!(error = %e, "telemetry server stopped");
            }
        });
    });
    Ok((local, task))
}

/// Longest a client of the telemetry listener may take to send its request headers.
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// 200 `ready`, or 503 `not ready` followed by one line per problem reported.
async fn readyz(State(h): State<Arc<Health>>) -> (StatusCode, String) {
    if h.is_ready() {
        return (StatusCode::OK, "ready".into());
    }
    let mut body = String::from("not ready");
    for p in h.problems() {
        body.push('\n');
        body.push_str(&p);
    }
    (StatusCode::SERVICE_UNAVAILABLE, body)
}
