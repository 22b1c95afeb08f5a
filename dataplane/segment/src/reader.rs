//! Reading segments: a read-only, zero-copy view of a segment file and an iterator over its frames.
//!
//! Every frame is checked before its payload is handed out (length within the file, reserved
//! bytes and padding zero, crc32c of the payload); the iterator stops at the first frame that
//! fails and reports it once, so damaged bytes are never returned as data.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::SegmentError;
use crate::format::{
    FRAME_ALIGN, FRAME_HEADER_LEN, FrameHeader, HEADER_LEN, SegmentHeader, SegmentKind, pad16,
};

/// One frame of a segment: where its payload starts and the payload bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Offset of the payload in the file (16-byte aligned); the frame header is 16 bytes before.
    pub offset: u64,
    /// The payload, borrowed from the mapping.
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Offset of this frame's header, the offset errors about a frame name.
    pub fn frame_offset(&self) -> u64 {
        self.offset - FRAME_HEADER_LEN
    }

    /// Offset just past this frame and its padding: where the next frame starts.
    pub fn end(&self) -> u64 {
        self.offset + pad16(self.payload.len() as u64)
    }
}

/// What is found at a frame position.
pub(crate) enum Step<'a> {
    /// A valid frame.
    Frame(Frame<'a>),
    /// The end of the frames: an end marker (a zero frame header) or the end of the bytes.
    End,
}

/// Reads and checks the frame whose header starts at `at` in `bytes` (a whole segment file).
///
/// `check_crc` is false only for bytes this process wrote itself (see `SharedSegment`).
pub(crate) fn read_frame<'a>(
    bytes: &'a [u8],
    at: u64,
    path: &Path,
    check_crc: bool,
) -> Result<Step<'a>, SegmentError> {
    let total = bytes.len() as u64;
    let Some(rest) = usize::try_from(at).ok().and_then(|at| bytes.get(at..)) else {
        return Ok(Step::End);
    };
    let Some((head, body)) = rest.split_first_chunk::<16>() else {
        if rest.iter().all(|&b| b == 0) {
            return Ok(Step::End);
        }
        return Err(SegmentError::TornFrameHeader {
            path: path.to_path_buf(),
            offset: at,
            available: rest.len() as u64,
        });
    };
    let fh = FrameHeader::decode(*head);
    if fh.len == 0 {
        if fh.crc != 0 || fh.reserved != 0 {
            return Err(SegmentError::CorruptFrame {
                path: path.to_path_buf(),
                offset: at,
                what: "end marker (zero length with a checksum or reserved bytes set)",
            });
        }
        return Ok(Step::End);
    }
    if fh.reserved != 0 {
        return Err(SegmentError::CorruptFrame {
            path: path.to_path_buf(),
            offset: at,
            what: "reserved bytes",
        });
    }
    let len = u64::from(fh.len);
    let needed = pad16(len);
    let available = total - at - FRAME_HEADER_LEN;
    if needed > available {
        return Err(SegmentError::TornFrame {
            path: path.to_path_buf(),
            offset: at,
            len,
            needed,
            available,
        });
    }
    // Both fit in `body` (checked above; `needed` fits in usize because it is at most `available`).
    let (payload, tail) = body.split_at(fh.len as usize);
    let padding = tail.get(..(needed - len) as usize).unwrap_or_default();
    if padding.iter().any(|&b| b != 0) {
        return Err(SegmentError::CorruptFrame {
            path: path.to_path_buf(),
            offset: at,
            what: "padding after the payload",
        });
    }
    if check_crc {
        let computed = crc32c::crc32c(payload);
        if computed != fh.crc {
            return Err(SegmentError::FrameCrc {
                path: path.to_path_buf(),
                offset: at,
                len,
                stored: fh.crc,
                computed,
            });
        }
    }
    Ok(Step::Frame(Frame {
        offset: at + FRAME_HEADER_LEN,
        payload,
    }))
}

/// Checks a payload offset handed to a `payload()` lookup and reads the frame it belongs to.
pub(crate) fn payload_at<'a>(
    bytes: &'a [u8],
    offset: u64,
    path: &Path,
    check_crc: bool,
) -> Result<&'a [u8], SegmentError> {
    let bad = |reason| SegmentError::BadOffset {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if !offset.is_multiple_of(FRAME_ALIGN) {
        return Err(bad("not 16-byte aligned"));
    }
    if offset < HEADER_LEN + FRAME_HEADER_LEN {
        return Err(bad("inside the segment header"));
    }
    if offset >= bytes.len() as u64 {
        return Err(bad("past the end of the frames"));
    }
    match read_frame(bytes, offset - FRAME_HEADER_LEN, path, check_crc)? {
        Step::Frame(f) => Ok(f.payload),
        Step::End => Err(bad("no frame there (end of the frames)")),
    }
}

/// Heap storage aligned like a mapping's frames, for [`Segment::from_bytes`].
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Block([u8; 16]);

enum Backing {
    Map(Mmap),
    Heap { blocks: Vec<Block>, len: usize },
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Map(m) => m,
            Backing::Heap { blocks, len } => {
                // SAFETY: `Block` is 16 plain bytes with no padding, so the vector's buffer is
                // `blocks.len() * 16` initialised bytes; `len` never exceeds that (from_bytes).
                unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast::<u8>(), *len) }
            }
        }
    }
}

/// A read-only, zero-copy view of one segment file.
///
/// The file is memory-mapped; payloads are slices of the mapping and start at 16-byte-aligned
/// addresses. Open sealed segments or ones left behind by a stopped writer; frames a live
/// writer in this process is appending are read through [`SharedSegment`](crate::SharedSegment).
pub struct Segment {
    backing: Backing,
    path: PathBuf,
    header: SegmentHeader,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("len", &self.len())
            .finish()
    }
}

impl Segment {
    /// Maps a segment file read-only and checks its header.
    ///
    /// Another process must not truncate the file while it is mapped (a read past the new end
    /// would fault); tapline truncates only while sealing, before anyone opens the file.
    ///
    /// # Errors
    ///
    /// [`SegmentError::Io`] when the file cannot be opened or mapped;
    /// [`SegmentError::NotSegment`], [`SegmentError::TooShort`],
    /// [`SegmentError::UnsupportedVersion`], [`SegmentError::HeaderCrc`],
    /// [`SegmentError::BadHeader`] or [`SegmentError::UnknownKind`] for a bad header. Each names the path.
    pub fn open(path: &Path) -> Result<Self, SegmentError> {
        let file = File::open(path).map_err(|e| SegmentError::io(path, "opening segment", e))?;
        // SAFETY: the mapping is read-only and private to this value. Segment files are written
        // only through `SegmentWriter` (which never rewrites appended bytes) and truncated only
        // by `seal`/`recover`, which callers run before opening; see the doc above.
        let map = unsafe { Mmap::map(&file) }
            .map_err(|e| SegmentError::io(path, "mapping segment", e))?;
        let header = SegmentHeader::decode(&map, path)?;
        Ok(Self {
            backing: Backing::Map(map),
            path: path.to_path_buf(),
            header,
        })
    }

    /// Opens a segment like [`Segment::open`] and refuses one of another kind.
    ///
    /// # Errors
    ///
    /// Those of [`Segment::open`], and [`SegmentError::WrongKind`].
    pub fn open_kind(path: &Path, kind: SegmentKind) -> Result<Self, SegmentError> {
        let seg = Self::open(path)?;
        if seg.header.kind != kind {
            return Err(SegmentError::WrongKind {
                path: path.to_path_buf(),
                found: seg.header.kind,
                expected: kind,
            });
        }
        Ok(seg)
    }

    /// Builds a segment from bytes in memory (copied into a 16-byte-aligned buffer); errors name
    /// the path `<memory>`. For tests and fuzzing.
    ///
    /// # Errors
    ///
    /// The header errors of [`Segment::open`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SegmentError> {
        let path = PathBuf::from("<memory>");
        let mut blocks = vec![Block([0; 16]); bytes.len().div_ceil(16)];
        for (block, chunk) in blocks.iter_mut().zip(bytes.chunks(16)) {
            block.0[..chunk.len()].copy_from_slice(chunk);
        }
        let backing = Backing::Heap {
            blocks,
            len: bytes.len(),
        };
        let header = SegmentHeader::decode(backing.bytes(), &path)?;
        Ok(Self {
            backing,
            path,
            header,
        })
    }

    /// The checked file header.
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    /// The file this segment was opened from (`<memory>` for [`Segment::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The length of the file in bytes.
    pub fn len(&self) -> u64 {
        self.backing.bytes().len() as u64
    }

    /// Whether the file holds nothing but a header (no frame bytes at all).
    pub fn is_empty(&self) -> bool {
        self.len() <= HEADER_LEN
    }

    /// The whole file, header included.
    pub fn as_bytes(&self) -> &[u8] {
        self.backing.bytes()
    }

    /// Iterates over the frames in file order, checking each.
    pub fn frames(&self) -> Frames<'_> {
        Frames::new(self.backing.bytes(), &self.path)
    }

    /// The payload of the frame whose payload starts at `offset` (as returned by an append or
    /// found in [`Frame::offset`]), after checking that frame.
    ///
    /// # Errors
    ///
    /// [`SegmentError::BadOffset`] when `offset` cannot be a payload offset of this file, and the
    /// frame errors of [`Segment::frames`] when the frame there is damaged.
    ///
    /// There is no index: an offset that did not come from an append or a [`Frame`] may land
    /// inside another payload, and is answered from whatever checked frame the bytes there form.
    pub fn payload(&self, offset: u64) -> Result<&[u8], SegmentError> {
        payload_at(self.backing.bytes(), offset, &self.path, true)
    }
}

/// Iterator over the frames of a [`Segment`]; see [`Segment::frames`].
///
/// Yields `Ok(frame)` for each good frame and ends at an end marker or the end of the file. At a
/// torn or corrupt frame it yields one `Err` naming the path and the frame header's offset, then ends.
pub struct Frames<'a> {
    bytes: &'a [u8],
    path: &'a Path,
    pos: u64,
    done: bool,
}

impl fmt::Debug for Frames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frames")
            .field("path", &self.path)
            .field("pos", &self.pos)
            .field("done", &self.done)
            .finish()
    }
}

impl<'a> Frames<'a> {
    /// Iterates over the frames of `bytes`, a whole segment file; `path` is named in errors.
    pub(crate) fn new(bytes: &'a [u8], path: &'a Path) -> Self {
        Self {
            bytes,
            path,
            pos: HEADER_LEN,
            done: false,
        }
    }

    /// The offset where the next frame would start: after the iterator has ended, the end of
    /// the last good frame.
    pub fn position(&self) -> u64 {
        self.pos
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, SegmentError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match read_frame(self.bytes, self.pos, self.path, true) {
            Ok(Step::Frame(frame)) => {
                self.pos = frame.end();
                Some(Ok(frame))
            }
            Ok(Step::End) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for Frames<'_> {}
