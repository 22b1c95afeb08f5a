//! JUnit XML for CI: one test case per endpoint (failed when a response differed, in error when
//! a request got no valid response) and one per assertion.

use std::fmt::Write as _;

use super::Report;

/// Mismatches listed in one endpoint's failure text.
const LISTED: usize = 50;

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            _ => out.push(c),
        }
    }
    out
}

/// The XML document.
pub fn render(r: &Report) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    let mut errors = 0;
    for e in &r.endpoints {
        let time = e.latency.replay.mean_ms * e.total as f64 / 1e3;
        let _ = write!(
            cases,
            "    <testcase classname=\"tapline.replay.endpoints\" name=\"{}\" time=\"{time:.3}\">",
            escape(&e.endpoint)
        );
        if e.mismatched > 0 {
            failures += 1;
            let mut text = String::new();
            let listed = r.mismatches.iter().filter(|m| m.endpoint == e.endpoint);
            for m in listed.clone().take(LISTED) {
                let _ = writeln!(text, "{} {} (pair {}):", m.method, m.target, m.id);
                for d in &m.diffs {
                    let _ = writeln!(text, "  {}", d.line());
                }
            }
            if listed.count() > LISTED {
                let _ = writeln!(text, "… (see report.json)");
            }
            let _ = write!(
                cases,
                "\n      <failure type=\"mismatch\" message=\"{} of {} responses differ from the recording\">{}</failure>",
                e.mismatched,
                e.total,
                escape(&text)
            );
        }
        if e.errors > 0 {
            errors += 1;
            let text: Vec<String> = r
                .error_details
                .iter()
                .filter(|x| {
                    crate::endpoint::endpoint_key(&x.method, x.target.as_bytes()) == e.endpoint
                })
                .take(LISTED)
                .map(|x| format!("{} {} (pair {}): {}", x.method, x.target, x.id, x.error))
                .collect();
            let _ = write!(
                cases,
                "\n      <error type=\"no response\" message=\"{} of {} requests got no valid response\">{}</error>",
                e.errors,
                e.total,
                escape(&text.join("\n"))
            );
        }
        cases.push_str("</testcase>\n");
    }
    for v in &r.assertions {
        let _ = write!(
            cases,
            "    <testcase classname=\"tapline.replay.assertions\" name=\"{}\" time=\"0\">",
            escape(&v.assertion)
        );
        let text = format!(
            "measured {} {u}, baseline {} {u}, threshold {} {u}",
            v.measured,
            v.baseline,
            v.threshold,
            u = v.unit
        );
        if v.pass {
            let _ = write!(cases, "<system-out>{}</system-out>", escape(&text));
        } else {
            failures += 1;
            let _ = write!(
                cases,
                "\n      <failure type=\"assertion\" message=\"{}\"/>",
                escape(&text)
            );
        }
        cases.push_str("</testcase>\n");
    }
    let tests = r.endpoints.len() + r.assertions.len();
    let name = format!("tapline replay {} → {}", r.snapshot, r.target);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"tapline replay\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">",
        r.duration_s
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\" timestamp=\"{}\">",
        escape(&name),
        r.duration_s,
        escape(&r.started)
    );
    out.push_str(&cases);
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
