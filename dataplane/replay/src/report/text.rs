//! The terminal summary: totals, rate, latency beside the recorded one, a per-endpoint table,
//! the first differences, the assertions and the verdict.

use std::fmt::Write as _;

use super::{Quantiles, Report};

/// Mismatched requests shown in the summary.
const SHOWN_MISMATCHES: usize = 5;
/// Differences shown per request.
const SHOWN_DIFFS: usize = 6;
/// Endpoints shown in the table.
const SHOWN_ENDPOINTS: usize = 30;

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.1}ms")
    } else {
        format!("{v:.2}ms")
    }
}

/// Aligns rows of cells into text, right-aligning the columns listed in `right`.
fn table(rows: &[Vec<String>], right: &[usize], indent: &str) -> String {
    let mut widths = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(x) if *x < w => *x = w,
                Some(_) => {}
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(indent);
        for (i, cell) in row.iter().enumerate() {
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(cell.chars().count());
            if right.contains(&i) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn latency_row(name: &str, q: &Quantiles) -> Vec<String> {
    vec![
        name.into(),
        ms(q.p50_ms),
        ms(q.p90_ms),
        ms(q.p99_ms),
        ms(q.max_ms),
    ]
}

/// The summary as text.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replay of {} → {}: {} requests in {:.2}s",
        r.snapshot, r.target, r.total, r.duration_s
    );
    let rate = &r.rate;
    match rate.connections {
        Some(n) => {
            let _ = writeln!(
                out,
                "  rate max ({n} connections): achieved {:.1} req/s (recorded rate {:.1} req/s)",
                rate.achieved_rps, rate.asked_rps
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  rate {}: asked {:.1} req/s, achieved {:.1} req/s (send lag p99 {})",
                rate.asked,
                rate.asked_rps,
                rate.achieved_rps,
                ms(rate.send_lag_p99_ms)
            );
        }
    }
    let _ = write!(
        out,
        "  total {}  matched {}  mismatched {}  errors {}",
        r.total, r.matched, r.mismatched, r.errors
    );
    let skipped: u64 = r.skipped.values().sum();
    if skipped > 0 {
        let reasons: Vec<String> = r.skipped.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = write!(out, "  skipped {skipped} ({})", reasons.join(", "));
    }
    out.push_str("\n\n");
    out.push_str(&table(
        &[
            vec![
                "latency".into(),
                "p50".into(),
                "p90".into(),
                "p99".into(),
                "max".into(),
            ],
            latency_row("replay", &r.latency.replay),
            latency_row("recorded", &r.latency.recorded),
        ],
        &[1, 2, 3, 4],
        "  ",
    ));
    out.push('\n');
    let mut rows = vec![
        [
            "ENDPOINT",
            "TOTAL",
            "MATCHED",
            "MISMATCHED",
            "ERRORS",
            "P50",
            "P99",
            "P99 RECORDED",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for e in r.endpoints.iter().take(SHOWN_ENDPOINTS) {
        rows.push(vec![
            e.endpoint.clone(),
            e.total.to_string(),
            e.matched.to_string(),
            e.mismatched.to_string(),
            e.errors.to_string(),
            ms(e.latency.replay.p50_ms),
            ms(e.latency.replay.p99_ms),
            ms(e.latency.recorded.p99_ms),
        ]);
    }
    out.push_str(&table(&rows, &[1, 2, 3, 4, 5, 6, 7], "  "));
    if r.endpoints.len() > SHOWN_ENDPOINTS {
        let _ = writeln!(
            out,
            "  … and {} more endpoints (see report.json)",
            r.endpoints.len() - SHOWN_ENDPOINTS
        );
    }
    if !r.noise.detected.is_empty() || !r.noise.rules.is_empty() {
        out.push('\n');
        if !r.noise.rules.is_empty() {
            let _ = writeln!(out, "  ignored by rule: {}", r.noise.rules.join(", "));
        }
        for (endpoint, rules) in &r.noise.detected {
            let _ = writeln!(
                out,
                "  noise in the recording, ignored: {endpoint}: {}",
                rules.join(", ")
            );
        }
    }
    if !r.mismatches.is_empty() {
        let _ = writeln!(
            out,
            "\n  first differences ({} requests differ):",
            r.mismatches.len()
        );
        for m in r.mismatches.iter().take(SHOWN_MISMATCHES) {
            let _ = writeln!(out, "    {} {} (pair {}):", m.method, m.target, m.id);
            for d in m.diffs.iter().take(SHOWN_DIFFS) {
                let _ = writeln!(out, "      {}", d.line());
            }
            if m.differences_total > SHOWN_DIFFS.min(m.diffs.len()) {
                let _ = writeln!(out, "      … {} differences in all", m.differences_total);
            }
        }
        if r.mismatches.len() > SHOWN_MISMATCHES {
            let _ = writeln!(
                out,
                "    … and {} more",
                r.mismatches.len() - SHOWN_MISMATCHES
            );
        }
    }
    if !r.error_details.is_empty() {
        let _ = writeln!(out, "\n  errors ({} requests):", r.error_details.len());
        for e in r.error_details.iter().take(SHOWN_MISMATCHES) {
            let _ = writeln!(
                out,
                "    {} {} (pair {}): {}",
                e.method, e.target, e.id, e.error
            );
        }
    }
    if !r.assertions.is_empty() {
        let _ = writeln!(out, "\n  assertions:");
        for v in &r.assertions {
            let _ = writeln!(
                out,
                "    {} {}: measured {} {u}, baseline {} {u}, threshold {} {u}",
                if v.pass { "PASS" } else { "FAIL" },
                v.assertion,
                v.measured,
                v.baseline,
                v.threshold,
                u = v.unit
            );
        }
    }
    match r.failure() {
        None => out.push_str("\nresult: PASS\n"),
        Some(why) => {
            let _ = writeln!(out, "\nresult: FAIL ({why})");
        }
    }
    out
}
