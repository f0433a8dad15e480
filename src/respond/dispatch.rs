//! The dispatcher: one task per responder takes its queue from the outbox in order, retries with backoff and jitter, and journals every outcome by idempotency key.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Effect, Responder, Retry};
use crate::state::model::{wall_ms, Delivery, JournalEntry, Status};
use crate::state::{StateError, StateStage};

/// How deliveries are retried.
#[derive(Debug, Clone, Copy)]
pub struct DispatchSettings {
    pub dry_run: bool,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Undelivered work older than this is journaled as expired.
    pub outbox_ttl: Duration,
    /// Longest a single delivery attempt may take.
    pub attempt_timeout: Duration,
    /// How long a response waits for a human's approval before it expires.
    pub approval_ttl: Duration,
}

/// How far into a queue one round looks for work (threads blocked by a waiting item are skipped).
const HEAD: usize = 256;

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            dry_run: false,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(300),
            outbox_ttl: Duration::from_secs(7 * 86_400),
            attempt_timeout: Duration::from_secs(30),
            approval_ttl: Duration::from_secs(3600),
        }
    }
}

/// The backoff before attempt `attempts + 1`: exponential, capped, with up to 50% jitter.
pub fn backoff(s: &DispatchSettings, attempts: u32, jitter_seed: u64) -> Duration {
    let base = s
        .backoff_min
        .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(20)))
        .min(s.backoff_max);
    let jitter = (jitter_seed % 1000) as f64 / 1000.0 * 0.5;
    base.mul_f64(1.0 + jitter).min(s.backoff_max)
}

/// Starts one task per responder, plus one that journals work queued for responders that are not configured.
pub fn spawn(
    stage: Arc<StateStage>,
    responders: Vec<Arc<dyn Responder>>,
    settings: DispatchSettings,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let names: Vec<String> = responders.iter().map(|r| r.name().to_owned()).collect();
    let mut tasks: Vec<JoinHandle<()>> = responders
        .into_iter()
        .map(|r| {
            let w = Worker {
                stage: stage.clone(),
                responder: Some(r.clone()),
                settings,
                unrecorded: Default::default(),
            };
            let name = r.name().to_owned();
            let sd = shutdown.clone();
            tokio::spawn(async move { w.run(&[name], sd).await })
        })
        .collect();
    let w = Worker {
        stage,
        responder: None,
        settings,
        unrecorded: Default::default(),
    };
    tasks.push(tokio::spawn(async move {
        w.run_unconfigured(&names, shutdown).await;
    }));
    tasks
}

struct Worker {
    stage: Arc<StateStage>,
    responder: Option<Arc<dyn Responder>>,
    settings: DispatchSettings,
    /// Outcomes of work already carried out whose journal entry could not be written (the store
    /// failed): written first, before anything else is delivered, so nothing is done twice.
    unrecorded: std::sync::Mutex<Vec<(Vec<u8>, JournalEntry, i64)>>,
}

impl Worker {
    async fn run(&self, queues: &[String], shutdown: CancellationToken) {
        let notify = self.stage.outbox().notified();
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut wait = Duration::from_secs(1);
            // A failed store (disk full) is left alone until it works again: nothing can be
            // journaled, so nothing is delivered (readiness reports the failure).
            let usable = self.stage.store_usable();
            for q in queues.iter().filter(|_| usable) {
                match self.drain(q, &shutdown).await {
                    Ok(Some(next)) => wait = wait.min(next),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, responder = %q, "outbox unreadable; retrying")
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = &mut notified => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Journals, as skipped, work whose responder is not configured.
    async fn run_unconfigured(&self, configured: &[String], shutdown: CancellationToken) {
        loop {
            if !self.stage.store_usable() {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(5)) => continue,
                }
            }
            match self.stage.outbox().expire_parked(wall_ms()) {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "approvals expired without a decision"),
                Err(e) => tracing::error!(error = %e, "cannot expire pending approvals"),
            }
            // How much work waits (a responder down shows here first); counting is O(n), so not
            // every round, and not on the runtime's workers.
            let outbox = self.stage.outbox().clone();
            if let Ok(Ok(n)) = tokio::task::spawn_blocking(move || outbox.pending()).await {
                crate::internal_events::OutboxPending(n).emit();
            }
            let queues = self.stage.outbox().responders().unwrap_or_default();
            for q in queues.iter().filter(|q| !configured.contains(q)) {
                let _ = self.drain(q, &shutdown).await;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }

    /// Works through one queue; returns how long until its earliest waiting item may be tried.
    ///
    /// Items of one alert's thread (the alert, its updates, its follow-up) run in queue order;
    /// different threads run up to the responder's concurrency at once.
    async fn drain(
        &self,
        queue: &str,
        shutdown: &CancellationToken,
    ) -> Result<Option<Duration>, StateError> {
        let outbox = self.stage.outbox().clone();
        let limit = self
            .responder
            .as_ref()
            .map_or(1, |r| r.concurrency().max(1));
        self.record_unrecorded()?;
        loop {
            let head = outbox.head(queue, HEAD)?;
            if head.is_empty() {
                return Ok(None);
            }
            let mut lanes = std::collections::HashSet::new();
            let mut wait: Option<Duration> = None;
            let mut jobs = Vec::new();
            let now = wall_ms();
            for (key, d) in head {
                // A high-risk alert waits behind the first alert it builds on (threads under it).
                let lane = d
                    .alert
                    .thread
                    .as_ref()
                    .or(d.alert.contributions.first().map(|c| &c.alert))
                    .unwrap_or(&d.alert.id)
                    .clone();
                // One item per lane per round: later items of a thread wait for earlier ones.
                if !lanes.insert(lane) {
                    continue;
                }
                if outbox
                    .journal(&d.id)?
                    .is_some_and(|j| j.status != Status::Pending)
                {
                    // Already done before a crash or replay: never twice.
                    crate::internal_events::ReplaySkipped { responder: queue }.emit();
                    outbox.drop_item(&key)?;
                    continue;
                }
                if d.not_before_ms > now {
                    let w = Duration::from_millis(d.not_before_ms - now);
                    wait = Some(wait.map_or(w, |x| x.min(w)));
                    continue;
                }
                jobs.push((key, d));
            }
            if jobs.is_empty() {
                return Ok(wait.or(Some(Duration::from_millis(50))));
            }
            if shutdown.is_cancelled() {
                return Ok(None);
            }
            let results: Vec<Result<(), StateError>> = futures::stream::iter(jobs)
                .map(|(key, d)| self.one(queue, key, d))
                .buffer_unordered(limit)
                .collect()
                .await;
            for r in results {
                r?;
            }
        }
    }

    /// Takes one item off the queue: delivered, parked for approval, or rescheduled.
    async fn one(&self, queue: &str, key: Vec<u8>, mut d: Delivery) -> Result<(), StateError> {
        let outbox = self.stage.outbox();
        let now = wall_ms();
        let ttl = u64::try_from(self.settings.outbox_ttl.as_millis()).unwrap_or(u64::MAX);
        let effect = if now.saturating_sub(d.enqueued_ms) > ttl {
            Effect::with_status(
                Status::Expired,
                "undelivered when the outbox retention ran out",
            )
        } else if let Some(r) = &self.responder {
            if d.awaits_approval() {
                match outbox.decision(&d.id)? {
                    Some(dec) if dec.approve => d.approved = Some(dec),
                    Some(dec) => {
                        let e = Effect::with_status(
                            Status::Rejected,
                            format!("rejected by {}", dec.by),
                        );
                        return self.finish(queue, &key, &d, e);
                    }
                    None => {
                        let until = now.saturating_add(
                            u64::try_from(self.settings.approval_ttl.as_millis())
                                .unwrap_or(u64::MAX),
                        );
                        outbox.park(&key, &d, until)?;
                        crate::internal_events::AwaitingApproval {
                            responder: queue,
                            delivery: &d.id,
                        }
                        .emit();
                        return Ok(());
                    }
                }
            }
            match self.attempt(r.as_ref(), &d).await {
                Ok(e) => e,
                Err(retry) => {
                    // Retry-After and backoff count from the answer, not from the attempt's start.
                    let now = wall_ms();
                    d.attempts += 1;
                    let wait = retry.after.unwrap_or_else(|| {
                        backoff(
                            &self.settings,
                            d.attempts,
                            crate::state::stable_hash([d.id.as_bytes(), &d.attempts.to_be_bytes()]),
                        )
                    });
                    d.not_before_ms = now + u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                    crate::internal_events::DeliveryRetried {
                        responder: queue,
                        delivery: &d.id,
                        attempts: d.attempts,
                        retry_in: wait,
                        error: &retry.error,
                    }
                    .emit();
                    return outbox.reschedule(&key, &d);
                }
            }
        } else {
            Effect::with_status(
                Status::Skipped,
                format!("no {queue} responder is configured"),
            )
        };
        self.finish(queue, &key, &d, effect)
    }

    fn finish(
        &self,
        queue: &str,
        key: &[u8],
        d: &Delivery,
        effect: Effect,
    ) -> Result<(), StateError> {
        let entry = journal_entry(d, effect);
        crate::internal_events::DeliveryEnded {
            responder: queue,
            delivery: &d.id,
            outcome: entry.status.as_str(),
            detail: &entry.detail,
        }
        .emit();
        let expires = self.stage.now().unwrap_or(0) + self.stage.settings().retention;
        self.stage
            .outbox()
            .finish(key, &entry, expires)
            .inspect_err(|e| {
                // Done but not journaled: keep the outcome, so that the item is not delivered again.
                tracing::error!(responder = queue, delivery = %d.id, error = %e, "outcome not journaled; it is kept and written before any further delivery");
                self.lock_unrecorded().push((key.to_vec(), entry, expires));
            })
    }

    fn lock_unrecorded(&self) -> std::sync::MutexGuard<'_, Vec<(Vec<u8>, JournalEntry, i64)>> {
        self.unrecorded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the outcomes held back by a store failure; fails (and delivers nothing) while the store does.
    fn record_unrecorded(&self) -> Result<(), StateError> {
        let mut held = self.lock_unrecorded();
        while let Some((key, entry, expires)) = held.first() {
            self.stage.outbox().finish(key, entry, *expires)?;
            held.remove(0);
        }
        Ok(())
    }

    async fn attempt(&self, r: &dyn Responder, d: &Delivery) -> Result<Effect, Retry> {
        let started = std::time::Instant::now();
        let res = tokio::time::timeout(
            self.settings.attempt_timeout,
            r.deliver(d, self.settings.dry_run || d.alert.dry_run),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Retry {
                error: format!("no answer within {:?}", self.settings.attempt_timeout),
                after: None,
            })
        });
        crate::internal_events::DeliveryAttempted {
            responder: r.name(),
            took: started.elapsed(),
        }
        .emit();
        res
    }
}

fn journal_entry(d: &Delivery, e: Effect) -> JournalEntry {
    JournalEntry {
        attempts: d.attempts + 1,
        undo: e.undo,
        ..JournalEntry::of(d, e.status, e.detail)
    }
}

/// Waits until every queue of `responders` is empty or `deadline` passes (end of a bounded run).
pub async fn drained(stage: &StateStage, responders: &[String], deadline: Duration) -> bool {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if !stage.store_usable() {
            // Nothing will be delivered (or journaled) until the store works: do not wait for it.
            return false;
        }
        let busy = stage
            .outbox()
            .responders()
            .map(|q| q.iter().any(|q| responders.contains(q)))
            .unwrap_or(false);
        if !busy {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
