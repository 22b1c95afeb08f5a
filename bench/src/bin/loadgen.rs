//! `loadgen`: exactly N HTTP/1.1 keep-alive GETs over C connections, for `bench/import.sh`.
//!
//! Prints one line of `key=value` totals; `completed=` is the number of 200 responses read whole.
//! Exits 0 when all N completed, 1 when some did not, 2 on a usage error.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tapline_bench::loadgen::{LoadConfig, run};

/// Makes exactly N HTTP/1.1 keep-alive GET requests over C connections and checks each response.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Args {
    /// The server, IP:PORT.
    #[arg(long)]
    target: SocketAddr,
    /// Requests in all.
    #[arg(long)]
    requests: u64,
    /// Connections, one thread each.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// The path requested.
    #[arg(long, default_value = "/small")]
    path: String,
    /// The Host header (default: the target's IP).
    #[arg(long)]
    host: Option<String>,
    /// Requests written back to back on a connection before reading their responses.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Give up after this many seconds in all.
    #[arg(long, default_value_t = 300)]
    deadline_secs: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = LoadConfig {
        target: args.target,
        requests: args.requests,
        connections: args.connections,
        host: args.host.unwrap_or_else(|| args.target.ip().to_string()),
        path: args.path,
        pipeline: args.pipeline,
        deadline: Duration::from_secs(args.deadline_secs),
        io_timeout: Duration::from_secs(10),
    };
    let report = match run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    for e in &report.errors {
        eprintln!("loadgen: connection ended early: {e}");
    }
    println!(
        "completed={} requested={} bad_status={} connections={} reconnects={} bytes={} elapsed_s={:.3} req_per_s={:.0}",
        report.completed,
        cfg.requests,
        report.bad_status,
        cfg.connections,
        report.reconnects,
        report.bytes,
        report.elapsed.as_secs_f64(),
        report.rate()
    );
    if report.completed == cfg.requests {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
