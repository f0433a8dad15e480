//! The command line: one subcommand per job, global flags for logging and dry-run.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::app::{self, AppError};
use crate::telemetry::LogFormat;

/// rampart: enrich Kubernetes audit events and respond to what they reveal.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about)]
pub struct Cli {
    /// Log filter: a level (info, debug) or per-target directives (rampart=debug,rdkafka=warn).
    #[arg(long, global = true, default_value = "info", env = "RAMPART_LOG")]
    pub log_level: String,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Record what responders would do without doing it.
    #[arg(long, global = true)]
    pub dry_run: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The jobs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline on a config until the sources end or a signal arrives.
    Run {
        /// Config file.
        #[arg(short, long, default_value = "rampart.yaml")]
        config: PathBuf,
    },
    /// Validate a config: every problem is listed; exit 0 if valid, 2 if not.
    Check {
        /// Config file.
        #[arg(short, long, default_value = "rampart.yaml")]
        config: PathBuf,
    },
    /// Process an audit log file to the end, with progress and a summary.
    Replay {
        /// JSON-lines audit log (one event, EventList or wrapped event per line).
        file: PathBuf,
        /// Config file for everything but the sources (defaults apply if it is absent).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Do not print the events, only the summary.
        #[arg(short, long)]
        quiet: bool,
        /// Print only the events a playbook fired on, with their alerts.
        #[arg(long)]
        alerts_only: bool,
        /// Time every playbook run; the summary ranks the playbooks by cost (runs, µs per run, share).
        #[arg(long)]
        profile: bool,
    },
    /// Run the playbooks' tests (`*.tests.yaml` beside each playbook); prints a diff per failure, exit 1 on any.
    Test {
        /// Playbook directory (default: the config's `playbooks.dir`, else `playbooks`).
        path: Option<PathBuf>,
        /// Config whose lists and enrichment the tests use (defaults apply if absent).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Require at least this many cases per playbook, with a positive and a negative among them.
        #[arg(long, default_value_t = 0)]
        min_tests: usize,
    },
    /// List recent alerts (newest first) from the journal, with their dedup counts; `mark` records an outcome.
    Alerts {
        #[command(subcommand)]
        command: Option<AlertsCommand>,
        #[command(flatten)]
        q: JournalQuery,
    },
    /// List suppressions (active, and ended in the last 30 days); `add` and `revoke` change them.
    Suppressions {
        #[command(subcommand)]
        command: Option<SuppressionsCommand>,
        /// Config file (its `state.dir` holds the store; a running instance is reached on `telemetry.listen`).
        #[arg(short, long, default_value = "rampart.yaml", global = true)]
        config: PathBuf,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The tuning report: per playbook fires, outcomes, precision and suppressions; the noisiest
    /// principals; allowlist entries that would have silenced the false positives.
    Tune {
        #[arg(short, long, default_value = "rampart.yaml")]
        config: PathBuf,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
        /// Write one suggested entry (`LIST=VALUE`, as the report prints it) to its list file; hot reload picks it up.
        #[arg(long, value_name = "LIST=VALUE")]
        apply: Option<String>,
        /// Who applies it (default `$USER`), recorded in the list file's comment.
        #[arg(long)]
        by: Option<String>,
    },
    /// List recent responder actions (newest first): what was done, dry-run, skipped or failed.
    Actions {
        #[command(subcommand)]
        command: Option<ActionsCommand>,
        #[command(flatten)]
        q: JournalQuery,
    },
    /// Measure rampart: CPU per event in process with 1, 10 and the config's playbooks; its own
    /// alert latency at a fixed load through the webhook source; with a broker, the Kafka rate
    /// against a bare consumer, alert latency at a fixed load, peak RSS.
    Bench {
        /// The config whose enrichment and playbooks are measured (sources, outputs and responders are replaced).
        #[arg(short, long, default_value = "rampart.yaml")]
        config: PathBuf,
        /// Events per in-process run and per Kafka round (the Kafka rates need 100k or more to mean anything).
        #[arg(short = 'n', long, default_value_t = 300_000)]
        events: usize,
        /// Kafka bootstrap servers for the broker runs (skipped without).
        #[arg(long, env = "RAMPART_KAFKA_BROKERS")]
        brokers: Option<String>,
        /// Offered load of the latency runs (webhook, and Kafka with a broker), events/s.
        #[arg(long, default_value_t = 5000)]
        rate: u64,
        /// Length of each latency run (webhook, and Kafka with a broker), after a warm-up.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        latency_for: std::time::Duration,
        /// Alternating bare-consumer / rampart rounds on the broker.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Partitions of the benchmark topics.
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        /// Generator seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// A checkout of the previous build (with target/release/rampart): its own packs are replayed beside this build's, CPU per event side by side.
        #[arg(long)]
        previous: Option<PathBuf>,
    },
    /// Behavioural analytics: the evaluation on generated weeks, and memory at scale.
    Behaviour {
        #[command(subcommand)]
        command: BehaviourCommand,
    },
    /// About the configuration file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Write a synthetic, realistic audit log (JSON lines) to stdout.
    Generate {
        /// Number of events.
        #[arg(short = 'n', long, default_value_t = 1000)]
        count: usize,
        /// Seed for reproducible output.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// One EventList (as the webhook backend posts) instead of JSON lines.
        #[arg(long)]
        event_list: bool,
        /// The benchmark's population: 300 people, 48 namespaces, pod status patches (see `rampart bench`).
        #[arg(long)]
        wide: bool,
    },
}

/// What `rampart behaviour` measures.
#[derive(Debug, clap::Subcommand)]
pub enum BehaviourCommand {
    /// Four generated weeks of a population with planted, labelled anomalies through the
    /// enrichers and the behavioural playbooks: recall per anomaly kind, false alerts per 100k.
    Evaluate {
        /// The config whose enrichment and playbook directory are used.
        #[arg(short, long, default_value = "rampart.yaml")]
        config: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 4)]
        weeks: u32,
        /// Planted incidents of each kind.
        #[arg(long, default_value_t = 20)]
        incidents: usize,
        /// List each missed incident's first events with what the baseline said of them.
        #[arg(long)]
        trace_misses: bool,
        /// People in the population.
        #[arg(long, default_value_t = 240)]
        humans: usize,
        /// Service accounts in the population.
        #[arg(long, default_value_t = 120)]
        service_accounts: usize,
    },
    /// Resident memory of the baseline as principals and distinct (principal, action) pairs grow.
    Memory {
        #[arg(long, default_value_t = 100_000)]
        principals: usize,
        #[arg(long, default_value_t = 10_000_000)]
        pairs: usize,
    },
}

/// What `rampart config` tells.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print the Markdown reference of every config field, generated from the config types' docs
    /// and defaults (docs/configuration.md is its checked-in copy).
    Reference,
}

/// What can be done to an alert.
#[derive(Debug, clap::Subcommand)]
pub enum AlertsCommand {
    /// Record what the alert was: a true positive, benign (expected) or a false positive.
    Mark {
        /// The alert's id (`rampart alerts --json` shows it); an update's id marks its first alert.
        id: String,
        #[arg(long, group = "verdict", required = true)]
        tp: bool,
        #[arg(long, group = "verdict")]
        benign: bool,
        #[arg(long, group = "verdict")]
        fp: bool,
        /// Why.
        #[arg(long, default_value = "")]
        note: String,
        /// Who marks it (default `$USER`; through a running instance, the token's user).
        #[arg(long)]
        by: Option<String>,
        #[arg(short, long, default_value = "rampart.yaml")]
        config: PathBuf,
    },
}

/// What can be done to suppressions.
#[derive(Debug, clap::Subcommand)]
pub enum SuppressionsCommand {
    /// Stop alerting on something for a while: an alert's dedup group (`--alert`), or a playbook
    /// (or every playbook) for a principal, a namespace or a source network.
    Add {
        /// Snooze this alert's dedup group (its playbook, cluster and dedup key).
        #[arg(long)]
        alert: Option<String>,
        /// The playbook to silence (every playbook when absent; not with --alert).
        #[arg(long)]
        playbook: Option<String>,
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        namespace: Option<String>,
        /// An address or CIDR.
        #[arg(long)]
        network: Option<String>,
        /// How long (e.g. 24h, 7d; at most 90d).
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: Option<String>,
    },
    /// End a suppression before it expires.
    Revoke {
        id: String,
        #[arg(long)]
        by: Option<String>,
    },
}

/// What can be done to a recorded action.
#[derive(Debug, clap::Subcommand)]
pub enum ActionsCommand {
    /// Restore a binding rampart revoked, from the object saved in the journal (`rampart actions` shows the ID).
    Undo {
        /// The action's id (`cluster/auditID/playbook/revoke_binding.N`).
        id: String,
        #[arg(short, long, default_value = "rampart.yaml")]
        config: PathBuf,
        /// Use this kubeconfig instead of `respond.kubernetes` (e.g. an administrator's:
        /// recreating a binding needs rights rampart's own service account does not have).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// The kubeconfig context to use.
        #[arg(long)]
        context: Option<String>,
    },
}

/// Where and how to read the journal.
#[derive(Debug, clap::Args)]
pub struct JournalQuery {
    /// Config file (its `state.dir` holds the store; its `telemetry.listen` serves a running instance's journal).
    #[arg(short, long, default_value = "rampart.yaml")]
    pub config: PathBuf,
    /// How many entries.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Command {
    /// Runs the subcommand; `dry_run` is the global `--dry-run`.
    pub async fn execute(&self, dry_run: bool) -> Result<(), AppError> {
        match self {
            Command::Run { config } => app::run(config, dry_run).await.map(|_| ()),
            Command::Check { config } => app::check(config).map(|msg| println!("{msg}")),
            Command::Replay {
                file,
                config,
                quiet,
                alerts_only,
                profile,
            } => {
                let view = app::ReplayOptions {
                    quiet: *quiet,
                    alerts_only: *alerts_only,
                    profile: *profile,
                };
                let r = app::replay(file, config.as_deref(), view).await?;
                eprintln!("{}", app::replay_summary(file, &r));
                Ok(())
            }
            Command::Test {
                path,
                config,
                min_tests,
            } => app::test(path.as_deref(), config.as_deref(), *min_tests)
                .await
                .map(|report| print!("{report}")),
            Command::Alerts {
                command:
                    Some(AlertsCommand::Mark {
                        id,
                        tp,
                        benign,
                        fp: _,
                        note,
                        by,
                        config,
                    }),
                ..
            } => {
                let verdict = if *tp {
                    crate::triage::Verdict::TruePositive
                } else if *benign {
                    crate::triage::Verdict::Benign
                } else {
                    crate::triage::Verdict::FalsePositive
                };
                crate::triage::cli::mark(config, id, verdict, note, by.as_deref())
                    .await
                    .map(|s| println!("{s}"))
                    .map_err(AppError::from)
            }
            Command::Suppressions {
                command,
                config,
                json,
            } => {
                use crate::triage::cli;
                match command {
                    None => cli::list(config, *json).await,
                    Some(SuppressionsCommand::Add {
                        alert,
                        playbook,
                        principal,
                        namespace,
                        network,
                        duration,
                        reason,
                        by,
                    }) => {
                        let a = cli::SuppressArgs {
                            alert: alert.clone(),
                            playbook: playbook.clone(),
                            principal: principal.clone(),
                            namespace: namespace.clone(),
                            network: network.clone(),
                            reason: reason.clone(),
                            duration: *duration,
                            by: by.clone(),
                        };
                        cli::suppress(config, a).await.map(|s| s + "\n")
                    }
                    Some(SuppressionsCommand::Revoke { id, by }) => {
                        cli::revoke(config, id, by.as_deref())
                            .await
                            .map(|s| s + "\n")
                    }
                }
                .map(|s| print!("{s}"))
                .map_err(AppError::from)
            }
            Command::Tune {
                config,
                json,
                apply,
                by,
            } => crate::triage::cli::tune(config, *json, apply.as_deref(), by.as_deref())
                .await
                .map(|s| println!("{}", s.trim_end()))
                .map_err(AppError::from),
            Command::Alerts { q, .. } => {
                crate::journal_cli::list(crate::journal_cli::Listing::Alerts, q)
                    .await
                    .map(|s| print!("{s}"))
                    .map_err(AppError::from)
            }
            Command::Actions {
                command:
                    Some(crate::cli::ActionsCommand::Undo {
                        id,
                        config,
                        kubeconfig,
                        context,
                    }),
                ..
            } => crate::journal_cli::undo(config, id, kubeconfig.clone(), context.clone())
                .await
                .map(|s| println!("{s}"))
                .map_err(AppError::from),
            Command::Actions { q, .. } => {
                crate::journal_cli::list(crate::journal_cli::Listing::Actions, q)
                    .await
                    .map(|s| print!("{s}"))
                    .map_err(AppError::from)
            }
            Command::Bench {
                config,
                events,
                brokers,
                rate,
                latency_for,
                rounds,
                partitions,
                seed,
                previous,
            } => {
                let opts = crate::bench::BenchOptions {
                    config: config.clone(),
                    events: *events,
                    brokers: brokers.clone(),
                    rate: *rate,
                    latency_for: *latency_for,
                    rounds: *rounds,
                    partitions: *partitions,
                    seed: *seed,
                    previous: previous.clone(),
                };
                crate::bench::run(&opts)
                    .await
                    .map(|_| ())
                    .map_err(AppError::from)
            }
            Command::Generate {
                count,
                seed,
                event_list,
                wide,
            } => app::generate(*count, *seed, *event_list, *wide),
            Command::Config {
                command: crate::cli::ConfigCommand::Reference,
            } => app::config_reference(),
            Command::Behaviour { command } => app::behaviour(command).await,
        }
    }
}
