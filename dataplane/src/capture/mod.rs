//! Capture sources: where packets come from before they reach the segment store.
//!
//! Every source yields [`RawPacket`]s; the import and live pipelines do not care which source
//! produced them.

pub mod ebpf;
pub mod file;
pub mod span;

pub use file::{CaptureError, CaptureFile, PacketIter};

/// A packet as a capture source hands it over, borrowed from the source's buffer.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Interface index or pcapng interface id.
    pub ifindex: u32,
    /// Which way the packet went on its interface, when the source knows.
    pub direction: crate::record::PacketDirection,
    /// pcap LINKTYPE_* of `data`.
    pub link_type: u16,
    /// Length on the wire.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}
