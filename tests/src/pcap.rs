//! Hand-made captures for tests that cannot run tcpdump: a pcap (Ethernet) of TCP connections
//! with handshake, exchanges and close, built from Ethernet + IPv4 + TCP frames.

/// An IPv4 address and port.
pub type Endpoint = ([u8; 4], u16);

/// SYN.
const SYN: u8 = 0x02;
/// ACK.
const ACK: u8 = 0x10;
/// PSH + ACK.
const PSH_ACK: u8 = 0x18;
/// FIN + ACK.
const FIN_ACK: u8 = 0x11;
/// Largest payload of one hand-made segment.
const SEGMENT: usize = 1400;

/// A pcap file being built in memory.
#[derive(Debug, Clone)]
pub struct PcapBuilder {
    bytes: Vec<u8>,
}

impl Default for PcapBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PcapBuilder {
    /// A pcap holding only its global header (v2.4, snaplen 65535, `LINKTYPE_ETHERNET`).
    pub fn new() -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&65535u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        Self { bytes }
    }

    /// Appends one record holding `frame`, captured at `secs`.`usecs`.
    pub fn record(&mut self, secs: u32, usecs: u32, frame: &[u8]) {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        for field in [secs, usecs, len, len] {
            self.bytes.extend_from_slice(&field.to_le_bytes());
        }
        self.bytes.extend_from_slice(frame);
    }

    /// The file's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// One segment of a hand-made TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Whether the client sent it.
    pub from_client: bool,
    /// TCP flags.
    pub flags: u8,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Payload.
    pub data: &'a [u8],
}

/// Calls `emit` for each segment of one TCP connection whose client and server start at
/// sequence numbers `isn` (client, server): handshake, each exchange's request then response
/// (in pieces of at most 1400 bytes), and a FIN from each side.
pub fn connection<'a>(
    isn: (u32, u32),
    exchanges: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    mut emit: impl FnMut(Segment<'_>),
) {
    let (mut c, mut s) = isn;
    let mut send = |from_client, flags, seq, ack, data| {
        emit(Segment {
            from_client,
            flags,
            seq,
            ack,
            data,
        });
    };
    send(true, SYN, c, 0, &[]);
    send(false, SYN | ACK, s, c.wrapping_add(1), &[]);
    c = c.wrapping_add(1);
    s = s.wrapping_add(1);
    send(true, ACK, c, s, &[]);
    for (request, response) in exchanges {
        for piece in request.chunks(SEGMENT) {
            send(true, PSH_ACK, c, s, piece);
            c = c.wrapping_add(u32::try_from(piece.len()).unwrap_or(0));
        }
        for piece in response.chunks(SEGMENT) {
            send(false, PSH_ACK, s, c, piece);
            s = s.wrapping_add(u32::try_from(piece.len()).unwrap_or(0));
        }
    }
    send(true, FIN_ACK, c, s, &[]);
    send(false, FIN_ACK, s, c.wrapping_add(1), &[]);
    send(true, ACK, c.wrapping_add(1), s.wrapping_add(1), &[]);
}

/// An Ethernet + IPv4 + TCP frame of `segment` between `client` and `server` (checksums left
/// zero; tapline does not check them).
pub fn frame(client: Endpoint, server: Endpoint, segment: &Segment<'_>) -> Vec<u8> {
    let (src, dst) = if segment.from_client {
        (client, server)
    } else {
        (server, client)
    };
    let data = segment.data;
    let mut f = Vec::with_capacity(54 + data.len());
    f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = u16::try_from(40 + data.len()).unwrap_or(u16::MAX);
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&segment.seq.to_be_bytes());
    f.extend_from_slice(&segment.ack.to_be_bytes());
    f.extend_from_slice(&[0x50, segment.flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(data);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_handshake_exchanges_and_close() {
        let mut segments = Vec::new();
        let request: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
        let response: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";
        connection((100, 500), [(request, response)], |s| {
            segments.push((s.from_client, s.flags, s.seq, s.ack, s.data.len()));
        });
        assert_eq!(
            segments,
            vec![
                (true, SYN, 100, 0, 0),
                (false, SYN | ACK, 500, 101, 0),
                (true, ACK, 101, 501, 0),
                (true, PSH_ACK, 101, 501, request.len()),
                (false, PSH_ACK, 501, 119, response.len()),
                (true, FIN_ACK, 119, 528, 0),
                (false, FIN_ACK, 528, 120, 0),
                (true, ACK, 120, 529, 0),
            ]
        );
    }

    #[test]
    fn a_record_holds_the_frame_and_its_lengths() {
        let mut pcap = PcapBuilder::new();
        pcap.record(7, 9, &[1, 2, 3]);
        let bytes = pcap.into_bytes();
        assert_eq!(bytes.len(), 24 + 16 + 3);
        assert_eq!(bytes.get(24..28), Some(&7u32.to_le_bytes()[..]));
        assert_eq!(bytes.get(32..36), Some(&3u32.to_le_bytes()[..]));
        assert_eq!(bytes.get(40..), Some(&[1, 2, 3][..]));
    }
}
