//! Every responder in one list: each module builds itself from its own config section with `build(cx, out)`; adding a responder is its module, its section in `RespondConfig`, and one line in [`RESPONDERS`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{BoxFuture, Responder};
use crate::config::Config;
use crate::state::{StateStage, StateStore};

/// Why a responder could not be built (the run does not start).
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    #[error("cannot open output file {path}: {source}")]
    AlertsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Webhook(#[from] super::webhook::WebhookError),
    #[error("respond.kafka: cannot create the producer: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("respond.kubernetes: {0}")]
    Kubernetes(#[from] super::kubernetes::ConnectError),
    #[error("respond.slack: {0}")]
    Slack(#[from] super::slack::ClientError),
    #[error("a responder's memory: {0}")]
    Store(#[from] crate::state::StateError),
    #[error("respond.pagerduty: cannot build the HTTP client: {0}")]
    PagerDuty(String),
}

/// What a responder's `build` may use: the whole config (its own section, shared connections,
/// the state's retention) and the store, for what a responder remembers per alert.
pub struct BuildContext<'a> {
    pub config: &'a Config,
    pub store: Arc<dyn StateStore>,
}

/// What a responder's endpoint may reach, once the stage exists.
#[derive(Clone)]
pub struct RouteContext {
    /// The state stage: alerts, the outbox (decisions on responses waiting for approval).
    pub state: Arc<StateStage>,
    /// Outcomes and suppressions (Slack's triage buttons).
    pub triage: Arc<crate::triage::Triage>,
}

/// An HTTP endpoint a responder serves on the telemetry listener, made once the stage exists.
pub type Route = Box<dyn FnOnce(RouteContext) -> axum::Router + Send>;

/// What the responders add to a run.
#[derive(Default)]
pub struct Built {
    pub responders: Vec<Arc<dyn Responder>>,
    /// Endpoints served on the telemetry listener (e.g. Slack's approval buttons).
    pub routes: Vec<Route>,
    /// How long a response waits for a human's approval, when a responder asks for approvals.
    pub approval_ttl: Option<Duration>,
}

/// One responder's builder: adds nothing when its config section is absent.
pub type BuildFn =
    for<'a> fn(&'a BuildContext<'a>, &'a mut Built) -> BoxFuture<'a, Result<(), RespondError>>;

/// The responders, in the order they are built.
pub const RESPONDERS: &[BuildFn] = &[
    super::alerts_file::build,
    super::webhook::build,
    super::kafka_alerts::build,
    super::kubernetes::build,
    super::console_alerts::build,
    super::slack::build,
    super::pagerduty::build,
];

/// Builds every responder the config asks for.
pub async fn build_all(cx: &BuildContext<'_>) -> Result<Built, RespondError> {
    let mut out = Built::default();
    for build in RESPONDERS {
        build(cx, &mut out).await?;
    }
    Ok(out)
}
