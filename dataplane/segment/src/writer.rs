//! Writing one segment: a fixed-capacity file mapped read-write, appended to frame by frame.
//!
//! # Safety argument for concurrent readers
//!
//! The writer and every [`SharedSegment`] share one `MmapRaw` mapping through an `Arc`. The
//! writer keeps a `committed` watermark (an `AtomicU64`): every byte below it belongs to a frame
//! that is completely written, and the writer never writes below it again. Appending writes only
//! at and above the watermark and then raises it with a `Release` store. A reader loads the
//! watermark with `Acquire` and builds slices only of bytes below it. So no byte a reader can
//! see is ever written again, and the writes that produced it happen-before the read, however
//! the caller passed the offset across threads (a channel, an atomic, a guess). Offsets the
//! writer has not yet committed are refused with [`SegmentError::BadOffset`], never read.
//!
//! `seal` truncates the file to the watermark; the mapping (still covering the old capacity)
//! stays valid for every byte below the watermark, which is all a reader may touch. Deleting a
//! segment file (retention) leaves existing mappings intact on Linux.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use std::{fmt, ptr};

use memmap2::{MmapOptions, MmapRaw};

use crate::SegmentError;
use crate::format::{
    FRAME_HEADER_LEN, FrameHeader, HEADER_LEN, SegmentHeader, SegmentKind, check_capacity,
    frame_size, max_payload, pad16,
};
use crate::reader::{Frames, payload_at};

/// State shared by a writer and its readers.
struct Inner {
    map: MmapRaw,
    path: PathBuf,
    header: SegmentHeader,
    /// Bytes of the file (header included) that hold complete frames; never decreases.
    committed: AtomicU64,
}

impl Inner {
    /// The committed prefix of the mapping.
    fn committed_bytes(&self) -> &[u8] {
        let len = self.committed.load(Ordering::Acquire);
        // SAFETY: `len` never exceeds the mapping's length (the capacity; append checks), the
        // mapping lives as long as `self`, and bytes below the watermark are never written again
        // (module doc), so a shared slice of them is sound for as long as `self` is borrowed.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), len as usize) }
    }
}

/// Appends frames to one new segment file of fixed capacity.
///
/// The file is allocated to its full capacity at creation (so writes into the mapping cannot
/// fail for lack of disk space later) and mapped; an append is a copy into the mapping plus a
/// crc32c, with no allocation and no system call.
pub struct SegmentWriter {
    inner: Arc<Inner>,
    file: File,
    used: u64,
    capacity: u64,
    frames: u64,
}

impl fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("path", &self.inner.path)
            .field("header", &self.inner.header)
            .field("used", &self.used)
            .field("frames", &self.frames)
            .finish()
    }
}

impl SegmentWriter {
    /// Creates the file at `path` (which must not exist), allocates `capacity` bytes, maps it and
    /// writes the header.
    ///
    /// # Errors
    ///
    /// [`SegmentError::InvalidCapacity`] when `capacity` is under 96 bytes or not a multiple of
    /// 16; [`SegmentError::Io`] when the file exists or cannot be created, allocated or mapped.
    pub fn create(
        path: &Path,
        kind: SegmentKind,
        sequence: u64,
        capacity: u64,
    ) -> Result<Self, SegmentError> {
        check_capacity(capacity, path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| SegmentError::io(path, "creating segment", e))?;
        match Self::init(file, path, kind, sequence, capacity) {
            Ok(w) => Ok(w),
            Err(e) => {
                // Best effort: do not leave a half-made segment behind.
                let _ = std::fs::remove_file(path);
                Err(e)
            }
        }
    }

    fn init(
        file: File,
        path: &Path,
        kind: SegmentKind,
        sequence: u64,
        capacity: u64,
    ) -> Result<Self, SegmentError> {
        allocate(&file, capacity).map_err(|e| SegmentError::io(path, "allocating segment", e))?;
        let len = usize::try_from(capacity).map_err(|_| SegmentError::InvalidCapacity {
            path: path.to_path_buf(),
            capacity,
            expected: "addressable on this machine",
        })?;
        let map = MmapOptions::new()
            .len(len)
            .map_raw(&file)
            .map_err(|e| SegmentError::io(path, "mapping segment", e))?;
        let created_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let header = SegmentHeader {
            kind,
            sequence,
            created_ns,
            capacity,
        };
        let bytes = header.encode();
        // SAFETY: the mapping is `capacity >= 96` bytes long and nobody else has it yet.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), map.as_mut_ptr(), bytes.len()) };
        Ok(Self {
            inner: Arc::new(Inner {
                map,
                path: path.to_path_buf(),
                header,
                committed: AtomicU64::new(HEADER_LEN),
            }),
            file,
            used: HEADER_LEN,
            capacity,
            frames: 0,
        })
    }

    /// Appends one frame holding `payload`.
    ///
    /// Returns `Ok(Some(offset))`, the offset of the payload in the file (16-byte aligned), or
    /// `Ok(None)` when the frame does not fit in the space left (the caller rolls over to a new
    /// segment).
    ///
    /// # Errors
    ///
    /// [`SegmentError::EmptyPayload`] for an empty payload (a zero length marks the end), and
    /// [`SegmentError::PayloadTooLarge`] for one over 4 GiB − 1 (the frame length is a u32).
    #[inline]
    pub fn append(&mut self, payload: &[u8]) -> Result<Option<u64>, SegmentError> {
        self.append_with(payload.len(), |dst| dst.copy_from_slice(payload))
    }

    /// Reserves a frame of `len` payload bytes, lets `fill` write the payload in place (for
    /// zero-copy serialization into the mapping), then computes its checksum and commits it.
    ///
    /// `fill` must write all `len` bytes: their contents before the call are unspecified (zeros
    /// unless an earlier `fill` panicked). `fill` is not called when the frame does not fit, in
    /// which case the result is `Ok(None)`; otherwise it is `Ok(Some(offset))` of the payload.
    ///
    /// # Errors
    ///
    /// As [`SegmentWriter::append`]; `fill` is not called then.
    #[inline]
    pub fn append_with(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<Option<u64>, SegmentError> {
        let len64 = len as u64;
        if len == 0 || len64 > u64::from(u32::MAX) {
            return Err(self.refuse(len64));
        }
        if !self.fits(len) {
            return Ok(None);
        }
        let frame_at = self.used;
        let payload_at = frame_at + FRAME_HEADER_LEN;
        let padded = pad16(len64);
        // SAFETY: `fits` guarantees `frame_at + 16 + padded <= capacity`, the mapping's length,
        // so every pointer below stays inside the mapping. All bytes written are at or above
        // `frame_at == committed`, which no reader ever slices (module doc), and `&mut self`
        // excludes another append, so the `&mut [u8]` given to `fill` is unique.
        unsafe {
            let base = self.inner.map.as_mut_ptr();
            let p = base.add(payload_at as usize);
            let dst = std::slice::from_raw_parts_mut(p, len);
            fill(dst);
            let crc = crc32c::crc32c(dst);
            ptr::write_bytes(p.add(len), 0, (padded - len64) as usize);
            let head = FrameHeader::encode(len as u32, crc);
            ptr::copy_nonoverlapping(head.as_ptr(), base.add(frame_at as usize), head.len());
        }
        self.used = payload_at + padded;
        self.frames += 1;
        self.inner.committed.store(self.used, Ordering::Release);
        Ok(Some(payload_at))
    }

    #[cold]
    fn refuse(&self, len: u64) -> SegmentError {
        if len == 0 {
            SegmentError::EmptyPayload {
                path: self.inner.path.clone(),
            }
        } else {
            SegmentError::PayloadTooLarge {
                path: self.inner.path.clone(),
                len,
                max: max_payload(self.capacity),
            }
        }
    }

    /// Whether a frame of `len` payload bytes (non-zero) fits in the space left.
    #[inline]
    pub fn fits(&self, len: usize) -> bool {
        len != 0 && frame_size(len as u64) <= self.capacity - self.used
    }

    /// Faults in the unused rest of the mapping now (`MADV_POPULATE_WRITE`), so that appends
    /// that follow take no page faults. This costs about what the faults would; it pays off
    /// when done on another thread than the one appending, as [`SegmentDirWriter`] does when it
    /// prepares its next segment. Does nothing on kernels without it (before Linux 5.14).
    ///
    /// [`SegmentDirWriter`]: crate::SegmentDirWriter
    ///
    /// # Errors
    ///
    /// [`SegmentError::Io`] when the kernel cannot provide the pages.
    pub fn prefault(&mut self) -> Result<(), SegmentError> {
        #[cfg(target_os = "linux")]
        {
            let start = self.used as usize;
            let len = (self.capacity - self.used) as usize;
            if let Err(e) = self
                .inner
                .map
                .advise_range(memmap2::Advice::PopulateWrite, start, len)
            {
                // EINVAL: a kernel without MADV_POPULATE_WRITE; the appends fault instead.
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(SegmentError::io(&self.inner.path, "prefaulting segment", e));
                }
            }
        }
        Ok(())
    }

    /// A handle other threads use to read frames already appended.
    pub fn shared(&self) -> SharedSegment {
        SharedSegment {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Bytes of the file in use: the header and every frame appended.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Bytes left before the capacity.
    pub fn remaining(&self) -> u64 {
        self.capacity - self.used
    }

    /// Frames appended so far.
    pub fn frame_count(&self) -> u64 {
        self.frames
    }

    /// The header written at creation.
    pub fn header(&self) -> &SegmentHeader {
        &self.inner.header
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Flushes the frames to disk, truncates the file to its used length and syncs it; returns
    /// its path. A sealed segment is read-only: it is never written again.
    ///
    /// [`SharedSegment`] handles stay valid after sealing.
    ///
    /// # Errors
    ///
    /// [`SegmentError::Io`] when flushing, truncating or syncing fails.
    pub fn seal(self) -> Result<PathBuf, SegmentError> {
        let path = self.inner.path.clone();
        self.inner
            .map
            .flush_range(0, self.used as usize)
            .map_err(|e| SegmentError::io(&path, "flushing segment", e))?;
        self.file
            .set_len(self.used)
            .map_err(|e| SegmentError::io(&path, "truncating sealed segment", e))?;
        self.file
            .sync_all()
            .map_err(|e| SegmentError::io(&path, "syncing sealed segment", e))?;
        Ok(path)
    }
}

/// Gives the file `len` bytes of disk blocks (not a sparse hole), so that writes through the
/// mapping cannot hit a full disk and fault.
fn allocate(file: &File, len: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let off = libc::off_t::try_from(len)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: plain system call on a valid, owned descriptor.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, off) };
        match rc {
            0 => return Ok(()),
            // File systems without fallocate: fall back to a sparse file.
            libc::EOPNOTSUPP | libc::EINVAL => {}
            err => return Err(std::io::Error::from_raw_os_error(err)),
        }
    }
    file.set_len(len)
}

/// A cheap, cloneable (`Arc`) handle to a segment being written, for reading frames already
/// appended from other threads. `Send + Sync`.
///
/// See the module doc for why this is sound: only bytes below the writer's committed watermark
/// are ever read, and those are never written again while any handle exists.
#[derive(Clone)]
pub struct SharedSegment {
    inner: Arc<Inner>,
}

impl fmt::Debug for SharedSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSegment")
            .field("path", &self.inner.path)
            .field("sequence", &self.inner.header.sequence)
            .field("committed", &self.committed())
            .finish()
    }
}

impl SharedSegment {
    /// The payload whose offset an append returned.
    ///
    /// The frame is checked for shape (length, reserved bytes, padding) but its checksum is not
    /// recomputed: these bytes were written by this process and never change. As with
    /// [`Segment::payload`](crate::Segment::payload), an offset that did not come from an append
    /// may land inside another payload.
    ///
    /// # Errors
    ///
    /// [`SegmentError::BadOffset`] when `offset` is not the payload offset of a committed frame
    /// (misaligned, in the header, or not yet appended), [`SegmentError::CorruptFrame`] or
    /// [`SegmentError::TornFrame`] when it points into the middle of a payload.
    #[inline]
    pub fn payload(&self, offset: u64) -> Result<&[u8], SegmentError> {
        payload_at(
            self.inner.committed_bytes(),
            offset,
            &self.inner.path,
            false,
        )
    }

    /// The frames committed so far, checksums verified.
    pub fn frames(&self) -> Frames<'_> {
        Frames::new(self.inner.committed_bytes(), &self.inner.path)
    }

    /// The segment's sequence number.
    pub fn sequence(&self) -> u64 {
        self.inner.header.sequence
    }

    /// The segment's kind.
    pub fn kind(&self) -> SegmentKind {
        self.inner.header.kind
    }

    /// The segment's file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Bytes of complete frames (header included) visible to readers now.
    pub fn committed(&self) -> u64 {
        self.inner.committed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_sync() {
        assert_send_sync::<SharedSegment>();
        fn assert_send<T: Send>() {}
        assert_send::<SegmentWriter>();
    }

    #[test]
    fn create_refuses_existing_file_and_bad_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.seg");
        std::fs::write(&p, b"x").unwrap();
        let e = SegmentWriter::create(&p, SegmentKind::Packets, 0, 4096).unwrap_err();
        assert!(e.to_string().contains("creating segment"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"x", "existing file untouched");
        let q = dir.path().join("b.seg");
        let e = SegmentWriter::create(&q, SegmentKind::Packets, 0, 1000).unwrap_err();
        assert!(e.to_string().contains("multiple of 16"), "{e}");
        assert!(!q.exists());
    }

    #[test]
    fn empty_and_uncommitted_offsets_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(&dir.path().join("a.seg"), SegmentKind::Packets, 0, 4096)
            .unwrap();
        assert!(matches!(
            w.append(b""),
            Err(SegmentError::EmptyPayload { .. })
        ));
        let s = w.shared();
        assert!(matches!(s.payload(80), Err(SegmentError::BadOffset { .. })));
        let off = w.append(b"hello").unwrap().unwrap();
        assert_eq!(off, 80);
        assert_eq!(s.payload(off).unwrap(), b"hello");
        assert!(matches!(s.payload(96), Err(SegmentError::BadOffset { .. })));
        assert!(matches!(s.payload(81), Err(SegmentError::BadOffset { .. })));
        assert!(matches!(s.payload(64), Err(SegmentError::BadOffset { .. })));
    }
}
