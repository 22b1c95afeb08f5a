//! The live-capture ABI: the Rust mirror of `include/tapline_abi.h`.
//!
//! The constants are read from the header itself at compile time ([`abi_define`]), so they are
//! written once, in C. The structs are mirrored `#[repr(C)]`; compile-time assertions compare
//! their sizes with the header's and their offsets with the C `_Static_assert`s, so the build
//! fails when the two drift apart. Records read from the ring buffer go through
//! [`CaptureHdr::parse`], which checks every length before it trusts one.

/// The ABI header's text, parsed at compile time.
const HEADER: &str = include_str!("../include/tapline_abi.h");

/// The value of `#define NAME VALUE` in `tapline_abi.h`, as a compile-time constant.
///
/// Only plain decimal and `0x` hexadecimal values are understood; a missing name or another
/// kind of value fails the build (it panics in a const context).
pub const fn abi_define(name: &str) -> u64 {
    let text = HEADER.as_bytes();
    let name = name.as_bytes();
    let mut line = 0;
    while line < text.len() {
        let directive = b"#define ";
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
    panic!("a name is not #defined in tapline_abi.h")
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
            _ => panic!("a #define in tapline_abi.h is not a plain number"),
        };
        value = value * radix + digit;
        digits += 1;
        at += 1;
    }
    if digits == 0 {
        panic!("a #define in tapline_abi.h has no value");
    }
    value
}

/// Narrows a header constant to `u32`, failing the build when it does not fit.
const fn u32_of(value: u64) -> u32 {
    if value > u32::MAX as u64 {
        panic!("a tapline_abi.h constant does not fit in u32");
    }
    value as u32
}

/// Magic at the start of every capture record.
pub const MAGIC: u32 = u32_of(abi_define("TL_CAPTURE_MAGIC"));
/// Layout version of the records and maps.
pub const VERSION: u16 = u32_of(abi_define("TL_CAPTURE_VERSION")) as u16;
/// [`CaptureHdr::direction`] of a packet arriving.
pub const DIR_INGRESS: u8 = u32_of(abi_define("TL_DIR_INGRESS")) as u8;
/// [`CaptureHdr::direction`] of a packet leaving.
pub const DIR_EGRESS: u8 = u32_of(abi_define("TL_DIR_EGRESS")) as u8;
/// [`CaptureHdr::flags`] bit: the copy was cut at the snap length.
pub const HDR_TRUNCATED: u8 = u32_of(abi_define("TL_HDR_TRUNCATED")) as u8;
/// Largest snap length.
pub const MAX_SNAPLEN: u32 = u32_of(abi_define("TL_MAX_SNAPLEN"));
/// Size of [`CaptureHdr`] in front of the packet bytes.
pub const HDR_SIZE: usize = abi_define("TL_CAPTURE_HDR_SIZE") as usize;
/// [`CaptureFilter::flags`] bit: the port filter is active.
pub const FILTER_PORTS: u32 = u32_of(abi_define("TL_FILTER_PORTS"));
/// [`CaptureFilter::flags`] bit: the host (CIDR) filter is active.
pub const FILTER_HOSTS: u32 = u32_of(abi_define("TL_FILTER_HOSTS"));
/// Entries of the port map.
pub const MAX_PORTS: u32 = u32_of(abi_define("TL_MAX_PORTS"));
/// Entries of each CIDR trie.
pub const MAX_CIDRS: u32 = u32_of(abi_define("TL_MAX_CIDRS"));

/// Counter slots within one direction's block of the counter map.
pub mod counter {
    use super::{abi_define, u32_of};

    /// Packets the program ran on.
    pub const SEEN: u32 = u32_of(abi_define("TL_CNT_SEEN"));
    /// Packets the filters selected.
    pub const MATCHED: u32 = u32_of(abi_define("TL_CNT_MATCHED"));
    /// Records pushed into the ring.
    pub const CAPTURED: u32 = u32_of(abi_define("TL_CNT_CAPTURED"));
    /// Records lost because the ring was full.
    pub const RING_FULL: u32 = u32_of(abi_define("TL_CNT_RING_FULL"));
    /// Records lost because the packet's bytes could not be read.
    pub const COPY_FAILED: u32 = u32_of(abi_define("TL_CNT_COPY_FAILED"));
    /// Records cut at the snap length.
    pub const TRUNCATED: u32 = u32_of(abi_define("TL_CNT_TRUNCATED"));
    /// Slots per direction (ingress block first, then egress).
    pub const SLOTS: u32 = u32_of(abi_define("TL_CNT_SLOTS"));
    /// Entries of the counter map.
    pub const ENTRIES: u32 = u32_of(abi_define("TL_CNT_ENTRIES"));

    /// The map index of `slot` for packets going `direction` (`DIR_*`).
    pub const fn index(direction: u8, slot: u32) -> u32 {
        if direction == super::DIR_EGRESS {
            SLOTS + slot
        } else {
            slot
        }
    }
}

/// Names of the maps, programs and globals of the capture object, as in the C sources.
pub mod names {
    /// The ring buffer of records.
    pub const RING: &str = "tl_cap_ring";
    /// The scratch buffers (two per possible CPU).
    pub const SCRATCH: &str = "tl_cap_scratch";
    /// The array holding the one [`super::CaptureFilter`].
    pub const FILTER: &str = "tl_cap_filter";
    /// The hash of ports (`u16`, host order).
    pub const PORTS: &str = "tl_cap_ports";
    /// The LPM trie of IPv4 CIDRs.
    pub const V4: &str = "tl_cap_v4";
    /// The LPM trie of IPv6 CIDRs.
    pub const V6: &str = "tl_cap_v6";
    /// The per-CPU counters.
    pub const COUNTERS: &str = "tl_cap_counters";
    /// The global holding the snap length (`u32`).
    pub const SNAPLEN: &str = "tl_snaplen";
    /// The XDP ingress program.
    pub const XDP_PROGRAM: &str = "tl_xdp_capture";
    /// The TC egress program.
    pub const TC_EGRESS_PROGRAM: &str = "tl_tc_egress";
    /// The TC ingress program (for interfaces where XDP cannot attach).
    pub const TC_INGRESS_PROGRAM: &str = "tl_tc_ingress";
    /// The prefix shared by the capture programs' names (and no other tapline program's):
    /// a program on an interface whose name starts so was attached by a tapline capture.
    pub const PROGRAM_PREFIXES: [&str; 2] = ["tl_xdp_capture", "tl_tc_"];
}

/// The header in front of every captured packet (`struct tl_capture_hdr`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureHdr {
    /// [`MAGIC`].
    pub magic: u32,
    /// [`VERSION`].
    pub version: u16,
    /// [`DIR_INGRESS`] or [`DIR_EGRESS`].
    pub direction: u8,
    /// [`HDR_TRUNCATED`] or 0.
    pub flags: u8,
    /// `bpf_ktime_get_ns()`: `CLOCK_MONOTONIC` nanoseconds.
    pub ts_ns: u64,
    /// Interface index.
    pub ifindex: u32,
    /// Length of the whole packet.
    pub orig_len: u32,
    /// Bytes following the header.
    pub cap_len: u32,
    /// Zero.
    pub pad: u32,
}

/// The value of the filter array (`struct tl_capture_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureFilter {
    /// [`FILTER_PORTS`] | [`FILTER_HOSTS`].
    pub flags: u32,
    /// Zero.
    pub pad: u32,
}

const _: () = {
    assert!(size_of::<CaptureHdr>() == HDR_SIZE);
    assert!(std::mem::offset_of!(CaptureHdr, version) == 4);
    assert!(std::mem::offset_of!(CaptureHdr, direction) == 6);
    assert!(std::mem::offset_of!(CaptureHdr, flags) == 7);
    assert!(std::mem::offset_of!(CaptureHdr, ts_ns) == 8);
    assert!(std::mem::offset_of!(CaptureHdr, ifindex) == 16);
    assert!(std::mem::offset_of!(CaptureHdr, orig_len) == 20);
    assert!(std::mem::offset_of!(CaptureHdr, cap_len) == 24);
    assert!(size_of::<CaptureFilter>() == 8);
    assert!(counter::ENTRIES == 2 * counter::SLOTS);
    assert!(counter::TRUNCATED < counter::SLOTS);
};

/// Why a ring-buffer record was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// Shorter than the header.
    Short(usize),
    /// The magic is wrong: not a capture record.
    Magic(u32),
    /// A layout this build does not know.
    Version(u16),
    /// `cap_len` claims more bytes than the record holds.
    Length {
        /// `cap_len`.
        claimed: u32,
        /// Bytes after the header.
        held: usize,
    },
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Short(n) => {
                write!(
                    f,
                    "record of {n} bytes is shorter than the {HDR_SIZE}-byte header"
                )
            }
            RecordError::Magic(m) => write!(f, "record magic {m:#010x} is not {MAGIC:#010x}"),
            RecordError::Version(v) => {
                write!(f, "record version {v}, this build reads version {VERSION}")
            }
            RecordError::Length { claimed, held } => {
                write!(f, "record claims {claimed} packet bytes but holds {held}")
            }
        }
    }
}

impl std::error::Error for RecordError {}

impl CaptureHdr {
    /// Reads the header at the start of `record` and returns it with the packet bytes.
    ///
    /// # Errors
    /// When the record is shorter than the header, has a wrong magic or version, or claims
    /// more bytes than it holds.
    pub fn parse(record: &[u8]) -> Result<(CaptureHdr, &[u8]), RecordError> {
        let head = record
            .get(..HDR_SIZE)
            .ok_or(RecordError::Short(record.len()))?;
        let u32_at = |at: usize| {
            let mut bytes = [0u8; 4];
            bytes.copy_from_slice(&head[at..at + 4]);
            u32::from_ne_bytes(bytes)
        };
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&head[8..16]);
        let hdr = CaptureHdr {
            magic: u32_at(0),
            version: u16::from_ne_bytes([head[4], head[5]]),
            direction: head[6],
            flags: head[7],
            ts_ns: u64::from_ne_bytes(ts),
            ifindex: u32_at(16),
            orig_len: u32_at(20),
            cap_len: u32_at(24),
            pad: u32_at(28),
        };
        if hdr.magic != MAGIC {
            return Err(RecordError::Magic(hdr.magic));
        }
        if hdr.version != VERSION {
            return Err(RecordError::Version(hdr.version));
        }
        let rest = &record[HDR_SIZE..];
        let data = usize::try_from(hdr.cap_len)
            .ok()
            .and_then(|n| rest.get(..n))
            .ok_or(RecordError::Length {
                claimed: hdr.cap_len,
                held: rest.len(),
            })?;
        Ok((hdr, data))
    }

    /// The header as the bytes a program writes (for tests and tools).
    pub fn to_bytes(&self) -> [u8; HDR_SIZE] {
        let mut out = [0u8; HDR_SIZE];
        out[0..4].copy_from_slice(&self.magic.to_ne_bytes());
        out[4..6].copy_from_slice(&self.version.to_ne_bytes());
        out[6] = self.direction;
        out[7] = self.flags;
        out[8..16].copy_from_slice(&self.ts_ns.to_ne_bytes());
        out[16..20].copy_from_slice(&self.ifindex.to_ne_bytes());
        out[20..24].copy_from_slice(&self.orig_len.to_ne_bytes());
        out[24..28].copy_from_slice(&self.cap_len.to_ne_bytes());
        out[28..32].copy_from_slice(&self.pad.to_ne_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(cap_len: u32) -> CaptureHdr {
        CaptureHdr {
            magic: MAGIC,
            version: VERSION,
            direction: DIR_EGRESS,
            flags: 0,
            ts_ns: 123_456_789,
            ifindex: 7,
            orig_len: 60,
            cap_len,
            pad: 0,
        }
    }

    #[test]
    fn constants_come_from_the_header() {
        assert_eq!(MAGIC.to_le_bytes(), *b"TLCP");
        assert_eq!(HDR_SIZE, 32);
        assert_eq!(MAX_SNAPLEN, 65536);
        assert_eq!((DIR_INGRESS, DIR_EGRESS), (1, 2));
        assert_eq!(counter::index(DIR_EGRESS, counter::RING_FULL), 8 + 3);
        assert_eq!(counter::index(DIR_INGRESS, counter::RING_FULL), 3);
        assert_eq!(abi_define("TL_PARSE_BYTES"), 128);
    }

    #[test]
    fn a_record_round_trips() {
        let mut record = header(4).to_bytes().to_vec();
        record.extend_from_slice(b"abcd");
        let (hdr, data) = CaptureHdr::parse(&record).unwrap();
        assert_eq!(hdr, header(4));
        assert_eq!(data, b"abcd");
        // Ring records are padded to 8 bytes: trailing bytes are ignored.
        record.extend_from_slice(&[0; 4]);
        assert_eq!(CaptureHdr::parse(&record).unwrap().1, b"abcd");
    }

    #[test]
    fn bad_records_are_refused() {
        assert_eq!(CaptureHdr::parse(&[0; 10]), Err(RecordError::Short(10)));
        let mut bad = header(0);
        bad.magic = 1;
        assert_eq!(
            CaptureHdr::parse(&bad.to_bytes()),
            Err(RecordError::Magic(1))
        );
        let mut bad = header(0);
        bad.version = 99;
        assert_eq!(
            CaptureHdr::parse(&bad.to_bytes()),
            Err(RecordError::Version(99))
        );
        let record = header(u32::MAX).to_bytes();
        assert!(matches!(
            CaptureHdr::parse(&record),
            Err(RecordError::Length { held: 0, .. })
        ));
    }
}
