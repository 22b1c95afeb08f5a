//! A tcpdump capture running inside a network namespace, stopped cleanly.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::process::{describe, kill_and_collect, watch_lines};
use crate::{E2eError, Netns, Result};

/// How long tcpdump may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long tcpdump may take to flush and exit after SIGINT.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// What tcpdump reported when it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpdumpSummary {
    /// Packets written to the file.
    pub captured: u64,
    /// Packets the kernel dropped because tcpdump's buffer was full.
    pub dropped_by_kernel: u64,
}

/// A running `tcpdump -s 0 -U -w FILE` on one interface; killed on drop when not stopped.
#[derive(Debug)]
pub struct Tcpdump {
    child: Child,
    file: PathBuf,
    stderr: Option<JoinHandle<Vec<String>>>,
}

impl Tcpdump {
    /// Starts tcpdump on `interface` in `netns`, writing whole packets to `file` as they
    /// arrive, with an optional capture `filter`; returns once tcpdump says it is listening.
    ///
    /// # Errors
    ///
    /// When tcpdump cannot start or does not report listening within 15 s.
    pub fn start(netns: &Netns, interface: &str, file: &Path, filter: &[&str]) -> Result<Self> {
        let mut command = netns.command("tcpdump");
        command
            .args([
                "-i",
                interface,
                "-s",
                "0",
                "-U",
                "--immediate-mode",
                "-n",
                "-B",
                "16384",
                "-Z",
                "root",
            ])
            .arg("-w")
            .arg(file)
            .args(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
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
            .map(|pipe| watch_lines(pipe, "listening on", ready_tx));
        let mut capture = Self {
            child,
            file: file.to_owned(),
            stderr,
        };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(()) => Ok(capture),
            Err(_) => {
                let lines = capture.finish_now();
                Err(E2eError::Failed {
                    command: description,
                    status: "did not report listening".to_owned(),
                    stderr: lines.join("\n"),
                })
            }
        }
    }

    /// The capture file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Stops tcpdump with SIGINT (so it flushes and writes its statistics) and waits for it.
    ///
    /// # Errors
    ///
    /// When it does not exit within 15 s, or its statistics cannot be read.
    pub fn stop(mut self) -> Result<TcpdumpSummary> {
        let pid = Pid::from_raw(self.child.id().cast_signed());
        let _ = kill(pid, Signal::SIGINT);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let lines = self.finish_now();
                    return Err(E2eError::Failed {
                        command: "tcpdump".to_owned(),
                        status: "did not stop after SIGINT".to_owned(),
                        stderr: lines.join("\n"),
                    });
                }
            }
        }
        let lines = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        parse_summary(&lines).ok_or_else(|| E2eError::Output {
            tool: "tcpdump".to_owned(),
            reason: format!("no statistics in: {}", lines.join(" | ")),
        })
    }

    /// Kills tcpdump (our own child) and returns what it printed.
    fn finish_now(&mut self) -> Vec<String> {
        kill_and_collect(&mut self.child, &mut self.stderr)
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.finish_now();
        }
    }
}

/// Waits until `file` has not grown for `quiet`, at most `limit` (libpcap hands packets over
/// in blocks: a capture stopped before the last block lands loses it).
pub fn wait_until_settled(file: &Path, quiet: Duration, limit: Duration) {
    let size = || std::fs::metadata(file).map_or(0, |m| m.len());
    let started = Instant::now();
    let mut last = size();
    let mut since = Instant::now();
    while started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(50));
        let now = size();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return;
        }
    }
}

/// Reads "N packets captured" and "N packets dropped by kernel" from tcpdump's last words.
fn parse_summary(lines: &[String]) -> Option<TcpdumpSummary> {
    // tcpdump says "1 packet captured" but "2 packets captured".
    let count = |what: &str| {
        lines.iter().find_map(|line| {
            let (n, rest) = line.trim().split_once(' ')?;
            let rest = rest
                .strip_prefix("packets ")
                .or(rest.strip_prefix("packet "))?;
            (rest == what).then(|| n.parse::<u64>().ok()).flatten()
        })
    };
    Some(TcpdumpSummary {
        captured: count("captured")?,
        dropped_by_kernel: count("dropped by kernel")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_read_from_tcpdump_statistics() {
        let lines: Vec<String> = [
            "tcpdump: listening on tl-b, link-type EN10MB (Ethernet), snapshot length 262144 bytes",
            "1234 packets captured",
            "1240 packets received by filter",
            "0 packets dropped by kernel",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(
            parse_summary(&lines),
            Some(TcpdumpSummary {
                captured: 1234,
                dropped_by_kernel: 0
            })
        );
        assert_eq!(parse_summary(&lines[..1]), None);
        let singular = [
            "1 packet captured".to_owned(),
            "0 packets dropped by kernel".to_owned(),
        ];
        assert_eq!(parse_summary(&singular).map(|s| s.captured), Some(1));
    }
}
