//! Body framing of one half: `Content-Length`, chunked (with extensions and trailers) and
//! close-delimited bodies, and what a gap inside each does to sync.

use super::{Body, Half, RespKind, Sink, State, Step, memchr};
use crate::types::Flags;

impl Half {
    /// Takes body bytes of the current message.
    pub(super) fn body_bytes(&mut self, ts: u64, data: &[u8], sink: &mut impl Sink) -> Step {
        self.msg.end_ns = ts;
        match self.body {
            Body::Length(rem) | Body::ChunkData(rem) => {
                let n = usize::try_from(rem).unwrap_or(usize::MAX).min(data.len());
                self.keep_body(data.get(..n).unwrap_or(data));
                self.msg.body_wire_len += n as u64;
                let rem = rem - n as u64;
                match (self.body, rem) {
                    (Body::Length(_), 0) => self.finish(n, sink, RespKind::Final),
                    (Body::Length(_), _) => {
                        self.body = Body::Length(rem);
                        Step::Go(n)
                    }
                    (_, 0) => {
                        self.body = Body::ChunkEnd { cr: false };
                        Step::Go(n)
                    }
                    _ => {
                        self.body = Body::ChunkData(rem);
                        Step::Go(n)
                    }
                }
            }
            Body::Close => {
                self.keep_body(data);
                self.msg.body_wire_len += data.len() as u64;
                Step::Go(data.len())
            }
            Body::ChunkEnd { cr } => match data.first() {
                Some(b'\r') if !cr => {
                    self.msg.body_wire_len += 1;
                    self.body = Body::ChunkEnd { cr: true };
                    Step::Go(1)
                }
                Some(b'\n') => {
                    self.msg.body_wire_len += 1;
                    self.body = Body::ChunkSize;
                    Step::Go(1)
                }
                _ => self.framing_error(0, sink),
            },
            Body::ChunkSize => {
                let nl = memchr(b'\n', data);
                let take = nl.map_or(data.len(), |j| j + 1);
                if self.buf.len() + take > self.max_line() {
                    return self.framing_error(take, sink);
                }
                self.msg.body_wire_len += take as u64;
                let line = data.get(..take).unwrap_or(data);
                if nl.is_none() {
                    self.buf.extend_from_slice(line);
                    return Step::Go(take);
                }
                let size = if self.buf.is_empty() {
                    chunk_size(line)
                } else {
                    self.buf.extend_from_slice(line);
                    let size = chunk_size(&self.buf);
                    self.buf.clear();
                    size
                };
                match size {
                    Some(0) => self.body = Body::Trailers,
                    Some(n) => self.body = Body::ChunkData(n),
                    None => return self.framing_error(take, sink),
                }
                Step::Go(take)
            }
            Body::Trailers => {
                let nl = memchr(b'\n', data);
                let take = nl.map_or(data.len(), |j| j + 1);
                if self.msg.trailers.len() + take > self.max_line() {
                    return self.framing_error(take, sink);
                }
                self.msg.body_wire_len += take as u64;
                self.msg
                    .trailers
                    .extend_from_slice(data.get(..take).unwrap_or(data));
                if nl.is_some() {
                    let t = &self.msg.trailers;
                    let blank = if t.as_slice() == b"\n" || t.ends_with(b"\n\n") {
                        1
                    } else if t.as_slice() == b"\r\n" || t.ends_with(b"\n\r\n") {
                        2
                    } else {
                        0
                    };
                    if blank > 0 {
                        let keep = self.msg.trailers.len() - blank;
                        self.msg.trailers.truncate(keep);
                        return self.finish(take, sink, RespKind::Final);
                    }
                }
                Step::Go(take)
            }
        }
    }

    /// Keeps body bytes up to the body limit, flagging the rest.
    fn keep_body(&mut self, bytes: &[u8]) {
        let room = self.max_body.saturating_sub(self.msg.body.len());
        if bytes.len() > room {
            self.msg
                .body
                .extend_from_slice(bytes.get(..room).unwrap_or(&[]));
            self.flags |= Flags::BODY_TRUNCATED;
        } else {
            self.msg.body.extend_from_slice(bytes);
        }
    }

    /// Chunk framing does not parse after taking `consumed` bytes: the message ends broken.
    fn framing_error(&mut self, consumed: usize, sink: &mut impl Sink) -> Step {
        self.parse_errors += 1;
        self.flags |= Flags::PARSE_ERROR | Flags::INCOMPLETE;
        self.pause_after = false;
        self.complete(sink, RespKind::Final);
        self.lose_sync(false);
        Step::Go(consumed)
    }

    /// A gap of `len` bytes inside the body.
    pub(super) fn body_gap(&mut self, ts: u64, len: u64, sink: &mut impl Sink) {
        self.msg.end_ns = ts;
        self.flags |= Flags::GAP | Flags::INCOMPLETE;
        match self.body {
            Body::Close => self.msg.body_wire_len += len,
            Body::ChunkData(rem) if len <= rem => {
                self.msg.body_wire_len += len;
                self.body = if len == rem {
                    Body::ChunkEnd { cr: false }
                } else {
                    Body::ChunkData(rem - len)
                };
            }
            Body::Length(rem) if len < rem => {
                self.msg.body_wire_len += len;
                self.body = Body::Length(rem - len);
            }
            Body::Length(rem) => {
                // The gap runs to the end of the body, or past it into what follows.
                self.msg.body_wire_len += rem;
                self.pause_after = false;
                self.complete(sink, RespKind::Final);
                if len > rem && self.state == State::Head {
                    self.gap(ts, len - rem, sink);
                }
            }
            _ => {
                // Chunk framing lost: the message ends here, cut short.
                self.pause_after = false;
                self.complete(sink, RespKind::Final);
                self.lose_sync(false);
            }
        }
    }
}

/// Parses a chunk-size line (hex size, optional whitespace and extensions, line ending).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return None;
    }
    let mut size = 0u64;
    for &b in line.get(..digits)? {
        let d = char::from(b).to_digit(16)?;
        size = size.checked_mul(16)?.checked_add(u64::from(d))?;
    }
    let rest = line.get(digits..)?;
    let rest = rest.trim_ascii_start();
    if rest.is_empty() || rest.first() == Some(&b';') {
        Some(size)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::chunk_size;

    #[test]
    fn chunk_size_lines() {
        assert_eq!(chunk_size(b"1a\r\n"), Some(26));
        assert_eq!(chunk_size(b"0\n"), Some(0));
        assert_eq!(chunk_size(b"A;name=value;x\r\n"), Some(10));
        assert_eq!(chunk_size(b"5 ; ext\r\n"), Some(5));
        assert_eq!(chunk_size(b"ffffffffffffffff\r\n"), Some(u64::MAX));
        assert_eq!(chunk_size(b"1ffffffffffffffff\r\n"), None);
        assert_eq!(chunk_size(b"\r\n"), None);
        assert_eq!(chunk_size(b"x\r\n"), None);
        assert_eq!(chunk_size(b"5 x\r\n"), None);
        assert_eq!(chunk_size(b"5"), None);
    }
}
