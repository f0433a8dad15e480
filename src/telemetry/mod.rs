//! Telemetry: structured logs, Prometheus metrics with bounded labels, and the health endpoints.

mod metrics;
mod server;

pub use self::metrics::{acked_counter, install_recorder, PerSource, PipelineStats, SourceMetrics};
pub use server::{serve, Health, READ_TIMEOUT};

use tracing_subscriber::EnvFilter;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Starts logging to stderr (stdout carries the console output).
/// `level` is a tracing filter: `info`, `debug`, `rampart=debug,rdkafka=warn`.
pub fn init_logging(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // Ignore "already set": tests and embedded callers may have installed one.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
