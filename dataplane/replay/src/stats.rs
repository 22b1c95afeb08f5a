//! What a replay measured: each request's outcome and latency, gathered into totals, latency
//! histograms (HdrHistogram, microseconds) for the replay and the recorded baseline, per
//! endpoint, and the details of each mismatch and error.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::diff::Difference;

/// Most distinct requests whose mismatch or error details are kept (all are counted).
pub const MAX_DETAILS: usize = 10_000;
/// Lowest and highest latency tracked, in µs.
const LOWEST_US: u64 = 1;
const HIGHEST_US: u64 = 3_600_000_000;

/// How one request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The response matched the recorded one.
    Matched {
        /// Its status.
        status: u16,
    },
    /// The response differed.
    Mismatched {
        /// Its status.
        status: u16,
        /// The differences kept.
        diffs: Vec<Difference>,
        /// How many differences there were.
        total: usize,
    },
    /// No valid response.
    Error(String),
}

/// One request's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Index of the request in the plan.
    pub request: u32,
    /// Its endpoint.
    pub endpoint: u32,
    /// Its recorded latency, ns.
    pub recorded_ns: u64,
    /// When it was meant to be sent, ns from the start (the send time in closed loop).
    pub intended_ns: u64,
    /// When it was sent, ns from the start.
    pub sent_ns: u64,
    /// From the intended send time to the last byte of the response, ns.
    pub latency_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// A mismatch kept for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct MismatchDetail {
    /// Times this request mismatched (more than once when the snapshot loops).
    pub count: u64,
    /// The status the target gave.
    pub status: u16,
    /// The differences (of the first time).
    pub diffs: Vec<Difference>,
    /// How many differences there were.
    pub total: usize,
}

/// An error kept for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorDetail {
    /// Times this request failed.
    pub count: u64,
    /// What happened (the first time).
    pub message: String,
}

/// Counts and latency of a set of requests.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Requests sent.
    pub total: u64,
    /// Responses that matched.
    pub matched: u64,
    /// Responses that differed.
    pub mismatched: u64,
    /// Requests without a valid response.
    pub errors: u64,
    /// Responses with a 5xx status.
    pub server_errors: u64,
    /// Replay latency, µs.
    pub replay: Histogram<u64>,
    /// Recorded latency of the same requests, µs.
    pub recorded: Histogram<u64>,
    /// Slowest replayed request, ns (exact).
    pub replay_max_ns: u64,
    /// Slowest recorded request, ns (exact).
    pub recorded_max_ns: u64,
}

impl Figures {
    fn new(sigfig: u8) -> Self {
        let hist = || histogram(sigfig);
        Figures {
            total: 0,
            matched: 0,
            mismatched: 0,
            errors: 0,
            server_errors: 0,
            replay: hist(),
            recorded: hist(),
            replay_max_ns: 0,
            recorded_max_ns: 0,
        }
    }

    fn add(&mut self, s: &Sample) {
        self.total += 1;
        match &s.outcome {
            Outcome::Matched { status } => {
                self.matched += 1;
                self.server_errors += u64::from(*status >= 500);
            }
            Outcome::Mismatched { status, .. } => {
                self.mismatched += 1;
                self.server_errors += u64::from(*status >= 500);
            }
            Outcome::Error(_) => self.errors += 1,
        }
        self.replay.saturating_record(us(s.latency_ns));
        self.replay_max_ns = self.replay_max_ns.max(s.latency_ns);
        self.recorded_max_ns = self.recorded_max_ns.max(s.recorded_ns);
        self.recorded.saturating_record(us(s.recorded_ns));
    }
}

/// A latency histogram in µs with `sigfig` significant figures (2 or 3).
fn histogram(sigfig: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, sigfig)
        .expect("constant histogram bounds are valid")
}

fn us(ns: u64) -> u64 {
    (ns / 1_000).clamp(LOWEST_US, HIGHEST_US)
}

/// Everything measured in a replay.
#[derive(Debug, Clone)]
pub struct Tally {
    /// All requests.
    pub all: Figures,
    /// Per endpoint, by the plan's endpoint index.
    pub endpoints: BTreeMap<u32, Figures>,
    /// How late requests were sent against their intended time, µs.
    pub send_lag: Histogram<u64>,
    /// Statuses seen, with counts.
    pub statuses: BTreeMap<u16, u64>,
    /// Mismatch details by request index.
    pub mismatches: BTreeMap<u32, MismatchDetail>,
    /// Error details by request index.
    pub errors: BTreeMap<u32, ErrorDetail>,
    /// Earliest and latest intended send time, ns.
    pub intended: Option<(u64, u64)>,
    /// Earliest and latest actual send time, ns.
    pub sent: Option<(u64, u64)>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            all: Figures::new(3),
            endpoints: BTreeMap::new(),
            send_lag: histogram(2),
            statuses: BTreeMap::new(),
            mismatches: BTreeMap::new(),
            errors: BTreeMap::new(),
            intended: None,
            sent: None,
        }
    }
}

impl Tally {
    /// Adds one request's result.
    pub fn add(&mut self, s: Sample) {
        self.all.add(&s);
        self.endpoints
            .entry(s.endpoint)
            .or_insert_with(|| Figures::new(2))
            .add(&s);
        self.send_lag
            .saturating_record(us(s.sent_ns.saturating_sub(s.intended_ns)));
        let widen = |range: &mut Option<(u64, u64)>, t: u64| {
            *range = Some(range.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        };
        widen(&mut self.intended, s.intended_ns);
        widen(&mut self.sent, s.sent_ns);
        let room = self.mismatches.len() + self.errors.len() < MAX_DETAILS;
        match s.outcome {
            Outcome::Matched { status } => *self.statuses.entry(status).or_default() += 1,
            Outcome::Mismatched {
                status,
                diffs,
                total,
            } => {
                *self.statuses.entry(status).or_default() += 1;
                if let Some(d) = self.mismatches.get_mut(&s.request) {
                    d.count += 1;
                } else if room {
                    self.mismatches.insert(
                        s.request,
                        MismatchDetail {
                            count: 1,
                            status,
                            diffs,
                            total,
                        },
                    );
                }
            }
            Outcome::Error(message) => {
                if let Some(d) = self.errors.get_mut(&s.request) {
                    d.count += 1;
                } else if room {
                    self.errors
                        .insert(s.request, ErrorDetail { count: 1, message });
                }
            }
        }
    }
}

/// A latency quantile of a histogram, in ns (0 when empty): the lowest value of the bucket
/// holding it, within the histogram's precision.
pub fn quantile_ns(h: &Histogram<u64>, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.lowest_equivalent(h.value_at_quantile(q)) * 1_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{Kind, Location};

    fn sample(request: u32, latency_ms: u64, outcome: Outcome) -> Sample {
        Sample {
            request,
            endpoint: request % 2,
            recorded_ns: 1_000_000,
            intended_ns: u64::from(request) * 1_000_000,
            sent_ns: u64::from(request) * 1_000_000 + 50_000,
            latency_ns: latency_ms * 1_000_000,
            outcome,
        }
    }

    #[test]
    fn totals_quantiles_and_details() {
        let mut t = Tally::default();
        for i in 0..100 {
            t.add(sample(
                i,
                u64::from(i) + 1,
                Outcome::Matched { status: 200 },
            ));
        }
        let diff = Difference {
            location: Location::Status,
            kind: Kind::Changed,
            expected: Some(200.into()),
            actual: Some(500.into()),
            detail: None,
        };
        for _ in 0..3 {
            t.add(sample(
                7,
                1,
                Outcome::Mismatched {
                    status: 500,
                    diffs: vec![diff.clone()],
                    total: 1,
                },
            ));
        }
        t.add(sample(8, 30_000, Outcome::Error("reset".into())));
        assert_eq!(
            (t.all.total, t.all.matched, t.all.mismatched, t.all.errors),
            (104, 100, 3, 1)
        );
        assert_eq!(t.all.server_errors, 3);
        assert_eq!(t.mismatches[&7].count, 3);
        assert_eq!(t.errors[&8].message, "reset");
        assert_eq!(t.statuses[&500], 3);
        let p50 = quantile_ns(&t.all.replay, 0.5);
        assert!((48_000_000..=52_000_000).contains(&p50), "{p50}");
        assert!(quantile_ns(&t.all.replay, 1.0) >= 29_000_000_000);
        assert_eq!(quantile_ns(&t.all.recorded, 0.99), 1_000_000);
        assert_eq!(t.endpoints.len(), 2);
        assert_eq!(t.intended, Some((0, 99_000_000)));
        assert_eq!(quantile_ns(&t.send_lag, 0.5), 50_000);
        assert_eq!(quantile_ns(&Tally::default().all.replay, 0.5), 0);
    }
}
