//! The triage API on the telemetry listener, for the command line and for tools: outcomes, suppressions and the tuning report, each call authenticated by a console user's bearer token (writes need the approver role).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::access::{Access, Role, User};
use super::tune::{self, Report};
use super::{NewSuppression, Scope, Triage, TriageError, Verdict};
use crate::config::Seconds;
use crate::playbook::PlaybookHandle;
use crate::state::model::wall_ms;
use crate::state::{StateError, StateStage};

/// What the API, the console and Slack's buttons work on.
#[derive(Clone)]
pub struct Desk {
    pub triage: Arc<Triage>,
    /// The state stage: alerts, the journal, and decisions on responses waiting for approval.
    pub state: Arc<StateStage>,
    pub access: Access,
    /// The live playbook set (allowlists for the report, health for the console).
    pub playbooks: Option<Arc<PlaybookHandle>>,
}

impl std::fmt::Debug for Desk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desk")
            .field("access", &self.access)
            .finish()
    }
}

impl Desk {
    /// The tuning report as of now.
    pub fn report(&self) -> Result<Report, StateError> {
        let alerts = self.state.alerts()?;
        let outcomes = self.triage.outcomes()?;
        let set = self.playbooks.as_ref().map(|h| (h.current(), h.config()));
        Ok(tune::report(
            &alerts,
            &outcomes,
            &self.triage.suppressions(),
            set.as_ref().map(|(s, c)| (&**s, *c)),
            wall_ms(),
        ))
    }

    /// Writes the report's suggestion `LIST=VALUE` to its list file; hot reload picks it up.
    pub fn apply(&self, list: &str, value: &str, by: &str) -> Result<String, TriageError> {
        let report = self.report()?;
        let Some(s) = report
            .suggestions
            .iter()
            .find(|s| s.list == list && s.value == value)
        else {
            return Err(TriageError::Invalid(format!(
                "{list}={value} is not among the tuning report's suggestions (see `rampart tune`)"
            )));
        };
        let why = format!(
            "rampart tune: {} false positive(s) of {}, applied by {by}",
            s.alerts.len(),
            s.playbook
        );
        let added =
            tune::apply(&s.file, value, &why).map_err(|e| TriageError::Invalid(e.to_string()))?;
        Ok(applied_message(s, added))
    }
}

/// What applying a suggestion did, in a sentence.
pub fn applied_message(s: &tune::Suggestion, added: bool) -> String {
    if added {
        format!(
            "added {:?} to {} (list {}); hot reload picks it up, after which {} no longer fires on it{}",
            s.value,
            s.file.display(),
            s.list,
            s.playbook,
            if s.also_silences.is_empty() {
                String::new()
            } else {
                format!(" (nor do {})", s.also_silences.join(", "))
            }
        )
    } else {
        format!("{} already holds {:?}", s.file.display(), s.value)
    }
}

/// An API error as JSON `{ "error": … }` with its status.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<TriageError> for ApiError {
    fn from(e: TriageError) -> Self {
        let code = match &e {
            TriageError::NoAlert(_) | TriageError::NoSuppression(_) => StatusCode::NOT_FOUND,
            TriageError::Ended(_) => StatusCode::CONFLICT,
            TriageError::Invalid(_) => StatusCode::BAD_REQUEST,
            TriageError::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(code, e.to_string())
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// The bearer's user, if it holds at least `role`.
fn authorize(access: &Access, headers: &HeaderMap, role: Role) -> Result<User, ApiError> {
    let Some(u) = access.by_header(headers) else {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "a console user's bearer token is required".into(),
        ));
    };
    if u.role < role {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "{} is a {}; this needs an {}",
                u.name,
                u.role.as_str(),
                role.as_str()
            ),
        ));
    }
    Ok(u)
}

/// Runs `f` on the blocking pool (the store may wait on the disk).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "task failed".into()))?
}

/// A mark as the API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRequest {
    pub alert: String,
    /// `true_positive`, `benign` or `false_positive` (or `tp`, `fp`).
    pub outcome: String,
    #[serde(default)]
    pub note: String,
}

/// A suppression as the API takes it: its scope, a reason and a duration (`24h`, `7d`).
#[derive(Debug, Deserialize)]
pub struct SuppressRequest {
    #[serde(default)]
    pub playbook: Option<String>,
    #[serde(flatten)]
    pub scope: Scope,
    pub reason: String,
    #[serde(rename = "for")]
    pub duration: Seconds,
}

impl From<SuppressRequest> for NewSuppression {
    fn from(r: SuppressRequest) -> Self {
        NewSuppression {
            playbook: r.playbook,
            scope: r.scope,
            reason: r.reason,
            for_secs: r.duration.get().as_secs(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct RevokeRequest {
    id: String,
}

#[derive(Debug, Deserialize)]
struct ApplyRequest {
    list: String,
    value: String,
}

/// The routes, over `desk`.
pub fn router(desk: Arc<Desk>) -> Router {
    Router::new()
        .route("/api/outcomes", get(list_outcomes).post(mark))
        .route("/api/suppressions", get(list_suppressions).post(suppress))
        .route("/api/suppressions/revoke", post(revoke))
        .route("/api/tune", get(report))
        .route("/api/tune/apply", post(apply))
        .with_state(desk)
}

async fn list_outcomes(
    State(d): State<Arc<Desk>>,
    h: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&d.access, &h, Role::Viewer)?;
    blocking(move || {
        let mut v: Vec<_> = d.triage.outcomes()?.into_values().collect();
        v.sort_by_key(|o| std::cmp::Reverse(o.at_ms));
        Ok(Json(serde_json::to_value(v).unwrap_or_default()))
    })
    .await
}

async fn mark(
    State(d): State<Arc<Desk>>,
    h: HeaderMap,
    Json(r): Json<MarkRequest>,
) -> Result<Json<super::Outcome>, ApiError> {
    let u = authorize(&d.access, &h, Role::Approver)?;
    let Some(v) = Verdict::parse(&r.outcome) else {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "outcome {:?}: use true_positive, benign or false_positive",
                r.outcome
            ),
        ));
    };
    blocking(move || Ok(Json(d.triage.mark(&r.alert, v, &r.note, &u.name)?))).await
}

async fn list_suppressions(
    State(d): State<Arc<Desk>>,
    h: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&d.access, &h, Role::Viewer)?;
    let now = wall_ms();
    let v: Vec<serde_json::Value> = d
        .triage
        .suppressions()
        .iter()
        .map(|s| {
            let mut j = serde_json::to_value(s).unwrap_or_default();
            j["state"] = s.state(now).into();
            j
        })
        .collect();
    Ok(Json(v.into()))
}

async fn suppress(
    State(d): State<Arc<Desk>>,
    h: HeaderMap,
    Json(r): Json<SuppressRequest>,
) -> Result<Json<super::Suppression>, ApiError> {
    let u = authorize(&d.access, &h, Role::Approver)?;
    blocking(move || Ok(Json(d.triage.suppress(r.into(), &u.name)?))).await
}

async fn revoke(
    State(d): State<Arc<Desk>>,
    h: HeaderMap,
    Json(r): Json<RevokeRequest>,
) -> Result<Json<super::Suppression>, ApiError> {
    let u = authorize(&d.access, &h, Role::Approver)?;
    blocking(move || Ok(Json(d.triage.revoke(&r.id, &u.name)?))).await
}

async fn report(State(d): State<Arc<Desk>>, h: HeaderMap) -> Result<Json<Report>, ApiError> {
    authorize(&d.access, &h, Role::Viewer)?;
    blocking(move || Ok(Json(d.report()?))).await
}

async fn apply(
    State(d): State<Arc<Desk>>,
    h: HeaderMap,
    Json(r): Json<ApplyRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let u = authorize(&d.access, &h, Role::Approver)?;
    blocking(move || {
        let said = d.apply(&r.list, &r.value, &u.name)?;
        Ok(Json(serde_json::json!({ "result": said })))
    })
    .await
}
