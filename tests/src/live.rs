//! Helpers of the live-capture tests: a running `tapline capture` stopped with SIGINT (or
//! killed), a SPAN mirror made with `tc ... mirred`, and comparing pairs with what the client
//! saw and with another snapshot.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Deserialize;

use crate::process::{describe, run_checked, tail, watch_lines};
use crate::{E2eError, Netns, Result, RrPair};

/// How long `tapline capture` may take to attach.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to drain, detach and seal after SIGINT.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// How a `tapline capture` run ended.
#[derive(Debug)]
pub struct CaptureEnd {
    /// Exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Its stdout (the summary).
    pub stdout: String,
    /// Its stderr (notes, status lines, errors).
    pub stderr: String,
}

/// A running `tapline capture`; killed on drop when not stopped.
#[derive(Debug)]
pub struct CaptureRun {
    child: Child,
    command: String,
    stderr: Option<JoinHandle<Vec<String>>>,
    stdout: Option<JoinHandle<String>>,
}

impl CaptureRun {
    /// Starts `tapline capture ARGS...` and waits until it says it is capturing.
    ///
    /// # Errors
    /// When it cannot start, or exits or stays silent instead of attaching.
    pub fn start(args: &[&str]) -> Result<Self> {
        let mut command = Command::new(crate::tapline::binary()?);
        command
            .arg("capture")
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
        let (ready_tx, ready_rx) = mpsc::channel();
        let stderr = child
            .stderr
            .take()
            .map(|pipe| watch_lines(pipe, "capturing", ready_tx));
        let stdout = child.stdout.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        });
        let mut run = CaptureRun {
            child,
            command: description,
            stderr,
            stdout,
        };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(()) => Ok(run),
            Err(_) => {
                let end = run.finish(None);
                Err(E2eError::Failed {
                    command: run.command.clone(),
                    status: format!("did not start capturing (exit {:?})", end.code),
                    stderr: tail(&end.stderr, 3000),
                })
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it with SIGINT and waits for it to seal the snapshot.
    pub fn stop(mut self) -> CaptureEnd {
        self.finish(Some(Signal::SIGINT))
    }

    /// Kills it with SIGKILL, as a crash would.
    pub fn kill9(mut self) -> CaptureEnd {
        self.finish(Some(Signal::SIGKILL))
    }

    /// Waits for it to end by itself (`--duration`), at most `timeout`.
    pub fn wait(mut self, timeout: Duration) -> CaptureEnd {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.finish(Some(Signal::SIGKILL))
    }

    /// Sends `signal` (if still running), waits, and collects what it printed.
    fn finish(&mut self, signal: Option<Signal>) -> CaptureEnd {
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
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
            .join("\n");
        let stdout = self
            .stdout
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        CaptureEnd {
            code: status.and_then(|s| s.code()),
            stdout,
            stderr,
        }
    }
}

impl Drop for CaptureRun {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Makes a veth pair `span` / `{span}p` in `netns` (this kernel has no dummy driver) and
/// mirrors both directions of `interface` out of `span` with
/// `tc filter ... u32 match u32 0 0 action mirred egress mirror dev SPAN`: a capture on `span` sees the copies as sent,
/// one on its peer as received. The namespace's removal removes it all.
///
/// # Errors
/// When an `ip` or `tc` command fails.
pub fn mirror_to_span(netns: &Netns, interface: &str, span: &str) -> Result<()> {
    let timeout = Duration::from_secs(30);
    let peer = format!("{span}p");
    netns.run(
        &[
            "ip", "link", "add", span, "type", "veth", "peer", "name", &peer,
        ],
        timeout,
    )?;
    netns.run(&["ip", "link", "set", span, "up"], timeout)?;
    netns.run(&["ip", "link", "set", &peer, "up"], timeout)?;
    netns.run(&["tc", "qdisc", "add", "dev", interface, "clsact"], timeout)?;
    for hook in ["ingress", "egress"] {
        netns.run(
            &[
                // u32 matching everything: this kernel has no matchall classifier.
                "tc", "filter", "add", "dev", interface, hook, "u32", "match", "u32", "0", "0",
                "action", "mirred", "egress", "mirror", "dev", span,
            ],
            timeout,
        )?;
    }
    Ok(())
}

/// Whether an XDP program is attached to `interface` in `netns`.
///
/// # Errors
/// When `ip` fails.
pub fn xdp_attached(netns: &Netns, interface: &str) -> Result<bool> {
    let run = netns.run(
        &["ip", "-d", "link", "show", interface],
        Duration::from_secs(30),
    )?;
    Ok(run.stdout_text().contains("prog/xdp"))
}

/// Attaches a do-nothing XDP program named `tl_xdp_capture` to `interface` in `netns` through
/// netlink (as an older kernel's fallback would), compiled with clang-19 into `dir`: what a
/// killed capture could leave behind.
///
/// # Errors
/// When clang or `ip` fails.
pub fn attach_stale_xdp(netns: &Netns, interface: &str, dir: &Path) -> Result<()> {
    let source = dir.join("stale.bpf.c");
    let object = dir.join("stale.bpf.o");
    std::fs::write(
        &source,
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\
         SEC(\"xdp\") int tl_xdp_capture(struct xdp_md *ctx) { return XDP_PASS; }\n\
         char _license[] SEC(\"license\") = \"GPL\";\n",
    )
    .map_err(|e| E2eError::Netns {
        name: netns.name().to_owned(),
        reason: format!("writing {}: {e}", source.display()),
    })?;
    run_checked(
        Command::new("clang-19")
            .args([
                "-target",
                "bpf",
                "-O2",
                "-g",
                "-I",
                "/usr/include/x86_64-linux-gnu",
                "-c",
            ])
            .arg(&source)
            .arg("-o")
            .arg(&object),
        Duration::from_secs(60),
    )?;
    let object = object.to_string_lossy().into_owned();
    netns.run(
        &[
            "ip",
            "link",
            "set",
            "dev",
            interface,
            "xdpgeneric",
            "obj",
            &object,
            "sec",
            "xdp",
        ],
        Duration::from_secs(30),
    )?;
    Ok(())
}

/// One exchange as `tests/scripts/http_client.py` recorded it.
#[derive(Debug, Clone, Deserialize)]
pub struct Recorded {
    /// The method.
    pub method: String,
    /// The target as sent.
    pub target: String,
    /// The status received.
    pub status: u16,
    /// Request body length.
    pub request_body_len: u64,
    /// SHA-256 of the request body.
    pub request_body_sha256: String,
    /// Response body length (after chunked decoding).
    pub response_body_len: u64,
    /// SHA-256 of the response body.
    pub response_body_sha256: String,
}

/// Reads the client's records.
///
/// # Errors
/// When the file cannot be read or parsed.
pub fn read_recorded(path: &Path) -> Result<Vec<Recorded>> {
    let text = std::fs::read_to_string(path).map_err(|e| E2eError::Output {
        tool: "http_client.py".into(),
        reason: format!("{}: {e}", path.display()),
    })?;
    serde_json::from_str(&text).map_err(|e| E2eError::Output {
        tool: "http_client.py".into(),
        reason: format!("{}: {e}", path.display()),
    })
}

/// Compares the pairs with what the client saw; one line per difference.
pub fn differences(recorded: &[Recorded], pairs: &[RrPair]) -> Vec<String> {
    let mut by_target: BTreeMap<&str, Vec<&RrPair>> = BTreeMap::new();
    for pair in pairs {
        if let Some((_, path)) = pair.method_path() {
            by_target.entry(path).or_default().push(pair);
        }
    }
    let mut problems = Vec::new();
    for want in recorded {
        let found = by_target
            .get(want.target.as_str())
            .map_or(&[][..], Vec::as_slice);
        let [pair] = found else {
            problems.push(format!(
                "{} {}: {} pairs",
                want.method,
                want.target,
                found.len()
            ));
            continue;
        };
        let (Some(request), Some(response)) = (&pair.request, &pair.response) else {
            problems.push(format!("{}: request or response missing", want.target));
            continue;
        };
        let checks = [
            ("method", request.method.clone(), want.method.clone()),
            (
                "status",
                format!("{:?}", response.status),
                format!("{:?}", Some(want.status)),
            ),
            (
                "request body_len",
                request.body_len.to_string(),
                want.request_body_len.to_string(),
            ),
            (
                "request body_sha256",
                request.body_sha256.clone(),
                want.request_body_sha256.clone(),
            ),
            (
                "response body_len",
                response.body_len.to_string(),
                want.response_body_len.to_string(),
            ),
            (
                "response body_sha256",
                response.body_sha256.clone(),
                want.response_body_sha256.clone(),
            ),
        ];
        for (what, got, expected) in checks {
            if got != expected {
                problems.push(format!(
                    "{}: {what} {got}, client saw {expected}",
                    want.target
                ));
            }
        }
        // Informational flags (such as a close-delimited body) are fine; a pair the client
        // saw whole must not be marked incomplete.
        if pair.has_flag("incomplete") {
            problems.push(format!("{}: flags {:?}", want.target, pair.flags));
        }
    }
    if pairs.len() != recorded.len() {
        problems.push(format!(
            "{} pairs for {} recorded exchanges",
            pairs.len(),
            recorded.len()
        ));
    }
    problems
}

/// What must agree between two snapshots of the same traffic: flow, method, path, status,
/// body lengths and hashes, flags (not timestamps or ids).
pub fn pair_key(pair: &RrPair) -> String {
    let request = pair
        .request
        .as_ref()
        .map(|r| format!("{} {} {} {}", r.method, r.path, r.body_len, r.body_sha256));
    let response = pair
        .response
        .as_ref()
        .map(|r| format!("{:?} {} {}", r.status, r.body_len, r.body_sha256));
    format!(
        "{} -> {} | {:?} | {:?} | {:?}",
        pair.flow.src, pair.flow.dst, request, response, pair.flags
    )
}

/// The pairs of `a` and `b` that have no equal in the other, as lines.
pub fn compare_snapshots(a: &[RrPair], b: &[RrPair]) -> Vec<String> {
    let count = |pairs: &[RrPair]| {
        let mut keys: BTreeMap<String, i64> = BTreeMap::new();
        for pair in pairs {
            *keys.entry(pair_key(pair)).or_default() += 1;
        }
        keys
    };
    let (ka, kb) = (count(a), count(b));
    let mut lines = Vec::new();
    for (key, n) in &ka {
        let m = kb.get(key).copied().unwrap_or(0);
        if *n != m {
            lines.push(format!("live {n}, pcap {m}: {key}"));
        }
    }
    for (key, m) in &kb {
        if !ka.contains_key(key) {
            lines.push(format!("live 0, pcap {m}: {key}"));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rrpair::parse_jsonl;

    const LINE: &str = r#"{"id":"1","protocol":"http1","start":"2024-01-02T03:04:05.000000001Z","end":"2024-01-02T03:04:05.000001001Z","duration_us":1,"flow":{"src":"10.0.0.1:40000","dst":"10.0.0.2:80"},"request":{"method":"GET","path":"/a","headers":[],"body_len":0,"body_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"response":{"status":200,"headers":[],"body_len":0,"body_sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"flags":[]}"#;

    #[test]
    fn snapshots_compare_by_content_not_time_or_id() {
        let a = parse_jsonl(LINE.as_bytes()).unwrap();
        let other = LINE
            .replace(r#""id":"1""#, r#""id":"2""#)
            .replace(".000000001Z", ".000000002Z");
        let b = parse_jsonl(other.as_bytes()).unwrap();
        assert!(compare_snapshots(&a, &b).is_empty());
        let changed = LINE.replace(r#""status":200"#, r#""status":500"#);
        let c = parse_jsonl(changed.as_bytes()).unwrap();
        assert_eq!(compare_snapshots(&a, &c).len(), 2);
        assert_eq!(compare_snapshots(&a, &[]).len(), 1);
    }

    #[test]
    fn the_client_record_is_checked_pair_by_pair() {
        let pairs = parse_jsonl(LINE.as_bytes()).unwrap();
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let want = Recorded {
            method: "GET".into(),
            target: "/a".into(),
            status: 200,
            request_body_len: 0,
            request_body_sha256: empty.into(),
            response_body_len: 0,
            response_body_sha256: empty.into(),
        };
        assert!(differences(std::slice::from_ref(&want), &pairs).is_empty());
        let wrong = Recorded {
            status: 404,
            ..want
        };
        assert_eq!(differences(&[wrong], &pairs).len(), 1);
    }
}
