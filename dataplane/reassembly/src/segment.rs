//! The input of the reassembler: one captured TCP segment, borrowed from the capture buffer.

use std::fmt;
use std::net::SocketAddr;

/// TCP header flags, with the bits at their header positions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers (opens a connection).
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push buffered data to the application.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// The urgent pointer is significant.
    pub const URG: u8 = 0x20;
    /// ECN echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;

    /// Whether every bit of `bits` is set.
    #[inline]
    pub fn contains(self, bits: u8) -> bool {
        self.0 & bits == bits
    }

    /// Whether FIN is set.
    #[inline]
    pub fn fin(self) -> bool {
        self.contains(Self::FIN)
    }

    /// Whether SYN is set.
    #[inline]
    pub fn syn(self) -> bool {
        self.contains(Self::SYN)
    }

    /// Whether RST is set.
    #[inline]
    pub fn rst(self) -> bool {
        self.contains(Self::RST)
    }

    /// Whether ACK is set.
    #[inline]
    pub fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (bit, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// One captured TCP segment: the header fields the reassembler needs and the payload bytes.
///
/// The payload is borrowed: in-order bytes are handed to the sink as this same slice.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<'a> {
    /// Capture time, nanoseconds (any epoch, as long as it is the same for all segments).
    pub ts_ns: u64,
    /// Sender address and port.
    pub src: SocketAddr,
    /// Receiver address and port.
    pub dst: SocketAddr,
    /// Sequence number of the first payload byte (or of the SYN/FIN itself).
    pub seq: u32,
    /// Acknowledgment number, meaningful when [`TcpFlags::ack`] is set.
    pub ack: u32,
    /// Header flags.
    pub flags: TcpFlags,
    /// TCP payload as captured.
    pub payload: &'a [u8],
}
