//! Why a mock cannot be built or served.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors of loading recorded exchanges, building the index and serving.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// The snapshot could not be opened or read.
    #[error("{0}")]
    Snapshot(#[from] tapline_dataplane::snapshot::SnapshotError),
    /// The snapshot holds no HTTP request/response pair a mock could answer from.
    #[error("{path}: no HTTP request/response pairs to answer from{detail}")]
    NoPairs {
        /// The snapshot directory.
        path: PathBuf,
        /// What was found instead (pairs skipped and why, clients seen).
        detail: String,
    },
    /// An address flag is neither an IP address nor `ip:port`.
    #[error("{value:?} is not an IP address or ip:port (such as 10.0.0.5 or 10.0.0.5:8080)")]
    BadAddress {
        /// What was given.
        value: String,
    },
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why the kernel refused.
        source: std::io::Error,
    },
    /// The async runtime or the signal handlers could not be set up.
    #[error("{what}: {source}")]
    Runtime {
        /// What was being set up.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

/// Why one recorded exchange cannot be used by a mock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The recorded request head does not parse.
    #[error("request head does not parse: {0}")]
    RequestHead(String),
    /// The recorded response head does not parse.
    #[error("response head does not parse: {0}")]
    ResponseHead(String),
}
