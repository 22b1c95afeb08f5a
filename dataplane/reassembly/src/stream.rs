//! One direction of a connection: maps 32-bit sequence numbers to 64-bit stream offsets,
//! delivers in-order bytes straight from the segment, buffers the rest, and declares gaps.
//!
//! Offset 0 is the first data byte (the byte after the SYN, or the first byte seen when the
//! direction was picked up mid-stream). A sequence number is placed relative to the next
//! expected byte, as the signed 32-bit distance to it, so streams longer than 4 GiB and sequence
//! numbers wrapping around 2^32 both work.

use crate::Direction;
use crate::buffer::{Budget, OooBuffer, Overlap};
use crate::config::OverlapPolicy;
use crate::sink::{ConnId, StreamSink};
use crate::stats::ReassemblyStats;

/// Furthest beyond the next expected byte a segment, FIN or acknowledgment is believed: the
/// largest TCP window (with window scaling). Anything further is garbage or another connection,
/// not a reason to declare a gigantic gap.
const MAX_WINDOW: i64 = 1 << 30;

/// Limits and policy a stream works under.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Buffered bytes allowed per direction.
    pub per_direction: usize,
    /// Buffered bytes allowed for all directions together.
    pub total: usize,
    /// Overlap resolution.
    pub policy: OverlapPolicy,
}

/// Everything a stream needs to emit events for one segment.
#[derive(Debug)]
pub(crate) struct Cx<'a, S: ?Sized> {
    /// Where events go.
    pub sink: &'a mut S,
    /// Counters to update.
    pub stats: &'a mut ReassemblyStats,
    /// Buffered bytes of all directions.
    pub total_used: &'a mut usize,
    /// Limits and policy.
    pub limits: Limits,
    /// The connection.
    pub conn: ConnId,
    /// Timestamp of emitted events.
    pub ts: u64,
}

/// One direction of a connection.
#[derive(Debug)]
pub(crate) struct Stream {
    dir: Direction,
    /// Sequence number of offset 0, once known.
    base: Option<u32>,
    /// Sequence number of this direction's SYN, when seen (or implied by a SYN-ACK).
    isn: Option<u32>,
    /// Offset of the next byte to deliver: everything before was delivered or gapped.
    next: u64,
    /// Offset of the FIN, once seen.
    fin: Option<u64>,
    /// Whether `end` was emitted.
    ended: bool,
    buf: OooBuffer,
}

impl Stream {
    /// A direction about which nothing is known yet.
    pub fn new(dir: Direction) -> Self {
        Self {
            dir,
            base: None,
            isn: None,
            next: 0,
            fin: None,
            ended: false,
            buf: OooBuffer::default(),
        }
    }

    /// Whether the starting sequence number is known.
    pub fn is_known(&self) -> bool {
        self.base.is_some()
    }

    /// Sequence number of this direction's SYN, if seen.
    pub fn isn(&self) -> Option<u32> {
        self.isn
    }

    /// Whether a FIN was seen.
    pub fn fin_seen(&self) -> bool {
        self.fin.is_some()
    }

    /// Whether `end` was emitted.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Whether any byte was delivered, gapped or buffered.
    pub fn has_progress(&self) -> bool {
        self.next > 0 || !self.buf.is_empty()
    }

    /// Starts the stream at a SYN with sequence number `isn` (which consumes one number).
    pub fn start_at_syn(&mut self, isn: u32) {
        self.isn = Some(isn);
        self.base = Some(isn.wrapping_add(1));
    }

    /// Starts the stream mid-way, at the byte with sequence number `seq`.
    pub fn start_at(&mut self, seq: u32) {
        self.base = Some(seq);
    }

    /// Sequence number of the next byte to deliver.
    pub fn expected_seq(&self) -> Option<u32> {
        // Truncation is the point: sequence numbers are offsets modulo 2^32.
        self.base.map(|base| base.wrapping_add(self.next as u32))
    }

    /// Stream offset of `seq`: within 2^31 of the next expected byte, possibly negative.
    pub fn offset(&self, seq: u32) -> Option<i64> {
        let distance = seq.wrapping_sub(self.expected_seq()?) as i32;
        // `next` stays far below 2^63: it grows by at most 2^31 per segment.
        Some(self.next as i64 + i64::from(distance))
    }

    /// Takes the payload of a segment whose first byte has sequence number `seq`.
    pub fn data<S: StreamSink + ?Sized>(&mut self, seq: u32, payload: &[u8], cx: &mut Cx<'_, S>) {
        let Some(off) = self.offset(seq) else {
            return;
        };
        if off - self.next as i64 > MAX_WINDOW {
            cx.stats.out_of_window += 1;
            return;
        }
        let mut payload = payload;
        if let Some(fin) = self.fin {
            let room = fin as i64 - off;
            if room <= 0 {
                cx.stats.after_close += 1;
                return;
            }
            if let Some(before_fin) = usize::try_from(room).ok().and_then(|r| payload.get(..r)) {
                if before_fin.len() < payload.len() {
                    cx.stats.after_close += 1;
                }
                payload = before_fin;
            }
        }
        let next = self.next as i64;
        let end = off + payload.len() as i64;
        if end <= next {
            cx.stats.retransmitted += 1;
            return;
        }
        let skip = usize::try_from(next - off).unwrap_or(0);
        let Some(data) = payload.get(skip..) else {
            return;
        };
        let start = off.max(next) as u64;
        let seen = Overlap {
            bytes: skip as u64,
            conflict: false,
        };
        if start == self.next {
            if self.buf.is_empty() {
                // The fast path: straight from the segment to the sink.
                self.emit(data, cx);
                classify(seen, payload.len(), cx.stats);
            } else {
                let overlap = self.deliver_from(data, cx);
                classify(sum(seen, overlap), payload.len(), cx.stats);
            }
        } else {
            self.buffer(start, data, cx);
        }
    }

    /// Buffers `data` at `start`, beyond the next expected byte; on overflow, gives up on holes
    /// (oldest first) until it fits or becomes in order.
    fn buffer<S: StreamSink + ?Sized>(&mut self, start: u64, data: &[u8], cx: &mut Cx<'_, S>) {
        let mut overflowed = false;
        loop {
            let mut budget = Budget {
                per_direction: cx.limits.per_direction,
                total_limit: cx.limits.total,
                total_used: cx.total_used,
            };
            if let Some(overlap) = self.buf.insert(start, data, cx.limits.policy, &mut budget) {
                if overlap.bytes < data.len() as u64 {
                    cx.stats.out_of_order += 1;
                }
                classify(overlap, data.len(), cx.stats);
                return;
            }
            if !overflowed {
                cx.stats.buffer_overflows += 1;
                overflowed = true;
            }
            // Give up on the hole at `next`, up to the first held run or this segment, then
            // deliver held runs up to the segment. Either frees memory or reaches the segment.
            let hole_end = self.buf.first_start().map_or(start, |s| s.min(start));
            self.gap(hole_end - self.next, cx);
            self.drain_until(start, cx);
            if self.next == start {
                let overlap = self.deliver_from(data, cx);
                classify(overlap, data.len(), cx.stats);
                return;
            }
        }
    }

    /// Delivers `data`, which starts at `next`, merging it with held runs it overlaps by the
    /// overlap policy, then everything held that became contiguous.
    fn deliver_from<S: StreamSink + ?Sized>(&mut self, data: &[u8], cx: &mut Cx<'_, S>) -> Overlap {
        let start = self.next;
        let end = start + data.len() as u64;
        let mut overlap = Overlap::default();
        let at = |pos: u64| usize::try_from(pos - start).unwrap_or(usize::MAX);
        while self.next < end {
            let pos = self.next;
            match self.buf.first_start() {
                Some(run_start) if run_start <= pos => {
                    let Some((run_start, run)) = self.buf.pop_first(cx.total_used) else {
                        break;
                    };
                    let run_end = run_start + run.len() as u64;
                    if run_end <= pos {
                        continue;
                    }
                    let from = usize::try_from(pos - run_start).unwrap_or(usize::MAX);
                    let stop = run_end.min(end);
                    let upto = usize::try_from(stop - run_start).unwrap_or(usize::MAX);
                    let (Some(old), Some(new)) = (run.get(from..upto), data.get(at(pos)..at(stop)))
                    else {
                        break;
                    };
                    overlap.add(old, new);
                    match cx.limits.policy {
                        OverlapPolicy::First => {
                            self.emit(run.get(from..).unwrap_or_default(), cx);
                        }
                        OverlapPolicy::Last => {
                            self.emit(new, cx);
                            self.emit(run.get(upto..).unwrap_or_default(), cx);
                        }
                    }
                }
                first => {
                    let stop = first.map_or(end, |s| s.min(end));
                    let Some(new) = data.get(at(pos)..at(stop)) else {
                        break;
                    };
                    self.emit(new, cx);
                }
            }
        }
        self.drain_until(u64::MAX, cx);
        overlap
    }

    /// Delivers held runs that start at or before `next`, but no byte at or beyond `limit`.
    fn drain_until<S: StreamSink + ?Sized>(&mut self, limit: u64, cx: &mut Cx<'_, S>) {
        while let Some((run_start, run)) = self.buf.first_run() {
            if run_start > self.next || self.next >= limit {
                return;
            }
            let run_end = run_start + run.len() as u64;
            let from = usize::try_from(self.next - run_start).unwrap_or(usize::MAX);
            if run_end > limit {
                // Deliver up to the limit and keep the rest held.
                let upto = usize::try_from(limit - run_start).unwrap_or(usize::MAX);
                emit(
                    &mut self.next,
                    self.dir,
                    run.get(from..upto).unwrap_or_default(),
                    cx,
                );
                self.buf.trim_front(limit, cx.total_used);
                return;
            }
            emit(
                &mut self.next,
                self.dir,
                run.get(from..).unwrap_or_default(),
                cx,
            );
            self.buf.pop_first(cx.total_used);
        }
    }

    /// Delivers or gaps everything up to `target`, then whatever became contiguous.
    fn advance_to<S: StreamSink + ?Sized>(&mut self, target: u64, cx: &mut Cx<'_, S>) {
        loop {
            self.drain_until(u64::MAX, cx);
            if self.next >= target {
                return;
            }
            let hole_end = self.buf.first_start().map_or(target, |s| s.min(target));
            self.gap(hole_end - self.next, cx);
        }
    }

    /// Takes the FIN flag of a segment whose FIN has sequence number `seq`.
    pub fn fin<S: StreamSink + ?Sized>(&mut self, seq: u32, cx: &mut Cx<'_, S>) {
        if self.fin.is_some() {
            return;
        }
        let Some(off) = self.offset(seq) else {
            return;
        };
        if off - self.next as i64 > MAX_WINDOW {
            cx.stats.out_of_window += 1;
            return;
        }
        // A FIN behind delivered bytes still says the sender is done.
        let fin = off.max(self.next as i64) as u64;
        self.fin = Some(fin);
        let dropped = self.buf.truncate(fin, cx.total_used);
        cx.stats.after_close += dropped as u64;
    }

    /// Takes an acknowledgment from the peer: bytes before `ack` reached the receiver, so any
    /// still missing here were missed by the capture.
    pub fn acked<S: StreamSink + ?Sized>(&mut self, ack: u32, cx: &mut Cx<'_, S>) {
        let Some(off) = self.offset(ack) else {
            return;
        };
        let ahead = off - self.next as i64;
        if ahead <= 0 || ahead > MAX_WINDOW {
            return;
        }
        let mut target = off as u64;
        if let Some(fin) = self.fin {
            // The FIN itself takes a sequence number.
            target = target.min(fin);
        }
        self.advance_to(target, cx);
    }

    /// Delivers everything held, with gaps for holes, up to the FIN when one was seen.
    pub fn flush<S: StreamSink + ?Sized>(&mut self, cx: &mut Cx<'_, S>) {
        if !self.is_known() {
            return;
        }
        let target = self
            .fin
            .or(self.buf.end())
            .map_or(self.next, |t| t.max(self.next));
        self.advance_to(target, cx);
    }

    /// Emits `end` once every byte before the FIN was delivered or gapped.
    pub fn check_end<S: StreamSink + ?Sized>(&mut self, cx: &mut Cx<'_, S>) {
        if !self.ended && self.fin == Some(self.next) {
            self.ended = true;
            cx.sink.end(cx.conn, self.dir, cx.ts);
        }
    }

    /// Drops everything held (when the flow is discarded).
    pub fn release(&mut self, total_used: &mut usize) {
        self.buf.clear(total_used);
    }

    fn emit<S: StreamSink + ?Sized>(&mut self, bytes: &[u8], cx: &mut Cx<'_, S>) {
        emit(&mut self.next, self.dir, bytes, cx);
    }

    fn gap<S: StreamSink + ?Sized>(&mut self, len: u64, cx: &mut Cx<'_, S>) {
        if len == 0 {
            return;
        }
        self.next += len;
        cx.stats.gaps += 1;
        cx.stats.gap_bytes += len;
        cx.sink.gap(cx.conn, self.dir, cx.ts, len);
    }
}

/// Hands `bytes` at `*next` to the sink and moves `*next` past them.
fn emit<S: StreamSink + ?Sized>(next: &mut u64, dir: Direction, bytes: &[u8], cx: &mut Cx<'_, S>) {
    if bytes.is_empty() {
        return;
    }
    *next += bytes.len() as u64;
    cx.stats.delivered_bytes += bytes.len() as u64;
    cx.sink.data(cx.conn, dir, cx.ts, bytes);
}

fn sum(a: Overlap, b: Overlap) -> Overlap {
    Overlap {
        bytes: a.bytes + b.bytes,
        conflict: a.conflict || b.conflict,
    }
}

/// Counts a segment of `len` bytes by how much of it was seen before.
fn classify(seen: Overlap, len: usize, stats: &mut ReassemblyStats) {
    if seen.bytes >= len as u64 {
        stats.retransmitted += u64::from(!seen.conflict);
    } else if seen.bytes > 0 {
        stats.partial_duplicates += 1;
    }
    if seen.conflict {
        stats.conflicting_overlaps += 1;
    }
}
