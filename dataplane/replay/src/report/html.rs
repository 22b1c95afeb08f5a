//! `report.html`: the report as one self-contained page (inline style, no script, no fetch) a
//! person can open from a CI artifact.

use std::fmt::Write as _;

use super::{Latency, Report};

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1b1f24}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #d0d7de}\
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .7em;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}code,pre{font:12px ui-monospace,monospace}\
pre{white-space:pre-wrap;word-break:break-all;margin:0}.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}\
.badge{display:inline-block;padding:.2em .8em;border-radius:1em;color:#fff}.badge.pass{background:#1a7f37}.badge.fail{background:#cf222e}\
details{margin:.4em 0;border:1px solid #d0d7de;border-radius:6px;padding:.3em .7em}summary{cursor:pointer}.muted{color:#57606a}";

fn cell(out: &mut String, text: &str, numeric: bool) {
    let _ = write!(
        out,
        "<td{}>{}</td>",
        if numeric { " class=n" } else { "" },
        escape(text)
    );
}

fn header(out: &mut String, titles: &[&str], numeric_from: usize) {
    out.push_str("<tr>");
    for (i, t) in titles.iter().enumerate() {
        let _ = write!(
            out,
            "<th{}>{}</th>",
            if i >= numeric_from { " class=n" } else { "" },
            escape(t)
        );
    }
    out.push_str("</tr>");
}

fn latency_table(out: &mut String, l: &Latency) {
    out.push_str("<table>");
    header(
        out,
        &["", "p50", "p90", "p95", "p99", "p99.9", "max", "mean"],
        1,
    );
    for (name, q) in [("replay", &l.replay), ("recorded", &l.recorded)] {
        out.push_str("<tr>");
        cell(out, name, false);
        for v in [
            q.p50_ms, q.p90_ms, q.p95_ms, q.p99_ms, q.p999_ms, q.max_ms, q.mean_ms,
        ] {
            cell(out, &format!("{v:.3} ms"), true);
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// The page.
pub fn render(r: &Report) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let verdict = if r.passed {
        ("pass", "PASS")
    } else {
        ("fail", "FAIL")
    };
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>tapline replay: {}</title><style>{STYLE}</style></head><body>",
        escape(&r.snapshot)
    );
    let _ = write!(
        out,
        "<h1>tapline replay <span class=\"badge {}\">{}</span></h1><p><code>{}</code> → <code>{}</code>, started {}, {:.2} s, tapline {}</p>",
        verdict.0,
        verdict.1,
        escape(&r.snapshot),
        escape(&r.target),
        escape(&r.started),
        r.duration_s,
        escape(r.tapline_version)
    );
    if let Some(why) = r.failure() {
        let _ = write!(out, "<p class=fail>{}</p>", escape(&why));
    }
    out.push_str("<h2>Summary</h2><table>");
    header(
        &mut out,
        &[
            "total",
            "matched",
            "mismatched",
            "errors",
            "5xx",
            "asked rate",
            "achieved rate",
        ],
        0,
    );
    out.push_str("<tr>");
    for v in [r.total, r.matched, r.mismatched, r.errors, r.server_errors] {
        cell(&mut out, &v.to_string(), true);
    }
    cell(
        &mut out,
        &format!("{} ({:.1} req/s)", r.rate.asked, r.rate.asked_rps),
        true,
    );
    cell(&mut out, &format!("{:.1} req/s", r.rate.achieved_rps), true);
    out.push_str("</tr></table>");
    if !r.skipped.is_empty() {
        let list: Vec<String> = r.skipped.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = write!(
            out,
            "<p class=muted>Not replayed: {}</p>",
            escape(&list.join(", "))
        );
    }
    out.push_str("<h2>Latency</h2>");
    latency_table(&mut out, &r.latency);
    if !r.assertions.is_empty() {
        out.push_str("<h2>Assertions</h2><table>");
        header(
            &mut out,
            &["verdict", "assertion", "measured", "baseline", "threshold"],
            2,
        );
        for v in &r.assertions {
            let _ = write!(
                out,
                "<tr><td class={}>{}</td>",
                if v.pass { "pass" } else { "fail" },
                if v.pass { "PASS" } else { "FAIL" }
            );
            cell(&mut out, &v.assertion, false);
            for x in [v.measured, v.baseline, v.threshold] {
                cell(&mut out, &format!("{x} {}", v.unit), true);
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");
    }
    out.push_str("<h2>Endpoints</h2><table>");
    header(
        &mut out,
        &[
            "endpoint",
            "total",
            "matched",
            "mismatched",
            "errors",
            "p50",
            "p99",
            "p99 recorded",
        ],
        1,
    );
    for e in &r.endpoints {
        out.push_str("<tr>");
        cell(&mut out, &e.endpoint, false);
        for v in [e.total, e.matched, e.mismatched, e.errors] {
            cell(&mut out, &v.to_string(), true);
        }
        for v in [
            e.latency.replay.p50_ms,
            e.latency.replay.p99_ms,
            e.latency.recorded.p99_ms,
        ] {
            cell(&mut out, &format!("{v:.3} ms"), true);
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    if !r.mismatches.is_empty() {
        let _ = write!(out, "<h2>Mismatches ({})</h2>", r.mismatches.len());
        for m in &r.mismatches {
            let _ = write!(
                out,
                "<details><summary><code>{} {}</code> — status {} → {}, {} difference(s){} <span class=muted>pair {}</span></summary><table>",
                escape(&m.method),
                escape(&m.target),
                m.expected_status,
                m.actual_status,
                m.differences_total,
                if m.count > 1 {
                    format!(", {} times", m.count)
                } else {
                    String::new()
                },
                escape(&m.id)
            );
            header(&mut out, &["where", "kind", "recorded", "now"], 9);
            for d in &m.diffs {
                let side = |v: &Option<serde_json::Value>| {
                    v.as_ref().map_or_else(String::new, |v| v.to_string())
                };
                let _ = write!(
                    out,
                    "<tr><td><code>{}</code></td><td>{}</td><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
                    escape(&d.location.to_string()),
                    escape(d.kind.word()),
                    escape(&side(&d.expected)),
                    escape(&side(&d.actual))
                );
                if let Some(detail) = &d.detail {
                    let _ = write!(
                        out,
                        "<tr><td></td><td colspan=3 class=muted>{}</td></tr>",
                        escape(detail)
                    );
                }
            }
            out.push_str("</table></details>");
        }
    }
    if !r.error_details.is_empty() {
        let _ = write!(out, "<h2>Errors ({})</h2><table>", r.error_details.len());
        header(&mut out, &["request", "pair", "times", "error"], 9);
        for e in &r.error_details {
            out.push_str("<tr>");
            cell(&mut out, &format!("{} {}", e.method, e.target), false);
            cell(&mut out, &e.id, false);
            cell(&mut out, &e.count.to_string(), false);
            cell(&mut out, &e.error, false);
            out.push_str("</tr>");
        }
        out.push_str("</table>");
    }
    out.push_str("<h2>Noise ignored</h2><ul>");
    let _ = write!(
        out,
        "<li>headers never compared: <code>{}</code></li>",
        escape(&r.noise.default_headers.join(", "))
    );
    if !r.noise.rules.is_empty() {
        let _ = write!(
            out,
            "<li>rules given: <code>{}</code></li>",
            escape(&r.noise.rules.join(", "))
        );
    }
    for (endpoint, rules) in &r.noise.detected {
        let _ = write!(
            out,
            "<li>found in the recording for <code>{}</code>: <code>{}</code></li>",
            escape(endpoint),
            escape(&rules.join(", "))
        );
    }
    out.push_str("</ul></body></html>\n");
    out
}
