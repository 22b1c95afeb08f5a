//! Importing a capture file into a snapshot through the packet [`Pipeline`]: the dispatcher
//! stores packets in packet segments and shards TCP flows by a direction-independent hash over
//! bounded queues to the reassembly workers; a writer thread stores the RRPairs they produce and
//! hands them to a live pair tap when there is one.
//!
//! TLS plaintext chunks (frames of link type [`crate::tls_chunk::LINKTYPE_TAPLINE_TLS`]) take the
//! same way: stored with the packets, and sharded by their endpoints so that they meet the
//! ciphertext packets of their connection in one worker.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use crossbeam_channel::{Sender, bounded};
use rkyv::util::AlignedVec;
use tapline_http1::Http1Config;
use tapline_reassembly::ReassemblyConfig;
use tapline_segment::{Retention, SegmentDirWriter, SegmentKind};

use crate::capture::{CaptureError, CaptureFile, RawPacket};
use crate::packet::{Decoded, decode};
use crate::record::Packet;
use crate::snapshot::{Counts, Manifest, SnapshotError, SnapshotLayout, Source, TimeRange};
use crate::tls_chunk::LINKTYPE_TAPLINE_TLS;
use crate::worker::{self, Batch, PairBatch, RefKind, SegmentRef, WorkerStats};

/// Packets the dispatcher collects for one worker before sending them.
const DISPATCH_BATCH: usize = 512;
/// Batches queued per worker before the dispatcher waits (bounded memory).
const QUEUE_DEPTH: usize = 64;

/// Settings of one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Reassembly workers (at least 1).
    pub workers: usize,
    /// Capacity of each segment file in bytes.
    pub segment_capacity: u64,
    /// Reassembly limits (the flow table limit is split among the workers).
    pub reassembly: ReassemblyConfig,
    /// HTTP/1 parser limits.
    pub http: Http1Config,
    /// A live pair tap (`tapline mirror`): each batch of RRPairs, once stored, is offered to it
    /// with `try_send`, so a slow consumer never holds up the capture; what it refuses is
    /// counted ([`Pipeline::tap_dropped`], `tap_dropped_pairs` in the manifest).
    pub pair_tap: Option<Sender<PairBatch>>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            workers: thread::available_parallelism().map_or(1, |n| n.get()),
            segment_capacity: 64 * 1024 * 1024,
            reassembly: ReassemblyConfig::default(),
            http: Http1Config::default(),
            pair_tap: None,
        }
    }
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The capture file could not be opened at all.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The snapshot could not be created or written.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A thread of the pipeline died.
    #[error("import pipeline failed: {0}")]
    Pipeline(String),
}

/// What an import produced. `input_error` is set when the file ended badly: everything before
/// the bad record was imported and the snapshot is complete and readable.
#[derive(Debug)]
pub struct ImportSummary {
    /// The snapshot's manifest as written.
    pub manifest: Manifest,
    /// The error that stopped reading the input early, if any.
    pub input_error: Option<CaptureError>,
}

/// Imports `input` into a new snapshot directory `out`, calling `progress` with the bytes of
/// input consumed so far from time to time.
///
/// # Errors
/// When the input is not a readable capture or the snapshot cannot be written. An input that
/// turns bad part-way is not an error here: see [`ImportSummary::input_error`].
pub fn import(
    input: &Path,
    out: &Path,
    options: &ImportOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ImportSummary, ImportError> {
    let capture = CaptureFile::open(input)?;
    let mut packets = capture.packets()?;
    let mut pipeline = Pipeline::create(out, options)?;
    let mut input_error = None;
    let mut since_progress = 0u32;
    let total = capture.len();
    while let Some(next) = packets.next() {
        let raw = match next {
            Ok(raw) => raw,
            Err(e) => {
                input_error = Some(e);
                break;
            }
        };
        pipeline.packet(&raw)?;
        since_progress += 1;
        if since_progress == 65_536 {
            since_progress = 0;
            progress(packets.offset(), total);
        }
    }
    progress(packets.offset(), total);
    let source = Source {
        kind: "import".into(),
        path: input.display().to_string(),
    };
    let manifest = pipeline.finish(source, input_error.as_ref().map(|e| e.to_string()))?;
    Ok(ImportSummary {
        manifest,
        input_error,
    })
}

/// The packet pipeline behind a snapshot: packets go in one at a time (from a file or a live
/// capture), are stored in packet segments and dispatched to the reassembly workers, whose
/// pairs a writer thread stores. [`Pipeline::finish`] drains everything and writes the manifest.
#[derive(Debug)]
pub struct Pipeline {
    layout: SnapshotLayout,
    workers: usize,
    packet_store: SegmentDirWriter,
    dispatcher: Dispatcher,
    scratch: AlignedVec<16>,
    counts: Counts,
    range: TimeRange,
    handles: Vec<thread::JoinHandle<WorkerStats>>,
    writer: thread::JoinHandle<Result<PairSummary, ImportError>>,
    pairs_written: Arc<AtomicU64>,
    tap_dropped: Arc<AtomicU64>,
}

impl Pipeline {
    /// Creates the snapshot directory and starts the workers and the writer.
    ///
    /// # Errors
    /// When the snapshot cannot be created or a thread cannot be started.
    pub fn create(out: &Path, options: &ImportOptions) -> Result<Self, ImportError> {
        let layout = SnapshotLayout::create(out)?;
        let workers = options.workers.max(1);
        let needed = 2 * (options.http.max_body_bytes as u64 + options.http.max_head_bytes as u64)
            + (1 << 16);
        if options.segment_capacity < needed {
            return Err(ImportError::Pipeline(format!(
                "segment capacity {} bytes cannot hold the largest pair ({} bytes of head and body limits); raise segments.capacity or lower http.max_body_bytes",
                options.segment_capacity, needed
            )));
        }
        let packet_store = SegmentDirWriter::create(
            &layout.packets_dir(),
            SegmentKind::Packets,
            options.segment_capacity,
            Retention::default(),
        )
        .map_err(|e| SnapshotError::Segment(layout.packets_dir(), e))?;

        let (pair_tx, pair_rx) = bounded::<PairBatch>(QUEUE_DEPTH * workers);
        let pairs_dir = layout.rrpairs_dir();
        let capacity = options.segment_capacity;
        let pairs_written = Arc::new(AtomicU64::new(0));
        let tap_dropped = Arc::new(AtomicU64::new(0));
        let output = PairOutput {
            written: Arc::clone(&pairs_written),
            tap: options.pair_tap.clone(),
            tap_dropped: Arc::clone(&tap_dropped),
        };
        let writer = thread::Builder::new()
            .name("tapline-writer".into())
            .spawn(move || write_pairs(&pairs_dir, capacity, pair_rx, &output))
            .map_err(|e| ImportError::Pipeline(e.to_string()))?;

        let mut reassembly = options.reassembly;
        reassembly.max_flows = (reassembly.max_flows / workers).max(1024);
        reassembly.max_buffered_total = (reassembly.max_buffered_total / workers).max(1 << 20);
        let mut queues = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for n in 0..workers {
            let (tx, rx) = bounded::<Batch>(QUEUE_DEPTH);
            let out = pair_tx.clone();
            let (r, h) = (reassembly, options.http.clone());
            let handle = thread::Builder::new()
                .name(format!("tapline-worker-{n}"))
                .spawn(move || worker::run(rx, out, r, h))
                .map_err(|e| ImportError::Pipeline(e.to_string()))?;
            queues.push(tx);
            handles.push(handle);
        }
        Ok(Pipeline {
            layout,
            workers,
            packet_store,
            dispatcher: Dispatcher::new(queues),
            scratch: AlignedVec::new(),
            counts: Counts::default(),
            range: TimeRange::default(),
            handles,
            writer,
            pairs_written,
            tap_dropped,
        })
    }

    /// Stores one packet and routes it to its flow's worker.
    ///
    /// # Errors
    /// When the packet segments cannot be written.
    pub fn packet(&mut self, raw: &RawPacket<'_>) -> Result<(), ImportError> {
        self.dispatcher.packet(
            raw,
            &mut self.packet_store,
            &mut self.scratch,
            &mut self.counts,
            &mut self.range,
        )
    }

    /// Counters so far (packets, bytes, decode results; flow figures arrive at the end).
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Hands every packet dispatched so far to the workers now, without waiting for full
    /// batches: a live capture calls it when traffic is slow, so pairs appear as they happen.
    ///
    /// # Errors
    /// When the packet segments cannot be written.
    pub fn flush(&mut self) -> Result<(), ImportError> {
        self.packet_store
            .publish()
            .map_err(|e| SnapshotError::Segment(self.layout.packets_dir(), e))?;
        self.dispatcher.flush();
        Ok(())
    }

    /// RRPairs stored so far.
    pub fn pairs_written(&self) -> u64 {
        self.pairs_written.load(Ordering::Relaxed)
    }

    /// RRPairs the live pair tap refused so far (its queue was full or its receiver gone).
    pub fn tap_dropped(&self) -> u64 {
        self.tap_dropped.load(Ordering::Relaxed)
    }

    /// The snapshot directory's layout.
    pub fn layout(&self) -> &SnapshotLayout {
        &self.layout
    }

    /// Drains the workers, seals every segment and writes the manifest.
    ///
    /// # Errors
    /// When a thread died or the segments or manifest cannot be written.
    pub fn finish(
        self,
        source: Source,
        input_error: Option<String>,
    ) -> Result<Manifest, ImportError> {
        let Pipeline {
            layout,
            workers,
            mut packet_store,
            dispatcher,
            mut counts,
            range,
            handles,
            writer,
            tap_dropped,
            ..
        } = self;
        packet_store
            .publish()
            .map_err(|e| SnapshotError::Segment(layout.packets_dir(), e))?;
        dispatcher.finish();
        let mut stats = Vec::with_capacity(workers);
        for handle in handles {
            stats.push(
                handle
                    .join()
                    .map_err(|_| ImportError::Pipeline("a reassembly worker panicked".into()))?,
            );
        }
        let pair_summary = writer
            .join()
            .map_err(|_| ImportError::Pipeline("the RRPair writer panicked".into()))??;
        let packet_summary = packet_store
            .finish()
            .map_err(|e| SnapshotError::Segment(layout.packets_dir(), e))?;
        counts.rrpairs = pair_summary.frames;
        for s in &stats {
            counts.absorb(s);
        }
        counts.packet_segments = packet_summary.segments;
        counts.rrpair_segments = pair_summary.segments;
        counts.tap_dropped_pairs = tap_dropped.load(Ordering::Relaxed);
        let manifest = Manifest::new(source, range, counts, workers, input_error);
        layout.write_manifest(&manifest)?;
        Ok(manifest)
    }
}

/// Reads packets into the packet segments and routes TCP segments to workers.
#[derive(Debug)]
struct Dispatcher {
    queues: Vec<Sender<Batch>>,
    pending: Vec<Option<Batch>>,
}

impl Dispatcher {
    fn new(queues: Vec<Sender<Batch>>) -> Self {
        let pending = queues.iter().map(|_| None).collect();
        Dispatcher { queues, pending }
    }

    fn packet(
        &mut self,
        raw: &RawPacket<'_>,
        store: &mut SegmentDirWriter,
        scratch: &mut AlignedVec<16>,
        counts: &mut Counts,
        range: &mut TimeRange,
    ) -> Result<(), ImportError> {
        if raw.link_type != LINKTYPE_TAPLINE_TLS {
            counts.packets += 1;
            counts.bytes += raw.data.len() as u64;
        }
        range.include(raw.ts_ns);
        let record = Packet {
            ts_ns: raw.ts_ns,
            ifindex: raw.ifindex,
            direction: raw.direction as u8,
            link_type: raw.link_type,
            orig_len: raw.orig_len,
            data: raw.data,
        };
        scratch.clear();
        let bytes = rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(
            &record,
            std::mem::take(scratch),
        )
        .map_err(|e| ImportError::Pipeline(format!("cannot serialize a packet: {e}")))?;
        let frame = store
            .append(&bytes)
            .map_err(|e| SnapshotError::Segment(PathBuf::from("packets"), e))?;
        *scratch = bytes;

        let item = match decode(raw.link_type, raw.data) {
            Decoded::Tcp(tcp) => {
                counts.tcp_segments += 1;
                SegmentRef {
                    kind: RefKind::Tcp,
                    frame_offset: frame.offset,
                    ts_ns: raw.ts_ns,
                    src: tcp.src,
                    dst: tcp.dst,
                    seq: tcp.seq,
                    ack: tcp.ack,
                    flags: tcp.flags,
                    payload_offset: u32::try_from(tcp.payload_offset).unwrap_or(u32::MAX),
                    payload_len: u32::try_from(tcp.payload.len()).unwrap_or(0),
                }
            }
            Decoded::TlsChunk(chunk) => {
                counts.tls_chunks += 1;
                counts.tls_plaintext_bytes += chunk.data.len() as u64;
                counts.tls_lost_bytes += u64::from(chunk.lost);
                SegmentRef {
                    kind: RefKind::TlsChunk,
                    frame_offset: frame.offset,
                    ts_ns: raw.ts_ns,
                    src: chunk.local,
                    dst: chunk.remote,
                    seq: 0,
                    ack: 0,
                    flags: 0,
                    payload_offset: 0,
                    // A frame's bytes fit a segment, far below 4 GiB.
                    payload_len: u32::try_from(raw.data.len()).unwrap_or(0),
                }
            }
            Decoded::BadTlsChunk(_) => {
                counts.tls_bad_chunks += 1;
                return Ok(());
            }
            Decoded::Fragment => {
                counts.ip_fragments += 1;
                return Ok(());
            }
            Decoded::Other => {
                counts.non_tcp += 1;
                return Ok(());
            }
            Decoded::UnsupportedLink(_) => {
                counts.unsupported_link += 1;
                return Ok(());
            }
            Decoded::Malformed => {
                counts.malformed += 1;
                return Ok(());
            }
        };
        let worker = shard(
            worker::canonical(item.src),
            worker::canonical(item.dst),
            self.queues.len(),
        );
        let slot = &mut self.pending[worker];
        if slot
            .as_ref()
            .is_some_and(|batch| batch.segment.sequence() != frame.segment.sequence())
        {
            let full = slot.take();
            self.send(worker, full);
        }
        let batch = self.pending[worker].get_or_insert_with(|| Batch {
            segment: frame.segment.clone(),
            items: Vec::with_capacity(DISPATCH_BATCH),
        });
        batch.items.push(item);
        if batch.items.len() >= DISPATCH_BATCH {
            // Workers read only published frames (a roll-over publishes the segment it leaves).
            store
                .publish()
                .map_err(|e| SnapshotError::Segment(PathBuf::from("packets"), e))?;
            let full = self.pending[worker].take();
            self.send(worker, full);
        }
        Ok(())
    }

    fn send(&self, worker: usize, batch: Option<Batch>) {
        if let Some(batch) = batch {
            // A worker only stops early by panicking, which `import` reports when joining.
            let _ = self.queues[worker].send(batch);
        }
    }

    /// Sends every partly filled batch (the caller has published their frames).
    fn flush(&mut self) {
        for worker in 0..self.pending.len() {
            let batch = self.pending[worker].take();
            self.send(worker, batch);
        }
    }

    fn finish(mut self) {
        self.flush();
    }
}

/// Picks the worker for a flow; both directions of a connection hash alike.
pub fn shard(a: SocketAddr, b: SocketAddr, workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    let (x, y) = (endpoint_key(a), endpoint_key(b));
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    let mut hasher = rustc_hash::FxHasher::default();
    lo.hash(&mut hasher);
    hi.hash(&mut hasher);
    (hasher.finish() % workers as u64) as usize
}

/// An endpoint as one number: cheap to hash, ordered the same way for both directions.
fn endpoint_key(addr: SocketAddr) -> u128 {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) => u128::from(u32::from(v4)),
        std::net::IpAddr::V6(v6) => u128::from(v6),
    };
    ip.rotate_left(16) ^ u128::from(addr.port())
}

/// What the RRPair writer stored.
#[derive(Debug)]
struct PairSummary {
    segments: u64,
    frames: u64,
}

/// Where the writer reports: its progress, and the live tap with what the tap refused.
#[derive(Debug)]
struct PairOutput {
    written: Arc<AtomicU64>,
    tap: Option<Sender<PairBatch>>,
    tap_dropped: Arc<AtomicU64>,
}

fn write_pairs(
    dir: &Path,
    capacity: u64,
    input: crossbeam_channel::Receiver<PairBatch>,
    output: &PairOutput,
) -> Result<PairSummary, ImportError> {
    let mut store =
        SegmentDirWriter::create(dir, SegmentKind::RRPairs, capacity, Retention::default())
            .map_err(|e| SnapshotError::Segment(dir.to_path_buf(), e))?;
    let mut frames = 0u64;
    for batch in input {
        for pair in batch.iter() {
            store
                .append(pair)
                .map_err(|e| SnapshotError::Segment(dir.to_path_buf(), e))?;
            frames += 1;
        }
        output.written.store(frames, Ordering::Relaxed);
        if let Some(tap) = &output.tap {
            // Stored first, then offered: the batch moves to the tap without a copy.
            if let Err(refused) = tap.try_send(batch) {
                let n = refused.into_inner().len() as u64;
                output.tap_dropped.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
    let summary = store
        .finish()
        .map_err(|e| SnapshotError::Segment(dir.to_path_buf(), e))?;
    Ok(PairSummary {
        segments: summary.segments,
        frames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_is_direction_independent() {
        let a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
        for n in 1..8 {
            assert_eq!(shard(a, b, n), shard(b, a, n));
            assert!(shard(a, b, n) < n);
        }
    }
}
