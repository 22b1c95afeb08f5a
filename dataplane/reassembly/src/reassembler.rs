//! The reassembler: finds or starts the connection of each segment, applies idle timeout, 4-tuple
//! reuse and the flow-table limit, and hands the segment to its connection.
//!
//! Time is the capture time of the segments, made monotonic (the largest timestamp seen so far),
//! so a flow's idleness depends only on the segments and never on how often
//! [`Reassembler::expire`] is called.

use crate::Direction;
use crate::config::ReassemblyConfig;
use crate::flow::Flow;
use crate::segment::TcpSegment;
use crate::sink::{CloseReason, ConnId, ConnInfo, StreamSink};
use crate::stats::ReassemblyStats;
use crate::stream::{Cx, Limits};
use crate::table::{Endpoint, FlowKey, FlowTable};

/// A deterministic TCP reassembler: captured segments in, ordered stream events out.
///
/// It does no I/O and reads no clock; the same segments always produce the same events.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    limits: Limits,
    table: FlowTable,
    stats: ReassemblyStats,
    /// Accounted bytes buffered by all connections.
    buffered: usize,
    /// Largest capture timestamp seen.
    clock: u64,
    next_id: u64,
}

impl Reassembler {
    /// A reassembler with no connections.
    pub fn new(config: ReassemblyConfig) -> Self {
        let config = ReassemblyConfig {
            // Table indexes are u32; no machine holds 2^32 connections anyway.
            max_flows: config.max_flows.clamp(1, u32::MAX as usize - 1),
            ..config
        };
        Self {
            limits: Limits {
                per_direction: config.max_buffered_per_direction,
                total: config.max_buffered_total,
                policy: config.overlap,
            },
            config,
            table: FlowTable::new(),
            stats: ReassemblyStats::default(),
            buffered: 0,
            clock: 0,
            next_id: 1,
        }
    }

    /// The configuration in use (with `max_flows` clamped to at least 1).
    pub fn config(&self) -> &ReassemblyConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }

    /// Open connections.
    pub fn flow_count(&self) -> usize {
        self.table.live_len()
    }

    /// Accounted bytes buffered out of order by all connections; never above
    /// [`ReassemblyConfig::max_buffered_total`].
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Takes one captured segment, emitting the events it causes.
    pub fn segment(&mut self, seg: &TcpSegment<'_>, sink: &mut impl StreamSink) {
        self.stats.segments += 1;
        self.stats.payload_bytes += seg.payload.len() as u64;
        let now = self.clock.max(seg.ts_ns);
        self.clock = now;
        let src = Endpoint::from(seg.src);
        let key = FlowKey::new(src, Endpoint::from(seg.dst));
        let flags = seg.flags;
        let syn_only = flags.syn() && !flags.ack() && !flags.rst();

        if let Some(idx) = self.table.find(&key)
            && let Some(flow) = self.table.flow(idx)
        {
            let dir = flow.direction(src);
            if now.saturating_sub(flow.last_active) > self.config.idle_timeout_ns {
                let ts = flow.last_active.saturating_add(self.config.idle_timeout_ns);
                self.drop_entry(idx, CloseReason::IdleTimeout, ts, sink);
            } else if flow.closed {
                if syn_only && flow.stream(dir).isn() != Some(seg.seq) {
                    self.drop_entry(idx, CloseReason::Reused, seg.ts_ns, sink);
                } else {
                    if !seg.payload.is_empty() {
                        self.stats.after_close += 1;
                    }
                    if let Some(flow) = self.table.flow_mut(idx) {
                        flow.last_active = now;
                    }
                    self.table.touch(idx, now);
                    return;
                }
            } else if syn_only && flow.reused_by(dir, seg.seq) {
                self.drop_entry(idx, CloseReason::Reused, seg.ts_ns, sink);
            } else {
                self.process(idx, seg, dir, sink);
                return;
            }
        }

        let starts_one = flags.syn() || !seg.payload.is_empty();
        if flags.rst() || !starts_one {
            self.stats.untracked += 1;
            return;
        }
        self.make_room(seg.ts_ns, sink);
        let (client, server) = if flags.syn() {
            if flags.ack() {
                (seg.dst, seg.src)
            } else {
                (seg.src, seg.dst)
            }
        } else if seg.dst.port() > seg.src.port() {
            // Mid-stream: the ephemeral (higher) port is the client's.
            (seg.dst, seg.src)
        } else {
            (seg.src, seg.dst)
        };
        let id = ConnId(self.next_id);
        self.next_id += 1;
        self.stats.flows_opened += 1;
        if !flags.syn() {
            self.stats.midstream_pickups += 1;
        }
        sink.open(&ConnInfo {
            id,
            client,
            server,
            first_ts_ns: seg.ts_ns,
            saw_syn: flags.syn(),
        });
        let flow = Flow::new(id, Endpoint::from(client), now);
        let dir = flow.direction(src);
        let idx = self.table.insert(key, flow, now);
        self.process(idx, seg, dir, sink);
    }

    /// Closes connections idle for longer than the timeout at capture time `now_ns` and forgets
    /// closed ones as old, to reclaim memory; call it periodically.
    ///
    /// With `now_ns` no later than the latest segment's timestamp, each connection's events are
    /// exactly those it would get without the call (idleness is also checked on a connection's
    /// next segment and by [`Reassembler::finish`]); only their interleaving with other
    /// connections' events changes.
    pub fn expire(&mut self, now_ns: u64, sink: &mut impl StreamSink) {
        let timeout = self.config.idle_timeout_ns;
        for retired in [false, true] {
            let mut cursor = if retired {
                self.table.oldest_retired()
            } else {
                self.table.oldest_live()
            };
            // Entries are in the order they were last moved; one moved within the timeout
            // ends the walk, since it and all after it were active since.
            while let Some(idx) = cursor
                && self.table.stale(idx, now_ns, timeout)
            {
                cursor = self.table.newer(idx);
                let Some(flow) = self.table.flow(idx) else {
                    break;
                };
                if now_ns.saturating_sub(flow.last_active) > timeout {
                    let ts = flow.last_active.saturating_add(timeout);
                    self.drop_entry(idx, CloseReason::IdleTimeout, ts, sink);
                }
            }
        }
    }

    /// End of input: delivers what is buffered (with gaps for holes), ends directions whose FIN
    /// was reached and closes every connection, least recently active first.
    ///
    /// A connection already idle for longer than the timeout closes with
    /// [`CloseReason::IdleTimeout`], as it would have on its next segment or by
    /// [`Reassembler::expire`].
    pub fn finish(&mut self, sink: &mut impl StreamSink) {
        let timeout = self.config.idle_timeout_ns;
        while let Some(idx) = self.table.oldest_live()
            && let Some(flow) = self.table.flow(idx)
        {
            if self.clock.saturating_sub(flow.last_active) > timeout {
                let ts = flow.last_active.saturating_add(timeout);
                self.drop_entry(idx, CloseReason::IdleTimeout, ts, sink);
            } else {
                self.drop_entry(idx, CloseReason::EndOfInput, self.clock, sink);
            }
        }
        while let Some(idx) = self.table.oldest_retired() {
            self.drop_entry(idx, CloseReason::EndOfInput, self.clock, sink);
        }
    }

    /// Entries (open or closed) idle for longer than the timeout at `now`, by walking them all.
    #[cfg(test)]
    pub(crate) fn idle_entries(&self, now: u64) -> usize {
        let timeout = self.config.idle_timeout_ns;
        let mut count = 0;
        for retired in [false, true] {
            let mut cursor = if retired {
                self.table.oldest_retired()
            } else {
                self.table.oldest_live()
            };
            while let Some(idx) = cursor {
                cursor = self.table.newer(idx);
                if self
                    .table
                    .flow(idx)
                    .is_some_and(|f| now.saturating_sub(f.last_active) > timeout)
                {
                    count += 1;
                }
            }
        }
        count
    }

    /// Hands a segment to the open connection at `idx`.
    fn process<S: StreamSink + ?Sized>(
        &mut self,
        idx: u32,
        seg: &TcpSegment<'_>,
        dir: Direction,
        sink: &mut S,
    ) {
        let Some(flow) = self.table.flow_mut(idx) else {
            return;
        };
        flow.last_active = self.clock;
        let mut cx = Cx {
            sink,
            stats: &mut self.stats,
            total_used: &mut self.buffered,
            limits: self.limits,
            conn: flow.id,
            ts: seg.ts_ns,
        };
        match flow.segment(seg, dir, &mut cx) {
            Some(reason) => {
                flow.close(reason, &mut cx);
                self.table.retire(idx, self.clock);
            }
            None => self.table.touch(idx, self.clock),
        }
    }

    /// Removes the entry at `idx`, closing it first (with `reason`, at `ts`) if it is open.
    fn drop_entry<S: StreamSink + ?Sized>(
        &mut self,
        idx: u32,
        reason: CloseReason,
        ts: u64,
        sink: &mut S,
    ) {
        let Some(mut flow) = self.table.remove(idx) else {
            return;
        };
        if !flow.closed {
            let mut cx = Cx {
                sink,
                stats: &mut self.stats,
                total_used: &mut self.buffered,
                limits: self.limits,
                conn: flow.id,
                ts,
            };
            flow.close(reason, &mut cx);
        }
        flow.release(&mut self.buffered);
    }

    /// Makes room for one more entry: forgets the oldest closed connection, or else closes the
    /// least recently active open one.
    fn make_room<S: StreamSink + ?Sized>(&mut self, ts: u64, sink: &mut S) {
        while self.table.len() >= self.config.max_flows {
            if let Some(idx) = self.table.oldest_retired() {
                self.drop_entry(idx, CloseReason::Evicted, ts, sink);
            } else if let Some(idx) = self.table.oldest_live()
                && let Some(flow) = self.table.flow(idx)
            {
                let timeout = self.config.idle_timeout_ns;
                if self.clock.saturating_sub(flow.last_active) > timeout {
                    let idle_ts = flow.last_active.saturating_add(timeout);
                    self.drop_entry(idx, CloseReason::IdleTimeout, idle_ts, sink);
                } else {
                    self.drop_entry(idx, CloseReason::Evicted, ts, sink);
                }
            } else {
                return;
            }
        }
    }
}
