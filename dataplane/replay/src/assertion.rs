//! Assertions against the snapshot's own figures: `--assert 'p99<=1.1x,errors<=0.5%,match>=99%'`.
//!
//! ```text
//! list      := assertion ("," assertion)*
//! assertion := METRIC OP VALUE
//! METRIC    := p50 | p90 | p95 | p99 | p999 | max | mean      latency of each request
//!            | errors | 5xx | match | mismatch                 share (or count) of requests
//!            | rate                                            achieved requests per second
//! OP        := <= | < | >= | > | ==
//! VALUE     := NUMBER "x"          relative to the baseline (the snapshot's recorded figure;
//!                                  for rate, the asked rate)
//!            | NUMBER UNIT         a latency: ns, us, ms, s (latency metrics only)
//!            | NUMBER "%"          a share of the requests (for rate: of the asked rate)
//!            | NUMBER              a count of requests, or requests per second for rate
//! ```
//! Baselines: recorded latency of the same requests; recorded share of 5xx and of requests
//! without a response; 100% matched; the asked rate.

use std::fmt;

use crate::units::parse_duration;

/// An assertion that does not parse; names the offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--assert {expr:?}: {reason} in {token:?}")]
pub struct AssertionError {
    /// The whole expression given.
    pub expr: String,
    /// The token at fault (the metric, operator or value; or the whole assertion).
    pub token: String,
    /// What was expected.
    pub reason: String,
}

/// A latency statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// A quantile, in thousandths (500 = p50, 999 = p99.9).
    Quantile(u16),
    /// The slowest request.
    Max,
    /// The mean.
    Mean,
}

/// What an assertion measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Latency of requests.
    Latency(Latency),
    /// Requests that got no valid response (refused, reset, timed out, malformed).
    Errors,
    /// Responses with a 5xx status.
    ServerErrors,
    /// Requests whose response matched the recorded one.
    Match,
    /// Requests whose response differed.
    Mismatch,
    /// Achieved requests per second.
    Rate,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<=`
    Le,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `==`
    Eq,
}

impl Op {
    /// Whether `measured OP threshold` holds.
    pub fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Op::Le => measured <= threshold,
            Op::Lt => measured < threshold,
            Op::Ge => measured >= threshold,
            Op::Gt => measured > threshold,
            Op::Eq => (measured - threshold).abs() <= 1e-9 * threshold.abs().max(1.0),
        }
    }

    fn text(self) -> &'static str {
        match self {
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Eq => "==",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// The right-hand side of an assertion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// `1.1x`: times the baseline.
    Relative(f64),
    /// `150ms`, in milliseconds.
    Millis(f64),
    /// `0.5%`.
    Percent(f64),
    /// `3`: a count, or requests per second.
    Number(f64),
}

/// One parsed assertion.
#[derive(Debug, Clone, PartialEq)]
pub struct Assertion {
    /// The assertion as written (trimmed).
    pub text: String,
    /// What it measures.
    pub metric: Metric,
    /// How it compares.
    pub op: Op,
    /// The bound.
    pub value: Value,
}

/// Parses a comma-joined list of assertions.
///
/// # Errors
/// [`AssertionError`] naming the first token that does not fit.
pub fn parse_assertions(expr: &str) -> Result<Vec<Assertion>, AssertionError> {
    let fail = |token: &str, reason: &str| AssertionError {
        expr: expr.to_owned(),
        token: token.to_owned(),
        reason: reason.to_owned(),
    };
    let mut out = Vec::new();
    for part in expr.split(',') {
        let text = part.trim();
        if text.is_empty() {
            return Err(fail(part, "empty assertion"));
        }
        let op_at = text
            .find(['<', '>', '='])
            .ok_or_else(|| fail(text, "expected METRIC OP VALUE, e.g. p99<=1.1x"))?;
        let (name, rest) = text.split_at(op_at);
        let (op, value) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(t, op)| rest.strip_prefix(t).map(|v| (*op, v)))
        .ok_or_else(|| {
            let token: String = rest.chars().take_while(|c| "<>=!".contains(*c)).collect();
            fail(&token, "unknown operator: expected <=, <, >=, > or ==")
        })?;
        let name = name.trim();
        let metric = metric(name).ok_or_else(|| {
            fail(name, "unknown metric: expected p50, p90, p95, p99, p999, max, mean, errors, 5xx, match, mismatch or rate")
        })?;
        let value_text = value.trim();
        let value = parse_value(metric, value_text).map_err(|reason| fail(value_text, &reason))?;
        out.push(Assertion {
            text: text.to_owned(),
            metric,
            op,
            value,
        });
    }
    Ok(out)
}

fn metric(name: &str) -> Option<Metric> {
    Some(match name.to_ascii_lowercase().as_str() {
        "p50" => Metric::Latency(Latency::Quantile(500)),
        "p90" => Metric::Latency(Latency::Quantile(900)),
        "p95" => Metric::Latency(Latency::Quantile(950)),
        "p99" => Metric::Latency(Latency::Quantile(990)),
        "p999" | "p99.9" => Metric::Latency(Latency::Quantile(999)),
        "max" => Metric::Latency(Latency::Max),
        "mean" => Metric::Latency(Latency::Mean),
        "errors" | "error" => Metric::Errors,
        "5xx" => Metric::ServerErrors,
        "match" | "matched" => Metric::Match,
        "mismatch" | "mismatched" => Metric::Mismatch,
        "rate" => Metric::Rate,
        _ => return None,
    })
}

fn number(text: &str) -> Result<f64, String> {
    let ok = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
        && text.chars().filter(|&c| c == '.').count() <= 1
        && text != ".";
    let n: f64 = if ok {
        text.parse().map_err(|_| String::new())?
    } else {
        f64::NAN
    };
    if n.is_finite() {
        Ok(n)
    } else {
        Err(format!("{text:?} is not a number"))
    }
}

fn parse_value(metric: Metric, text: &str) -> Result<Value, String> {
    if text.is_empty() {
        return Err("missing value".into());
    }
    let value = if let Some(n) = text.strip_suffix(['x', 'X']) {
        Value::Relative(number(n)?)
    } else if let Some(n) = text.strip_suffix('%') {
        Value::Percent(number(n)?)
    } else if text.ends_with(|c: char| c.is_ascii_alphabetic() || c == 'µ') {
        let d = parse_duration(text)?;
        Value::Millis(d.as_secs_f64() * 1e3)
    } else {
        Value::Number(number(text)?)
    };
    let fits = match (metric, value) {
        (_, Value::Relative(_)) => true,
        (Metric::Latency(_), Value::Millis(_)) => true,
        (Metric::Latency(_), _) => {
            return Err("a latency bound needs a unit (150ms) or a factor (1.1x)".into());
        }
        (_, Value::Millis(_)) => false,
        (_, Value::Percent(p)) => {
            if p > 100.0 && metric != Metric::Rate {
                return Err("a share cannot pass 100%".into());
            }
            true
        }
        (_, Value::Number(_)) => true,
    };
    if fits {
        Ok(value)
    } else {
        Err(
            "a duration only bounds a latency metric; use a share (0.5%), a count or a factor"
                .into(),
        )
    }
}

/// The figures an assertion is judged against: what the replay measured and what the snapshot
/// recorded for the same requests. Latencies in milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Requests sent (matched + mismatched + errors).
    pub total: u64,
    /// Responses that matched.
    pub matched: u64,
    /// Responses that differed.
    pub mismatched: u64,
    /// Requests without a valid response.
    pub errors: u64,
    /// Responses with a 5xx status.
    pub server_errors: u64,
    /// Replay latency: p50, p90, p95, p99, p99.9, max, mean (ms).
    pub replay_ms: [f64; 7],
    /// Recorded latency of the same requests, same order (ms).
    pub recorded_ms: [f64; 7],
    /// Share of the recorded requests with a 5xx response, in percent.
    pub recorded_server_errors_pct: f64,
    /// Share of the recorded requests without a response, in percent.
    pub recorded_errors_pct: f64,
    /// Achieved requests per second.
    pub achieved_rps: f64,
    /// Asked requests per second (the recorded rate when the asked one is `max`).
    pub asked_rps: f64,
}

/// An assertion's verdict with the numbers behind it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verdict {
    /// The assertion as written.
    pub assertion: String,
    /// Whether it holds.
    pub pass: bool,
    /// The measured value, in `unit`.
    pub measured: f64,
    /// The baseline, in `unit` (recorded figure, or the asked rate for `rate`).
    pub baseline: f64,
    /// The bound the measured value was compared with, in `unit`.
    pub threshold: f64,
    /// `ms`, `%`, `requests` or `req/s`.
    pub unit: &'static str,
}

const LATENCY_SLOTS: [(Latency, usize); 7] = [
    (Latency::Quantile(500), 0),
    (Latency::Quantile(900), 1),
    (Latency::Quantile(950), 2),
    (Latency::Quantile(990), 3),
    (Latency::Quantile(999), 4),
    (Latency::Max, 5),
    (Latency::Mean, 6),
];

/// Judges one assertion.
pub fn evaluate(a: &Assertion, f: &Figures) -> Verdict {
    let pct = |n: u64| {
        if f.total == 0 {
            0.0
        } else {
            n as f64 * 100.0 / f.total as f64
        }
    };
    let count = |n: u64, baseline_pct: f64| (n as f64, baseline_pct * f.total as f64 / 100.0);
    // (measured, baseline) in the unit the value is written in.
    let (unit, measured, baseline) = match (a.metric, a.value) {
        (Metric::Latency(l), _) => {
            let slot = LATENCY_SLOTS
                .iter()
                .find(|(x, _)| *x == l)
                .map_or(0, |(_, s)| *s);
            ("ms", f.replay_ms[slot], f.recorded_ms[slot])
        }
        (Metric::Rate, Value::Percent(_)) => ("%", pct_of(f.achieved_rps, f.asked_rps), 100.0),
        (Metric::Rate, _) => ("req/s", f.achieved_rps, f.asked_rps),
        (metric, Value::Number(_)) => {
            let (m, b) = match metric {
                Metric::Errors => count(f.errors, f.recorded_errors_pct),
                Metric::ServerErrors => count(f.server_errors, f.recorded_server_errors_pct),
                Metric::Match => (f.matched as f64, f.total as f64),
                _ => (f.mismatched as f64, 0.0),
            };
            ("requests", m, b)
        }
        (metric, _) => {
            let (m, b) = match metric {
                Metric::Errors => (pct(f.errors), f.recorded_errors_pct),
                Metric::ServerErrors => (pct(f.server_errors), f.recorded_server_errors_pct),
                Metric::Match => (pct(f.matched), 100.0),
                _ => (pct(f.mismatched), 0.0),
            };
            ("%", m, b)
        }
    };
    let threshold = match a.value {
        Value::Relative(k) => k * baseline,
        Value::Millis(v) | Value::Percent(v) | Value::Number(v) => v,
    };
    Verdict {
        assertion: a.text.clone(),
        pass: a.op.holds(measured, threshold),
        measured: round(measured),
        baseline: round(baseline),
        threshold: round(threshold),
        unit,
    }
}

fn pct_of(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part * 100.0 / whole
    } else {
        0.0
    }
}

fn round(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

#[cfg(test)]
mod tests;
