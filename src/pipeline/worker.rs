//! The per-record work: decode, dead-letter what cannot be decoded, stamp provenance, hand on to the output stage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::OnPlaybookError;
use crate::deadletter::{DeadLetter, DeadLetterEntry};
use crate::enrich::Enrichers;
use crate::event::{decode_record, AuditEvent, ClusterResolver, DecodeOptions};
use crate::playbook::{Ev, PlaybookHandle};
use crate::sources::{Ack, Record};
use crate::telemetry::{PerSource, PipelineStats};

/// Decoded events of one record, acknowledged together once the output has them.
pub struct OutputItem {
    pub events: Vec<AuditEvent>,
    pub ack: Ack,
}

/// What every worker shares.
pub struct WorkerContext {
    pub decode: DecodeOptions,
    pub resolver: ClusterResolver,
    pub enrichers: Arc<Enrichers>,
    pub playbooks: Option<Arc<PlaybookHandle>>,
    pub on_playbook_error: OnPlaybookError,
    pub tally: Option<Arc<crate::playbook::Tally>>,
    /// Time every playbook run into the tally (`RunOptions::profile`).
    pub timed: bool,
    pub dead_letter: Arc<DeadLetter>,
    pub stats: Arc<PipelineStats>,
    pub shutdown: CancellationToken,
}

/// Runs one worker until its input channel closes.
pub async fn run(
    ctx: Arc<WorkerContext>,
    mut input: mpsc::Receiver<Vec<Record>>,
    output: mpsc::Sender<Vec<OutputItem>>,
) {
    let mut metrics = PerSource::default();
    while let Some(batch) = input.recv().await {
        let mut out = Vec::with_capacity(batch.len());
        for record in batch {
            if let Some(item) = handle(&ctx, &mut metrics, record).await {
                out.push(item);
            }
        }
        if !out.is_empty() && output.send(out).await.is_err() {
            return;
        }
    }
}

/// Decodes one record; returns what the output stage must write before the record is acknowledged.
async fn handle(
    ctx: &WorkerContext,
    metrics: &mut PerSource,
    record: Record,
) -> Option<OutputItem> {
    {
        let m = metrics.get(record.origin.source);
        let started = Instant::now();
        m.records.increment(1);
        PipelineStats::add(&ctx.stats.records, 1);
        let decoded = decode_record(&record.bytes, &ctx.decode);
        let Record {
            origin,
            cluster,
            ack,
            bytes: _,
            route_key: _,
        } = record;
        for skip in &decoded.skipped {
            tracing::debug!(
                reason = skip.reason.as_str(),
                detail = %skip.detail,
                source = origin.source.as_str(),
                "record left out: not a Kubernetes audit event"
            );
            m.skipped(skip.reason);
            PipelineStats::add(&ctx.stats.skipped, 1);
        }
        let mut dead_lettered = true;
        for failure in &decoded.failures {
            let fallback = ctx.resolver.resolve_default(&cluster);
            let entry = DeadLetterEntry {
                reason: failure.error.to_string(),
                origin: &origin,
                cluster: &fallback,
                index: failure.index,
                whole_record: failure.whole_record,
                bytes: &failure.bytes,
            };
            if !write_dead_letter(ctx, &entry).await {
                dead_lettered = false;
                break;
            }
            m.dead_letters.increment(1);
            PipelineStats::add(&ctx.stats.dead_letters, 1);
        }
        if !dead_lettered {
            // Shutting down with the dead-letter sink failing: leave the record
            // unacknowledged so that it is read again.
            return None;
        }
        let mut events = decoded.events;
        for ev in &mut events {
            let name = ctx.resolver.resolve(&cluster, ev);
            let filled = std::mem::take(&mut ev.provenance.filled);
            for field in &filled {
                m.filled(field);
            }
            ev.provenance = origin.provenance(name, ev.provenance.index, filled);
            ctx.enrichers
                .for_cluster(&ev.provenance.cluster)
                .enrich(ev)
                .await;
        }
        if let Some(handle) = &ctx.playbooks {
            let set = handle.current();
            let mut judged = Vec::with_capacity(events.len());
            for ev in events {
                let wrapped = Ev::new(ev);
                let evaluation = set.evaluate_timed(&wrapped, ctx.timed);
                if let Some(t) = &ctx.tally {
                    t.record_in(&evaluation, Some(set.as_ref()));
                }
                let mut ev = wrapped.into_event();
                ev.verdicts = evaluation.verdicts;
                if ctx.on_playbook_error == OnPlaybookError::DeadLetter
                    && !evaluation.faults.is_empty()
                {
                    let reason = evaluation
                        .faults
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ");
                    let bytes = serde_json::to_vec(&ev).unwrap_or_default();
                    let entry = DeadLetterEntry {
                        reason,
                        origin: &origin,
                        cluster: &ev.provenance.cluster,
                        index: ev.provenance.index,
                        whole_record: false,
                        bytes: &bytes,
                    };
                    if !write_dead_letter(ctx, &entry).await {
                        return None;
                    }
                }
                judged.push(ev);
            }
            events = judged;
        }
        let n = events.len() as u64;
        m.events.increment(n);
        PipelineStats::add(&ctx.stats.events, n);
        m.decode_seconds.record(started.elapsed().as_secs_f64());
        if events.is_empty() {
            ack.ack();
            PipelineStats::add(&ctx.stats.acked_records, 1);
            crate::telemetry::acked_counter().increment(1);
            return None;
        }
        Some(OutputItem { events, ack })
    }
}

/// Retries a failing dead-letter sink until it works or shutdown begins: nothing is dropped silently.
async fn write_dead_letter(ctx: &WorkerContext, entry: &DeadLetterEntry<'_>) -> bool {
    let mut backoff = Duration::from_millis(100);
    loop {
        match ctx.dead_letter.write(entry).await {
            Ok(()) => {
                tracing::warn!(reason = %entry.reason, source = entry.origin.source.as_str(), "record dead-lettered");
                return true;
            }
            Err(e) => {
                tracing::error!(error = %e, "dead-letter write failed; retrying");
                tokio::select! {
                    () = ctx.shutdown.cancelled() => return false,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
