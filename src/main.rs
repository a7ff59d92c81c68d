//! `offhook`: one binary for every process of the click-to-call gateway —
//! `demo` (everything in one process on the embedded defaults), `signaling`,
//! `media`, `web`, and `directory` (administration from the shell).

mod admin;
mod cli;
mod config;
mod demo;
mod logging;
mod publish;
mod table;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::config::Config;

/// Exit code for input the user must fix (clap uses the same for bad usage).
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => return fail(&err, EXIT_BAD_INPUT),
    };
    logging::init(&config.log);
    let runtime = match runtime(&cli.command, &config) {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err.into(), 1),
    };
    let result = runtime.block_on(async {
        config.prepare_storage()?;
        match cli.command {
            Command::Demo(args) => demo::run(&config, args).await,
            Command::Web => demo::run_web(&config).await,
            Command::Signaling => demo::run_signaling(&config).await,
            Command::Media => demo::run_media(&config).await,
            Command::Directory(command) => admin::run(&config, *command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let bad_input = err
                .downcast_ref::<offhook_directory::DirectoryError>()
                .is_some_and(offhook_directory::DirectoryError::is_caller_error)
                || err.downcast_ref::<admin::BadInput>().is_some();
            fail(&err, if bad_input { EXIT_BAD_INPUT } else { 1 })
        }
    }
}

/// The async runtime for `command`: `offhook signaling` runs on
/// `signaling.worker_threads` threads, the others on one per core.
fn runtime(command: &Command, config: &Config) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let threads = config.signaling.worker_threads;
    if matches!(command, Command::Signaling) && threads > 0 {
        builder.worker_threads(threads);
    }
    builder.enable_all().build()
}

/// Prints a one-line error and returns the exit code.
fn fail(err: &anyhow::Error, code: u8) -> ExitCode {
    eprintln!("offhook: error: {err:#}");
    ExitCode::from(code)
}
