//! tapline's end-to-end benchmarks, each raced against a peer tool in one run.
//!
//! The race scripts live beside this crate (`bench/import.sh`); the crate holds what they need
//! that a shell cannot do well: the load generator that makes the captured traffic
//! ([`loadgen`], binary `loadgen`). Results and the commands that made them go to
//! `bench/RESULTS.md`.

pub mod loadgen;
pub mod response;

/// Errors of the load generator.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A socket operation failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the connection before a response was complete.
    #[error("connection closed by the server in the middle of a response")]
    Closed,
    /// The server sent something that is not a usable HTTP/1.1 response.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// The run took longer than its deadline.
    #[error("run stopped at its deadline of {0:?}")]
    Deadline(std::time::Duration),
    /// The options ask for something impossible.
    #[error("usage: {0}")]
    Usage(String),
}
