//! Ring segments: memory-mapped files of CRC-checked, 16-byte-aligned frames.
//!
//! Capture sources append opaque frames (callers put rkyv-archived records in them) to
//! fixed-capacity segment files; workers read them back as zero-copy slices of the mapping. A
//! directory of numbered segments forms a ring: the oldest unpinned segment is recycled at the
//! retention limit.
//!
//! - [`SegmentWriter`] appends to one segment: a memcpy into a staging buffer plus a crc32c per
//!   frame, no allocation; the buffer reaches the file with one `pwrite` when it fills or at
//!   [`publish`](SegmentWriter::publish). [`SharedSegment`] lets other threads read what has
//!   been published, zero-copy from a read-only shared mapping of the file.
//! - [`Segment`] maps a file read-only and iterates its [`Frames`], checking each.
//! - [`recover()`] truncates a torn tail after a crash.
//! - [`SegmentDirWriter`] writes `{kind}-{sequence:06}.seg` files in sequence, rolling over and
//!   applying [`Retention`]; [`Durability`] says whether sealing a segment also syncs it.
//!
//! Writing with `pwrite` rather than through a writable mapping is what keeps the kernel from
//! zero-filling each new page before the frames overwrite it (see `writer.rs`).
//!
//! # Format, version 1
//!
//! All integers little-endian. (Also in `FORMAT.md` next to this crate's `Cargo.toml`.)
//!
//! File header, 64 bytes:
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic `b"TAPLSEG\0"` |
//! | 8 | 2 | format version, `1` |
//! | 10 | 2 | kind: 1 packets, 2 rrpairs, 3 tlschunks |
//! | 12 | 4 | header length, `64` |
//! | 16 | 8 | sequence number |
//! | 24 | 8 | created, nanoseconds since the Unix epoch |
//! | 32 | 8 | capacity (the most bytes the file holds; a multiple of 16, at least 96) |
//! | 40 | 20 | reserved, zero |
//! | 60 | 4 | crc32c of bytes 0..60 |
//!
//! Frames follow from offset 64, each at a 16-byte-aligned offset: a 16-byte frame header
//! `len u32 | crc32c u32 | 8 reserved zero bytes`, then `len` payload bytes, then zero padding to
//! the next multiple of 16. The crc covers the payload. Since the mapping is page-aligned, every
//! payload starts at a 16-byte-aligned address. `len = 0` (a zero frame header) marks the end:
//! the rest of a file whose length was set to its capacity up front is zeros. This crate's writer
//! grows the file as it writes, so its files (sealed or not) end just after their last frame,
//! and the end of the file also ends the frames.
//!
//! A reader checks every frame (length within the file, reserved bytes and padding zero, crc) and
//! stops at the first that fails, reporting its offset; it never returns damaged bytes as data.
//! A reader refuses a file with another magic, another version or a bad header crc.

mod buffer;
mod dir;
mod error;
mod format;
mod reader;
mod recover;
mod sealing;
mod writer;

pub use dir::{
    DirSummary, FrameRef, Retention, SegmentDirWriter, dir_segments, pin_path, read_dir_segments,
    segment_path,
};
pub use error::SegmentError;
pub use format::{
    DEFAULT_CAPACITY, FORMAT_VERSION, FRAME_ALIGN, FRAME_HEADER_LEN, HEADER_LEN, MAGIC,
    MIN_CAPACITY, SegmentHeader, SegmentKind, max_payload,
};
pub use reader::{Frame, Frames, Segment};
pub use recover::{Recovery, recover};
pub use writer::{Durability, SegmentWriter, SharedSegment};
