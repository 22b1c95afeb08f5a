//! Limits and policies of a [`Reassembler`](crate::Reassembler).

/// How to resolve bytes that two segments carry for the same stream offsets but with different
/// contents (only detectable while the earlier bytes are still buffered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum OverlapPolicy {
    /// The bytes seen first win.
    ///
    /// This is what the receiver most likely saw: Linux keeps data already in its out-of-order
    /// queue and trims the overlapping part of a later segment, and bytes already delivered to
    /// the application cannot be taken back by anyone. It also keeps an injected segment from
    /// rewriting data that was already captured.
    #[default]
    First,
    /// The bytes seen last win (for buffered bytes; delivered bytes stay delivered).
    Last,
}

/// Limits and policies of a [`Reassembler`](crate::Reassembler).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Most flow-table entries (open connections plus recently closed ones kept to absorb late
    /// segments). Beyond it a closed entry is forgotten, or else the least recently active
    /// connection (to within 100 ms of capture time) is evicted. At least 1 is used.
    pub max_flows: usize,
    /// Most out-of-order bytes held for one direction of one connection.
    ///
    /// Buffered bytes are counted with a fixed bookkeeping cost per buffered run
    /// ([`CHUNK_OVERHEAD`](crate::CHUNK_OVERHEAD)), so many tiny segments cannot exceed the
    /// bound. Beyond it, the oldest hole is declared a gap and delivery moves on.
    pub max_buffered_per_direction: usize,
    /// Most out-of-order bytes held by all connections together, counted the same way.
    pub max_buffered_total: usize,
    /// A connection with no segment for longer than this (capture time) is closed.
    pub idle_timeout_ns: u64,
    /// How overlapping bytes with different contents are resolved.
    pub overlap: OverlapPolicy,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        Self {
            max_flows: 262_144,
            max_buffered_per_direction: 4 << 20,
            max_buffered_total: 256 << 20,
            idle_timeout_ns: 120_000_000_000,
            overlap: OverlapPolicy::First,
        }
    }
}
