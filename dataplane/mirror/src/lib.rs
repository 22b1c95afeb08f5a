//! tapline mirror: live shadow traffic. Production's requests, captured passively as they
//! complete, are sent to a build under test (the shadow, usually in an ephemeral network
//! namespace); its answers are compared with the answers production gave — with `tapline
//! replay`'s JSON-aware comparer, its default volatile headers and the user's ignore rules —
//! and go nowhere else.
//!
//! Mirroring never slows production: the capture hands pairs over through a tap that drops
//! (counted) when full, the [`intake`] queues each request without waiting (dropping, counted,
//! when the queue is full), and a fixed number of [`sender`] tasks with a per-request timeout
//! bound what a slow or dead shadow can hold. The [`ledger`] counts everything: every inbound
//! exchange the capture completed ends up mirrored (matched, differed, failed), dropped (queue
//! full, shadow down, stopped, tap full) or skipped (not mirrorable), each with its reason.
//! [`learn`] feeds the service's own calls to its dependencies into a mock inside the shadow's
//! namespace as they complete, so the shadow's dependency calls are answered as production's
//! were. [`report`] writes `tapline replay`'s reports (JSON, HTML, JUnit) with a mirror
//! section.

pub mod error;
pub mod intake;
pub mod job;
pub mod learn;
pub mod ledger;
pub mod report;
pub mod sender;

#[cfg(test)]
mod testutil;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use error::MirrorError;
pub use intake::{Intake, Learn};
pub use ledger::{Drops, Ledger, Status};
pub use sender::SendConfig;

use tapline_replay::rules::IgnoreRule;
use tokio::sync::mpsc::Receiver;

use crate::job::Job;

/// Default bound of the queue to the shadow.
pub const DEFAULT_QUEUE: usize = 1_024;
/// Default bound on requests in flight to the shadow.
pub const DEFAULT_IN_FLIGHT: usize = 32;
/// How long requests are held back for live learning by default.
pub const DEFAULT_HOLD: Duration = Duration::from_millis(500);
/// Distinct dependency requests live learning keeps by default.
pub const DEFAULT_LEARNED: usize = 10_000;
/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// Production's service port: pairs whose server port it is are mirrored.
    pub port: u16,
    /// The shadow's address, as seen from where the senders run.
    pub target: SocketAddr,
    /// The `Host` value mirrored requests carry (`None`: keep production's).
    pub host: Option<String>,
    /// Requests waiting for a sender, at most.
    pub queue: usize,
    /// Requests in flight to the shadow, at most.
    pub max_in_flight: usize,
    /// Longest wait for a connection and an answer, per request.
    pub timeout: Duration,
    /// What comparisons leave out, besides the defaults.
    pub ignore: Vec<IgnoreRule>,
    /// How long each request is held before it is queued (for live learning: the
    /// dependency calls production made answering it arrive first); zero sends at once.
    pub hold: Duration,
}

impl MirrorConfig {
    /// A configuration with the default bounds, `Host` rewritten to the target.
    pub fn new(port: u16, target: SocketAddr) -> Self {
        MirrorConfig {
            port,
            target,
            host: Some(authority(target)),
            queue: DEFAULT_QUEUE,
            max_in_flight: DEFAULT_IN_FLIGHT,
            timeout: DEFAULT_TIMEOUT,
            ignore: Vec::new(),
            hold: Duration::ZERO,
        }
    }
}

/// The `Host` value naming `addr` (the port left out when it is 80).
pub fn authority(addr: SocketAddr) -> String {
    match (addr, addr.port()) {
        (SocketAddr::V4(v4), 80) => v4.ip().to_string(),
        (SocketAddr::V6(v6), 80) => format!("[{}]", v6.ip()),
        _ => addr.to_string(),
    }
}

/// The sending half of a mirror, to run on a thread inside the shadow's network namespace.
#[derive(Debug)]
pub struct Senders {
    ledger: Arc<Ledger>,
    queue: Receiver<Job>,
    config: SendConfig,
}

impl Senders {
    /// Sends until the intake is gone and the queue is drained (or its grace has passed).
    ///
    /// # Errors
    /// [`MirrorError::Runtime`] when the async runtime cannot start.
    pub fn run(self) -> Result<(), MirrorError> {
        sender::run(self.ledger, self.queue, self.config)
    }
}

/// Sets a mirror up: the ledger, the intake (fed with the capture's pair batches) and the
/// senders, joined by the bounded queue.
pub fn start(
    config: &MirrorConfig,
    learner: Option<Box<dyn Learn>>,
) -> (Arc<Ledger>, Intake, Senders) {
    let ledger = Arc::new(Ledger::new(config.ignore.clone()));
    let (tx, rx) = tokio::sync::mpsc::channel(config.queue.max(1));
    let intake = Intake::new(
        Arc::clone(&ledger),
        tx,
        config.port,
        config.host.clone(),
        learner,
    )
    .with_hold(config.hold, config.queue.max(1));
    let senders = Senders {
        ledger: Arc::clone(&ledger),
        queue: rx,
        config: SendConfig {
            target: config.target,
            max_in_flight: config.max_in_flight.max(1),
            timeout: config.timeout,
        },
    };
    (ledger, intake, senders)
}
