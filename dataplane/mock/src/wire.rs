//! Reading requests off the wire: a head with `httparse`, then the body by `Content-Length` or
//! chunked framing. Pure functions over a buffer, so the server and the fuzzer share them.
//!
//! Everything is bounded: a head past [`Limits::max_head`] or with more than [`MAX_HEADERS`]
//! headers, a body past [`Limits::max_body`], a chunk-size line past 1 KiB are errors, each
//! with the status the mock answers it with ([`WireError::status`]).

use std::borrow::Cow;

/// Headers a request may have.
pub const MAX_HEADERS: usize = 100;
/// Longest chunk-size line (with extensions).
const MAX_CHUNK_LINE: usize = 1024;

/// Bounds on what one request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest head (request line, headers, blank line).
    pub max_head: usize,
    /// Longest body, after chunked decoding.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 64 * 1024,
            max_body: 16 * 1024 * 1024,
        }
    }
}

/// A complete request read from a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// The method.
    pub method: &'a str,
    /// The target exactly as received.
    pub target: &'a [u8],
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Headers in order.
    pub headers: Vec<(&'a str, &'a [u8])>,
    /// The body, chunked framing removed.
    pub body: Cow<'a, [u8]>,
    /// Whether the client keeps the connection open after the response.
    pub keep_alive: bool,
    /// Bytes of the buffer the request took.
    pub consumed: usize,
}

/// What a buffer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse<'a> {
    /// A whole request.
    Complete(Parsed<'a>),
    /// Not yet a whole head.
    NeedHead,
    /// A whole head, not yet the whole body; `expect_continue` when the client waits for
    /// `100 Continue` before sending it.
    NeedBody {
        /// The request had `Expect: 100-continue`.
        expect_continue: bool,
    },
}

/// A request that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The head is longer than the limit.
    #[error("request head longer than {limit} bytes")]
    HeadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// More headers than [`MAX_HEADERS`].
    #[error("more than {MAX_HEADERS} request headers")]
    TooManyHeaders,
    /// The head is not HTTP/1.x.
    #[error("malformed request head: {0}")]
    Invalid(String),
    /// `Content-Length` is not a number, or several disagree.
    #[error("bad Content-Length")]
    BadContentLength,
    /// The body is longer than the limit.
    #[error("request body of {len} bytes or more, the limit is {limit}")]
    BodyTooLarge {
        /// Bytes announced or decoded so far.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Chunked framing is malformed.
    #[error("malformed chunked body: {0}")]
    BadChunk(&'static str),
    /// A transfer coding other than chunked.
    #[error("unsupported Transfer-Encoding {0:?}")]
    UnsupportedTransferEncoding(String),
}

impl WireError {
    /// The status and reason the mock answers this error with (and then closes).
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            WireError::HeadTooLarge { .. } | WireError::TooManyHeaders => {
                (431, "Request Header Fields Too Large")
            }
            WireError::BodyTooLarge { .. } => (413, "Content Too Large"),
            WireError::UnsupportedTransferEncoding(_) => (501, "Not Implemented"),
            _ => (400, "Bad Request"),
        }
    }
}

/// Reads one request from the start of `buf`.
///
/// # Errors
/// [`WireError`] when the bytes are not a request this mock can read; the connection cannot
/// go on after one.
pub fn parse_request(buf: &[u8], limits: Limits) -> Result<Parse<'_>, WireError> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut storage);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > limits.max_head {
                Err(WireError::HeadTooLarge {
                    limit: limits.max_head,
                })
            } else {
                Ok(Parse::NeedHead)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(WireError::TooManyHeaders),
        Err(e) => return Err(WireError::Invalid(e.to_string())),
    };
    if head_len > limits.max_head {
        return Err(WireError::HeadTooLarge {
            limit: limits.max_head,
        });
    }
    let method = req.method.unwrap_or("");
    let target = req.path.unwrap_or("").as_bytes();
    let version = req.version.unwrap_or(1);
    let headers: Vec<(&str, &[u8])> = req.headers.iter().map(|h| (h.name, h.value)).collect();
    let has_token = |name: &str, token: &str| {
        headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case(name)
                && v.split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    let keep_alive = if version == 0 {
        has_token("connection", "keep-alive")
    } else {
        !has_token("connection", "close")
    };
    let expect_continue = version == 1 && has_token("expect", "100-continue");
    let rest = buf.get(head_len..).unwrap_or_default();

    let codings: Vec<&[u8]> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .collect();
    let (body, body_len) = if let Some(last) = codings.last() {
        if !last.eq_ignore_ascii_case(b"chunked") {
            return Err(WireError::UnsupportedTransferEncoding(
                String::from_utf8_lossy(last).into_owned(),
            ));
        }
        match decode_chunked(rest, limits.max_body)? {
            Some((body, used)) => (Cow::Owned(body), used),
            None => return Ok(Parse::NeedBody { expect_continue }),
        }
    } else {
        let length = content_length(&headers)?;
        if length > limits.max_body {
            return Err(WireError::BodyTooLarge {
                len: length,
                limit: limits.max_body,
            });
        }
        match rest.get(..length) {
            Some(body) => (Cow::Borrowed(body), length),
            None => return Ok(Parse::NeedBody { expect_continue }),
        }
    };
    Ok(Parse::Complete(Parsed {
        method,
        target,
        version,
        headers,
        body,
        keep_alive,
        consumed: head_len + body_len,
    }))
}

/// The request's body length from `Content-Length` (0 without one).
fn content_length(headers: &[(&str, &[u8])]) -> Result<usize, WireError> {
    let mut length: Option<usize> = None;
    for (_, value) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        for part in value.split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) || part.len() > 18 {
                return Err(WireError::BadContentLength);
            }
            let n: usize = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(WireError::BadContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(WireError::BadContentLength);
            }
            length = Some(n);
        }
    }
    Ok(length.unwrap_or(0))
}

/// Decodes a chunked body at the start of `data`: the body and the bytes it took (trailers
/// included, which are dropped), or `None` when it is not complete yet.
///
/// # Errors
/// [`WireError::BadChunk`] on malformed framing, [`WireError::BodyTooLarge`] past `max_body`.
pub fn decode_chunked(data: &[u8], max_body: usize) -> Result<Option<(Vec<u8>, usize)>, WireError> {
    let mut body = Vec::new();
    let mut at = 0usize;
    loop {
        let Some((line, next)) = line_at(data, at, MAX_CHUNK_LINE)? else {
            return Ok(None);
        };
        let digits = line
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(WireError::BadChunk("chunk size is not hexadecimal"));
        }
        let size = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or(WireError::BadChunk("chunk size is not hexadecimal"))?;
        at = next;
        if size == 0 {
            // Trailer lines up to an empty one.
            let mut trailer_bytes = 0usize;
            loop {
                let Some((line, next)) = line_at(data, at, MAX_CHUNK_LINE * 64)? else {
                    return Ok(None);
                };
                trailer_bytes += next - at;
                if trailer_bytes > MAX_CHUNK_LINE * 64 {
                    return Err(WireError::BadChunk("trailers too long"));
                }
                at = next;
                if line.is_empty() {
                    return Ok(Some((body, at)));
                }
            }
        }
        if body.len().saturating_add(size) > max_body {
            return Err(WireError::BodyTooLarge {
                len: body.len().saturating_add(size),
                limit: max_body,
            });
        }
        let Some(chunk) = data.get(at..at.saturating_add(size)) else {
            return Ok(None);
        };
        body.extend_from_slice(chunk);
        at += size;
        match data.get(at..) {
            Some([b'\r', b'\n', ..]) => at += 2,
            Some([b'\n', ..]) => at += 1,
            Some([] | [b'\r']) | None => return Ok(None),
            Some(_) => return Err(WireError::BadChunk("chunk data not followed by CRLF")),
        }
    }
}

/// The line starting at `at` (without its CRLF or LF) and where the next one starts; `None`
/// when no line end is there yet.
fn line_at(data: &[u8], at: usize, max: usize) -> Result<Option<(&[u8], usize)>, WireError> {
    let rest = data.get(at..).unwrap_or_default();
    match rest.iter().take(max + 2).position(|&b| b == b'\n') {
        Some(end) => {
            let line = rest.get(..end).unwrap_or_default();
            Ok(Some((
                line.strip_suffix(b"\r").unwrap_or(line),
                at + end + 1,
            )))
        }
        None if rest.len() > max + 1 => Err(WireError::BadChunk("line too long")),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> Parsed<'_> {
        match parse_request(buf, Limits::default()).unwrap() {
            Parse::Complete(p) => p,
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn content_length_bodies_and_keep_alive() {
        let buf = b"POST /o?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.0\r\n\r\n";
        let p = complete(buf);
        assert_eq!((p.method, p.target, p.version), ("POST", &b"/o?x=1"[..], 1));
        assert_eq!(&*p.body, b"abc");
        assert!(p.keep_alive);
        let next = complete(&buf[p.consumed..]);
        assert_eq!(next.version, 0);
        assert!(!next.keep_alive);
        let close = complete(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n");
        assert!(!close.keep_alive);
    }

    #[test]
    fn partial_requests_wait() {
        let limits = Limits::default();
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHo", limits),
            Ok(Parse::NeedHead)
        );
        assert_eq!(
            parse_request(
                b"PUT / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nab",
                limits
            ),
            Ok(Parse::NeedBody {
                expect_continue: true
            })
        );
        assert_eq!(
            parse_request(
                b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
                limits
            ),
            Ok(Parse::NeedBody {
                expect_continue: false
            })
        );
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let buf = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let p = complete(buf);
        assert_eq!(&*p.body, b"abc0123456789");
        assert_eq!(&buf[p.consumed..], b"NEXT");
        assert_eq!(decode_chunked(b"0\r\n\r\n", 10), Ok(Some((Vec::new(), 5))));
        assert_eq!(decode_chunked(b"0\n\n", 10), Ok(Some((Vec::new(), 3))));
        assert_eq!(
            decode_chunked(b"zz\r\n", 10),
            Err(WireError::BadChunk("chunk size is not hexadecimal"))
        );
        assert_eq!(
            decode_chunked(b"2\r\nabX", 10),
            Err(WireError::BadChunk("chunk data not followed by CRLF"))
        );
        assert!(matches!(
            decode_chunked(b"ff\r\n", 10),
            Err(WireError::BodyTooLarge { .. })
        ));
        assert!(matches!(
            decode_chunked(&[b'1'; 2000], 10),
            Err(WireError::BadChunk(_))
        ));
    }

    #[test]
    fn bad_requests_name_their_status() {
        let limits = Limits {
            max_head: 100,
            max_body: 4,
        };
        let long = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 120]].concat();
        assert_eq!(parse_request(&long, limits).unwrap_err().status().0, 431);
        let big =
            parse_request(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", limits).unwrap_err();
        assert_eq!(big.status().0, 413);
        let gzip = parse_request(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            limits,
        )
        .unwrap_err();
        assert_eq!(gzip.status().0, 501);
        let two = parse_request(
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            limits,
        );
        assert_eq!(two, Err(WireError::BadContentLength));
        assert_eq!(
            parse_request(b"\x00\x01 / HTTP/1.1\r\n\r\n", limits)
                .unwrap_err()
                .status()
                .0,
            400
        );
        let many: Vec<u8> = [
            b"GET / HTTP/1.1\r\n".to_vec(),
            b"A: b\r\n".repeat(MAX_HEADERS + 1),
            b"\r\n".to_vec(),
        ]
        .concat();
        assert_eq!(
            parse_request(&many, Limits::default()),
            Err(WireError::TooManyHeaders)
        );
    }
}
