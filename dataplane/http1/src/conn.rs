//! The connection parser: routes each direction's bytes, gaps and ends to the half of its role,
//! detects the protocol (and swapped directions), holds one direction while it waits for the
//! other, and stops at a protocol switch.

use std::collections::VecDeque;

use tapline_reassembly::Direction;

use crate::half::{Feed, Half, Role, Stop};
use crate::pairing::{Ctx, Pairing};
use crate::types::{ConnState, Exchange, Http1Config, Http1Stats};

/// An event of one direction, held until that direction can go on.
#[derive(Debug, Clone, Copy)]
enum Held {
    /// This many bytes, next in the held byte buffer.
    Data(usize),
    Gap(u64),
    End,
}

/// The events of one direction waiting to be delivered, in order.
#[derive(Debug, Default)]
struct HeldQueue {
    bytes: Vec<u8>,
    events: VecDeque<(u64, Held)>,
}

impl HeldQueue {
    fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn push(&mut self, ts: u64, ev: Held, data: &[u8]) {
        if let (Held::Data(_), Some((last_ts, Held::Data(n)))) = (ev, self.events.back_mut())
            && *last_ts == ts
        {
            *n += data.len();
            self.bytes.extend_from_slice(data);
            return;
        }
        let ev = match ev {
            Held::Data(_) => Held::Data(data.len()),
            other => other,
        };
        self.bytes.extend_from_slice(data);
        self.events.push_back((ts, ev));
    }

    fn footprint(&self) -> (usize, usize) {
        (self.bytes.len(), self.events.len())
    }
}

/// HTTP/1 parser of one TCP connection: bytes per direction in, [`Exchange`]s out.
///
/// Feed it what the reassembler delivers, in order per direction, with capture timestamps.
/// Exchanges are pushed to `out` as soon as both their messages are settled; [`Self::close`]
/// hands out whatever remains, flagged.
#[derive(Debug)]
pub struct Http1Conn {
    cfg: Http1Config,
    state: ConnState,
    /// The direction carrying requests.
    req_dir: Direction,
    /// Indexed by role: 0 requests, 1 responses.
    halves: [Half; 2],
    /// Indexed by direction: 0 to the server, 1 to the client.
    held: [HeldQueue; 2],
    ended: [bool; 2],
    pairing: Pairing,
    stats: Http1Stats,
    closed: bool,
}

fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

impl Http1Conn {
    /// A parser for a new connection.
    pub fn new(config: Http1Config) -> Self {
        let halves = [
            Half::new(Role::Request, &config),
            Half::new(Role::Response, &config),
        ];
        let pairing = Pairing::new(config.max_pipelined);
        Self {
            cfg: config,
            state: ConnState::Detecting,
            req_dir: Direction::ToServer,
            halves,
            held: [HeldQueue::default(), HeldQueue::default()],
            ended: [false; 2],
            pairing,
            stats: Http1Stats::default(),
            closed: false,
        }
    }

    /// What the connection is believed to carry.
    pub fn state(&self) -> ConnState {
        self.state
    }

    /// The direction that carries requests: `ToServer` unless the bytes showed that the
    /// reassembler guessed the client wrong (a connection picked up mid-stream).
    pub fn request_direction(&self) -> Direction {
        self.req_dir
    }

    /// Counters of what was skipped, lost or ignored so far.
    pub fn stats(&self) -> Http1Stats {
        let mut s = self.stats;
        for h in &self.halves {
            s.skipped_bytes += h.skipped;
            s.ignored_bytes += h.ignored;
            s.parse_errors += h.parse_errors;
        }
        s.dropped_messages += self.pairing.dropped;
        s
    }

    /// Bytes `bytes` of direction `dir`, captured at `ts_ns`.
    pub fn data(&mut self, dir: Direction, ts_ns: u64, bytes: &[u8], out: &mut Vec<Exchange>) {
        if bytes.is_empty() {
            return;
        }
        if self.counted_only(bytes.len() as u64) {
            return;
        }
        self.dispatch(dir, ts_ns, Held::Data(bytes.len()), bytes, out);
        self.pump(out);
    }

    /// `len` bytes of direction `dir` are missing (a capture or reassembly gap) at `ts_ns`.
    pub fn gap(&mut self, dir: Direction, ts_ns: u64, len: u64, out: &mut Vec<Exchange>) {
        if len == 0 {
            return;
        }
        self.stats.gap_bytes += len;
        if self.counted_only(0) {
            return;
        }
        self.dispatch(dir, ts_ns, Held::Gap(len), &[], out);
        self.pump(out);
    }

    /// Direction `dir` ended (FIN) at `ts_ns`.
    pub fn end(&mut self, dir: Direction, ts_ns: u64, out: &mut Vec<Exchange>) {
        if self.counted_only(0) {
            return;
        }
        self.dispatch(dir, ts_ns, Held::End, &[], out);
        self.pump(out);
    }

    /// The connection is gone at `ts_ns`: everything still in progress is handed out, flagged.
    pub fn close(&mut self, ts_ns: u64, out: &mut Vec<Exchange>) {
        if self.closed {
            return;
        }
        if !matches!(self.state, ConnState::NotHttp | ConnState::Upgraded) {
            // Nothing more will come: neither side waits for the other any longer.
            self.pairing.awaiting_upgrade = None;
            self.pump(out);
            let req_dir = self.req_dir;
            self.dispatch(req_dir, ts_ns, Held::End, &[], out);
            self.pump(out);
            self.pairing.orphan_mode = true;
            self.pump(out);
            let resp_dir = self.req_dir.reverse();
            self.dispatch(resp_dir, ts_ns, Held::End, &[], out);
            self.pump(out);
            for q in &mut self.held {
                self.stats.ignored_bytes += q.bytes.len() as u64;
                *q = HeldQueue::default();
            }
            let mut ctx = Ctx {
                pairing: &mut self.pairing,
                out,
            };
            for half in &mut self.halves {
                half.end(ts_ns, &mut ctx);
            }
            self.pairing.flush_all(out);
        }
        self.closed = true;
    }

    /// Counts bytes that are no longer parsed; true when nothing more is to be done.
    fn counted_only(&mut self, len: u64) -> bool {
        match self.state {
            _ if self.closed => self.stats.ignored_bytes += len,
            ConnState::NotHttp => self.stats.ignored_bytes += len,
            ConnState::Upgraded => self.stats.upgraded_bytes += len,
            ConnState::Detecting | ConnState::Http => return false,
        }
        true
    }

    fn role_index(&self, dir: Direction) -> usize {
        if dir == self.req_dir { 0 } else { 1 }
    }

    /// Whether the half of `role` must wait for the other side.
    fn waits(&self, role: usize) -> bool {
        match self.halves.get(role) {
            Some(h) if role == 0 => self.pairing.awaiting_upgrade.is_some() && h.at_boundary(),
            Some(h) => h.needs_target() && !self.pairing.can_respond(),
            None => false,
        }
    }

    /// Delivers an event of `dir`, or holds it behind earlier ones or while its half waits.
    fn dispatch(
        &mut self,
        dir: Direction,
        ts: u64,
        ev: Held,
        data: &[u8],
        out: &mut Vec<Exchange>,
    ) {
        let d = dir_index(dir);
        if self.ended[d] {
            self.stats.ignored_bytes += data.len() as u64;
            return;
        }
        let held = &self.held[d];
        if !held.is_empty() || self.waits(self.role_index(dir)) {
            self.hold(dir, ts, ev, data);
            return;
        }
        match ev {
            Held::Data(_) => self.deliver_data(dir, ts, data, out),
            Held::Gap(len) => {
                let r = self.role_index(dir);
                let mut ctx = Ctx {
                    pairing: &mut self.pairing,
                    out,
                };
                if let Some(half) = self.halves.get_mut(r) {
                    half.gap(ts, len, &mut ctx);
                }
                // A start line cut by the gap may have ended detection.
                self.after_detect_step();
            }
            Held::End => {
                let r = self.role_index(dir);
                let mut ctx = Ctx {
                    pairing: &mut self.pairing,
                    out,
                };
                if let Some(half) = self.halves.get_mut(r) {
                    half.end(ts, &mut ctx);
                }
                self.after_detect_step();
                self.ended[d] = true;
                if r == 0 {
                    self.pairing.req_dead = true;
                } else {
                    self.pairing.resp_dead = true;
                }
                self.pairing.flush(out);
            }
        }
    }

    fn hold(&mut self, dir: Direction, ts: u64, ev: Held, data: &[u8]) {
        let d = dir_index(dir);
        let Some(q) = self.held.get_mut(d) else {
            return;
        };
        q.push(ts, ev, data);
        if q.bytes.len() > self.cfg.max_unpaired_bytes {
            // Waited long enough: go on without the other side.
            if self.role_index(dir) == 0 {
                self.pairing.awaiting_upgrade = None;
            } else {
                self.pairing.orphan_mode = true;
            }
        }
    }

    fn deliver_data(&mut self, dir: Direction, ts: u64, data: &[u8], out: &mut Vec<Exchange>) {
        let mut data = data;
        loop {
            let r = self.role_index(dir);
            let mut ctx = Ctx {
                pairing: &mut self.pairing,
                out: &mut *out,
            };
            let Some(half) = self.halves.get_mut(r) else {
                return;
            };
            let fed = half.feed(ts, data, &mut ctx);
            let (n, stop) = match fed {
                Feed::All => break,
                Feed::Stopped(n, stop) => (n, stop),
            };
            let rest = data.get(n..).unwrap_or(&[]);
            match stop {
                Stop::Stall | Stop::Pause => {
                    if !rest.is_empty() {
                        self.hold(dir, ts, Held::Data(rest.len()), rest);
                    }
                    break;
                }
                Stop::Upgrade => {
                    self.upgrade(rest.len() as u64, out);
                    return;
                }
                Stop::WrongRole => {
                    self.swap_roles();
                    self.after_detect_step();
                    data = rest;
                }
            }
        }
        self.after_detect_step();
    }

    /// The reassembler guessed the client wrong: the directions swap roles.
    fn swap_roles(&mut self) {
        self.req_dir = self.req_dir.reverse();
        self.halves.swap(0, 1);
        let [req, resp] = &mut self.halves;
        req.set_role(Role::Request);
        resp.set_role(Role::Response);
    }

    /// Leaves detection once a start line was found, or gives up on the connection.
    fn after_detect_step(&mut self) {
        if self.state != ConnState::Detecting {
            return;
        }
        if self.halves.iter().any(Half::synced) {
            self.state = ConnState::Http;
            for h in &mut self.halves {
                h.stop_detecting();
            }
            return;
        }
        let scanned: u64 = self
            .halves
            .iter()
            .map(|h| h.skipped + h.carried() as u64)
            .sum();
        if scanned > self.cfg.max_detect_bytes as u64 {
            self.state = ConnState::NotHttp;
            for h in &mut self.halves {
                h.abandon();
            }
            for q in &mut self.held {
                self.stats.ignored_bytes += q.bytes.len() as u64;
                *q = HeldQueue::default();
            }
        }
    }

    /// A protocol switch: nothing after it is HTTP; `rest` bytes of the current call remain.
    fn upgrade(&mut self, rest: u64, out: &mut Vec<Exchange>) {
        self.state = ConnState::Upgraded;
        self.stats.upgraded_bytes += rest;
        for q in &mut self.held {
            self.stats.upgraded_bytes += q.bytes.len() as u64;
            *q = HeldQueue::default();
        }
        for h in &mut self.halves {
            h.abandon();
        }
        self.pairing.flush_all(out);
    }

    /// Delivers held events while either direction can go on.
    fn pump(&mut self, out: &mut Vec<Exchange>) {
        loop {
            let mut progress = false;
            for dir in [Direction::ToServer, Direction::ToClient] {
                if matches!(self.state, ConnState::NotHttp | ConnState::Upgraded) {
                    return;
                }
                let d = dir_index(dir);
                let waiting = self.held.get(d).is_none_or(HeldQueue::is_empty)
                    || self.waits(self.role_index(dir));
                if waiting {
                    continue;
                }
                let Some(q) = self.held.get_mut(d) else {
                    continue;
                };
                let taken = std::mem::take(q);
                let before = taken.footprint();
                let mut off = 0;
                for &(ts, ev) in &taken.events {
                    let data = match ev {
                        Held::Data(n) => {
                            let data = taken.bytes.get(off..off + n).unwrap_or(&[]);
                            off += n;
                            data
                        }
                        Held::Gap(_) | Held::End => &[],
                    };
                    if matches!(self.state, ConnState::NotHttp | ConnState::Upgraded) {
                        self.counted_only(data.len() as u64);
                        continue;
                    }
                    self.dispatch(dir, ts, ev, data, out);
                }
                let after = self.held.get(d).map_or((0, 0), HeldQueue::footprint);
                progress |= after != before;
            }
            if !progress {
                return;
            }
        }
    }
}
