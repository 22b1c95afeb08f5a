//! What `tapline mirror` shows while it runs: the capture's notes on stdout, and every second
//! the summary line (counts, match rate, drops, production's and the shadow's latency side by
//! side), rewritten in place on a terminal and as log lines otherwise.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use tapline_dataplane::live::{LiveObserver, LiveStatus};
use tapline_mirror::{Ledger, Status};

/// Prints the capture's notes and the mirror's summary line (rewritten in place on a
/// terminal, log lines otherwise).
pub struct Observer {
    ledger: Arc<Ledger>,
    quiet: bool,
    terminal: bool,
    shown: bool,
    announced: bool,
}

impl Observer {
    /// An observer of `ledger`'s figures; `quiet` prints nothing.
    pub fn new(ledger: Arc<Ledger>, quiet: bool) -> Self {
        Observer {
            ledger,
            quiet,
            terminal: std::io::stderr().is_terminal(),
            shown: false,
            announced: false,
        }
    }

    /// Removes the summary line from the terminal.
    pub fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
            self.shown = false;
        }
    }
}

impl LiveObserver for Observer {
    fn note(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        self.clear();
        println!("tapline mirror: {text}");
        if !self.announced && text.starts_with("capturing") {
            self.announced = true;
            println!("tapline mirror: mirroring; SIGINT or SIGTERM stops it and writes the report");
        }
        let _ = std::io::stdout().flush();
    }

    fn status(&mut self, _: &LiveStatus) {
        if self.quiet {
            return;
        }
        let line = status_line(&self.ledger.status());
        if self.terminal {
            eprint!("\r\x1b[2K{line}");
            self.shown = true;
        } else {
            eprintln!("tapline mirror: {line}");
        }
        let _ = std::io::stderr().flush();
    }
}

/// The summary line: counts, match rate, drops, and both latencies side by side.
fn status_line(s: &Status) -> String {
    format!(
        "{:>6.1}s  mirrored {}  matched {:.2}%  differed {}  errors {}  dropped {}  in flight {}  \
         p50/p99 production {:.2}/{:.2} ms, shadow {:.2}/{:.2} ms",
        s.elapsed.as_secs_f64(),
        s.mirrored,
        s.matched_pct(),
        s.differed,
        s.errors,
        s.dropped.total(),
        s.in_flight,
        s.production_ms.0,
        s.production_ms.1,
        s.shadow_ms.0,
        s.shadow_ms.1
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_status_line_shows_both_latencies() {
        let s = Status {
            elapsed: Duration::from_secs(3),
            mirrored: 10,
            matched: 9,
            differed: 1,
            production_ms: (1.0, 2.5),
            shadow_ms: (1.5, 3.0),
            ..Status::default()
        };
        let line = status_line(&s);
        assert!(
            line.contains("mirrored 10  matched 90.00%  differed 1"),
            "{line}"
        );
        assert!(
            line.contains("production 1.00/2.50 ms, shadow 1.50/3.00 ms"),
            "{line}"
        );
    }
}
