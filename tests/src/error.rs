//! The error type of the end-to-end helpers: each variant names what was being done.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong while preparing or running an end-to-end test.
#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    /// A program could not be started.
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A program ran but exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// How it exited.
        status: String,
        /// The last part of what it printed on stderr.
        stderr: String,
    },
    /// A program did not finish in time and was killed.
    #[error("`{command}` did not finish within {timeout:?}")]
    Timeout {
        /// The command line.
        command: String,
        /// The time it was given.
        timeout: Duration,
    },
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A network namespace could not be entered or set up.
    #[error("network namespace {name}: {reason}")]
    Netns {
        /// The namespace's name.
        name: String,
        /// What failed.
        reason: String,
    },
    /// The eBPF program could not be loaded, attached or read.
    #[error("eBPF {program} on {interface}: {reason}")]
    Ebpf {
        /// The program's name.
        program: String,
        /// The interface it was meant for.
        interface: String,
        /// What failed.
        reason: String,
    },
    /// A line of `tapline inspect --format jsonl` output did not match the contract.
    #[error("jsonl line {line}: {reason}")]
    Jsonl {
        /// The 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// The `tapline` binary could not be found or built.
    #[error("tapline binary: {0}")]
    Binary(String),
    /// A tool printed something this crate could not understand.
    #[error("unexpected output from {tool}: {reason}")]
    Output {
        /// The tool.
        tool: String,
        /// What was unexpected.
        reason: String,
    },
}

impl E2eError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
