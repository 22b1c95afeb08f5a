//! Views over stored heads for their readers (`tapline inspect`, the mock, replay): the start
//! line and header fields of a request or response head, or of as much of one as was captured
//! when a gap or a small snap length cut it short.

use std::mem::MaybeUninit;

use httparse::{Header, Status};

use crate::head::{STACK_HEADERS, config, parse_request, parse_response};

/// Errors of [`parse_request_head`] and [`parse_response_head`].
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// The bytes end too early to show the start line: before the end of a request's target,
    /// or of a response's status code.
    #[error("head incomplete: {len} bytes end inside its start line")]
    Incomplete {
        /// Bytes given.
        len: usize,
    },
    /// The start line or a header line is malformed.
    #[error("invalid head of {len} bytes: {source}")]
    Invalid {
        /// Bytes given.
        len: usize,
        /// What `httparse` rejected.
        source: httparse::Error,
    },
}

/// A parsed view over a stored request head, or over as much of one as was captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method, such as `GET`.
    pub method: &'a str,
    /// The request target exactly as on the wire.
    pub target: &'a [u8],
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1; 1 when the head was cut before its
    /// version (`complete` is false then).
    pub version: u8,
    /// Header names and values, in order; of a cut head, the header lines complete before the
    /// cut.
    pub headers: Vec<(&'a str, &'a [u8])>,
    /// Whether the whole head, blank line included, is there; false for a head cut short (a
    /// capture gap or a small snap length), of which only the fields above were seen.
    pub complete: bool,
}

/// A parsed view over a stored response head, or over as much of one as was captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead<'a> {
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// The status code.
    pub status: u16,
    /// The reason phrase exactly as on the wire (may be empty); of a head cut inside its status
    /// line, the part captured.
    pub reason: &'a [u8],
    /// Header names and values, in order; of a cut head, the header lines complete before the
    /// cut.
    pub headers: Vec<(&'a str, &'a [u8])>,
    /// Whether the whole head, blank line included, is there; false for a head cut short (a
    /// capture gap or a small snap length), of which only the fields above were seen.
    pub complete: bool,
}

/// Parses a stored request head (start line, header lines, blank line).
///
/// A head cut short (captured only in part) still parses once its method and target are
/// there: the view then has `complete` false and only the header lines complete before the
/// cut.
///
/// # Errors
/// [`HeadError::Incomplete`] when the bytes end before the target does, [`HeadError::Invalid`]
/// when the request line or a header is malformed.
pub fn parse_request_head(head: &[u8]) -> Result<RequestHead<'_>, HeadError> {
    let mut start = None;
    let parsed = parse_request_or_start(head, &mut start, |req| {
        let headers = req.headers.iter().map(|h| (h.name, h.value)).collect();
        (
            req.method.unwrap_or(""),
            req.path.unwrap_or(""),
            req.version.unwrap_or(1),
            headers,
        )
    });
    match parsed {
        Ok(Status::Complete((_, (method, target, version, headers)))) => Ok(RequestHead {
            method,
            target: target.as_bytes(),
            version,
            headers,
            complete: true,
        }),
        Ok(Status::Partial) => match start {
            Some(RequestStart {
                method: Some(method),
                target: Some(target),
                version,
            }) => Ok(RequestHead {
                method,
                target: target.as_bytes(),
                version: version.unwrap_or(1),
                headers: partial_headers(head, true)?,
                complete: false,
            }),
            _ => Err(HeadError::Incomplete { len: head.len() }),
        },
        Err(source) => Err(HeadError::Invalid {
            len: head.len(),
            source,
        }),
    }
}

/// Parses a stored response head (status line, header lines, blank line).
///
/// A head cut short (captured only in part) still parses once its version and status code
/// are there: the view then has `complete` false and only the header lines complete before
/// the cut.
///
/// # Errors
/// [`HeadError::Incomplete`] when the bytes end before the status code does,
/// [`HeadError::Invalid`] when the status line or a header is malformed.
pub fn parse_response_head(head: &[u8]) -> Result<ResponseHead<'_>, HeadError> {
    let mut start = None;
    let parsed = parse_response_or_start(head, &mut start, |resp| {
        let headers = resp.headers.iter().map(|h| (h.name, h.value)).collect();
        (resp.version.unwrap_or(1), resp.code.unwrap_or(0), headers)
    });
    match parsed {
        Ok(Status::Complete((_, (version, status, headers)))) => Ok(ResponseHead {
            version,
            status,
            reason: reason_phrase(head),
            headers,
            complete: true,
        }),
        Ok(Status::Partial) => match start {
            Some((Some(version), Some(status))) => Ok(ResponseHead {
                version,
                status,
                reason: reason_phrase(head),
                headers: partial_headers(head, false)?,
                complete: false,
            }),
            _ => Err(HeadError::Incomplete { len: head.len() }),
        },
        Err(source) => Err(HeadError::Invalid {
            len: head.len(),
            source,
        }),
    }
}

/// What `httparse` had parsed of a request line when the bytes ran out.
#[derive(Debug, Clone, Copy)]
struct RequestStart<'b> {
    method: Option<&'b str>,
    target: Option<&'b str>,
    version: Option<u8>,
}

impl<'b> RequestStart<'b> {
    fn of(req: &httparse::Request<'_, 'b>) -> Self {
        Self {
            method: req.method,
            target: req.path,
            version: req.version,
        }
    }
}

/// [`parse_request`], also keeping in `start` what was parsed of the request line when the
/// result is [`Status::Partial`].
fn parse_request_or_start<'b, R>(
    buf: &'b [u8],
    start: &mut Option<RequestStart<'b>>,
    f: impl FnOnce(&httparse::Request<'_, 'b>) -> R,
) -> httparse::Result<(usize, R)> {
    let cfg = config();
    let mut headers = [const { MaybeUninit::<Header<'b>>::uninit() }; STACK_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match cfg.parse_request_with_uninit_headers(&mut req, buf, &mut headers) {
        Ok(Status::Complete(n)) => Ok(Status::Complete((n, f(&req)))),
        Ok(Status::Partial) => {
            *start = Some(RequestStart::of(&req));
            Ok(Status::Partial)
        }
        Err(httparse::Error::TooManyHeaders) => {
            // The request line was parsed before the header slots ran out.
            *start = Some(RequestStart::of(&req));
            parse_request(buf, f)
        }
        Err(e) => Err(e),
    }
}

/// [`parse_response`], also keeping in `start` the version and status code parsed when the
/// result is [`Status::Partial`].
fn parse_response_or_start<'b, R>(
    buf: &'b [u8],
    start: &mut Option<(Option<u8>, Option<u16>)>,
    f: impl FnOnce(&httparse::Response<'_, 'b>) -> R,
) -> httparse::Result<(usize, R)> {
    let cfg = config();
    let mut headers = [const { MaybeUninit::<Header<'b>>::uninit() }; STACK_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    match cfg.parse_response_with_uninit_headers(&mut resp, buf, &mut headers) {
        Ok(Status::Complete(n)) => Ok(Status::Complete((n, f(&resp)))),
        Ok(Status::Partial) => {
            *start = Some((resp.version, resp.code));
            Ok(Status::Partial)
        }
        Err(httparse::Error::TooManyHeaders) => {
            // The status line was parsed before the header slots ran out.
            *start = Some((resp.version, resp.code));
            parse_response(buf, f)
        }
        Err(e) => Err(e),
    }
}

/// The header lines of a head cut short (`head` has no blank line) that were complete before
/// the cut, as slices of `head`.
///
/// `httparse` hands out headers only for a complete head, so the complete lines are parsed
/// again, closed by a blank line, from a copy; the fields found are then taken from `head`
/// at the same offsets.
fn partial_headers(head: &[u8], request: bool) -> Result<Vec<(&str, &[u8])>, HeadError> {
    let Some(last_lf) = head.iter().rposition(|&b| b == b'\n') else {
        return Ok(Vec::new());
    };
    let lines = head.get(..=last_lf).unwrap_or(head);
    let mut closed = Vec::with_capacity(lines.len() + 2);
    closed.extend_from_slice(lines);
    closed.extend_from_slice(b"\r\n");
    let base = closed.as_ptr() as usize;
    let span = |s: &[u8]| {
        let off = (s.as_ptr() as usize).wrapping_sub(base);
        (off, s.len())
    };
    let collect = |headers: &[Header<'_>]| -> Vec<((usize, usize), (usize, usize))> {
        headers
            .iter()
            .map(|h| (span(h.name.as_bytes()), span(h.value)))
            .collect()
    };
    let parsed = if request {
        parse_request(&closed, |req| collect(req.headers))
    } else {
        parse_response(&closed, |resp| collect(resp.headers))
    };
    let spans = match parsed {
        Ok(Status::Complete((_, spans))) => spans,
        // The start line itself was not complete: no header line is.
        Ok(Status::Partial) => Vec::new(),
        Err(source) => {
            return Err(HeadError::Invalid {
                len: head.len(),
                source,
            });
        }
    };
    let at = |(off, len): (usize, usize)| lines.get(off..off.checked_add(len)?);
    Ok(spans
        .into_iter()
        .filter_map(|(name, value)| {
            let name = std::str::from_utf8(at(name)?).ok()?;
            Some((name, at(value)?))
        })
        .collect())
}

/// The reason phrase of the status line of `head`, as raw bytes.
fn reason_phrase(head: &[u8]) -> &[u8] {
    let lead = head
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let line = head.get(lead..).unwrap_or(&[]);
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    let line = line.get(..end).unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // "HTTP/1.x" SP+ ddd [SP+ reason]
    let after_version = line.get(8..).unwrap_or(&[]);
    let after_spaces = trim_start(after_version);
    let after_code = after_spaces.get(3..).unwrap_or(&[]);
    trim_start(after_code)
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&c| c == b' ').count();
    b.get(n..).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_view() {
        let head = b"POST /a?b=c HTTP/1.0\r\nHost: x\r\nX-A:  1 \r\n\r\n";
        let h = parse_request_head(head).unwrap();
        assert_eq!(h.method, "POST");
        assert_eq!(h.target, b"/a?b=c");
        assert_eq!(h.version, 0);
        assert_eq!(h.headers, vec![("Host", &b"x"[..]), ("X-A", &b"1"[..])]);
        assert!(h.complete);
    }

    #[test]
    fn cut_request_views_keep_what_was_captured() {
        // Cut inside a header line: the complete lines before it are kept.
        let h = parse_request_head(b"GET /a HTTP/1.0\r\nHost: x\r\nUser-Ag").unwrap();
        assert_eq!((h.method, h.target, h.version), ("GET", &b"/a"[..], 0));
        assert_eq!(h.headers, vec![("Host", &b"x"[..])]);
        assert!(!h.complete);
        // Cut after the last header line, before the blank line.
        let h = parse_request_head(b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\n").unwrap();
        assert_eq!(h.headers, vec![("Host", &b"x"[..]), ("A", &b"1"[..])]);
        assert!(!h.complete);
        // Cut at the end of the request line, or between its CR and LF.
        for head in [
            &b"GET /b HTTP/1.1\r\n"[..],
            b"GET /b HTTP/1.1\r",
            b"GET /b HTTP/1.1",
        ] {
            let h = parse_request_head(head).unwrap();
            assert_eq!((h.method, h.target, h.version), ("GET", &b"/b"[..], 1));
            assert!(h.headers.is_empty() && !h.complete);
        }
        // Cut inside the version, as a 96-byte snap length leaves it: the version is unknown
        // and reads as 1.
        let h = parse_request_head(b"GET /images/sf.net_box.gif HTT").unwrap();
        assert_eq!(h.method, "GET");
        assert_eq!(h.target, b"/images/sf.net_box.gif");
        assert_eq!(h.version, 1);
        assert!(h.headers.is_empty() && !h.complete);
        // Cut inside the target: not enough to show.
        assert!(matches!(
            parse_request_head(b"GET /images/sf.ne"),
            Err(HeadError::Incomplete { .. })
        ));
        // What was captured is malformed: still an error.
        assert!(matches!(
            parse_request_head(b"GET / HTTP/1.1\r\nBad Name: x\r\nHo"),
            Err(HeadError::Invalid { .. })
        ));
        assert!(matches!(
            parse_request_head(b"GET / HTTX"),
            Err(HeadError::Invalid { .. })
        ));
    }

    #[test]
    fn cut_response_views_keep_what_was_captured() {
        let h = parse_response_head(b"HTTP/1.1 200 OK\r\nDate: Tue, 16").unwrap();
        assert_eq!((h.version, h.status, h.reason), (1, 200, &b"OK"[..]));
        assert!(h.headers.is_empty() && !h.complete);
        let h = parse_response_head(b"HTTP/1.0 404 Not Found\r\nServer: s\r\nContent-Le").unwrap();
        assert_eq!((h.version, h.status), (0, 404));
        assert_eq!(h.reason, b"Not Found");
        assert_eq!(h.headers, vec![("Server", &b"s"[..])]);
        assert!(!h.complete);
        // Cut inside the status line: the reason is what was captured of it.
        let h = parse_response_head(b"HTTP/1.1 301 Moved Perm").unwrap();
        assert_eq!(
            (h.status, h.reason, h.complete),
            (301, &b"Moved Perm"[..], false)
        );
        let h = parse_response_head(b"HTTP/1.1 204").unwrap();
        assert_eq!((h.status, h.reason, h.complete), (204, &b""[..], false));
        // An obsolete folded line, cut inside its continuation: the value as far as captured
        // lines go.
        let h = parse_response_head(b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n c").unwrap();
        assert_eq!(h.headers.len(), 1);
        assert_eq!(h.headers[0].0, "X");
        assert!(!h.complete);
    }

    #[test]
    fn cut_views_with_many_headers() {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..300 {
            head.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        head.extend_from_slice(b"X-cut: ab");
        let h = parse_response_head(&head).unwrap();
        assert_eq!((h.status, h.headers.len(), h.complete), (200, 300, false));
        assert_eq!(h.headers[299], ("X-299", &b"299"[..]));
        let mut head = b"GET /many HTTP/1.1\r\n".to_vec();
        for i in 0..200 {
            head.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        let h = parse_request_head(&head).unwrap();
        assert_eq!(
            (h.target, h.headers.len(), h.complete),
            (&b"/many"[..], 200, false)
        );
    }

    #[test]
    fn response_view() {
        let head = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        let h = parse_response_head(head).unwrap();
        assert_eq!((h.version, h.status, h.reason), (1, 404, &b"Not Found"[..]));
        assert_eq!(h.headers.len(), 1);
        let h = parse_response_head(b"HTTP/1.1 200\r\n\r\n").unwrap();
        assert_eq!(h.reason, b"");
        let h = parse_response_head(b"HTTP/1.1 200 \xe9t\xe9\r\n\r\n").unwrap();
        assert_eq!(h.reason, b"\xe9t\xe9");
    }

    #[test]
    fn view_errors() {
        assert_eq!(
            parse_request_head(b"GET /a"),
            Err(HeadError::Incomplete { len: 6 })
        );
        assert_eq!(
            parse_response_head(b"HTTP/1.1 20"),
            Err(HeadError::Incomplete { len: 11 })
        );
        assert_eq!(
            parse_request_head(b""),
            Err(HeadError::Incomplete { len: 0 })
        );
        assert!(matches!(
            parse_request_head(b"GET / HTTP/9\r\n\r\n"),
            Err(HeadError::Invalid { .. })
        ));
        assert!(matches!(
            parse_response_head(b"HTTP/1.1 abc\r\n\r\n"),
            Err(HeadError::Invalid { .. })
        ));
    }

    #[test]
    fn many_headers_fall_back_to_the_heap() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..300 {
            head.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        let h = parse_request_head(&head).unwrap();
        assert_eq!(h.headers.len(), 300);
        assert_eq!(h.headers[299], ("X-299", &b"299"[..]));
    }
}
