use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::*;
use crate::intake::Intake;
use crate::testutil::{batch, pair};

/// A shadow on loopback: `/same` answers as production did, `/other` differently; every answer
/// waits `delay` first. Stops accepting when `stop` is raised.
fn shadow(delay: Duration, stop: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || serve(stream, delay));
        }
    });
    addr
}

fn serve(stream: TcpStream, delay: Duration) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
        }
        std::thread::sleep(delay);
        let body = if line.contains("/other") {
            r#"{"v":2}"#
        } else {
            r#"{"v":1}"#
        };
        let answer = format!(
            "HTTP/1.1 200 X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Runs an intake and the senders over `paths` (production answered each `{"v":1}`); returns
/// the ledger once everything is sent or dropped.
fn mirror(paths: &[&str], queue: usize, config: SendConfig) -> Arc<Ledger> {
    let ledger = Arc::new(Ledger::new(vec![]));
    let (tx, rx) = tokio::sync::mpsc::channel(queue);
    let senders = {
        let ledger = Arc::clone(&ledger);
        std::thread::spawn(move || run(ledger, rx, config).unwrap())
    };
    let mut intake = Intake::new(Arc::clone(&ledger), tx, 8080, None, None);
    let pairs: Vec<_> = paths
        .iter()
        .enumerate()
        .map(|(n, p)| {
            let request = format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n");
            pair(n as u64, 8080, &request, "", 200, r#"{"v":1}"#)
        })
        .collect();
    intake.batch(&batch(&pairs));
    ledger.closing();
    drop(intake);
    senders.join().unwrap();
    ledger
}

fn config(target: SocketAddr, max_in_flight: usize, timeout_ms: u64) -> SendConfig {
    SendConfig {
        target,
        max_in_flight,
        timeout: Duration::from_millis(timeout_ms),
    }
}

#[test]
fn answers_are_diffed_and_counted() {
    let target = shadow(Duration::ZERO, Arc::new(AtomicBool::new(false)));
    let paths = ["/same", "/other", "/same", "/same", "/other"];
    let ledger = mirror(&paths, 64, config(target, 2, 5_000));
    let s = ledger.status();
    assert_eq!(
        (s.seen, s.mirrored, s.matched, s.differed, s.errors),
        (5, 5, 3, 2, 0)
    );
    assert_eq!(s.dropped.total(), 0);
    let r = ledger.results().unwrap();
    assert_eq!(r.detailed.len(), 1, "one distinct request differed");
    assert_eq!(r.tally.mismatches[&0].count, 2);
    let diff = &r.tally.mismatches[&0].diffs[0];
    assert_eq!(diff.line(), "$.v: 1 → 2");
}

#[test]
fn a_slow_shadow_costs_dropped_and_failed_requests_only() {
    let target = shadow(Duration::from_millis(400), Arc::new(AtomicBool::new(false)));
    let paths = ["/same"; 40];
    let started = Instant::now();
    let ledger = mirror(&paths, 4, config(target, 2, 100));
    let s = ledger.status();
    assert_eq!(s.seen, 40);
    // Two in flight, four queued: the rest is dropped at once; those sent time out.
    assert!(s.dropped.queue_full >= 30, "{s:?}");
    assert_eq!(s.mirrored + s.dropped.total(), 40, "{s:?}");
    assert_eq!(s.errors, s.mirrored, "{s:?}");
    assert!(s.mirrored >= 2, "{s:?}");
    // Stopping waits one timeout for the queue at most, per sender.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let r = ledger.results().unwrap();
    assert!(
        r.tally.errors[&0]
            .message
            .contains("no answer within 100 ms")
    );
}

#[test]
fn a_dead_shadow_is_left_alone_for_a_moment() {
    let target = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let paths = ["/same"; 10];
    let ledger = mirror(&paths, 64, config(target, 1, 1_000));
    let s = ledger.status();
    assert_eq!((s.mirrored, s.errors), (1, 1), "{s:?}");
    assert_eq!(s.dropped.shadow_down, 9, "{s:?}");
    let r = ledger.results().unwrap();
    assert!(
        r.tally.errors[&0]
            .message
            .contains("connecting to the shadow")
    );
}

#[test]
fn what_is_queued_past_the_grace_is_dropped_as_stopped() {
    let target = shadow(Duration::from_millis(150), Arc::new(AtomicBool::new(false)));
    // One sender, 500 ms grace: about four of the ten are answered in time.
    let ledger = mirror(&["/same"; 10], 64, config(target, 1, 500));
    let s = ledger.status();
    assert_eq!(s.mirrored + s.dropped.stopped, 10, "{s:?}");
    assert!((2..=5).contains(&s.mirrored), "{s:?}");
    assert_eq!(s.errors, 0, "{s:?}");
}
