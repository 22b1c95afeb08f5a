//! One connection: its two directions, how a segment's flags and payload drive them, and how the
//! connection closes.

use crate::Direction;
use crate::segment::TcpSegment;
use crate::sink::{CloseReason, ConnId, StreamSink};
use crate::stream::{Cx, Stream};
use crate::table::Endpoint;

/// How far from the next expected sequence number a SYN with a new ISN must be to start a new
/// connection while the current one is still open. Closer SYNs are ignored as a receiver would
/// (RFC 5961 answers an in-window SYN with a challenge ACK, and the client's RST then closes the
/// old connection). 16 MiB is above the receive windows hosts use in practice.
const REUSE_WINDOW: u32 = 16 << 20;

/// One connection.
#[derive(Debug)]
pub(crate) struct Flow {
    /// The connection's id.
    pub id: ConnId,
    /// The client endpoint, to tell the direction of a segment.
    client: Endpoint,
    /// Reassembler clock at the last segment.
    pub last_active: u64,
    /// Whether the connection was closed (the entry only absorbs late segments now).
    pub closed: bool,
    /// Indexed by [`index`].
    streams: [Stream; 2],
}

fn index(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

impl Flow {
    /// A new connection whose client is `client`.
    pub fn new(id: ConnId, client: Endpoint, now: u64) -> Self {
        Self {
            id,
            client,
            last_active: now,
            closed: false,
            streams: [
                Stream::new(Direction::ToServer),
                Stream::new(Direction::ToClient),
            ],
        }
    }

    /// Direction of a segment sent by `src`.
    pub fn direction(&self, src: Endpoint) -> Direction {
        if src == self.client {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }

    /// One direction.
    pub fn stream(&self, dir: Direction) -> &Stream {
        &self.streams[index(dir)]
    }

    /// The stream of `dir` and the stream of the reverse direction.
    fn pair(&mut self, dir: Direction) -> (&mut Stream, &mut Stream) {
        let [to_server, to_client] = &mut self.streams;
        match dir {
            Direction::ToServer => (to_server, to_client),
            Direction::ToClient => (to_client, to_server),
        }
    }

    /// Whether a SYN without ACK, sent in direction `dir` with sequence number `seq`, starts a
    /// new connection on this 4-tuple rather than belonging to this one.
    pub fn reused_by(&self, dir: Direction, seq: u32) -> bool {
        let stream = self.stream(dir);
        if stream.isn() == Some(seq) {
            // A retransmitted SYN.
            return false;
        }
        if self.streams.iter().any(Stream::fin_seen) {
            // The old connection was finishing: the SYN is a new one.
            return true;
        }
        match stream.expected_seq() {
            // Nothing seen from this sender yet: after the other side sent data a SYN can only
            // start a new connection; during the other side's handshake it is a simultaneous
            // open.
            None => self.stream(dir.reverse()).has_progress(),
            Some(expected) => (seq.wrapping_sub(expected) as i32).unsigned_abs() > REUSE_WINDOW,
        }
    }

    /// Takes one segment sent in direction `dir`; returns why the connection closed, if it did
    /// (the caller then calls [`Flow::close`]).
    pub fn segment<S: StreamSink + ?Sized>(
        &mut self,
        seg: &TcpSegment<'_>,
        dir: Direction,
        cx: &mut Cx<'_, S>,
    ) -> Option<CloseReason> {
        let flags = seg.flags;
        let (this, peer) = self.pair(dir);
        if flags.syn() {
            if !this.is_known() {
                this.start_at_syn(seg.seq);
            } else if this.isn() != Some(seg.seq) {
                // A SYN with another ISN that does not start a new connection: ignore it all.
                cx.stats.ignored_syns += 1;
                return None;
            }
            if flags.ack() && !peer.is_known() {
                // A SYN-ACK acknowledges the client's ISN + 1.
                peer.start_at_syn(seg.ack.wrapping_sub(1));
            }
        }
        if flags.ack() {
            peer.acked(seg.ack, cx);
        }
        if flags.rst() {
            // Receivers ignore data on a RST.
            if !seg.payload.is_empty() {
                cx.stats.after_close += 1;
            }
            return Some(CloseReason::Rst);
        }
        let data_seq = seg.seq.wrapping_add(u32::from(flags.syn()));
        if !seg.payload.is_empty() || flags.fin() {
            if !this.is_known() {
                this.start_at(data_seq);
            }
            if !seg.payload.is_empty() {
                this.data(data_seq, seg.payload, cx);
            }
            if flags.fin() {
                // Truncation is the point: sequence numbers wrap modulo 2^32.
                this.fin(data_seq.wrapping_add(seg.payload.len() as u32), cx);
            }
        }
        this.check_end(cx);
        peer.check_end(cx);
        (this.ended() && peer.ended()).then_some(CloseReason::Fin)
    }

    /// Delivers what is held in both directions (gaps for holes, `end` where a FIN was seen and
    /// reached), emits `close` and counts it.
    pub fn close<S: StreamSink + ?Sized>(&mut self, reason: CloseReason, cx: &mut Cx<'_, S>) {
        for stream in &mut self.streams {
            stream.flush(cx);
            stream.check_end(cx);
            stream.release(cx.total_used);
        }
        self.closed = true;
        cx.sink.close(self.id, cx.ts, reason);
        let stats = &mut *cx.stats;
        stats.flows_closed += 1;
        match reason {
            CloseReason::Fin => stats.fin_closes += 1,
            CloseReason::Rst => stats.rst_closes += 1,
            CloseReason::IdleTimeout => stats.idle_timeouts += 1,
            CloseReason::Evicted => stats.evicted_flows += 1,
            CloseReason::Reused => stats.reused += 1,
            CloseReason::EndOfInput => {}
        }
    }

    /// Drops everything held without emitting anything.
    pub fn release(&mut self, total_used: &mut usize) {
        for stream in &mut self.streams {
            stream.release(total_used);
        }
    }
}
