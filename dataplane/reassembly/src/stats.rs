//! Counters of what the reassembler saw and did, for reports and health checks.

/// Counters of a [`Reassembler`](crate::Reassembler); all only ever grow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReassemblyStats {
    /// Segments given to [`Reassembler::segment`](crate::Reassembler::segment).
    pub segments: u64,
    /// Payload bytes of those segments.
    pub payload_bytes: u64,
    /// Bytes handed to [`StreamSink::data`](crate::StreamSink::data).
    pub delivered_bytes: u64,
    /// Segments buffered because they arrived ahead of a hole.
    pub out_of_order: u64,
    /// Segments whose bytes had all been seen already (delivered or buffered).
    pub retransmitted: u64,
    /// Segments with some bytes seen already and some new (the old part was trimmed).
    pub partial_duplicates: u64,
    /// Segments that overlapped buffered bytes with different contents.
    pub conflicting_overlaps: u64,
    /// Gap events.
    pub gaps: u64,
    /// Bytes declared missing by gap events.
    pub gap_bytes: u64,
    /// Connections opened.
    pub flows_opened: u64,
    /// Connections closed, for any reason.
    pub flows_closed: u64,
    /// Connections closed by FIN from both sides.
    pub fin_closes: u64,
    /// Connections closed by RST.
    pub rst_closes: u64,
    /// Connections closed by the idle timeout.
    pub idle_timeouts: u64,
    /// Connections evicted because the flow table was full.
    pub evicted_flows: u64,
    /// Connections closed because a new SYN reused their 4-tuple.
    pub reused: u64,
    /// Times a buffer limit forced a hole to be declared a gap.
    pub buffer_overflows: u64,
    /// Segments (or buffered runs) with data after RST or beyond FIN, ignored.
    pub after_close: u64,
    /// Segments or FINs more than the largest TCP window (1 GiB) ahead of the next expected
    /// byte, ignored.
    pub out_of_window: u64,
    /// Connections first seen without a handshake.
    pub midstream_pickups: u64,
    /// Segments of no known connection that could not start one (pure ACK, RST, empty FIN).
    pub untracked: u64,
    /// SYNs with a new sequence number inside the current connection's window, ignored as a
    /// receiver would (it answers them with a challenge ACK).
    pub ignored_syns: u64,
}
