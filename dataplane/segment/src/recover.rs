//! Crash recovery: cut a segment back to its last good frame.
//!
//! A writer that stops without sealing leaves a file that ends after the last frame it wrote
//! (with disk blocks allocated past the end, up to its capacity), or, if it died mid-write, a
//! torn last frame; a writer that set the file's length to its capacity up front leaves a zero
//! tail. `recover` scans the frames, keeps every good one and truncates the rest (giving back
//! blocks allocated past the end), so that the file reads cleanly and ends where a sealed
//! segment would.

use std::fs::OpenOptions;
use std::path::Path;

use memmap2::Mmap;

use crate::SegmentError;
use crate::format::SegmentHeader;
use crate::reader::Frames;

/// What [`recover`] kept and cut.
#[derive(Debug)]
pub struct Recovery {
    /// Frames that passed every check and were kept.
    pub good_frames: u64,
    /// Length of the file after recovery: the header and the good frames.
    pub good_bytes: u64,
    /// Bytes cut from the end: a torn or corrupt frame and everything after it, or the unused
    /// zero tail of a segment that was never sealed.
    pub truncated_bytes: u64,
    /// The damage that stopped the scan (it names the offset), or `None` when the frames ended
    /// cleanly and only an unused tail (if any) was cut.
    pub damage: Option<SegmentError>,
}

/// Scans the segment at `path` and truncates a torn or corrupt tail so the file ends at the last
/// good frame (which also frees disk blocks allocated past the end); reports what was kept and
/// cut.
///
/// Run it only on a segment no writer has open (after a crash, or on a copy).
///
/// # Errors
///
/// [`SegmentError::Io`] when the file cannot be opened, mapped or truncated, and the header
/// errors of [`Segment::open`](crate::Segment::open): a file without a valid header is not
/// recovered (nothing in it can be trusted).
pub fn recover(path: &Path) -> Result<Recovery, SegmentError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| SegmentError::io(path, "opening segment for recovery", e))?;
    let (len, good_frames, good_bytes, damage) = {
        // SAFETY: read-only mapping dropped before the file is truncated below; the caller
        // guarantees no writer is using the file (see the doc).
        let map = unsafe { Mmap::map(&file) }
            .map_err(|e| SegmentError::io(path, "mapping segment", e))?;
        SegmentHeader::decode(&map, path)?;
        let mut frames = Frames::new(&map, path);
        let mut good_frames = 0u64;
        let mut damage = None;
        for frame in frames.by_ref() {
            match frame {
                Ok(_) => good_frames += 1,
                Err(e) => damage = Some(e),
            }
        }
        (map.len() as u64, good_frames, frames.position(), damage)
    };
    let truncated_bytes = len - good_bytes;
    // Even at the same length: that gives back disk blocks a writer that stopped without
    // sealing had allocated past the end of the file.
    file.set_len(good_bytes)
        .map_err(|e| SegmentError::io(path, "truncating damaged tail", e))?;
    if truncated_bytes > 0 {
        file.sync_all()
            .map_err(|e| SegmentError::io(path, "syncing recovered segment", e))?;
    }
    Ok(Recovery {
        good_frames,
        good_bytes,
        truncated_bytes,
        damage,
    })
}
