//! What a mirror counted, shared by the intake thread, the sender tasks, the status line and
//! the report: pairs seen, skipped and dropped (by reason) in atomics; each mirrored exchange's
//! outcome and latencies in `tapline replay`'s [`Tally`]; the endpoint table with its ignore
//! rules; and, for the report, the requests that differed or failed (each distinct request
//! once, with a count, at most [`MAX_DETAILED`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use tapline_replay::plan::{Endpoint, Request};
use tapline_replay::rules::{IgnoreRule, IgnoreSet};
use tapline_replay::stats::{Outcome, Sample, Tally, quantile_ns};

use crate::job::Job;

/// Distinct requests whose differences or errors are kept for the report (all are counted).
pub const MAX_DETAILED: usize = 1_000;
/// Distinct endpoints tracked; later ones share one row.
pub const MAX_ENDPOINTS: usize = 2_048;
/// The row that holds endpoints past [`MAX_ENDPOINTS`].
const OTHER_ENDPOINTS: &str = "(other endpoints)";

/// Why a request seen in production was not sent to the shadow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The mirror's queue was full: the shadow is slower than production.
    QueueFull,
    /// The shadow refused connections a moment ago: it is down (or not up yet).
    ShadowDown,
    /// The mirror stopped before the request's turn came.
    Stopped,
}

/// Endpoint keys and their ignore rules, grown as requests arrive.
#[derive(Debug)]
pub struct Endpoints {
    keys: FxHashMap<String, u32>,
    list: Vec<(String, Arc<IgnoreSet>)>,
    rules: Vec<IgnoreRule>,
}

impl Endpoints {
    /// A table whose endpoints ignore the defaults and `rules`.
    pub fn new(rules: Vec<IgnoreRule>) -> Self {
        Endpoints {
            keys: FxHashMap::default(),
            list: Vec::new(),
            rules,
        }
    }

    /// The index and ignore rules of `key`, adding it when new.
    pub fn of(&mut self, key: String) -> (u32, Arc<IgnoreSet>) {
        let key = if self.list.len() >= MAX_ENDPOINTS && !self.keys.contains_key(&key) {
            OTHER_ENDPOINTS.to_owned()
        } else {
            key
        };
        if let Some(&i) = self.keys.get(&key) {
            let set = self
                .list
                .get(i as usize)
                .map_or_else(|| Arc::new(IgnoreSet::defaults()), |(_, s)| Arc::clone(s));
            return (i, set);
        }
        let mut set = IgnoreSet::defaults();
        for rule in &self.rules {
            set.add(rule);
        }
        let set = Arc::new(set);
        let i = u32::try_from(self.list.len()).unwrap_or(u32::MAX);
        self.keys.insert(key.clone(), i);
        self.list.push((key, Arc::clone(&set)));
        (i, set)
    }

    /// The user's rules.
    pub fn rules(&self) -> &[IgnoreRule] {
        &self.rules
    }

    /// The endpoints as `tapline replay`'s report wants them.
    pub fn to_plan(&self) -> Vec<Endpoint> {
        self.list
            .iter()
            .map(|(key, set)| Endpoint {
                key: key.clone(),
                ignore: IgnoreSet::clone(set),
                noise: Vec::new(),
            })
            .collect()
    }
}

/// Outcomes and latencies of the mirrored exchanges.
#[derive(Debug, Default)]
pub struct Results {
    /// `tapline replay`'s tally: the shadow's latency as "replay", production's as "recorded".
    pub tally: Tally,
    /// Requests kept for the report's mismatch and error lists.
    pub detailed: Vec<Request>,
    by_identity: FxHashMap<u64, u32>,
    /// Mirrored requests that production answered with a 5xx.
    pub production_server_errors: u64,
}

impl Results {
    /// Adds the outcome of one mirrored exchange.
    fn add(&mut self, job: Job, sent_ns: u64, latency_ns: u64, outcome: Outcome) {
        let detailed = !matches!(outcome, Outcome::Matched { .. });
        let index = if detailed {
            match self.by_identity.get(&job.identity) {
                Some(&i) => i,
                None if self.detailed.len() < MAX_DETAILED => {
                    let i = u32::try_from(self.detailed.len()).unwrap_or(u32::MAX);
                    let mut request = job.request;
                    request.bytes = Vec::new();
                    let sample = sample(&request, i, sent_ns, latency_ns, outcome);
                    self.by_identity.insert(job.identity, i);
                    self.detailed.push(request);
                    self.finish(sample);
                    return;
                }
                None => u32::MAX,
            }
        } else {
            u32::MAX
        };
        let sample = sample(&job.request, index, sent_ns, latency_ns, outcome);
        self.finish(sample);
    }

    fn finish(&mut self, sample: Sample) {
        self.tally.add(sample);
    }
}

fn sample(request: &Request, index: u32, sent_ns: u64, latency_ns: u64, o: Outcome) -> Sample {
    Sample {
        request: index,
        endpoint: request.endpoint,
        recorded_ns: request.recorded_ns,
        intended_ns: sent_ns,
        sent_ns,
        latency_ns,
        outcome: o,
    }
}

/// The counters shared by every part of a running mirror.
#[derive(Debug)]
pub struct Ledger {
    start: Instant,
    /// Inbound pairs the capture completed (mirrored, dropped or skipped).
    pub seen: AtomicU64,
    /// Outbound pairs (the service's dependency calls) the capture completed.
    pub outbound: AtomicU64,
    queue_full: AtomicU64,
    shadow_down: AtomicU64,
    stopped: AtomicU64,
    /// Pairs the capture's tap could not hand over (the mirror's intake was behind).
    pub tap_full: AtomicU64,
    /// Requests on their way to the shadow or waiting for its answer.
    pub in_flight: AtomicU64,
    skipped: Mutex<BTreeMap<&'static str, u64>>,
    results: Mutex<Results>,
    /// The endpoint table.
    pub endpoints: Mutex<Endpoints>,
    production_5xx: AtomicU64,
    closing_at: AtomicU64,
}

/// Dropped requests by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Drops {
    /// The queue to the shadow was full.
    pub queue_full: u64,
    /// The shadow refused connections (down, or not up yet).
    pub shadow_down: u64,
    /// Still queued when the mirror stopped.
    pub stopped: u64,
    /// Lost between the capture and the mirror (the capture's tap was full).
    pub tap_full: u64,
}

impl Drops {
    /// Every dropped request.
    pub fn total(&self) -> u64 {
        self.queue_full + self.shadow_down + self.stopped + self.tap_full
    }
}

/// The figures of the live summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Status {
    /// Time since the mirror started.
    pub elapsed: Duration,
    /// Inbound exchanges the capture completed.
    pub seen: u64,
    /// Sent to the shadow and finished (matched, differed or failed).
    pub mirrored: u64,
    /// The shadow's answer matched production's.
    pub matched: u64,
    /// The shadow's answer differed.
    pub differed: u64,
    /// The shadow gave no valid answer in time.
    pub errors: u64,
    /// Not sent, by reason.
    pub dropped: Drops,
    /// Not mirrorable (incomplete in the capture, no response, an upgrade).
    pub skipped: u64,
    /// Sent and not answered yet.
    pub in_flight: u64,
    /// Production's latency, median and 99th percentile, ms.
    pub production_ms: (f64, f64),
    /// The shadow's latency, median and 99th percentile, ms.
    pub shadow_ms: (f64, f64),
}

impl Status {
    /// The share of mirrored exchanges that matched, in percent (100 when none yet).
    pub fn matched_pct(&self) -> f64 {
        if self.mirrored == 0 {
            100.0
        } else {
            self.matched as f64 * 100.0 / self.mirrored as f64
        }
    }
}

impl Ledger {
    /// A ledger whose endpoints ignore the defaults and `rules`.
    pub fn new(rules: Vec<IgnoreRule>) -> Self {
        Ledger {
            start: Instant::now(),
            seen: AtomicU64::new(0),
            outbound: AtomicU64::new(0),
            queue_full: AtomicU64::new(0),
            shadow_down: AtomicU64::new(0),
            stopped: AtomicU64::new(0),
            tap_full: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            skipped: Mutex::new(BTreeMap::new()),
            results: Mutex::new(Results::default()),
            endpoints: Mutex::new(Endpoints::new(rules)),
            production_5xx: AtomicU64::new(0),
            closing_at: AtomicU64::new(0),
        }
    }

    /// When the mirror started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Nanoseconds from the start to `t`.
    pub fn since_start(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Notes that no more requests will be queued (the capture stopped): from one `grace`
    /// later, what is still queued is dropped rather than sent.
    pub fn closing(&self) {
        let now = self.since_start(Instant::now()).max(1);
        let _ = self
            .closing_at
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Whether `now_ns` is more than `grace` after [`Ledger::closing`] was called.
    pub fn past_grace(&self, now_ns: u64, grace: Duration) -> bool {
        let closing = self.closing_at.load(Ordering::Relaxed);
        let grace = u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX);
        closing != 0 && now_ns > closing.saturating_add(grace)
    }

    /// Counts a request that was not sent.
    pub fn dropped(&self, reason: DropReason) {
        let counter = match reason {
            DropReason::QueueFull => &self.queue_full,
            DropReason::ShadowDown => &self.shadow_down,
            DropReason::Stopped => &self.stopped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a pair that cannot be mirrored.
    pub fn skipped(&self, reason: &'static str) {
        if let Ok(mut map) = self.skipped.lock() {
            *map.entry(reason).or_default() += 1;
        }
    }

    /// Pairs skipped, by reason.
    pub fn skipped_reasons(&self) -> BTreeMap<&'static str, u64> {
        self.skipped.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Records the outcome of a mirrored exchange sent at `sent` and finished at `done`.
    pub fn finished(&self, job: Job, sent: Instant, done: Instant, outcome: Outcome) {
        if job.request.expected.status >= 500 {
            self.production_5xx.fetch_add(1, Ordering::Relaxed);
        }
        let sent_ns = self.since_start(sent);
        let latency_ns =
            u64::try_from(done.saturating_duration_since(sent).as_nanos()).unwrap_or(u64::MAX);
        if let Ok(mut results) = self.results.lock() {
            results.add(job, sent_ns, latency_ns, outcome);
        }
    }

    /// The results so far (held locked: keep it short).
    pub fn results(&self) -> Option<MutexGuard<'_, Results>> {
        self.results.lock().ok()
    }

    /// Mirrored requests production answered with a 5xx.
    pub fn production_server_errors(&self) -> u64 {
        self.production_5xx.load(Ordering::Relaxed)
    }

    /// Dropped requests by reason.
    pub fn drops(&self) -> Drops {
        Drops {
            queue_full: self.queue_full.load(Ordering::Relaxed),
            shadow_down: self.shadow_down.load(Ordering::Relaxed),
            stopped: self.stopped.load(Ordering::Relaxed),
            tap_full: self.tap_full.load(Ordering::Relaxed),
        }
    }

    /// The figures for the summary line.
    pub fn status(&self) -> Status {
        let mut status = Status {
            elapsed: self.start.elapsed(),
            seen: self.seen.load(Ordering::Relaxed),
            dropped: self.drops(),
            skipped: self.skipped_reasons().values().sum(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            ..Status::default()
        };
        if let Some(r) = self.results() {
            let all = &r.tally.all;
            status.mirrored = all.total;
            status.matched = all.matched;
            status.differed = all.mismatched;
            status.errors = all.errors;
            let q = |h, x| quantile_ns(h, x) as f64 / 1e6;
            status.production_ms = (q(&all.recorded, 0.5), q(&all.recorded, 0.99));
            status.shadow_ms = (q(&all.replay, 0.5), q(&all.replay, 0.99));
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tapline_replay::diff::{Difference, Kind, Location};

    use super::*;
    use crate::testutil::{archived, pair};

    fn job(n: u64, target: &str) -> Job {
        let p = pair(
            n,
            80,
            &format!("GET {target} HTTP/1.1\r\n\r\n"),
            "",
            200,
            "{}",
        );
        let bytes = archived(&p);
        let a =
            rkyv::access::<tapline_dataplane::record::ArchivedRRPair, rkyv::rancor::Error>(&bytes)
                .unwrap();
        let request = crate::job::request_of(a, None).unwrap();
        Job {
            identity: crate::job::identity_of(a, &request),
            request,
            ignore: Arc::new(IgnoreSet::defaults()),
            queued: Instant::now(),
        }
    }

    fn differed() -> Outcome {
        Outcome::Mismatched {
            status: 200,
            diffs: vec![Difference {
                location: Location::Status,
                kind: Kind::Changed,
                expected: None,
                actual: None,
                detail: None,
            }],
            total: 1,
        }
    }

    #[test]
    fn outcomes_are_counted_and_the_same_request_is_detailed_once() {
        let ledger = Ledger::new(vec![]);
        let t0 = ledger.start();
        let done = t0 + Duration::from_millis(3);
        for n in 0..4 {
            ledger.finished(job(n, "/a"), t0, done, Outcome::Matched { status: 200 });
        }
        for n in 0..3 {
            ledger.finished(job(n, "/b"), t0, done, differed());
        }
        ledger.finished(job(9, "/c"), t0, done, Outcome::Error("timed out".into()));
        ledger.dropped(DropReason::QueueFull);
        ledger.dropped(DropReason::QueueFull);
        ledger.dropped(DropReason::ShadowDown);
        ledger.skipped("no recorded response");
        let s = ledger.status();
        assert_eq!(
            (s.mirrored, s.matched, s.differed, s.errors, s.skipped),
            (8, 4, 3, 1, 1)
        );
        assert_eq!(s.dropped.total(), 3);
        assert_eq!(s.dropped.queue_full, 2);
        assert!((s.matched_pct() - 50.0).abs() < 1e-9);
        assert!((2.9..=3.1).contains(&s.shadow_ms.0), "{:?}", s.shadow_ms);
        assert!(
            (1.9..=2.1).contains(&s.production_ms.1),
            "{:?}",
            s.production_ms
        );
        let r = ledger.results().unwrap();
        assert_eq!(r.detailed.len(), 2);
        assert_eq!(r.tally.mismatches[&0].count, 3);
        assert_eq!(r.tally.errors[&1].message, "timed out");
        assert!(r.detailed.iter().all(|d| d.bytes.is_empty()));
    }

    #[test]
    fn endpoints_are_bounded() {
        let mut e = Endpoints::new(vec![IgnoreRule::Body]);
        let (a, set) = e.of("GET /a".into());
        assert!(set.body());
        assert_eq!(e.of("GET /a".into()).0, a);
        for i in 0..MAX_ENDPOINTS + 10 {
            e.of(format!("GET /x{i}"));
        }
        assert_eq!(e.to_plan().len(), MAX_ENDPOINTS + 1);
        assert_eq!(e.of("GET /new".into()).0, e.of("GET /other".into()).0);
    }
}
