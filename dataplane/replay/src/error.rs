//! The errors of replay: bad input (a target, a rule, an assertion, a snapshot with nothing to
//! send) and an unreachable target. Each names what it is about, so the CLI can print one line.

use std::path::PathBuf;

/// Why a replay could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The `--target` URL is malformed or of an unsupported scheme.
    #[error("--target {url:?}: {reason}")]
    Target {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The target did not accept a connection.
    #[error("target {url} is unreachable: cannot connect to {addr}: {source}")]
    Unreachable {
        /// The URL as given.
        url: String,
        /// The address tried.
        addr: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// An `--ignore` rule does not parse.
    #[error(transparent)]
    Rule(#[from] crate::rules::RuleError),
    /// An `--assert` expression does not parse.
    #[error(transparent)]
    Assertion(#[from] crate::assertion::AssertionError),
    /// A `--rate`, `--duration`, `--timeout` or `--connections` value is wrong.
    #[error("{flag} {value:?}: {reason}")]
    Setting {
        /// The flag (or config field).
        flag: &'static str,
        /// The value as given.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// The snapshot holds no HTTP request that can be replayed.
    #[error("{snapshot}: {reason}")]
    NothingToReplay {
        /// The snapshot directory.
        snapshot: PathBuf,
        /// Why: no HTTP at all, everything filtered out, or every pair incomplete.
        reason: String,
    },
    /// The snapshot's requests go to several servers and no `--filter` chose one.
    #[error(
        "{snapshot}: requests to {count} servers ({servers}); choose one with --filter, e.g. --filter 'dst={first}'"
    )]
    SeveralServers {
        /// The snapshot directory.
        snapshot: PathBuf,
        /// How many servers.
        count: usize,
        /// The busiest servers with their request counts.
        servers: String,
        /// The busiest server, for the example.
        first: String,
    },
    /// The config file cannot be read or has a wrong field.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What was wrong (naming the field).
        reason: String,
    },
    /// The async runtime could not be started.
    #[error("cannot start the replay runtime: {0}")]
    Runtime(std::io::Error),
    /// A report file could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}
