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
    journal: std::sync::OnceLock<Arc<crate::state::outbox::Outbox>>,
}

impl Health {
    /// Ready once every source is consuming; not ready while starting or draining.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
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
    let handle: axum_server::Handle<SocketAddr> = axum_server::Handle::new();
    let mut server = axum_server::from_tcp(listener)?.handle(handle.clone());
    // Slack's interactivity endpoint faces the internet: a client that never finishes its
    // headers is disconnected (axum's and axum-server's default is to wait for ever).
    server
        .http_builder()
        .http1()
        .header_read_timeout(READ_TIMEOUT);
    tracing::info!(addr = %local, "telemetry listening");
    tokio::spawn(async move {
        shutdown.cancelled().await;
        handle.graceful_shutdown(Some(READ_TIMEOUT));
    });
    let task = tokio::spawn(async move {
        if let Err(e) = server.serve(app.into_make_service()).await {
            tracing::warn!(error = %e, "telemetry server stopped");
        }
    });
    Ok((local, task))
}

/// Longest a client of the telemetry listener may take to send its request headers.
pub const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn readyz(State(h): State<Arc<Health>>) -> (StatusCode, &'static str) {
    if h.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}
