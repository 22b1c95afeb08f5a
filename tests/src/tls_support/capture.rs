//! A running `tapline capture` of TLS plaintext, the pairs of its snapshot with their TLS
//! fields (`tls`, `process`), their check against what the clients saw, and stand-in
//! programs that carry the marks of TLS stacks tapline cannot see.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Deserialize;

use super::Exchange;
use crate::live::{CaptureEnd, differences};
use crate::process::{describe, tail, watch_lines};
use crate::rrpair::parse_jsonl;
use crate::{E2eError, Result, RrPair};

/// How long `tapline capture` may take to attach its probes.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to drain, detach and seal after SIGINT.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `tapline capture` with TLS plaintext; killed on drop when not stopped.
#[derive(Debug)]
pub struct TlsCaptureRun {
    child: Child,
    command: String,
    stderr: Option<JoinHandle<Vec<String>>>,
    stdout: Option<JoinHandle<String>>,
}

impl TlsCaptureRun {
    /// Starts `tapline capture ARGS...` and waits for a stderr line holding `ready` (such as
    /// `"probing "`, which follows the attachment of the probes selected at start).
    ///
    /// # Errors
    /// When it cannot start, or exits or stays silent instead.
    pub fn start(args: &[&str], ready: &'static str) -> Result<Self> {
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
            .map(|pipe| watch_lines(pipe, ready, ready_tx));
        let stdout = child.stdout.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        });
        let mut run = TlsCaptureRun {
            child,
            command: description,
            stderr,
            stdout,
        };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(()) => Ok(run),
            Err(_) => {
                let end = run.finish(Some(Signal::SIGKILL));
                Err(E2eError::Failed {
                    command: run.command.clone(),
                    status: format!("printed no {ready:?} (exit {:?})", end.code),
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

    /// Waits for it to end by itself (`--duration`), at most `timeout`, then kills it.
    pub fn wait(mut self, timeout: Duration) -> CaptureEnd {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.finish(Some(Signal::SIGKILL))
    }

    /// Sends `signal` (if still running), waits, and collects what it printed.
    fn finish(&mut self, signal: Option<Signal>) -> CaptureEnd {
        if let Some(signal) = signal
            && matches!(self.child.try_wait(), Ok(None))
        {
            // Our own child, by its id.
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
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
            }
        };
        let stderr = self.stderr.take().and_then(|h| h.join().ok());
        let stdout = self.stdout.take().and_then(|h| h.join().ok());
        CaptureEnd {
            code: status.and_then(|s| s.code()),
            stdout: stdout.unwrap_or_default(),
            stderr: stderr.unwrap_or_default().join("\n"),
        }
    }
}

impl Drop for TlsCaptureRun {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The process a TLS pair was captured in, as `inspect --format jsonl` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PairProcess {
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Command name.
    pub command: String,
    /// Cgroup path.
    pub cgroup: String,
    /// Cgroup id.
    pub cgroup_id: u64,
}

/// The fields a TLS pair adds to the jsonl contract.
#[derive(Debug, Deserialize)]
struct TlsFields {
    #[serde(default)]
    tls: bool,
    #[serde(default)]
    process: Option<PairProcess>,
}

/// A pair with its TLS fields.
#[derive(Debug, Clone)]
pub struct TlsPair {
    /// The pair, as the jsonl contract has it.
    pub pair: RrPair,
    /// `"tls": true`.
    pub tls: bool,
    /// `"process"`, present on TLS pairs.
    pub process: Option<PairProcess>,
}

/// Runs `tapline inspect SNAPSHOT --format jsonl` and reads every pair with its TLS fields.
///
/// # Errors
/// When inspect fails or its output breaks the contract.
pub fn pairs(snapshot: &Path) -> Result<Vec<TlsPair>> {
    let run = crate::tapline::inspect(snapshot)?.checked(crate::tapline::TAPLINE_TIMEOUT)?;
    let pairs = parse_jsonl(&run.stdout)?;
    let text = String::from_utf8_lossy(&run.stdout).into_owned();
    pairs
        .into_iter()
        .zip(text.lines().enumerate())
        .map(|(pair, (index, line))| {
            let fields: TlsFields = serde_json::from_str(line).map_err(|e| E2eError::Jsonl {
                line: index + 1,
                reason: format!("tls/process fields: {e}"),
            })?;
            Ok(TlsPair {
                pair,
                tls: fields.tls,
                process: fields.process,
            })
        })
        .collect()
}

/// What the pairs of some exchanges must show besides their contents.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The server, `ip:port`, as the flow's destination.
    pub server: &'a str,
    /// The client's address, as the flow's source.
    pub client_ip: &'a str,
    /// Whether the pairs are TLS plaintext (flag `tls`, with a process).
    pub tls: bool,
    /// The server's process and command, when an acceptable `process`.
    pub server_process: Option<(u32, &'a str)>,
    /// Whether the client's process is acceptable (the capture probes the client).
    pub client_process: bool,
}

/// The pairs whose target carries `tag` (`?t=TAG-...`).
pub fn tagged<'p>(pairs: &'p [TlsPair], tag: &str) -> Vec<&'p TlsPair> {
    let mark = format!("t={tag}-");
    pairs
        .iter()
        .filter(|p| {
            p.pair
                .method_path()
                .is_some_and(|(_, path)| path.contains(&mark))
        })
        .collect()
}

/// Checks that each exchange came out exactly once and byte-exact among the pairs tagged
/// `tag` on the flows to `expected.server`, that no other pair there carries the tag, and that
/// each has the flow and process `expected`; returns one line per problem.
pub fn check(
    exchanges: &[Exchange],
    pairs: &[TlsPair],
    tag: &str,
    expected: &Expected<'_>,
) -> Vec<String> {
    let mine: Vec<&TlsPair> = tagged(pairs, tag)
        .into_iter()
        .filter(|p| p.pair.flow.dst == expected.server)
        .collect();
    let plain: Vec<RrPair> = mine.iter().map(|p| p.pair.clone()).collect();
    let recorded: Vec<_> = exchanges.iter().map(|e| e.recorded.clone()).collect();
    let mut problems = differences(&recorded, &plain);
    for exchange in exchanges {
        let target = &exchange.recorded.target;
        let Some(found) = mine
            .iter()
            .find(|p| p.pair.method_path().is_some_and(|(_, path)| path == target))
        else {
            continue; // differences() said so
        };
        problems.extend(
            flow_problems(exchange, found, expected)
                .into_iter()
                .map(|p| format!("{target}: {p}")),
        );
    }
    problems
}

/// What is wrong with the flow, flags and process of `found`, the pair of `exchange`.
fn flow_problems(exchange: &Exchange, found: &TlsPair, expected: &Expected<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    let flow = &found.pair.flow;
    let src_ok = match exchange.client_port {
        Some(port) => flow.src == format!("{}:{port}", expected.client_ip),
        None => flow.src.starts_with(&format!("{}:", expected.client_ip)),
    };
    if !src_ok || flow.dst != expected.server {
        problems.push(format!(
            "flow {} -> {}, expected {}:{:?} -> {}",
            flow.src, flow.dst, expected.client_ip, exchange.client_port, expected.server
        ));
    }
    if found.tls != expected.tls || found.pair.has_flag("tls") != expected.tls {
        problems.push(format!(
            "tls {} with flags {:?}, expected tls {}",
            found.tls, found.pair.flags, expected.tls
        ));
    }
    match (&found.process, expected.tls) {
        (None, false) => {}
        (Some(process), true) => {
            let mut allowed: Vec<(u32, &str)> = expected.server_process.into_iter().collect();
            if expected.client_process {
                allowed.push((exchange.client_pid, exchange.client_command));
            }
            if !allowed.contains(&(process.pid, process.command.as_str())) {
                problems.push(format!("process {process:?}, expected one of {allowed:?}"));
            }
            if process.cgroup.is_empty() {
                problems.push("empty cgroup".to_owned());
            }
        }
        (process, _) => problems.push(format!(
            "process {process:?} on a pair with tls {}",
            expected.tls
        )),
    }
    problems
}

/// A program that waits forever, killed on drop.
#[derive(Debug)]
pub struct Waiting(Child);

impl Waiting {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The marks of a Go program that uses `crypto/tls`: a `.go.buildinfo` section and the name
/// of `crypto/tls.(*Conn).Write`.
pub const GO_MARKS: &str = "__attribute__((section(\".go.buildinfo\"), used)) static const char buildinfo[32] = \"\\xff Go buildinf:\";\n\
     __attribute__((used)) static const char tls[] = \"crypto/tls.(*Conn).Write\";";

/// The mark of a program with rustls inside: a source path of the crate.
pub const RUSTLS_MARKS: &str =
    "__attribute__((used)) static const char path[] = \"rustls-0.23.1/src/conn.rs\";";

/// Compiles (with `cc`) a program named `name` in `dir` that waits forever and carries
/// `marks` (C declarations).
///
/// # Errors
/// When cc fails.
pub fn waiting_program(dir: &Path, name: &str, marks: &str) -> Result<PathBuf> {
    let source = dir.join(format!("{name}.c"));
    let text = format!("#include <unistd.h>\n{marks}\nint main(void) {{ for (;;) pause(); }}\n");
    std::fs::write(&source, text).map_err(|e| E2eError::io(&source, e))?;
    let exe = dir.join(name);
    crate::run_checked(
        Command::new("cc").arg(&source).arg("-o").arg(&exe),
        Duration::from_secs(60),
    )?;
    Ok(exe)
}

/// Starts the program at `path`.
///
/// # Errors
/// When it cannot start.
pub fn start_waiting(path: &Path) -> Result<Waiting> {
    let mut command = Command::new(path);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
        .spawn()
        .map(Waiting)
        .map_err(|source| E2eError::Spawn {
            command: describe(&command),
            source,
        })
}
