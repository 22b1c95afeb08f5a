//! The records tapline stores in ring segments, archived with rkyv (format version 2).
//!
//! A record is written once into a segment frame and read in place (zero-copy) afterwards. Readers
//! of files validate each archived record with bytecheck before they touch it, so a corrupt frame
//! that still carries a valid CRC is refused rather than trusted.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use rkyv::{Archive, Deserialize, Serialize};

/// Version of the record layout inside frames; bumped on any change to these types (2: pairs
/// carry [`RRPair::process`]). The snapshot format version follows it.
pub const RECORD_FORMAT_VERSION: u32 = 2;

/// One captured packet, as the capture source handed it over.
///
/// It borrows the bytes so that writing a packet into a segment copies them once; readers use
/// the archived form in place.
#[derive(Archive, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Interface index (or pcapng interface id; 0 when unknown).
    pub ifindex: u32,
    /// Which way the packet went on the interface (see [`PacketDirection`]).
    pub direction: u8,
    /// Link-layer type of `data` (a pcap LINKTYPE_* value).
    pub link_type: u16,
    /// Length of the packet on the wire; more than `data.len()` when cut at the snap length.
    pub orig_len: u32,
    /// The packet bytes, from the link-layer header on.
    #[rkyv(with = rkyv::with::InlineAsBox)]
    pub data: &'a [u8],
}

/// Direction of a packet on its interface, stored as [`Packet::direction`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PacketDirection {
    /// Not known (imported captures).
    Unknown = 0,
    /// Received on the interface.
    Ingress = 1,
    /// Sent from the interface.
    Egress = 2,
}

/// Application protocol of an [`RRPair`].
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug, PartialEq, Eq), compare(PartialEq))]
#[repr(u8)]
pub enum Protocol {
    /// HTTP/1.0 or HTTP/1.1.
    Http1,
}

impl Protocol {
    /// The name used in output and filters.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http1 => "http1",
        }
    }
}

impl ArchivedProtocol {
    /// The name used in output and filters.
    pub fn name(&self) -> &'static str {
        match self {
            ArchivedProtocol::Http1 => "http1",
        }
    }
}

/// A transport flow from the client's point of view.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Client address: an IPv4 address is stored mapped into IPv6 (`::ffff:a.b.c.d`).
    pub src_ip: [u8; 16],
    /// Client port.
    pub src_port: u16,
    /// Server address, stored like `src_ip`.
    pub dst_ip: [u8; 16],
    /// Server port.
    pub dst_port: u16,
    /// 4 or 6: which family the addresses had on the wire.
    pub ip_version: u8,
}

impl Flow {
    /// Builds a flow from a client and a server address.
    pub fn new(src: SocketAddr, dst: SocketAddr) -> Self {
        Flow {
            src_ip: ip_bytes(src.ip()),
            src_port: src.port(),
            dst_ip: ip_bytes(dst.ip()),
            dst_port: dst.port(),
            ip_version: if src.is_ipv4() { 4 } else { 6 },
        }
    }
}

impl ArchivedFlow {
    /// The client address.
    pub fn src(&self) -> SocketAddr {
        SocketAddr::new(
            ip_from(self.src_ip, self.ip_version),
            self.src_port.to_native(),
        )
    }

    /// The server address.
    pub fn dst(&self) -> SocketAddr {
        SocketAddr::new(
            ip_from(self.dst_ip, self.ip_version),
            self.dst_port.to_native(),
        )
    }
}

fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn ip_from(bytes: [u8; 16], version: u8) -> IpAddr {
    let v6 = Ipv6Addr::from(bytes);
    match (version, v6.to_ipv4_mapped()) {
        (4, Some(v4)) => IpAddr::V4(v4),
        (4, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        _ => IpAddr::V6(v6),
    }
}

/// One protocol message (a request or a response) as it was on the wire.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Capture time of the first byte.
    pub start_ns: u64,
    /// Capture time of the last byte.
    pub end_ns: u64,
    /// The head exactly as sent (for HTTP/1: start line, header lines and the blank line).
    pub head: Vec<u8>,
    /// The body with any transfer framing removed and any content coding kept.
    pub body: Vec<u8>,
    /// Raw trailer lines (HTTP/1 chunked trailers), empty when there were none.
    pub trailers: Vec<u8>,
    /// Bytes the body took on the wire, framing included.
    pub body_wire_len: u64,
}

/// A request with its response: the unit tapline inspects, replays and mocks.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RRPair {
    /// Stable identity: a hash of the flow, the connection's first packet time and the pair's
    /// index in the connection, so it is the same whatever the number of workers.
    pub id: u64,
    /// Application protocol.
    pub protocol: Protocol,
    /// Start of the exchange (first request byte, or first response byte without a request).
    pub start_ns: u64,
    /// End of the exchange (last response byte, or last request byte without a response).
    pub end_ns: u64,
    /// Client and server.
    pub flow: Flow,
    /// Capture time of the connection's first packet.
    pub conn_start_ns: u64,
    /// Index of this pair in its connection, from 0.
    pub index_in_conn: u32,
    /// The request, when seen.
    pub request: Option<Message>,
    /// The final response, when seen.
    pub response: Option<Message>,
    /// Interim responses (HTTP 1xx other than 101) that came before the final one.
    pub interim: Vec<Message>,
    /// Bit set of [`PairFlags`].
    pub flags: u32,
    /// The process whose TLS library gave the plaintext; `None` for pairs parsed from packets.
    pub process: Option<ProcessInfo>,
}

/// The process a TLS plaintext pair was captured in, so a pair can be traced to its service.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    /// Process (thread group) id.
    pub pid: u32,
    /// The thread of the connection's first captured chunk.
    pub tid: u32,
    /// Command name (the kernel's `comm`, at most 16 bytes).
    pub command: String,
    /// Cgroup path; empty when unknown.
    pub cgroup: String,
    /// Cgroup id (0 when unknown).
    pub cgroup_id: u64,
}

/// Flags on an [`RRPair`]: what the capture or the parser could not see or had to cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PairFlags(pub u32);

impl PairFlags {
    /// Part of the exchange is missing (a gap, a connection cut mid-message, a missing side).
    pub const INCOMPLETE: u32 = 1 << 0;
    /// Bytes inside a message were never captured.
    pub const GAP: u32 = 1 << 1;
    /// A body was longer than the configured limit; the rest was counted, not kept.
    pub const BODY_TRUNCATED: u32 = 1 << 2;
    /// No response was seen for the request.
    pub const NO_RESPONSE: u32 = 1 << 3;
    /// A response was seen without its request (capture began mid-connection).
    pub const NO_REQUEST: u32 = 1 << 4;
    /// The bytes did not parse as the protocol; what was skipped is counted.
    pub const PARSE_ERROR: u32 = 1 << 5;
    /// The connection switched protocols (HTTP 101, CONNECT) after this exchange.
    pub const UPGRADE: u32 = 1 << 6;
    /// The response body ended with the connection.
    pub const CLOSE_DELIMITED: u32 = 1 << 7;
    /// Plaintext captured from a TLS library rather than from packets.
    pub const TLS: u32 = 1 << 8;

    /// Every flag with its name as shown by `inspect` and used in filters.
    pub const NAMES: [(u32, &'static str); 9] = [
        (Self::INCOMPLETE, "incomplete"),
        (Self::GAP, "gap"),
        (Self::BODY_TRUNCATED, "body_truncated"),
        (Self::NO_RESPONSE, "no_response"),
        (Self::NO_REQUEST, "no_request"),
        (Self::PARSE_ERROR, "parse_error"),
        (Self::UPGRADE, "upgrade"),
        (Self::CLOSE_DELIMITED, "close_delimited"),
        (Self::TLS, "tls"),
    ];

    /// Names of the flags that are set, in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(bit, _)| self.0 & bit != 0)
            .map(|(_, name)| name)
    }

    /// The bit of a flag name, if it is one.
    pub fn bit(name: &str) -> Option<u32> {
        Self::NAMES
            .into_iter()
            .find(|(_, n)| *n == name)
            .map(|(bit, _)| bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrpair_round_trips_through_rkyv() {
        let pair = RRPair {
            id: 7,
            protocol: Protocol::Http1,
            start_ns: 1,
            end_ns: 2,
            flow: Flow::new(
                "10.0.0.1:40000".parse().unwrap(),
                "10.0.0.2:80".parse().unwrap(),
            ),
            conn_start_ns: 1,
            index_in_conn: 0,
            request: Some(Message {
                head: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
                ..Message::default()
            }),
            response: None,
            interim: vec![],
            flags: PairFlags::NO_RESPONSE,
            process: Some(ProcessInfo {
                pid: 10,
                tid: 11,
                command: "nginx".into(),
                cgroup: "/system.slice/nginx.service".into(),
                cgroup_id: 12,
            }),
        };
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&pair).unwrap();
        let archived = rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(
            archived.flow.src(),
            "10.0.0.1:40000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            archived.flow.dst(),
            "10.0.0.2:80".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(archived.protocol, ArchivedProtocol::Http1);
        let process = archived.process.as_ref().unwrap();
        assert_eq!(process.pid.to_native(), 10);
        assert_eq!(process.command.as_str(), "nginx");
        let back: RRPair = rkyv::deserialize::<RRPair, rkyv::rancor::Error>(archived).unwrap();
        assert_eq!(back, pair);
    }

    #[test]
    fn flag_names_round_trip() {
        let flags = PairFlags(PairFlags::INCOMPLETE | PairFlags::GAP);
        assert_eq!(flags.names().collect::<Vec<_>>(), ["incomplete", "gap"]);
        assert_eq!(PairFlags::bit("gap"), Some(PairFlags::GAP));
        assert_eq!(PairFlags::bit("nope"), None);
    }
}
