//! The jobs behind the CLI: run, check, replay, test, generate; `cli::Command::execute` calls them and main.rs maps their errors to exit codes.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, ConfigError, FileSourceConfig, OutputFormat, Seconds};
use crate::pipeline::{self, PipelineError, RunOptions, RunReport};
use crate::telemetry::Health;

/// Errors of a job; the exit code depends on the kind.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Playbooks(String),
    #[error("{0}")]
    TestsFailed(String),
    #[error("{0}")]
    Journal(String),
    #[error("{0}")]
    Triage(String),
    #[error("bench: {0}")]
    Bench(#[from] crate::bench::BenchError),
    #[error(transparent)]
    Reference(#[from] crate::config::reference::ReferenceError),
}

impl From<crate::triage::cli::TriageCliError> for AppError {
    fn from(e: crate::triage::cli::TriageCliError) -> Self {
        match e {
            crate::triage::cli::TriageCliError::Config(c) => AppError::Config(c),
            other => AppError::Triage(other.to_string()),
        }
    }
}

impl From<crate::journal_cli::JournalError> for AppError {
    fn from(e: crate::journal_cli::JournalError) -> Self {
        match e {
            crate::journal_cli::JournalError::Config(c) => AppError::Config(c),
            other => AppError::Journal(other.to_string()),
        }
    }
}

impl AppError {
    /// 2 for anything the user must fix in the config, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Config(_) | AppError::Playbooks(_) => 2,
            AppError::Pipeline(PipelineError::Playbooks(_)) => 2,
            _ => 1,
        }
    }
}

/// Cancels `token` on the first SIGINT/SIGTERM; exits at once on the second, or with status 1
/// when the shutdown has not finished `watchdog` after it began.
///
/// Every shutdown is bounded, not only a signalled one: the watchdog is armed as soon as `token`
/// is cancelled, whoever cancelled it (a signal, stdout closing under `rampart run | head`, a
/// failed source, the sources' natural end). It is disarmed when the returned guard is dropped,
/// i.e. when the job has returned.
///
/// Signals are awaited on a thread of their own (with its own small runtime), so that they are
/// heard, and the watchdog fires, even when the pipeline's runtime is saturated or stuck (sled
/// spinning on a failing disk).
pub fn spawn_signal_handler(
    token: CancellationToken,
    watchdog: Duration,
    health: Arc<Health>,
) -> WatchdogGuard {
    let done = CancellationToken::new();
    let guard = WatchdogGuard(done.clone());
    let listen = async move {
        let by_signal = tokio::select! {
            () = wait_signal() => {
                tracing::info!("shutdown requested: draining (signal again to quit at once)");
                token.cancel();
                true
            }
            () = token.cancelled() => false,
            () = done.cancelled() => return,
        };
        let deadline = tokio::time::Instant::now() + watchdog;
        if !by_signal {
            // Something else began the shutdown (stdout closed, the sources ended): the first
            // signal asks for what is already happening; only a second one quits at once.
            tokio::select! {
                () = wait_signal() => {
                    tracing::info!("shutdown already under way: draining (signal again to quit at once)");
                }
                () = done.cancelled() => return,
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
        tokio::select! {
            () = wait_signal() => {
                tracing::warn!("second signal: quitting without draining");
                std::process::exit(130);
            }
            () = done.cancelled() => {}
            () = tokio::time::sleep_until(deadline) => {
                // Everything unacknowledged is read again on start; say so, and what was failing, and go.
                let problems = health.problems();
                let why = if problems.is_empty() {
                    String::new()
                } else {
                    format!(" (while {})", problems.join("; "))
                };
                eprintln!("error: shutdown did not finish within {watchdog:?}; quitting, unacknowledged events will be re-read{why}");
                std::process::exit(1);
            }
        }
    };
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(listen),
                Err(e) => tracing::error!(error = %e, "cannot listen for signals"),
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot listen for signals");
    }
    guard
}

/// Disarms the shutdown watchdog when dropped: the job it guarded has returned.
#[must_use = "the watchdog is disarmed when the guard is dropped"]
pub struct WatchdogGuard(CancellationToken);

impl Drop for WatchdogGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

async fn wait_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// How long a shutdown may take before the process quits anyway: the drain and the responders'
/// last deliveries each get `pipeline.shutdown_grace`, then a margin for the rest.
fn watchdog(cfg: &Config) -> Duration {
    cfg.pipeline.shutdown_grace.get() * 2 + Duration::from_secs(10)
}

/// `rampart run`: the main job.
pub async fn run(config_path: &Path, dry_run: bool) -> Result<RunReport, AppError> {
    let cfg = config::load_file(config_path)?;
    if dry_run {
        tracing::info!("dry-run: responders record what they would do and change nothing");
    }
    let shutdown = CancellationToken::new();
    let health = Arc::new(Health::default());
    let _watchdog = spawn_signal_handler(shutdown.clone(), watchdog(&cfg), health.clone());
    let opts = RunOptions {
        dry_run,
        health: Some(health),
        ..RunOptions::default()
    };
    let running = pipeline::start(&cfg, opts, shutdown).await?;
    let report = running.wait().await?;
    tracing::info!(
        records = report.records,
        events = report.events,
        dead_letters = report.dead_letters,
        skipped = report.skipped,
        "pipeline stopped"
    );
    Ok(report)
}

/// `rampart check`: validates the config, compiles the playbooks, and says what would run.
pub fn check(config_path: &Path) -> Result<String, AppError> {
    let cfg = config::load_file(config_path)?;
    let playbooks = match &cfg.playbooks_with_clusters() {
        Some(p) => {
            let set = crate::playbook::load_dir(&p.dir, p)
                .map_err(|d| AppError::Playbooks(diagnostics(&d)))?;
            format!("; {} playbooks in {}", set.len(), p.dir.display())
        }
        None => String::new(),
    };
    let s = &cfg.sources;
    let mut parts = Vec::new();
    if let Some(k) = &s.kafka {
        parts.push(format!("kafka ({})", k.topics.join(", ")));
    }
    if let Some(w) = &s.webhook {
        parts.push(format!("webhook ({}{})", w.listen, w.path));
    }
    for f in &s.files {
        parts.push(format!(
            "file ({}{})",
            f.path.display(),
            if f.follow { ", follow" } else { "" }
        ));
    }
    Ok(format!(
        "{}: ok; sources: {}{playbooks}",
        config_path.display(),
        parts.join("; ")
    ))
}

fn diagnostics(d: &[crate::playbook::Diagnostic]) -> String {
    let mut s = format!(
        "{} playbook problem{}:",
        d.len(),
        if d.len() == 1 { "" } else { "s" }
    );
    for x in d {
        s.push_str(&format!("\n  {x}"));
    }
    s
}

/// `rampart test`: runs the playbooks' data-driven tests; returns the printed report.
pub async fn test(
    path: Option<&Path>,
    config_path: Option<&Path>,
    min_tests: usize,
) -> Result<String, AppError> {
    let cfg = config_or_default(config_path)?;
    let mut pcfg = cfg.playbooks_with_clusters().unwrap_or_default();
    if let Some(p) = path {
        // An explicit directory is tested on its own, without the config's packs.
        pcfg.dir = p.to_owned();
        pcfg.packs.clear();
    }
    let report =
        crate::playbook::testcases::run(&pcfg, &cfg.enrich, &cfg.cluster.default, min_tests)
            .await
            .map_err(|e| match e {
                crate::playbook::testcases::TestRunError::Compile(d) => {
                    AppError::Playbooks(diagnostics(&d))
                }
                other => AppError::Playbooks(other.to_string()),
            })?;
    let mut text = report.text.clone();
    for c in &report.coverage_problems {
        text.push_str(&format!("COVERAGE  {c}\n"));
    }
    text.push_str(&format!(
        "{} passed, {} failed\n",
        report.passed, report.failed
    ));
    if report.failed > 0 || !report.coverage_problems.is_empty() {
        return Err(AppError::TestsFailed(text));
    }
    Ok(text)
}

/// The given config, else `rampart.yaml` when there is one, else the defaults
/// (for jobs that run without sources of their own: replay, test).
fn config_or_default(config_path: Option<&Path>) -> Result<Config, AppError> {
    let default = Path::new("rampart.yaml");
    Ok(match config_path {
        Some(p) => config::load_file(p)?,
        None if default.exists() => config::load_file(default)?,
        None => Config::default(),
    })
}

/// `rampart replay FILE`: reads the file once through the pipeline, with a progress bar and a summary.
/// What a replay found.
pub struct Replay {
    pub report: RunReport,
    pub elapsed: Duration,
    /// Per playbook: fires, distinct dedup keys, faults.
    pub playbooks: Vec<(String, crate::playbook::TallyRow)>,
}

/// How a replay shows what it found.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayOptions {
    /// Print no events, only the summary.
    pub quiet: bool,
    /// Print only the events a playbook fired on.
    pub alerts_only: bool,
    /// Time every playbook run; the summary then ranks the playbooks by cost.
    pub profile: bool,
}

pub async fn replay(
    file: &Path,
    config_path: Option<&Path>,
    view: ReplayOptions,
) -> Result<Replay, AppError> {
    let ReplayOptions {
        quiet,
        alerts_only,
        profile,
    } = view;
    let mut cfg = config_or_default(config_path)?;
    cfg.sources = config::SourcesConfig {
        files: vec![FileSourceConfig {
            path: file.to_owned(),
            follow: false,
            poll_interval: Seconds::from_millis(250),
            cluster: None,
        }],
        ..Default::default()
    };
    cfg.telemetry.listen = None;
    // A replay is an analysis: it keeps no state and touches no responder.
    cfg.respond = crate::config::RespondConfig {
        dry_run: true,
        ..Default::default()
    };
    if quiet {
        cfg.output.console = OutputFormat::Off;
    } else if alerts_only {
        cfg.output.console = OutputFormat::Alerts;
    }
    let tally = Arc::new(crate::playbook::Tally::default());
    let total = std::fs::metadata(file)?.len();
    let progress = Arc::new(AtomicU64::new(0));
    let bar = progress_bar(total);
    let shutdown = CancellationToken::new();
    let health = Arc::new(Health::default());
    let _watchdog = spawn_signal_handler(shutdown.clone(), watchdog(&cfg), health.clone());
    let started = Instant::now();
    let running = pipeline::start(
        &cfg,
        RunOptions {
            progress: Some(progress.clone()),
            tally: Some(tally.clone()),
            profile,
            ephemeral_state: true,
            dry_run: true,
            health: Some(health),
        },
        shutdown,
    )
    .await?;
    let ticker = bar.clone().map(|bar| {
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                bar.set_position(progress.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let set = running.playbooks.as_ref().map(|h| h.current());
    let report = running.wait().await;
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(Replay {
        report: report?,
        elapsed: started.elapsed(),
        playbooks: set.map(|s| tally.rows(&s)).unwrap_or_default(),
    })
}

fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

/// The summary printed after a replay: counts, then a row per playbook.
pub fn replay_summary(file: &Path, replay: &Replay) -> String {
    let r = &replay.report;
    let secs = replay.elapsed.as_secs_f64().max(1e-9);
    let mut s = format!(
        "replayed {}\n  records       {:>10}\n  events        {:>10}\n  dead-lettered {:>10}\n  skipped       {:>10}\n  alerts        {:>10}\n  deduplicated  {:>10}\n  elapsed       {:>9.2}s\n  rate          {:>10.0} events/s",
        file.display(),
        r.records,
        r.events,
        r.dead_letters,
        r.skipped,
        r.alerts,
        r.suppressed,
        secs,
        r.events as f64 / secs
    );
    let timed = replay.playbooks.iter().any(|(_, row)| row.runs > 0);
    if timed {
        s.push_str(&crate::playbook::cost_table(&replay.playbooks, r.events));
    } else if !replay.playbooks.is_empty() {
        s.push_str(&format!(
            "\n\n  {:<40} {:>8} {:>12} {:>8}",
            "playbook", "fires", "dedup keys", "errors"
        ));
        for (id, row) in &replay.playbooks {
            s.push_str(&format!(
                "\n  {:<40} {:>8} {:>12} {:>8}",
                id,
                row.fires,
                row.dedup_keys.len(),
                row.faults
            ));
        }
    }
    s
}

/// `rampart behaviour evaluate|memory`: prints the evaluation table or the memory table.
pub async fn behaviour(command: &crate::cli::BehaviourCommand) -> Result<(), AppError> {
    use crate::bench::{behaviour, behaviour_memory};
    let text = match command {
        crate::cli::BehaviourCommand::Evaluate {
            config,
            seed,
            weeks,
            incidents,
            trace_misses,
            humans,
            service_accounts,
        } => {
            let opts = behaviour::EvalOptions {
                config: config.clone(),
                seed: *seed,
                weeks: *weeks,
                incidents_per_kind: *incidents,
                trace_misses: *trace_misses,
                humans: *humans,
                service_accounts: *service_accounts,
            };
            let report = behaviour::evaluate(&opts).await?;
            let (events, fresh) = behaviour::fresh_install(config, *seed, 1).await?;
            let mut text = behaviour::render(&opts, &report);
            text.push_str(&format!(
                "a fresh install replaying one background day ({events} events): {} behavioural alerts {fresh:?}\n",
                fresh.values().sum::<u64>()
            ));
            text
        }
        crate::cli::BehaviourCommand::Memory { principals, pairs } => {
            let (p, n) = (*principals, *pairs);
            tokio::task::spawn_blocking(move || behaviour_memory::run(p, n))
                .await
                .map_err(|e| AppError::from(crate::bench::BenchError::Setup(e.to_string())))??
        }
    };
    write_stdout(text.as_bytes())
}

/// `rampart config reference`: the configuration reference on stdout.
pub fn config_reference() -> Result<(), AppError> {
    let md = crate::config::reference::markdown()?;
    write_stdout(md.as_bytes())
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<(), AppError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `rampart generate`: a synthetic audit log on stdout.
pub fn generate(count: usize, seed: u64, event_list: bool, wide: bool) -> Result<(), AppError> {
    let mut g = if wide {
        crate::synth::Generator::wide(seed)
    } else {
        crate::synth::Generator::new(seed)
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if event_list {
        write!(
            out,
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":["#
        )?;
    }
    for i in 0..count {
        let (ev, _) = g.next_event();
        if event_list {
            write!(out, "{}{ev}", if i == 0 { "" } else { "," })?;
        } else {
            writeln!(out, "{ev}")?;
        }
    }
    if event_list {
        writeln!(out, "]}}")?;
    }
    out.flush()?;
    Ok(())
}
