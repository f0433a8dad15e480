//! The web console under `/console` on the telemetry listener: server-rendered pages over the triage desk (alerts, approvals, suppressions, tuning, playbook health), signed in with a console user's token.
//!
//! A sign-in is a random session id in an `HttpOnly; SameSite=Strict` cookie, kept in memory until
//! `console.session` runs out. Every state-changing POST must carry the session's CSRF token and,
//! when the browser says where it comes from (`Origin`, else `Referer`), come from the console's own
//! host; anything that changes state needs the approver role. Every string an alert carries is
//! escaped ([`html::esc`]) and the pages forbid scripts outright (`Content-Security-Policy`).

mod actions;
mod admin;
pub mod html;
mod pages;
pub mod session;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::state::StateError;
use crate::triage::access::{Role, User};
use crate::triage::api::Desk;
use crate::triage::TriageError;
use session::{Session, Sessions};

/// Errors of the console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("the system's random number generator failed")]
    Random,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("sign in first")]
    Unauthorized,
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Triage(#[from] TriageError),
    #[error("the request was interrupted: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl ConsoleError {
    fn status(&self) -> StatusCode {
        match self {
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConsoleError::Unauthorized => StatusCode::UNAUTHORIZED,
            ConsoleError::Triage(TriageError::NoAlert(_) | TriageError::NoSuppression(_)) => {
                StatusCode::NOT_FOUND
            }
            ConsoleError::Triage(TriageError::Invalid(_) | TriageError::Ended(_)) => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let code = self.status();
        if code == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(error = %self, "console request failed");
        }
        let body = html::page(
            code.canonical_reason().unwrap_or("error"),
            "",
            None,
            &format!(
                "<h1>{}</h1>{}<p><a href=\"/console/alerts\">Back to the console</a></p>",
                code.as_u16(),
                html::notice(&self.to_string(), true)
            ),
        );
        with_headers((code, body).into_response())
    }
}

/// The console's state: the desk and the sign-ins.
pub struct Console {
    desk: Arc<Desk>,
    sessions: Sessions,
    /// Result sentences waiting for the next page a session shows (post, redirect, get).
    flash: std::sync::Mutex<HashMap<String, (String, bool)>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").finish_non_exhaustive()
    }
}

impl Console {
    pub fn new(desk: Arc<Desk>, session: Duration) -> Self {
        Self {
            desk,
            sessions: Sessions::new(session),
            flash: std::sync::Mutex::default(),
        }
    }

    fn set_flash(&self, session: &str, msg: String, error: bool) {
        let mut f = self.flash.lock().unwrap_or_else(|e| e.into_inner());
        f.retain(|k, _| self.sessions.get(k).is_some());
        f.insert(session.to_owned(), (msg, error));
    }

    fn take_flash(&self, session: &str) -> Option<(String, bool)> {
        self.flash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(session)
    }
}

/// The console's routes, over `desk`; sign-ins last `session`.
pub fn router(desk: Arc<Desk>, session: Duration) -> Router {
    let c = Arc::new(Console::new(desk, session));
    Router::new()
        .route("/console", get(alerts))
        .route("/console/", get(alerts))
        .route("/console/alerts", get(alerts))
        .route("/console/alert", get(alert))
        .route("/console/approvals", get(approvals))
        .route("/console/suppressions", get(suppressions))
        .route("/console/tuning", get(tuning))
        .route("/console/health", get(health))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/mark", action(actions::mark))
        .route("/console/snooze", action(actions::snooze))
        .route("/console/suppress", action(actions::suppress))
        .route("/console/revoke", action(actions::revoke))
        .route("/console/decide", action(actions::decide))
        .route("/console/apply", action(actions::apply))
        .with_state(c)
}

/// The security headers every console answer carries: no scripts, no framing, no caching.
fn with_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

fn html_response(code: StatusCode, body: String) -> Response {
    with_headers(
        (
            code,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

/// A 303 to `to`, with an optional `Set-Cookie`.
fn redirect(to: &str, cookie: Option<String>) -> Response {
    let mut r = with_headers(StatusCode::SEE_OTHER.into_response());
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// What a page renderer returns: its title and body.
pub(crate) type Rendered = Result<(String, String), ConsoleError>;

/// Serves a page to a signed-in session (others are sent to sign in), rendered on the blocking pool.
async fn view(
    c: Arc<Console>,
    h: &HeaderMap,
    active: &'static str,
    render: impl FnOnce(&Desk, &Session) -> Rendered + Send + 'static,
) -> Response {
    let Some((id, s)) = c.sessions.from_headers(h) else {
        return redirect("/console/login", None);
    };
    let flash = c.take_flash(&id);
    let desk = c.desk.clone();
    let out = tokio::task::spawn_blocking(move || {
        render(&desk, &s).map(|(title, body)| {
            let note = flash
                .map(|(m, err)| html::notice(&m, err))
                .unwrap_or_default();
            html::page(&title, active, Some(&s), &format!("{note}{body}"))
        })
    })
    .await;
    match out {
        Ok(Ok(body)) => html_response(StatusCode::OK, body),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ConsoleError::Task(e).into_response(),
    }
}

type Q = Query<HashMap<String, String>>;

async fn alerts(State(c): State<Arc<Console>>, h: HeaderMap, Query(q): Q) -> Response {
    view(c, &h, "alerts", move |d, s| pages::alerts(d, s, &q)).await
}

async fn alert(State(c): State<Arc<Console>>, h: HeaderMap, Query(q): Q) -> Response {
    view(c, &h, "alerts", move |d, s| {
        pages::alert(d, s, q.get("id").map(String::as_str).unwrap_or_default())
    })
    .await
}

async fn approvals(State(c): State<Arc<Console>>, h: HeaderMap) -> Response {
    view(c, &h, "approvals", admin::approvals).await
}

async fn suppressions(State(c): State<Arc<Console>>, h: HeaderMap) -> Response {
    view(c, &h, "suppressions", admin::suppressions).await
}

async fn tuning(State(c): State<Arc<Console>>, h: HeaderMap) -> Response {
    view(c, &h, "tuning", admin::tuning).await
}

async fn health(State(c): State<Arc<Console>>, h: HeaderMap) -> Response {
    view(c, &h, "health", admin::health).await
}

fn login_form(message: Option<&str>) -> String {
    let note = message.map(|m| html::notice(m, true)).unwrap_or_default();
    html::page(
        "Sign in",
        "",
        None,
        &format!(
            "<h1>Sign in to the rampart console</h1>{note}\
<form class=\"act\" method=\"post\" action=\"/console/login\" autocomplete=\"off\">\
<label>Token<input type=\"password\" name=\"token\" id=\"token\" size=\"48\" required autofocus></label>\
<button class=\"go\" id=\"signin\">Sign in</button></form>\
<p class=\"muted\">The token is a console user's (<code>console.users[].token</code>).</p>"
        ),
    )
}

async fn login_page(State(c): State<Arc<Console>>, h: HeaderMap) -> Response {
    if c.sessions.from_headers(&h).is_some() {
        return redirect("/console/alerts", None);
    }
    html_response(StatusCode::OK, login_form(None))
}

/// The form fields of a POST body.
fn form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

async fn login(State(c): State<Arc<Console>>, h: HeaderMap, body: Bytes) -> Response {
    if !session::same_origin(&h) {
        return ConsoleError::Forbidden("cross-site request refused".into()).into_response();
    }
    let f = form(&body);
    let token = f.get("token").map(|t| t.trim()).unwrap_or_default();
    let Some(user) = c.desk.access.by_token(token) else {
        tracing::info!("console sign-in refused: unknown token");
        return html_response(
            StatusCode::UNAUTHORIZED,
            login_form(Some("That token is not recognised.")),
        );
    };
    if let Some(id) = session::cookie(&h, session::COOKIE) {
        c.sessions.remove(&id);
    }
    match c.sessions.create(user.clone()) {
        Ok(id) => {
            tracing::info!(user = %user.name, role = user.role.as_str(), "console sign-in");
            redirect("/console/alerts", Some(c.sessions.set_cookie(&id)))
        }
        Err(e) => e.into_response(),
    }
}

/// The session a POST acts for, once its origin, its CSRF token and its role are checked.
fn guard(
    c: &Console,
    h: &HeaderMap,
    f: &HashMap<String, String>,
    role: Role,
) -> Result<(String, Session), ConsoleError> {
    let Some((id, s)) = c.sessions.from_headers(h) else {
        return Err(ConsoleError::Unauthorized);
    };
    if !session::same_origin(h) {
        return Err(ConsoleError::Forbidden("cross-site request refused".into()));
    }
    if !session::csrf_ok(&s, f.get("csrf").map(String::as_str)) {
        return Err(ConsoleError::Forbidden(
            "the form's CSRF token is missing or wrong; reload the page".into(),
        ));
    }
    if s.user.role < role {
        return Err(ConsoleError::Forbidden(format!(
            "{} is a {}; this needs an {}",
            s.user.name,
            s.user.role.as_str(),
            role.as_str()
        )));
    }
    Ok((id, s))
}

async fn logout(State(c): State<Arc<Console>>, h: HeaderMap, body: Bytes) -> Response {
    match guard(&c, &h, &form(&body), Role::Viewer) {
        Ok((id, _)) => {
            c.sessions.remove(&id);
            redirect("/console/login", Some(session::clear_cookie()))
        }
        Err(e) => e.into_response(),
    }
}

/// Where an action sends the browser next, and what it says there.
pub(crate) struct Done {
    pub to: String,
    pub message: String,
    pub error: bool,
}

/// An action's work: on the desk, as the user, with the form.
type Action = fn(&Desk, &User, &HashMap<String, String>) -> Result<Done, ConsoleError>;

/// The route of an action.
fn action(what: Action) -> axum::routing::MethodRouter<Arc<Console>> {
    post(move |s: State<Arc<Console>>, h: HeaderMap, b: Bytes| act(s, h, b, what))
}

/// A state-changing POST: guarded (approver), done on the blocking pool, answered with a redirect
/// to the page that shows the result.
async fn act(State(c): State<Arc<Console>>, h: HeaderMap, body: Bytes, what: Action) -> Response {
    let f = form(&body);
    let (id, s) = match guard(&c, &h, &f, Role::Approver) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let desk = c.desk.clone();
    match tokio::task::spawn_blocking(move || what(&desk, &s.user, &f)).await {
        Ok(Ok(done)) => {
            c.set_flash(&id, done.message, done.error);
            redirect(&done.to, None)
        }
        Ok(Err(e)) => e.into_response(),
        Err(e) => ConsoleError::Task(e).into_response(),
    }
}
