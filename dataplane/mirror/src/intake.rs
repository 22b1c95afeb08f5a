//! The intake: takes the batches of pairs the capture pipeline's tap hands over, on a thread of
//! its own, and routes each pair: a request to the mirrored port goes into the bounded queue
//! to the shadow (or is dropped, counted, when the queue is full: the capture never waits for
//! the mirror), a call of the service to a dependency goes to the learner of the shadow's
//! mocks.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use tapline_dataplane::record::ArchivedRRPair;
use tapline_dataplane::worker::PairBatch;
use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

use crate::job::{Direction, Job, direction, endpoint_of, identity_of, request_of};
use crate::ledger::{DropReason, Ledger};

/// Hears the service's completed calls to its dependencies (pairs whose server is not the
/// mirrored port), so the shadow's mocks can answer the same calls.
pub trait Learn: Send {
    /// One completed outbound exchange.
    fn learn(&mut self, pair: &ArchivedRRPair);
}

/// Routes captured pairs to the shadow's queue and to the learner.
pub struct Intake {
    ledger: Arc<Ledger>,
    queue: Sender<Job>,
    port: u16,
    host: Option<String>,
    learner: Option<Box<dyn Learn>>,
    hold: Duration,
    held: VecDeque<(Instant, Job)>,
    held_max: usize,
}

/// How often held requests are looked at.
const HOLD_TICK: Duration = Duration::from_millis(10);

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("port", &self.port)
            .field("host", &self.host)
            .field("learner", &self.learner.is_some())
            .finish_non_exhaustive()
    }
}

impl Intake {
    /// An intake for the service on `port`, queueing into `queue`; `host` replaces the
    /// recorded `Host` of mirrored requests when given.
    pub fn new(
        ledger: Arc<Ledger>,
        queue: Sender<Job>,
        port: u16,
        host: Option<String>,
        learner: Option<Box<dyn Learn>>,
    ) -> Self {
        Intake {
            ledger,
            queue,
            port,
            host,
            learner,
            hold: Duration::ZERO,
            held: VecDeque::new(),
            held_max: 0,
        }
    }

    /// Holds each request back `hold` before queueing it (at most `max` held; past it they
    /// are dropped as queue-full), so the dependency calls production made while answering it,
    /// which the capture may hand over a little later, are learned first.
    pub fn with_hold(mut self, hold: Duration, max: usize) -> Self {
        self.hold = hold;
        self.held_max = max;
        self
    }

    /// Routes batches until the tap closes (the capture finished); dropping the intake then
    /// closes the queue, which ends the senders once they have drained it.
    pub fn run(mut self, tap: &Receiver<PairBatch>) {
        loop {
            match tap.recv_timeout(HOLD_TICK) {
                Ok(batch) => self.batch(&batch),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.release(false);
        }
        self.release(true);
        self.ledger.closing();
    }

    /// Queues the held requests whose time has come (all of them when `all`).
    fn release(&mut self, all: bool) {
        let now = Instant::now();
        while self.held.front().is_some_and(|(at, _)| all || *at <= now) {
            if let Some((_, job)) = self.held.pop_front() {
                self.send(job);
            }
        }
    }

    fn send(&mut self, job: Job) {
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.ledger.dropped(DropReason::QueueFull),
            Err(TrySendError::Closed(_)) => self.ledger.dropped(DropReason::Stopped),
        }
    }

    /// Routes every pair of a batch.
    pub fn batch(&mut self, batch: &PairBatch) {
        for bytes in batch.iter() {
            match rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(bytes) {
                Ok(pair) => self.pair(pair),
                Err(_) => self.ledger.skipped("unreadable record"),
            }
        }
    }

    /// Routes one pair.
    pub fn pair(&mut self, pair: &ArchivedRRPair) {
        if direction(pair, self.port) == Direction::Outbound {
            self.ledger.outbound.fetch_add(1, Ordering::Relaxed);
            if let Some(learner) = self.learner.as_mut() {
                learner.learn(pair);
            }
            return;
        }
        self.ledger.seen.fetch_add(1, Ordering::Relaxed);
        let mut request = match request_of(pair, self.host.as_deref()) {
            Ok(request) => request,
            Err(reason) => {
                self.ledger.skipped(reason);
                return;
            }
        };
        let (endpoint, ignore) = match self.ledger.endpoints.lock() {
            Ok(mut table) => table.of(endpoint_of(&request)),
            Err(_) => return self.ledger.skipped("internal error"),
        };
        request.endpoint = endpoint;
        let job = Job {
            identity: identity_of(pair, &request),
            request,
            ignore,
            queued: Instant::now(),
        };
        if self.hold.is_zero() {
            self.send(job);
        } else if self.held.len() >= self.held_max {
            self.ledger.dropped(DropReason::QueueFull);
        } else {
            self.held.push_back((job.queued + self.hold, job));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::testutil::{batch, pair};

    struct Learned(Arc<Mutex<Vec<u16>>>);

    impl Learn for Learned {
        fn learn(&mut self, pair: &ArchivedRRPair) {
            self.0.lock().unwrap().push(pair.flow.dst_port.to_native());
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let ledger = Arc::new(Ledger::new(vec![]));
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let learned = Arc::new(Mutex::new(Vec::new()));
        let mut intake = Intake::new(
            Arc::clone(&ledger),
            tx,
            8080,
            Some("127.0.0.1:8080".into()),
            Some(Box::new(Learned(Arc::clone(&learned)))),
        );
        let mut pairs: Vec<_> = (0..5)
            .map(|n| pair(n, 8080, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", "", 200, "{}"))
            .collect();
        pairs.push(pair(9, 5432, "GET /dep HTTP/1.1\r\n\r\n", "", 200, "{}"));
        let mut no_response = pair(10, 8080, "GET /b HTTP/1.1\r\n\r\n", "", 200, "");
        no_response.response = None;
        pairs.push(no_response);
        let started = Instant::now();
        intake.batch(&batch(&pairs));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let s = ledger.status();
        assert_eq!(s.seen, 6);
        assert_eq!(s.dropped.queue_full, 3);
        assert_eq!(s.skipped, 1);
        assert_eq!(*learned.lock().unwrap(), [5432]);
        let first = rx.try_recv().unwrap();
        assert!(
            first
                .request
                .bytes
                .ends_with(b"Host: 127.0.0.1:8080\r\n\r\n")
        );
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err());
        drop(rx);
        intake.batch(&batch(&pairs[..1]));
        assert_eq!(ledger.drops().stopped, 1);
    }

    #[test]
    fn held_requests_wait_then_go_and_all_go_at_the_end() {
        let ledger = Arc::new(Ledger::new(vec![]));
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let intake = Intake::new(Arc::clone(&ledger), tx, 8080, None, None)
            .with_hold(Duration::from_millis(150), 16);
        let (tap_tx, tap_rx) = crossbeam_channel::bounded(4);
        let running = std::thread::spawn(move || intake.run(&tap_rx));
        let p = pair(1, 8080, "GET /a HTTP/1.1\r\n\r\n", "", 200, "{}");
        tap_tx.send(batch(std::slice::from_ref(&p))).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(rx.try_recv().is_err(), "held");
        std::thread::sleep(Duration::from_millis(250));
        assert!(rx.try_recv().is_ok(), "released");
        tap_tx.send(batch(&[p])).unwrap();
        drop(tap_tx);
        running.join().unwrap();
        assert!(rx.try_recv().is_ok(), "released when the tap closed");
        assert_eq!(ledger.drops().total(), 0);
    }
}
