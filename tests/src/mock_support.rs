//! Helpers of the `tapline mock` end-to-end tests: the recorded dependencies (a small Python
//! HTTP service and its client), a running `tapline mock` stopped with SIGTERM, `curl`
//! through it, waiting for a capture to settle, and hand-made captures for tests without root.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub use crate::capture::wait_until_settled;
use crate::pcap::{PcapBuilder, connection, frame};
use crate::process::{describe, run_with_timeout};
use crate::{E2eError, Result};

/// A dependency service: every answer names the service (`--name`), so two of them answer the
/// same path differently. Routes: `/v1/status` (JSON), `/v1/counter/KEY` (JSON with a count
/// that grows on each call: identical requests get different answers), `/v1/items/ID`,
/// `/v1/binary/N` (N binary bytes), `/v1/chunked/N` (chunked), `POST /v1/echo` (201, the body
/// reversed), `/v1/slow` (after 300 ms), `/v1/fail` (500); anything else 404.
pub const DEPENDENCY_PY: &str = r#"
import argparse, hashlib, json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--name", required=True)
args = p.parse_args()
counts = {}
lock = threading.Lock()

def blob(n, key):
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(("%s/%s/%d" % (args.name, key, i)).encode()).digest()
        i += 1
    return out[:n]

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dep-" + args.name
    sys_version = ""
    def log_message(self, *a):
        pass
    def send(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def js(self, status, obj):
        self.send(status, (json.dumps(obj, sort_keys=True) + "\n").encode())
    def do_GET(self):
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if parts[:2] == ["v1", "status"]:
            return self.js(200, {"service": args.name, "status": "ok"})
        if parts[:2] == ["v1", "counter"] and len(parts) == 3:
            with lock:
                counts[parts[2]] = counts.get(parts[2], 0) + 1
                n = counts[parts[2]]
            return self.js(200, {"service": args.name, "key": parts[2], "n": n})
        if parts[:2] == ["v1", "items"] and len(parts) == 3:
            return self.js(200, {"service": args.name, "item": parts[2], "price": len(parts[2]) * 7})
        if parts[:2] == ["v1", "binary"] and len(parts) == 3:
            return self.send(200, blob(int(parts[2]), self.path), "application/octet-stream")
        if parts[:2] == ["v1", "chunked"] and len(parts) == 3:
            body = blob(int(parts[2]), self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 1000):
                c = body[i:i + 1000]
                self.wfile.write(b"%x\r\n" % len(c) + c + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        if parts[:2] == ["v1", "slow"]:
            time.sleep(0.3)
            return self.js(200, {"service": args.name, "slow": True})
        if parts[:2] == ["v1", "fail"]:
            return self.js(500, {"service": args.name, "error": "boom"})
        return self.js(404, {"service": args.name, "error": "not found"})
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        if self.path == "/v1/echo":
            return self.send(201, body[::-1], "application/octet-stream")
        return self.js(404, {"service": args.name, "error": "not found"})

srv = ThreadingHTTPServer(("127.0.0.1", args.port), H)
print("READY", flush=True)
srv.serve_forever()
"#;

/// The service under test, as far as its outbound calls go: it calls its dependencies over
/// keep-alive connections and writes what it got (`--out`, a JSON list of
/// `{port, method, target, status, body_hex}`). Arguments: `--out FILE` then
/// `PORT:METHOD:TARGET[:BODY]` calls in order.
pub const CLIENT_PY: &str = r#"
import http.client, json, sys
out = sys.argv[2]
conns = {}
seen = []
for call in sys.argv[3:]:
    port, method, target, *body = call.split(":", 3)
    body = body[0].encode() if body else None
    c = conns.get(port)
    if c is None:
        c = conns[port] = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    c.request(method, target, body=body)
    r = c.getresponse()
    data = r.read()
    seen.append({"port": int(port), "method": method, "target": target,
                 "status": r.status, "body_hex": data.hex()})
for c in conns.values():
    c.close()
json.dump(seen, open(out, "w"))
print("DONE %d" % len(seen))
"#;

/// Writes `text` to `dir/name` and returns the path.
///
/// # Errors
/// When the file cannot be written.
pub fn write_script(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| E2eError::Output {
        tool: "write_script".to_owned(),
        reason: format!("{}: {e}", path.display()),
    })?;
    Ok(path)
}

/// A `tapline mock` running in the background; stopped with SIGTERM, killed on drop.
#[derive(Debug)]
pub struct MockProcess {
    child: Child,
    command: String,
    addr: Option<std::net::SocketAddr>,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

/// How a stopped `tapline mock` ended.
#[derive(Debug)]
pub struct Stopped {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it printed on stdout (banner and summary).
    pub stdout: String,
    /// Everything it printed on stderr (the log).
    pub stderr: String,
}

impl Stopped {
    /// The number on the summary line `label`, such as `matched exactly`.
    pub fn count(&self, label: &str) -> Option<u64> {
        self.stdout.lines().find_map(|line| {
            let rest = line.trim().strip_prefix(label)?;
            rest.trim().parse().ok()
        })
    }
}

impl MockProcess {
    /// Starts `command` (a `tapline mock ...`) and waits until it prints that it listens.
    ///
    /// # Errors
    /// When it cannot start, or exits or stays silent for `timeout`.
    pub fn start(command: &mut Command, timeout: Duration) -> Result<Self> {
        let description = describe(command);
        let mut child = command
            .env("TAPLINE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| E2eError::Spawn {
                command: description.clone(),
                source,
            })?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let stdout = child.stdout.take().map(|pipe| {
            std::thread::spawn(move || {
                let mut text = String::new();
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Some((_, rest)) = line.split_once("listening on ") {
                        let addr = rest.split_whitespace().next().and_then(|a| a.parse().ok());
                        let _ = ready_tx.send(addr);
                    }
                    text.push_str(&line);
                    text.push('\n');
                }
                text
            })
        });
        let stderr = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        });
        let mut process = Self {
            child,
            command: description,
            addr: None,
            stdout,
            stderr,
        };
        if let Ok(addr) = ready_rx.recv_timeout(timeout) {
            process.addr = addr;
            return Ok(process);
        }
        let _ = process.child.kill();
        let stopped = process.collect()?;
        Err(E2eError::Failed {
            command: process.command.clone(),
            status: format!("did not listen within {timeout:?} ({})", stopped.status),
            stderr: format!("{}{}", stopped.stdout, stopped.stderr),
        })
    }

    /// The address it said it listens on (the real port when asked for port 0).
    pub fn addr(&self) -> Option<std::net::SocketAddr> {
        self.addr
    }

    /// Sends SIGTERM and waits (up to 15 s) for the summary and the exit.
    ///
    /// # Errors
    /// When it does not exit in time.
    pub fn stop(mut self) -> Result<Stopped> {
        let pid = Pid::from_raw(self.child.id().cast_signed());
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(self.child.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                return Err(E2eError::Timeout {
                    command: self.command.clone(),
                    timeout: Duration::from_secs(15),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.collect()
    }

    fn collect(&mut self) -> Result<Stopped> {
        let status = self.child.wait().map_err(|source| E2eError::Spawn {
            command: self.command.clone(),
            source,
        })?;
        let join =
            |h: Option<JoinHandle<String>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
        Ok(Stopped {
            status,
            stdout: join(self.stdout.take()),
            stderr: join(self.stderr.take()),
        })
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // Our own child: end it by its handle.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What curl got.
#[derive(Debug, Clone)]
pub struct CurlAnswer {
    /// The status code.
    pub status: u16,
    /// The response head as received (status line and headers).
    pub head: String,
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// curl's `time_total`.
    pub seconds: f64,
}

impl CurlAnswer {
    /// The value of the header `name` (case-insensitive), when present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Runs `curl` (built by `base`, so it can run inside a namespace) with `args` and the output
/// options that capture head, body, status and time into files under `dir`.
///
/// # Errors
/// When curl fails or prints no status.
pub fn curl(mut base: Command, dir: &Path, args: &[&str]) -> Result<CurlAnswer> {
    let head = dir.join("curl.head");
    let body = dir.join("curl.body");
    let run = run_with_timeout(
        base.args(["-s", "-S", "--max-time", "20", "-D"])
            .arg(&head)
            .arg("-o")
            .arg(&body)
            .args(["-w", "%{http_code} %{time_total}"])
            .args(args),
        Duration::from_secs(30),
    )?;
    let run = run.checked(Duration::from_secs(30))?;
    let text = run.stdout_text();
    let mut words = text.split_whitespace();
    let status = words.next().and_then(|s| s.parse().ok());
    let seconds = words.next().and_then(|s| s.parse().ok());
    let (Some(status), Some(seconds)) = (status, seconds) else {
        return Err(E2eError::Output {
            tool: "curl".to_owned(),
            reason: format!("no status and time in {text:?}"),
        });
    };
    let read = |p: &Path| std::fs::read(p).unwrap_or_default();
    Ok(CurlAnswer {
        status,
        head: String::from_utf8_lossy(&read(&head)).into_owned(),
        body: read(&body),
        seconds,
    })
}

/// Writes an Ethernet pcap of one TCP connection from `client` to `server` (IPv4) on which
/// each of `exchanges` (request bytes, response bytes) is sent in turn, with handshake and
/// close: a capture made by hand, for tests that cannot run tcpdump.
///
/// # Errors
/// When the file cannot be written.
pub fn write_http_pcap(
    path: &Path,
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    exchanges: &[(&[u8], &[u8])],
) -> std::io::Result<()> {
    let mut pcap = PcapBuilder::new();
    let mut usec = 0u32;
    connection((1000, 5000), exchanges.iter().copied(), |segment| {
        usec += 100;
        pcap.record(1_700_000_000, usec, &frame(client, server, &segment));
    });
    std::fs::write(path, pcap.into_bytes())
}
