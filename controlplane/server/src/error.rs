//! The errors of the control plane: start-up problems (configuration, TLS files, the job
//! database, binding), internal failures, and the client's.

use std::path::PathBuf;

/// Why the daemon could not start or an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A setting is wrong or missing (a flag or `[serve]` field); exit code 2.
    #[error("{0}")]
    Setting(String),
    /// A file named by a setting cannot be read or holds no usable PEM item.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The job database cannot be opened.
    #[error("{path}: {reason}")]
    Store {
        /// The database file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The runtime, a thread or a directory could not be made: the environment's fault.
    #[error("{0}")]
    Environment(String),
    /// Something that should not fail did (the database, a lock).
    #[error("{0}")]
    Internal(String),
}

/// Why a client request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A client setting is wrong (the URL, a certificate file, the token file).
    #[error("{0}")]
    Setting(String),
    /// The server could not be reached or the connection broke.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{status} from the control plane: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The server's `error` text (with its `field` when it named one).
        message: String,
        /// The field the server blamed, if any.
        field: Option<String>,
    },
    /// The server's answer is not what the API promises.
    #[error("unexpected answer from {url}: {reason}")]
    Protocol {
        /// The URL requested.
        url: String,
        /// What was wrong.
        reason: String,
    },
}
