//! The background half of a directory writer: preparing the next segment and sealing the last.
//!
//! Creating a segment (allocating and prefaulting 64 MiB) and sealing one (flushing it to disk)
//! each take tens of milliseconds, most of it in the kernel. A [`SegmentDirWriter`] hands both
//! to short-lived threads so that the thread appending only copies bytes: the next segment is
//! prepared while the current one fills, and the full one is sealed while the next one fills.
//! At most one of each is in flight.
//!
//! [`SegmentDirWriter`]: crate::SegmentDirWriter

use std::io;
use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};

use crate::SegmentError;
use crate::format::SegmentKind;
use crate::writer::SegmentWriter;

type Job<T> = (PathBuf, JoinHandle<Result<T, SegmentError>>);

/// Background jobs of one directory writer. Dropping it waits for them and deletes a prepared
/// segment that was never used.
#[derive(Debug, Default)]
pub(crate) struct Background {
    next: Option<Job<SegmentWriter>>,
    sealing: Option<Job<PathBuf>>,
}

impl Background {
    /// Starts creating and prefaulting segment `sequence` at `path`; if no thread can be
    /// started, nothing is prepared and the roll-over creates the segment itself.
    pub(crate) fn prepare(
        &mut self,
        path: PathBuf,
        kind: SegmentKind,
        sequence: u64,
        capacity: u64,
    ) {
        if self.next.is_some() {
            return;
        }
        let job_path = path.clone();
        let spawned = thread::Builder::new()
            .name(format!("seg-prepare-{sequence}"))
            .spawn(move || {
                let mut w = SegmentWriter::create(&job_path, kind, sequence, capacity)?;
                w.prefault()?;
                Ok(w)
            });
        if let Ok(handle) = spawned {
            self.next = Some((path, handle));
        }
    }

    /// The prepared segment, waiting for it; `None` when none was started.
    pub(crate) fn take_next(&mut self) -> Option<Result<SegmentWriter, SegmentError>> {
        self.next.take().map(|(path, h)| join(&path, h))
    }

    /// Waits for the previous seal (returning its error) and starts sealing `full`.
    pub(crate) fn seal(&mut self, full: SegmentWriter) -> Result<(), SegmentError> {
        self.wait_sealed()?;
        let path = full.path().to_path_buf();
        let handle = thread::Builder::new()
            .name(format!("seg-seal-{}", full.header().sequence))
            .spawn(move || full.seal())
            .map_err(|e| SegmentError::io(&path, "starting the sealing thread", e))?;
        self.sealing = Some((path, handle));
        Ok(())
    }

    /// Waits for the segment being sealed, if any.
    pub(crate) fn wait_sealed(&mut self) -> Result<(), SegmentError> {
        match self.sealing.take() {
            Some((path, h)) => join(&path, h).map(drop),
            None => Ok(()),
        }
    }

    /// Waits for a prepared segment that will not be used and deletes it.
    pub(crate) fn discard_next(&mut self) {
        if let Some((path, h)) = self.next.take() {
            // Whether it was created or failed, its file must not stay behind as a segment.
            if let Ok(w) = join(&path, h) {
                drop(w);
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.discard_next();
        let _ = self.wait_sealed();
    }
}

fn join<T>(path: &Path, h: JoinHandle<Result<T, SegmentError>>) -> Result<T, SegmentError> {
    h.join().unwrap_or_else(|_| {
        Err(SegmentError::io(
            path,
            "segment background thread",
            io::Error::other("panicked"),
        ))
    })
}
