//! The load generator behind `bench/import.sh`: exactly N HTTP/1.1 keep-alive GETs spread over C
//! connections, one thread per connection, every response read whole and checked for status 200.
//!
//! Exactness matters more than speed here: the benchmark compares the number of pairs tapline
//! finds in the capture with the number this generator completed.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::LoadError;
use crate::response::ResponseReader;

/// What to send, where, and how much.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server.
    pub target: SocketAddr,
    /// Requests in all.
    pub requests: u64,
    /// Connections (and threads).
    pub connections: usize,
    /// The path requested.
    pub path: String,
    /// The `Host` header.
    pub host: String,
    /// Requests written back to back before their responses are read (1: no pipelining).
    pub pipeline: usize,
    /// The whole run stops with an error after this long.
    pub deadline: Duration,
    /// Read and write timeout of each socket.
    pub io_timeout: Duration,
}

/// Totals of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Requests whose 200 response was read whole.
    pub completed: u64,
    /// Responses with another status.
    pub bad_status: u64,
    /// Response bytes read (heads and bodies).
    pub bytes: u64,
    /// Connections opened again after the server closed one.
    pub reconnects: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The first error of each connection that ended early.
    pub errors: Vec<String>,
}

impl LoadReport {
    /// Requests per second over the run.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.completed as f64 / secs
        } else {
            0.0
        }
    }
}

/// Splits `requests` over `connections` as evenly as possible; the counts add up exactly.
pub fn split(requests: u64, connections: usize) -> Vec<u64> {
    let c = u64::try_from(connections.max(1)).unwrap_or(1);
    let (base, rest) = (requests / c, requests % c);
    (0..c).map(|i| base + u64::from(i < rest)).collect()
}

/// The bytes of one GET request: the request line and `Host`, nothing more, so that the small
/// capture keeps its packets small.
pub fn request_bytes(path: &str, host: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

/// Runs the load: one thread per connection, joined before returning.
///
/// # Errors
/// [`LoadError::Usage`] when the config asks for no connections or a zero pipeline depth.
/// Errors on connections are not returned: they end that connection and are listed in
/// [`LoadReport::errors`], and its requests are missing from [`LoadReport::completed`].
pub fn run(cfg: &LoadConfig) -> Result<LoadReport, LoadError> {
    if cfg.connections == 0 || cfg.pipeline == 0 {
        return Err(LoadError::Usage(
            "--connections and --pipeline must be at least 1".into(),
        ));
    }
    let request = request_bytes(&cfg.path, &cfg.host);
    let started = Instant::now();
    let deadline = started + cfg.deadline;
    let shares = split(cfg.requests, cfg.connections);
    let results: Vec<ConnReport> = std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .iter()
            .map(|&n| {
                let request = &request;
                s.spawn(move || run_connection(cfg, request, n, deadline))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| ConnReport {
                    error: Some("connection thread panicked".into()),
                    ..ConnReport::default()
                })
            })
            .collect()
    });
    let mut report = LoadReport {
        elapsed: started.elapsed(),
        ..LoadReport::default()
    };
    for r in results {
        report.completed += r.completed;
        report.bad_status += r.bad_status;
        report.bytes += r.bytes;
        report.reconnects += r.reconnects;
        report.errors.extend(r.error);
    }
    Ok(report)
}

/// What one connection thread did.
#[derive(Debug, Default)]
struct ConnReport {
    completed: u64,
    bad_status: u64,
    bytes: u64,
    reconnects: u64,
    error: Option<String>,
}

fn connect(cfg: &LoadConfig) -> Result<ResponseReader<TcpStream>, LoadError> {
    let stream = TcpStream::connect_timeout(&cfg.target, cfg.io_timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(cfg.io_timeout))?;
    stream.set_write_timeout(Some(cfg.io_timeout))?;
    Ok(ResponseReader::new(stream))
}

/// Sends `n` requests on one connection (opening a new one if the server closes it).
fn run_connection(cfg: &LoadConfig, request: &[u8], n: u64, deadline: Instant) -> ConnReport {
    let mut rep = ConnReport::default();
    if let Err(e) = drive(cfg, request, n, deadline, &mut rep) {
        rep.error = Some(e.to_string());
    }
    rep
}

fn drive(
    cfg: &LoadConfig,
    request: &[u8],
    n: u64,
    deadline: Instant,
    rep: &mut ConnReport,
) -> Result<(), LoadError> {
    if n == 0 {
        return Ok(());
    }
    let depth = u64::try_from(cfg.pipeline).unwrap_or(1);
    let batch = request.repeat(cfg.pipeline);
    let mut conn = connect(cfg)?;
    let mut left = n;
    while left > 0 {
        if Instant::now() > deadline {
            return Err(LoadError::Deadline(cfg.deadline));
        }
        let k = depth.min(left);
        // k <= pipeline, so the slice is within `batch`.
        let len = request.len() * usize::try_from(k).unwrap_or(1);
        conn.inner_mut()
            .write_all(batch.get(..len).unwrap_or(request))?;
        let mut closed = false;
        for _ in 0..k {
            let resp = conn.read_response()?;
            rep.bytes += resp.wire_len;
            if resp.status == 200 {
                rep.completed += 1;
            } else {
                rep.bad_status += 1;
            }
            left -= 1;
            if resp.close {
                closed = true;
                break;
            }
        }
        if closed && left > 0 {
            conn = connect(cfg)?;
            rep.reconnects += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn request_is_minimal() {
        assert_eq!(
            request_bytes("/small", "10.99.0.1"),
            b"GET /small HTTP/1.1\r\nHost: 10.99.0.1\r\n\r\n"
        );
    }

    #[test]
    fn split_is_exact_and_even() {
        assert_eq!(split(10, 3), [4, 3, 3]);
        assert_eq!(split(2, 4), [1, 1, 0, 0]);
        assert_eq!(split(0, 2), [0, 0]);
        assert_eq!(split(7, 0), [7]);
        for (n, c) in [(1_000_003, 7), (5, 5), (600_000, 64)] {
            let parts = split(n, c);
            assert_eq!(parts.iter().sum::<u64>(), n);
            assert!(parts.iter().max().unwrap() - parts.iter().min().unwrap() <= 1);
        }
    }

    /// A tiny keep-alive server: answers each request head with a fixed response and closes the
    /// connection after `close_after` responses (with `Connection: close`).
    fn serve(listener: TcpListener, conns: usize, close_after: usize, status: u16) {
        for _ in 0..conns {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let mut served = 0;
                loop {
                    while let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..i + 4);
                        served += 1;
                        let last = served == close_after;
                        let extra = if last { "Connection: close\r\n" } else { "" };
                        let resp =
                            format!("HTTP/1.1 {status} X\r\nContent-Length: 3\r\n{extra}\r\nabc");
                        if s.write_all(resp.as_bytes()).is_err() || last {
                            return;
                        }
                    }
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    }

    fn config(
        target: SocketAddr,
        requests: u64,
        connections: usize,
        pipeline: usize,
    ) -> LoadConfig {
        LoadConfig {
            target,
            requests,
            connections,
            path: "/small".into(),
            host: "test".into(),
            pipeline,
            deadline: Duration::from_secs(30),
            io_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn completes_exactly_n_over_c_connections() {
        for pipeline in [1, 4] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            std::thread::spawn(move || serve(listener, 3, usize::MAX, 200));
            let rep = run(&config(addr, 1001, 3, pipeline)).unwrap();
            assert_eq!(rep.completed, 1001, "{:?}", rep.errors);
            assert!(rep.errors.is_empty());
            assert_eq!(rep.reconnects, 0);
        }
    }

    #[test]
    fn reconnects_when_the_server_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // 25 requests, 10 per connection: 3 connections, 2 of them reopened.
        std::thread::spawn(move || serve(listener, 3, 10, 200));
        let rep = run(&config(addr, 25, 1, 1)).unwrap();
        assert_eq!((rep.completed, rep.reconnects), (25, 2), "{:?}", rep.errors);
    }

    #[test]
    fn counts_other_statuses_apart() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve(listener, 1, usize::MAX, 404));
        let rep = run(&config(addr, 5, 1, 1)).unwrap();
        assert_eq!((rep.completed, rep.bad_status), (0, 5));
    }

    #[test]
    fn refused_connection_is_reported_not_fatal() {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let rep = run(&config(addr, 4, 2, 1)).unwrap();
        assert_eq!(rep.completed, 0);
        assert_eq!(rep.errors.len(), 2);
    }

    #[test]
    fn rejects_zero_connections() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(matches!(
            run(&config(addr, 1, 0, 1)),
            Err(LoadError::Usage(_))
        ));
    }
}
