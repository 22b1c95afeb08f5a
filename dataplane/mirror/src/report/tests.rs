use std::sync::Arc;
use std::time::{Duration, Instant};

use tapline_dataplane::record::ArchivedRRPair;
use tapline_replay::assertion::parse_assertions;
use tapline_replay::diff::{Difference, Kind, Location};
use tapline_replay::rules::IgnoreSet;
use tapline_replay::stats::Outcome;

use super::*;
use crate::job::{Job, identity_of, request_of};
use crate::ledger::DropReason;
use crate::testutil::{archived, pair};

fn job(ledger: &Ledger, n: u64, target: &str) -> Job {
    let p = pair(
        n,
        8080,
        &format!("GET {target} HTTP/1.1\r\n\r\n"),
        "",
        200,
        "{}",
    );
    let bytes = archived(&p);
    let a = rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(&bytes).unwrap();
    let mut request = request_of(a, None).unwrap();
    request.endpoint = ledger
        .endpoints
        .lock()
        .unwrap()
        .of(crate::job::endpoint_of(&request))
        .0;
    ledger
        .seen
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Job {
        identity: identity_of(a, &request),
        request,
        ignore: Arc::new(IgnoreSet::defaults()),
        queued: Instant::now(),
    }
}

fn facts(assertions: &[tapline_replay::assertion::Assertion]) -> Facts<'_> {
    Facts {
        source: "tl-b port 8080",
        target: "app.py at 127.0.0.1:8080",
        started_ns: 1_700_000_000_000_000_000,
        duration: Duration::from_secs(3),
        port: 8080,
        queue: 1024,
        max_in_flight: 32,
        timeout: Duration::from_secs(5),
        assertions,
    }
}

fn run(differ: bool) -> Ledger {
    let ledger = Ledger::new(vec![]);
    let t0 = ledger.start();
    for n in 0..8 {
        let j = job(&ledger, n, "/users/1");
        ledger.finished(
            j,
            t0,
            t0 + Duration::from_millis(1),
            Outcome::Matched { status: 200 },
        );
    }
    if differ {
        let j = job(&ledger, 9, "/orders/2");
        let outcome = Outcome::Mismatched {
            status: 200,
            diffs: vec![Difference {
                location: Location::Header("x-build".into()),
                kind: Kind::Added,
                expected: None,
                actual: Some("b".into()),
                detail: None,
            }],
            total: 1,
        };
        ledger.finished(j, t0, t0 + Duration::from_millis(4), outcome);
    }
    ledger
        .seen
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ledger.dropped(DropReason::QueueFull);
    ledger
}

#[test]
fn a_clean_run_passes_and_reports_the_mirror() {
    let ledger = run(false);
    let report = build(&ledger, &facts(&[]), None);
    assert!(report.report.passed);
    assert_eq!((report.mirror.seen, report.mirror.mirrored), (9, 8));
    assert_eq!(report.mirror.dropped_total, 1);
    assert!((report.mirror.matched_pct - 100.0).abs() < 1e-9);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["total"], 8);
    assert_eq!(json["mirror"]["dropped"]["queue_full"], 1);
    assert_eq!(json["latency"]["recorded"]["p50_ms"], 2.0);
    let text = report.text();
    assert!(text.contains("mirror: PASS, 8 of 8 matched"), "{text}");
    assert!(report.to_html().contains("<h1>tapline mirror"));
    assert!(report.to_junit().contains("tapline mirror"));
}

#[test]
fn a_difference_fails_and_is_listed() {
    let ledger = run(true);
    let report = build(&ledger, &facts(&[]), None);
    assert!(!report.report.passed);
    assert_eq!(report.report.mismatches.len(), 1);
    assert_eq!(report.report.mismatches[0].target, "/orders/2");
    let text = report.text();
    assert!(text.contains("differed ×1: GET /orders/2"), "{text}");
    assert!(text.contains("header:x-build: added \"b\""), "{text}");
    assert!(text.contains("mirror: FAIL (1 mismatched)"), "{text}");
}

#[test]
fn assertions_judge_the_shadow_against_production() {
    let ledger = run(true);
    let assertions = parse_assertions("match>=80%,p50<=1x").unwrap();
    let report = build(&ledger, &facts(&assertions), None);
    // 8 of 9 matched holds; the shadow's 1 ms median against production's 2 ms holds.
    assert!(report.report.passed, "{:?}", report.report.assertions);
    let assertions = parse_assertions("match>=99%").unwrap();
    let report = build(&run(true), &facts(&assertions), None);
    assert!(!report.report.passed);
}

#[test]
fn files_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let report = build(&run(false), &facts(&[]), None);
    let junit = dir.path().join("j/junit.xml");
    let written = report
        .write(Some(&dir.path().join("r")), Some(&junit))
        .unwrap();
    assert_eq!(written.len(), 3);
    assert!(written.iter().all(|p| p.exists()));
}
