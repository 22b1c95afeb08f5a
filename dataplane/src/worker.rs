//! A reassembly worker: owns the flows sharded to it, reassembles their TCP streams, parses the
//! streams as HTTP/1 and turns each exchange into an archived [`RRPair`] ready for the writer.
//!
//! Workers share nothing: the dispatcher hands each one batches of packet references into the
//! packet segments, and the worker reads the payload in place.

use std::net::SocketAddr;

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rkyv::util::AlignedVec;
use rustc_hash::FxHashMap;
use tapline_http1::{Exchange, Http1Config, Http1Conn};
use tapline_reassembly::{
    CloseReason, ConnId, ConnInfo, Direction, Reassembler, ReassemblyConfig, ReassemblyStats,
    StreamSink, TcpFlags, TcpSegment,
};
use tapline_segment::SharedSegment;

use crate::record::{ArchivedPacket, Flow, Message, PairFlags, Protocol, RRPair};

/// How often (in capture time) a worker closes idle flows.
const EXPIRE_EVERY_NS: u64 = 1_000_000_000;
/// Serialized pairs a worker collects before handing them to the writer.
const OUTPUT_BATCH: usize = 256;
/// Longest a finished pair waits in a worker before it goes to the writer.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Bytes of serialized pairs that also send a batch to the writer, whichever limit comes first.
const OUTPUT_BATCH_BYTES: usize = 1 << 20;

/// A TCP packet the dispatcher routed to a worker: decoded header fields plus where the payload
/// lies in the packet segment.
#[derive(Debug, Clone, Copy)]
pub struct SegmentRef {
    /// Offset of the packet's frame in its segment.
    pub frame_offset: u64,
    /// Capture time.
    pub ts_ns: u64,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
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

/// Serialized RRPairs on their way to the writer: one buffer, each record 16-aligned in it, so
/// a batch costs two allocations however many pairs it holds.
#[derive(Debug, Default)]
pub struct PairBatch {
    bytes: AlignedVec<16>,
    frames: Vec<(usize, usize)>,
}

impl PairBatch {
    /// Appends one serialized record.
    pub fn push(&mut self, record: &[u8]) {
        let start = self.bytes.len().next_multiple_of(16);
        self.bytes.resize(start, 0);
        self.bytes.extend_from_slice(record);
        self.frames.push((start, record.len()));
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Bytes held.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// The records, each starting 16-aligned, in the order they were pushed.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.frames
            .iter()
            .filter_map(|&(start, len)| self.bytes.get(start..start + len))
    }
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
            engine.segment(&TcpSegment {
                ts_ns: item.ts_ns,
                src: item.src,
                dst: item.dst,
                seq: item.seq,
                ack: item.ack,
                flags: TcpFlags(item.flags),
                payload,
            });
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
/// segments in, serialized RRPairs out. Workers, the fuzzer and tests drive it directly.
#[derive(Debug)]
pub struct FlowEngine {
    reassembler: Reassembler,
    sink: PairSink,
    next_expire: u64,
}

impl FlowEngine {
    /// An engine with the given limits.
    pub fn new(reassembly: ReassemblyConfig, http: Http1Config) -> Self {
        FlowEngine {
            reassembler: Reassembler::new(reassembly),
            sink: PairSink::new(http),
            next_expire: 0,
        }
    }

    /// Feeds one TCP segment.
    pub fn segment(&mut self, seg: &TcpSegment<'_>) {
        self.reassembler.segment(seg, &mut self.sink);
        if seg.ts_ns >= self.next_expire {
            if self.next_expire != 0 {
                self.reassembler.expire(seg.ts_ns, &mut self.sink);
            }
            self.next_expire = seg.ts_ns.saturating_add(EXPIRE_EVERY_NS);
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

#[derive(Debug)]
struct Conn {
    info: ConnInfo,
    http: Http1Conn,
    next_index: u32,
}

/// The engine's [`StreamSink`]: routes stream events to per-connection HTTP/1 parsers and
/// serializes the finished exchanges.
#[derive(Debug)]
struct PairSink {
    http_config: Http1Config,
    conns: FxHashMap<ConnId, Conn>,
    exchanges: Vec<Exchange>,
    batch: PairBatch,
    /// Reused serialization buffer.
    scratch: AlignedVec<16>,
    stats: WorkerStats,
}

impl PairSink {
    fn new(http_config: Http1Config) -> Self {
        PairSink {
            http_config,
            conns: FxHashMap::default(),
            exchanges: Vec::new(),
            batch: PairBatch::default(),
            scratch: AlignedVec::new(),
            stats: WorkerStats::default(),
        }
    }

    fn emit(&mut self, id: ConnId) {
        if self.exchanges.is_empty() {
            return;
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            self.exchanges.clear();
            return;
        };
        for exchange in self.exchanges.drain(..) {
            let pair = to_pair(
                &conn.info,
                conn.http.request_direction() == Direction::ToClient,
                conn.next_index,
                exchange,
            );
            conn.next_index = conn.next_index.saturating_add(1);
            self.stats.pairs += 1;
            if pair.flags & PairFlags::INCOMPLETE != 0 {
                self.stats.incomplete_pairs += 1;
            }
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            match rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(&pair, scratch) {
                Ok(bytes) => {
                    self.batch.push(&bytes);
                    self.scratch = bytes;
                }
                Err(e) => tracing::error!(error = %e, "cannot serialize an RRPair"),
            }
        }
    }
}

impl StreamSink for PairSink {
    fn open(&mut self, conn: &ConnInfo) {
        self.stats.connections += 1;
        self.conns.insert(
            conn.id,
            Conn {
                info: *conn,
                http: Http1Conn::new(self.http_config.clone()),
                next_index: 0,
            },
        );
    }

    fn data(&mut self, conn: ConnId, dir: Direction, ts_ns: u64, bytes: &[u8]) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.http.data(dir, ts_ns, bytes, &mut self.exchanges);
            self.emit(conn);
        }
    }

    fn gap(&mut self, conn: ConnId, dir: Direction, ts_ns: u64, len: u64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.http.gap(dir, ts_ns, len, &mut self.exchanges);
            self.emit(conn);
        }
    }

    fn end(&mut self, conn: ConnId, dir: Direction, ts_ns: u64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.http.end(dir, ts_ns, &mut self.exchanges);
            self.emit(conn);
        }
    }

    fn close(&mut self, conn: ConnId, ts_ns: u64, _reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.http.close(ts_ns, &mut self.exchanges);
            self.emit(conn);
        }
        if let Some(c) = self.conns.remove(&conn)
            && c.http.state() == tapline_http1::ConnState::NotHttp
        {
            self.stats.non_http_connections += 1;
        }
    }
}

/// Builds the stored record of one exchange.
fn to_pair(info: &ConnInfo, swapped: bool, index: u32, exchange: Exchange) -> RRPair {
    let (client, server) = if swapped {
        (info.server, info.client)
    } else {
        (info.client, info.server)
    };
    let request = exchange.request.map(message);
    let response = exchange.response.map(message);
    let start_ns = match (&request, &response) {
        (Some(r), _) | (None, Some(r)) => r.start_ns,
        (None, None) => info.first_ts_ns,
    };
    let end_ns = [&request, &response]
        .into_iter()
        .flatten()
        .map(|m| m.end_ns)
        .max()
        .unwrap_or(start_ns)
        // A capture whose clock stepped back must not show an exchange ending before it began.
        .max(start_ns);
    RRPair {
        id: pair_id(client, server, info.first_ts_ns, index),
        protocol: Protocol::Http1,
        start_ns,
        end_ns,
        flow: Flow::new(client, server),
        conn_start_ns: info.first_ts_ns,
        index_in_conn: index,
        request,
        response,
        interim: exchange.interim.into_iter().map(message).collect(),
        flags: pair_flags(exchange.flags),
    }
}

/// Maps the parser's flags onto the stored record's.
fn pair_flags(flags: tapline_http1::Flags) -> u32 {
    use tapline_http1::Flags as F;
    [
        (F::INCOMPLETE, PairFlags::INCOMPLETE),
        (F::GAP, PairFlags::GAP),
        (F::BODY_TRUNCATED, PairFlags::BODY_TRUNCATED),
        (F::NO_RESPONSE, PairFlags::NO_RESPONSE),
        (F::NO_REQUEST, PairFlags::NO_REQUEST),
        (F::PARSE_ERROR, PairFlags::PARSE_ERROR),
        (F::UPGRADE, PairFlags::UPGRADE),
        (F::CLOSE_DELIMITED, PairFlags::CLOSE_DELIMITED),
    ]
    .into_iter()
    .filter(|(from, _)| flags.contains(*from))
    .fold(0, |acc, (_, to)| acc | to)
}

fn message(m: tapline_http1::Message) -> Message {
    Message {
        start_ns: m.start_ns,
        end_ns: m.end_ns,
        head: m.head,
        body: m.body,
        trailers: m.trailers,
        body_wire_len: m.body_wire_len,
    }
}

/// A stable 64-bit id of a connection's pair: independent of worker count and order. Words of
/// the endpoints, the connection's start and the index are folded with odd multipliers and
/// finished with splitmix64's mixer, so ids of neighbouring pairs do not look alike.
pub fn pair_id(client: SocketAddr, server: SocketAddr, conn_start_ns: u64, index: u32) -> u64 {
    fn ip_word(addr: SocketAddr) -> u128 {
        match addr.ip() {
            std::net::IpAddr::V4(v4) => u128::from(u32::from(v4)),
            std::net::IpAddr::V6(v6) => u128::from(v6),
        }
    }
    let words = [
        ip_word(client) as u64,
        (ip_word(client) >> 64) as u64,
        u64::from(client.port()) << 16 | u64::from(server.port()),
        ip_word(server) as u64,
        (ip_word(server) >> 64) as u64,
        conn_start_ns,
        u64::from(index),
    ];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in words {
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h = h.rotate_left(29);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_ids_are_stable_and_distinct() {
        let c: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let s: SocketAddr = "10.0.0.2:80".parse().unwrap();
        assert_eq!(pair_id(c, s, 7, 0), pair_id(c, s, 7, 0));
        let mut ids: Vec<u64> = (1..1000).map(|i| pair_id(c, s, 7, i)).collect();
        ids.extend((0..1000).map(|t| pair_id(c, s, t, 0)));
        ids.push(pair_id(s, c, 7, 0));
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count);
    }
}
