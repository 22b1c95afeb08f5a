//! One direction of an HTTP/1 connection: turns the bytes of the client (request role) or the
//! server (response role) into messages, resynchronising on the next plausible start line
//! whenever sync is lost.
//!
//! A half knows nothing of the other direction; what it needs from it (the method of the
//! request a response answers) and what it reports (heads, complete messages, losses) go
//! through a [`Sink`]. When it cannot go on — a response whose request is not known yet, a
//! request after an `Upgrade` awaiting the answer, a protocol switch — it stops and says how
//! many bytes it took, so the caller can hold the rest.

mod body;
mod loss;
mod resync;

use crate::detect::{LineKind, find_head_end};
use crate::head::{HeadInfo, HeadParse, Method, parse_head};
use crate::types::{Flags, Http1Config, Message};

/// Which side of the exchange a half parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Requests (the client's bytes).
    Request,
    /// Responses (the server's bytes).
    Response,
}

/// How a response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RespKind {
    /// A `1xx` other than `101`: the final response is still to come.
    Interim,
    /// The final response.
    Final,
    /// `101` or a 2xx to `CONNECT`: the final response, and the end of HTTP on the connection.
    Upgrade,
}

/// What a half reports to, and asks of, the connection.
pub(crate) trait Sink {
    /// A request head was parsed; `pause_after` asks to hold further requests until its
    /// response tells whether the connection switches protocols.
    fn request_head(&mut self, method: Method, start_ns: u64, pause_after: bool);
    /// The request whose head was last reported is complete (or cut short, per `flags`).
    fn request_done(&mut self, msg: Message, flags: Flags);
    /// A gap swallowed the start of at least one request.
    fn request_lost(&mut self, ts_ns: u64);
    /// A gap hit the request side while it was out of sync: responses waiting for a request
    /// should not wait for one that may be gone.
    fn request_unknown(&mut self);
    /// A response starts at `start_ns`: the method of the request it answers, or `None` to wait.
    fn response_target(&mut self, start_ns: u64) -> Option<Method>;
    /// A response is complete (or cut short, per `flags`).
    fn response_done(&mut self, msg: Message, flags: Flags, kind: RespKind);
    /// A gap swallowed the start of at least one response.
    fn response_lost(&mut self, ts_ns: u64);
}

/// Why a half stopped before taking all the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// A response needs its request first.
    Stall,
    /// A request that may switch protocols is complete; hold what follows.
    Pause,
    /// The connection switched protocols; the rest is not HTTP.
    Upgrade,
    /// While detecting, the start line found belongs to the other role.
    WrongRole,
}

/// Result of [`Half::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feed {
    /// Every byte was taken.
    All,
    /// Stopped after taking this many bytes.
    Stopped(usize, Stop),
}

enum Step {
    Go(usize),
    Stop(usize, Stop),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Scanning for a start line; `buf` may hold a candidate line that began earlier.
    Resync,
    /// At or inside a head; `buf` holds the bytes of a partial head.
    Head,
    /// Inside the body of `msg`, framed as `body`.
    Body,
    /// Nothing more is parsed in this direction.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Length(u64),
    Close,
    ChunkSize,
    ChunkData(u64),
    ChunkEnd { cr: bool },
    Trailers,
}

/// The parser of one direction.
#[derive(Debug)]
pub(crate) struct Half {
    role: Role,
    state: State,
    body: Body,
    /// Partial head, resync candidate line, or partial chunk-size line.
    buf: Vec<u8>,
    /// Resync: the first byte of `buf` (or the next byte, if empty) begins a line.
    line_start: bool,
    /// Resync: the first byte of `buf` (or the next byte, if empty) is the first after a gap,
    /// so a message may begin there (in a capture with a small snap length, each packet's
    /// captured bytes follow a gap and most messages begin a packet).
    after_gap: bool,
    /// Resync: anchors before this position of `buf` were examined.
    scan_pos: usize,
    /// Resync: where each call's bytes begin in `buf`, with their capture time.
    carry_ts: Vec<(usize, u64)>,
    /// Accept either kind of start line while resyncing, stopping on the other role's.
    detecting: bool,
    /// A start line of this half's role has been found.
    synced: bool,
    /// The current message's first byte has been seen; `msg.start_ns` is valid.
    started: bool,
    /// Response: the request this one answers is known (`method` is its method).
    have_target: bool,
    /// Request: this request's method; response: the answered request's.
    method: Method,
    /// Request: hold what follows this request (CONNECT or Upgrade).
    pause_after: bool,
    msg: Message,
    flags: Flags,
    max_head: usize,
    max_body: usize,
    /// Bytes skipped while resynchronising.
    pub skipped: u64,
    /// Bytes received after this direction was done.
    pub ignored: u64,
    /// Heads or framings that failed to parse.
    pub parse_errors: u64,
}

impl Half {
    /// A half at the start of a stream, detecting.
    pub(crate) fn new(role: Role, cfg: &Http1Config) -> Self {
        Self {
            role,
            state: State::Resync,
            body: Body::Close,
            buf: Vec::new(),
            line_start: true,
            after_gap: false,
            scan_pos: 0,
            carry_ts: Vec::new(),
            detecting: true,
            synced: false,
            started: false,
            have_target: false,
            method: Method::Other,
            pause_after: false,
            msg: Message::default(),
            flags: Flags::NONE,
            max_head: cfg.max_head_bytes.max(16),
            max_body: cfg.max_body_bytes,
            skipped: 0,
            ignored: 0,
            parse_errors: 0,
        }
    }

    /// Whether a start line of this half's role has been found.
    pub(crate) fn synced(&self) -> bool {
        self.synced
    }

    /// Bytes held while scanning a candidate line (counted as scanned during detection).
    pub(crate) fn carried(&self) -> usize {
        if self.state == State::Resync {
            self.buf.len()
        } else {
            0
        }
    }

    /// Between two messages (the next byte starts a new one).
    pub(crate) fn at_boundary(&self) -> bool {
        self.state == State::Head && !self.started
    }

    /// A response that cannot start before the request it answers is known.
    pub(crate) fn needs_target(&self) -> bool {
        self.role == Role::Response && self.state == State::Head && !self.have_target
    }

    /// Ends detection: from now on only this half's own start lines are accepted.
    pub(crate) fn stop_detecting(&mut self) {
        self.detecting = false;
    }

    /// Switches the role (the connection found the directions swapped).
    pub(crate) fn set_role(&mut self, role: Role) {
        self.role = role;
    }

    /// Stops parsing for good, dropping whatever is in progress without reporting it.
    pub(crate) fn abandon(&mut self) {
        self.state = State::Done;
        self.buf = Vec::new();
        self.msg = Message::default();
        self.started = false;
    }

    /// Takes `data` (captured at `ts`), reporting messages to `sink`.
    pub(crate) fn feed(&mut self, ts: u64, data: &[u8], sink: &mut impl Sink) -> Feed {
        let mut off = 0;
        while let Some(rest) = data.get(off..).filter(|r| !r.is_empty()) {
            let step = match self.state {
                State::Resync => self.resync(ts, rest),
                State::Head => self.head(ts, rest, sink),
                State::Body => self.body_bytes(ts, rest, sink),
                State::Done => {
                    self.ignored += rest.len() as u64;
                    Step::Go(rest.len())
                }
            };
            match step {
                Step::Go(n) => off += n,
                Step::Stop(n, why) => return Feed::Stopped(off + n, why),
            }
        }
        Feed::All
    }

    fn max_line(&self) -> usize {
        self.max_head
    }

    fn accepts(&self, kind: LineKind) -> bool {
        match kind {
            LineKind::Request => self.detecting || self.role == Role::Request,
            LineKind::Response => self.detecting || self.role == Role::Response,
            LineKind::Maybe | LineKind::No => false,
        }
    }

    /// Enters resync; `line_start` says whether the next byte surely begins a line (not so
    /// after a gap: what follows may be the tail of a line, such as `ET / HTTP/1.1`).
    fn lose_sync(&mut self, line_start: bool) {
        self.state = State::Resync;
        self.line_start = line_start;
        self.after_gap = false;
        self.scan_pos = 0;
        self.carry_ts.clear();
        self.buf.clear();
        self.started = false;
    }

    /// Parses (or accumulates) a head.
    fn head(&mut self, ts: u64, data: &[u8], sink: &mut impl Sink) -> Step {
        if !self.started {
            let lead = data
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if lead > 0 {
                return Step::Go(lead);
            }
        }
        if self.role == Role::Response && !self.have_target {
            let start = if self.started { self.msg.start_ns } else { ts };
            match sink.response_target(start) {
                Some(m) => {
                    self.method = m;
                    self.have_target = true;
                }
                None => return Step::Stop(0, Stop::Stall),
            }
        }
        if !self.started {
            self.started = true;
            self.msg.start_ns = ts;
        }
        self.msg.end_ns = ts;
        if self.buf.is_empty() {
            return match parse_head(self.role == Role::Request, data) {
                HeadParse::Complete(n, info) if n <= self.max_head => {
                    self.msg
                        .head
                        .extend_from_slice(data.get(..n).unwrap_or(data));
                    self.begin_body(info, n, sink)
                }
                HeadParse::Complete(n, _) => {
                    self.head_error(data.get(..self.max_head).unwrap_or(data), sink);
                    self.lose_sync(true);
                    Step::Go(n)
                }
                HeadParse::Partial if data.len() < self.max_head => {
                    self.buf.extend_from_slice(data);
                    self.scan_pos = data.len().saturating_sub(3);
                    Step::Go(data.len())
                }
                HeadParse::Partial => {
                    let head = data.get(..self.max_head).unwrap_or(data);
                    self.head_error(head, sink);
                    self.lose_sync(false);
                    Step::Go(data.len())
                }
                HeadParse::Error => match find_head_end(data, 0) {
                    Some(end) => {
                        self.head_error(data.get(..end).unwrap_or(data), sink);
                        self.lose_sync(true);
                        Step::Go(end)
                    }
                    None => {
                        // Skip the broken start line so the scan goes on after it.
                        let nl = memchr(b'\n', data);
                        let take = nl.map_or(data.len(), |j| j + 1);
                        let head = data.get(..take.min(self.max_head)).unwrap_or(data);
                        self.head_error(head, sink);
                        self.lose_sync(nl.is_some());
                        Step::Go(take)
                    }
                },
            };
        }
        let old = self.buf.len();
        if old > self.max_head {
            // A start line found far back in the scan window: too long to be a head.
            let mut head = std::mem::take(&mut self.buf);
            head.truncate(self.max_head);
            self.head_error(&head, sink);
            self.buf = head;
            self.lose_sync(false);
            return Step::Go(0);
        }
        let take = self.max_head.saturating_sub(old).min(data.len());
        self.buf.extend_from_slice(data.get(..take).unwrap_or(data));
        let Some(end) = find_head_end(&self.buf, self.scan_pos) else {
            self.scan_pos = self.buf.len().saturating_sub(3);
            if self.buf.len() >= self.max_head {
                let head = std::mem::take(&mut self.buf);
                self.head_error(&head, sink);
                self.buf = head;
                self.lose_sync(false);
            }
            return Step::Go(take);
        };
        let consumed = end.saturating_sub(old);
        match parse_head(
            self.role == Role::Request,
            self.buf.get(..end).unwrap_or(&[]),
        ) {
            HeadParse::Complete(n, info) if n == end => {
                self.buf.truncate(end);
                std::mem::swap(&mut self.msg.head, &mut self.buf);
                self.buf.clear();
                self.begin_body(info, consumed, sink)
            }
            _ => {
                let head = std::mem::take(&mut self.buf);
                self.head_error(head.get(..end).unwrap_or(&head), sink);
                self.buf = head;
                self.lose_sync(true);
                Step::Go(consumed)
            }
        }
    }

    /// Reports a head that failed to parse as a broken message.
    fn head_error(&mut self, head: &[u8], sink: &mut impl Sink) {
        self.parse_errors += 1;
        self.msg.head.clear();
        self.msg
            .head
            .extend_from_slice(head.get(..self.max_head).unwrap_or(head));
        self.flags |= Flags::PARSE_ERROR | Flags::INCOMPLETE;
        if self.role == Role::Request {
            // The method still frames the response (HEAD has no body, CONNECT may tunnel).
            let method = Method::of_head(&self.msg.head);
            sink.request_head(method, self.msg.start_ns, false);
        }
        self.pause_after = false;
        self.complete(sink, RespKind::Final);
    }

    /// Decides how the body after a parsed head is framed.
    fn begin_body(&mut self, info: HeadInfo, consumed: usize, sink: &mut impl Sink) -> Step {
        let f = info.framing;
        let framed = match self.role {
            Role::Request => {
                self.method = info.method;
                self.pause_after = info.method == Method::Connect || f.upgrade;
                sink.request_head(info.method, self.msg.start_ns, self.pause_after);
                if f.transfer_encoding {
                    f.chunked.then_some(Body::ChunkSize)
                } else if f.bad_length {
                    None
                } else {
                    match f.content_length {
                        Some(n) if n > 0 => Some(Body::Length(n)),
                        _ => return self.finish(consumed, sink, RespKind::Final),
                    }
                }
            }
            Role::Response => {
                let status = info.status;
                let connect_ok = self.method == Method::Connect && (200..300).contains(&status);
                if status == 101 || connect_ok {
                    return self.finish(consumed, sink, RespKind::Upgrade);
                }
                if (100..200).contains(&status) {
                    return self.finish(consumed, sink, RespKind::Interim);
                }
                if self.method == Method::Head || status == 204 || status == 304 {
                    return self.finish(consumed, sink, RespKind::Final);
                }
                if f.transfer_encoding && f.chunked {
                    Some(Body::ChunkSize)
                } else if f.transfer_encoding {
                    self.flags |= Flags::CLOSE_DELIMITED;
                    Some(Body::Close)
                } else if f.bad_length {
                    None
                } else {
                    match f.content_length {
                        Some(0) => return self.finish(consumed, sink, RespKind::Final),
                        Some(n) => Some(Body::Length(n)),
                        None => {
                            self.flags |= Flags::CLOSE_DELIMITED;
                            Some(Body::Close)
                        }
                    }
                }
            }
        };
        match framed {
            Some(body) => {
                if let Body::Length(n) = body {
                    let hint = usize::try_from(n).unwrap_or(usize::MAX).min(self.max_body);
                    self.msg.body.reserve(hint.min(256 * 1024));
                }
                self.body = body;
                self.state = State::Body;
                Step::Go(consumed)
            }
            None => {
                // Unusable framing: the body cannot be delimited.
                self.parse_errors += 1;
                self.flags |= Flags::PARSE_ERROR | Flags::INCOMPLETE;
                let step = self.finish(consumed, sink, RespKind::Final);
                self.lose_sync(true);
                step
            }
        }
    }

    /// Completes the current message after taking `consumed` more bytes.
    fn finish(&mut self, consumed: usize, sink: &mut impl Sink, kind: RespKind) -> Step {
        match self.complete(sink, kind) {
            Some(stop) => Step::Stop(consumed, stop),
            None => Step::Go(consumed),
        }
    }

    /// Hands the current message to `sink` and gets ready for the next.
    fn complete(&mut self, sink: &mut impl Sink, kind: RespKind) -> Option<Stop> {
        let msg = std::mem::take(&mut self.msg);
        let flags = std::mem::take(&mut self.flags);
        self.state = State::Head;
        self.started = false;
        self.buf.clear();
        match self.role {
            Role::Request => {
                sink.request_done(msg, flags);
                std::mem::take(&mut self.pause_after).then_some(Stop::Pause)
            }
            Role::Response => {
                self.have_target = false;
                sink.response_done(msg, flags, kind);
                if kind == RespKind::Upgrade {
                    self.state = State::Done;
                    return Some(Stop::Upgrade);
                }
                None
            }
        }
    }
}

/// Position of the first `b` in `hay`.
fn memchr(b: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&c| c == b)
}
