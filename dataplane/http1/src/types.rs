//! The values the connection parser takes and hands out: its configuration, the parsed
//! messages and exchanges, their flags, the connection state and counters.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// Limits of one [`crate::Http1Conn`]; every buffer a peer can grow is capped by one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http1Config {
    /// Longest head (start line, header lines and blank line) accepted; a longer one is a
    /// [`Flags::PARSE_ERROR`] and the parser resynchronises. Also caps a chunk-size line and the
    /// trailer section. Default 64 KiB.
    pub max_head_bytes: usize,
    /// Bytes of a body kept in [`Message::body`]; the rest is counted in
    /// [`Message::body_wire_len`] and the message flagged [`Flags::BODY_TRUNCATED`].
    /// Default 16 MiB.
    pub max_body_bytes: usize,
    /// Requests waiting for a response; past this the oldest is handed out with
    /// [`Flags::NO_RESPONSE`]. Default 1024.
    pub max_pipelined: usize,
    /// Bytes of one direction held back while it waits for the other (a response whose request
    /// has not been parsed yet, or requests after an `Upgrade`/`CONNECT` awaiting the answer).
    /// Past this the held side goes on without the other. Default 1 MiB.
    pub max_unpaired_bytes: usize,
    /// Bytes scanned on a connection that has not shown a single HTTP start line before it is
    /// declared [`ConnState::NotHttp`]. Default 1 MiB.
    pub max_detect_bytes: usize,
}

impl Default for Http1Config {
    fn default() -> Self {
        Self {
            max_head_bytes: 64 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            max_pipelined: 1024,
            max_unpaired_bytes: 1024 * 1024,
            max_detect_bytes: 1024 * 1024,
        }
    }
}

/// Bit set describing what happened to an [`Exchange`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u32);

impl Flags {
    /// No flag set.
    pub const NONE: Flags = Flags(0);
    /// A message was cut short: a gap, a close mid-message, or a missing request or response.
    pub const INCOMPLETE: Flags = Flags(1 << 0);
    /// Bytes were missing inside a message (a capture gap).
    pub const GAP: Flags = Flags(1 << 1);
    /// A body was longer than `max_body_bytes`; only its start was kept.
    pub const BODY_TRUNCATED: Flags = Flags(1 << 2);
    /// The request got no response before the connection or the response side ended.
    pub const NO_RESPONSE: Flags = Flags(1 << 3);
    /// The response came without a request seen (capture started mid-stream, or lost).
    pub const NO_REQUEST: Flags = Flags(1 << 4);
    /// A head or chunked framing could not be parsed.
    pub const PARSE_ERROR: Flags = Flags(1 << 5);
    /// `101 Switching Protocols` or a successful `CONNECT`: the rest of the connection is not
    /// HTTP/1 and is only counted.
    pub const UPGRADE: Flags = Flags(1 << 6);
    /// The response body was delimited by the connection close.
    pub const CLOSE_DELIMITED: Flags = Flags(1 << 7);

    const NAMES: [(Flags, &'static str); 8] = [
        (Flags::INCOMPLETE, "INCOMPLETE"),
        (Flags::GAP, "GAP"),
        (Flags::BODY_TRUNCATED, "BODY_TRUNCATED"),
        (Flags::NO_RESPONSE, "NO_RESPONSE"),
        (Flags::NO_REQUEST, "NO_REQUEST"),
        (Flags::PARSE_ERROR, "PARSE_ERROR"),
        (Flags::UPGRADE, "UPGRADE"),
        (Flags::CLOSE_DELIMITED, "CLOSE_DELIMITED"),
    ];

    /// Whether every bit of `other` is set here.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Sets the bits of `other`.
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// Clears the bits of `other`.
    pub fn remove(&mut self, other: Flags) {
        self.0 &= !other.0;
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags(")?;
        let mut first = true;
        let mut rest = self.0;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    write!(f, "|")?;
                }
                write!(f, "{name}")?;
                first = false;
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            if !first {
                write!(f, "|")?;
            }
            write!(f, "{rest:#x}")?;
        }
        write!(f, ")")
    }
}

/// One HTTP/1 message as captured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Capture timestamp of its first byte, in nanoseconds.
    pub start_ns: u64,
    /// Capture timestamp of its last byte, in nanoseconds.
    pub end_ns: u64,
    /// Start line, header lines and the blank line, exactly as on the wire.
    pub head: Vec<u8>,
    /// The body with the transfer coding (chunked) removed and any content coding kept; at most
    /// `max_body_bytes`.
    pub body: Vec<u8>,
    /// Raw trailer lines of a chunked body (without the final blank line); often empty.
    pub trailers: Vec<u8>,
    /// Body bytes on the wire, chunk framing and trailers included, kept or not.
    pub body_wire_len: u64,
}

/// A request and its response, as far as they were seen.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Exchange {
    /// The request, or `None` when only its response was seen ([`Flags::NO_REQUEST`]).
    pub request: Option<Message>,
    /// The final response, or `None` ([`Flags::NO_RESPONSE`]).
    pub response: Option<Message>,
    /// What happened to either message.
    pub flags: Flags,
    /// Interim `1xx` responses (not `101`) that came before the final one, in order.
    pub interim: Vec<Message>,
}

/// What the connection parser currently believes the connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// No HTTP/1 start line seen yet.
    Detecting,
    /// HTTP/1 messages are being parsed.
    Http,
    /// Detection failed: the bytes are only counted.
    NotHttp,
    /// The connection switched protocols (`101` or `CONNECT`): the rest is only counted.
    Upgraded,
}

/// Counters of one connection parser, for reporting what was not turned into exchanges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Http1Stats {
    /// Bytes skipped while looking for the next start line (garbage, lost sync, mid-stream).
    pub skipped_bytes: u64,
    /// Bytes reported missing by [`crate::Http1Conn::gap`].
    pub gap_bytes: u64,
    /// Bytes after a protocol switch.
    pub upgraded_bytes: u64,
    /// Bytes of a connection found not to be HTTP/1, and bytes after a direction ended.
    pub ignored_bytes: u64,
    /// Heads or chunk framings that failed to parse.
    pub parse_errors: u64,
    /// Messages dropped because a bound was reached (interim responses past the cap, or a
    /// placeholder for a lost request whose response was lost as well).
    pub dropped_messages: u64,
}
