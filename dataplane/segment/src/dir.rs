//! A directory of numbered segments of one kind, written in sequence and kept as a ring.
//!
//! Files are named `{kind}-{sequence:06}.seg` (`packets-000000.seg`, …; more digits past
//! 999999). A writer continues after the highest sequence already present, rolls over to a new
//! segment when the current one is full (publishing and sealing the full one, and passing its
//! staging buffer on), and at each roll-over applies the [`Retention`] limits: the oldest
//! segments are deleted ("recycled") unless pinned by a sibling file named like the segment plus
//! `.pin` (`packets-000003.seg.pin`).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::SegmentError;
use crate::format::{SegmentKind, check_capacity, max_payload};
use crate::sealing::Sealer;
use crate::writer::{Durability, SegmentWriter, SharedSegment};

/// Limits on what a segment directory keeps. The default keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the directory's segments of this kind, the one being written included (counted at
    /// its capacity, which it grows to), at or under this many bytes (file sizes).
    pub max_bytes: Option<u64>,
    /// Delete sealed segments last modified longer ago than this.
    pub max_age: Option<Duration>,
}

/// Where an appended frame went: the segment's sequence, the payload offset in it, and a handle
/// to read it back once published ([`SegmentDirWriter::publish`]).
#[derive(Debug, Clone)]
pub struct FrameRef {
    /// Sequence number of the segment holding the frame.
    pub sequence: u64,
    /// Offset of the payload in that segment.
    pub offset: u64,
    /// A handle to that segment.
    pub segment: SharedSegment,
}

impl FrameRef {
    /// The payload this reference points at.
    ///
    /// # Errors
    ///
    /// Those of [`SharedSegment::payload`]; for a reference returned by an append, none once
    /// the writer has published it ([`SegmentError::BadOffset`] before).
    pub fn payload(&self) -> Result<&[u8], SegmentError> {
        self.segment.payload(self.offset)
    }
}

/// What a [`SegmentDirWriter`] did, returned by [`SegmentDirWriter::finish`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirSummary {
    /// Segments this writer created and left in the directory (recycled ones included, an empty
    /// last segment removed by `finish` excluded).
    pub segments: u64,
    /// Frames appended.
    pub frames: u64,
    /// Payload bytes appended.
    pub bytes: u64,
    /// Segments deleted by retention.
    pub recycled: u64,
    /// File bytes those deleted segments held.
    pub recycled_bytes: u64,
}

/// Appends frames to a directory of segments of one kind, rolling over and recycling.
///
/// Appends are buffered as in [`SegmentWriter`]: call [`publish`](Self::publish) before handing
/// the offsets of [`FrameRef`]s to readers on other threads. A roll-over publishes the full
/// segment and seals it (under [`Durability::Sync`], on a background thread; see `sealing.rs`).
/// Dropping the writer without [`finish`](Self::finish) writes out what is buffered, waits for a
/// seal in flight and leaves the current segment unsealed.
#[derive(Debug)]
pub struct SegmentDirWriter {
    dir: PathBuf,
    kind: SegmentKind,
    capacity: u64,
    retention: Retention,
    durability: Durability,
    writer: SegmentWriter,
    sealer: Sealer,
    summary: DirSummary,
}

impl SegmentDirWriter {
    /// Opens `dir` (creating it if needed) and starts a new segment after the highest sequence of
    /// `kind` already there, then applies `retention` to the segments present.
    ///
    /// Earlier segments are left as they are; run [`recover`](crate::recover()) on one a crashed
    /// writer left unsealed.
    ///
    /// # Errors
    ///
    /// [`SegmentError::InvalidCapacity`], and [`SegmentError::Io`] when the directory cannot be
    /// created or listed or the segment cannot be created.
    pub fn create(
        dir: &Path,
        kind: SegmentKind,
        capacity: u64,
        retention: Retention,
    ) -> Result<Self, SegmentError> {
        check_capacity(capacity, dir)?;
        std::fs::create_dir_all(dir)
            .map_err(|e| SegmentError::io(dir, "creating segment directory", e))?;
        // (At u64::MAX the create below fails on the existing file instead of wrapping.)
        let next = dir_segments(dir, kind)?
            .last()
            .map_or(0, |(seq, _)| seq.saturating_add(1));
        let writer = SegmentWriter::create(&segment_path(dir, kind, next), kind, next, capacity)?;
        let mut this = Self {
            dir: dir.to_path_buf(),
            kind,
            capacity,
            retention,
            durability: Durability::default(),
            writer,
            sealer: Sealer::default(),
            summary: DirSummary {
                segments: 1,
                ..DirSummary::default()
            },
        };
        this.enforce_retention()?;
        Ok(this)
    }

    /// Chooses what sealing a segment guarantees ([`Durability::Flush`] unless set), for the
    /// current segment and the ones after it.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self.writer.set_durability(durability);
        self
    }

    /// What sealing a segment guarantees.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Appends one frame, rolling over to a new segment when the current one is full. The frame
    /// is readable through the returned [`FrameRef`] after the next [`publish`](Self::publish).
    ///
    /// # Errors
    ///
    /// [`SegmentError::EmptyPayload`]; [`SegmentError::PayloadTooLarge`] (naming the size) for a
    /// payload no segment of this capacity can hold; [`SegmentError::Io`] when writing out the
    /// buffer or rolling over fails.
    #[inline]
    pub fn append(&mut self, payload: &[u8]) -> Result<FrameRef, SegmentError> {
        let len = payload.len();
        if !self.writer.fits(len) {
            self.make_room(len)?;
        }
        match self.writer.append(payload)? {
            Some(offset) => Ok(self.appended(offset, len)),
            // `make_room` left room for `len`; reaching here would be a bug, reported not panicked.
            None => Err(self.too_large(len)),
        }
    }

    /// Reserves a frame of `len` bytes (rolling over first if needed), lets `fill` write the
    /// payload in place, and commits it; see [`SegmentWriter::append_with`].
    ///
    /// # Errors
    ///
    /// As [`SegmentDirWriter::append`]; `fill` is not called then.
    #[inline]
    pub fn append_with(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<FrameRef, SegmentError> {
        if !self.writer.fits(len) {
            self.make_room(len)?;
        }
        match self.writer.append_with(len, fill)? {
            Some(offset) => Ok(self.appended(offset, len)),
            None => Err(self.too_large(len)),
        }
    }

    #[inline]
    fn appended(&mut self, offset: u64, len: usize) -> FrameRef {
        self.summary.frames += 1;
        self.summary.bytes += len as u64;
        FrameRef {
            sequence: self.writer.header().sequence,
            offset,
            segment: self.writer.shared(),
        }
    }

    /// Makes every frame appended so far readable through its [`FrameRef`] (and
    /// [`SharedSegment`]), on any thread: writes the current segment's buffer to its file (one
    /// `pwrite`, nothing when nothing is buffered). Earlier segments were published when the
    /// writer rolled over from them.
    ///
    /// # Errors
    ///
    /// [`SegmentError::Io`] when the write fails; see [`SegmentWriter::publish`].
    pub fn publish(&mut self) -> Result<(), SegmentError> {
        self.writer.publish()
    }

    #[cold]
    fn make_room(&mut self, len: usize) -> Result<(), SegmentError> {
        if len == 0 {
            return Err(SegmentError::EmptyPayload {
                path: self.dir.clone(),
            });
        }
        if len as u64 > max_payload(self.capacity) {
            return Err(self.too_large(len));
        }
        self.roll()
    }

    fn too_large(&self, len: usize) -> SegmentError {
        SegmentError::PayloadTooLarge {
            path: self.dir.clone(),
            len: len as u64,
            max: max_payload(self.capacity),
        }
    }

    /// Switches to the next segment (handing it the full one's buffer), seals the full one,
    /// then applies retention.
    fn roll(&mut self) -> Result<(), SegmentError> {
        let next = self.writer.header().sequence.saturating_add(1);
        let buf = self.writer.take_buffer()?;
        let mut fresh = SegmentWriter::create_with(
            &segment_path(&self.dir, self.kind, next),
            self.kind,
            next,
            self.capacity,
            buf,
        )?;
        fresh.set_durability(self.durability);
        let full = std::mem::replace(&mut self.writer, fresh);
        self.summary.segments += 1;
        self.sealer.seal(full)?;
        self.enforce_retention()?;
        Ok(())
    }

    /// Applies the retention limits now (also done at each roll-over): deletes the oldest
    /// unpinned sealed segments while over `max_bytes`, and those older than `max_age`. Returns
    /// how many were deleted.
    ///
    /// # Errors
    ///
    /// [`SegmentError::Io`] when the directory cannot be listed or a file cannot be deleted.
    pub fn enforce_retention(&mut self) -> Result<u64, SegmentError> {
        let Retention { max_bytes, max_age } = self.retention;
        if max_bytes.is_none() && max_age.is_none() {
            return Ok(0);
        }
        let current = self.writer.header().sequence;
        let now = SystemTime::now();
        let mut sealed = Vec::new();
        let mut total = 0;
        for (seq, path) in dir_segments(&self.dir, self.kind)? {
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(SegmentError::io(path, "reading segment metadata", e)),
            };
            // The current segment counts at the size it will grow to, and is never recycled.
            total += if seq >= current {
                meta.len().max(self.capacity)
            } else {
                meta.len()
            };
            if seq < current {
                sealed.push((path, meta.len(), meta.modified().ok()));
            }
        }
        let mut deleted = 0;
        for (path, len, modified) in sealed {
            let over_bytes = max_bytes.is_some_and(|max| total > max);
            let too_old = match (max_age, modified) {
                (Some(age), Some(m)) => now.duration_since(m).is_ok_and(|d| d > age),
                _ => false,
            };
            if !(over_bytes || too_old) || pin_path(&path).exists() {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(SegmentError::io(path, "recycling segment", e)),
            }
            total -= len;
            deleted += 1;
            self.summary.recycled += 1;
            self.summary.recycled_bytes += len;
        }
        Ok(deleted)
    }

    /// The segment the last append went to (before the first append, the first segment).
    pub fn current(&self) -> SharedSegment {
        self.writer.shared()
    }

    /// The directory written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Counters so far.
    pub fn summary(&self) -> DirSummary {
        self.summary
    }

    /// Seals the current segment (or deletes it if nothing was appended to it), waits for a
    /// seal in flight, and returns what was written.
    ///
    /// # Errors
    ///
    /// [`SegmentError::Io`] when sealing or deleting fails.
    pub fn finish(mut self) -> Result<DirSummary, SegmentError> {
        self.sealer.wait()?;
        let mut summary = self.summary;
        if self.writer.frame_count() == 0 {
            let path = self.writer.path().to_path_buf();
            drop(self.writer);
            std::fs::remove_file(&path)
                .map_err(|e| SegmentError::io(path, "removing empty segment", e))?;
            summary.segments -= 1;
        } else {
            self.writer.seal()?;
        }
        Ok(summary)
    }
}

/// The path of segment `sequence` of `kind` in `dir`: `{dir}/{kind}-{sequence:06}.seg`.
pub fn segment_path(dir: &Path, kind: SegmentKind, sequence: u64) -> PathBuf {
    dir.join(format!("{}-{sequence:06}.seg", kind.name()))
}

/// The pin file of a segment: its path with `.pin` appended. While it exists, retention keeps
/// the segment.
pub fn pin_path(segment: &Path) -> PathBuf {
    let mut p = segment.as_os_str().to_owned();
    p.push(".pin");
    PathBuf::from(p)
}

/// The segments of `kind` in `dir`, in sequence order.
///
/// # Errors
///
/// [`SegmentError::Io`] when the directory cannot be listed.
pub fn read_dir_segments(dir: &Path, kind: SegmentKind) -> Result<Vec<PathBuf>, SegmentError> {
    Ok(dir_segments(dir, kind)?
        .into_iter()
        .map(|(_, p)| p)
        .collect())
}

/// The segments of `kind` in `dir` with their sequence numbers, in sequence order.
///
/// # Errors
///
/// [`SegmentError::Io`] when the directory cannot be listed.
pub fn dir_segments(dir: &Path, kind: SegmentKind) -> Result<Vec<(u64, PathBuf)>, SegmentError> {
    let list = |e| SegmentError::io(dir, "listing segment directory", e);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list)? {
        let entry = entry.map_err(list)?;
        let name = entry.file_name();
        let Some(seq) = name.to_str().and_then(|n| parse_name(n, kind)) else {
            continue;
        };
        found.push((seq, entry.path()));
    }
    found.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(found)
}

/// The sequence number in a file name `{kind}-{digits}.seg` (at least six digits), if it is one.
fn parse_name(name: &str, kind: SegmentKind) -> Option<u64> {
    let digits = name
        .strip_prefix(kind.name())?
        .strip_prefix('-')?
        .strip_suffix(".seg")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let p = segment_path(Path::new("/d"), SegmentKind::RRPairs, 7);
        assert_eq!(p, Path::new("/d/rrpairs-000007.seg"));
        assert_eq!(pin_path(&p), Path::new("/d/rrpairs-000007.seg.pin"));
        assert_eq!(
            parse_name("rrpairs-000007.seg", SegmentKind::RRPairs),
            Some(7)
        );
        assert_eq!(
            parse_name("rrpairs-1234567.seg", SegmentKind::RRPairs),
            Some(1_234_567)
        );
        assert_eq!(parse_name("rrpairs-000007.seg", SegmentKind::Packets), None);
        assert_eq!(
            parse_name("rrpairs-000007.seg.pin", SegmentKind::RRPairs),
            None
        );
        assert_eq!(parse_name("rrpairs-7.seg", SegmentKind::RRPairs), None);
        assert_eq!(parse_name("rrpairs-00000x.seg", SegmentKind::RRPairs), None);
        assert_eq!(parse_name("rrpairs-+00007.seg", SegmentKind::RRPairs), None);
    }
}
