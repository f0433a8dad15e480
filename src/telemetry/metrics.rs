//! Metric names and handles; labels are bounded (source, stage, outcome), never a user, IP or topic value from events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::event::SourceKind;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once and returns its handle.
/// Call before creating any metric handle.
pub fn install_recorder() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(&[
                0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
            ])
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a host program); then ours only renders.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            })
            .ok();
        handle
    })
}

fn describe() {
    describe_counter!(
        "rampart_records_received_total",
        "Records read from a source."
    );
    describe_counter!(
        "rampart_events_decoded_total",
        "Audit events decoded from records."
    );
    describe_counter!(
        "rampart_dead_letters_total",
        "Records or items that could not be decoded and were dead-lettered."
    );
    describe_counter!(
        "rampart_records_skipped_total",
        "Well-formed entries left out on purpose because they are not Kubernetes audit events (other cloud services, other diagnostic categories), by reason."
    );
    describe_counter!(
        "rampart_fields_filled_total",
        "Fields an incomplete event lacked and the decoder filled in (auditID, stage, level, timestamps), by field."
    );
    describe_counter!(
        "rampart_records_acked_total",
        "Records fully handled and acknowledged back to their source."
    );
    describe_histogram!(
        "rampart_stage_seconds",
        "Time spent per record in each pipeline stage."
    );
    describe_gauge!(
        "rampart_kafka_consumer_lag",
        "Messages between the committed position and the partition's end."
    );
    describe_counter!(
        "rampart_webhook_requests_total",
        "Webhook requests answered, by status code class."
    );
    describe_counter!(
        "rampart_kafka_rebalances_total",
        "Partition assignments and revocations."
    );
    describe_gauge!(
        "rampart_outbox_pending",
        "Alerts and actions waiting in the outbox for a responder (refreshed every 5 s)."
    );
}

/// Per-source metric handles, created once per worker so the hot path does no lookups.
#[derive(Clone)]
pub struct SourceMetrics {
    pub records: Counter,
    pub events: Counter,
    pub dead_letters: Counter,
    pub decode_seconds: Histogram,
    pub output_seconds: Histogram,
    /// One counter per fillable field, in [`crate::event::FILLABLE`]'s order.
    filled: [Counter; 5],
    /// One counter per skip reason, in [`crate::event::SkipReason::ALL`]'s order.
    skipped: [Counter; 3],
}

impl SourceMetrics {
    pub fn new(source: SourceKind) -> Self {
        let s = source.as_str();
        Self {
            records: counter!("rampart_records_received_total", "source" => s),
            events: counter!("rampart_events_decoded_total", "source" => s),
            dead_letters: counter!("rampart_dead_letters_total", "source" => s),
            decode_seconds: metrics::histogram!("rampart_stage_seconds", "stage" => "decode"),
            output_seconds: metrics::histogram!("rampart_stage_seconds", "stage" => "output"),
            filled: crate::event::FILLABLE
                .map(|f| counter!("rampart_fields_filled_total", "field" => f)),
            skipped: crate::event::SkipReason::ALL
                .map(|r| counter!("rampart_records_skipped_total", "reason" => r.as_str())),
        }
    }

    /// Counts one entry left out on purpose (not a Kubernetes audit event).
    pub fn skipped(&self, reason: crate::event::SkipReason) {
        if let Some(i) = crate::event::SkipReason::ALL
            .iter()
            .position(|r| *r == reason)
        {
            self.skipped[i].increment(1);
        }
    }

    /// Counts one field filled in by the decoder.
    pub fn filled(&self, field: &str) {
        if let Some(i) = crate::event::FILLABLE.iter().position(|f| *f == field) {
            self.filled[i].increment(1);
        }
    }
}

/// Each source kind's metric handles, made on first use: whatever kinds of source exist, a worker
/// holds the few it has seen, found without a registry lookup.
#[derive(Default)]
pub struct PerSource(Vec<(SourceKind, SourceMetrics)>);

impl PerSource {
    /// The handles of `source`'s metrics.
    pub fn get(&mut self, source: SourceKind) -> &SourceMetrics {
        let i = match self.0.iter().position(|(k, _)| *k == source) {
            Some(i) => i,
            None => {
                self.0.push((source, SourceMetrics::new(source)));
                self.0.len() - 1
            }
        };
        &self.0[i].1
    }
}

/// Records acknowledged back to their sources (all sources together).
pub fn acked_counter() -> Counter {
    counter!("rampart_records_acked_total")
}

/// Counts for one pipeline run, independent of the global registry (summaries, tests).
#[derive(Debug, Default)]
pub struct PipelineStats {
    pub records: AtomicU64,
    pub events: AtomicU64,
    pub dead_letters: AtomicU64,
    /// Entries left out on purpose (not Kubernetes audit events).
    pub skipped: AtomicU64,
    pub acked_records: AtomicU64,
    pub output_events: AtomicU64,
}

impl PipelineStats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}
