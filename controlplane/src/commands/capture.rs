//! `tapline capture`: live traffic into a snapshot, from an interface through the eBPF
//! programs (XDP ingress, TC egress) or from a SPAN port, with a status line on a terminal
//! (plain log lines otherwise), until Ctrl-C, SIGTERM or `--duration`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use tapline_dataplane::import::ImportOptions;
use tapline_dataplane::live::{
    self, CaptureConfig, Cidr, DEFAULT_RING_BYTES, Filter, LiveObserver, LiveOptions, LiveSource,
    LiveStatus, LiveSummary, TlsOptions,
};

use crate::cli::CaptureArgs;
use crate::exit::EnvironmentError;

/// Runs `tapline capture`.
pub fn run(args: &CaptureArgs) -> anyhow::Result<u8> {
    let options = options(args)?;
    let stop = live::stop_on_signals()
        .map_err(|e| EnvironmentError(format!("cannot install signal handlers: {e}")))?;
    let terminal = std::io::stderr().is_terminal();
    let mut observer = Observer {
        quiet: args.quiet,
        terminal,
        last: LiveStatus::default(),
        line_shown: false,
    };
    let summary = live::run(&options, stop, &mut observer).map_err(|e| match e {
        e if e.is_environment() => anyhow::Error::new(EnvironmentError(e.to_string())),
        e => anyhow::Error::new(e).context(format!("capturing into {}", args.out.display())),
    })?;
    observer.clear();
    print_summary(&options, &summary);
    Ok(0)
}

/// Builds the capture settings from the config file (if any) and the flags.
fn options(args: &CaptureArgs) -> anyhow::Result<LiveOptions> {
    let tls_selected = args.tls || !args.pids.is_empty() || !args.binaries.is_empty();
    let source = match (&args.iface, &args.span) {
        (Some(iface), None) => LiveSource::Interface(iface.clone()),
        (None, Some(span)) => LiveSource::Span(span.clone()),
        (None, None) if tls_selected => LiveSource::Processes,
        _ => anyhow::bail!(
            "give one of --iface IF and --span IF, or TLS processes only (--tls, --pid, --binary)"
        ),
    };
    if let Some(pid) = args.pids.iter().find(|p| **p == 0) {
        anyhow::bail!("--pid {pid}: expected a process id above 0");
    }
    let tls = tls_selected.then(|| TlsOptions {
        pids: args.pids.clone(),
        binaries: args.binaries.clone(),
        all_processes: args.tls,
        ..TlsOptions::default()
    });
    let mut pipeline = ImportOptions::default();
    if let Some(path) = &args.config {
        let config = tapline_config::Config::load(path)?;
        crate::commands::import::apply_config(&mut pipeline, &config);
    }
    if let Some(workers) = args.workers {
        if workers == 0 || workers > 1024 {
            anyhow::bail!("--workers {workers}: expected a number from 1 to 1024");
        }
        pipeline.workers = workers;
    }
    let mut capture = CaptureConfig::default();
    if let Some(snaplen) = args.snaplen {
        if snaplen == 0 || snaplen > capture.snaplen {
            anyhow::bail!(
                "--snaplen {snaplen}: expected a number from 1 to {}",
                capture.snaplen
            );
        }
        capture.snaplen = snaplen;
    }
    if let Some(mib) = args.ring_mib {
        if mib == 0 || !mib.is_power_of_two() || mib > 1024 {
            anyhow::bail!("--ring-mib {mib}: expected a power of two from 1 to 1024");
        }
        capture.ring_bytes = mib << 20;
    } else {
        capture.ring_bytes = DEFAULT_RING_BYTES;
    }
    if let Some(port) = args.ports.iter().find(|p| **p == 0) {
        anyhow::bail!("--port {port}: expected a port from 1 to 65535");
    }
    let hosts = args
        .hosts
        .iter()
        .map(|h| h.parse::<Cidr>())
        .collect::<Result<Vec<_>, _>>()?;
    capture.filter = Filter {
        ports: args.ports.clone(),
        hosts,
    };
    capture.filter.validate()?;
    let duration = args
        .duration
        .as_deref()
        .map(parse_duration)
        .transpose()
        .context("--duration")?;
    Ok(LiveOptions {
        source,
        netns: args.netns.clone(),
        capture,
        tls,
        duration,
        out: args.out.clone(),
        pipeline,
        status_every: if std::io::stderr().is_terminal() {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        },
    })
}

/// Parses `1500ms`, `30s`, `5m`, `1h`, or a plain number of seconds.
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v > 0.0)
        .ok_or_else(|| {
            anyhow::anyhow!("{text:?}: expected a positive duration such as 30s, 5m or 1500ms")
        })?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => anyhow::bail!("{text:?}: unknown unit {other:?} (use ms, s, m or h)"),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| anyhow::anyhow!("{text:?}: {e}"))
}

/// Prints notes and the status line (a rewritten line on a terminal, log lines otherwise).
struct Observer {
    quiet: bool,
    terminal: bool,
    last: LiveStatus,
    line_shown: bool,
}

impl Observer {
    /// Removes the status line before the summary.
    fn clear(&mut self) {
        if self.line_shown {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
            self.line_shown = false;
        }
    }
}

impl LiveObserver for Observer {
    fn note(&mut self, text: &str) {
        if !self.quiet {
            self.clear();
            eprintln!("tapline: {text}");
        }
    }

    fn status(&mut self, status: &LiveStatus) {
        let seconds = status
            .elapsed
            .saturating_sub(self.last.elapsed)
            .as_secs_f64()
            .max(1e-3);
        let pps = (status.packets - self.last.packets.min(status.packets)) as f64 / seconds;
        let mbps = (status.bytes - self.last.bytes.min(status.bytes)) as f64 / seconds / 1e6;
        self.last = *status;
        if self.quiet {
            return;
        }
        let mut line = format!(
            "{:>7.1}s  {:>9.0} packets/s  {:>7.1} MB/s  {} flows  {} RRPairs  {} kernel drops  {} ring drops",
            status.elapsed.as_secs_f64(),
            pps,
            mbps,
            status.flows,
            status.pairs,
            status.kernel_drops,
            status.ring_drops
        );
        if status.tls_chunks > 0 || status.tls_lost_bytes > 0 {
            line.push_str(&format!(
                "  {} TLS chunks  {} TLS bytes lost",
                status.tls_chunks, status.tls_lost_bytes
            ));
        }
        if self.terminal {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
            self.line_shown = true;
        } else {
            eprintln!("tapline: capture: {}", line.trim_start());
        }
    }
}

fn print_summary(options: &LiveOptions, summary: &LiveSummary) {
    let c = &summary.manifest.counts;
    let s = &summary.status;
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let mut how = match (summary.ingress_hook, &options.source) {
        (Some(hook), _) => format!("ingress: {hook}, egress: TC"),
        (None, LiveSource::Span(_)) => "SPAN, promiscuous AF_PACKET".to_owned(),
        (None, _) => "TLS uprobes".to_owned(),
    };
    if options.tls.is_some() && summary.ingress_hook.is_some() {
        how.push_str(", TLS uprobes");
    }
    let mb = c.bytes as f64 / 1e6;
    println!(
        "captured {} packets ({:.1} MB) on {} in {:.1}s ({}; {} workers)",
        c.packets,
        mb,
        options.source.interface().unwrap_or("TLS processes"),
        secs,
        how,
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
    println!(
        "  drops: {} by the kernel on the interface, {} lost by tapline (ring full)",
        s.kernel_drops, s.ring_drops
    );
    if options.tls.is_some() {
        println!(
            "  TLS: {} plaintext chunks ({} bytes) in {} streams, {} bytes could not be copied; {} encrypted connections, {} chunks seen from both ends counted once",
            c.tls_chunks,
            c.tls_plaintext_bytes,
            c.tls_streams,
            c.tls_lost_bytes.max(s.tls_lost_bytes),
            c.tls_connections,
            c.tls_duplicate_chunks
        );
    }
    println!("  snapshot: {}", options.out.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
        for bad in ["", "0", "-1s", "5x", "s", "1e9999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
