//! The TLS plaintext ABI: the Rust mirror of `include/tapline_tls.h`.
//!
//! As for the packet ABI ([`crate::capture`]), the constants are read from the header itself at
//! compile time ([`tls_define`]) and the structs are mirrored `#[repr(C)]` with compile-time
//! size and offset assertions. Records read from the ring go through [`TlsHdr::parse`], which
//! checks every length before it trusts one.

/// The ABI header's text, parsed at compile time.
const HEADER: &str = include_str!("../include/tapline_tls.h");

/// The value of `#define NAME VALUE` in `tapline_tls.h`, as a compile-time constant.
///
/// Only plain decimal and `0x` hexadecimal values are understood; a missing name or another
/// kind of value fails the build (it panics in a const context).
pub const fn tls_define(name: &str) -> u64 {
    let text = HEADER.as_bytes();
    let name = name.as_bytes();
    let directive = b"#define ";
    let mut line = 0;
    while line < text.len() {
        if starts_with(text, line, directive) && starts_with(text, line + directive.len(), name) {
            let mut at = line + directive.len() + name.len();
            if at < text.len() && (text[at] == b' ' || text[at] == b'\t') {
                while at < text.len() && (text[at] == b' ' || text[at] == b'\t') {
                    at += 1;
                }
                return parse_number(text, at);
            }
        }
        while line < text.len() && text[line] != b'\n' {
            line += 1;
        }
        line += 1;
    }
    panic!("a name is not #defined in tapline_tls.h")
}

/// Whether `text[at..]` starts with `prefix`.
const fn starts_with(text: &[u8], at: usize, prefix: &[u8]) -> bool {
    if at + prefix.len() > text.len() {
        return false;
    }
    let mut i = 0;
    while i < prefix.len() {
        if text[at + i] != prefix[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Parses the decimal or `0x` hexadecimal number at `text[at..]`, up to the end of the token.
const fn parse_number(text: &[u8], mut at: usize) -> u64 {
    let mut radix = 10;
    if starts_with(text, at, b"0x") {
        radix = 16;
        at += 2;
    }
    let mut value: u64 = 0;
    let mut digits = 0;
    while at < text.len() {
        let c = text[at];
        let digit = match c {
            b'0'..=b'9' => (c - b'0') as u64,
            b'a'..=b'f' if radix == 16 => (c - b'a' + 10) as u64,
            b'A'..=b'F' if radix == 16 => (c - b'A' + 10) as u64,
            b' ' | b'\t' | b'\n' | b'\r' => break,
            _ => panic!("a #define in tapline_tls.h is not a plain number"),
        };
        value = value * radix + digit;
        digits += 1;
        at += 1;
    }
    if digits == 0 {
        panic!("a #define in tapline_tls.h has no value");
    }
    value
}

/// Narrows a header constant to `u32`, failing the build when it does not fit.
const fn u32_of(value: u64) -> u32 {
    if value > u32::MAX as u64 {
        panic!("a tapline_tls.h constant does not fit in u32");
    }
    value as u32
}

/// Narrows a header constant to `u8`, failing the build when it does not fit.
const fn u8_of(value: u64) -> u8 {
    if value > u8::MAX as u64 {
        panic!("a tapline_tls.h constant does not fit in u8");
    }
    value as u8
}

/// Magic at the start of every TLS record.
pub const MAGIC: u32 = u32_of(tls_define("TL_TLS_MAGIC"));
/// Layout version of the records and maps.
pub const VERSION: u16 = u32_of(tls_define("TL_TLS_VERSION")) as u16;
/// [`TlsHdr::kind`] of plaintext.
pub const KIND_DATA: u8 = u8_of(tls_define("TL_TLS_KIND_DATA"));
/// [`TlsHdr::kind`] of a session's end.
pub const KIND_CLOSE: u8 = u8_of(tls_define("TL_TLS_KIND_CLOSE"));
/// [`TlsHdr::kind`] of an `execve()`.
pub const KIND_EXEC: u8 = u8_of(tls_define("TL_TLS_KIND_EXEC"));
/// [`TlsHdr::direction`] of plaintext the process sent.
pub const DIR_SENT: u8 = u8_of(tls_define("TL_TLS_DIR_SENT"));
/// [`TlsHdr::direction`] of plaintext the process received.
pub const DIR_RECEIVED: u8 = u8_of(tls_define("TL_TLS_DIR_RECEIVED"));
/// [`TlsHdr::library`]: OpenSSL, BoringSSL or a library with their API.
pub const LIB_OPENSSL: u8 = u8_of(tls_define("TL_TLS_LIB_OPENSSL"));
/// [`TlsHdr::library`]: GnuTLS.
pub const LIB_GNUTLS: u8 = u8_of(tls_define("TL_TLS_LIB_GNUTLS"));
/// [`TlsHdr::role`]: the side is not known.
pub const ROLE_UNKNOWN: u8 = u8_of(tls_define("TL_TLS_ROLE_UNKNOWN"));
/// [`TlsHdr::role`]: the process connected.
pub const ROLE_CLIENT: u8 = u8_of(tls_define("TL_TLS_ROLE_CLIENT"));
/// [`TlsHdr::role`]: the process accepted.
pub const ROLE_SERVER: u8 = u8_of(tls_define("TL_TLS_ROLE_SERVER"));
/// [`TlsTuple::family`] of IPv4.
pub const AF_INET: u16 = u32_of(tls_define("TL_TLS_AF_INET")) as u16;
/// [`TlsTuple::family`] of IPv6.
pub const AF_INET6: u16 = u32_of(tls_define("TL_TLS_AF_INET6")) as u16;
/// Largest chunk of plaintext in one record.
pub const CHUNK: u32 = u32_of(tls_define("TL_TLS_CHUNK"));
/// Most chunks copied from one call.
pub const MAX_CHUNKS: u32 = u32_of(tls_define("TL_TLS_MAX_CHUNKS"));
/// Largest file name in an EXEC record.
pub const EXEC_NAME: u32 = u32_of(tls_define("TL_TLS_EXEC_NAME"));
/// Shift of the direction in an entry probe's attach cookie.
pub const COOKIE_DIR_SHIFT: u32 = u32_of(tls_define("TL_TLS_COOKIE_DIR_SHIFT"));
/// Attach cookie bit: the call returns its length through argument 4.
pub const COOKIE_EX: u64 = tls_define("TL_TLS_COOKIE_EX");
/// Filter bit: capture the processes in the pid map.
pub const FILTER_PIDS: u32 = u32_of(tls_define("TL_TLS_FILTER_PIDS"));
/// Filter bit: capture the processes running an executable in the exe map.
pub const FILTER_EXES: u32 = u32_of(tls_define("TL_TLS_FILTER_EXES"));
/// Entries of the pid map.
pub const MAX_PIDS: u32 = u32_of(tls_define("TL_TLS_MAX_PIDS"));
/// Entries of the exe map.
pub const MAX_EXES: u32 = u32_of(tls_define("TL_TLS_MAX_EXES"));
/// Size of [`TlsHdr`] in front of the record's bytes.
pub const HDR_SIZE: usize = tls_define("TL_TLS_HDR_SIZE") as usize;

/// The attach cookie of an entry probe on a data call of `library` moving bytes `direction`;
/// `ex` when the call returns its length through a pointer (`SSL_read_ex`, `SSL_write_ex`).
pub const fn entry_cookie(library: u8, direction: u8, ex: bool) -> u64 {
    let mut cookie = library as u64 | ((direction as u64) << COOKIE_DIR_SHIFT);
    if ex {
        cookie |= COOKIE_EX;
    }
    cookie
}

/// Slots of the per-CPU counter map.
pub mod counter {
    use super::{tls_define, u32_of};

    /// Data calls that returned plaintext.
    pub const CALLS: u32 = u32_of(tls_define("TL_TLS_CNT_CALLS"));
    /// DATA records pushed into the ring.
    pub const CHUNKS: u32 = u32_of(tls_define("TL_TLS_CNT_CHUNKS"));
    /// Plaintext bytes pushed into the ring.
    pub const BYTES: u32 = u32_of(tls_define("TL_TLS_CNT_BYTES"));
    /// Plaintext bytes not delivered, all causes.
    pub const LOST_BYTES: u32 = u32_of(tls_define("TL_TLS_CNT_LOST_BYTES"));
    /// Records lost because the ring was full.
    pub const RING_FULL: u32 = u32_of(tls_define("TL_TLS_CNT_RING_FULL"));
    /// Chunks lost because the user memory could not be read.
    pub const READ_FAULT: u32 = u32_of(tls_define("TL_TLS_CNT_READ_FAULT"));
    /// Bytes lost beyond the chunk limit of one call.
    pub const TOO_LONG: u32 = u32_of(tls_define("TL_TLS_CNT_TOO_LONG"));
    /// Calls whose session had no known 4-tuple.
    pub const NO_TUPLE: u32 = u32_of(tls_define("TL_TLS_CNT_NO_TUPLE"));
    /// Calls lost because every scratch buffer of the CPU was busy.
    pub const NESTED: u32 = u32_of(tls_define("TL_TLS_CNT_NESTED"));
    /// Returns without a saved entry (probes attached mid-call).
    pub const NO_ENTRY: u32 = u32_of(tls_define("TL_TLS_CNT_NO_ENTRY"));
    /// CLOSE records pushed.
    pub const CLOSES: u32 = u32_of(tls_define("TL_TLS_CNT_CLOSES"));
    /// EXEC records pushed.
    pub const EXECS: u32 = u32_of(tls_define("TL_TLS_CNT_EXECS"));
    /// CLOSE, EXEC and end-of-call records lost because the ring was full.
    pub const EVENTS_LOST: u32 = u32_of(tls_define("TL_TLS_CNT_EVENTS_LOST"));
    /// Entries of the counter map.
    pub const ENTRIES: u32 = u32_of(tls_define("TL_TLS_CNT_ENTRIES"));
}

/// Names of the maps, programs and globals of the TLS object, as in `src/tls.bpf.c`.
pub mod names {
    /// The ring buffer of records.
    pub const RING: &str = "tl_tls_ring";
    /// The per-CPU scratch buffers.
    pub const SCRATCH: &str = "tl_tls_scratch";
    /// The per-CPU counters.
    pub const COUNTERS: &str = "tl_tls_counters";
    /// The hash of captured process ids (`u32` → `u8`).
    pub const PIDS: &str = "tl_tls_pids";
    /// The hash of captured executables ([`super::TlsExe`] → `u8`).
    pub const EXES: &str = "tl_tls_exes";
    /// The LRU hash of sessions ([`super::TlsConnKey`] → [`super::TlsConn`]).
    pub const CONNS: &str = "tl_tls_conns";
    /// The global holding the filter bits (`u32`).
    pub const FILTER: &str = "tl_tls_filter";
    /// The global turning EXEC records on (`u32`, nonzero).
    pub const EXEC_EVENTS: &str = "tl_tls_exec_events";
    /// The entry uprobe of the data calls (its cookie from [`super::entry_cookie`]).
    pub const ENTER_PROGRAM: &str = "tl_tls_enter";
    /// The return uprobe of the data calls.
    pub const EXIT_PROGRAM: &str = "tl_tls_exit";
    /// The uprobe on the session's end (`SSL_free`, `gnutls_deinit`).
    pub const CLOSE_PROGRAM: &str = "tl_tls_close";
    /// The tracepoint program for the read/write family of system calls (`syscalls/sys_enter_*`).
    pub const SYS_ENTER_PROGRAM: &str = "tl_tls_sys_enter";
    /// The tracepoint program for `syscalls/sys_exit_accept` and `sys_exit_accept4`.
    pub const ACCEPT_EXIT_PROGRAM: &str = "tl_tls_accept_exit";
    /// The tracepoint program for `syscalls/sys_enter_connect`.
    pub const CONNECT_ENTER_PROGRAM: &str = "tl_tls_connect_enter";
    /// The tracepoint program for `syscalls/sys_exit_connect`.
    pub const CONNECT_EXIT_PROGRAM: &str = "tl_tls_connect_exit";
    /// The tracepoint program for `sched/sched_process_exec`.
    pub const EXEC_PROGRAM: &str = "tl_tls_exec";
    /// The system calls whose entry [`SYS_ENTER_PROGRAM`] watches (their first argument is
    /// the fd).
    pub const SYS_ENTER_TRACEPOINTS: [&str; 8] = [
        "sys_enter_write",
        "sys_enter_writev",
        "sys_enter_sendto",
        "sys_enter_sendmsg",
        "sys_enter_read",
        "sys_enter_readv",
        "sys_enter_recvfrom",
        "sys_enter_recvmsg",
    ];
}

/// A TCP connection's ends (`struct tl_tls_tuple`): IPv4 written IPv4-mapped, ports in host
/// order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TlsTuple {
    /// Local address (16 bytes, IPv4-mapped for IPv4).
    pub local_addr: [u8; 16],
    /// Remote address.
    pub remote_addr: [u8; 16],
    /// Local port.
    pub local_port: u16,
    /// Remote port.
    pub remote_port: u16,
    /// [`AF_INET`], [`AF_INET6`], 0 when unknown, or another socket family.
    pub family: u16,
    /// Zero.
    pub pad: u16,
}

/// The header in front of every record (`struct tl_tls_hdr`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsHdr {
    /// [`MAGIC`].
    pub magic: u32,
    /// [`VERSION`].
    pub version: u16,
    /// [`KIND_DATA`], [`KIND_CLOSE`] or [`KIND_EXEC`].
    pub kind: u8,
    /// [`DIR_SENT`] or [`DIR_RECEIVED`] (DATA), else 0.
    pub direction: u8,
    /// `bpf_ktime_get_ns()`: `CLOCK_MONOTONIC` nanoseconds.
    pub ts_ns: u64,
    /// Process id (thread group id).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// A hash of (pid, the library's session pointer).
    pub conn_id: u64,
    /// The cgroup id of the calling task.
    pub cgroup_id: u64,
    /// The connection's ends.
    pub tuple: TlsTuple,
    /// [`LIB_OPENSSL`] or [`LIB_GNUTLS`] (DATA, CLOSE), else 0.
    pub library: u8,
    /// [`ROLE_UNKNOWN`], [`ROLE_CLIENT`] or [`ROLE_SERVER`].
    pub role: u8,
    /// Zero.
    pub pad: u16,
    /// DATA: bytes of the call lost right before these.
    pub lost: u32,
    /// DATA: where these bytes start within the call.
    pub offset: u32,
    /// Bytes following the header.
    pub data_len: u32,
    /// DATA: plaintext bytes of the whole call.
    pub call_len: u32,
    /// Zero.
    pub pad2: u32,
    /// The calling task's command name, NUL-padded.
    pub comm: [u8; 16],
}

/// A key of the exe map (`struct tl_tls_exe`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TlsExe {
    /// Inode number.
    pub ino: u64,
    /// The kernel's `dev_t` of the file system: `major << 20 | minor`.
    pub dev: u32,
    /// Zero.
    pub pad: u32,
}

impl TlsExe {
    /// The key of a file with inode `ino` on the device `major:minor`.
    pub const fn new(ino: u64, major: u32, minor: u32) -> Self {
        TlsExe {
            ino,
            dev: (major << 20) | (minor & 0xf_ffff),
            pad: 0,
        }
    }
}

/// A key of the session map (`struct tl_tls_conn_key`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TlsConnKey {
    /// Process id.
    pub pid: u32,
    /// Zero.
    pub pad: u32,
    /// The library's session pointer.
    pub session: u64,
}

/// A value of the session map (`struct tl_tls_conn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsConn {
    /// The connection's ends.
    pub tuple: TlsTuple,
    /// The socket last seen under a call, -1 when none.
    pub fd: i32,
    /// The side.
    pub role: u8,
    /// The library.
    pub library: u8,
    /// Zero.
    pub pad: u16,
}

const _: () = {
    use std::mem::offset_of;
    assert!(size_of::<TlsTuple>() == 40);
    assert!(size_of::<TlsHdr>() == HDR_SIZE);
    assert!(offset_of!(TlsHdr, ts_ns) == 8);
    assert!(offset_of!(TlsHdr, conn_id) == 24);
    assert!(offset_of!(TlsHdr, tuple) == 40);
    assert!(offset_of!(TlsHdr, library) == 80);
    assert!(offset_of!(TlsHdr, lost) == 84);
    assert!(offset_of!(TlsHdr, data_len) == 92);
    assert!(offset_of!(TlsHdr, comm) == 104);
    assert!(size_of::<TlsExe>() == 16);
    assert!(size_of::<TlsConnKey>() == 16);
    assert!(size_of::<TlsConn>() == 48);
    assert!(counter::EVENTS_LOST < counter::ENTRIES);
};

/// Why a ring-buffer record was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsRecordError {
    /// Shorter than the header.
    Short(usize),
    /// The magic is wrong: not a TLS record.
    Magic(u32),
    /// A layout this build does not know.
    Version(u16),
    /// `data_len` claims more bytes than the record holds.
    Length {
        /// `data_len`.
        claimed: u32,
        /// Bytes after the header.
        held: usize,
    },
}

impl std::fmt::Display for TlsRecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsRecordError::Short(n) => {
                write!(
                    f,
                    "TLS record of {n} bytes is shorter than the {HDR_SIZE}-byte header"
                )
            }
            TlsRecordError::Magic(m) => {
                write!(f, "TLS record magic {m:#010x} is not {MAGIC:#010x}")
            }
            TlsRecordError::Version(v) => {
                write!(
                    f,
                    "TLS record version {v}, this build reads version {VERSION}"
                )
            }
            TlsRecordError::Length { claimed, held } => {
                write!(f, "TLS record claims {claimed} data bytes but holds {held}")
            }
        }
    }
}

impl std::error::Error for TlsRecordError {}

/// Reads `N` bytes at `at` of a slice known to be long enough.
fn array_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = bytes.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

impl TlsHdr {
    /// Reads the header at the start of `record` and returns it with the bytes it carries.
    ///
    /// # Errors
    /// When the record is shorter than the header, has a wrong magic or version, or claims
    /// more bytes than it holds.
    pub fn parse(record: &[u8]) -> Result<(TlsHdr, &[u8]), TlsRecordError> {
        let head = record
            .get(..HDR_SIZE)
            .ok_or(TlsRecordError::Short(record.len()))?;
        let u16_at = |at: usize| u16::from_ne_bytes(array_at(head, at));
        let u32_at = |at: usize| u32::from_ne_bytes(array_at(head, at));
        let u64_at = |at: usize| u64::from_ne_bytes(array_at(head, at));
        let hdr = TlsHdr {
            magic: u32_at(0),
            version: u16_at(4),
            kind: head[6],
            direction: head[7],
            ts_ns: u64_at(8),
            pid: u32_at(16),
            tid: u32_at(20),
            conn_id: u64_at(24),
            cgroup_id: u64_at(32),
            tuple: TlsTuple {
                local_addr: array_at(head, 40),
                remote_addr: array_at(head, 56),
                local_port: u16_at(72),
                remote_port: u16_at(74),
                family: u16_at(76),
                pad: u16_at(78),
            },
            library: head[80],
            role: head[81],
            pad: u16_at(82),
            lost: u32_at(84),
            offset: u32_at(88),
            data_len: u32_at(92),
            call_len: u32_at(96),
            pad2: u32_at(100),
            comm: array_at(head, 104),
        };
        if hdr.magic != MAGIC {
            return Err(TlsRecordError::Magic(hdr.magic));
        }
        if hdr.version != VERSION {
            return Err(TlsRecordError::Version(hdr.version));
        }
        let rest = &record[HDR_SIZE..];
        let data = usize::try_from(hdr.data_len)
            .ok()
            .and_then(|n| rest.get(..n))
            .ok_or(TlsRecordError::Length {
                claimed: hdr.data_len,
                held: rest.len(),
            })?;
        Ok((hdr, data))
    }

    /// The header as the bytes a program writes (for tests, tools and fuzzing).
    pub fn to_bytes(&self) -> [u8; HDR_SIZE] {
        let mut out = [0u8; HDR_SIZE];
        out[0..4].copy_from_slice(&self.magic.to_ne_bytes());
        out[4..6].copy_from_slice(&self.version.to_ne_bytes());
        out[6] = self.kind;
        out[7] = self.direction;
        out[8..16].copy_from_slice(&self.ts_ns.to_ne_bytes());
        out[16..20].copy_from_slice(&self.pid.to_ne_bytes());
        out[20..24].copy_from_slice(&self.tid.to_ne_bytes());
        out[24..32].copy_from_slice(&self.conn_id.to_ne_bytes());
        out[32..40].copy_from_slice(&self.cgroup_id.to_ne_bytes());
        out[40..56].copy_from_slice(&self.tuple.local_addr);
        out[56..72].copy_from_slice(&self.tuple.remote_addr);
        out[72..74].copy_from_slice(&self.tuple.local_port.to_ne_bytes());
        out[74..76].copy_from_slice(&self.tuple.remote_port.to_ne_bytes());
        out[76..78].copy_from_slice(&self.tuple.family.to_ne_bytes());
        out[78..80].copy_from_slice(&self.tuple.pad.to_ne_bytes());
        out[80] = self.library;
        out[81] = self.role;
        out[82..84].copy_from_slice(&self.pad.to_ne_bytes());
        out[84..88].copy_from_slice(&self.lost.to_ne_bytes());
        out[88..92].copy_from_slice(&self.offset.to_ne_bytes());
        out[92..96].copy_from_slice(&self.data_len.to_ne_bytes());
        out[96..100].copy_from_slice(&self.call_len.to_ne_bytes());
        out[100..104].copy_from_slice(&self.pad2.to_ne_bytes());
        out[104..120].copy_from_slice(&self.comm);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(data_len: u32) -> TlsHdr {
        TlsHdr {
            magic: MAGIC,
            version: VERSION,
            kind: KIND_DATA,
            direction: DIR_SENT,
            ts_ns: 42,
            pid: 7,
            tid: 8,
            conn_id: 9,
            cgroup_id: 10,
            tuple: TlsTuple {
                local_addr: [1; 16],
                remote_addr: [2; 16],
                local_port: 3,
                remote_port: 4,
                family: AF_INET6,
                pad: 0,
            },
            library: LIB_GNUTLS,
            role: ROLE_SERVER,
            pad: 0,
            lost: 5,
            offset: 6,
            data_len,
            call_len: 11,
            pad2: 0,
            comm: *b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
        }
    }

    #[test]
    fn constants_come_from_the_header() {
        assert_eq!(MAGIC.to_le_bytes(), *b"TLTS");
        assert_eq!(HDR_SIZE, 120);
        assert_eq!(CHUNK, 16384);
        assert_eq!((DIR_SENT, DIR_RECEIVED), (1, 2));
        assert_eq!((AF_INET, AF_INET6), (2, 10));
        assert_eq!(entry_cookie(LIB_OPENSSL, DIR_RECEIVED, true), 0x1_0201);
        assert_eq!(TlsExe::new(5, 8, 1).dev, (8 << 20) | 1);
    }

    #[test]
    fn a_record_round_trips() {
        let mut record = header(3).to_bytes().to_vec();
        record.extend_from_slice(b"abc\0\0\0\0\0");
        let (hdr, data) = TlsHdr::parse(&record).unwrap();
        assert_eq!(hdr, header(3));
        assert_eq!(data, b"abc");
    }

    #[test]
    fn bad_records_are_refused() {
        assert_eq!(TlsHdr::parse(&[0; 10]), Err(TlsRecordError::Short(10)));
        let mut bad = header(0);
        bad.magic = 1;
        assert_eq!(
            TlsHdr::parse(&bad.to_bytes()),
            Err(TlsRecordError::Magic(1))
        );
        let mut bad = header(0);
        bad.version = 99;
        assert_eq!(
            TlsHdr::parse(&bad.to_bytes()),
            Err(TlsRecordError::Version(99))
        );
        assert!(matches!(
            TlsHdr::parse(&header(1).to_bytes()),
            Err(TlsRecordError::Length { held: 0, .. })
        ));
    }
}
