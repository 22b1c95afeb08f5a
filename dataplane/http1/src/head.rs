//! Head parsing with `httparse`: the framing facts (method, status, body length, transfer
//! coding) the connection parser needs, and the parser settings the stored-head views in
//! [`crate::view`] share.
//!
//! The hot path parses into a stack array of uninitialised headers and keeps only `Copy`
//! facts; a head with more headers than the stack array holds is parsed again into a heap
//! array sized by its line count (bounded by the head limit).

use std::mem::MaybeUninit;

use httparse::{Header, ParserConfig, Status};

use crate::detect::find_head_end;

/// Headers parsed on the stack before falling back to a heap array.
pub(crate) const STACK_HEADERS: usize = 128;

/// The lenient parser settings of a passive observer: accept what real peers accept.
pub(crate) fn config() -> ParserConfig {
    let mut c = ParserConfig::default();
    c.allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .ignore_invalid_headers_in_responses(true);
    c
}

/// Number of header slots needed for the head at the start of `buf`, if its end is there.
fn heap_header_count(buf: &[u8]) -> Option<usize> {
    let lead = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let end = find_head_end(buf, lead)?;
    Some(buf.get(..end)?.iter().filter(|&&b| b == b'\n').count() + 1)
}

/// Parses a request head at the start of `buf` and hands the parsed request to `f`.
pub(crate) fn parse_request<'b, R>(
    buf: &'b [u8],
    f: impl FnOnce(&httparse::Request<'_, 'b>) -> R,
) -> httparse::Result<(usize, R)> {
    let cfg = config();
    let mut headers = [const { MaybeUninit::<Header<'b>>::uninit() }; STACK_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match cfg.parse_request_with_uninit_headers(&mut req, buf, &mut headers) {
        Ok(Status::Complete(n)) => Ok(Status::Complete((n, f(&req)))),
        Ok(Status::Partial) => Ok(Status::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            let Some(count) = heap_header_count(buf) else {
                return Ok(Status::Partial);
            };
            let mut heap = vec![httparse::EMPTY_HEADER; count];
            let mut req = httparse::Request::new(&mut heap);
            match cfg.parse_request(&mut req, buf)? {
                Status::Complete(n) => Ok(Status::Complete((n, f(&req)))),
                Status::Partial => Ok(Status::Partial),
            }
        }
        Err(e) => Err(e),
    }
}

/// Parses a response head at the start of `buf` and hands the parsed response to `f`.
pub(crate) fn parse_response<'b, R>(
    buf: &'b [u8],
    f: impl FnOnce(&httparse::Response<'_, 'b>) -> R,
) -> httparse::Result<(usize, R)> {
    let cfg = config();
    let mut headers = [const { MaybeUninit::<Header<'b>>::uninit() }; STACK_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    match cfg.parse_response_with_uninit_headers(&mut resp, buf, &mut headers) {
        Ok(Status::Complete(n)) => Ok(Status::Complete((n, f(&resp)))),
        Ok(Status::Partial) => Ok(Status::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            let Some(count) = heap_header_count(buf) else {
                return Ok(Status::Partial);
            };
            let mut heap = vec![httparse::EMPTY_HEADER; count];
            let mut resp = httparse::Response::new(&mut heap);
            match cfg.parse_response(&mut resp, buf)? {
                Status::Complete(n) => Ok(Status::Complete((n, f(&resp)))),
                Status::Partial => Ok(Status::Partial),
            }
        }
        Err(e) => Err(e),
    }
}

/// The request methods whose responses are framed differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// Any method without special response framing (also assumed when the request is unknown).
    Other,
    /// `HEAD`: the response has no body whatever its headers say.
    Head,
    /// `CONNECT`: a 2xx response turns the connection into a tunnel.
    Connect,
}

impl Method {
    pub(crate) fn from_token(method: &str) -> Self {
        match method {
            "HEAD" => Method::Head,
            "CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }

    /// The method class of a request head that may be cut short or broken: its first token,
    /// when a space ends it.
    pub(crate) fn of_head(head: &[u8]) -> Self {
        let lead = head
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        let line = head.get(lead..).unwrap_or(&[]);
        let token = line
            .iter()
            .position(|&b| b == b' ')
            .and_then(|sp| line.get(..sp));
        match token {
            Some(b"HEAD") => Method::Head,
            Some(b"CONNECT") => Method::Connect,
            _ => Method::Other,
        }
    }
}

/// The facts of a head the connection parser acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadInfo {
    /// The request method class (requests only).
    pub method: Method,
    /// The status code (responses only).
    pub status: u16,
    /// How the body is delimited.
    pub framing: Framing,
}

/// Outcome of parsing a head at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadParse {
    /// A head of this many bytes.
    Complete(usize, HeadInfo),
    /// More bytes are needed.
    Partial,
    /// Malformed.
    Error,
}

/// Parses the head of a request (`request`) or response at the start of `buf`.
pub(crate) fn parse_head(request: bool, buf: &[u8]) -> HeadParse {
    let parsed = if request {
        parse_request(buf, |req| HeadInfo {
            method: Method::from_token(req.method.unwrap_or("")),
            status: 0,
            framing: Framing::from_headers(req.headers),
        })
    } else {
        parse_response(buf, |resp| HeadInfo {
            method: Method::Other,
            status: resp.code.unwrap_or(0),
            framing: Framing::from_headers(resp.headers),
        })
    };
    match parsed {
        Ok(Status::Complete((n, info))) => HeadParse::Complete(n, info),
        Ok(Status::Partial) => HeadParse::Partial,
        Err(_) => HeadParse::Error,
    }
}

/// How the body after a head is delimited, as far as its header fields tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Framing {
    /// A valid `Content-Length`.
    pub content_length: Option<u64>,
    /// `Content-Length` present but malformed or conflicting.
    pub bad_length: bool,
    /// `Transfer-Encoding` present.
    pub transfer_encoding: bool,
    /// `chunked` is the final transfer coding.
    pub chunked: bool,
    /// An `Upgrade` header is present.
    pub upgrade: bool,
}

impl Framing {
    /// Collects the framing facts from header fields.
    pub(crate) fn from_headers(headers: &[Header<'_>]) -> Self {
        let mut f = Framing::default();
        for h in headers {
            let name = h.name.as_bytes();
            if name.eq_ignore_ascii_case(b"content-length") {
                match (parse_content_length(h.value), f.content_length) {
                    (Some(n), None) => f.content_length = Some(n),
                    (Some(n), Some(m)) if n == m => {}
                    _ => f.bad_length = true,
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                f.transfer_encoding = true;
                if let Some(last) = h
                    .value
                    .split(|&b| b == b',')
                    .map(trim)
                    .rfind(|t| !t.is_empty())
                {
                    f.chunked = last.eq_ignore_ascii_case(b"chunked");
                }
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                f.upgrade = true;
            }
        }
        f
    }
}

/// Parses a `Content-Length` value: digits, or a list of identical digit runs.
fn parse_content_length(value: &[u8]) -> Option<u64> {
    let mut out = None;
    for part in value.split(|&b| b == b',') {
        let part = trim(part);
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = part.iter().try_fold(0u64, |acc, &d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })?;
        match out {
            None => out = Some(n),
            Some(m) if m == n => {}
            Some(_) => return None,
        }
    }
    out
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
    let b = b.get(start..).unwrap_or(&[]);
    let end = b.len()
        - b.iter()
            .rev()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count();
    b.get(..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_of_cut_heads() {
        assert_eq!(Method::of_head(b"HEAD /a HTT"), Method::Head);
        assert_eq!(
            Method::of_head(b"\r\nCONNECT h:443 HTTP/1.1\r\n"),
            Method::Connect
        );
        assert_eq!(Method::of_head(b"HEAD"), Method::Other);
        assert_eq!(Method::of_head(b"HEADER / HTTP/1.1"), Method::Other);
        assert_eq!(Method::of_head(b"GET / HTTP/1.1"), Method::Other);
        assert_eq!(Method::of_head(b""), Method::Other);
    }

    #[test]
    fn content_length_values() {
        assert_eq!(parse_content_length(b"42"), Some(42));
        assert_eq!(parse_content_length(b" 7 , 7"), Some(7));
        assert_eq!(parse_content_length(b"7, 8"), None);
        assert_eq!(parse_content_length(b"-1"), None);
        assert_eq!(parse_content_length(b""), None);
        assert_eq!(parse_content_length(b"99999999999999999999"), None);
        assert_eq!(parse_content_length(b"18446744073709551615"), None);
        assert_eq!(
            parse_content_length(b"1844674407370955161"),
            Some(1_844_674_407_370_955_161)
        );
    }

    #[test]
    fn framing_from_headers() {
        let h = |n: &'static str, v: &'static [u8]| Header { name: n, value: v };
        let f = Framing::from_headers(&[h("Transfer-Encoding", b"gzip, chunked")]);
        assert!(f.transfer_encoding && f.chunked);
        let f = Framing::from_headers(&[h("transfer-encoding", b"chunked, gzip")]);
        assert!(f.transfer_encoding && !f.chunked);
        let f = Framing::from_headers(&[h("Content-Length", b"5"), h("content-length", b"6")]);
        assert!(f.bad_length);
        let f = Framing::from_headers(&[h("Content-Length", b"5"), h("Upgrade", b"websocket")]);
        assert_eq!(f.content_length, Some(5));
        assert!(f.upgrade && !f.bad_length);
    }
}
