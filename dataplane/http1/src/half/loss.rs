//! What a half does when bytes go missing (a gap) or its direction ends (FIN): cut the
//! message in progress short, report what was lost, and resynchronise.
//!
//! A message cut inside its head is still reported, with the head bytes captured, and paired
//! like any other: a cut request is the one the next response answers, a cut response answers
//! the oldest request waiting. That holds too for a start line cut before the scan could
//! recognise it (a request line cut before its version, as captures with a small snap length
//! show on every packet): while resynchronising, a plausible start line running into the gap
//! or the end is taken as the start of a message.

use super::{Body, Half, RespKind, Role, Sink, State};
use crate::head::Method;
use crate::types::Flags;

impl Half {
    /// Reports the message in progress, whose head is not complete, as cut short; false when
    /// it could not be (a response whose request is not known yet), its bytes then skipped.
    fn cut_head(&mut self, sink: &mut impl Sink) -> bool {
        if self.role == Role::Response && !self.have_target {
            match sink.response_target(self.msg.start_ns) {
                Some(m) => {
                    self.method = m;
                    self.have_target = true;
                }
                None => {
                    self.skipped += self.buf.len() as u64;
                    self.buf.clear();
                    self.started = false;
                    self.flags = Flags::NONE;
                    return false;
                }
            }
        }
        self.msg.head = std::mem::take(&mut self.buf);
        self.msg.head.truncate(self.max_head);
        self.flags |= Flags::INCOMPLETE;
        if self.role == Role::Request {
            // The method still frames the response (HEAD has no body, CONNECT may tunnel).
            let method = Method::of_head(&self.msg.head);
            sink.request_head(method, self.msg.start_ns, false);
        }
        self.pause_after = false;
        self.complete(sink, RespKind::Final);
        true
    }

    /// While resynchronising, reports a start line that runs into a gap (`gap`) or the end
    /// as the head of a message cut short; false when there is none.
    fn cut_start_line(&mut self, ts: u64, gap: bool, sink: &mut impl Sink) -> bool {
        let Some(start) = self.cut_start() else {
            return false;
        };
        let last_data = self.carry_ts.last().map_or(ts, |&(_, t)| t);
        self.skipped += start as u64;
        self.msg.start_ns = self.carry_time(start);
        let end = if gap { ts } else { last_data };
        self.msg.end_ns = end.max(self.msg.start_ns);
        self.buf.drain(..start.min(self.buf.len()));
        self.carry_ts.clear();
        self.started = true;
        self.synced = true;
        if gap {
            self.flags |= Flags::GAP;
        }
        self.cut_head(sink)
    }

    /// `len` bytes at `ts` are missing from this direction.
    pub(crate) fn gap(&mut self, ts: u64, len: u64, sink: &mut impl Sink) {
        if len == 0 {
            return;
        }
        match self.state {
            State::Done => {}
            State::Resync => {
                if !self.cut_start_line(ts, true, sink) {
                    self.skipped += self.buf.len() as u64;
                    match self.role {
                        // The gap may hold the answer to a request sent before it.
                        Role::Response => sink.response_lost(ts),
                        Role::Request => sink.request_unknown(),
                    }
                }
                self.lose_sync(false);
            }
            State::Head if !self.started => {
                if self.synced {
                    match self.role {
                        Role::Request => sink.request_lost(ts),
                        Role::Response => sink.response_lost(ts),
                    }
                }
                self.lose_sync(false);
            }
            State::Head => {
                self.flags |= Flags::GAP;
                self.msg.end_ns = ts;
                self.cut_head(sink);
                self.lose_sync(false);
            }
            State::Body => self.body_gap(ts, len, sink),
        }
        if self.state == State::Resync && self.buf.is_empty() {
            self.after_gap = true;
        }
    }

    /// This direction ended (FIN) at `ts`.
    pub(crate) fn end(&mut self, ts: u64, sink: &mut impl Sink) {
        match self.state {
            State::Done => {}
            State::Resync => {
                if !self.cut_start_line(ts, false, sink) {
                    self.skipped += self.buf.len() as u64;
                }
            }
            State::Head if !self.started => {}
            State::Head => {
                self.cut_head(sink);
            }
            State::Body => {
                if self.body != Body::Close {
                    self.flags |= Flags::INCOMPLETE;
                }
                self.pause_after = false;
                self.complete(sink, RespKind::Final);
            }
        }
        self.abandon();
    }
}
