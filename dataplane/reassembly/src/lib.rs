//! TCP stream reassembly: a deterministic core that turns captured TCP segments into ordered
//! byte streams per connection direction, with gaps, overlaps and evictions counted.
//!
//! It does no I/O and reads no clock: segments and their capture timestamps go in, stream events
//! come out through a [`StreamSink`], so tests drive it directly and reproducibly.
//!
//! # Behaviour
//!
//! - **Connections.** The flow key does not depend on direction. The client is the sender of a
//!   SYN without ACK, or the receiver of a SYN-ACK seen first; a connection picked up mid-stream
//!   takes the endpoint with the higher (ephemeral) port as client, the sender of the first
//!   segment on a tie. Only a SYN or a segment with payload starts a connection; a direction
//!   first seen mid-stream starts at that segment's sequence number.
//! - **Ordering.** In-order payload goes to [`StreamSink::data`] as the segment's own slice,
//!   without copying. Segments ahead of a hole are buffered (bounded per direction and in total)
//!   and delivered once contiguous. Bytes seen before are trimmed and counted; buffered bytes
//!   that differ are resolved by [`OverlapPolicy`]. Sequence numbers are placed modulo 2^32 as
//!   64-bit stream offsets.
//! - **Gaps.** A hole is given up on ([`StreamSink::gap`]) when the peer acknowledges beyond it
//!   (the receiver got bytes the capture missed), when a buffer limit is reached, or when the
//!   connection closes (RST, idle timeout, eviction, reuse, end of input); delivery then resumes
//!   with the buffered bytes. A FIN alone does not give up on the holes before it, since the
//!   missing segment may still be retransmitted; the peer's acknowledgment of the FIN does.
//!   Segments, FINs and acknowledgments more than 1 GiB (the largest TCP window) ahead of the
//!   next expected byte are ignored and counted rather than turned into giant gaps.
//! - **Close.** SYN and FIN each take one sequence number. A direction ends when every byte
//!   before its FIN was delivered or gapped; the connection closes when both ended, at once on
//!   RST, after the idle timeout (checked on the connection's next segment and by
//!   [`Reassembler::expire`]), when evicted from a full table (least recently active first, to
//!   within 100 ms of capture time), or when a new SYN reuses its 4-tuple: a SYN with a new ISN
//!   after a FIN or RST, or far (16 MiB) from the current sequence numbers. Closed connections
//!   stay in the table for the idle timeout to absorb late segments, which are counted, not
//!   delivered.
//! - **Bounds.** Buffered bytes never exceed the per-direction and total limits of
//!   [`ReassemblyConfig`]; the flow table never exceeds `max_flows` entries. Overflows are
//!   counted in [`ReassemblyStats`] and surface as gaps or closes, never as panics.
//! - **Determinism.** Time is the capture timestamps (made monotonic), never a clock; the flow
//!   table's hasher is randomly keyed but nothing depends on its iteration order. The same
//!   segments always produce the same events.
//!
//! # Cost
//!
//! In-order payload costs a flow lookup (with a one-entry cache for runs of one flow) and a few
//! comparisons, and is handed to the sink without copying or allocating. Out-of-order payload is
//! copied once into the buffer; segments that continue a buffered run extend it in place.

// Lets the fuzz harness, shared with the tests, name this crate the same way in both places.
#[cfg(test)]
extern crate self as tapline_reassembly;

mod buffer;
mod config;
mod flow;
mod reassembler;
mod segment;
mod sink;
mod stats;
mod stream;
mod table;

#[cfg(test)]
mod tests;

pub use buffer::CHUNK_OVERHEAD;
pub use config::{OverlapPolicy, ReassemblyConfig};
pub use reassembler::Reassembler;
pub use segment::{TcpFlags, TcpSegment};
pub use sink::{CloseReason, ConnId, ConnInfo, StreamSink};
pub use stats::ReassemblyStats;

/// Which way bytes travel, relative to the endpoint that opened the connection (the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// From the client (the SYN sender, or the best guess without a SYN) to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

impl Direction {
    /// The opposite direction.
    pub fn reverse(self) -> Self {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}
