//! One client connection to the target: connect, send recorded requests, read and judge the
//! responses. Open loop, a task follows one recorded connection (pipelined requests are written
//! back to back); closed loop, a worker sends the next request as soon as it has the answer.
//!
//! A kept-alive connection the target closed in the meantime is opened again and the request
//! sent once more, as any HTTP client would; a response cut short, malformed or late is an
//! error of that request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tapline_http1::parse_response_head;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::compare::{Observed, compare};
use crate::plan::{Plan, Request};
use crate::schedule::Schedule;
use crate::stats::{Outcome, Sample, Tally};
use crate::timer::Pacer;
use crate::wire::{Response, ResponseParser, WireError};

/// Samples kept by a task before they are added to the shared tally.
const BATCH: usize = 256;

/// What every connection task shares.
#[derive(Debug)]
pub struct Shared {
    /// The plan.
    pub plan: Arc<Plan>,
    /// The target's address.
    pub addr: SocketAddr,
    /// The precise timer.
    pub pacer: Pacer,
    /// Where results go.
    pub tally: Mutex<Tally>,
    /// Longest wait for a connection or a response.
    pub timeout: Duration,
    /// The run's time zero.
    pub start: Instant,
    /// The open-loop schedule (`None`: closed loop).
    pub schedule: Option<Schedule>,
    /// When a closed-loop run stops taking new requests.
    pub deadline: Option<Instant>,
}

impl Shared {
    fn since_start(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A task's results, added to the shared tally in batches.
struct Batch<'a> {
    shared: &'a Shared,
    samples: Vec<Sample>,
}

impl Batch<'_> {
    fn push(&mut self, sample: Sample) {
        self.samples.push(sample);
        if self.samples.len() >= BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Ok(mut tally) = self.shared.tally.lock() {
            for s in self.samples.drain(..) {
                tally.add(s);
            }
        }
    }

    fn record(
        &mut self,
        index: usize,
        intended: Instant,
        sent: Instant,
        done: Instant,
        outcome: Outcome,
    ) {
        let Some(req) = self.shared.plan.requests.get(index) else {
            return;
        };
        self.push(Sample {
            request: u32::try_from(index).unwrap_or(u32::MAX),
            endpoint: req.endpoint,
            recorded_ns: req.recorded_ns,
            intended_ns: self.shared.since_start(intended),
            sent_ns: self.shared.since_start(sent),
            latency_ns: u64::try_from(done.saturating_duration_since(intended).as_nanos())
                .unwrap_or(u64::MAX),
            outcome,
        });
    }
}

/// Judges a response against the recorded one.
pub fn judge(plan: &Plan, req: &Request, r: &Response) -> Outcome {
    let Some(endpoint) = plan.endpoints.get(req.endpoint as usize) else {
        return Outcome::Error("unknown endpoint".into());
    };
    let head = match parse_response_head(&r.head) {
        Ok(head) => head,
        Err(e) => return Outcome::Error(format!("response head: {e}")),
    };
    let observed = Observed {
        status: r.status,
        headers: &head.headers,
        body: &r.body,
    };
    let (diffs, total) = compare(&req.expected, &observed, &endpoint.ignore);
    if total == 0 {
        Outcome::Matched { status: r.status }
    } else {
        Outcome::Mismatched {
            status: r.status,
            diffs,
            total,
        }
    }
}

/// Why an exchange failed.
#[derive(Debug)]
enum Failure {
    Io(std::io::Error),
    Wire(WireError),
    Timeout,
}

impl Failure {
    fn text(&self, what: &str) -> String {
        match self {
            Failure::Io(e) => format!("{what}: {e}"),
            Failure::Wire(e) => e.to_string(),
            Failure::Timeout => format!("{what}: timed out"),
        }
    }

    /// Whether a fresh connection might succeed: the old one was closed before answering.
    fn stale(&self) -> bool {
        matches!(self, Failure::Io(_) | Failure::Wire(WireError::Closed))
    }
}

/// One TCP connection to the target, opened on demand.
#[derive(Debug, Default)]
struct Link {
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    answered: u64,
}

impl Link {
    async fn connect(&mut self, shared: &Shared) -> Result<(), String> {
        if self.stream.is_some() {
            return Ok(());
        }
        let connect = tokio::time::timeout(shared.timeout, TcpStream::connect(shared.addr));
        let stream = match connect.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(format!("connecting to {}: {e}", shared.addr)),
            Err(_) => return Err(format!("connecting to {}: timed out", shared.addr)),
        };
        let _ = stream.set_nodelay(true);
        self.stream = Some(stream);
        self.buf.clear();
        self.answered = 0;
        Ok(())
    }

    fn close(&mut self) {
        self.stream = None;
        self.buf.clear();
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let stream = self
            .stream
            .as_mut()
            .ok_or(Failure::Wire(WireError::Closed))?;
        stream.write_all(bytes).await.map_err(Failure::Io)
    }

    async fn receive(
        &mut self,
        head_request: bool,
        timeout: Duration,
    ) -> Result<Response, Failure> {
        match tokio::time::timeout(timeout, self.read_response(head_request)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout),
        }
    }

    async fn read_response(&mut self, head_request: bool) -> Result<Response, Failure> {
        let mut parser = ResponseParser::new(head_request);
        loop {
            if !self.buf.is_empty() {
                let (used, done) = parser.advance(&self.buf).map_err(Failure::Wire)?;
                self.buf.drain(..used);
                if done {
                    self.answered += 1;
                    return Ok(parser.take());
                }
            }
            let stream = self
                .stream
                .as_mut()
                .ok_or(Failure::Wire(WireError::Closed))?;
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            let n = stream.read_buf(&mut self.buf).await.map_err(Failure::Io)?;
            if n == 0 {
                parser.eof().map_err(Failure::Wire)?;
                self.answered += 1;
                return Ok(parser.take());
            }
        }
    }

    /// Sends a request and reads its response, opening the connection again once when a
    /// kept-alive one turns out closed. Returns the send time with the result.
    async fn exchange(
        &mut self,
        shared: &Shared,
        req: &Request,
    ) -> (Instant, Result<Response, String>) {
        let mut sent = Instant::now();
        for attempt in 0..2 {
            if let Err(e) = self.connect(shared).await {
                return (sent, Err(e));
            }
            let reused = self.answered > 0;
            if attempt == 0 {
                sent = Instant::now();
            }
            let result = match self.send(&req.bytes).await {
                Ok(()) => self.receive(req.head_request, shared.timeout).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(r) => {
                    if r.close {
                        self.close();
                    }
                    return (sent, Ok(r));
                }
                Err(e) => {
                    self.close();
                    if !(reused && attempt == 0 && e.stale()) {
                        return (sent, Err(e.text("exchange")));
                    }
                }
            }
        }
        (sent, Err("the target closed the connection twice".into()))
    }
}

/// Replays one recorded connection in pass `pass` of the open-loop schedule.
pub async fn open_loop(shared: Arc<Shared>, conn: usize, pass: u64) {
    let Some(schedule) = shared.schedule else {
        return;
    };
    let plan = Arc::clone(&shared.plan);
    let Some(connection) = plan.connections.get(conn) else {
        return;
    };
    let mut batch = Batch {
        shared: &shared,
        samples: Vec::new(),
    };
    let mut link = Link::default();
    let list = &connection.requests;
    let mut i = 0;
    while i < list.len() {
        let mut j = i + 1;
        while list
            .get(j)
            .and_then(|&r| plan.requests.get(r))
            .is_some_and(|r| r.pipelined)
        {
            j += 1;
        }
        let group: Vec<(usize, &Request, Instant)> = list
            .get(i..j)
            .unwrap_or(&[])
            .iter()
            .filter_map(|&r| {
                let req = plan.requests.get(r)?;
                let at = schedule.at(pass, req.offset_ns);
                schedule
                    .sends(pass, at)
                    .then(|| (r, req, shared.start + Duration::from_nanos(at)))
            })
            .collect();
        if group.is_empty() {
            break;
        }
        if let [(index, req, intended)] = group.as_slice() {
            shared.pacer.sleep_until(*intended).await;
            let (sent, result) = link.exchange(&shared, req).await;
            let outcome = result.map_or_else(Outcome::Error, |r| judge(&plan, req, &r));
            batch.record(*index, *intended, sent, Instant::now(), outcome);
        } else {
            pipelined(&shared, &mut link, &mut batch, &group).await;
        }
        i = j;
    }
    batch.flush();
}

/// Writes a pipelined group of requests at their times, then reads their responses in order.
async fn pipelined(
    shared: &Shared,
    link: &mut Link,
    batch: &mut Batch<'_>,
    group: &[(usize, &Request, Instant)],
) {
    let mut sent = Vec::with_capacity(group.len());
    let mut failed: Option<String> = link.connect(shared).await.err();
    for (_, req, intended) in group {
        shared.pacer.sleep_until(*intended).await;
        sent.push(Instant::now());
        if failed.is_none()
            && let Err(e) = link.send(&req.bytes).await
        {
            failed = Some(e.text("sending"));
        }
    }
    let mut close = false;
    for ((index, req, intended), sent) in group.iter().zip(sent) {
        let outcome = match &failed {
            Some(e) => Outcome::Error(e.clone()),
            None => match link.receive(req.head_request, shared.timeout).await {
                Ok(r) => {
                    close |= r.close;
                    judge(&shared.plan, req, &r)
                }
                Err(e) => {
                    let text = e.text("receiving");
                    failed = Some(text.clone());
                    Outcome::Error(text)
                }
            },
        };
        batch.record(*index, *intended, sent, Instant::now(), outcome);
    }
    // The connection goes on with the recorded one, unless it broke or the target ends it.
    if failed.is_some() || close {
        link.close();
    }
}

/// A closed-loop worker: takes the next request, sends it, waits for the answer, repeats,
/// until the snapshot is done (or, with a deadline, the time is up, looping the snapshot).
pub async fn closed_loop(shared: Arc<Shared>, next: Arc<AtomicU64>) {
    let plan = Arc::clone(&shared.plan);
    let count = plan.requests.len() as u64;
    if count == 0 {
        return;
    }
    let mut batch = Batch {
        shared: &shared,
        samples: Vec::new(),
    };
    let mut link = Link::default();
    loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        let index = match shared.deadline {
            Some(deadline) if Instant::now() >= deadline => break,
            Some(_) => k % count,
            None if k >= count => break,
            None => k,
        };
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        let Some(req) = plan.requests.get(index) else {
            break;
        };
        let (sent, result) = link.exchange(&shared, req).await;
        let outcome = result.map_or_else(Outcome::Error, |r| judge(&plan, req, &r));
        batch.record(index, sent, sent, Instant::now(), outcome);
    }
    batch.flush();
}
