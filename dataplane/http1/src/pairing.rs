//! Pairs requests with responses in order (the n-th response answers the n-th request), with
//! placeholders for requests that were never seen, and hands out exchanges in order once both
//! sides are settled.
//!
//! Each request head opens a slot; a response claims the oldest unclaimed slot when its first
//! byte arrives, unless it started before that request did (then it answers a request that was
//! never seen and gets a placeholder). Slots are identified by sequence number so that the
//! request and the response in progress find theirs even as slots are handed out around them.

use std::collections::VecDeque;

use crate::half::{RespKind, Sink};
use crate::head::Method;
use crate::types::{Exchange, Flags, Message};

/// Interim responses kept per exchange; more are counted as dropped.
const MAX_INTERIM: usize = 16;

#[derive(Debug)]
struct Slot {
    seq: u64,
    request: Option<Message>,
    req_done: bool,
    req_start: u64,
    /// Stands for a request that was never seen.
    placeholder: bool,
    method: Method,
    claimed: bool,
    response: Option<Message>,
    resp_done: bool,
    interim: Vec<Message>,
    flags: Flags,
}

/// The queue of exchanges in progress on one connection.
#[derive(Debug)]
pub(crate) struct Pairing {
    q: VecDeque<Slot>,
    next_seq: u64,
    req_slot: Option<u64>,
    resp_slot: Option<u64>,
    /// A request that may switch protocols awaits its response; requests after it are held.
    pub awaiting_upgrade: Option<u64>,
    /// No more requests will come.
    pub req_dead: bool,
    /// No more responses will come.
    pub resp_dead: bool,
    /// Responses stop waiting for their requests (the hold bound was reached).
    pub orphan_mode: bool,
    max_pipelined: usize,
    /// Messages dropped at a bound.
    pub dropped: u64,
}

impl Pairing {
    pub(crate) fn new(max_pipelined: usize) -> Self {
        Self {
            q: VecDeque::new(),
            next_seq: 0,
            req_slot: None,
            resp_slot: None,
            awaiting_upgrade: None,
            req_dead: false,
            resp_dead: false,
            orphan_mode: false,
            max_pipelined: max_pipelined.max(1),
            dropped: 0,
        }
    }

    /// Whether a response could start now without waiting for a request.
    pub(crate) fn can_respond(&self) -> bool {
        self.resp_slot.is_some()
            || self.req_dead
            || self.orphan_mode
            || self.q.iter().any(|s| !s.claimed)
    }

    fn find(&mut self, seq: u64) -> Option<&mut Slot> {
        let front = self.q.front()?.seq;
        // Slots are mostly in sequence order; placeholders inserted mid-queue break it.
        let guess = usize::try_from(seq.wrapping_sub(front)).unwrap_or(usize::MAX);
        if self.q.get(guess).is_some_and(|s| s.seq == seq) {
            return self.q.get_mut(guess);
        }
        self.q.iter_mut().find(|s| s.seq == seq)
    }

    fn new_slot(&mut self, req_start: u64, method: Method) -> Slot {
        let seq = self.next_seq;
        self.next_seq += 1;
        Slot {
            seq,
            request: None,
            req_done: false,
            req_start,
            placeholder: false,
            method,
            claimed: false,
            response: None,
            resp_done: false,
            interim: Vec::new(),
            flags: Flags::NONE,
        }
    }

    fn placeholder(&mut self, ts: u64, flags: Flags) -> Slot {
        let mut slot = self.new_slot(ts, Method::Other);
        slot.placeholder = true;
        slot.req_done = true;
        slot.flags = flags | Flags::NO_REQUEST | Flags::INCOMPLETE;
        slot
    }

    /// Hands out every settled slot at the front, in order.
    pub(crate) fn flush(&mut self, out: &mut Vec<Exchange>) {
        while let Some(front) = self.q.front() {
            let req_ok = front.req_done || self.req_dead;
            let resp_ok = front.resp_done || self.resp_dead;
            if !(req_ok && resp_ok) {
                break;
            }
            if let Some(slot) = self.q.pop_front() {
                self.emit(slot, out);
            }
        }
    }

    /// Hands out everything: the connection is gone or no longer HTTP.
    pub(crate) fn flush_all(&mut self, out: &mut Vec<Exchange>) {
        self.req_dead = true;
        self.resp_dead = true;
        self.awaiting_upgrade = None;
        self.flush(out);
    }

    fn emit(&mut self, slot: Slot, out: &mut Vec<Exchange>) {
        if self.awaiting_upgrade == Some(slot.seq) {
            self.awaiting_upgrade = None;
        }
        let mut flags = slot.flags;
        if slot.request.is_none() {
            flags |= Flags::NO_REQUEST | Flags::INCOMPLETE;
        }
        if slot.response.is_none() {
            flags |= Flags::NO_RESPONSE | Flags::INCOMPLETE;
        }
        if slot.request.is_none() && slot.response.is_none() && slot.interim.is_empty() {
            self.dropped += 1;
            return;
        }
        out.push(Exchange {
            request: slot.request,
            response: slot.response,
            flags,
            interim: slot.interim,
        });
    }

    fn enforce_pipeline_bound(&mut self, out: &mut Vec<Exchange>) {
        while self.q.len() > self.max_pipelined {
            if let Some(slot) = self.q.pop_front() {
                self.emit(slot, out);
            }
        }
    }
}

/// The [`Sink`] the halves report to: the pairing queue and the output.
pub(crate) struct Ctx<'a> {
    pub pairing: &'a mut Pairing,
    pub out: &'a mut Vec<Exchange>,
}

impl Sink for Ctx<'_> {
    fn request_head(&mut self, method: Method, start_ns: u64, pause_after: bool) {
        let p = &mut *self.pairing;
        let slot = p.new_slot(start_ns, method);
        let seq = slot.seq;
        p.q.push_back(slot);
        p.req_slot = Some(seq);
        if pause_after {
            p.awaiting_upgrade = Some(seq);
        }
        p.orphan_mode = false;
        p.enforce_pipeline_bound(self.out);
    }

    fn request_done(&mut self, msg: Message, flags: Flags) {
        let p = &mut *self.pairing;
        let slot = match p.req_slot.take() {
            Some(seq) => p.find(seq),
            None => None,
        };
        match slot {
            Some(slot) => {
                slot.request = Some(msg);
                slot.req_done = true;
                slot.flags |= flags;
            }
            None => self.out.push(Exchange {
                request: Some(msg),
                response: None,
                flags: flags | Flags::NO_RESPONSE | Flags::INCOMPLETE,
                interim: Vec::new(),
            }),
        }
        p.flush(self.out);
    }

    fn request_lost(&mut self, ts_ns: u64) {
        let p = &mut *self.pairing;
        let slot = p.placeholder(ts_ns, Flags::GAP);
        p.q.push_back(slot);
        p.enforce_pipeline_bound(self.out);
        p.flush(self.out);
    }

    fn request_unknown(&mut self) {
        self.pairing.orphan_mode = true;
    }

    fn response_target(&mut self, start_ns: u64) -> Option<Method> {
        let p = &mut *self.pairing;
        if let Some(seq) = p.resp_slot {
            if let Some(slot) = p.find(seq) {
                return Some(slot.method);
            }
            p.resp_slot = None;
        }
        if let Some(i) = p.q.iter().position(|s| !s.claimed) {
            let predates =
                p.q.get(i)
                    .is_some_and(|s| !s.placeholder && s.req_start > start_ns);
            if predates {
                // Started before its supposed request did: it answers one never seen.
                let mut slot = p.placeholder(start_ns, Flags::NONE);
                slot.claimed = true;
                p.resp_slot = Some(slot.seq);
                p.q.insert(i, slot);
                return Some(Method::Other);
            }
            let slot = p.q.get_mut(i)?;
            slot.claimed = true;
            p.resp_slot = Some(slot.seq);
            return Some(slot.method);
        }
        if p.req_dead || p.orphan_mode {
            let mut slot = p.placeholder(start_ns, Flags::NONE);
            slot.claimed = true;
            p.resp_slot = Some(slot.seq);
            p.q.push_back(slot);
            p.enforce_pipeline_bound(self.out);
            return Some(Method::Other);
        }
        None
    }

    fn response_done(&mut self, msg: Message, flags: Flags, kind: RespKind) {
        let p = &mut *self.pairing;
        let seq = if kind == RespKind::Interim {
            p.resp_slot
        } else {
            p.resp_slot.take()
        };
        let mut slot = match seq {
            Some(seq) => p.find(seq),
            None => None,
        };
        if kind == RespKind::Interim {
            match slot.as_deref_mut() {
                Some(slot) if slot.interim.len() < MAX_INTERIM => slot.interim.push(msg),
                _ => p.dropped += 1,
            }
            return;
        }
        let extra = if kind == RespKind::Upgrade {
            Flags::UPGRADE
        } else {
            Flags::NONE
        };
        match slot {
            Some(slot) => {
                slot.response = Some(msg);
                slot.resp_done = true;
                slot.flags |= flags | extra;
                if kind != RespKind::Upgrade && p.awaiting_upgrade == seq {
                    p.awaiting_upgrade = None;
                }
            }
            None => self.out.push(Exchange {
                request: None,
                response: Some(msg),
                flags: flags | extra | Flags::NO_REQUEST | Flags::INCOMPLETE,
                interim: Vec::new(),
            }),
        }
        p.flush(self.out);
    }

    fn response_lost(&mut self, ts_ns: u64) {
        let p = &mut *self.pairing;
        let seq = match p.resp_slot.take() {
            Some(seq) => Some(seq),
            None => {
                let next = p.q.iter_mut().find(|s| !s.claimed);
                match next {
                    Some(s) if s.placeholder || s.req_start <= ts_ns => {
                        s.claimed = true;
                        Some(s.seq)
                    }
                    _ => None,
                }
            }
        };
        let Some(seq) = seq else { return };
        if let Some(slot) = p.find(seq) {
            slot.resp_done = true;
            slot.flags |= Flags::NO_RESPONSE | Flags::INCOMPLETE | Flags::GAP;
        }
        if p.awaiting_upgrade == Some(seq) {
            p.awaiting_upgrade = None;
        }
        p.flush(self.out);
    }
}
