//! Writing one segment: frames are built in a staging buffer and written to the file with
//! `pwrite`; readers map the file read-only.
//!
//! # Why not write through a mapping
//!
//! A store into a mapped page of a new (or preallocated) file first makes the kernel read the
//! page, which for a hole or an unwritten extent means zero-filling it, and then marks it dirty:
//! every byte is written twice, once as a zero. A `pwrite` hands the kernel the final bytes at
//! once (it zero-fills nothing it is about to overwrite), one large write per megabyte or per
//! [`publish`](SegmentWriter::publish), and sealing is a plain write of what is left, plus an
//! `fsync` only when [`Durability::Sync`] asks for it.
//!
//! The file's disk blocks are allocated for the whole capacity at creation without changing its
//! length (`fallocate` with `FALLOC_FL_KEEP_SIZE`): a full disk shows at creation, and ext4
//! spends less per page on writes into blocks it has already allocated. The length grows as the
//! frames are written; sealing (or dropping the writer) truncates the file to that same length,
//! which gives back the blocks past it.
//!
//! # Safety argument for concurrent readers
//!
//! Each segment has one read-only, shared mapping of the file, `capacity` bytes long, shared by
//! the writer and every [`SharedSegment`] through an `Arc`; the writer never writes through it.
//! The writer keeps a `committed` watermark (an `AtomicU64`): the number of bytes written to the
//! file, always the end of a complete frame. Every byte below it is in the file (so the mapping
//! is backed there, and reading it cannot fault with `SIGBUS`) and is never written again: the
//! writer only writes at and above the watermark and then raises it with a `Release` store, after
//! the write returned. A reader loads the watermark with `Acquire` and builds slices only of bytes
//! below it. The page cache is coherent with shared mappings, so those bytes are the ones
//! written, however the caller passed the offset across threads. Offsets the writer has not yet
//! written are refused with [`SegmentError::BadOffset`], never read.
//!
//! The file is never cut below the watermark (sealing truncates it to the length it already
//! has), so the mapping's bytes below the watermark stay valid after sealing too, and deleting
//! the file (retention) leaves existing mappings intact.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use memmap2::{MmapOptions, MmapRaw};

use crate::SegmentError;
use crate::buffer::{STAGE_LEN, StageBuf, write_all_at};
use crate::format::{
    FRAME_HEADER_LEN, FrameHeader, HEADER_LEN, SegmentHeader, SegmentKind, check_capacity,
    frame_size, max_payload,
};
use crate::reader::{Frames, payload_at};

/// What sealing a segment guarantees about the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// Sealing writes what is left to the file and leaves writing back to the kernel (which
    /// does it within seconds): a process crash loses nothing written, a machine crash may lose
    /// the last seconds. The fastest; for imports, which can be run again.
    #[default]
    Flush,
    /// Sealing also `fsync`s the file, so a sealed segment survives a machine crash.
    Sync,
}

/// State shared by a writer and its readers.
///
/// Aligned to a cache line so that the `Arc`'s reference counts, which the writer's thread bumps
/// for every [`FrameRef`](crate::FrameRef) it hands out, do not share a line with the fields
/// readers on other threads load for every payload.
#[repr(align(64))]
struct Inner {
    /// Read-only, shared, `capacity` bytes; backed by the file only below `committed`.
    map: MmapRaw,
    path: PathBuf,
    header: SegmentHeader,
    /// Bytes of the file (header included) written, all of them complete frames; never
    /// decreases. Readers see exactly these.
    committed: AtomicU64,
}

impl Inner {
    /// The committed prefix of the mapping.
    fn committed_bytes(&self) -> &[u8] {
        let len = self.committed.load(Ordering::Acquire);
        // SAFETY: `len` never exceeds the mapping's length (the capacity; appends check) nor
        // the file's length (every byte below it was written); the mapping lives as long as
        // `self`, and bytes below the watermark are never written again (module doc), so a
        // shared slice of them is sound for as long as `self` is borrowed.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), len as usize) }
    }
}

/// Appends frames to one new segment file of fixed capacity.
///
/// An append copies the frame into a staging buffer (a memcpy and a crc32c, no allocation, no
/// system call); when the buffer is full, at [`publish`](Self::publish) and at
/// [`seal`](Self::seal) its contents are written to the file with one `pwrite`, and become
/// readable through [`SharedSegment`].
///
/// Dropping the writer without sealing writes out what is buffered (errors ignored) and leaves
/// the file unsealed; a process that dies loses what was buffered, at most 1 MiB.
pub struct SegmentWriter {
    inner: Arc<Inner>,
    file: File,
    /// The bytes `[written, used)` of the file, from index 0.
    buf: StageBuf,
    /// Bytes in the file: the committed watermark.
    written: u64,
    /// Bytes appended: the file's length once the buffer is written.
    used: u64,
    capacity: u64,
    frames: u64,
    durability: Durability,
    /// A write failed part-way: the file may hold bytes past `used`, cut at sealing.
    torn_tail: bool,
    /// Disk blocks were allocated past the end of the file, to be given back at sealing.
    preallocated: bool,
}

impl fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("path", &self.inner.path)
            .field("header", &self.inner.header)
            .field("used", &self.used)
            .field("written", &self.written)
            .field("frames", &self.frames)
            .field("durability", &self.durability)
            .finish()
    }
}

impl SegmentWriter {
    /// Creates the file at `path` (which must not exist), allocates disk blocks for `capacity`
    /// bytes (where the file system can; its length stays that of the header), writes the
    /// header and maps the file for readers.
    ///
    /// # Errors
    ///
    /// [`SegmentError::InvalidCapacity`] when `capacity` is under 96 bytes or not a multiple of
    /// 16; [`SegmentError::Io`] when the file exists or cannot be created, allocated (a full
    /// disk), written or mapped.
    pub fn create(
        path: &Path,
        kind: SegmentKind,
        sequence: u64,
        capacity: u64,
    ) -> Result<Self, SegmentError> {
        Self::create_with(path, kind, sequence, capacity, StageBuf::new(STAGE_LEN))
    }

    /// [`create`](Self::create) reusing a staging buffer (see [`take_buffer`](Self::take_buffer)).
    pub(crate) fn create_with(
        path: &Path,
        kind: SegmentKind,
        sequence: u64,
        capacity: u64,
        buf: StageBuf,
    ) -> Result<Self, SegmentError> {
        check_capacity(capacity, path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| SegmentError::io(path, "creating segment", e))?;
        match Self::init(file, path, kind, sequence, capacity, buf) {
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
        buf: StageBuf,
    ) -> Result<Self, SegmentError> {
        let len = usize::try_from(capacity).map_err(|_| SegmentError::InvalidCapacity {
            path: path.to_path_buf(),
            capacity,
            expected: "addressable on this machine",
        })?;
        let created_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let header = SegmentHeader {
            kind,
            sequence,
            created_ns,
            capacity,
        };
        let preallocated = allocate_ahead(&file, capacity)
            .map_err(|e| SegmentError::io(path, "allocating segment", e))?;
        // The header goes to the file at once, so that the file is a valid (empty) segment from
        // the start, whatever happens to the process.
        write_all_at(&file, &header.encode(), 0)
            .map_err(|e| SegmentError::io(path, "writing segment header", e))?;
        // Only bytes below the watermark are ever read, and they are in the file by then; the
        // rest of the mapping is address space only.
        let map = MmapOptions::new()
            .len(len)
            .map_raw_read_only(&file)
            .map_err(|e| SegmentError::io(path, "mapping segment", e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                map,
                path: path.to_path_buf(),
                header,
                committed: AtomicU64::new(HEADER_LEN),
            }),
            file,
            buf,
            written: HEADER_LEN,
            used: HEADER_LEN,
            capacity,
            frames: 0,
            durability: Durability::default(),
            torn_tail: false,
            preallocated,
        })
    }

    /// Appends one frame holding `payload`.
    ///
    /// Returns `Ok(Some(offset))`, the offset of the payload in the file (16-byte aligned), or
    /// `Ok(None)` when the frame does not fit in the space left (the caller rolls over to a new
    /// segment). The frame is readable through [`SharedSegment`] after the next
    /// [`publish`](Self::publish), or earlier if the buffer fills first.
    ///
    /// # Errors
    ///
    /// [`SegmentError::EmptyPayload`] for an empty payload (a zero length marks the end),
    /// [`SegmentError::PayloadTooLarge`] for one over 4 GiB − 1 (the frame length is a u32), and
    /// [`SegmentError::Io`] when writing out the full buffer fails (the frame is not appended
    /// then; appending again retries the write).
    #[inline]
    pub fn append(&mut self, payload: &[u8]) -> Result<Option<u64>, SegmentError> {
        self.append_with(payload.len(), |dst| dst.copy_from_slice(payload))
    }

    /// Reserves a frame of `len` payload bytes in the staging buffer, lets `fill` write the
    /// payload in place (for zero-copy serialization), then computes its checksum and appends
    /// it. The slice given to `fill` starts at a 16-byte-aligned address.
    ///
    /// `fill` must write all `len` bytes: their contents before the call are unspecified (left
    /// over from earlier frames). `fill` is not called when the frame does not fit, in which case
    /// the result is `Ok(None)`; otherwise it is `Ok(Some(offset))` of the payload, readable
    /// after the next [`publish`](Self::publish).
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
        // At most the capacity, which `check_capacity` made addressable.
        let size = frame_size(len64) as usize;
        let mut pos = (self.used - self.written) as usize;
        if pos + size > self.buf.len() {
            self.make_room(size)?;
            pos = 0;
        }
        let frame = &mut self.buf.bytes_mut()[pos..pos + size];
        let (head, rest) = frame.split_at_mut(FRAME_HEADER_LEN as usize);
        let (payload, padding) = rest.split_at_mut(len);
        fill(payload);
        let crc = crc32c::crc32c(payload);
        padding.fill(0);
        head.copy_from_slice(&FrameHeader::encode(len as u32, crc));
        let payload_at = self.used + FRAME_HEADER_LEN;
        self.used += size as u64;
        self.frames += 1;
        Ok(Some(payload_at))
    }

    /// Writes out the buffer and makes it hold at least `size` bytes.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, size: usize) -> Result<(), SegmentError> {
        self.publish()?;
        self.buf.fit(size);
        Ok(())
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

    /// Writes everything appended so far to the file and makes it readable through every
    /// [`SharedSegment`] of this segment (and to anyone who opens the file). One `pwrite` when
    /// something is buffered, nothing otherwise. This is what a caller does before it hands
    /// offsets returned by appends to another thread.
    ///
    /// # Errors
    ///
    /// [`SegmentError::Io`] when the write fails (a full disk): nothing new becomes readable, the
    /// frames stay buffered, and a later `publish` tries again.
    pub fn publish(&mut self) -> Result<(), SegmentError> {
        let pending = (self.used - self.written) as usize;
        if pending == 0 {
            return Ok(());
        }
        if let Err(e) = write_all_at(&self.file, &self.buf.bytes()[..pending], self.written) {
            self.torn_tail = true;
            return Err(SegmentError::io(&self.inner.path, "writing segment", e));
        }
        self.written = self.used;
        self.inner.committed.store(self.written, Ordering::Release);
        Ok(())
    }

    /// Publishes, then hands over the staging buffer for the next segment's writer. Appends
    /// after this still work (they allocate a new buffer).
    pub(crate) fn take_buffer(&mut self) -> Result<StageBuf, SegmentError> {
        self.publish()?;
        Ok(std::mem::replace(&mut self.buf, StageBuf::empty()))
    }

    /// Chooses what [`seal`](Self::seal) guarantees; [`Durability::Flush`] unless set.
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    /// What [`seal`](Self::seal) will guarantee.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// A handle other threads use to read frames already published.
    pub fn shared(&self) -> SharedSegment {
        SharedSegment {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Bytes of the segment in use: the header and every frame appended, published or not.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Bytes appended but not yet written to the file (not yet readable).
    pub fn pending(&self) -> u64 {
        self.used - self.written
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

    /// Writes out what is buffered and, under [`Durability::Sync`], syncs the file to disk;
    /// returns its path. The file then ends right after its last frame. A sealed segment is
    /// never written again.
    ///
    /// [`SharedSegment`] handles stay valid after sealing.
    ///
    /// # Errors
    ///
    /// [`SegmentError::Io`] when writing, truncating a torn tail left by a failed write, or
    /// syncing fails.
    pub fn seal(mut self) -> Result<PathBuf, SegmentError> {
        self.publish()?;
        let path = self.inner.path.clone();
        self.trim()
            .map_err(|e| SegmentError::io(&path, "truncating sealed segment", e))?;
        if self.durability == Durability::Sync {
            self.file
                .sync_data()
                .map_err(|e| SegmentError::io(&path, "syncing sealed segment", e))?;
        }
        Ok(path)
    }
}

impl SegmentWriter {
    /// Cuts the file at `used`: drops what a failed write may have left after the last frame,
    /// and gives back the blocks allocated ahead past the end (a truncation to the same length
    /// does that on Linux).
    fn trim(&mut self) -> std::io::Result<()> {
        if self.torn_tail || self.preallocated {
            self.file.set_len(self.used)?;
            self.torn_tail = false;
            self.preallocated = false;
        }
        Ok(())
    }
}

impl Drop for SegmentWriter {
    /// Writes out what is buffered and gives back the blocks allocated ahead, so that a writer
    /// dropped without sealing leaves every frame it accepted in an (unsealed) file that ends
    /// after them. Errors cannot be reported here and are ignored.
    fn drop(&mut self) {
        if self.publish().is_ok() {
            let _ = self.trim();
        }
    }
}

/// Allocates disk blocks for the whole capacity without changing the file's length
/// (`fallocate` with `FALLOC_FL_KEEP_SIZE`): a full disk is reported when the segment is created
/// rather than in the middle of it, and writes then land in blocks already allocated, which costs
/// ext4 less per page than allocating them as it goes. Returns whether it did (file systems
/// without `fallocate` get nothing allocated ahead).
fn allocate_ahead(file: &File, capacity: u64) -> std::io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(capacity)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        loop {
            // SAFETY: plain system call on a valid, owned descriptor.
            let rc =
                unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, len) };
            if rc == 0 {
                return Ok(true);
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => return Ok(false),
                _ => return Err(e),
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, capacity);
        Ok(false)
    }
}

/// A cheap, cloneable (`Arc`) handle to a segment being written, for reading frames already
/// published ([`SegmentWriter::publish`]) from other threads, zero-copy from a shared read-only
/// mapping of the file. `Send + Sync`.
///
/// See the module doc for why this is sound: only bytes below the writer's committed watermark
/// (written to the file) are ever read, and those are never written again.
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
    /// The payload whose offset an append returned, once published.
    ///
    /// The frame is checked for shape (length, reserved bytes, padding) but its checksum is not
    /// recomputed: these bytes were written by this process and never change. As with
    /// [`Segment::payload`](crate::Segment::payload), an offset that did not come from an append
    /// may land inside another payload.
    ///
    /// # Errors
    ///
    /// [`SegmentError::BadOffset`] when `offset` is not the payload offset of a committed frame
    /// (misaligned, in the header, or not yet published), [`SegmentError::CorruptFrame`] or
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

    /// The frames published so far, checksums verified.
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
mod tests;
