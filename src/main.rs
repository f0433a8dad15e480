//! The rampart binary: parse the command line, start logging, run the job, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use rampart::app::AppError;
use rampart::cli::Cli;

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
    let result = runtime.block_on(cli.command.execute(cli.dry_run));
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
