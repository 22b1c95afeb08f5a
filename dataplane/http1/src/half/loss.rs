//! What a half does when bytes go missing (a gap) or its direction ends (FIN): cut the
//! message in progress short, report what was lost, and resynchronise.

use super::{Body, Half, RespKind, Role, Sink, State};
use crate::head::Method;
use crate::types::Flags;

impl Half {
    /// Reports the message in progress, whose head is not complete, as cut short.
    fn cut_head(&mut self, sink: &mut impl Sink) {
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
                    return;
                }
            }
        }
        self.msg.head = std::mem::take(&mut self.buf);
        self.msg.head.truncate(self.max_head);
        self.flags |= Flags::INCOMPLETE;
        if self.role == Role::Request {
            sink.request_head(Method::Other, self.msg.start_ns, false);
        }
        self.pause_after = false;
        self.complete(sink, RespKind::Final);
    }

    /// `len` bytes at `ts` are missing from this direction.
    pub(crate) fn gap(&mut self, ts: u64, len: u64, sink: &mut impl Sink) {
        if len == 0 {
            return;
        }
        match self.state {
            State::Done => {}
            State::Resync => {
                self.skipped += self.buf.len() as u64;
                match self.role {
                    // The gap may hold the answer to a request sent before it.
                    Role::Response => sink.response_lost(ts),
                    Role::Request => sink.request_unknown(),
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
    }

    /// This direction ended (FIN) at `ts`.
    pub(crate) fn end(&mut self, _ts: u64, sink: &mut impl Sink) {
        match self.state {
            State::Done => {}
            State::Resync => self.skipped += self.buf.len() as u64,
            State::Head if !self.started => {}
            State::Head => self.cut_head(sink),
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
