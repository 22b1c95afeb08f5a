//! The mirror's report: `tapline replay`'s report (totals, latency of the shadow beside
//! production's, per endpoint, differences, errors, assertions) built from the ledger, with a
//! `mirror` section on what was seen, dropped and skipped; written as `report.json`, a
//! self-contained `report.html` and JUnit XML by `tapline replay`'s writers, and summed up as
//! text for the terminal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tapline_replay::Report;
use tapline_replay::assertion::{self, Assertion, Metric};
use tapline_replay::plan::Plan;
use tapline_replay::report::{Quantiles, RunFacts, html, junit};
use tapline_replay::schedule::Rate;

use crate::error::MirrorError;
use crate::ledger::{Drops, Ledger};

/// Mismatched requests shown in the text summary.
const SHOWN_MISMATCHES: usize = 5;
/// Differences shown per request in the text summary.
const SHOWN_DIFFS: usize = 6;
/// Endpoints shown in the text summary.
const SHOWN_ENDPOINTS: usize = 20;

/// What the ledger does not know about a run.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// Where production was captured, such as `eth0 port 8080`.
    pub source: &'a str,
    /// The shadow, such as `python3 app.py at 127.0.0.1:8080 (netns tapline-mirror-1)`.
    pub target: &'a str,
    /// When the mirror started (ns since the Unix epoch).
    pub started_ns: u64,
    /// How long it ran.
    pub duration: Duration,
    /// Production's service port.
    pub port: u16,
    /// The queue bound.
    pub queue: usize,
    /// The in-flight bound.
    pub max_in_flight: usize,
    /// The per-request timeout.
    pub timeout: Duration,
    /// The assertions to judge.
    pub assertions: &'a [Assertion],
}

/// What the mirror did besides the comparisons.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MirrorSection {
    /// Production's service port.
    pub port: u16,
    /// Inbound exchanges the capture completed.
    pub seen: u64,
    /// Sent to the shadow and finished.
    pub mirrored: u64,
    /// Share of the mirrored that matched, percent.
    pub matched_pct: f64,
    /// Not sent, by reason.
    pub dropped: Drops,
    /// All dropped.
    pub dropped_total: u64,
    /// Not mirrorable, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// The service's own calls to dependencies the capture completed.
    pub outbound: u64,
    /// The queue bound.
    pub queue: usize,
    /// The in-flight bound.
    pub max_in_flight: usize,
    /// The per-request timeout, ms.
    pub timeout_ms: u64,
    /// Figures of the shadow's mocks, when it had any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mocks: Option<serde_json::Value>,
}

/// The whole report (`report.json`): `tapline replay`'s fields plus `mirror`. In them,
/// `recorded` is production and `replay` is the shadow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MirrorReport {
    /// The comparison, as `tapline replay` reports it.
    #[serde(flatten)]
    pub report: Report,
    /// The mirror's own figures.
    pub mirror: MirrorSection,
}

/// Builds the report from the ledger (taking the detailed requests out of it: call once, at
/// the end).
pub fn build(ledger: &Ledger, facts: &Facts<'_>, mocks: Option<serde_json::Value>) -> MirrorReport {
    let skipped = ledger.skipped_reasons();
    let seen = ledger.seen.load(std::sync::atomic::Ordering::Relaxed);
    let endpoints = ledger
        .endpoints
        .lock()
        .map(|e| (e.to_plan(), e.rules().to_vec()))
        .unwrap_or_default();
    let no_response = skipped.get("no recorded response").copied().unwrap_or(0);
    let mut results = ledger.results();
    let (requests, tally) = match results.as_deref_mut() {
        Some(r) => (std::mem::take(&mut r.detailed), r.tally.clone()),
        None => (Vec::new(), Default::default()),
    };
    drop(results);
    let plan = Plan {
        requests,
        connections: Vec::new(),
        endpoints: endpoints.0,
        skipped: skipped.clone(),
        chosen: seen,
        recorded_without_response: no_response,
    };
    let started = tapline_dataplane::view::rfc3339(facts.started_ns);
    let mut report = Report::build(
        &plan,
        &tally,
        &RunFacts {
            snapshot: facts.source,
            target: facts.target,
            started,
            duration_s: facts.duration.as_secs_f64(),
            rate: Rate::Factor(1.0),
            connections: facts.max_in_flight,
            rules: &endpoints.1,
            assertions: &[],
        },
    );
    judge(&mut report, facts.assertions, ledger, seen, no_response);
    let drops = ledger.drops();
    let mirrored = report.total;
    MirrorReport {
        mirror: MirrorSection {
            port: facts.port,
            seen,
            mirrored,
            matched_pct: if mirrored == 0 {
                100.0
            } else {
                (report.matched as f64 * 1e4 / mirrored as f64).round() / 100.0
            },
            dropped: drops,
            dropped_total: drops.total(),
            skipped: skipped.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
            outbound: ledger.outbound.load(std::sync::atomic::Ordering::Relaxed),
            queue: facts.queue,
            max_in_flight: facts.max_in_flight,
            timeout_ms: u64::try_from(facts.timeout.as_millis()).unwrap_or(u64::MAX),
            mocks,
        },
        report,
    }
}

/// Judges the assertions against production's figures (the baselines) and sets the verdict:
/// passed when every mirrored exchange matched (unless a `match`/`mismatch`/`errors`
/// assertion judges that instead) and every assertion holds.
fn judge(report: &mut Report, assertions: &[Assertion], ledger: &Ledger, seen: u64, none: u64) {
    let pct = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 * 100.0 / whole as f64
        }
    };
    let array = |q: &Quantiles| {
        [
            q.p50_ms, q.p90_ms, q.p95_ms, q.p99_ms, q.p999_ms, q.max_ms, q.mean_ms,
        ]
    };
    let figures = assertion::Figures {
        total: report.total,
        matched: report.matched,
        mismatched: report.mismatched,
        errors: report.errors,
        server_errors: report.server_errors,
        replay_ms: array(&report.latency.replay),
        recorded_ms: array(&report.latency.recorded),
        recorded_server_errors_pct: pct(ledger.production_server_errors(), report.total),
        recorded_errors_pct: pct(none, seen),
        achieved_rps: report.rate.achieved_rps,
        asked_rps: report.rate.asked_rps,
    };
    report.assertions = assertions
        .iter()
        .map(|a| assertion::evaluate(a, &figures))
        .collect();
    let judged = |m: &[Metric]| assertions.iter().any(|a| m.contains(&a.metric));
    let matching_ok = judged(&[Metric::Match, Metric::Mismatch]) || report.mismatched == 0;
    let errors_ok = judged(&[Metric::Errors, Metric::Match]) || report.errors == 0;
    report.passed = matching_ok && errors_ok && report.assertions.iter().all(|v| v.pass);
}

impl MirrorReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The HTML page: `tapline replay`'s, titled as a mirror, with the mirror's figures.
    pub fn to_html(&self) -> String {
        let page = html::render(&self.report).replacen("tapline replay", "tapline mirror", 2);
        let m = &self.mirror;
        let skipped: Vec<String> = m.skipped.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let section = format!(
            "<h2>Mirror</h2><p>Production port {}: {} exchanges seen, {} mirrored ({:.2}% matched), \
             {} dropped (queue full {}, shadow down {}, stopped {}, capture tap full {}), {} skipped{}; \
             {} dependency calls seen. Queue {}, {} in flight at most, timeout {} ms. \
             In the tables, <em>recorded</em> is production and <em>replay</em> is the shadow.</p>",
            m.port,
            m.seen,
            m.mirrored,
            m.matched_pct,
            m.dropped_total,
            m.dropped.queue_full,
            m.dropped.shadow_down,
            m.dropped.stopped,
            m.dropped.tap_full,
            m.skipped.values().sum::<u64>(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!(" ({})", html::escape(&skipped.join(", ")))
            },
            m.outbound,
            m.queue,
            m.max_in_flight,
            m.timeout_ms
        );
        match page.find("<h2>") {
            Some(at) => {
                let mut out = page;
                out.insert_str(at, &section);
                out
            }
            None => page + &section,
        }
    }

    /// JUnit XML: `tapline replay`'s, named as a mirror.
    pub fn to_junit(&self) -> String {
        junit::render(&self.report).replace("tapline replay", "tapline mirror")
    }

    /// Writes `report.json` and `report.html` into `dir` (when given) and the JUnit XML to
    /// `junit` (when given); returns the files written.
    ///
    /// # Errors
    /// [`MirrorError::Write`] naming the file that could not be written.
    pub fn write(
        &self,
        dir: Option<&Path>,
        junit: Option<&Path>,
    ) -> Result<Vec<PathBuf>, MirrorError> {
        let mut written = Vec::new();
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir).map_err(|source| MirrorError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
            for (name, text) in [
                ("report.json", self.to_json()),
                ("report.html", self.to_html()),
            ] {
                let path = dir.join(name);
                write_file(&path, &text)?;
                written.push(path);
            }
        }
        if let Some(path) = junit {
            write_file(path, &self.to_junit())?;
            written.push(path.to_path_buf());
        }
        Ok(written)
    }

    /// The summary for the terminal.
    pub fn text(&self) -> String {
        let (r, m) = (&self.report, &self.mirror);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "mirror of {} → {}: {:.1}s",
            r.snapshot, r.target, r.duration_s
        );
        let _ = writeln!(
            out,
            "  seen {}  mirrored {}  matched {} ({:.2}%)  differed {}  errors {}  dropped {}  skipped {}",
            m.seen,
            m.mirrored,
            r.matched,
            m.matched_pct,
            r.mismatched,
            r.errors,
            m.dropped_total,
            m.skipped.values().sum::<u64>()
        );
        if m.dropped_total > 0 {
            let d = &m.dropped;
            let _ = writeln!(
                out,
                "  dropped: {} queue full, {} shadow down, {} stopped, {} capture tap full",
                d.queue_full, d.shadow_down, d.stopped, d.tap_full
            );
        }
        if !m.skipped.is_empty() {
            let list: Vec<String> = m.skipped.iter().map(|(k, n)| format!("{n} {k}")).collect();
            let _ = writeln!(out, "  skipped: {}", list.join(", "));
        }
        let (p, s) = (&r.latency.recorded, &r.latency.replay);
        let _ = writeln!(
            out,
            "  latency      p50       p90       p99       max\n  production {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>8.2}ms\n  shadow     {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>8.2}ms",
            p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
        );
        if !r.endpoints.is_empty() {
            let _ = writeln!(
                out,
                "  {:<32} {:>8} {:>8} {:>8} {:>7} {:>10} {:>10}",
                "ENDPOINT", "MIRRORED", "MATCHED", "DIFFERED", "ERRORS", "P99 PROD", "P99 SHADOW"
            );
            for e in r.endpoints.iter().take(SHOWN_ENDPOINTS) {
                let _ = writeln!(
                    out,
                    "  {:<32} {:>8} {:>8} {:>8} {:>7} {:>8.2}ms {:>8.2}ms",
                    e.endpoint,
                    e.total,
                    e.matched,
                    e.mismatched,
                    e.errors,
                    e.latency.recorded.p99_ms,
                    e.latency.replay.p99_ms
                );
            }
        }
        for mm in r.mismatches.iter().take(SHOWN_MISMATCHES) {
            let _ = writeln!(
                out,
                "  differed ×{}: {} {} (production {}, shadow {})",
                mm.count, mm.method, mm.target, mm.expected_status, mm.actual_status
            );
            for d in mm.diffs.iter().take(SHOWN_DIFFS) {
                let _ = writeln!(out, "    {}", d.line());
            }
        }
        for e in r.error_details.iter().take(SHOWN_MISMATCHES) {
            let _ = writeln!(
                out,
                "  error ×{}: {} {}: {}",
                e.count, e.method, e.target, e.error
            );
        }
        for v in &r.assertions {
            let _ = writeln!(
                out,
                "  assert {}: {} (measured {:.2}{}, baseline {:.2}{})",
                v.assertion,
                if v.pass { "pass" } else { "FAIL" },
                v.measured,
                v.unit,
                v.baseline,
                v.unit
            );
        }
        let _ = match r.failure() {
            None => writeln!(out, "mirror: PASS, {} of {} matched", r.matched, r.total),
            Some(why) => writeln!(out, "mirror: FAIL ({why})"),
        };
        out
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), MirrorError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| MirrorError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| MirrorError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;
