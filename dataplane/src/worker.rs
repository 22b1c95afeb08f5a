//! A reassembly worker: owns the flows sharded to it, reassembles their TCP streams, parses the
//! streams as HTTP/1 and turns each exchange into an archived [`RRPair`](crate::record::RRPair)
//! ready for the writer. TLS plaintext chunks of the same connections bypass reassembly (the
//! private `tls` module) and feed the same parsers; the ciphertext of those connections is never
//! parsed.
//!
//! Workers share nothing: the dispatcher hands each one batches of packet references into the
//! packet segments, and the worker reads the payload in place.

mod batch;
mod sink;
mod tls;

use std::net::SocketAddr;

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tapline_http1::Http1Config;
use tapline_reassembly::{Reassembler, ReassemblyConfig, ReassemblyStats, TcpFlags, TcpSegment};
use tapline_segment::SharedSegment;

pub use batch::PairBatch;
pub(crate) use sink::canonical;
pub use sink::pair_id;

use crate::record::ArchivedPacket;
use crate::tls_chunk::{self, TlsChunk};
use sink::PairSink;
use tls::TlsStreams;

/// How often (in capture time) a worker closes idle flows.
const EXPIRE_EVERY_NS: u64 = 1_000_000_000;
/// Serialized pairs a worker collects before handing them to the writer.
const OUTPUT_BATCH: usize = 256;
/// Longest a finished pair waits in a worker before it goes to the writer.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Bytes of serialized pairs that also send a batch to the writer, whichever limit comes first.
const OUTPUT_BATCH_BYTES: usize = 1 << 20;

/// What a [`SegmentRef`] points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// A TCP segment: the payload is its TCP payload.
    Tcp,
    /// A TLS plaintext chunk: the payload is the whole encoded chunk (see [`crate::tls_chunk`]),
    /// `src` its process's end and `dst` the peer; sequence fields are 0.
    TlsChunk,
}

/// A TCP packet or TLS chunk the dispatcher routed to a worker: decoded header fields plus where
/// the payload lies in the packet segment.
#[derive(Debug, Clone, Copy)]
pub struct SegmentRef {
    /// TCP segment or TLS chunk.
    pub kind: RefKind,
    /// Offset of the packet's frame in its segment.
    pub frame_offset: u64,
    /// Capture time.
    pub ts_ns: u64,
    /// Sender (a chunk's local end).
    pub src: SocketAddr,
    /// Receiver (a chunk's remote end).
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// TCP flags.
    pub flags: u8,
    /// Offset of the TCP payload within the packet bytes.
    pub payload_offset: u32,
    /// Length of the captured TCP payload.
    pub payload_len: u32,
}

/// A batch of packets of one segment for one worker.
#[derive(Debug)]
pub struct Batch {
    /// The segment the packets are in.
    pub segment: SharedSegment,
    /// The packets, in capture order.
    pub items: Vec<SegmentRef>,
}

/// What a worker counted, summed into the snapshot manifest.
#[derive(Debug, Default, Clone)]
pub struct WorkerStats {
    /// Reassembly counters.
    pub reassembly: ReassemblyStats,
    /// TCP connections opened.
    pub connections: u64,
    /// Connections whose bytes were not HTTP/1.
    pub non_http_connections: u64,
    /// RRPairs produced.
    pub pairs: u64,
    /// RRPairs flagged incomplete.
    pub incomplete_pairs: u64,
    /// Packet references that could not be read back from their segment.
    pub unreadable_packets: u64,
    /// TLS plaintext streams parsed (one per connection and process, duplicates aside).
    pub tls_streams: u64,
    /// TLS plaintext streams whose bytes were not HTTP/1 (HTTP/2, other protocols).
    pub tls_non_http_streams: u64,
    /// Chunks of the second view of a connection whose both ends were captured.
    pub tls_duplicate_chunks: u64,
    /// Plaintext bytes of those chunks.
    pub tls_duplicate_bytes: u64,
    /// TCP segments with payload of connections whose plaintext was captured: not parsed.
    pub tls_ciphertext_segments: u64,
    /// TCP connections that carried TLS (a TLS handshake, or captured plaintext): not parsed.
    pub tls_connections: u64,
    /// TLS plaintext streams ended after being idle.
    pub tls_idle_timeouts: u64,
    /// TLS plaintext streams ended because the stream table was full.
    pub tls_evicted_streams: u64,
}

/// Runs one worker until its input channel closes; returns its counters.
pub fn run(
    input: Receiver<Batch>,
    output: Sender<PairBatch>,
    reassembly: ReassemblyConfig,
    http: Http1Config,
) -> WorkerStats {
    let mut engine = FlowEngine::new(reassembly, http);
    let mut unreadable = 0u64;
    let mut last_flush = Instant::now();
    loop {
        let batch = match input.recv_timeout(FLUSH_EVERY) {
            Ok(batch) => batch,
            Err(RecvTimeoutError::Timeout) => {
                // Live captures can go quiet: hand over what is ready so it is stored (and
                // counted) without waiting for a full batch.
                if engine.pending() > 0 {
                    let _ = output.send(engine.take_pairs());
                }
                last_flush = Instant::now();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        for item in &batch.items {
            let Some(payload) = payload_of(&batch.segment, item) else {
                unreadable += 1;
                continue;
            };
            match item.kind {
                RefKind::Tcp => engine.segment(&TcpSegment {
                    ts_ns: item.ts_ns,
                    src: item.src,
                    dst: item.dst,
                    seq: item.seq,
                    ack: item.ack,
                    flags: TcpFlags(item.flags),
                    payload,
                }),
                RefKind::TlsChunk => match tls_chunk::decode(payload) {
                    // The frame's time rules, as for packets: the chunk's own `ts_ns` is the
                    // same from a live source, and a rewritten capture changes only the frame's.
                    Ok(chunk) => engine.tls_chunk(&TlsChunk {
                        ts_ns: item.ts_ns,
                        ..chunk
                    }),
                    // The dispatcher decoded it already; a frame that reads back differently
                    // is as unreadable as a missing one.
                    Err(_) => unreadable += 1,
                },
            }
            if engine.pending() >= OUTPUT_BATCH || engine.pending_bytes() >= OUTPUT_BATCH_BYTES {
                // The writer only goes away when the import is failing; it reports why.
                let _ = output.send(engine.take_pairs());
                last_flush = Instant::now();
            }
        }
        if engine.pending() > 0 && last_flush.elapsed() >= FLUSH_EVERY {
            let _ = output.send(engine.take_pairs());
            last_flush = Instant::now();
        }
    }
    let mut stats = engine.finish();
    let rest = stats.1;
    if !rest.is_empty() {
        let _ = output.send(rest);
    }
    stats.0.unreadable_packets = unreadable;
    stats.0
}

/// Reassembly plus HTTP/1 parsing for the flows of one worker, with no threads or I/O: TCP
/// segments and TLS plaintext chunks in, serialized RRPairs out. Workers, the fuzzer and tests
/// drive it directly.
#[derive(Debug)]
pub struct FlowEngine {
    reassembler: Reassembler,
    sink: PairSink,
    tls: TlsStreams,
    next_expire: u64,
}

impl FlowEngine {
    /// An engine with the given limits (the flow limit and idle timeout bound TLS plaintext
    /// streams too).
    pub fn new(reassembly: ReassemblyConfig, http: Http1Config) -> Self {
        FlowEngine {
            reassembler: Reassembler::new(reassembly),
            sink: PairSink::new(http, reassembly.max_flows),
            tls: TlsStreams::new(reassembly.max_flows, reassembly.idle_timeout_ns),
            next_expire: 0,
        }
    }

    /// Feeds one TCP segment. A segment of a connection whose plaintext was captured is
    /// counted and tracked but never parsed.
    pub fn segment(&mut self, seg: &TcpSegment<'_>) {
        if !seg.payload.is_empty() && self.sink.is_tls_tuple(seg.src, seg.dst) {
            self.sink.stats.tls_ciphertext_segments += 1;
        }
        self.reassembler.segment(seg, &mut self.sink);
        self.tick(seg.ts_ns);
    }

    /// Feeds one TLS plaintext chunk.
    pub fn tls_chunk(&mut self, chunk: &TlsChunk<'_>) {
        self.tls.chunk(chunk, &mut self.sink);
        self.tick(chunk.ts_ns);
    }

    /// Closes idle flows and streams once per [`EXPIRE_EVERY_NS`] of capture time.
    fn tick(&mut self, ts_ns: u64) {
        if ts_ns >= self.next_expire {
            if self.next_expire != 0 {
                self.reassembler.expire(ts_ns, &mut self.sink);
                self.tls.expire(ts_ns, &mut self.sink);
            }
            self.next_expire = ts_ns.saturating_add(EXPIRE_EVERY_NS);
        }
    }

    /// Serialized pairs waiting to be taken.
    pub fn pending(&self) -> usize {
        self.sink.batch.len()
    }

    /// Bytes of serialized pairs waiting to be taken.
    pub fn pending_bytes(&self) -> usize {
        self.sink.batch.byte_len()
    }

    /// Takes the serialized pairs produced so far.
    pub fn take_pairs(&mut self) -> PairBatch {
        std::mem::take(&mut self.sink.batch)
    }

    /// Ends every flow; returns the counters and the last pairs.
    pub fn finish(mut self) -> (WorkerStats, PairBatch) {
        self.reassembler.finish(&mut self.sink);
        self.tls.finish(&mut self.sink);
        let pairs = self.take_pairs();
        let mut stats = self.sink.stats;
        stats.reassembly = self.reassembler.stats().clone();
        (stats, pairs)
    }
}

fn payload_of<'s>(segment: &'s SharedSegment, item: &SegmentRef) -> Option<&'s [u8]> {
    let frame = segment.payload(item.frame_offset).ok()?;
    // SAFETY: the dispatcher of this process serialized this frame from a `Packet` with rkyv
    // just before handing out its offset, and frames are never rewritten, so the bytes are a
    // valid archived `Packet` at the default root position.
    let packet = unsafe { rkyv::access_unchecked::<ArchivedPacket<'_>>(frame) };
    let start = item.payload_offset as usize;
    packet
        .data
        .get()
        .get(start..start.checked_add(item.payload_len as usize)?)
}

#[cfg(test)]
mod tests;
