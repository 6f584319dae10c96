//! The `stilts` binary: CLI parsing and wiring only; every role is a library function.

mod catalog;
mod cli;
mod client;
mod data_digest;
mod data_fetch;
mod executors;
mod export_cmd;
mod health_cmd;
mod local_results;
mod own_tasks;
mod plan_cmd;
mod progress;
mod report_cmd;
mod results_view;
mod roles;
mod run;
mod security;
mod telemetry;
mod term;
mod version;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, Command, DataCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Processes that may train keep tensor-sized blocks in the heap (see the function; ~10 %
    // faster CPU training); the coordinator and the clients keep glibc's defaults.
    #[cfg(feature = "trainer")]
    if matches!(
        cli.command,
        Command::Run(_) | Command::Worker(_) | Command::Encode(_)
    ) {
        stilts_trainer::alloc::tune_for_training();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = {
        let _rt = runtime.enter();
        match telemetry::init(&cli.log) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        }
    };
    let code = match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    };
    // Flush the last spans while the runtime (which runs the OTLP client) is still up.
    drop(telemetry);
    code
}

async fn dispatch(command: Command) -> Result<u8> {
    match command {
        Command::Run(args) => Ok(run::run(args).await? as u8),
        Command::Plan { grid } => {
            print!("{}", plan_cmd::run(&grid)?);
            Ok(0)
        }
        Command::Results {
            state,
            sweep,
            format,
        } => {
            print!(
                "{}",
                local_results::run(&state.state_dir, sweep.as_deref(), format).await?
            );
            Ok(0)
        }
        Command::Report(args) => report_cmd::run(args).await.map(|()| 0),
        Command::Coordinator(args) => roles::coordinator(args).await.map(|()| 0),
        Command::Worker(args) => roles::worker(args).await.map(|()| 0),
        Command::Sweep(cmd) => client::run(cmd).await.map(|()| 0),
        Command::Export(cmd) => export_cmd::run(cmd).await.map(|()| 0),
        Command::Health(args) => health_cmd::run(&args).await,
        Command::Encode(args) => roles::encode(args).map(|()| 0),
        Command::Score(args) => {
            println!("{}", catalog::score(&args)?);
            Ok(0)
        }
        Command::Data(DataCommand::Fetch(args)) => {
            let to = args.to.display().to_string();
            let s = tokio::task::spawn_blocking(move || data_fetch::fetch(&args)).await??;
            println!(
                "{} downloaded ({} bytes), {} already present and verified, under {to}",
                s.downloaded, s.bytes, s.present
            );
            Ok(0)
        }
        Command::Data(DataCommand::Sources { catalog: extra }) => {
            print!("{}", data_fetch::list(&catalog::load(extra.as_deref())?));
            Ok(0)
        }
        Command::Tasks { catalog: extra } => {
            print!("{}", catalog::list(extra.as_deref())?);
            Ok(0)
        }
    }
}
