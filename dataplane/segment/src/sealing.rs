//! Sealing full segments of a directory writer, on a background thread when it waits for the
//! disk.
//!
//! Under [`Durability::Sync`] sealing a 64 MiB segment `fsync`s it: tens of milliseconds, most of
//! it the kernel writing pages back and waiting for the disk. A [`SegmentDirWriter`] hands that to
//! a short-lived thread so that the appending thread goes on; at most one is in flight. Under
//! [`Durability::Flush`] the roll-over has already written the segment out, and sealing is done
//! in place (it has nothing left to do).
//!
//! [`SegmentDirWriter`]: crate::SegmentDirWriter

use std::io;
use std::path::PathBuf;
use std::thread::{self, JoinHandle};

use crate::SegmentError;
use crate::writer::{Durability, SegmentWriter};

/// The seal in flight, if any. Dropping it waits for that seal.
#[derive(Debug, Default)]
pub(crate) struct Sealer {
    sealing: Option<(PathBuf, JoinHandle<Result<PathBuf, SegmentError>>)>,
}

impl Sealer {
    /// Waits for the previous seal (returning its error) and seals `full`, in the background
    /// under [`Durability::Sync`].
    pub(crate) fn seal(&mut self, full: SegmentWriter) -> Result<(), SegmentError> {
        self.wait()?;
        if full.durability() == Durability::Flush {
            return full.seal().map(drop);
        }
        let path = full.path().to_path_buf();
        let handle = thread::Builder::new()
            .name(format!("seg-seal-{}", full.header().sequence))
            .spawn(move || full.seal())
            .map_err(|e| SegmentError::io(&path, "starting the sealing thread", e))?;
        self.sealing = Some((path, handle));
        Ok(())
    }

    /// Waits for the segment being sealed, if any.
    pub(crate) fn wait(&mut self) -> Result<(), SegmentError> {
        let Some((path, handle)) = self.sealing.take() else {
            return Ok(());
        };
        match handle.join() {
            Ok(sealed) => sealed.map(drop),
            Err(_) => Err(SegmentError::io(
                path,
                "segment sealing thread",
                io::Error::other("panicked"),
            )),
        }
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}
