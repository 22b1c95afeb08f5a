//! Helpers of the `tapline mirror` tests: a small HTTP service in Python whose variants
//! differ on some paths or answer slowly, a running `tapline mirror` whose live summary lines
//! are followed and which is stopped with SIGINT, and `curl` and `wrk` as production's
//! clients.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::process::{describe, run_with_timeout, tail};
use crate::{E2eError, Netns, Result};

/// How long `tapline mirror` may take to create its environment, start the build and attach.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to stop, drain and write its report after SIGINT.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// The service: `/users/N` and `/orders/N` answer JSON; variant `b` adds one to every order's
/// total (so it differs on `/orders/*` only); `--sleep S` waits S seconds before each answer.
/// With `--dep URL`, an order's total is the price its dependency (`URL/price/N`, this same
/// program) gives, and 502 when the dependency cannot be reached.
pub const APP_PY: &str = r#"import argparse, json, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--variant", default="a")
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--dep", default="")
a = p.parse_args()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if a.sleep:
            time.sleep(a.sleep)
        parts = self.path.split("?")[0].strip("/").split("/")
        status, body = 404, {"error": "not found"}
        if len(parts) == 2 and parts[1].isdigit():
            n = int(parts[1])
            if parts[0] == "users":
                status, body = 200, {"id": n, "name": "user %d" % n}
            elif parts[0] == "price":
                status, body = 200, {"n": n, "price": 7 * n}
            elif parts[0] == "orders":
                total = 10 * n
                if a.dep:
                    try:
                        with urllib.request.urlopen("%s/price/%d" % (a.dep, n), timeout=2) as r:
                            total = json.loads(r.read())["price"]
                    except Exception as e:
                        total = None
                        status, body = 502, {"error": str(e)}
                if total is not None:
                    total += 1 if a.variant == "b" else 0
                    status, body = 200, {"id": n, "total": total, "currency": "EUR"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


ThreadingHTTPServer.daemon_threads = True
# Python's default backlog of 5 drops the SYNs of a burst of new connections (1 s retries).
ThreadingHTTPServer.request_queue_size = 128
# A client that goes away mid-connection (wrk at its end) is not worth a traceback.
ThreadingHTTPServer.handle_error = lambda self, request, address: None
server = ThreadingHTTPServer(("0.0.0.0", a.port), Handler)
print("READY", flush=True)
server.serve_forever()
"#;

/// Writes the service into `dir`; returns its path.
///
/// # Errors
/// When the file cannot be written.
pub fn write_app(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("app.py");
    std::fs::write(&path, APP_PY).map_err(|e| E2eError::Output {
        tool: "app.py".into(),
        reason: format!("{}: {e}", path.display()),
    })?;
    Ok(path)
}

/// How a `tapline mirror` run ended.
#[derive(Debug)]
pub struct MirrorEnd {
    /// Exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Its stdout (progress lines and the summary).
    pub stdout: String,
    /// Its stderr (live summary lines, errors).
    pub stderr: String,
}

/// A running `tapline mirror`; killed on drop when not stopped.
#[derive(Debug)]
pub struct MirrorRun {
    child: Child,
    command: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

/// Collects the lines of `pipe` into `lines` on a thread.
fn collect<R: Read + Send + 'static>(pipe: R, lines: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut all) = lines.lock() {
                all.push(line);
            }
        }
    })
}

impl MirrorRun {
    /// Starts `tapline mirror ARGS...` and waits until it says it is mirroring.
    ///
    /// # Errors
    /// When it cannot start, or exits or stays silent instead.
    pub fn start(args: &[&str]) -> Result<Self> {
        let mut command = Command::new(crate::tapline::binary()?);
        command
            .arg("mirror")
            .args(args)
            .env("TAPLINE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let description = describe(&command);
        let mut child = command.spawn().map_err(|source| E2eError::Spawn {
            command: description.clone(),
            source,
        })?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            readers.push(collect(pipe, Arc::clone(&stdout)));
        }
        if let Some(pipe) = child.stderr.take() {
            readers.push(collect(pipe, Arc::clone(&stderr)));
        }
        let mut run = MirrorRun {
            child,
            command: description,
            stdout,
            stderr,
            readers,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if run.stdout_lines().iter().any(|l| l.contains("mirroring;")) {
                return Ok(run);
            }
            if Instant::now() >= deadline || !matches!(run.child.try_wait(), Ok(None)) {
                let end = run.finish(None);
                return Err(E2eError::Failed {
                    command: run.command.clone(),
                    status: format!("did not start mirroring (exit {:?})", end.code),
                    stderr: tail(&format!("{}\n{}", end.stdout, end.stderr), 3000),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The process id of the build under test (as the mirror printed it).
    pub fn build_pid(&self) -> Option<u32> {
        self.stdout_lines().iter().find_map(|l| {
            let rest = l.split("build started (pid ").nth(1)?;
            rest.split(')').next()?.parse().ok()
        })
    }

    /// The last live summary: (mirrored, dropped).
    pub fn counted(&self) -> Option<(u64, u64)> {
        let lines = self.stderr.lock().ok()?;
        lines.iter().rev().find_map(|l| {
            let number = |key: &str| -> Option<u64> {
                l.split(key).nth(1)?.split_whitespace().next()?.parse().ok()
            };
            Some((number(" mirrored ")?, number(" dropped ")?))
        })
    }

    /// Waits until the live summary counts at least `n` requests mirrored or dropped, at most
    /// `timeout`; returns the last counts.
    pub fn wait_counted(&self, n: u64, timeout: Duration) -> Option<(u64, u64)> {
        let deadline = Instant::now() + timeout;
        loop {
            let counted = self.counted();
            if counted.is_some_and(|(m, d)| m + d >= n) || Instant::now() >= deadline {
                return counted;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops it with SIGINT and waits for it to write its report.
    pub fn stop(mut self) -> MirrorEnd {
        self.finish(Some(Signal::SIGINT))
    }

    fn finish(&mut self, signal: Option<Signal>) -> MirrorEnd {
        if let Some(signal) = signal
            && matches!(self.child.try_wait(), Ok(None))
        {
            let _ = kill(Pid::from_raw(self.child.id().cast_signed()), signal);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    // Our own child: end it by its handle.
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
            }
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        MirrorEnd {
            code: status.and_then(|s| s.code()),
            stdout: self.stdout_lines().join("\n"),
            stderr: self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default(),
        }
    }
}

impl Drop for MirrorRun {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends one GET with curl from `netns`; returns the status (0 when curl failed).
///
/// # Errors
/// When curl cannot be run.
pub fn curl(netns: &Netns, url: &str) -> Result<u16> {
    let run = run_with_timeout(
        netns.command("curl").args([
            "-s",
            "-o",
            "/dev/null",
            "-m",
            "10",
            "-w",
            "%{http_code}",
            url,
        ]),
        Duration::from_secs(20),
    )?;
    Ok(run.stdout_text().trim().parse().unwrap_or(0))
}

/// What `wrk` measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WrkResult {
    /// Requests completed.
    pub requests: u64,
    /// Socket errors and non-2xx/3xx responses.
    pub errors: u64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

/// Runs `wrk -t 2 -c CONNECTIONS -d SECONDS --latency URL` from `netns`.
///
/// # Errors
/// When wrk fails or its output cannot be read.
pub fn wrk(netns: &Netns, url: &str, seconds: u32, connections: u32) -> Result<WrkResult> {
    let run = run_with_timeout(
        netns.command("wrk").args([
            "-t",
            "2",
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            url,
        ]),
        Duration::from_secs(u64::from(seconds) + 30),
    )?
    .checked(Duration::from_secs(u64::from(seconds) + 30))?;
    parse_wrk(&run.stdout_text()).ok_or_else(|| E2eError::Output {
        tool: "wrk".into(),
        reason: tail(&run.stdout_text(), 2000),
    })
}

/// Reads wrk's output.
pub fn parse_wrk(text: &str) -> Option<WrkResult> {
    let mut result = WrkResult::default();
    let mut found = false;
    for line in text.lines().map(str::trim) {
        if let Some((n, _)) = line.split_once(" requests in ") {
            result.requests = n.trim().parse().ok()?;
            found = true;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            result.errors += rest
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            result.errors += rest.trim().parse::<u64>().ok()?;
        } else if let Some(rest) = line.strip_prefix("50%") {
            result.p50_ms = wrk_ms(rest.trim())?;
        } else if let Some(rest) = line.strip_prefix("99%") {
            result.p99_ms = wrk_ms(rest.trim())?;
        }
    }
    found.then_some(result)
}

/// A wrk duration (`812.00us`, `1.23ms`, `2.00s`) in ms.
fn wrk_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

/// Reads `report.json` from `dir`.
///
/// # Errors
/// When it is missing or not JSON.
pub fn read_report(dir: &Path) -> Result<serde_json::Value> {
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path).map_err(|e| E2eError::Output {
        tool: "tapline mirror".into(),
        reason: format!("{}: {e}", path.display()),
    })?;
    serde_json::from_str(&text).map_err(|e| E2eError::Output {
        tool: "tapline mirror".into(),
        reason: format!("{}: {e}", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 3s test @ http://10.231.0.1:8080/users/1\n  2 threads and 4 connections\n  Latency Distribution\n     50%  812.00us\n     75%    1.10ms\n     99%    3.52ms\n  5230 requests in 3.00s, 800.00KB read\n  Socket errors: connect 0, read 1, write 0, timeout 2\n  Non-2xx or 3xx responses: 4\nRequests/sec:   1743.21\n";
        let r = parse_wrk(text).unwrap();
        assert_eq!(r.requests, 5230);
        assert_eq!(r.errors, 7);
        assert!((r.p50_ms - 0.812).abs() < 1e-9);
        assert!((r.p99_ms - 3.52).abs() < 1e-9);
        assert!(parse_wrk("nothing").is_none());
    }
}
