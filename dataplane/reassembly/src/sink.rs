//! The output of the reassembler: connection identities and the stream events a sink receives.

use std::net::SocketAddr;

use crate::Direction;

/// Identifies one connection, unique within one [`Reassembler`](crate::Reassembler).
///
/// A reused 4-tuple gets a new id for each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// What is known about a connection when it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The connection's id, used by all later events.
    pub id: ConnId,
    /// The endpoint that opened the connection (or the best guess, see [`Direction`]).
    pub client: SocketAddr,
    /// The other endpoint.
    pub server: SocketAddr,
    /// Capture time of the first segment.
    pub first_ts_ns: u64,
    /// Whether the handshake was seen (a SYN or SYN-ACK), so the streams start at their true
    /// first byte; `false` for a connection picked up mid-stream.
    pub saw_syn: bool,
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Both directions sent FIN and all their bytes were delivered (or gapped).
    Fin,
    /// A RST was seen.
    Rst,
    /// No segment for longer than the idle timeout.
    IdleTimeout,
    /// The flow table was full and this was the least recently active connection.
    Evicted,
    /// [`Reassembler::finish`](crate::Reassembler::finish) was called.
    EndOfInput,
    /// The 4-tuple was reused by a new SYN.
    Reused,
}

/// Receives the events of reassembled connections.
///
/// For each connection: one `open`, then any number of `data`, `gap` and `end` events, then one
/// `close`. Per direction, `data` and `gap` together account for every stream byte in order, and
/// nothing follows that direction's `end`.
pub trait StreamSink {
    /// A new connection.
    fn open(&mut self, conn: &ConnInfo);
    /// In-order bytes of one direction; ts_ns = capture time of the segment that made them contiguous.
    fn data(&mut self, conn: ConnId, dir: Direction, ts_ns: u64, bytes: &[u8]);
    /// `len` bytes of this direction will never be delivered (missed by the capture, or given up on).
    fn gap(&mut self, conn: ConnId, dir: Direction, ts_ns: u64, len: u64);
    /// This direction sent FIN and all its bytes before the FIN were delivered (or gapped).
    fn end(&mut self, conn: ConnId, dir: Direction, ts_ns: u64);
    /// The connection is gone; no more events for this id.
    fn close(&mut self, conn: ConnId, ts_ns: u64, reason: CloseReason);
}
