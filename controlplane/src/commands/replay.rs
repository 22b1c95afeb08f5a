//! `tapline replay`: sends a snapshot's HTTP requests to a target, compares the responses with
//! the recorded ones, paces load, judges assertions, and writes the reports.
//!
//! Exit codes: 0 every request matched and every assertion holds, 1 otherwise, 2 bad input
//! (a flag, the snapshot, an unreachable target).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use tapline_dataplane::snapshot::Snapshot;
use tapline_replay::report::{html, junit, text};
use tapline_replay::{Options, Report, Settings, config};

use crate::cli::ReplayArgs;
use crate::exit;

/// Runs `tapline replay`.
pub fn run(args: &ReplayArgs) -> anyhow::Result<u8> {
    let section = match &args.config {
        Some(path) => config::load(path)?,
        None => config::ReplaySection::default(),
    };
    let target =
        args.target.clone().or(section.target).context(
            "--target URL is required (or `target` in the [replay] section of --config)",
        )?;
    let mut ignore = section.ignore;
    ignore.extend(args.ignore.iter().cloned());
    let settings = Settings {
        target,
        keep_host: args.keep_host || section.keep_host.unwrap_or(false),
        filter: args.filter.clone().or(section.filter),
        ignore,
        rate: args.rate.clone().or(section.rate),
        connections: args.connections.or(section.connections),
        duration: args.duration.clone().or(section.duration),
        timeout: args.timeout.clone().or(section.timeout),
        assert: args.assert.clone().or(section.assert.map(|a| a.joined())),
    };
    let options = Options::parse(&settings)?;
    let snapshot = Snapshot::open(&args.snapshot)?;
    let report = tapline_replay::replay(&snapshot, &options)?;
    let mut written = Vec::new();
    if let Some(dir) = args.report.as_ref().or(section.report.as_ref()) {
        std::fs::create_dir_all(dir).with_context(|| format!("--report {}", dir.display()))?;
        let json = dir.join("report.json");
        write(&json, &report.to_json())?;
        let page = dir.join("report.html");
        write(&page, &html::render(&report))?;
        written.push(json);
        written.push(page);
    }
    if let Some(file) = args.junit.as_ref().or(section.junit.as_ref()) {
        write(file, &junit::render(&report))?;
        written.push(file.clone());
    }
    print(&report, args.quiet, &written);
    Ok(if report.passed { 0 } else { exit::ASSERTIONS })
}

pub(super) fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

pub(super) fn print(report: &Report, quiet: bool, written: &[std::path::PathBuf]) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let summary = if quiet {
        match report.failure() {
            None => format!(
                "replay: PASS, {} of {} matched\n",
                report.matched, report.total
            ),
            Some(why) => format!("replay: FAIL ({why})\n"),
        }
    } else {
        text::render(report)
    };
    // A closed pipe is not an error of the replay.
    let _ = out.write_all(summary.as_bytes());
    for path in written {
        let _ = writeln!(out, "wrote {}", path.display());
    }
    let _ = out.flush();
}
