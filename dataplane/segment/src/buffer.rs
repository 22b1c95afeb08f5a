//! The writer's staging buffer and the system calls that move it into the file.
//!
//! A [`SegmentWriter`](crate::SegmentWriter) builds frames in a reused, 16-byte-aligned heap
//! buffer and writes them to the file with `pwrite`: the kernel copies whole runs of bytes into
//! the page cache, so a fresh page is filled by the copy instead of being zero-filled first (as a
//! store through a mapping of a new or preallocated file makes it).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Bytes staged before the writer writes them out, unless a frame needs more. Measured with
/// `examples/append_cpu.rs` (Linux 6.18, ext4): CPU per byte falls as writes grow from 64 KiB to
/// 1 MiB, for 200-byte and 64 KiB frames alike. (Writing large payloads straight from the
/// caller's slice, one `pwritev` per frame, cost more than copying them into this buffer.)
pub(crate) const STAGE_LEN: usize = 1 << 20;

/// Sixteen bytes aligned to 16: the unit of the buffer, so that its start is 16-byte aligned.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Block([u8; 16]);

/// A heap buffer whose first byte is 16-byte aligned.
pub(crate) struct StageBuf {
    blocks: Vec<Block>,
}

impl StageBuf {
    /// A zeroed buffer of `len` bytes rounded up to a multiple of 16.
    pub(crate) fn new(len: usize) -> Self {
        Self {
            blocks: vec![Block([0; 16]); len.div_ceil(16)],
        }
    }

    /// An empty buffer, allocating nothing.
    pub(crate) fn empty() -> Self {
        Self { blocks: Vec::new() }
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.blocks.len() * 16
    }

    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `Block` is 16 plain bytes with no padding, so the vector's buffer is
        // `blocks.len() * 16` initialised bytes, borrowed for as long as `self` is.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr().cast::<u8>(), self.len()) }
    }

    /// The bytes, writable.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len();
        // SAFETY: as in `bytes`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr().cast::<u8>(), len) }
    }

    /// Makes an empty buffer hold a frame of `size` bytes: grown to it when larger than
    /// [`STAGE_LEN`], back to `STAGE_LEN` when it was grown before (contents are not kept).
    pub(crate) fn fit(&mut self, size: usize) {
        let want = size.max(STAGE_LEN);
        if self.len() < size || self.len() > want {
            *self = Self::new(want);
        }
    }
}

/// Writes all of `bytes` at `offset` of `file` (`pwrite`, retried after a short write).
pub(crate) fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    file.write_all_at(bytes, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_sized() {
        let mut b = StageBuf::new(100);
        assert_eq!(b.len(), 112);
        assert_eq!(b.bytes().as_ptr() as usize % 16, 0);
        b.bytes_mut()[111] = 7;
        b.fit(50);
        assert_eq!(b.bytes()[111], 7, "no change when large enough");
        b.fit(STAGE_LEN + 1);
        assert_eq!(b.len(), STAGE_LEN + 16);
        b.fit(10);
        assert_eq!(b.len(), STAGE_LEN);
        let mut e = StageBuf::empty();
        assert_eq!(e.len(), 0);
        e.fit(1);
        assert_eq!(e.len(), STAGE_LEN);
    }

    #[test]
    fn writes_land_at_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("f"))
            .unwrap();
        write_all_at(&f, b"0123", 0).unwrap();
        write_all_at(&f, b"abcde", 4).unwrap();
        write_all_at(&f, b"X", 1).unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"0X23abcde");
    }
}
