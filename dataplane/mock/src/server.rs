//! The HTTP/1.1 server: tokio, one task per connection, requests answered in order (keep-alive
//! and pipelining), each through the [`Index`].
//!
//! [`Mock::respond`] turns one parsed request into the bytes of its answer without I/O; the
//! connection task only reads, calls it, optionally waits the recorded latency, and writes.
//! HTTP/1.0 clients get `Connection: close` and the connection is closed after the response.
//! `--latency recorded` waits, per request, the recorded time from the request's last byte to
//! the response's last byte, measured from when the request was read (tokio's timer: about
//! 1 ms granularity); answers on one connection stay in order, so pipelined requests wait one
//! after the other, as a sequential server would make them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::error::MockError;
use crate::index::{Decision, Index, Request};
use crate::nomatch::{self, NO_MATCH_REASON};
use crate::render::own_response;
use crate::wire::{Limits, Parse, Parsed, parse_request};

/// Unmatched requests remembered for the summary.
const UNMATCHED_SAMPLES: usize = 20;
/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;
/// Recorded bytes at least this long are written from the index rather than copied into the
/// connection's output buffer.
const DIRECT_WRITE: usize = 4096;

/// Whether answers wait the recorded latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Latency {
    /// Answer at once.
    #[default]
    None,
    /// Wait the recorded time between the request's last byte and the response's last byte.
    Recorded,
}

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Whether to wait the recorded latency.
    pub latency: Latency,
    /// Bounds on one request.
    pub limits: Limits,
    /// The status of a no-match answer.
    pub no_match_status: u16,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            latency: Latency::None,
            limits: Limits::default(),
            no_match_status: nomatch::NO_MATCH_STATUS,
        }
    }
}

/// Counters of a mock's work so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Connections accepted.
    pub connections: u64,
    /// Requests read whole (answered by a recorded response or by a no-match answer).
    pub requests: u64,
    /// Answered by an identical recorded request.
    pub exact: u64,
    /// Answered by the closest recorded request.
    pub closest: u64,
    /// Answered with the no-match response.
    pub unmatched: u64,
    /// Requests that could not be read (answered 400, 413, 431 or 501, then closed).
    pub bad_requests: u64,
    /// The first distinct unmatched requests, one line each.
    pub unmatched_samples: Vec<String>,
}

#[derive(Debug, Default)]
struct Stats {
    connections: AtomicU64,
    requests: AtomicU64,
    exact: AtomicU64,
    closest: AtomicU64,
    unmatched: AtomicU64,
    bad_requests: AtomicU64,
    samples: Mutex<Vec<String>>,
}

/// What [`Mock::respond`] wrote and what the connection must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Responded<'a> {
    /// Wait this long (from when the request was read) before sending the answer.
    pub delay: Duration,
    /// Close the connection after the answer.
    pub close: bool,
    /// The rest of the answer, to be written after what was appended to the output buffer:
    /// large recorded bytes are sent from the index without a copy.
    pub direct: Option<&'a [u8]>,
}

/// A mock server's state: the index, the settings and the counters.
#[derive(Debug)]
pub struct Mock {
    index: Index,
    config: ServerConfig,
    stats: Stats,
}

impl Mock {
    /// A mock answering from `index`.
    pub fn new(index: Index, config: ServerConfig) -> Self {
        Mock {
            index,
            config,
            stats: Stats::default(),
        }
    }

    /// The index it answers from.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The counters so far.
    pub fn summary(&self) -> Summary {
        let s = &self.stats;
        Summary {
            connections: s.connections.load(Ordering::Relaxed),
            requests: s.requests.load(Ordering::Relaxed),
            exact: s.exact.load(Ordering::Relaxed),
            closest: s.closest.load(Ordering::Relaxed),
            unmatched: s.unmatched.load(Ordering::Relaxed),
            bad_requests: s.bad_requests.load(Ordering::Relaxed),
            unmatched_samples: s.samples.lock().map(|v| v.clone()).unwrap_or_default(),
        }
    }

    /// Answers one request: appends the response to `out` and says how to send it.
    pub fn respond(&self, parsed: &Parsed<'_>, out: &mut Vec<u8>) -> Responded<'_> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let close = !parsed.keep_alive || parsed.version == 0;
        let request = Request {
            method: parsed.method,
            target: parsed.target,
            headers: &parsed.headers,
            body: &parsed.body,
        };
        let (recorded, counter) = match self.index.answer(&request) {
            Decision::Exact { recorded, call } => {
                tracing::debug!(recorded, call, "exact match");
                (recorded, &self.stats.exact)
            }
            Decision::Closest {
                recorded,
                call,
                score,
            } => {
                tracing::debug!(recorded, call, score = score.total, "closest match");
                (recorded, &self.stats.closest)
            }
            Decision::NoMatch { scope, candidates } => {
                self.stats.unmatched.fetch_add(1, Ordering::Relaxed);
                let line = nomatch::summary(&self.index, &request, &candidates);
                tracing::warn!("no recorded response matches {line}");
                if let Ok(mut samples) = self.stats.samples.lock()
                    && samples.len() < UNMATCHED_SAMPLES
                    && !samples.contains(&line)
                {
                    samples.push(line);
                }
                let mut body = nomatch::body(&self.index, &request, scope, &candidates).to_string();
                body.push('\n');
                out.extend_from_slice(&own_response(
                    self.config.no_match_status,
                    NO_MATCH_REASON,
                    "no-match",
                    "application/json",
                    body.as_bytes(),
                    close,
                ));
                return Responded {
                    delay: Duration::ZERO,
                    close,
                    direct: None,
                };
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let (Some(rendered), Some(r)) = (
            self.index.rendered(recorded),
            self.index.recorded().get(recorded),
        ) else {
            return Responded {
                delay: Duration::ZERO,
                close: true,
                direct: None,
            };
        };
        let tail: &[u8] = if close {
            out.extend_from_slice(&rendered.close_head);
            if rendered.close_has_body {
                &r.response.body
            } else {
                &[]
            }
        } else {
            &rendered.keep_alive
        };
        let direct = if tail.len() >= DIRECT_WRITE {
            Some(tail)
        } else {
            out.extend_from_slice(tail);
            None
        };
        let delay = match self.config.latency {
            Latency::None => Duration::ZERO,
            Latency::Recorded => r.latency,
        };
        Responded {
            delay,
            close,
            direct,
        }
    }

    /// Accepts connections on `listener` until `shutdown` completes.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        self.stats.connections.fetch_add(1, Ordering::Relaxed);
                        let mock = Arc::clone(&self);
                        tokio::spawn(async move {
                            if let Err(e) = mock.connection(stream).await {
                                tracing::debug!(%peer, error = %e, "connection ended");
                            }
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors, or a connection reset before accept: wait.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
            }
        }
    }

    async fn connection(&self, mut stream: TcpStream) -> std::io::Result<()> {
        let limits = self.config.limits;
        let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        let mut continued = false;
        loop {
            let mut start = 0usize;
            let mut close = false;
            loop {
                let rest = buf.get(start..).unwrap_or_default();
                if rest.is_empty() {
                    break;
                }
                match parse_request(rest, limits) {
                    Ok(Parse::Complete(parsed)) => {
                        let read_at = tokio::time::Instant::now();
                        let mark = out.len();
                        let responded = self.respond(&parsed, &mut out);
                        start += parsed.consumed;
                        continued = false;
                        if !responded.delay.is_zero() {
                            let (before, answer) = out.split_at(mark.min(out.len()));
                            stream.write_all(before).await?;
                            tokio::time::sleep_until(read_at + responded.delay).await;
                            stream.write_all(answer).await?;
                            out.clear();
                        }
                        if let Some(direct) = responded.direct {
                            if !out.is_empty() {
                                stream.write_all(&out).await?;
                                out.clear();
                            }
                            stream.write_all(direct).await?;
                        }
                        if responded.close {
                            close = true;
                            break;
                        }
                    }
                    Ok(Parse::NeedHead) => break,
                    Ok(Parse::NeedBody { expect_continue }) => {
                        if expect_continue && !continued {
                            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                            continued = true;
                        }
                        break;
                    }
                    Err(e) => {
                        self.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "unreadable request");
                        let (status, reason) = e.status();
                        let body = format!("tapline mock: {e}\n");
                        out.extend_from_slice(&own_response(
                            status,
                            reason,
                            "error",
                            "text/plain",
                            body.as_bytes(),
                            true,
                        ));
                        close = true;
                        break;
                    }
                }
            }
            if !out.is_empty() {
                stream.write_all(&out).await?;
                out.clear();
            }
            if close {
                stream.shutdown().await?;
                return Ok(());
            }
            buf.drain(..start.min(buf.len()));
            if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                buf.reserve(READ_CHUNK);
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
    }
}

/// Binds a listening socket on `addr`.
///
/// # Errors
/// [`MockError::Bind`] naming the address when the kernel refuses it.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, MockError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| MockError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| MockError::Bind { addr, source })?;
    Ok(listener)
}

/// Serves `mock` on `listener` with `threads` worker threads (1: a single-threaded runtime)
/// until SIGINT or SIGTERM, calling `ready` once the signal handlers are in place; returns the
/// counters.
///
/// # Errors
/// [`MockError::Runtime`] when the runtime or the signal handlers cannot be set up.
pub fn run(
    mock: Arc<Mock>,
    listener: std::net::TcpListener,
    threads: usize,
    ready: impl FnOnce(),
) -> Result<Summary, MockError> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .map_err(|source| MockError::Runtime {
        what: "starting the async runtime",
        source,
    })?;
    let served = Arc::clone(&mock);
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener).map_err(|source| MockError::Runtime {
            what: "registering the listening socket",
            source,
        })?;
        let signal_error = |source| MockError::Runtime {
            what: "installing the SIGINT/SIGTERM handlers",
            source,
        };
        let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
        ready();
        let shutdown = async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        };
        served.serve(listener, shutdown).await;
        Ok::<(), MockError>(())
    })?;
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(mock.summary())
}

#[cfg(test)]
mod tests;
