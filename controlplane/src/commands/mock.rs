//! `tapline mock`: answers a service's outbound HTTP calls from the responses recorded in a
//! snapshot, until SIGINT or SIGTERM, then prints what it answered.
//!
//! Exit codes: 0 after a signal, 2 for a bad flag or a snapshot without usable HTTP pairs,
//! 3 when the address cannot be bound.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use tapline_mock::{
    AddrSelector, Index, Latency, MatchConfig, Mock, Selection, SequenceEnd, ServerConfig, Skipped,
    Summary,
};

use crate::cli::{MockAfterLast, MockArgs, MockLatency};
use crate::exit::EnvironmentError;

/// Runs `tapline mock`.
pub fn run(args: &MockArgs) -> anyhow::Result<u8> {
    if !(0.0..=1.0).contains(&args.min_score) {
        bail!(
            "--min-score {}: expected a number from 0 to 1",
            args.min_score
        );
    }
    if !(200..=999).contains(&args.no_match_status) {
        bail!(
            "--no-match-status {}: expected a status from 200 to 999",
            args.no_match_status
        );
    }
    if args.threads == Some(0) {
        bail!("--threads 0: expected at least 1");
    }
    let service = args
        .service
        .as_deref()
        .map(|s| s.parse::<AddrSelector>().context("--service"))
        .transpose()?;
    let dependencies = args
        .dependencies
        .iter()
        .map(|d| d.parse::<AddrSelector>().context("--dependency"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let selection = Selection {
        service,
        dependencies,
    };
    let loaded = tapline_mock::load(&args.snapshot, &selection)?;
    let skipped = loaded.skipped.clone();
    let index = Index::new(
        loaded.recorded,
        MatchConfig {
            min_score: args.min_score,
            end: match args.after_last {
                MockAfterLast::RepeatLast => SequenceEnd::RepeatLast,
                MockAfterLast::Wrap => SequenceEnd::Wrap,
            },
            mark: !args.no_mark,
        },
    );
    let listener = tapline_mock::bind(args.listen)
        .map_err(|e| anyhow::Error::new(EnvironmentError(e.to_string())))?;
    let local = listener.local_addr().unwrap_or(args.listen);

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "tapline mock: {} recorded responses from {} ({}{})",
        index.recorded().len(),
        args.snapshot.display(),
        selection_text(&selection),
        skipped_text(&skipped)
    )?;
    let width = index
        .dependencies()
        .iter()
        .map(|d| d.name.len())
        .max()
        .unwrap_or(0)
        .max("DEPENDENCY".len());
    writeln!(out, "  {:width$}  RESPONSES  SERVERS", "DEPENDENCY")?;
    for dep in index.dependencies() {
        let servers: Vec<String> = dep.servers.iter().map(ToString::to_string).collect();
        writeln!(
            out,
            "  {:width$}  {:>9}  {}",
            dep.name,
            dep.responses,
            servers.join(", ")
        )?;
    }
    out.flush()?;
    drop(out);

    let latency = match args.latency {
        MockLatency::None => Latency::None,
        MockLatency::Recorded => Latency::Recorded,
    };
    let mock = Arc::new(Mock::new(
        index,
        ServerConfig {
            latency,
            no_match_status: args.no_match_status,
            ..ServerConfig::default()
        },
    ));
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let started = Instant::now();
    let summary = tapline_mock::run(mock, listener, threads, || {
        println!(
            "tapline mock: listening on {local} (latency {}, closest match from score {:.2}); \
             SIGINT or SIGTERM stops it",
            match latency {
                Latency::None => "none",
                Latency::Recorded => "recorded",
            },
            args.min_score
        );
        let _ = std::io::stdout().flush();
    })?;
    print_summary(&summary, started.elapsed().as_secs_f64())?;
    Ok(0)
}

/// Which calls are answered, for the banner.
fn selection_text(selection: &Selection) -> String {
    let mut text = match selection.service {
        Some(s) => format!("outbound calls of {s}"),
        None => "calls of every client".to_owned(),
    };
    if !selection.dependencies.is_empty() {
        let names: Vec<String> = selection
            .dependencies
            .iter()
            .map(ToString::to_string)
            .collect();
        text.push_str(&format!(" to {}", names.join(", ")));
    }
    text
}

/// "; skipped N of other clients, M incomplete or damaged" (empty when nothing was skipped).
fn skipped_text(s: &Skipped) -> String {
    let parts: Vec<String> = s
        .reasons()
        .iter()
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("; skipped {}", parts.join(", "))
    }
}

fn print_summary(s: &Summary, seconds: f64) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "tapline mock: stopped after {seconds:.1}s")?;
    for (label, n) in [
        ("connections", s.connections),
        ("requests", s.requests),
        ("matched exactly", s.exact),
        ("matched closest", s.closest),
        ("unmatched", s.unmatched),
        ("bad requests", s.bad_requests),
    ] {
        writeln!(out, "  {label:<16} {n:>8}")?;
    }
    if !s.unmatched_samples.is_empty() {
        writeln!(
            out,
            "  unmatched requests (first {}):",
            s.unmatched_samples.len()
        )?;
        for line in &s.unmatched_samples {
            writeln!(out, "    {line}")?;
        }
    }
    out.flush()
}
