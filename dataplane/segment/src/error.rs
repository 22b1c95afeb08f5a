//! The one error type of the segment store.
//!
//! Every variant names the file (or `<memory>` for [`Segment::from_bytes`](crate::Segment::from_bytes))
//! and, for frame problems, the byte offset of the frame header, so that a report points at the
//! exact place a reader or `recover` gave up.

use std::io;
use std::path::PathBuf;

use crate::format::{FORMAT_VERSION, SegmentKind};

/// Everything that can go wrong creating, appending to, reading or recovering a segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// A system call on a segment file or directory failed; `op` says what was being done.
    #[error("{path}: {op}: {source}", path = path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done, e.g. "creating segment" or "mapping".
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The file is shorter than the 64-byte segment header.
    #[error(
        "{path}: not a tapline segment: {len} bytes, shorter than the {expected}-byte header",
        path = path.display()
    )]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
        /// The header length the format requires.
        expected: u64,
    },

    /// The file does not start with the magic `b"TAPLSEG\0"`.
    #[error(
        "{path}: not a tapline segment (magic {found:02x?}, expected \"TAPLSEG\\0\")",
        path = path.display()
    )]
    NotSegment {
        /// The file.
        path: PathBuf,
        /// The first eight bytes found.
        found: [u8; 8],
    },

    /// The header carries a format version this build cannot read.
    #[error(
        "{path}: segment format version {found}, this build reads {FORMAT_VERSION}",
        path = path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in the header.
        found: u16,
    },

    /// The header checksum does not match its contents.
    #[error(
        "{path}: segment header crc32c mismatch (stored {stored:#010x}, computed {computed:#010x})",
        path = path.display()
    )]
    HeaderCrc {
        /// The file.
        path: PathBuf,
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum of the header bytes.
        computed: u32,
    },

    /// A header field holds a value the format does not allow.
    #[error(
        "{path}: segment header field `{field}` is {found}, expected {expected}",
        path = path.display()
    )]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// The field name.
        field: &'static str,
        /// The value found.
        found: u64,
        /// What the format allows.
        expected: &'static str,
    },

    /// The header names a segment kind this build does not know.
    #[error(
        "{path}: unknown segment kind {found}, expected 1 (packets), 2 (rrpairs) or 3 (tlschunks)",
        path = path.display()
    )]
    UnknownKind {
        /// The file.
        path: PathBuf,
        /// The kind value found.
        found: u16,
    },

    /// The segment is of another kind than the caller asked for.
    #[error("{path}: segment kind is {found}, expected {expected}", path = path.display())]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// The kind in the header.
        found: SegmentKind,
        /// The kind the caller asked for.
        expected: SegmentKind,
    },

    /// Fewer than 16 bytes remain at a frame position and they are not all zero: the frame
    /// header was cut off (a truncated file or torn write).
    #[error(
        "{path}: torn frame header at offset {offset}: {available} of 16 bytes present",
        path = path.display()
    )]
    TornFrameHeader {
        /// The file.
        path: PathBuf,
        /// Offset of the frame header.
        offset: u64,
        /// Bytes present before the end of the file.
        available: u64,
    },

    /// A frame header claims more bytes (payload plus padding) than the file holds.
    #[error(
        "{path}: torn frame at offset {offset}: header claims {len} payload bytes \
         ({needed} with padding) but only {available} bytes follow the header",
        path = path.display()
    )]
    TornFrame {
        /// The file.
        path: PathBuf,
        /// Offset of the frame header.
        offset: u64,
        /// The payload length in the header.
        len: u64,
        /// Payload plus padding to the next 16-byte boundary.
        needed: u64,
        /// Bytes present after the frame header.
        available: u64,
    },

    /// A frame header has non-zero bytes where the format requires zeros (reserved bytes,
    /// padding after the payload, or an end marker whose checksum field is set).
    #[error(
        "{path}: corrupt frame at offset {offset}: {what} not zero",
        path = path.display()
    )]
    CorruptFrame {
        /// The file.
        path: PathBuf,
        /// Offset of the frame header.
        offset: u64,
        /// Which bytes: "reserved bytes", "padding", "end marker".
        what: &'static str,
    },

    /// A frame's payload does not match the checksum in its header.
    #[error(
        "{path}: frame at offset {offset} ({len} bytes): crc32c mismatch \
         (stored {stored:#010x}, computed {computed:#010x})",
        path = path.display()
    )]
    FrameCrc {
        /// The file.
        path: PathBuf,
        /// Offset of the frame header.
        offset: u64,
        /// The payload length.
        len: u64,
        /// The checksum in the frame header.
        stored: u32,
        /// The checksum of the payload bytes.
        computed: u32,
    },

    /// A payload offset handed to `payload()` does not point at a payload of this segment.
    #[error("{path}: payload offset {offset}: {reason}", path = path.display())]
    BadOffset {
        /// The file.
        path: PathBuf,
        /// The offset asked for.
        offset: u64,
        /// Why it was refused, e.g. "not 16-byte aligned" or "past the appended frames".
        reason: &'static str,
    },

    /// A payload of zero bytes cannot be stored: a zero length marks the end of the frames.
    #[error("{path}: empty payload (a zero length marks the end of a segment)", path = path.display())]
    EmptyPayload {
        /// The segment or directory written to.
        path: PathBuf,
    },

    /// A payload cannot fit in any segment of this capacity.
    #[error(
        "{path}: payload of {len} bytes is larger than the {max} bytes a segment of this capacity holds",
        path = path.display()
    )]
    PayloadTooLarge {
        /// The segment or directory written to.
        path: PathBuf,
        /// The payload length.
        len: u64,
        /// The largest payload a fresh segment holds.
        max: u64,
    },

    /// The requested capacity cannot hold a header and one frame, or is not 16-byte aligned.
    #[error(
        "{path}: segment capacity {capacity} is invalid: {expected}",
        path = path.display()
    )]
    InvalidCapacity {
        /// The segment or directory.
        path: PathBuf,
        /// The capacity asked for.
        capacity: u64,
        /// What is expected.
        expected: &'static str,
    },
}

impl SegmentError {
    /// Builds an [`SegmentError::Io`].
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// The offset of the frame header this error is about, when it is about a frame.
    pub fn frame_offset(&self) -> Option<u64> {
        match self {
            Self::TornFrameHeader { offset, .. }
            | Self::TornFrame { offset, .. }
            | Self::CorruptFrame { offset, .. }
            | Self::FrameCrc { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}
