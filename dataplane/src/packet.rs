//! Decoding captured packets down to their TCP segment: link layer (Ethernet with VLAN tags,
//! Linux cooked SLL and SLL2, BSD loopback, raw IP), IPv4/IPv6 and TCP, with `etherparse`.
//! Frames of tapline's private TLS link type decode to their [`TlsChunk`].
//!
//! Packets are hostile input: every layer is length-checked by etherparse's lax slicers, which
//! also accept packets cut at the snap length (their payload is simply shorter).

use std::net::{IpAddr, SocketAddr};

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

use crate::tls_chunk::{self, ChunkError, TlsChunk};

/// pcap LINKTYPE_* values tapline decodes.
pub mod link {
    /// BSD loopback, address family in host byte order.
    pub const NULL: u16 = 0;
    /// Ethernet II, with any VLAN tags.
    pub const ETHERNET: u16 = 1;
    /// Raw IP as some systems write DLT_RAW.
    pub const RAW_12: u16 = 12;
    /// Raw IP as some systems write DLT_RAW.
    pub const RAW_14: u16 = 14;
    /// Raw IPv4 or IPv6.
    pub const RAW: u16 = 101;
    /// OpenBSD loopback, address family in network byte order.
    pub const LOOP: u16 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u16 = 113;
    /// Raw IPv4.
    pub const IPV4: u16 = 228;
    /// Raw IPv6.
    pub const IPV6: u16 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u16 = 276;
    /// TLS plaintext chunks (LINKTYPE_USER15), see [`crate::tls_chunk`].
    pub const TAPLINE_TLS: u16 = crate::tls_chunk::LINKTYPE_TAPLINE_TLS;
}

/// A TCP segment found in a packet, borrowing the packet's bytes.
#[derive(Debug, Clone, Copy)]
pub struct TcpPacket<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// TCP flag bits (FIN=0x01 … CWR=0x80).
    pub flags: u8,
    /// The TCP payload as captured (shorter than sent when the packet was snapped).
    pub payload: &'a [u8],
    /// Offset of `payload` within the packet bytes.
    pub payload_offset: usize,
}

/// What a packet turned out to hold, for the pipeline's counters.
#[derive(Debug, Clone, Copy)]
pub enum Decoded<'a> {
    /// A TCP segment.
    Tcp(TcpPacket<'a>),
    /// TLS plaintext captured from a process (link type [`link::TAPLINE_TLS`]).
    TlsChunk(TlsChunk<'a>),
    /// A frame of the TLS link type that is not a valid chunk.
    BadTlsChunk(ChunkError),
    /// An IP fragment (not reassembled at this layer; counted).
    Fragment,
    /// Something other than TCP over IP (ARP, UDP, ICMP, …).
    Other,
    /// A link type tapline does not decode.
    UnsupportedLink(u16),
    /// Malformed or cut before the TCP header.
    Malformed,
}

/// Decodes one packet of the given link type.
pub fn decode(link_type: u16, data: &[u8]) -> Decoded<'_> {
    let sliced = match link_type {
        link::TAPLINE_TLS => {
            return match tls_chunk::decode(data) {
                Ok(chunk) => Decoded::TlsChunk(chunk),
                Err(e) => Decoded::BadTlsChunk(e),
            };
        }
        link::ETHERNET => LaxSlicedPacket::from_ethernet(data).ok(),
        link::RAW | link::RAW_12 | link::RAW_14 | link::IPV4 | link::IPV6 => {
            LaxSlicedPacket::from_ip(data).ok()
        }
        link::LINUX_SLL => {
            let (Some(proto), Some(rest)) = (data.get(14..16), data.get(16..)) else {
                return Decoded::Malformed;
            };
            let ether_type = u16::from_be_bytes([proto[0], proto[1]]);
            Some(LaxSlicedPacket::from_ether_type(
                EtherType(ether_type),
                rest,
            ))
        }
        link::LINUX_SLL2 => {
            let (Some(proto), Some(rest)) = (data.get(0..2), data.get(20..)) else {
                return Decoded::Malformed;
            };
            let ether_type = u16::from_be_bytes([proto[0], proto[1]]);
            Some(LaxSlicedPacket::from_ether_type(
                EtherType(ether_type),
                rest,
            ))
        }
        link::NULL | link::LOOP => {
            let Some(rest) = data.get(4..) else {
                return Decoded::Malformed;
            };
            LaxSlicedPacket::from_ip(rest).ok()
        }
        other => return Decoded::UnsupportedLink(other),
    };
    let Some(sliced) = sliced else {
        return Decoded::Malformed;
    };
    let (src_ip, dst_ip, fragmenting) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => (
            IpAddr::V4(v4.header().source_addr()),
            IpAddr::V4(v4.header().destination_addr()),
            v4.is_payload_fragmented(),
        ),
        Some(LaxNetSlice::Ipv6(v6)) => (
            IpAddr::V6(v6.header().source_addr()),
            IpAddr::V6(v6.header().destination_addr()),
            v6.is_payload_fragmented(),
        ),
        Some(_) | None => return Decoded::Other,
    };
    if fragmenting {
        return Decoded::Fragment;
    }
    match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => {
            let payload = tcp.payload();
            let payload_offset = (payload.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
            if payload_offset > data.len() {
                return Decoded::Malformed;
            }
            let header = tcp.header_slice();
            let flags = header.get(13).copied().unwrap_or(0);
            Decoded::Tcp(TcpPacket {
                src: SocketAddr::new(src_ip, tcp.source_port()),
                dst: SocketAddr::new(dst_ip, tcp.destination_port()),
                seq: tcp.sequence_number(),
                ack: tcp.acknowledgment_number(),
                flags,
                payload,
                payload_offset,
            })
        }
        Some(_) => Decoded::Other,
        None => match sliced.stop_err {
            Some(_) => Decoded::Malformed,
            None => Decoded::Other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_ipv4(payload: &[u8]) -> Vec<u8> {
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(0x123.try_into().unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1000, 65535)
            .psh()
            .ack(77);
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn decodes_vlan_tagged_ipv4_tcp() {
        let bytes = tcp_ipv4(b"GET / HTTP/1.1\r\n\r\n");
        let Decoded::Tcp(tcp) = decode(link::ETHERNET, &bytes) else {
            panic!("not tcp");
        };
        assert_eq!(tcp.src, "10.0.0.1:40000".parse::<SocketAddr>().unwrap());
        assert_eq!(tcp.dst, "10.0.0.2:80".parse::<SocketAddr>().unwrap());
        assert_eq!(tcp.seq, 1000);
        assert_eq!(tcp.ack, 77);
        assert_eq!(tcp.flags & 0x18, 0x18);
        assert_eq!(tcp.payload, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(&bytes[tcp.payload_offset..], tcp.payload);
    }

    #[test]
    fn snapped_packet_yields_a_shorter_payload() {
        let bytes = tcp_ipv4(&[7u8; 500]);
        let cut = &bytes[..bytes.len() - 100];
        let Decoded::Tcp(tcp) = decode(link::ETHERNET, cut) else {
            panic!("not tcp");
        };
        assert_eq!(tcp.payload.len(), 400);
    }

    #[test]
    fn cooked_and_raw_links_decode() {
        let eth = tcp_ipv4(b"x");
        let ip = &eth[18..]; // after Ethernet + one VLAN tag
        assert!(matches!(decode(link::RAW, ip), Decoded::Tcp(_)));
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&0x0800u16.to_be_bytes());
        sll.extend_from_slice(ip);
        assert!(matches!(decode(link::LINUX_SLL, &sll), Decoded::Tcp(_)));
        let mut sll2 = 0x0800u16.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(ip);
        assert!(matches!(decode(link::LINUX_SLL2, &sll2), Decoded::Tcp(_)));
    }

    #[test]
    fn tls_link_type_decodes_to_a_chunk() {
        let chunk = TlsChunk {
            ts_ns: 5,
            pid: 1,
            tid: 2,
            conn_id: 3,
            direction: tls_chunk::ChunkDirection::Sent,
            kind: tls_chunk::ChunkKind::Data,
            local: "10.0.0.1:40000".parse().unwrap(),
            remote: "10.0.0.2:443".parse().unwrap(),
            lost: 0,
            cgroup_id: 0,
            command: "curl",
            cgroup: "",
            data: b"GET / HTTP/1.1\r\n\r\n",
        };
        let mut bytes = Vec::new();
        chunk.encode_into(&mut bytes);
        let Decoded::TlsChunk(back) = decode(link::TAPLINE_TLS, &bytes) else {
            panic!("not a chunk");
        };
        assert_eq!(back, chunk);
        assert!(matches!(
            decode(link::TAPLINE_TLS, &bytes[1..]),
            Decoded::BadTlsChunk(_)
        ));
    }

    #[test]
    fn garbage_and_unknown_links_do_not_panic() {
        assert!(matches!(
            decode(link::ETHERNET, &[1, 2, 3]),
            Decoded::Malformed
        ));
        assert!(matches!(
            decode(9999, &[0; 40]),
            Decoded::UnsupportedLink(9999)
        ));
        assert!(matches!(
            decode(link::LINUX_SLL2, &[0; 5]),
            Decoded::Malformed
        ));
        for len in 0..80 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            for lt in [0, 1, 101, 108, 113, 162, 228, 229, 276] {
                let _ = decode(lt, &junk);
            }
        }
    }
}
