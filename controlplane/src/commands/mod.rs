//! One module per command; each returns the process exit code or an error.

mod capture;
mod demo;
mod import;
mod inspect;
pub(crate) mod job;
mod mirror;
mod mock;
mod replay;
mod run;
pub(crate) mod serve;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Capture(args) => capture::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Mock(args) => mock::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Job(args) => job::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Mirror(args) => mirror::run(&args),
    }
}
