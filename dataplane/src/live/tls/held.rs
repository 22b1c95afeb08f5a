//! Chunks of TLS streams whose socket addresses are not known yet, held back until they are.
//!
//! The uprobes learn a stream's 4-tuple from the system calls its library makes; a read served
//! from bytes taken in during the handshake makes none, so a stream's first chunks can come
//! without addresses. Stored as they are, they would be parsed apart from the rest of their
//! stream (chunks are sharded to workers by address). So they wait here, per stream (process,
//! session), and go on, in order and with the addresses, as soon as a chunk of the same stream
//! brings them. What waits too long (2 s), a stream's close, or the end of the capture sends
//! them on as they are; the bytes held are bounded per stream and in total.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::tls_chunk::{ChunkDirection, ChunkKind, TlsChunk};

/// Longest a chunk waits for its stream's addresses.
const MAX_WAIT: Duration = Duration::from_secs(2);
/// Bytes held for one stream before its chunks go on without addresses.
const MAX_STREAM_BYTES: usize = 1 << 20;
/// Bytes held in all before a stream's chunks go on without addresses.
const MAX_HELD_BYTES: usize = 64 << 20;
/// Streams whose addresses are remembered before the memory is emptied.
const MAX_KNOWN: usize = 1 << 16;

/// A stream: the process and its library's session.
type StreamKey = (u32, u64);

/// A stream's local and remote address.
type Addresses = (SocketAddr, SocketAddr);

/// A chunk copied out of the ring to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OwnedChunk {
    pub(super) ts_ns: u64,
    pub(super) pid: u32,
    pub(super) tid: u32,
    pub(super) conn_id: u64,
    pub(super) direction: ChunkDirection,
    pub(super) kind: ChunkKind,
    pub(super) lost: u32,
    pub(super) cgroup_id: u64,
    pub(super) command: String,
    pub(super) cgroup: String,
    pub(super) data: Vec<u8>,
}

#[derive(Debug)]
struct Waiting {
    since: Instant,
    bytes: usize,
    chunks: Vec<OwnedChunk>,
}

/// The chunks waiting, per stream, and the addresses streams have shown.
#[derive(Debug, Default)]
pub(super) struct Held {
    waiting: FxHashMap<StreamKey, Waiting>,
    known: FxHashMap<StreamKey, Addresses>,
    held_bytes: usize,
}

impl Held {
    /// Takes one chunk whose socket addresses are `addresses` (`None`: not seen): hands it on
    /// through `emit` with its stream's addresses, after any chunks of its stream that waited,
    /// or keeps it waiting.
    pub(super) fn chunk(
        &mut self,
        chunk: &TlsChunk<'_>,
        addresses: Option<Addresses>,
        emit: &mut dyn FnMut(&TlsChunk<'_>),
    ) {
        let key = (chunk.pid, chunk.conn_id);
        let addresses = addresses.or_else(|| self.known.get(&key).copied());
        if let Some(addresses) = addresses {
            if self.known.get(&key) != Some(&addresses) {
                if self.known.len() >= MAX_KNOWN && !self.known.contains_key(&key) {
                    self.known.clear();
                }
                self.known.insert(key, addresses);
            }
            self.release(key, Some(addresses), emit);
            let mut with = *chunk;
            (with.local, with.remote) = addresses;
            emit(&with);
            if chunk.kind == ChunkKind::Close {
                self.known.remove(&key);
            }
            return;
        }
        let len = chunk.data.len();
        let room = self
            .waiting
            .get(&key)
            .is_none_or(|w| w.bytes + len <= MAX_STREAM_BYTES)
            && self.held_bytes + len <= MAX_HELD_BYTES;
        if chunk.kind == ChunkKind::Close || !room {
            self.release(key, None, emit);
            emit(chunk);
            return;
        }
        let waiting = self.waiting.entry(key).or_insert_with(|| Waiting {
            since: Instant::now(),
            bytes: 0,
            chunks: Vec::new(),
        });
        waiting.bytes += len;
        waiting.chunks.push(OwnedChunk::of(chunk));
        self.held_bytes += len;
    }

    /// Sends on, without addresses, the chunks that waited longer than the limit.
    pub(super) fn expire(&mut self, now: Instant, emit: &mut dyn FnMut(&TlsChunk<'_>)) {
        if self.waiting.is_empty() {
            return;
        }
        let mut old: Vec<StreamKey> = self
            .waiting
            .iter()
            .filter(|(_, w)| now.saturating_duration_since(w.since) >= MAX_WAIT)
            .map(|(key, _)| *key)
            .collect();
        old.sort_unstable();
        for key in old {
            self.release(key, None, emit);
        }
    }

    /// Sends on everything still waiting (the capture ends).
    pub(super) fn flush_all(&mut self, emit: &mut dyn FnMut(&TlsChunk<'_>)) {
        let mut keys: Vec<StreamKey> = self.waiting.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            self.release(key, None, emit);
        }
    }

    /// Bytes waiting.
    #[cfg(test)]
    pub(super) fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    fn release(
        &mut self,
        key: StreamKey,
        addresses: Option<Addresses>,
        emit: &mut dyn FnMut(&TlsChunk<'_>),
    ) {
        if self.waiting.is_empty() {
            return;
        }
        if let Some(waiting) = self.waiting.remove(&key) {
            self.held_bytes = self.held_bytes.saturating_sub(waiting.bytes);
            for chunk in &waiting.chunks {
                emit(&chunk.with(addresses));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(conn_id: u64, kind: ChunkKind, data: &'static [u8]) -> TlsChunk<'static> {
        let unspecified: SocketAddr = "0.0.0.0:0".parse().unwrap();
        TlsChunk {
            ts_ns: 1,
            pid: 7,
            tid: 7,
            conn_id,
            direction: ChunkDirection::Received,
            kind,
            local: unspecified,
            remote: unspecified,
            lost: 0,
            cgroup_id: 1,
            command: "nginx",
            cgroup: "/",
            data,
        }
    }

    fn addresses() -> Addresses {
        (
            "10.0.0.1:443".parse().unwrap(),
            "10.0.0.2:5000".parse().unwrap(),
        )
    }

    fn run(held: &mut Held, steps: &[(TlsChunk<'static>, Option<Addresses>)]) -> Vec<String> {
        let mut out = Vec::new();
        for (c, a) in steps {
            held.chunk(c, *a, &mut |c| {
                out.push(format!(
                    "{} {} {}",
                    c.conn_id,
                    c.local,
                    String::from_utf8_lossy(c.data)
                ));
            });
        }
        out
    }

    #[test]
    fn chunks_without_addresses_wait_for_their_stream_and_keep_their_order() {
        let mut held = Held::default();
        let out = run(
            &mut held,
            &[
                (chunk(1, ChunkKind::Data, b"GET / HT"), None),
                (chunk(2, ChunkKind::Data, b"other"), None),
                (chunk(1, ChunkKind::Data, b"TP/1.1\r\n"), None),
                (chunk(1, ChunkKind::Data, b"\r\n"), Some(addresses())),
                // Later chunks of the stream without addresses get the known ones.
                (chunk(1, ChunkKind::Data, b"more"), None),
            ],
        );
        assert_eq!(
            out,
            [
                "1 10.0.0.1:443 GET / HT",
                "1 10.0.0.1:443 TP/1.1\r\n",
                "1 10.0.0.1:443 \r\n",
                "1 10.0.0.1:443 more",
            ]
        );
        assert_eq!(held.held_bytes(), 5, "stream 2 still waits");
        let mut flushed = Vec::new();
        held.flush_all(&mut |c| flushed.push((c.conn_id, c.local.port())));
        assert_eq!(flushed, [(2, 0)]);
        assert_eq!(held.held_bytes(), 0);
    }

    #[test]
    fn a_close_or_the_time_limit_sends_waiting_chunks_on_as_they_are() {
        let mut held = Held::default();
        let out = run(
            &mut held,
            &[
                (chunk(1, ChunkKind::Data, b"a"), None),
                (chunk(1, ChunkKind::Close, b""), None),
            ],
        );
        assert_eq!(out, ["1 0.0.0.0:0 a", "1 0.0.0.0:0 "]);
        run(&mut held, &[(chunk(3, ChunkKind::Data, b"b"), None)]);
        let mut expired = Vec::new();
        held.expire(Instant::now(), &mut |c| expired.push(c.conn_id));
        assert!(expired.is_empty(), "not yet");
        held.expire(Instant::now() + MAX_WAIT, &mut |c| expired.push(c.conn_id));
        assert_eq!(expired, [3]);
    }

    #[test]
    fn a_stream_over_its_limit_is_not_held_any_longer() {
        static BIG: [u8; MAX_STREAM_BYTES] = [b'x'; MAX_STREAM_BYTES];
        let mut held = Held::default();
        let mut count = 0;
        held.chunk(&chunk(1, ChunkKind::Data, &BIG), None, &mut |_| count += 1);
        assert_eq!(count, 0);
        held.chunk(&chunk(1, ChunkKind::Data, b"y"), None, &mut |_| count += 1);
        assert_eq!(count, 2);
        assert_eq!(held.held_bytes(), 0);
    }
}
