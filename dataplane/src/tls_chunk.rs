//! The stored form of a TLS plaintext chunk: what a uprobe on a TLS library saw a process send
//! or receive on one connection, kept as a [`Packet`](crate::record::Packet) frame of the private
//! link type [`LINKTYPE_TAPLINE_TLS`] in the packet segments.
//!
//! The frame's bytes are a fixed little-endian header, the cgroup path and the plaintext:
//!
//! ```text
//! offset size field
//!      0    4 magic "TLTC"
//!      4    1 version (1)
//!      5    1 direction: 0 sent by the process, 1 received by it
//!      6    1 kind: 0 data, 1 close
//!      7    1 address family: 4 or 6
//!      8    8 ts_ns
//!     16    4 pid
//!     20    4 tid
//!     24    8 conn_id
//!     32    8 cgroup_id
//!     40    4 lost: bytes after `data` the kernel could not copy
//!     44   16 local address (IPv4 mapped into IPv6)
//!     60    2 local port
//!     62   16 remote address
//!     78    2 remote port
//!     80   16 command (comm), NUL-padded UTF-8
//!     96    2 cgroup path length
//!     98    2 reserved, 0
//!    100    4 data length
//!    104      cgroup path (UTF-8), then the plaintext
//! ```
//!
//! A capture source encodes a [`TlsChunk`] with [`TlsChunk::encode_into`] and hands the bytes to
//! [`Pipeline::packet`](crate::import::Pipeline::packet) as a
//! [`RawPacket`](crate::capture::RawPacket) of link type [`LINKTYPE_TAPLINE_TLS`]; nothing else
//! changes for it. Everything read back is hostile: [`decode`] checks every length and value.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The pcap link type of stored TLS plaintext chunks (LINKTYPE_USER15, private use), so pcap
/// tools see them as an opaque user link type rather than as broken packets.
pub const LINKTYPE_TAPLINE_TLS: u16 = 162;

/// First bytes of every encoded chunk.
pub const MAGIC: [u8; 4] = *b"TLTC";
/// Version of the encoded layout; [`decode`] refuses any other.
pub const CHUNK_VERSION: u8 = 1;
/// Length of the fixed header before the cgroup path and the plaintext.
pub const HEADER_LEN: usize = 104;
/// Longest command kept (the kernel's `comm` is 16 bytes).
pub const MAX_COMMAND_LEN: usize = 16;
/// Longest cgroup path kept by [`TlsChunk::encode_into`] (the kernel's `PATH_MAX`).
pub const MAX_CGROUP_LEN: usize = 4096;

/// Which way the plaintext went, seen from the process the uprobe fired in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ChunkDirection {
    /// The process wrote it (`SSL_write` and the like): it travels local → remote.
    Sent = 0,
    /// The process read it (`SSL_read` and the like): it travelled remote → local.
    Received = 1,
}

/// What a chunk reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ChunkKind {
    /// Plaintext bytes (possibly none when all were `lost`).
    Data = 0,
    /// The process closed (or freed) the TLS connection: its stream ends here.
    Close = 1,
}

/// One TLS plaintext chunk, borrowing its text and bytes from the buffer it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsChunk<'a> {
    /// When the library call returned, nanoseconds since the Unix epoch. A capture source sets
    /// the frame's time ([`RawPacket::ts_ns`](crate::capture::RawPacket::ts_ns)) to the same
    /// value; the pipeline orders chunks by the frame's time, as it does packets.
    pub ts_ns: u64,
    /// Process (thread group) id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// The library's connection handle (the `SSL *`), unique within the process while it lives.
    pub conn_id: u64,
    /// Sent or received by the process.
    pub direction: ChunkDirection,
    /// Data or the end of the connection.
    pub kind: ChunkKind,
    /// The process's end of the socket.
    pub local: SocketAddr,
    /// The peer's end.
    pub remote: SocketAddr,
    /// Bytes the kernel could not copy, which followed `data` in the stream.
    pub lost: u32,
    /// The process's cgroup id (0 when unknown).
    pub cgroup_id: u64,
    /// The process's command name (the kernel's `comm`, at most 16 bytes).
    pub command: &'a str,
    /// The process's cgroup path; may be empty.
    pub cgroup: &'a str,
    /// The plaintext.
    pub data: &'a [u8],
}

/// Why bytes are not an encoded [`TlsChunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Fewer bytes than the fixed header.
    #[error("TLS chunk of {len} bytes is shorter than its {HEADER_LEN}-byte header")]
    Short {
        /// Bytes given.
        len: usize,
    },
    /// The magic is wrong: not a tapline TLS chunk.
    #[error("TLS chunk magic {found:02x?} is not {MAGIC:02x?}")]
    Magic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A layout version this build does not read.
    #[error("TLS chunk version {found}, this build reads version {CHUNK_VERSION}")]
    Version {
        /// The version byte.
        found: u8,
    },
    /// A one-byte field holds a value outside its range.
    #[error("TLS chunk field {field} has invalid value {value}")]
    Field {
        /// The field's name.
        field: &'static str,
        /// The value found.
        value: u8,
    },
    /// The declared lengths do not add up to the bytes given.
    #[error("TLS chunk declares {declared} bytes but has {actual}")]
    Length {
        /// Header plus declared cgroup and data lengths.
        declared: u64,
        /// Bytes given.
        actual: usize,
    },
    /// A text field is not UTF-8.
    #[error("TLS chunk field {field} is not UTF-8")]
    Text {
        /// The field's name.
        field: &'static str,
    },
}

impl TlsChunk<'_> {
    /// Appends the encoded chunk to `out`, for a capture source to hand to the pipeline.
    ///
    /// A command longer than [`MAX_COMMAND_LEN`] bytes or a cgroup path longer than
    /// [`MAX_CGROUP_LEN`] is cut at a character boundary; plaintext longer than `u32::MAX` bytes
    /// is cut and the rest counted in `lost`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let command = cut(self.command, MAX_COMMAND_LEN);
        let cgroup = cut(self.cgroup, MAX_CGROUP_LEN);
        let data_len = u32::try_from(self.data.len()).unwrap_or(u32::MAX);
        let data = self.data.get(..data_len as usize).unwrap_or(self.data);
        let extra = u32::try_from(self.data.len() - data.len()).unwrap_or(u32::MAX);
        let lost = self.lost.saturating_add(extra);
        let family = if self.local.is_ipv4() && self.remote.is_ipv4() {
            4
        } else {
            6
        };
        out.reserve(HEADER_LEN + cgroup.len() + data.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[CHUNK_VERSION, self.direction as u8, self.kind as u8, family]);
        out.extend_from_slice(&self.ts_ns.to_le_bytes());
        out.extend_from_slice(&self.pid.to_le_bytes());
        out.extend_from_slice(&self.tid.to_le_bytes());
        out.extend_from_slice(&self.conn_id.to_le_bytes());
        out.extend_from_slice(&self.cgroup_id.to_le_bytes());
        out.extend_from_slice(&lost.to_le_bytes());
        for addr in [self.local, self.remote] {
            out.extend_from_slice(&ip_octets(addr.ip()));
            out.extend_from_slice(&addr.port().to_le_bytes());
        }
        let mut comm = [0u8; MAX_COMMAND_LEN];
        if let Some(slot) = comm.get_mut(..command.len()) {
            slot.copy_from_slice(command.as_bytes());
        }
        out.extend_from_slice(&comm);
        // `cut` kept the path within MAX_CGROUP_LEN, which fits a u16.
        out.extend_from_slice(&(cgroup.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&data_len.to_le_bytes());
        out.extend_from_slice(cgroup.as_bytes());
        out.extend_from_slice(data);
    }

    /// The encoded length of this chunk.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + cut(self.cgroup, MAX_CGROUP_LEN).len() + self.data.len().min(u32::MAX as usize)
    }
}

/// Reads an encoded chunk, borrowing its text and plaintext from `bytes`.
///
/// # Errors
/// A [`ChunkError`] when the bytes are short, of another magic or version, hold an out-of-range
/// field or non-UTF-8 text, or their declared lengths do not match their size.
pub fn decode(bytes: &[u8]) -> Result<TlsChunk<'_>, ChunkError> {
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(ChunkError::Short { len: bytes.len() })?;
    let r = Reader(header);
    let magic = r.array::<4>(0);
    if magic != MAGIC {
        return Err(ChunkError::Magic { found: magic });
    }
    let [version, direction, kind, family] = r.array::<4>(4);
    if version != CHUNK_VERSION {
        return Err(ChunkError::Version { found: version });
    }
    let direction = match direction {
        0 => ChunkDirection::Sent,
        1 => ChunkDirection::Received,
        value => {
            return Err(ChunkError::Field {
                field: "direction",
                value,
            });
        }
    };
    let kind = match kind {
        0 => ChunkKind::Data,
        1 => ChunkKind::Close,
        value => {
            return Err(ChunkError::Field {
                field: "kind",
                value,
            });
        }
    };
    if family != 4 && family != 6 {
        return Err(ChunkError::Field {
            field: "family",
            value: family,
        });
    }
    let cgroup_len = usize::from(u16::from_le_bytes(r.array(96)));
    let data_len = u32::from_le_bytes(r.array(100)) as usize;
    let declared = HEADER_LEN as u64 + cgroup_len as u64 + data_len as u64;
    if declared != bytes.len() as u64 {
        return Err(ChunkError::Length {
            declared,
            actual: bytes.len(),
        });
    }
    let cgroup = bytes
        .get(HEADER_LEN..HEADER_LEN + cgroup_len)
        .ok_or(ChunkError::Length {
            declared,
            actual: bytes.len(),
        })?;
    let data = bytes.get(HEADER_LEN + cgroup_len..).unwrap_or(&[]);
    let comm = header.get(80..96).unwrap_or(&[]);
    let comm_len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    let command = std::str::from_utf8(comm.get(..comm_len).unwrap_or(&[]))
        .map_err(|_| ChunkError::Text { field: "command" })?;
    let cgroup = std::str::from_utf8(cgroup).map_err(|_| ChunkError::Text { field: "cgroup" })?;
    Ok(TlsChunk {
        ts_ns: u64::from_le_bytes(r.array(8)),
        pid: u32::from_le_bytes(r.array(16)),
        tid: u32::from_le_bytes(r.array(20)),
        conn_id: u64::from_le_bytes(r.array(24)),
        direction,
        kind,
        local: r.addr(44, family),
        remote: r.addr(62, family),
        lost: u32::from_le_bytes(r.array(40)),
        cgroup_id: u64::from_le_bytes(r.array(32)),
        command,
        cgroup,
        data,
    })
}

/// Fixed-offset reads from the header, whose length the type guarantees.
struct Reader<'h>(&'h [u8; HEADER_LEN]);

impl Reader<'_> {
    fn array<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = self.0.get(at..at + N) {
            out.copy_from_slice(src);
        }
        out
    }

    fn addr(&self, at: usize, family: u8) -> SocketAddr {
        let v6 = Ipv6Addr::from(self.array::<16>(at));
        let port = u16::from_le_bytes(self.array(at + 16));
        let ip = match (family, v6.to_ipv4_mapped()) {
            (4, Some(v4)) => IpAddr::V4(v4),
            (4, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            _ => IpAddr::V6(v6),
        };
        SocketAddr::new(ip, port)
    }
}

fn ip_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(data: &'a [u8], command: &'a str, cgroup: &'a str) -> TlsChunk<'a> {
        TlsChunk {
            ts_ns: 1_700_000_000_123_456_789,
            pid: 4242,
            tid: 4243,
            conn_id: 0x5555_0000_1234,
            direction: ChunkDirection::Received,
            kind: ChunkKind::Data,
            local: "10.0.0.2:443".parse().unwrap(),
            remote: "10.0.0.1:51000".parse().unwrap(),
            lost: 7,
            cgroup_id: 99,
            command,
            cgroup,
            data,
        }
    }

    #[test]
    fn round_trips() {
        let chunk = sample(
            b"GET / HTTP/1.1\r\n\r\n",
            "nginx",
            "/system.slice/nginx.service",
        );
        let mut out = Vec::new();
        chunk.encode_into(&mut out);
        assert_eq!(out.len(), chunk.encoded_len());
        assert_eq!(decode(&out).unwrap(), chunk);

        let mut v6 = sample(b"", "curl", "");
        v6.local = "[2001:db8::1]:5000".parse().unwrap();
        v6.remote = "[2001:db8::2]:443".parse().unwrap();
        v6.kind = ChunkKind::Close;
        v6.direction = ChunkDirection::Sent;
        out.clear();
        v6.encode_into(&mut out);
        assert_eq!(out.len(), HEADER_LEN);
        assert_eq!(decode(&out).unwrap(), v6);
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let command = "ééééééééé"; // 18 bytes
        let chunk = sample(b"x", command, "");
        let mut out = Vec::new();
        chunk.encode_into(&mut out);
        let back = decode(&out).unwrap();
        assert_eq!(back.command, "éééééééé");
        assert_eq!(back.data, b"x");

        let long = "/a".repeat(3000);
        let chunk = sample(b"y", "c", &long);
        out.clear();
        chunk.encode_into(&mut out);
        let back = decode(&out).unwrap();
        assert_eq!(back.cgroup.len(), MAX_CGROUP_LEN);
        assert_eq!(back.data, b"y");
    }

    #[test]
    fn bad_bytes_are_refused_with_a_reason() {
        let chunk = sample(b"hello", "curl", "/x");
        let mut good = Vec::new();
        chunk.encode_into(&mut good);
        assert_eq!(decode(&good[..50]), Err(ChunkError::Short { len: 50 }));
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(decode(&bad), Err(ChunkError::Magic { .. })));
        let mut bad = good.clone();
        bad[4] = 9;
        assert_eq!(decode(&bad), Err(ChunkError::Version { found: 9 }));
        for (at, field) in [(5, "direction"), (6, "kind"), (7, "family")] {
            let mut bad = good.clone();
            bad[at] = 200;
            assert_eq!(decode(&bad), Err(ChunkError::Field { field, value: 200 }));
        }
        assert!(matches!(
            decode(&good[..good.len() - 1]),
            Err(ChunkError::Length { .. })
        ));
        let mut longer = good.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(ChunkError::Length { .. })));
        let mut bad = good.clone();
        bad[80] = 0xff;
        assert_eq!(decode(&bad), Err(ChunkError::Text { field: "command" }));
        let mut bad = good.clone();
        bad[HEADER_LEN] = 0xff;
        assert_eq!(decode(&bad), Err(ChunkError::Text { field: "cgroup" }));
        let err = decode(&good[..3]).unwrap_err().to_string();
        assert!(err.contains("shorter than its 104-byte header"), "{err}");
    }

    #[test]
    fn junk_never_panics() {
        for len in 0..300 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            let _ = decode(&junk);
        }
    }
}
