//! Every source in one list: each module starts itself from its own config section with `start(cx)`; adding a source is its module plus one line in [`SOURCES`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::file::FileSourceError;
use super::kafka::KafkaSourceError;
use super::webhook::WebhookError;
use super::Router;
use crate::config::Config;
use crate::deadletter::DeadLetter;
use crate::event::ClusterResolver;
use crate::telemetry::Health;

/// A future a source resolves when it has ended.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Why a source could not start, or failed while running.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Kafka(#[from] KafkaSourceError),
    #[error(transparent)]
    File(#[from] FileSourceError),
    #[error(transparent)]
    Webhook(#[from] WebhookError),
}

/// What a source's `start` may use.
pub struct StartContext<'a> {
    pub config: &'a Config,
    /// Where records go: the workers, by route key.
    pub router: Router,
    pub resolver: ClusterResolver,
    pub dead_letter: Arc<DeadLetter>,
    pub health: Arc<Health>,
    pub shutdown: CancellationToken,
    /// Bytes read by file sources, for progress bars.
    pub progress: Option<Arc<AtomicU64>>,
    /// Where sources keep their positions.
    pub state_dir: PathBuf,
}

/// A running source.
pub trait Source: Send {
    /// Ends when the source has stopped (its input ended, or shutdown) and handed on what it read.
    fn join(self: Box<Self>) -> BoxFuture<'static, Result<(), SourceError>>;
    /// The address it listens on, for sources that listen.
    fn listen_addr(&self) -> Option<SocketAddr> {
        None
    }
}

/// One source's starter: starts nothing when its config section is absent.
pub type StartFn = for<'a> fn(
    &'a StartContext<'a>,
    &'a mut Vec<Box<dyn Source>>,
) -> BoxFuture<'a, Result<(), SourceError>>;

/// The sources, in the order they start.
pub const SOURCES: &[StartFn] = &[
    super::file::start,
    super::webhook::start,
    super::kafka::start,
];

/// Starts every source the config asks for.
pub async fn start_all(cx: &StartContext<'_>) -> Result<Vec<Box<dyn Source>>, SourceError> {
    let mut out = Vec::new();
    for start in SOURCES {
        start(cx, &mut out).await?;
    }
    Ok(out)
}
