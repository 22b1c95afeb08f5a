//! The command line, as clap derives it. DESIGN.md's "Command line" section is the contract.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Capture real service traffic, turn it into request/response pairs, replay it.
#[derive(Debug, Parser)]
#[command(name = "tapline", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// tapline's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a pcap or pcapng file into a snapshot of packets and request/response pairs.
    Import(ImportArgs),
    /// Show the request/response pairs of a snapshot.
    Inspect(InspectArgs),
    /// Capture sample HTTP traffic on loopback, import it and inspect it: the loop in one command.
    Demo(DemoArgs),
}

/// `tapline import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The capture file (pcap or pcapng).
    pub file: PathBuf,
    /// The snapshot directory to create.
    #[arg(long)]
    pub out: PathBuf,
    /// Reassembly worker threads (default: the number of cores, or the config file's).
    #[arg(long)]
    pub workers: Option<usize>,
    /// A tapline config file (TOML); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Output formats of `tapline inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    /// A table for people.
    Table,
    /// One JSON object per pair.
    Jsonl,
    /// A markdown section per pair, with heads and text bodies.
    Markdown,
}

/// `tapline inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The snapshot directory.
    pub snapshot: PathBuf,
    /// Only pairs matching this expression, e.g. `status>=500 and path~/api/`.
    #[arg(long)]
    pub filter: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = InspectFormat::Table)]
    pub format: InspectFormat,
    /// Show at most this many pairs.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// `tapline demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where to keep the demo's capture and snapshot (default: a new temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}
