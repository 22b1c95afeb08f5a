//! A snapshot directory: `manifest.json`, `packets/` and `rrpairs/` segment directories.
//!
//! The manifest is written last, so a directory without one is an import that did not finish;
//! a reader refuses a manifest of a format version it does not know.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tapline_segment::{Segment, SegmentError, SegmentKind, read_dir_segments};

use crate::record::ArchivedRRPair;
use crate::worker::WorkerStats;

/// Version of the snapshot layout, manifest and records this build writes and reads. Version 2
/// (record format 2) added the process of TLS plaintext pairs; a reader refuses any other.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 2;
const MANIFEST: &str = "manifest.json";

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The directory or a file in it could not be read or written.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// The output directory already holds a snapshot.
    #[error(
        "{0}: already holds a snapshot (manifest.json exists); choose another --out or remove it"
    )]
    Exists(PathBuf),
    /// The output path exists and is not an empty directory.
    #[error("{0}: exists and is not an empty directory")]
    NotEmpty(PathBuf),
    /// The path is not a snapshot.
    #[error("{0}: not a tapline snapshot (no manifest.json)")]
    Missing(PathBuf),
    /// The manifest does not parse.
    #[error("{0}: bad manifest: {1}")]
    BadManifest(PathBuf, String),
    /// The manifest is of a format version this build does not read.
    #[error(
        "{0}: snapshot format version {1}, this build reads version {SNAPSHOT_FORMAT_VERSION} only; {hint}",
        hint = if *.1 < SNAPSHOT_FORMAT_VERSION {
            "it was written by an older tapline: import or capture the traffic again with this one"
        } else {
            "it was written by a newer tapline: read it with that version"
        }
    )]
    Version(PathBuf, u32),
    /// A segment is unreadable or corrupt.
    #[error("{0}: {1}")]
    Segment(PathBuf, SegmentError),
    /// A frame holds something other than a valid RRPair record.
    #[error("{path}: frame at byte offset {offset} is not a valid RRPair record: {reason}")]
    BadRecord {
        /// The segment file.
        path: PathBuf,
        /// The frame's offset.
        offset: u64,
        /// What validation said.
        reason: String,
    },
}

/// The paths of a snapshot directory.
#[derive(Debug, Clone)]
pub struct SnapshotLayout {
    root: PathBuf,
}

impl SnapshotLayout {
    /// Creates a new snapshot directory (or takes an existing empty one).
    ///
    /// # Errors
    /// When the path already holds a snapshot or other files, or cannot be created.
    pub fn create(root: &Path) -> Result<Self, SnapshotError> {
        if root.join(MANIFEST).exists() {
            return Err(SnapshotError::Exists(root.to_path_buf()));
        }
        if root.exists() {
            let mut entries =
                fs::read_dir(root).map_err(|e| SnapshotError::Io(root.to_path_buf(), e))?;
            if entries.next().is_some() {
                return Err(SnapshotError::NotEmpty(root.to_path_buf()));
            }
        }
        let layout = SnapshotLayout {
            root: root.to_path_buf(),
        };
        for dir in [layout.packets_dir(), layout.rrpairs_dir()] {
            fs::create_dir_all(&dir).map_err(|e| SnapshotError::Io(dir.clone(), e))?;
        }
        Ok(layout)
    }

    /// Where packet segments go.
    pub fn packets_dir(&self) -> PathBuf {
        self.root.join("packets")
    }

    /// Where RRPair segments go.
    pub fn rrpairs_dir(&self) -> PathBuf {
        self.root.join("rrpairs")
    }

    /// Writes the manifest (atomically: a temporary file renamed into place).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write_manifest(&self, manifest: &Manifest) -> Result<(), SnapshotError> {
        let path = self.root.join(MANIFEST);
        let tmp = self.root.join("manifest.json.tmp");
        let text = serde_json::to_vec_pretty(manifest)
            .map_err(|e| SnapshotError::BadManifest(path.clone(), e.to_string()))?;
        fs::write(&tmp, text).map_err(|e| SnapshotError::Io(tmp.clone(), e))?;
        fs::rename(&tmp, &path).map_err(|e| SnapshotError::Io(path.clone(), e))
    }
}

/// Where a snapshot's traffic came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Source {
    /// `import` or `capture`.
    pub kind: String,
    /// The imported file or the captured interface.
    pub path: String,
}

/// First and last capture time of a snapshot.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TimeRange {
    /// Earliest packet time, ns since the Unix epoch (0 when empty).
    pub first_ns: u64,
    /// Latest packet time.
    pub last_ns: u64,
}

impl TimeRange {
    /// Widens the range to include `ts_ns`.
    pub fn include(&mut self, ts_ns: u64) {
        if self.first_ns == 0 || ts_ns < self.first_ns {
            self.first_ns = ts_ns;
        }
        self.last_ns = self.last_ns.max(ts_ns);
    }
}

/// Counters of a snapshot, written to its manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    /// Network packets read (TLS plaintext chunks are counted in `tls_chunks`).
    pub packets: u64,
    /// Captured bytes of those packets.
    pub bytes: u64,
    /// TCP segments among them.
    pub tcp_segments: u64,
    /// Packets that were not TCP over IP.
    pub non_tcp: u64,
    /// IP fragments (not reassembled).
    pub ip_fragments: u64,
    /// Packets of link types tapline does not decode.
    pub unsupported_link: u64,
    /// Packets cut or malformed before their TCP header.
    pub malformed: u64,
    /// TCP connections seen.
    pub connections: u64,
    /// Connections whose bytes were not HTTP/1.
    pub non_http_connections: u64,
    /// RRPairs stored.
    pub rrpairs: u64,
    /// RRPairs flagged incomplete.
    pub incomplete_rrpairs: u64,
    /// Out-of-order segments buffered by reassembly.
    pub out_of_order: u64,
    /// Retransmitted (duplicate) segments dropped by reassembly.
    pub retransmitted: u64,
    /// Overlapping segments whose bytes disagreed.
    pub conflicting_overlaps: u64,
    /// Holes in streams that were never filled.
    pub gaps: u64,
    /// Bytes lost in those holes.
    pub gap_bytes: u64,
    /// Flows (TCP connections and TLS plaintext streams) evicted because their table was full.
    pub evicted_flows: u64,
    /// Flows (TCP connections and TLS plaintext streams) closed after being idle.
    pub idle_timeouts: u64,
    /// Times a reassembly buffer limit was reached.
    pub buffer_overflows: u64,
    /// Segments after RST or FIN, ignored.
    pub after_close: u64,
    /// Packet segment files.
    pub packet_segments: u64,
    /// RRPair segment files.
    pub rrpair_segments: u64,
    /// TLS plaintext chunks read (stored with the packets).
    pub tls_chunks: u64,
    /// Plaintext bytes in those chunks.
    pub tls_plaintext_bytes: u64,
    /// Plaintext bytes the kernel could not copy (the pairs they fell in are flagged `gap`).
    pub tls_lost_bytes: u64,
    /// Frames of the TLS link type that were not valid chunks.
    pub tls_bad_chunks: u64,
    /// TLS plaintext streams parsed (one per connection, seen from one of its processes).
    pub tls_streams: u64,
    /// TLS plaintext streams whose bytes were not HTTP/1.
    pub tls_non_http_streams: u64,
    /// Chunks of a connection's second view, when both its ends were captured: not parsed.
    pub tls_duplicate_chunks: u64,
    /// Plaintext bytes of those chunks.
    pub tls_duplicate_bytes: u64,
    /// TCP segments with payload of connections whose plaintext was captured: stored, not
    /// parsed.
    pub tls_ciphertext_segments: u64,
    /// TCP connections that carried TLS (seen by their handshake or their captured plaintext):
    /// not parsed, and not counted in `non_http_connections`.
    pub tls_connections: u64,
    /// RRPairs the live pair tap refused (its queue was full).
    pub tap_dropped_pairs: u64,
}

impl Counts {
    /// Adds the workers' counters.
    pub fn absorb(&mut self, w: &WorkerStats) {
        let r = &w.reassembly;
        self.connections += w.connections;
        self.non_http_connections += w.non_http_connections;
        self.incomplete_rrpairs += w.incomplete_pairs;
        self.tls_streams += w.tls_streams;
        self.tls_non_http_streams += w.tls_non_http_streams;
        self.tls_duplicate_chunks += w.tls_duplicate_chunks;
        self.tls_duplicate_bytes += w.tls_duplicate_bytes;
        self.tls_ciphertext_segments += w.tls_ciphertext_segments;
        self.tls_connections += w.tls_connections;
        self.idle_timeouts += w.tls_idle_timeouts;
        self.evicted_flows += w.tls_evicted_streams;
        self.out_of_order += r.out_of_order;
        self.retransmitted += r.retransmitted;
        self.conflicting_overlaps += r.conflicting_overlaps;
        self.gaps += r.gaps;
        self.gap_bytes += r.gap_bytes;
        self.evicted_flows += r.evicted_flows;
        self.idle_timeouts += r.idle_timeouts;
        self.buffer_overflows += r.buffer_overflows;
        self.after_close += r.after_close;
    }
}

/// `manifest.json`: what a snapshot holds and where it came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// Snapshot format version ([`SNAPSHOT_FORMAT_VERSION`]).
    pub format_version: u32,
    /// Version of the tapline that wrote it.
    pub tapline_version: String,
    /// Where the traffic came from.
    pub source: Source,
    /// When the snapshot was written (RFC 3339).
    pub created: String,
    /// Capture time range.
    pub time_range: TimeRange,
    /// First packet time (RFC 3339), for people.
    pub first: String,
    /// Last packet time (RFC 3339), for people.
    pub last: String,
    /// Counters.
    pub counts: Counts,
    /// Reassembly workers used.
    pub workers: usize,
    /// Why reading the input stopped early, when it did.
    pub input_error: Option<String>,
}

impl Manifest {
    /// Builds a manifest of the current format version.
    pub fn new(
        source: Source,
        time_range: TimeRange,
        counts: Counts,
        workers: usize,
        input_error: Option<String>,
    ) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
        Manifest {
            format_version: SNAPSHOT_FORMAT_VERSION,
            tapline_version: env!("CARGO_PKG_VERSION").into(),
            source,
            created: crate::view::rfc3339(now),
            time_range,
            first: crate::view::rfc3339(time_range.first_ns),
            last: crate::view::rfc3339(time_range.last_ns),
            counts,
            workers,
            input_error,
        }
    }
}

/// A snapshot opened for reading: its manifest and its RRPair segments, mapped.
#[derive(Debug)]
pub struct Snapshot {
    root: PathBuf,
    manifest: Manifest,
    segments: Vec<(PathBuf, Segment)>,
}

impl Snapshot {
    /// Opens a snapshot directory.
    ///
    /// # Errors
    /// When it is missing, has no manifest, is of an unknown version, or a segment cannot be
    /// opened.
    pub fn open(root: &Path) -> Result<Self, SnapshotError> {
        let path = root.join(MANIFEST);
        if !root.is_dir() {
            return Err(SnapshotError::Io(
                root.to_path_buf(),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such snapshot directory"),
            ));
        }
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SnapshotError::Missing(root.to_path_buf()));
            }
            Err(e) => return Err(SnapshotError::Io(path, e)),
        };
        let value: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| SnapshotError::BadManifest(path.clone(), e.to_string()))?;
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| SnapshotError::BadManifest(path.clone(), "no format_version".into()))?;
        if version != u64::from(SNAPSHOT_FORMAT_VERSION) {
            return Err(SnapshotError::Version(
                path,
                u32::try_from(version).unwrap_or(u32::MAX),
            ));
        }
        let manifest: Manifest = serde_json::from_value(value)
            .map_err(|e| SnapshotError::BadManifest(path.clone(), e.to_string()))?;
        let dir = root.join("rrpairs");
        let files = read_dir_segments(&dir, SegmentKind::RRPairs)
            .map_err(|e| SnapshotError::Segment(dir.clone(), e))?;
        let mut segments = Vec::with_capacity(files.len());
        for file in files {
            let segment =
                Segment::open(&file).map_err(|e| SnapshotError::Segment(file.clone(), e))?;
            segments.push((file, segment));
        }
        Ok(Snapshot {
            root: root.to_path_buf(),
            manifest,
            segments,
        })
    }

    /// The snapshot's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Every readable RRPair, validated, in storage order; `on_error` hears of each corrupt
    /// frame or record (reading goes on with the next segment).
    pub fn pairs(&self, on_error: &mut dyn FnMut(SnapshotError)) -> Vec<&ArchivedRRPair> {
        let mut out = Vec::new();
        for (path, segment) in &self.segments {
            for frame in segment.frames() {
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(e) => {
                        on_error(SnapshotError::Segment(path.clone(), e));
                        break;
                    }
                };
                match rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(frame.payload) {
                    Ok(pair) => out.push(pair),
                    Err(e) => on_error(SnapshotError::BadRecord {
                        path: path.clone(),
                        offset: frame.offset,
                        reason: e.to_string(),
                    }),
                }
            }
        }
        out
    }

    /// Every readable RRPair sorted by start time (pipelined requests of one connection in their
    /// order on the wire), then id: the order `inspect` shows.
    pub fn pairs_sorted(&self, on_error: &mut dyn FnMut(SnapshotError)) -> Vec<&ArchivedRRPair> {
        let mut pairs = self.pairs(on_error);
        pairs.sort_by_key(|p| {
            (
                p.start_ns.to_native(),
                p.conn_start_ns.to_native(),
                p.index_in_conn.to_native(),
                p.id.to_native(),
            )
        });
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_with_version(dir: &Path, version: u32) {
        let layout = SnapshotLayout::create(dir).unwrap();
        let mut manifest = Manifest::new(
            Source {
                kind: "import".into(),
                path: "x.pcap".into(),
            },
            TimeRange::default(),
            Counts::default(),
            1,
            None,
        );
        manifest.format_version = version;
        layout.write_manifest(&manifest).unwrap();
    }

    #[test]
    fn snapshots_of_other_versions_are_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old");
        manifest_with_version(&old, 1);
        let err = Snapshot::open(&old).unwrap_err().to_string();
        assert!(
            err.contains("snapshot format version 1, this build reads version 2 only")
                && err.contains("older tapline: import or capture the traffic again"),
            "{err}"
        );
        let new = dir.path().join("new");
        manifest_with_version(&new, 3);
        let err = Snapshot::open(&new).unwrap_err().to_string();
        assert!(err.contains("written by a newer tapline"), "{err}");
        let current = dir.path().join("current");
        manifest_with_version(&current, SNAPSHOT_FORMAT_VERSION);
        let snap = Snapshot::open(&current).unwrap();
        assert_eq!(snap.manifest().counts.tls_chunks, 0);
        assert!(snap.pairs(&mut |e| panic!("{e}")).is_empty());
    }
}
