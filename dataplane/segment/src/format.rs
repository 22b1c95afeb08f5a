//! The on-disk layout, version 1: the 64-byte file header and the 16-byte frame header.
//!
//! Pure encoding and decoding over byte slices, no I/O; see `FORMAT.md` next to `Cargo.toml`.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::SegmentError;

/// The eight bytes every segment file starts with.
pub const MAGIC: [u8; 8] = *b"TAPLSEG\0";
/// The format version this build writes and the only one it reads.
pub const FORMAT_VERSION: u16 = 1;
/// Length of the file header; the first frame starts here.
pub const HEADER_LEN: u64 = 64;
/// Length of a frame header (`len u32 | crc32c u32 | 8 reserved bytes`).
pub const FRAME_HEADER_LEN: u64 = 16;
/// Every frame header and payload starts at a multiple of this in the file (and the mapping).
pub const FRAME_ALIGN: u64 = 16;
/// The capacity of a segment unless the caller picks another: 64 MiB.
pub const DEFAULT_CAPACITY: u64 = 64 << 20;
/// The smallest capacity accepted: a header and one frame of up to 16 bytes.
pub const MIN_CAPACITY: u64 = HEADER_LEN + FRAME_HEADER_LEN + FRAME_ALIGN;

/// What the frames of a segment hold; part of the header and of the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum SegmentKind {
    /// Captured packets.
    Packets = 1,
    /// Parsed request/response pairs.
    RRPairs = 2,
    /// TLS plaintext chunks from uprobes.
    TlsChunks = 3,
}

impl SegmentKind {
    /// Every kind, in header-value order.
    pub const ALL: [SegmentKind; 3] = [Self::Packets, Self::RRPairs, Self::TlsChunks];

    /// The value stored in the header.
    pub fn to_u16(self) -> u16 {
        self as u16
    }

    /// The kind for a header value, if known.
    pub fn from_u16(value: u16) -> Option<Self> {
        match value {
            1 => Some(Self::Packets),
            2 => Some(Self::RRPairs),
            3 => Some(Self::TlsChunks),
            _ => None,
        }
    }

    /// The lower-case name used in file names: `packets`, `rrpairs`, `tlschunks`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Packets => "packets",
            Self::RRPairs => "rrpairs",
            Self::TlsChunks => "tlschunks",
        }
    }
}

impl fmt::Display for SegmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SegmentKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!("unknown segment kind {s:?}, expected packets, rrpairs or tlschunks")
            })
    }
}

/// The decoded file header of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// What the frames hold.
    pub kind: SegmentKind,
    /// The position of this segment in its directory's sequence.
    pub sequence: u64,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
    /// The fixed size the writer allocated; a sealed file is shorter.
    pub capacity: u64,
}

impl SegmentHeader {
    /// Encodes the header, with its checksum, into its 64 bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&self.kind.to_u16().to_le_bytes());
        b[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.sequence.to_le_bytes());
        b[24..32].copy_from_slice(&self.created_ns.to_le_bytes());
        b[32..40].copy_from_slice(&self.capacity.to_le_bytes());
        let crc = crc32c::crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks the header at the start of `bytes`; `path` is named in errors.
    ///
    /// # Errors
    ///
    /// [`SegmentError::NotSegment`] or [`SegmentError::TooShort`] when the magic is missing,
    /// [`SegmentError::UnsupportedVersion`], [`SegmentError::HeaderCrc`],
    /// [`SegmentError::BadHeader`] and [`SegmentError::UnknownKind`] for a damaged or foreign header.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Self, SegmentError> {
        let too_short = || SegmentError::TooShort {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
            expected: HEADER_LEN,
        };
        let magic: [u8; 8] = match bytes.get(..8) {
            Some(m) => copy_array(m),
            None => {
                // A short file that is not a prefix of the magic is simply something else.
                return if MAGIC.starts_with(bytes) {
                    Err(too_short())
                } else {
                    let mut found = [0u8; 8];
                    found[..bytes.len()].copy_from_slice(bytes);
                    Err(SegmentError::NotSegment {
                        path: path.to_path_buf(),
                        found,
                    })
                };
            }
        };
        if magic != MAGIC {
            return Err(SegmentError::NotSegment {
                path: path.to_path_buf(),
                found: magic,
            });
        }
        if let Some(v) = bytes.get(8..10) {
            let version = u16::from_le_bytes(copy_array(v));
            if version != FORMAT_VERSION {
                return Err(SegmentError::UnsupportedVersion {
                    path: path.to_path_buf(),
                    found: version,
                });
            }
        }
        let Some(h) = bytes.get(..HEADER_LEN as usize) else {
            return Err(too_short());
        };
        let stored = u32::from_le_bytes(copy_array(&h[60..64]));
        let computed = crc32c::crc32c(&h[..60]);
        if stored != computed {
            return Err(SegmentError::HeaderCrc {
                path: path.to_path_buf(),
                stored,
                computed,
            });
        }
        let header_len = u32::from_le_bytes(copy_array(&h[12..16]));
        if u64::from(header_len) != HEADER_LEN {
            return Err(SegmentError::BadHeader {
                path: path.to_path_buf(),
                field: "header length",
                found: header_len.into(),
                expected: "64 in format version 1",
            });
        }
        let kind_raw = u16::from_le_bytes(copy_array(&h[10..12]));
        let kind = SegmentKind::from_u16(kind_raw).ok_or_else(|| SegmentError::UnknownKind {
            path: path.to_path_buf(),
            found: kind_raw,
        })?;
        let capacity = u64::from_le_bytes(copy_array(&h[32..40]));
        if capacity < MIN_CAPACITY || !capacity.is_multiple_of(FRAME_ALIGN) {
            return Err(SegmentError::BadHeader {
                path: path.to_path_buf(),
                field: "capacity",
                found: capacity,
                expected: "a multiple of 16 of at least 96",
            });
        }
        Ok(Self {
            kind,
            sequence: u64::from_le_bytes(copy_array(&h[16..24])),
            created_ns: u64::from_le_bytes(copy_array(&h[24..32])),
            capacity,
        })
    }
}

/// Rounds `len` up to the next multiple of [`FRAME_ALIGN`] (saturating).
pub(crate) const fn pad16(len: u64) -> u64 {
    match len.checked_add(FRAME_ALIGN - 1) {
        Some(v) => v & !(FRAME_ALIGN - 1),
        None => !(FRAME_ALIGN - 1),
    }
}

/// Bytes a frame of `len` payload bytes occupies: header, payload, padding.
pub(crate) const fn frame_size(len: u64) -> u64 {
    FRAME_HEADER_LEN.saturating_add(pad16(len))
}

/// The largest payload a fresh segment of `capacity` holds.
pub const fn max_payload(capacity: u64) -> u64 {
    let room = capacity.saturating_sub(HEADER_LEN + FRAME_HEADER_LEN);
    let room = room & !(FRAME_ALIGN - 1);
    if room > u32::MAX as u64 {
        // The frame length field is a u32; the largest 16-aligned-padded length that fits.
        u32::MAX as u64
    } else {
        room
    }
}

/// Checks a capacity asked for by a writer.
pub(crate) fn check_capacity(capacity: u64, path: &Path) -> Result<(), SegmentError> {
    let expected = if capacity < MIN_CAPACITY {
        "at least 96 bytes (a 64-byte header and one 32-byte frame)"
    } else if !capacity.is_multiple_of(FRAME_ALIGN) {
        "a multiple of 16"
    } else if usize::try_from(capacity).is_err() {
        "addressable on this machine"
    } else {
        return Ok(());
    };
    Err(SegmentError::InvalidCapacity {
        path: path.to_path_buf(),
        capacity,
        expected,
    })
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub len: u32,
    pub crc: u32,
    pub reserved: u64,
}

impl FrameHeader {
    pub(crate) fn decode(b: [u8; 16]) -> Self {
        let [l0, l1, l2, l3, c0, c1, c2, c3, r @ ..] = b;
        Self {
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
            reserved: u64::from_le_bytes(r),
        }
    }

    pub(crate) fn encode(len: u32, crc: u32) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&len.to_le_bytes());
        b[4..8].copy_from_slice(&crc.to_le_bytes());
        b
    }
}

/// Copies a slice whose length the caller has already fixed into an array.
fn copy_array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&s[..N]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SegmentHeader {
        SegmentHeader {
            kind: SegmentKind::RRPairs,
            sequence: 42,
            created_ns: 1_700_000_000_000_000_000,
            capacity: DEFAULT_CAPACITY,
        }
    }

    #[test]
    fn header_round_trip_and_layout() {
        let h = header();
        let b = h.encode();
        assert_eq!(&b[..8], b"TAPLSEG\0");
        assert_eq!(&b[8..10], &[1, 0]);
        assert_eq!(&b[10..12], &[2, 0]);
        assert_eq!(&b[12..16], &[64, 0, 0, 0]);
        assert!(b[40..60].iter().all(|&x| x == 0));
        assert_eq!(SegmentHeader::decode(&b, Path::new("x")).unwrap(), h);
    }

    #[test]
    fn header_refusals() {
        let p = Path::new("f.seg");
        let mut b = header().encode();
        b[20] ^= 1;
        let e = SegmentHeader::decode(&b, p).unwrap_err();
        assert!(matches!(e, SegmentError::HeaderCrc { .. }), "{e}");

        let e = SegmentHeader::decode(b"GIF89a..........", p).unwrap_err();
        assert!(e.to_string().contains("not a tapline segment"), "{e}");
        let e = SegmentHeader::decode(b"", p).unwrap_err();
        assert!(e.to_string().contains("not a tapline segment"), "{e}");
        let e = SegmentHeader::decode(b"hi", p).unwrap_err();
        assert!(e.to_string().contains("not a tapline segment"), "{e}");
        let e = SegmentHeader::decode(&header().encode()[..40], p).unwrap_err();
        assert!(matches!(e, SegmentError::TooShort { len: 40, .. }), "{e}");

        let mut b = header().encode();
        b[8] = 7;
        let e = SegmentHeader::decode(&b, p).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.seg: segment format version 7, this build reads 1"
        );
    }

    #[test]
    fn unknown_kind_refused() {
        let mut b = header().encode();
        b[10] = 9;
        let crc = crc32c::crc32c(&b[..60]);
        b[60..].copy_from_slice(&crc.to_le_bytes());
        let e = SegmentHeader::decode(&b, Path::new("f.seg")).unwrap_err();
        assert!(e.to_string().contains("unknown segment kind 9"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(pad16(0), 0);
        assert_eq!(pad16(1), 16);
        assert_eq!(pad16(16), 16);
        assert_eq!(frame_size(200), 16 + 208);
        assert_eq!(max_payload(MIN_CAPACITY), 16);
        assert_eq!(max_payload(DEFAULT_CAPACITY), DEFAULT_CAPACITY - 80);
        assert!(check_capacity(100, Path::new("x")).is_err());
        assert!(check_capacity(MIN_CAPACITY, Path::new("x")).is_ok());
        assert_eq!("rrpairs".parse::<SegmentKind>(), Ok(SegmentKind::RRPairs));
    }
}
