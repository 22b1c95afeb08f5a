//! The replay report: built once from the plan, the tally and the assertions, then written as
//! a terminal summary ([`text`]), `report.json` (serde), a self-contained `report.html`
//! ([`html`]) and JUnit XML ([`junit`]).

pub mod html;
pub mod junit;
pub mod text;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::assertion::{self, Assertion, Metric, Verdict};
use crate::diff::Difference;
use crate::plan::Plan;
use crate::rules::{HOP_BY_HOP, IgnoreRule, VOLATILE};
use crate::schedule::{Rate, rate};
use crate::stats::{Figures, Tally, quantile_ns};
use crate::units::ms;

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Quantiles {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Quantiles {
    fn of(h: &hdrhistogram::Histogram<u64>, max_ns: u64) -> Self {
        let q = |x| ms(quantile_ns(h, x));
        Quantiles {
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: ms(max_ns),
            mean_ms: if h.is_empty() {
                0.0
            } else {
                (h.mean() * 1e3).round() / 1e6
            },
        }
    }

    fn array(&self) -> [f64; 7] {
        [
            self.p50_ms,
            self.p90_ms,
            self.p95_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
            self.mean_ms,
        ]
    }
}

/// Replay latency beside the recorded one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Measured from each request's intended send time to the last byte of its response.
    pub replay: Quantiles,
    /// As recorded: first request byte to last response byte.
    pub recorded: Quantiles,
}

/// The asked and achieved rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateReport {
    /// As asked: `100%`, `1000%`, `max`.
    pub asked: String,
    /// Requests per second asked (the recorded rate times the factor; the recorded rate for `max`).
    pub asked_rps: f64,
    /// Requests per second achieved.
    pub achieved_rps: f64,
    /// Closed-loop connections (`max` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<usize>,
    /// 99th percentile of how late requests were sent against their intended time, ms.
    pub send_lag_p99_ms: f64,
}

/// Figures of one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointReport {
    /// `GET /api/users/{id}`.
    pub endpoint: String,
    /// Requests sent.
    pub total: u64,
    /// Matched.
    pub matched: u64,
    /// Mismatched.
    pub mismatched: u64,
    /// Without a valid response.
    pub errors: u64,
    /// With a 5xx status.
    pub server_errors: u64,
    /// Latency.
    pub latency: Latency,
    /// The noise found in the recording and ignored.
    pub noise: Vec<String>,
}

/// A request whose response differed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MismatchReport {
    /// The pair id (as `inspect` shows it).
    pub id: String,
    /// Method.
    pub method: String,
    /// Target.
    pub target: String,
    /// Endpoint.
    pub endpoint: String,
    /// Times it mismatched.
    pub count: u64,
    /// Recorded status.
    pub expected_status: u16,
    /// Status now.
    pub actual_status: u16,
    /// How many differences there were (more than listed when capped).
    pub differences_total: usize,
    /// The differences.
    pub diffs: Vec<Difference>,
}

/// A request without a valid response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorReport {
    /// The pair id.
    pub id: String,
    /// Method.
    pub method: String,
    /// Target.
    pub target: String,
    /// Times it failed.
    pub count: u64,
    /// What happened.
    pub error: String,
}

/// What was ignored and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseReport {
    /// Headers never compared.
    pub default_headers: Vec<&'static str>,
    /// The user's rules.
    pub rules: Vec<String>,
    /// Noise found in the recording, by endpoint.
    pub detected: BTreeMap<String, Vec<String>>,
}

/// The whole report (`report.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Whether every request matched (unless a `match`/`mismatch`/`errors` assertion judges
    /// that instead) and every assertion holds.
    pub passed: bool,
    /// Version of tapline.
    pub tapline_version: &'static str,
    /// The snapshot.
    pub snapshot: String,
    /// The target URL.
    pub target: String,
    /// When the replay started (RFC 3339).
    pub started: String,
    /// How long it ran, seconds.
    pub duration_s: f64,
    /// Requests sent.
    pub total: u64,
    /// Matched.
    pub matched: u64,
    /// Mismatched.
    pub mismatched: u64,
    /// Without a valid response.
    pub errors: u64,
    /// Responses with a 5xx status.
    pub server_errors: u64,
    /// Pairs not replayed, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Rate.
    pub rate: RateReport,
    /// Latency.
    pub latency: Latency,
    /// Statuses received.
    pub statuses: BTreeMap<String, u64>,
    /// Per endpoint.
    pub endpoints: Vec<EndpointReport>,
    /// Ignored noise.
    pub noise: NoiseReport,
    /// Assertions with verdict, baseline and measured value.
    pub assertions: Vec<Verdict>,
    /// Mismatched requests with their differences.
    pub mismatches: Vec<MismatchReport>,
    /// Requests without a valid response.
    pub error_details: Vec<ErrorReport>,
}

/// The facts of a run that the plan and tally do not hold.
#[derive(Debug, Clone)]
pub struct RunFacts<'a> {
    /// The snapshot directory.
    pub snapshot: &'a str,
    /// The target URL.
    pub target: &'a str,
    /// Start time, RFC 3339.
    pub started: String,
    /// Wall time, seconds.
    pub duration_s: f64,
    /// The rate asked.
    pub rate: Rate,
    /// Closed-loop connections.
    pub connections: usize,
    /// The user's ignore rules.
    pub rules: &'a [IgnoreRule],
    /// The assertions.
    pub assertions: &'a [Assertion],
}

impl Report {
    /// Builds the report.
    pub fn build(plan: &Plan, tally: &Tally, facts: &RunFacts<'_>) -> Report {
        let all = &tally.all;
        let latency = latency(all);
        let achieved = tally.sent.map_or(0.0, |(a, b)| rate(all.total, a, b));
        let asked_rps = match facts.rate {
            Rate::Factor(_) => tally.intended.map_or(0.0, |(a, b)| rate(all.total, a, b)),
            Rate::Max => {
                let last = plan.requests.last().map_or(0, |r| r.offset_ns);
                rate(plan.requests.len() as u64, 0, last)
            }
        };
        let figures = assertion::Figures {
            total: all.total,
            matched: all.matched,
            mismatched: all.mismatched,
            errors: all.errors,
            server_errors: all.server_errors,
            replay_ms: latency.replay.array(),
            recorded_ms: latency.recorded.array(),
            recorded_server_errors_pct: pct(
                plan.requests
                    .iter()
                    .filter(|r| r.expected.status >= 500)
                    .count() as u64,
                plan.requests.len() as u64,
            ),
            recorded_errors_pct: pct(plan.recorded_without_response, plan.chosen),
            achieved_rps: achieved,
            asked_rps,
        };
        let verdicts: Vec<Verdict> = facts
            .assertions
            .iter()
            .map(|a| assertion::evaluate(a, &figures))
            .collect();
        let judged = |m: &[Metric]| facts.assertions.iter().any(|a| m.contains(&a.metric));
        let matching_ok = judged(&[Metric::Match, Metric::Mismatch]) || all.mismatched == 0;
        let errors_ok = judged(&[Metric::Errors, Metric::Match]) || all.errors == 0;
        let passed = matching_ok && errors_ok && verdicts.iter().all(|v| v.pass);
        let name = |i: u32| {
            plan.endpoints
                .get(i as usize)
                .map_or_else(String::new, |e| e.key.clone())
        };
        Report {
            passed,
            tapline_version: env!("CARGO_PKG_VERSION"),
            snapshot: facts.snapshot.to_owned(),
            target: facts.target.to_owned(),
            started: facts.started.clone(),
            duration_s: (facts.duration_s * 1e3).round() / 1e3,
            total: all.total,
            matched: all.matched,
            mismatched: all.mismatched,
            errors: all.errors,
            server_errors: all.server_errors,
            skipped: plan
                .skipped
                .iter()
                .map(|(r, n)| ((*r).to_owned(), *n))
                .collect(),
            rate: RateReport {
                asked: facts.rate.label(),
                asked_rps: round2(asked_rps),
                achieved_rps: round2(achieved),
                connections: (facts.rate == Rate::Max).then_some(facts.connections),
                send_lag_p99_ms: ms(quantile_ns(&tally.send_lag, 0.99)),
            },
            latency,
            statuses: tally
                .statuses
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            endpoints: tally
                .endpoints
                .iter()
                .map(|(&i, f)| EndpointReport {
                    endpoint: name(i),
                    total: f.total,
                    matched: f.matched,
                    mismatched: f.mismatched,
                    errors: f.errors,
                    server_errors: f.server_errors,
                    latency: latency_of(f),
                    noise: plan
                        .endpoints
                        .get(i as usize)
                        .map(|e| e.noise.iter().map(ToString::to_string).collect())
                        .unwrap_or_default(),
                })
                .collect(),
            noise: NoiseReport {
                default_headers: HOP_BY_HOP.iter().chain(VOLATILE).copied().collect(),
                rules: facts.rules.iter().map(ToString::to_string).collect(),
                detected: plan
                    .endpoints
                    .iter()
                    .filter(|e| !e.noise.is_empty())
                    .map(|e| {
                        (
                            e.key.clone(),
                            e.noise.iter().map(ToString::to_string).collect(),
                        )
                    })
                    .collect(),
            },
            assertions: verdicts,
            mismatches: tally
                .mismatches
                .iter()
                .filter_map(|(&i, d)| {
                    let r = plan.requests.get(i as usize)?;
                    Some(MismatchReport {
                        id: format!("{:016x}", r.id),
                        method: r.method.clone(),
                        target: r.target.clone(),
                        endpoint: name(r.endpoint),
                        count: d.count,
                        expected_status: r.expected.status,
                        actual_status: d.status,
                        differences_total: d.total,
                        diffs: d.diffs.clone(),
                    })
                })
                .collect(),
            error_details: tally
                .errors
                .iter()
                .filter_map(|(&i, d)| {
                    let r = plan.requests.get(i as usize)?;
                    Some(ErrorReport {
                        id: format!("{:016x}", r.id),
                        method: r.method.clone(),
                        target: r.target.clone(),
                        count: d.count,
                        error: d.message.clone(),
                    })
                })
                .collect(),
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A one-line reason for a failed run, or `None` when it passed.
    pub fn failure(&self) -> Option<String> {
        if self.passed {
            return None;
        }
        let mut why = Vec::new();
        if self.mismatched > 0 {
            why.push(format!("{} mismatched", self.mismatched));
        }
        if self.errors > 0 {
            why.push(format!("{} errors", self.errors));
        }
        let failed: Vec<&str> = self
            .assertions
            .iter()
            .filter(|v| !v.pass)
            .map(|v| v.assertion.as_str())
            .collect();
        if !failed.is_empty() {
            why.push(format!("assertion failed: {}", failed.join(", ")));
        }
        Some(why.join("; "))
    }
}

fn latency(f: &Figures) -> Latency {
    latency_of(f)
}

fn latency_of(f: &Figures) -> Latency {
    Latency {
        replay: Quantiles::of(&f.replay, f.replay_max_ns),
        recorded: Quantiles::of(&f.recorded, f.recorded_max_ns),
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests;
