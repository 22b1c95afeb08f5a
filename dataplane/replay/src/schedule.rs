//! When each request is meant to be sent: the recorded offsets divided by the rate factor
//! (`--rate 1000%` sends ten times faster), looped for `--duration`. Open loop: the times do
//! not depend on how fast the target answers.
//!
//! One pass of the snapshot lasts its span plus one mean gap between requests, so the loop
//! keeps the recorded rate across its seam.

use std::time::Duration;

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Recorded inter-arrival times divided by this factor (1.0 is `100%`).
    Factor(f64),
    /// Closed loop: each connection sends the next request as soon as it has the answer.
    Max,
}

impl Rate {
    /// Parses `100%`, `1000%`, `2.5x` or `max`.
    ///
    /// # Errors
    /// A message with what is accepted.
    pub fn parse(text: &str) -> Result<Rate, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        let factor = if let Some(p) = t.strip_suffix('%') {
            p.trim().parse::<f64>().ok().map(|p| p / 100.0)
        } else if let Some(x) = t.strip_suffix(['x', 'X']) {
            x.trim().parse::<f64>().ok()
        } else {
            None
        };
        match factor {
            Some(f) if f.is_finite() && f > 0.0 && f <= 1e6 => Ok(Rate::Factor(f)),
            _ => Err(
                "expected a percentage of the recorded rate (100%, 1000%), a factor (2x) or max"
                    .into(),
            ),
        }
    }

    /// As written in reports: `100%`, `max`.
    pub fn label(self) -> String {
        match self {
            Rate::Factor(f) => format!("{}%", (f * 1e4).round() / 1e2),
            Rate::Max => "max".into(),
        }
    }
}

/// The open-loop schedule of one replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    factor: f64,
    period_ns: u64,
    limit_ns: Option<u64>,
}

impl Schedule {
    /// A schedule for requests at the recorded `offsets` (ns from the first, ascending),
    /// replayed at `factor`, for `duration` (looping) or one pass.
    pub fn new(offsets: &[u64], factor: f64, duration: Option<Duration>) -> Self {
        Schedule {
            factor,
            period_ns: period_ns(offsets),
            limit_ns: duration.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        }
    }

    /// Intended send time, in ns from the start, of the request at recorded `offset_ns` in
    /// pass `pass` (from 0).
    pub fn at(&self, pass: u64, offset_ns: u64) -> u64 {
        let recorded = pass as f64 * self.period_ns as f64 + offset_ns as f64;
        (recorded / self.factor) as u64
    }

    /// Whether a request intended at `at_ns` is sent: in the first pass always when there is
    /// no duration, else before the duration ends.
    pub fn sends(&self, pass: u64, at_ns: u64) -> bool {
        match self.limit_ns {
            None => pass == 0,
            Some(limit) => at_ns < limit,
        }
    }

    /// The length of one pass in recorded time.
    pub fn period_ns(&self) -> u64 {
        self.period_ns
    }
}

/// One pass: the span plus one mean gap (1 ms for a single request).
fn period_ns(offsets: &[u64]) -> u64 {
    let span = offsets.last().copied().unwrap_or(0);
    match offsets.len() {
        0 | 1 => 1_000_000,
        n => span + (span / (n as u64 - 1)).max(1),
    }
}

/// Requests per second of a run whose first and last requests were `first_ns` and `last_ns`
/// apart and which sent `count`: the estimator used for both the asked and achieved rate, so
/// a perfect replay shows them equal.
pub fn rate(count: u64, first_ns: u64, last_ns: u64) -> f64 {
    let span = last_ns.saturating_sub(first_ns);
    if count < 2 || span == 0 {
        0.0
    } else {
        (count - 1) as f64 * 1e9 / span as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(Rate::parse("100%"), Ok(Rate::Factor(1.0)));
        assert_eq!(Rate::parse("1000%"), Ok(Rate::Factor(10.0)));
        assert_eq!(Rate::parse("2.5x"), Ok(Rate::Factor(2.5)));
        assert_eq!(Rate::parse("MAX"), Ok(Rate::Max));
        for bad in ["", "0%", "-5%", "fast", "100", "nan%", "inf%"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Rate::Factor(10.0).label(), "1000%");
        assert_eq!(Rate::Factor(0.333).label(), "33.3%");
    }

    #[test]
    fn times_scale_with_the_factor() {
        let offsets = [0, 10_000_000, 30_000_000];
        let s = Schedule::new(&offsets, 10.0, None);
        assert_eq!(s.at(0, 10_000_000), 1_000_000);
        assert_eq!(s.at(0, 30_000_000), 3_000_000);
        assert!(s.sends(0, u64::MAX));
        assert!(!s.sends(1, 0));
    }

    #[test]
    fn loops_keep_the_rate_across_the_seam() {
        // Four requests 10 ms apart: a pass is 40 ms, so the fifth request comes 10 ms after
        // the fourth.
        let offsets = [0, 10_000_000, 20_000_000, 30_000_000];
        let s = Schedule::new(&offsets, 1.0, Some(Duration::from_millis(100)));
        assert_eq!(s.period_ns(), 40_000_000);
        assert_eq!(s.at(1, 0), 40_000_000);
        let sent: Vec<u64> = (0..5)
            .flat_map(|pass| offsets.iter().map(move |&o| (pass, o)))
            .map(|(pass, o)| s.at(pass, o))
            .filter(|&t| s.sends(1, t))
            .collect();
        assert_eq!(sent.len(), 10);
        assert!((rate(sent.len() as u64, sent[0], sent[9]) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn degenerate_snapshots() {
        assert_eq!(period_ns(&[]), 1_000_000);
        assert_eq!(period_ns(&[0]), 1_000_000);
        assert_eq!(period_ns(&[0, 0, 0]), 1);
        assert_eq!(rate(1, 0, 0), 0.0);
        assert_eq!(rate(5, 7, 7), 0.0);
    }
}
