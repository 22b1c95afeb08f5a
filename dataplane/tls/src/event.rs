//! What the TLS programs report, decoded: plaintext chunks and session ends ([`TlsEvent`]),
//! and process starts ([`Record::Exec`], handled inside the capture).
//!
//! [`decode`] is the one place ring-buffer bytes become typed values; it checks every length and
//! every enumerated value, so hostile or corrupt records are refused, never trusted (it is
//! fuzzed: `fuzz/fuzz_targets/record.rs`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tapline_bpf::tls::{self as abi, TlsHdr, TlsRecordError, TlsTuple};

use tapline_bpf::clock::WallClock;

/// Which way plaintext went, seen from the process that made the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsDirection {
    /// The process wrote it (`SSL_write`, `gnutls_record_send`).
    Sent,
    /// The process read it (`SSL_read`, `gnutls_record_recv`).
    Received,
}

/// The TLS library a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsLibrary {
    /// OpenSSL 1.1/3, or a library with its API (BoringSSL, LibreSSL, a static copy).
    OpenSsl,
    /// GnuTLS.
    GnuTls,
}

impl fmt::Display for TlsLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsLibrary::OpenSsl => "OpenSSL",
            TlsLibrary::GnuTls => "GnuTLS",
        })
    }
}

/// The process's side of the TCP connection, when the programs saw it made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsRole {
    /// Not seen: the connection was made before the capture started, or elsewhere.
    Unknown,
    /// The process connected.
    Client,
    /// The process accepted.
    Server,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsEventKind<'a> {
    /// Plaintext of one call, or a chunk of it (calls are cut into chunks of at most
    /// [`abi::CHUNK`] bytes).
    Data {
        /// Which way it went.
        direction: TlsDirection,
        /// The bytes (empty when the record only reports a loss at the end of a call).
        data: &'a [u8],
        /// Bytes of the call that could not be captured right before `data`.
        lost: u32,
        /// Where `data` starts within the call's plaintext.
        offset: u32,
        /// Plaintext bytes of the whole call.
        call_len: u32,
    },
    /// The library freed the session (`SSL_free`, `gnutls_deinit`): the stream ended.
    Close,
}

/// One plaintext chunk or session end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsEvent<'a> {
    /// Nanoseconds since the Unix epoch: for sent data when the call started, for received
    /// data when it returned, for a close when the session was freed.
    pub ts_ns: u64,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// A 64-bit id of the session: (process, the library's session pointer).
    pub conn_id: u64,
    /// The socket's local end, when the programs saw the socket.
    pub local: Option<SocketAddr>,
    /// The socket's remote end, when the programs saw the socket.
    pub remote: Option<SocketAddr>,
    /// The process's side of the connection.
    pub role: TlsRole,
    /// The calling thread's command name, NUL-padded.
    pub comm: [u8; 16],
    /// The calling task's cgroup id.
    pub cgroup_id: u64,
    /// The library.
    pub library: TlsLibrary,
    /// What happened.
    pub kind: TlsEventKind<'a>,
}

impl TlsEvent<'_> {
    /// The command name, up to its first NUL (lossy for non-UTF-8 names).
    pub fn command(&self) -> String {
        comm_text(&self.comm)
    }
}

/// A decoded ring record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// Plaintext or a session end, for the caller.
    Event(TlsEvent<'a>),
    /// A process called `execve()`: the capture looks at its libraries.
    Exec {
        /// Process id.
        pid: u32,
        /// The new command name.
        comm: [u8; 16],
        /// The file name given to `execve()`.
        filename: &'a [u8],
    },
}

/// Why a ring record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The header or a length is wrong.
    #[error(transparent)]
    Record(#[from] TlsRecordError),
    /// A field holds a value this build does not know.
    #[error("TLS record field {field} holds unknown value {value}")]
    Value {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
}

/// Decodes one ring record, converting its timestamp with `clock`.
///
/// # Errors
/// When the record breaks the ABI: see [`DecodeError`].
pub fn decode<'a>(record: &'a [u8], clock: &WallClock) -> Result<Record<'a>, DecodeError> {
    let (hdr, data) = TlsHdr::parse(record)?;
    let unknown = |field, value: u8| DecodeError::Value {
        field,
        value: u64::from(value),
    };
    if hdr.kind == abi::KIND_EXEC {
        return Ok(Record::Exec {
            pid: hdr.pid,
            comm: hdr.comm,
            filename: data,
        });
    }
    let library = match hdr.library {
        abi::LIB_OPENSSL => TlsLibrary::OpenSsl,
        abi::LIB_GNUTLS => TlsLibrary::GnuTls,
        other => return Err(unknown("library", other)),
    };
    let role = match hdr.role {
        abi::ROLE_CLIENT => TlsRole::Client,
        abi::ROLE_SERVER => TlsRole::Server,
        _ => TlsRole::Unknown,
    };
    let kind = match hdr.kind {
        abi::KIND_DATA => TlsEventKind::Data {
            direction: match hdr.direction {
                abi::DIR_SENT => TlsDirection::Sent,
                abi::DIR_RECEIVED => TlsDirection::Received,
                other => return Err(unknown("direction", other)),
            },
            data,
            lost: hdr.lost,
            offset: hdr.offset,
            call_len: hdr.call_len,
        },
        abi::KIND_CLOSE => TlsEventKind::Close,
        other => return Err(unknown("kind", other)),
    };
    let (local, remote) = endpoints(&hdr.tuple);
    Ok(Record::Event(TlsEvent {
        ts_ns: clock.wall(hdr.ts_ns),
        pid: hdr.pid,
        tid: hdr.tid,
        conn_id: hdr.conn_id,
        local,
        remote,
        role,
        comm: hdr.comm,
        cgroup_id: hdr.cgroup_id,
        library,
        kind,
    }))
}

/// The local and remote socket addresses of a tuple, when its family is IPv4 or IPv6.
/// IPv4-mapped IPv6 addresses come out as IPv4, as the packets carry them.
pub fn endpoints(tuple: &TlsTuple) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let ip = |bytes: &[u8; 16]| -> Option<IpAddr> {
        match tuple.family {
            abi::AF_INET => Some(IpAddr::V4(Ipv4Addr::new(
                bytes[12], bytes[13], bytes[14], bytes[15],
            ))),
            abi::AF_INET6 => Some(Ipv6Addr::from(*bytes).to_canonical()),
            _ => None,
        }
    };
    (
        ip(&tuple.local_addr).map(|a| SocketAddr::new(a, tuple.local_port)),
        ip(&tuple.remote_addr).map(|a| SocketAddr::new(a, tuple.remote_port)),
    )
}

/// A NUL-padded command name as text.
pub fn comm_text(comm: &[u8; 16]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(kind: u8, data_len: u32) -> TlsHdr {
        let mut local_addr = [0u8; 16];
        local_addr[10..].copy_from_slice(&[0xff, 0xff, 127, 0, 0, 1]);
        let mut remote_addr = local_addr;
        remote_addr[15] = 2;
        TlsHdr {
            magic: abi::MAGIC,
            version: abi::VERSION,
            kind,
            direction: abi::DIR_RECEIVED,
            ts_ns: 1_000,
            pid: 10,
            tid: 11,
            conn_id: 12,
            cgroup_id: 13,
            tuple: TlsTuple {
                local_addr,
                remote_addr,
                local_port: 443,
                remote_port: 50_000,
                family: abi::AF_INET,
                pad: 0,
            },
            library: abi::LIB_OPENSSL,
            role: abi::ROLE_SERVER,
            lost: 7,
            offset: 16_384,
            data_len,
            call_len: 20_000,
            comm: *b"server\0\0\0\0\0\0\0\0\0\0",
            ..TlsHdr::default()
        }
    }

    fn record(hdr: &TlsHdr, data: &[u8]) -> Vec<u8> {
        let mut bytes = hdr.to_bytes().to_vec();
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn data_records_decode_with_their_tuple() {
        let bytes = record(&hdr(abi::KIND_DATA, 3), b"GET");
        let clock = WallClock::with_offset(5);
        let Record::Event(event) = decode(&bytes, &clock).unwrap() else {
            panic!("not an event");
        };
        assert_eq!(event.ts_ns, 1_005);
        assert_eq!(event.local, Some("127.0.0.1:443".parse().unwrap()));
        assert_eq!(event.remote, Some("127.0.0.2:50000".parse().unwrap()));
        assert_eq!(event.role, TlsRole::Server);
        assert_eq!(event.command(), "server");
        assert_eq!(
            event.kind,
            TlsEventKind::Data {
                direction: TlsDirection::Received,
                data: b"GET",
                lost: 7,
                offset: 16_384,
                call_len: 20_000,
            }
        );
    }

    #[test]
    fn ipv6_and_unknown_families() {
        let mut h = hdr(abi::KIND_CLOSE, 0);
        h.tuple.family = abi::AF_INET6;
        h.tuple.local_addr = Ipv6Addr::LOCALHOST.octets();
        let bytes = record(&h, b"");
        let Record::Event(event) = decode(&bytes, &WallClock::with_offset(0)).unwrap() else {
            panic!("not an event");
        };
        assert_eq!(event.local, Some("[::1]:443".parse().unwrap()));
        // IPv4-mapped remote comes out as IPv4.
        assert_eq!(event.remote, Some("127.0.0.2:50000".parse().unwrap()));
        assert_eq!(event.kind, TlsEventKind::Close);
        h.tuple.family = 0;
        assert_eq!(endpoints(&h.tuple), (None, None));
    }

    #[test]
    fn exec_records_carry_the_file_name() {
        let mut h = hdr(abi::KIND_EXEC, 8);
        h.library = 0;
        let bytes = record(&h, b"/bin/cat");
        assert_eq!(
            decode(&bytes, &WallClock::with_offset(0)).unwrap(),
            Record::Exec {
                pid: 10,
                comm: h.comm,
                filename: b"/bin/cat"
            }
        );
    }

    #[test]
    fn unknown_values_are_refused() {
        let clock = WallClock::with_offset(0);
        let mut h = hdr(abi::KIND_DATA, 0);
        h.direction = 9;
        assert!(matches!(
            decode(&record(&h, b""), &clock),
            Err(DecodeError::Value {
                field: "direction",
                ..
            })
        ));
        let mut h = hdr(77, 0);
        assert!(decode(&record(&h, b""), &clock).is_err());
        h.kind = abi::KIND_DATA;
        h.library = 0;
        assert!(decode(&record(&h, b""), &clock).is_err());
        assert!(decode(b"short", &clock).is_err());
    }
}
