//! TCP stream reassembly: a deterministic core that turns captured TCP segments into ordered
//! byte streams per connection direction, with gaps, overlaps and evictions counted.
//!
//! It does no I/O and reads no clock: segments and their capture timestamps go in, stream events
//! come out through a [`StreamSink`], so tests drive it directly and reproducibly.

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
