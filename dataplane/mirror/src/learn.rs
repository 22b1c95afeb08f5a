//! Live learning of the service's dependencies: each call production makes to another server
//! (a pair whose server port is not the mirrored one) is kept, as it completes, as the latest
//! answer to that request, and a `tapline mock` index over what was learned answers the
//! shadow's own calls inside its namespace. Each dependency address is listened on as soon as
//! it is first seen (the namespace set-up, such as putting the address on its loopback, is
//! the caller's hook), so by the time a request is mirrored (the intake holds requests back a
//! moment for this) its dependency calls are answerable.
//!
//! The latest answer wins: a dependency whose state changes is answered as production last
//! saw it. What is learned is bounded ([`LiveMocks::new`]); past the bound, new requests are
//! counted and not kept. The index is rebuilt (a few times a second at most) when something
//! new was learned; each request is answered by the index current when it arrives.

mod serve;

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustc_hash::FxHashMap;
use tapline_dataplane::record::{ArchivedRRPair, PairFlags};
use tapline_mock::recorded::WireExchange;
use tapline_mock::{Index, MatchConfig, Mock, Recorded, ServerConfig, Summary};

use crate::intake::Learn;

pub use serve::serve;

/// What was learned, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LearnSummary {
    /// Distinct dependency requests whose latest answer is kept.
    pub learned: usize,
    /// Answers learned in all (replacing earlier ones of the same request included).
    pub answers: u64,
    /// Distinct requests not kept (past the bound).
    pub not_kept: u64,
    /// Dependency calls not learnable (incomplete, one-sided, unparsable).
    pub unusable: u64,
    /// Dependency addresses served.
    pub servers: Vec<String>,
    /// Calls the shadow made to them.
    pub requests: u64,
    /// Answered with a learned answer to the same request.
    pub exact: u64,
    /// Answered with the closest learned answer.
    pub closest: u64,
    /// Answered with the no-match response.
    pub unmatched: u64,
    /// The first distinct unmatched calls.
    pub unmatched_samples: Vec<String>,
}

#[derive(Debug, Default)]
struct Learned {
    by_key: FxHashMap<u64, usize>,
    list: Vec<Recorded>,
    servers: BTreeSet<SocketAddr>,
    pending_servers: Vec<SocketAddr>,
    answers: u64,
    not_kept: u64,
    unusable: u64,
}

/// The state shared by the learner (on the intake thread) and the server (inside the
/// shadow's namespace).
#[derive(Debug)]
pub struct LiveMocks {
    learned: Mutex<Learned>,
    mock: RwLock<Arc<Mock>>,
    dirty: AtomicBool,
    retired: Mutex<Summary>,
    max: usize,
    port: u16,
}

impl LiveMocks {
    /// Live mocks for the service on `port` (never listened on), keeping at most `max`
    /// distinct requests.
    pub fn new(port: u16, max: usize) -> Arc<Self> {
        Arc::new(LiveMocks {
            learned: Mutex::new(Learned::default()),
            mock: RwLock::new(Arc::new(empty_mock(Vec::new()))),
            dirty: AtomicBool::new(false),
            retired: Mutex::new(Summary::default()),
            max,
            port,
        })
    }

    /// A learner to hand to the intake.
    pub fn learner(self: &Arc<Self>) -> Box<dyn Learn> {
        Box::new(Learner(Arc::clone(self)))
    }

    /// Keeps one completed dependency call.
    pub fn learn(&self, pair: &ArchivedRRPair) {
        let Ok(mut learned) = self.learned.lock() else {
            return;
        };
        let Some(recorded) = recorded_of(pair) else {
            learned.unusable += 1;
            return;
        };
        let server = recorded.server;
        let key = key_of(&recorded);
        learned.answers += 1;
        match learned.by_key.get(&key).copied() {
            Some(i) => {
                if let Some(slot) = learned.list.get_mut(i) {
                    if slot.response == recorded.response {
                        return;
                    }
                    *slot = recorded;
                }
            }
            None if learned.list.len() < self.max => {
                let i = learned.list.len();
                learned.by_key.insert(key, i);
                learned.list.push(recorded);
            }
            None => {
                learned.not_kept += 1;
                return;
            }
        }
        if server.port() != self.port && learned.servers.insert(server) {
            learned.pending_servers.push(server);
        }
        self.dirty.store(true, Ordering::Release);
    }

    /// The mock answering now.
    pub fn current(&self) -> Arc<Mock> {
        match self.mock.read() {
            Ok(m) => Arc::clone(&m),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Builds a new index when something was learned since the last one.
    pub fn refresh(&self) {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let list = match self.learned.lock() {
            Ok(l) => l.list.clone(),
            Err(_) => return,
        };
        let fresh = Arc::new(empty_mock(list));
        let old = match self.mock.write() {
            Ok(mut m) => std::mem::replace(&mut *m, fresh),
            Err(_) => return,
        };
        if let Ok(mut retired) = self.retired.lock() {
            add(&mut retired, &old.summary());
        }
    }

    /// Dependency addresses learned since the last call (to listen on).
    pub fn new_servers(&self) -> Vec<SocketAddr> {
        self.learned
            .lock()
            .map(|mut l| std::mem::take(&mut l.pending_servers))
            .unwrap_or_default()
    }

    /// What was learned and answered so far.
    pub fn summary(&self) -> LearnSummary {
        let mut answered = self.retired.lock().map(|s| s.clone()).unwrap_or_default();
        add(&mut answered, &self.current().summary());
        let learned = self.learned.lock();
        let (count, answers, not_kept, unusable, servers) = learned
            .as_deref()
            .map(|l| {
                (
                    l.list.len(),
                    l.answers,
                    l.not_kept,
                    l.unusable,
                    l.servers.iter().map(ToString::to_string).collect(),
                )
            })
            .unwrap_or_default();
        LearnSummary {
            learned: count,
            answers,
            not_kept,
            unusable,
            servers,
            requests: answered.requests,
            exact: answered.exact,
            closest: answered.closest,
            unmatched: answered.unmatched,
            unmatched_samples: answered.unmatched_samples,
        }
    }
}

/// How often the server looks for new addresses and a new index.
pub const REFRESH_EVERY: Duration = Duration::from_millis(50);

fn empty_mock(recorded: Vec<Recorded>) -> Mock {
    Mock::new(
        Index::new(recorded, MatchConfig::default()),
        ServerConfig::default(),
    )
}

fn add(total: &mut Summary, s: &Summary) {
    total.connections += s.connections;
    total.requests += s.requests;
    total.exact += s.exact;
    total.closest += s.closest;
    total.unmatched += s.unmatched;
    total.bad_requests += s.bad_requests;
    for line in &s.unmatched_samples {
        if total.unmatched_samples.len() < 20 && !total.unmatched_samples.contains(line) {
            total.unmatched_samples.push(line.clone());
        }
    }
}

/// What makes two dependency calls the same request: server, method, target and body.
fn key_of(r: &Recorded) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    r.server.hash(&mut h);
    r.method.hash(&mut h);
    r.target.hash(&mut h);
    r.body.hash(&mut h);
    h.finish()
}

/// A complete dependency call as the mock keeps it (the rules of `tapline mock`'s loader).
fn recorded_of(pair: &ArchivedRRPair) -> Option<Recorded> {
    let (request, response) = (pair.request.as_ref()?, pair.response.as_ref()?);
    let damaged = PairFlags::INCOMPLETE
        | PairFlags::GAP
        | PairFlags::BODY_TRUNCATED
        | PairFlags::PARSE_ERROR
        | PairFlags::NO_RESPONSE
        | PairFlags::NO_REQUEST
        | PairFlags::UPGRADE;
    if pair.flags.to_native() & damaged != 0 {
        return None;
    }
    Recorded::from_wire(&WireExchange {
        id: pair.id.to_native(),
        start_ns: pair.start_ns.to_native(),
        client: pair.flow.src(),
        server: pair.flow.dst(),
        request_head: request.head.as_slice(),
        request_body: request.body.as_slice(),
        response_head: response.head.as_slice(),
        response_body: response.body.as_slice(),
        response_trailers: response.trailers.as_slice(),
        latency: Duration::from_nanos(
            response
                .end_ns
                .to_native()
                .saturating_sub(request.end_ns.to_native()),
        ),
    })
    .ok()
}

/// The intake's end of the live mocks.
struct Learner(Arc<LiveMocks>);

impl Learn for Learner {
    fn learn(&mut self, pair: &ArchivedRRPair) {
        self.0.learn(pair);
    }
}

#[cfg(test)]
mod tests;
