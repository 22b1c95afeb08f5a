//! `[serve]`: the control plane daemon (`tapline serve`): where it listens, where it keeps its
//! jobs, how it authenticates clients and how many jobs it runs at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ByteSize;
use crate::units;

/// `[serve]`: the control plane daemon; `tapline serve` flags override it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeSection {
    /// The address the API listens on.
    pub listen: SocketAddr,
    /// The directory of the job database, the jobs' files and `snapshots/`.
    pub data_dir: PathBuf,
    /// A file of accepted bearer tokens, one per line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// The server certificate chain (PEM); with `tls_key`, the API is served over HTTPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) whose client certificates are accepted instead of a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// Jobs running at once; the others wait in the queue.
    pub max_concurrent: usize,
    /// A job running longer is stopped and fails; `"0s"` means no limit.
    #[serde(with = "units::duration")]
    pub max_job_lifetime: Duration,
    /// Time a cancelled job gets after SIGINT before its process group is killed.
    #[serde(with = "units::duration")]
    pub cancel_grace: Duration,
    /// Largest request body accepted.
    pub max_body: ByteSize,
}

impl Default for ServeSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            data_dir: PathBuf::from("/var/lib/tapline"),
            token_file: None,
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            max_concurrent: 4,
            max_job_lifetime: Duration::from_secs(24 * 3600),
            cancel_grace: Duration::from_secs(10),
            max_body: ByteSize::kib(64),
        }
    }
}
