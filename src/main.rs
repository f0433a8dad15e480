//! The rampart binary: parse the command line, start logging, run the job, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use rampart::app::{self, AppError};
use rampart::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    rampart::telemetry::init_logging(&cli.log_level, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result: Result<(), AppError> = runtime.block_on(async {
        match &cli.command {
            Command::Run { config } => app::run(config, cli.dry_run).await.map(|_| ()),
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
            Command::Alerts { q } => {
                rampart::journal_cli::list(rampart::journal_cli::Listing::Alerts, q)
                    .await
                    .map(|s| print!("{s}"))
                    .map_err(AppError::from)
            }
            Command::Actions {
                command:
                    Some(rampart::cli::ActionsCommand::Undo {
                        id,
                        config,
                        kubeconfig,
                        context,
                    }),
                ..
            } => rampart::journal_cli::undo(config, id, kubeconfig.clone(), context.clone())
                .await
                .map(|s| println!("{s}"))
                .map_err(AppError::from),
            Command::Actions { q, .. } => {
                rampart::journal_cli::list(rampart::journal_cli::Listing::Actions, q)
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
                let opts = rampart::bench::BenchOptions {
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
                rampart::bench::run(&opts)
                    .await
                    .map(|_| ())
                    .map_err(|e| AppError::Bench(e.to_string()))
            }
            Command::Generate {
                count,
                seed,
                event_list,
                wide,
            } => app::generate(*count, *seed, *event_list, *wide),
            Command::Config {
                command: rampart::cli::ConfigCommand::Reference,
            } => app::config_reference(),
        }
    });
    // A task stuck past the grace period (a blocking write to a failing disk) must not keep the
    // process from exiting: dropping the runtime would wait for it forever.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(AppError::TestsFailed(report)) => {
            print!("{report}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
