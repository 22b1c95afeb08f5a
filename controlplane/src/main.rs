//! `tapline`: capture real service traffic, turn it into request/response pairs, replay it.
//!
//! Exit codes: 0 success, 1 assertions failed, 2 usage or input error, 3 environment.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod exit;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    return ExitCode::from(0);
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    return ExitCode::from(exit::USAGE);
                }
                _ => {}
            }
            // One line: clap's first paragraph, without its own "error: " prefix.
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let first = first.join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            eprintln!("tapline: error: {first} (see tapline --help)");
            return ExitCode::from(exit::USAGE);
        }
    };
    init_tracing();
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("tapline: error: {}", exit::one_line(&e));
            ExitCode::from(exit::code_of(&e))
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TAPLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
