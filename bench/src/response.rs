//! Reading HTTP/1.1 responses off a keep-alive connection: the head is parsed, the body is
//! skipped by its `Content-Length`. Only what the load generator needs; bodies are never kept.

use std::io::{ErrorKind, Read};

use crate::LoadError;

/// The largest response head accepted; a longer one is an error, not an allocation.
pub const MAX_HEAD: usize = 64 * 1024;

/// Headers parsed per response; more is an error.
const MAX_HEADERS: usize = 32;

/// What the load generator keeps of one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseRepr {
    /// The status code.
    pub status: u16,
    /// Body length, from `Content-Length`.
    pub body_len: u64,
    /// Head plus body bytes.
    pub wire_len: u64,
    /// Whether the server said `Connection: close`.
    pub close: bool,
}

/// Reads responses one after another from a byte stream, with a buffer that is reused.
#[derive(Debug)]
pub struct ResponseReader<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R: Read> ResponseReader<R> {
    /// Wraps a stream; the buffer holds [`MAX_HEAD`] bytes.
    pub fn new(inner: R) -> Self {
        ResponseReader {
            inner,
            buf: vec![0; MAX_HEAD].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// The wrapped stream, for writing requests on the same connection.
    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Reads one whole response: its head, then its body (discarded).
    ///
    /// # Errors
    /// [`LoadError::Io`] on a read error, [`LoadError::Closed`] when the stream ends first,
    /// [`LoadError::BadResponse`] for a head that does not parse, is too long, or has no usable
    /// `Content-Length`.
    pub fn read_response(&mut self) -> Result<ResponseRepr, LoadError> {
        let (head_len, status, body_len, close) = loop {
            if let Some(head) = self.parse_head()? {
                break head;
            }
            if self.start == 0 && self.end == self.buf.len() {
                return Err(LoadError::BadResponse(format!(
                    "response head longer than {MAX_HEAD} bytes"
                )));
            }
            self.fill()?;
        };
        self.start += head_len;
        let mut left = body_len;
        loop {
            let have = u64::try_from(self.end - self.start).unwrap_or(u64::MAX);
            let take = have.min(left);
            // `take <= have`, which is a usize.
            self.start += usize::try_from(take).unwrap_or(0);
            left -= take;
            if left == 0 {
                break;
            }
            self.fill()?;
        }
        Ok(ResponseRepr {
            status,
            body_len,
            wire_len: body_len + u64::try_from(head_len).unwrap_or(u64::MAX),
            close,
        })
    }

    /// Parses a complete head from the buffer: `(head length, status, body length, close)`.
    fn parse_head(&self) -> Result<Option<(usize, u16, u64, bool)>, LoadError> {
        let bytes = self.buf.get(self.start..self.end).unwrap_or_default();
        if bytes.is_empty() {
            return Ok(None);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let head_len = match resp.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(LoadError::BadResponse(format!("unparsable head: {e}"))),
        };
        let status = resp.code.unwrap_or(0);
        let mut body_len = None;
        let mut close = false;
        for h in resp.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let text = std::str::from_utf8(h.value).unwrap_or("");
                let n = text
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| LoadError::BadResponse(format!("bad Content-Length {text:?}")))?;
                body_len = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(LoadError::BadResponse(
                    "Transfer-Encoding is not supported; the server must send Content-Length"
                        .into(),
                ));
            } else if h.name.eq_ignore_ascii_case("connection") {
                close = h
                    .value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
            }
        }
        let body_len = body_len.ok_or_else(|| {
            LoadError::BadResponse(format!("status {status} response without Content-Length"))
        })?;
        Ok(Some((head_len, status, body_len, close)))
    }

    /// Reads more bytes into the buffer, first moving unread bytes to its front.
    fn fill(&mut self) -> Result<(), LoadError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let room = self.buf.get_mut(self.end..).unwrap_or_default();
        loop {
            match self.inner.read(room) {
                Ok(0) => return Err(LoadError::Closed),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(LoadError::Io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per call, to split heads and bodies.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn response(status: u16, body: &[u8], extra: &str) -> Vec<u8> {
        let mut v = format!(
            "HTTP/1.1 {status} X\r\nServer: t\r\nContent-Length: {}\r\n{extra}\r\n",
            body.len()
        )
        .into_bytes();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn reads_back_to_back_responses_at_every_split() {
        let mut wire = Vec::new();
        wire.extend(response(200, b"hello", ""));
        wire.extend(response(404, &[7u8; 3000], ""));
        wire.extend(response(200, b"", "Connection: keep-alive, close\r\n"));
        for step in [1, 2, 7, 100, 70_000] {
            let mut r = ResponseReader::new(Trickle { data: &wire, step });
            let a = r.read_response().unwrap();
            assert_eq!((a.status, a.body_len, a.close), (200, 5, false));
            let b = r.read_response().unwrap();
            assert_eq!((b.status, b.body_len, b.close), (404, 3000, false));
            let c = r.read_response().unwrap();
            assert_eq!((c.status, c.body_len, c.close), (200, 0, true));
            assert_eq!(a.wire_len + b.wire_len + c.wire_len, wire.len() as u64);
            assert!(matches!(r.read_response(), Err(LoadError::Closed)));
        }
    }

    #[test]
    fn body_larger_than_buffer_is_skipped() {
        let body = vec![1u8; 3 * MAX_HEAD + 17];
        let mut wire = response(200, &body, "");
        wire.extend(response(200, b"x", ""));
        let mut r = ResponseReader::new(wire.as_slice());
        assert_eq!(r.read_response().unwrap().body_len, body.len() as u64);
        assert_eq!(r.read_response().unwrap().body_len, 1);
    }

    #[test]
    fn truncated_body_is_closed() {
        let wire = response(200, b"hello", "");
        let mut r = ResponseReader::new(&wire[..wire.len() - 1]);
        assert!(matches!(r.read_response(), Err(LoadError::Closed)));
    }

    #[test]
    fn rejects_missing_or_bad_length_and_chunked() {
        for wire in [
            &b"HTTP/1.1 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"NOT HTTP\r\n\r\n",
        ] {
            let mut r = ResponseReader::new(wire);
            assert!(
                matches!(r.read_response(), Err(LoadError::BadResponse(_))),
                "{wire:?}"
            );
        }
    }

    #[test]
    fn rejects_endless_head() {
        let mut wire = b"HTTP/1.1 200 OK\r\n".to_vec();
        while wire.len() < 2 * MAX_HEAD {
            wire.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let mut r = ResponseReader::new(wire.as_slice());
        assert!(matches!(r.read_response(), Err(LoadError::BadResponse(_))));
    }
}
