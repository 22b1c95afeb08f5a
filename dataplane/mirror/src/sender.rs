//! The senders: a fixed number of tasks (the bound on requests in flight) take jobs from the
//! queue and send each over a kept-alive connection to the shadow, read the answer with
//! `tapline replay`'s response parser within the per-request timeout, and judge it with its
//! comparer. A shadow that refuses a connection is taken as down for a moment: requests
//! meanwhile are dropped (counted), not piled onto it. Once the queue closes, what is still in
//! it is sent until one timeout has passed, then dropped as stopped.
//!
//! Everything runs on one current-thread runtime, on the calling thread: called from a thread
//! that entered the shadow's network namespace, every socket is opened in that namespace.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tapline_http1::parse_response_head;
use tapline_replay::compare::{Observed, compare};
use tapline_replay::stats::Outcome;
use tapline_replay::wire::{Response, ResponseParser, WireError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::sync::mpsc::Receiver;

use crate::error::MirrorError;
use crate::job::Job;
use crate::ledger::{DropReason, Ledger};

/// How long the shadow is taken as down after a refused connection.
const DOWN_FOR: Duration = Duration::from_secs(1);

/// Where and how the senders send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendConfig {
    /// The shadow's address (inside its namespace).
    pub target: SocketAddr,
    /// Most requests in flight at once (one connection each).
    pub max_in_flight: usize,
    /// Longest wait for a connection and an answer, per request.
    pub timeout: Duration,
}

/// State the sender tasks share.
#[derive(Debug)]
struct Shared {
    ledger: Arc<Ledger>,
    config: SendConfig,
    queue: Mutex<Receiver<Job>>,
    /// Nanoseconds after the ledger's start until which the shadow is taken as down.
    down_until: AtomicU64,
}

/// Sends queued jobs until the queue closes and is drained; returns then.
///
/// # Errors
/// [`MirrorError::Runtime`] when the runtime cannot start.
pub fn run(
    ledger: Arc<Ledger>,
    queue: Receiver<Job>,
    config: SendConfig,
) -> Result<(), MirrorError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| MirrorError::Runtime {
            what: "starting the mirror's async runtime",
            source,
        })?;
    let shared = Arc::new(Shared {
        ledger,
        config,
        queue: Mutex::new(queue),
        down_until: AtomicU64::new(0),
    });
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..config.max_in_flight.max(1) {
            tasks.spawn(worker(Arc::clone(&shared)));
        }
        while tasks.join_next().await.is_some() {}
    });
    Ok(())
}

async fn worker(shared: Arc<Shared>) {
    let mut link = Link::default();
    let ledger = &shared.ledger;
    loop {
        let job = shared.queue.lock().await.recv().await;
        let Some(job) = job else {
            break;
        };
        let now_ns = ledger.since_start(Instant::now());
        if ledger.past_grace(now_ns, shared.config.timeout) {
            ledger.dropped(DropReason::Stopped);
            continue;
        }
        if now_ns < shared.down_until.load(Ordering::Relaxed) {
            ledger.dropped(DropReason::ShadowDown);
            continue;
        }
        ledger.in_flight.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        let result = tokio::time::timeout(
            shared.config.timeout,
            link.exchange(
                shared.config.target,
                &job.request.bytes,
                job.request.head_request,
            ),
        )
        .await;
        let done = Instant::now();
        ledger.in_flight.fetch_sub(1, Ordering::Relaxed);
        let outcome = match result {
            Ok(Ok(response)) => judge(&job, &response),
            Ok(Err(Failure::Connect(e))) => {
                let until = ledger.since_start(done + DOWN_FOR);
                shared.down_until.store(until, Ordering::Relaxed);
                Outcome::Error(format!("connecting to the shadow: {e}"))
            }
            Ok(Err(failure)) => Outcome::Error(failure.to_string()),
            Err(_) => {
                link.close();
                Outcome::Error(format!(
                    "no answer within {} ms",
                    shared.config.timeout.as_millis()
                ))
            }
        };
        ledger.finished(job, sent, done, outcome);
    }
}

/// Compares the shadow's answer with production's.
fn judge(job: &Job, response: &Response) -> Outcome {
    let head = match parse_response_head(&response.head) {
        Ok(head) => head,
        Err(e) => return Outcome::Error(format!("response head: {e}")),
    };
    let observed = Observed {
        status: response.status,
        headers: &head.headers,
        body: &response.body,
    };
    let (diffs, total) = compare(&job.request.expected, &observed, &job.ignore);
    if total == 0 {
        Outcome::Matched {
            status: response.status,
        }
    } else {
        Outcome::Mismatched {
            status: response.status,
            diffs,
            total,
        }
    }
}

/// Why an exchange with the shadow failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// No connection could be made.
    #[error("connecting to the shadow: {0}")]
    Connect(std::io::Error),
    /// The connection failed while sending or receiving.
    #[error("exchange with the shadow: {0}")]
    Io(std::io::Error),
    /// The answer was not valid HTTP/1.1.
    #[error("{0}")]
    Wire(WireError),
}

impl Failure {
    /// Whether a fresh connection might succeed: a kept-alive one was closed before answering.
    fn stale(&self) -> bool {
        matches!(self, Failure::Io(_) | Failure::Wire(WireError::Closed))
    }
}

/// One kept-alive connection to the shadow.
#[derive(Debug, Default)]
struct Link {
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    answered: u64,
}

impl Link {
    fn close(&mut self) {
        self.stream = None;
        self.buf.clear();
        self.answered = 0;
    }

    /// Sends a request and reads its answer, opening the connection again once when a
    /// kept-alive one turns out closed.
    async fn exchange(
        &mut self,
        target: SocketAddr,
        bytes: &[u8],
        head_request: bool,
    ) -> Result<Response, Failure> {
        for attempt in 0..2 {
            if self.stream.is_none() {
                let stream = TcpStream::connect(target).await.map_err(Failure::Connect)?;
                let _ = stream.set_nodelay(true);
                self.stream = Some(stream);
            }
            let reused = self.answered > 0;
            match self.once(bytes, head_request).await {
                Ok(r) => {
                    self.answered += 1;
                    if r.close {
                        self.close();
                    }
                    return Ok(r);
                }
                Err(e) => {
                    self.close();
                    if !(reused && attempt == 0 && e.stale()) {
                        return Err(e);
                    }
                }
            }
        }
        Err(Failure::Wire(WireError::Closed))
    }

    async fn once(&mut self, bytes: &[u8], head_request: bool) -> Result<Response, Failure> {
        let stream = self
            .stream
            .as_mut()
            .ok_or(Failure::Wire(WireError::Closed))?;
        stream.write_all(bytes).await.map_err(Failure::Io)?;
        let mut parser = ResponseParser::new(head_request);
        loop {
            if !self.buf.is_empty() {
                let (used, done) = parser.advance(&self.buf).map_err(Failure::Wire)?;
                self.buf.drain(..used);
                if done {
                    return Ok(parser.take());
                }
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            let n = stream.read_buf(&mut self.buf).await.map_err(Failure::Io)?;
            if n == 0 {
                parser.eof().map_err(Failure::Wire)?;
                return Ok(parser.take());
            }
        }
    }
}

#[cfg(test)]
mod tests;
