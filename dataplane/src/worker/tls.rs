//! TLS plaintext streams of one worker: chunks captured from TLS libraries are already an ordered
//! byte stream per connection, so they bypass TCP reassembly and go straight to the HTTP/1
//! parsers of the [`PairSink`], under connection ids of their own.
//!
//! A stream is one process's view of one TLS connection, `(pid, conn_id)`. When both ends of a
//! connection run on the capture host, the same bytes come twice (sent by one process, received
//! by the other, with mirrored addresses): the first stream seen on a pair of endpoints owns it
//! and the other is counted as duplicate plaintext, never parsed. When an owner ends, a tombstone
//! of its endpoints stays for a while: a process preempted between its system call and the
//! uprobe's return can show its first bytes after the other end has finished the whole exchange,
//! and its stream, in the mirrored orientation, must still count as the duplicate it is. A new
//! stream in the owner's own orientation (the same end on a reused 4-tuple) is parsed and owns
//! the endpoints again.
//!
//! A chunk whose socket the kernel programs did not see has unspecified addresses: its stream
//! stands on `(pid, conn_id)` alone (no duplicate detection, no ciphertext to relate it to) until
//! a chunk with addresses comes.

use std::net::SocketAddr;

use rustc_hash::FxHashMap;
use tapline_reassembly::{ConnId, ConnInfo, Direction, StreamSink};

use super::sink::{PairSink, TupleKey, canonical, tuple_key};
use crate::record::ProcessInfo;
use crate::tls_chunk::{ChunkDirection, ChunkKind, TlsChunk};

/// Connection ids of plaintext streams have this bit set, apart from the reassembler's.
const TLS_CONN_BIT: u64 = 1 << 63;

/// Longest a tombstone keeps a mirrored stream from owning its endpoints, in capture time
/// (bounded further by the idle timeout): far longer than a thread stays preempted, far shorter
/// than a port stays unused.
const TOMBSTONE_NS: u64 = 10_000_000_000;

/// Whether an address is one the kernel programs saw (not `0.0.0.0:0` or the like).
fn known(addr: SocketAddr) -> bool {
    !addr.ip().is_unspecified() && addr.port() != 0
}

/// One process's view of one TLS connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct StreamKey {
    pid: u32,
    conn_id: u64,
}

#[derive(Debug)]
struct Stream {
    tuple: TupleKey,
    local: SocketAddr,
    remote: SocketAddr,
    /// Whether both addresses are known (see [`known`]).
    known: bool,
    /// The parser's connection; `None` for a duplicate of another stream's connection.
    conn: Option<ConnId>,
    /// Whether the process's own end is the client (decides the direction of its bytes).
    local_is_client: bool,
    last_ts: u64,
}

/// What stays of an owner that ended: which end it was, and when it was last active.
#[derive(Debug, Clone, Copy)]
struct Tombstone {
    owner_local: SocketAddr,
    last_ts: u64,
}

/// The plaintext streams of one worker.
#[derive(Debug)]
pub(crate) struct TlsStreams {
    streams: FxHashMap<StreamKey, Stream>,
    /// The stream that owns each pair of endpoints.
    owners: FxHashMap<TupleKey, StreamKey>,
    /// Endpoints whose owner ended recently (see the module documentation).
    tombstones: FxHashMap<TupleKey, Tombstone>,
    next_id: u64,
    max_streams: usize,
    idle_timeout_ns: u64,
    tombstone_ns: u64,
}

impl TlsStreams {
    pub(crate) fn new(max_streams: usize, idle_timeout_ns: u64) -> Self {
        TlsStreams {
            streams: FxHashMap::default(),
            owners: FxHashMap::default(),
            tombstones: FxHashMap::default(),
            next_id: 0,
            max_streams: max_streams.max(1),
            idle_timeout_ns,
            tombstone_ns: idle_timeout_ns.min(TOMBSTONE_NS),
        }
    }

    /// Feeds one chunk.
    pub(crate) fn chunk(&mut self, chunk: &TlsChunk<'_>, sink: &mut PairSink) {
        let local = canonical(chunk.local);
        let remote = canonical(chunk.remote);
        let tuple = tuple_key(local, remote);
        let key = StreamKey {
            pid: chunk.pid,
            conn_id: chunk.conn_id,
        };
        let is_known = known(local) && known(remote);
        if is_known {
            sink.mark_tls_tuple(tuple, chunk.ts_ns);
        }
        match self.streams.get(&key) {
            Some(s) if is_known && s.known && (s.local != local || s.remote != remote) => {
                // The library handle now serves another connection: the process is done with
                // the old one, so a body that its end delimits is complete.
                self.retire(key, true, sink);
            }
            Some(s) if is_known && !s.known => self.learn_addresses(key, local, remote, sink),
            _ => {}
        }
        if !self.streams.contains_key(&key) {
            if chunk.kind == ChunkKind::Close {
                return;
            }
            if self.streams.len() >= self.max_streams {
                self.evict_oldest(sink);
            }
            self.admit(key, local, remote, chunk, sink);
        }
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        // The process made its calls in the order its chunks come; a time that runs backwards
        // (stamps of another thread or CPU) must not make the parser pair a response with no
        // request because it seems to start before the request did.
        stream.last_ts = stream.last_ts.max(chunk.ts_ns);
        let ts = stream.last_ts;
        let Some(id) = stream.conn else {
            sink.stats.tls_duplicate_chunks += 1;
            sink.stats.tls_duplicate_bytes += chunk.data.len() as u64;
            if chunk.kind == ChunkKind::Close {
                self.streams.remove(&key);
            }
            return;
        };
        match chunk.kind {
            ChunkKind::Data => {
                let sent = chunk.direction == ChunkDirection::Sent;
                let dir = if sent == stream.local_is_client {
                    Direction::ToServer
                } else {
                    Direction::ToClient
                };
                sink.data(id, dir, ts, chunk.data);
                if chunk.lost > 0 {
                    sink.gap(id, dir, ts, u64::from(chunk.lost));
                }
            }
            ChunkKind::Close => {
                self.retire(key, true, sink);
            }
        }
    }

    /// Starts tracking a stream: the owner of its endpoints, or a duplicate of the owner.
    fn admit(
        &mut self,
        key: StreamKey,
        local: SocketAddr,
        remote: SocketAddr,
        chunk: &TlsChunk<'_>,
        sink: &mut PairSink,
    ) {
        let tuple = tuple_key(local, remote);
        let is_known = known(local) && known(remote);
        let owner = self
            .owners
            .get(&tuple)
            .filter(|_| is_known)
            .and_then(|k| self.streams.get(k).map(|s| (*k, s.local)));
        let mut stream = Stream {
            tuple,
            local,
            remote,
            known: is_known,
            conn: None,
            local_is_client: false,
            last_ts: chunk.ts_ns,
        };
        match owner {
            Some((_, owner_local)) if owner_local == remote && owner_local != local => {
                // The other end of the owner's connection.
                self.streams.insert(key, stream);
                return;
            }
            // The same end under a new handle: the old handle's connection is over.
            Some((old, _)) => self.retire(old, false, sink),
            None if is_known && self.mirrors_tombstone(tuple, local, remote, chunk.ts_ns) => {
                // The other end of a connection whose owner already ended: its late bytes
                // were parsed once.
                self.streams.insert(key, stream);
                return;
            }
            None => {}
        }
        // A first guess that HTTP/1 detection corrects: the lower port is the server's.
        let local_is_client = local.port() > remote.port();
        let (client, server) = if local_is_client {
            (local, remote)
        } else {
            (remote, local)
        };
        let id = ConnId(TLS_CONN_BIT | self.next_id);
        self.next_id += 1;
        let info = ConnInfo {
            id,
            client,
            server,
            first_ts_ns: chunk.ts_ns,
            saw_syn: true,
        };
        sink.open_plaintext(
            &info,
            ProcessInfo {
                pid: chunk.pid,
                tid: chunk.tid,
                command: chunk.command.to_owned(),
                cgroup: chunk.cgroup.to_owned(),
                cgroup_id: chunk.cgroup_id,
            },
        );
        stream.conn = Some(id);
        stream.local_is_client = local_is_client;
        self.streams.insert(key, stream);
        if is_known {
            self.owners.insert(tuple, key);
            self.tombstones.remove(&tuple);
        }
    }

    /// Whether a stream from `local` to `remote` starting at `ts_ns` is the other end of the
    /// connection of a recently ended owner of `tuple`.
    fn mirrors_tombstone(
        &self,
        tuple: TupleKey,
        local: SocketAddr,
        remote: SocketAddr,
        ts_ns: u64,
    ) -> bool {
        self.tombstones.get(&tuple).is_some_and(|t| {
            t.owner_local == remote
                && t.owner_local != local
                && ts_ns <= t.last_ts.saturating_add(self.tombstone_ns)
        })
    }

    /// Remembers that the owner of `tuple`, the end at `owner_local`, ended.
    fn bury(&mut self, tuple: TupleKey, owner_local: SocketAddr, last_ts: u64) {
        if !self.tombstones.contains_key(&tuple) && self.tombstones.len() >= self.max_streams {
            // The oldest sixteenth goes.
            let mut times: Vec<u64> = self.tombstones.values().map(|t| t.last_ts).collect();
            let n = times.len() / 16;
            let (_, cutoff, _) = times.select_nth_unstable(n);
            let cutoff = *cutoff;
            self.tombstones.retain(|_, t| t.last_ts > cutoff);
        }
        self.tombstones.insert(
            tuple,
            Tombstone {
                owner_local,
                last_ts,
            },
        );
    }

    /// A stream begun without addresses learns them: its parser keeps its bytes and its
    /// directions, and it owns the endpoints unless another stream does already.
    fn learn_addresses(
        &mut self,
        key: StreamKey,
        local: SocketAddr,
        remote: SocketAddr,
        sink: &mut PairSink,
    ) {
        let tuple = tuple_key(local, remote);
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        stream.local = local;
        stream.remote = remote;
        stream.tuple = tuple;
        stream.known = true;
        let Some(id) = stream.conn else {
            return;
        };
        let (client, server) = if stream.local_is_client {
            (local, remote)
        } else {
            (remote, local)
        };
        sink.set_endpoints(id, client, server);
        self.owners.entry(tuple).or_insert(key);
    }

    /// Stops tracking a stream, ending its parser (`ended`: the process closed it).
    fn retire(&mut self, key: StreamKey, ended: bool, sink: &mut PairSink) {
        let Some(stream) = self.streams.remove(&key) else {
            return;
        };
        if self.owners.get(&stream.tuple) == Some(&key) {
            self.owners.remove(&stream.tuple);
            self.bury(stream.tuple, stream.local, stream.last_ts);
        }
        if let Some(id) = stream.conn {
            sink.close_plaintext(id, stream.last_ts, ended);
        }
    }

    /// Ends the streams idle since before `now_ns` minus the idle timeout.
    pub(crate) fn expire(&mut self, now_ns: u64, sink: &mut PairSink) {
        let deadline = now_ns.saturating_sub(self.idle_timeout_ns);
        sink.expire_tls_tuples(deadline);
        let buried_before = now_ns.saturating_sub(self.tombstone_ns);
        self.tombstones.retain(|_, t| t.last_ts >= buried_before);
        let mut idle: Vec<(u64, StreamKey)> = self
            .streams
            .iter()
            .filter(|(_, s)| s.last_ts < deadline)
            .map(|(k, s)| (s.last_ts, *k))
            .collect();
        idle.sort_unstable();
        sink.stats.tls_idle_timeouts += idle.len() as u64;
        for (_, key) in idle {
            self.retire(key, false, sink);
        }
    }

    /// Makes room in a full table: the least recently active sixteenth of the streams end.
    fn evict_oldest(&mut self, sink: &mut PairSink) {
        let mut by_age: Vec<(u64, StreamKey)> =
            self.streams.iter().map(|(k, s)| (s.last_ts, *k)).collect();
        let n = by_age.len() / 16 + 1;
        if n < by_age.len() {
            by_age.select_nth_unstable(n);
            by_age.truncate(n);
        }
        by_age.sort_unstable();
        sink.stats.tls_evicted_streams += by_age.len() as u64;
        for (_, key) in by_age {
            self.retire(key, false, sink);
        }
    }

    /// Ends every stream (the input is over), in the order they were opened.
    pub(crate) fn finish(&mut self, sink: &mut PairSink) {
        let mut keys: Vec<(u64, StreamKey)> = self
            .streams
            .iter()
            .map(|(k, s)| (s.conn.map_or(u64::MAX, |c| c.0), *k))
            .collect();
        keys.sort_unstable();
        for (_, key) in keys {
            self.retire(key, false, sink);
        }
    }
}

#[cfg(test)]
mod tests;
