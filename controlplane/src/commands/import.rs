//! `tapline import`: a capture file in, a snapshot out, with progress on a terminal.

use std::io::IsTerminal;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tapline_dataplane::import::{ImportOptions, ImportSummary, import};

use crate::cli::ImportArgs;
use crate::exit;

/// Runs `tapline import`.
pub fn run(args: &ImportArgs) -> anyhow::Result<u8> {
    let options = options(args)?;
    let bar = progress_bar(args.quiet);
    let started = Instant::now();
    let mut progress = |done: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let summary = import(&args.file, &args.out, &options, &mut progress)
        .with_context(|| format!("importing {}", args.file.display()))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if !args.quiet {
        print_summary(args, &summary, started.elapsed().as_secs_f64());
    }
    if let Some(e) = &summary.input_error {
        eprintln!(
            "tapline: error: {e} (everything before it was imported into {})",
            args.out.display()
        );
        return Ok(exit::USAGE);
    }
    Ok(0)
}

/// Builds the import settings from the config file (if any) and the flags.
pub fn options(args: &ImportArgs) -> anyhow::Result<ImportOptions> {
    let mut options = ImportOptions::default();
    if let Some(path) = &args.config {
        let config = tapline_config::Config::load(path)?;
        crate::commands::import::apply_config(&mut options, &config);
    }
    if let Some(workers) = args.workers {
        if workers == 0 || workers > 1024 {
            anyhow::bail!("--workers {workers}: expected a number from 1 to 1024");
        }
        options.workers = workers;
    }
    Ok(options)
}

/// Copies the config file's settings into import options.
pub fn apply_config(options: &mut ImportOptions, config: &tapline_config::Config) {
    if let Some(workers) = config.import.workers {
        options.workers = workers;
    }
    let r = &config.reassembly;
    options.reassembly.max_flows = r.max_flows;
    options.reassembly.max_buffered_per_direction = usize_of(r.max_buffered_per_direction.0);
    options.reassembly.max_buffered_total = usize_of(r.max_buffered_total.0);
    options.reassembly.idle_timeout_ns =
        u64::try_from(r.idle_timeout.as_nanos()).unwrap_or(u64::MAX);
    options.reassembly.overlap = match r.overlap {
        tapline_config::OverlapPolicy::First => tapline_reassembly::OverlapPolicy::First,
        tapline_config::OverlapPolicy::Last => tapline_reassembly::OverlapPolicy::Last,
    };
    let h = &config.http;
    options.http.max_head_bytes = usize_of(h.max_head_bytes.0);
    options.http.max_body_bytes = usize_of(h.max_body_bytes.0);
    options.http.max_pipelined = h.max_pipelined;
    options.segment_capacity = config.segments.capacity.0;
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn progress_bar(quiet: bool) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{spinner} importing [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

fn print_summary(args: &ImportArgs, summary: &ImportSummary, secs: f64) {
    let c = &summary.manifest.counts;
    let mb = c.bytes as f64 / 1e6;
    println!(
        "imported {} packets ({:.1} MB) in {:.2}s ({:.0} MB/s, {} workers)",
        c.packets,
        mb,
        secs,
        mb / secs.max(1e-9),
        summary.manifest.workers
    );
    println!(
        "  {} TCP connections, {} request/response pairs ({} incomplete)",
        c.connections, c.rrpairs, c.incomplete_rrpairs
    );
    println!(
        "  reassembly: {} out of order, {} retransmitted, {} gaps ({} bytes), {} conflicting overlaps",
        c.out_of_order, c.retransmitted, c.gaps, c.gap_bytes, c.conflicting_overlaps
    );
    if c.tls_connections > 0 {
        println!(
            "  {} TLS connections: encrypted, not parsed (capture their plaintext live with `tapline capture --tls`)",
            c.tls_connections
        );
    }
    let skipped = c.non_tcp + c.ip_fragments + c.unsupported_link + c.malformed;
    if skipped > 0 {
        println!(
            "  not TCP: {} other protocols, {} IP fragments, {} unsupported link type, {} malformed",
            c.non_tcp, c.ip_fragments, c.unsupported_link, c.malformed
        );
    }
    println!("  snapshot: {}", args.out.display());
}
