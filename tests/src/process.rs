//! Running programs with a time limit and collecting what they print.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::{E2eError, Result};

/// How a program that was run to completion (or killed at its time limit) ended.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// Its exit status (after a kill when `timed_out`).
    pub status: ExitStatus,
    /// Everything it wrote on stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote on stderr, decoded lossily.
    pub stderr: String,
    /// Whether it was killed because it ran past its time limit.
    pub timed_out: bool,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Run {
    /// The exit code, or `None` when a signal ended the program.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Whether the program exited with code 0 in time.
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    /// The stdout decoded lossily.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Turns an unsuccessful run into an error carrying the end of stderr.
    ///
    /// # Errors
    ///
    /// [`E2eError::Timeout`] when it was killed at its limit, [`E2eError::Failed`] when it
    /// exited with anything but 0.
    pub fn checked(self, timeout: Duration) -> Result<Self> {
        if self.timed_out {
            return Err(E2eError::Timeout {
                command: self.command,
                timeout,
            });
        }
        if !self.status.success() {
            return Err(E2eError::Failed {
                command: self.command,
                status: self.status.to_string(),
                stderr: tail(&self.stderr, 2000),
            });
        }
        Ok(self)
    }
}

/// A program running in the background (a server), killed when dropped.
#[derive(Debug)]
pub struct Background {
    child: Child,
    command: String,
}

impl Background {
    /// Starts `command` and waits until a line of its stdout contains `marker`; stderr is
    /// passed through to the test's stderr.
    ///
    /// # Errors
    ///
    /// When it cannot start, exits, or prints no `marker` within `timeout`.
    pub fn spawn_until(command: &mut Command, marker: &str, timeout: Duration) -> Result<Self> {
        use std::io::BufRead;
        let description = describe(command);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| E2eError::Spawn {
                command: description.clone(),
                source,
            })?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let marker = marker.to_owned();
            thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.contains(&marker) {
                        let _ = ready_tx.send(());
                    }
                }
            });
        }
        let background = Self {
            child,
            command: description,
        };
        match ready_rx.recv_timeout(timeout) {
            Ok(()) => Ok(background),
            Err(_) => Err(E2eError::Failed {
                command: background.command.clone(),
                status: format!("printed no {marker:?} within {timeout:?}"),
                stderr: String::new(),
            }),
        }
    }

    /// Whether the program is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Our own child: end it by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Formats a command line for messages.
pub fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `command` to completion with stdin closed, capturing stdout and stderr, killing it
/// when it runs longer than `timeout`.
///
/// # Errors
///
/// [`E2eError::Spawn`] when it cannot start. Failure and time-outs are reported in [`Run`].
pub fn run_with_timeout(command: &mut Command, timeout: Duration) -> Result<Run> {
    let description = describe(command);
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| E2eError::Spawn {
            command: description.clone(),
            source,
        })?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let (status, timed_out) = wait_until(&mut child, started + timeout, &description)?;
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok(Run {
        command: description,
        status,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        timed_out,
        elapsed: started.elapsed(),
    })
}

/// Runs `command` and requires exit code 0 within `timeout`.
///
/// # Errors
///
/// As [`run_with_timeout`] and [`Run::checked`].
pub fn run_checked(command: &mut Command, timeout: Duration) -> Result<Run> {
    run_with_timeout(command, timeout)?.checked(timeout)
}

/// Waits for `child` until `deadline`, killing it past the deadline.
fn wait_until(
    child: &mut Child,
    deadline: Instant,
    description: &str,
) -> Result<(ExitStatus, bool)> {
    let wait_error = |source| E2eError::Spawn {
        command: description.to_owned(),
        source,
    };
    loop {
        if let Some(status) = child.try_wait().map_err(wait_error)? {
            return Ok((status, false));
        }
        if Instant::now() >= deadline {
            // The child is ours: end it by its own handle.
            let _ = child.kill();
            let status = child.wait().map_err(wait_error)?;
            return Ok((status, true));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reads a pipe to its end on a thread, so that a chatty child never blocks on a full pipe.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Collects the lines of `pipe` on a thread, signalling `ready` at each line that contains
/// `marker` (such as tcpdump's "listening on").
pub fn watch_lines<R: Read + Send + 'static>(
    pipe: R,
    marker: &'static str,
    ready: mpsc::Sender<()>,
) -> JoinHandle<Vec<String>> {
    thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if line.contains(marker) {
                let _ = ready.send(());
            }
            lines.push(line);
        }
        lines
    })
}

/// Kills `child` (our own, by its handle), reaps it, and returns the lines its `watcher`
/// (from [`watch_lines`]) collected.
pub fn kill_and_collect(
    child: &mut Child,
    watcher: &mut Option<JoinHandle<Vec<String>>>,
) -> Vec<String> {
    let _ = child.kill();
    let _ = child.wait();
    watcher
        .take()
        .and_then(|h| h.join().ok())
        .unwrap_or_default()
}

/// The last `max` bytes of `text` (on a character boundary).
pub fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// Whether `program` is found on `PATH` (or is an existing path).
pub fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_past_its_limit_is_killed_and_reported() {
        let run =
            run_with_timeout(Command::new("sleep").arg("5"), Duration::from_millis(100)).unwrap();
        assert!(run.timed_out);
        assert!(run.elapsed < Duration::from_secs(4));
        assert!(!run.success());
    }

    #[test]
    fn stdout_and_stderr_are_both_collected() {
        let run = run_with_timeout(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(run.stdout_text(), "out\n");
        assert_eq!(run.stderr, "err\n");
        assert_eq!(run.code(), Some(3));
        assert!(matches!(
            run.checked(Duration::from_secs(10)),
            Err(E2eError::Failed { .. })
        ));
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 3), "…def");
        assert_eq!(tail("aé", 1), "…");
    }
}
