//! Wiring: builds every stage from the config, connects them with bounded channels, and drains them in order on shutdown.

pub mod worker;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::deadletter::{DeadLetter, DeadLetterError};
use crate::enrich::{EnrichError, Enrichers};
use crate::event::{ClusterResolver, DecodeOptions};
use crate::playbook::{Diagnostic, PlaybookHandle};
use crate::respond::console::{Output, OutputError};
use crate::respond::dispatch::DispatchSettings;
use crate::sources::Router;
use crate::state::stage::{spawn_sweeper, Outcome};
use crate::state::{MemoryStore, SledStore, StateError, StateStage, StateStore};
use crate::telemetry::{Health, PipelineStats};
use worker::{OutputItem, WorkerContext};

/// Errors starting or running the pipeline; each names the component.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Enrich(#[from] EnrichError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{} playbook problem(s):\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Playbooks(Vec<Diagnostic>),
    #[error(transparent)]
    Source(#[from] crate::sources::registry::SourceError),
    #[error("cannot serve telemetry on {addr}: {source}")]
    Telemetry {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Respond(#[from] crate::respond::registry::RespondError),
    #[error("shutdown did not finish within {0:?}; unacknowledged events will be re-read{1}")]
    GraceExceeded(std::time::Duration, String),
}

/// Options beyond the config file.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Bytes read by file sources, for progress bars.
    pub progress: Option<Arc<AtomicU64>>,
    /// Per-playbook counts, for summaries.
    pub tally: Option<Arc<crate::playbook::Tally>>,
    /// Time each playbook run into `tally` (profiles; costs about 50 ns a playbook run).
    pub profile: bool,
    /// Keep state in memory only (replay): nothing persists, no earlier run is remembered.
    pub ephemeral_state: bool,
    /// Responders record what they would do instead of doing it (`--dry-run`).
    pub dry_run: bool,
    /// Readiness to report into (the caller may want to read it, e.g. a shutdown watchdog); a new one when absent.
    pub health: Option<Arc<Health>>,
}

/// Counts of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    pub records: u64,
    pub events: u64,
    pub dead_letters: u64,
    /// Entries left out on purpose: other cloud services' logs, other diagnostic categories.
    pub skipped: u64,
    pub acked_records: u64,
    /// Alerts raised (after thresholds and dedup) and matches folded into open alerts.
    pub alerts: u64,
    pub suppressed: u64,
}

/// A started pipeline.
pub struct Running {
    pub webhook_addr: Option<SocketAddr>,
    pub telemetry_addr: Option<SocketAddr>,
    pub health: Arc<Health>,
    pub stats: Arc<PipelineStats>,
    /// The live playbook set, when playbooks are configured.
    pub playbooks: Option<Arc<PlaybookHandle>>,
    /// The state stage: alerts, outbox, journal.
    pub state: Arc<StateStage>,
    responders: Vec<String>,
    dispatch: Vec<JoinHandle<()>>,
    dispatch_stop: CancellationToken,
    sources: Vec<Box<dyn crate::sources::registry::Source>>,
    workers: Vec<JoinHandle<()>>,
    output: JoinHandle<Result<Outcome, OutputError>>,
    shutdown: CancellationToken,
    grace: std::time::Duration,
    telemetry: Option<JoinHandle<()>>,
    enrichers: Arc<Enrichers>,
    maintenance: Vec<JoinHandle<()>>,
}

/// Builds and starts every component; fails fast on anything that cannot be opened.
pub async fn start(
    cfg: &Config,
    opts: RunOptions,
    shutdown: CancellationToken,
) -> Result<Running, PipelineError> {
    crate::telemetry::install_recorder();
    let health = opts.health.clone().unwrap_or_default();
    let stats = Arc::new(PipelineStats::default());
    let dead_letter = Arc::new(DeadLetter::build(cfg)?);
    let store: Arc<dyn StateStore> = if opts.ephemeral_state {
        Arc::new(MemoryStore::default())
    } else {
        Arc::new(SledStore::open_with_cache(
            &cfg.state.dir.join("store"),
            cfg.state.cache.0,
        )?)
    };
    let enrichers = Arc::new(Enrichers::build(cfg, store.clone())?);
    let mut maintenance = enrichers.spawn_maintenance(&shutdown);
    let built = crate::respond::registry::build_all(&crate::respond::registry::BuildContext {
        config: cfg,
        store: store.clone(),
    })
    .await?;
    let responders = built.responders;
    let names: Vec<String> = responders.iter().map(|r| r.name().to_owned()).collect();
    let sinks = responders
        .iter()
        .filter(|r| r.takes_every_alert())
        .map(|r| r.name().to_owned())
        .collect();
    let targets = Arc::new(crate::respond::Targets(responders.clone()));
    let settings = cfg.state.settings(sinks);
    let triage = Arc::new(crate::triage::Triage::open(
        store.clone(),
        settings.retention,
    )?);
    let state = Arc::new(
        StateStage::open(store.clone(), settings)?
            .with_targets(targets)
            .with_silencer(triage.clone()),
    );
    // Marks and snoozes reach the responders (PagerDuty resolves) through the outbox.
    triage.observe(Arc::new(crate::respond::on_triage::FollowUps::new(
        responders.clone(),
        state.outbox().clone(),
    )));
    health.set_journal(state.outbox().clone());
    maintenance.push(spawn_sweeper(
        state.clone(),
        cfg.state.sweep_interval.get(),
        shutdown.clone(),
    ));
    // The dispatcher outlives the sources: a bounded run delivers what it raised before exiting.
    let dispatch_stop = CancellationToken::new();
    let r = &cfg.respond;
    let dispatch = crate::respond::dispatch::spawn(
        state.clone(),
        responders,
        DispatchSettings {
            dry_run: opts.dry_run || r.dry_run,
            backoff_min: r.backoff_min.get(),
            backoff_max: r.backoff_max.get(),
            outbox_ttl: r.outbox_ttl.get(),
            approval_ttl: built
                .approval_ttl
                .unwrap_or(DispatchSettings::default().approval_ttl),
            ..DispatchSettings::default()
        },
        dispatch_stop.clone(),
    );
    let playbooks = match &cfg.playbooks_with_clusters() {
        Some(p) => {
            let handle = Arc::new(PlaybookHandle::load(p).map_err(PipelineError::Playbooks)?);
            handle.terms().attach(store.clone());
            tracing::info!(playbooks = handle.current().len(), dir = %p.dir.display(), "playbooks loaded");
            Some(handle)
        }
        None => None,
    };
    // Endpoints responders serve (e.g. approval buttons) reach the stage through the telemetry
    // listener, as do the triage API and the console once someone may sign in.
    let desk = Arc::new(crate::triage::api::Desk {
        triage,
        state: state.clone(),
        access: crate::triage::access::Access::new(&cfg.console),
        playbooks: playbooks.clone(),
    });
    let extra = built
        .routes
        .into_iter()
        .map(|route| {
            route(crate::respond::registry::RouteContext {
                state: state.clone(),
                triage: desk.triage.clone(),
            })
        })
        .chain((!desk.access.is_empty()).then(|| {
            crate::triage::api::router(desk.clone()).merge(crate::console::router(
                desk.clone(),
                cfg.console.session.get(),
            ))
        }))
        .reduce(axum::Router::merge);
    let telemetry = match cfg.telemetry.listen {
        Some(addr) => Some(
            crate::telemetry::serve(addr, health.clone(), extra, shutdown.clone())
                .await
                .map_err(|source| {
                    // Nothing has been read yet: stop what was started.
                    dispatch_stop.cancel();
                    PipelineError::Telemetry { addr, source }
                })?,
        ),
        None => None,
    };
    if let Some(h) = &playbooks {
        h.spawn_watch(shutdown.clone());
    }
    let output = Output::build(&cfg.output, cfg.kafka.as_ref())?;
    let resolver = ClusterResolver::new(&cfg.cluster);
    let ctx = Arc::new(WorkerContext {
        decode: DecodeOptions {
            wrapped_fields: cfg.decode.wrapped_fields.clone(),
        },
        resolver: resolver.clone(),
        enrichers: enrichers.clone(),
        playbooks: playbooks.clone(),
        on_playbook_error: cfg
            .playbooks
            .as_ref()
            .map(|p| p.on_error)
            .unwrap_or_default(),
        tally: opts.tally.clone(),
        timed: opts.profile && opts.tally.is_some(),
        dead_letter: dead_letter.clone(),
        stats: stats.clone(),
        shutdown: shutdown.clone(),
    });

    let cap = cfg.pipeline.channel_capacity;
    let (out_tx, out_rx) = mpsc::channel::<Vec<OutputItem>>(cap);
    let output_stats = stats.clone();
    let output_state = state.clone();
    let stall = Stall {
        health: health.clone(),
        shutdown: shutdown.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    let output = tokio::task::spawn_blocking(move || {
        output_loop(out_rx, output, &output_state, &output_stats, &stall)
    });
    let mut senders = Vec::with_capacity(cfg.pipeline.workers);
    let mut workers = Vec::with_capacity(cfg.pipeline.workers);
    for _ in 0..cfg.pipeline.workers {
        let (tx, rx) = mpsc::channel(cap);
        senders.push(tx);
        workers.push(tokio::spawn(worker::run(ctx.clone(), rx, out_tx.clone())));
    }
    drop(out_tx);
    let router = Router::new(senders);

    let sources = crate::sources::registry::start_all(&crate::sources::registry::StartContext {
        config: cfg,
        router,
        resolver: resolver.clone(),
        dead_letter: dead_letter.clone(),
        health: health.clone(),
        shutdown: shutdown.clone(),
        progress: opts.progress.clone(),
        state_dir: cfg.state.dir.clone(),
    })
    .await?;
    let webhook_addr = sources.iter().find_map(|s| s.listen_addr());
    health.set_ready(true);
    tracing::info!(
        sources = sources.len(),
        workers = workers.len(),
        "pipeline running"
    );
    Ok(Running {
        playbooks,
        state,
        responders: names,
        dispatch,
        dispatch_stop,
        webhook_addr,
        telemetry_addr: telemetry.as_ref().map(|t| t.0),
        health,
        stats,
        sources,
        workers,
        output,
        shutdown,
        grace: cfg.pipeline.shutdown_grace.get(),
        telemetry: telemetry.map(|t| t.1),
        enrichers,
        maintenance,
    })
}

impl Running {
    /// Runs until every source has ended (a file read once) or shutdown is requested,
    /// then drains the stages in order and reports the counts.
    pub async fn wait(self) -> Result<RunReport, PipelineError> {
        let Running {
            health,
            stats,
            sources,
            workers,
            output,
            shutdown,
            grace,
            telemetry,
            enrichers,
            maintenance,
            state,
            responders,
            dispatch,
            dispatch_stop,
            ..
        } = self;
        let drain = async {
            let mut first_error = None;
            let mut outcome = Outcome::default();
            for s in sources {
                let res = s.join().await.map_err(PipelineError::from);
                if let Err(e) = res {
                    tracing::error!(error = %e, "source failed");
                    shutdown.cancel();
                    first_error.get_or_insert(e);
                }
            }
            health.set_ready(false);
            for w in workers {
                let _ = w.await;
            }
            match output.await {
                Ok(Ok(o)) => outcome = o,
                Ok(Err(e)) => {
                    first_error.get_or_insert(PipelineError::Output(e));
                }
                Err(_) => {}
            }
            first_error.map_or(Ok(outcome), Err)
        };
        // Sources end on their own (files read once) or on shutdown; only the
        // latter is bounded by the grace period.
        tokio::pin!(drain);
        let result = tokio::select! {
            r = &mut drain => r,
            () = shutdown.cancelled() => {
                health.set_ready(false);
                match tokio::time::timeout(grace, &mut drain).await {
                    Ok(r) => r,
                    Err(_) => {
                        // Say what held it up, when something was failing.
                        let problems = health.problems();
                        let why = if problems.is_empty() {
                            String::new()
                        } else {
                            format!(" (while {})", problems.join("; "))
                        };
                        Err(PipelineError::GraceExceeded(grace, why))
                    }
                }
            }
        };
        // Deliver what this run raised (bounded): a run over a file ends with its alerts out.
        if !crate::respond::dispatch::drained(&state, &responders, grace).await {
            // Counted only from a store that works (a failed one can spin on reads).
            let pending = if state.store_usable() {
                state.outbox().pending().ok()
            } else {
                None
            };
            tracing::warn!(
                pending,
                "responders still have work queued; it stays in the outbox for the next run"
            );
        }
        dispatch_stop.cancel();
        // Bounded: a delivery stuck in a failing store must not hold the exit.
        if tokio::time::timeout(grace, futures::future::join_all(dispatch))
            .await
            .is_err()
        {
            tracing::warn!(
                "responders did not stop within the grace period; their work stays in the outbox"
            );
        }
        shutdown.cancel();
        if let Some(t) = telemetry {
            let _ = t.await;
        }
        for m in maintenance {
            let _ = m.await;
        }
        let terms = self.playbooks.clone();
        let _ = tokio::task::spawn_blocking(move || {
            enrichers.flush();
            if let Some(p) = terms {
                p.terms().save();
            }
        })
        .await;
        let outcome = result?;
        Ok(RunReport {
            records: PipelineStats::get(&stats.records),
            events: PipelineStats::get(&stats.events),
            dead_letters: PipelineStats::get(&stats.dead_letters),
            skipped: PipelineStats::get(&stats.skipped),
            acked_records: PipelineStats::get(&stats.acked_records),
            alerts: outcome.alerts + outcome.high_risk,
            suppressed: outcome.suppressed,
        })
    }
}

/// How the output stage waits out a failure: reported as not ready, retried with backoff until it
/// works again or shutdown begins.
struct Stall {
    health: Arc<Health>,
    shutdown: CancellationToken,
    runtime: tokio::runtime::Handle,
}

impl Stall {
    /// Waits `d`; false when shutdown began meanwhile.
    fn wait(&self, d: std::time::Duration) -> bool {
        self.runtime.block_on(async {
            tokio::select! {
                () = self.shutdown.cancelled() => false,
                () = tokio::time::sleep(d) => true,
            }
        })
    }
}

/// The state and output stages on their own thread: judge verdicts into the outbox,
/// write events, make both durable, then acknowledge in batches.
///
/// When that fails (disk full, a read-only state directory, the events topic unreachable) the
/// batch is retried with backoff — a replayed event raises nothing twice — while rampart reports
/// not ready and takes no new work (the sources pause behind the full channels); nothing is
/// acknowledged that is not durable. At shutdown a batch still failing is dropped unacknowledged
/// (it is read again after a restart) and the run ends with the error.
fn output_loop(
    mut rx: mpsc::Receiver<Vec<OutputItem>>,
    mut out: Output,
    state: &StateStage,
    stats: &PipelineStats,
    stall: &Stall,
) -> Result<Outcome, OutputError> {
    const BATCH: usize = 1024;
    let mut outcome = Outcome::default();
    let acked = crate::telemetry::acked_counter();
    while let Some(mut items) = rx.blocking_recv() {
        while items.len() < BATCH {
            match rx.try_recv() {
                Ok(more) => items.extend(more),
                Err(_) => break,
            }
        }
        let mut backoff = std::time::Duration::from_millis(100);
        loop {
            // Once the store has failed, only a working flush lets the batch be tried again.
            let attempt = if state.store_usable() {
                write_durably(&items, &mut out, state)
            } else {
                Err(OutputError::State(
                    state.outbox().store().failure().unwrap_or_default(),
                ))
            };
            match attempt {
                Ok(o) => {
                    outcome += o;
                    stall.health.set_problem("pipeline", None);
                    break;
                }
                Err(OutputError::StdoutClosed) => {
                    // `rampart run | head`: the reader has gone. Stop as if shut down; this batch
                    // and what is queued behind it still reach the state, the file and the topic
                    // (a replayed event raises nothing twice), without stdout.
                    tracing::info!("stdout is closed: stopping");
                    out.close_stdout();
                    stall.shutdown.cancel();
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?backoff, "cannot make events durable; they stay unacknowledged and intake is paused");
                    stall.health.set_problem(
                        "pipeline",
                        Some(format!(
                            "{e}; intake paused, nothing acknowledged until this works again"
                        )),
                    );
                    if !stall.wait(backoff) {
                        // Unacknowledged, so read again after a restart; what is queued behind too.
                        drop(items);
                        while rx.blocking_recv().is_some() {}
                        return Err(e);
                    }
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
        let n = items.len() as u64;
        let events: u64 = items.iter().map(|i| i.events.len() as u64).sum();
        for item in items {
            item.ack.ack();
        }
        PipelineStats::add(&stats.output_events, events);
        PipelineStats::add(&stats.acked_records, n);
        acked.increment(n);
    }
    Ok(outcome)
}

/// Judges and writes every event of `items`, then makes the state and the output durable.
fn write_durably(
    items: &[OutputItem],
    out: &mut Output,
    state: &StateStage,
) -> Result<Outcome, OutputError> {
    let mut outcome = Outcome::default();
    for item in items {
        for ev in &item.events {
            outcome += state
                .process(ev)
                .map_err(|e| OutputError::State(e.to_string()))?;
        }
        for ev in &item.events {
            out.write(ev)?;
        }
    }
    state
        .commit()
        .map_err(|e| OutputError::State(e.to_string()))?;
    out.flush()?;
    Ok(outcome)
}
