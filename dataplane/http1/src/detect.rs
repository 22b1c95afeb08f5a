//! Cheap recognition of HTTP/1 start lines: protocol detection on the first bytes of a
//! connection, and the plausibility test used when scanning forward to resynchronise.

/// Methods recognised on a prefix too short to hold the whole request line.
const KNOWN_METHODS: [&[u8]; 24] = [
    b"GET",
    b"POST",
    b"PUT",
    b"DELETE",
    b"HEAD",
    b"OPTIONS",
    b"PATCH",
    b"CONNECT",
    b"TRACE",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"REPORT",
    b"SEARCH",
    b"PURGE",
    b"MERGE",
    b"CHECKOUT",
    b"MKACTIVITY",
    b"M-SEARCH",
    b"NOTIFY",
];

/// Longest method token accepted in a start line while resynchronising.
const MAX_METHOD_LEN: usize = 20;

/// Which kind of start line a line is, or may turn out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    /// A request line (`METHOD SP target SP HTTP/1.x`).
    Request,
    /// A status line (`HTTP/1.x SP ddd [SP reason]`).
    Response,
    /// Consistent with a start line so far; more bytes are needed.
    Maybe,
    /// Not a start line.
    No,
}

/// Classifies `line`, which runs from a line start up to and including its `\n` when
/// `complete`, or is a prefix of a line otherwise.
pub(crate) fn classify_line(line: &[u8], complete: bool) -> LineKind {
    let body = if complete {
        let without_lf = line.strip_suffix(b"\n").unwrap_or(line);
        without_lf.strip_suffix(b"\r").unwrap_or(without_lf)
    } else {
        line
    };
    match body.first() {
        None => {
            if complete {
                LineKind::No
            } else {
                LineKind::Maybe
            }
        }
        Some(b'H') if status_line(body, complete) != LineKind::No => status_line(body, complete),
        Some(_) => request_line(body, complete),
    }
}

/// Checks a status line without its line ending.
fn status_line(line: &[u8], complete: bool) -> LineKind {
    const PREFIX: &[u8] = b"HTTP/1.";
    let n = line.len().min(PREFIX.len());
    if line.get(..n) != PREFIX.get(..n) {
        return LineKind::No;
    }
    let rest = line.get(PREFIX.len()..).unwrap_or(&[]);
    // minor digit, SP, three digits, then SP + reason or the end of the line
    for (i, &b) in rest.iter().enumerate() {
        let ok = match i {
            0 => b.is_ascii_digit(),
            1 => b == b' ',
            2..=4 => b.is_ascii_digit(),
            5 => b == b' ',
            _ => b == b'\t' || b >= 0x20 && b != 0x7f,
        };
        if !ok {
            return LineKind::No;
        }
    }
    match (rest.len() >= 5, complete) {
        (true, true) => LineKind::Response,
        (false, true) => LineKind::No,
        (_, false) => LineKind::Maybe,
    }
}

/// Checks a request line without its line ending.
fn request_line(line: &[u8], complete: bool) -> LineKind {
    let method_len = line.iter().take_while(|&&b| is_method_byte(b)).count();
    if method_len > MAX_METHOD_LEN || method_len == 0 {
        return LineKind::No;
    }
    let Some(&after_method) = line.get(method_len) else {
        return if complete {
            LineKind::No
        } else {
            LineKind::Maybe
        };
    };
    if after_method != b' ' {
        return LineKind::No;
    }
    let rest = line.get(method_len + 1..).unwrap_or(&[]);
    let target_len = rest.iter().take_while(|&&b| is_target_byte(b)).count();
    let Some(&after_target) = rest.get(target_len) else {
        return if complete {
            LineKind::No
        } else {
            LineKind::Maybe
        };
    };
    if after_target != b' ' || target_len == 0 {
        return LineKind::No;
    }
    let version = rest.get(target_len + 1..).unwrap_or(&[]);
    const VERSION: &[u8] = b"HTTP/1.";
    let n = version.len().min(VERSION.len());
    if version.get(..n) != VERSION.get(..n) {
        return LineKind::No;
    }
    match version.len() {
        0..=7 => {
            if complete {
                LineKind::No
            } else {
                LineKind::Maybe
            }
        }
        8 => match version.get(7) {
            Some(d) if d.is_ascii_digit() => {
                if complete {
                    LineKind::Request
                } else {
                    LineKind::Maybe
                }
            }
            _ => LineKind::No,
        },
        _ => LineKind::No,
    }
}

fn is_method_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'-' || b == b'_'
}

fn is_target_byte(b: u8) -> bool {
    b > 0x20 && b != 0x7f
}

/// Whether `prefix`, the first bytes of a stream, look like the start of an HTTP/1 request: a
/// complete request line, or a known method followed by a space and a plausible target start.
pub fn looks_like_request(prefix: &[u8]) -> bool {
    let line_end = prefix.iter().position(|&b| b == b'\n');
    let line = match line_end {
        Some(i) => prefix.get(..=i).unwrap_or(prefix),
        None => prefix,
    };
    match classify_line(line, line_end.is_some()) {
        LineKind::Request => true,
        LineKind::Maybe => KNOWN_METHODS.iter().any(|m| {
            line.len() > m.len() + 1 && line.starts_with(m) && line.get(m.len()) == Some(&b' ')
        }),
        LineKind::Response | LineKind::No => false,
    }
}

/// Whether `prefix`, the first bytes of a stream, look like the start of an HTTP/1 response:
/// `HTTP/1.x` followed by a space and a three-digit status.
pub fn looks_like_response(prefix: &[u8]) -> bool {
    let line_end = prefix.iter().position(|&b| b == b'\n');
    let line = match line_end {
        Some(i) => prefix.get(..=i).unwrap_or(prefix),
        None => prefix,
    };
    match classify_line(line, line_end.is_some()) {
        LineKind::Response => true,
        LineKind::Maybe => line.len() >= 12 && line.starts_with(b"HTTP/1."),
        LineKind::Request | LineKind::No => false,
    }
}

/// Outcome of scanning a buffer for the start of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// A start line of this kind begins at this position.
    Found(usize, LineKind),
    /// An anchor at this position needs more bytes to be judged.
    Pending(usize),
    /// Nothing plausible.
    Nothing,
}

/// Finds the earliest plausible start line whose `HTTP/1.` anchor is at or after `from`.
///
/// A status line may start anywhere (a body need not end with a line break); a request line
/// is found by walking back from ` HTTP/1.x` over the target and the method, which must be a
/// known method or stand at a line start. `line_start` says whether `buf[0]` begins a line.
pub(crate) fn scan_start(buf: &[u8], from: usize, line_start: bool, req: bool, resp: bool) -> Scan {
    const ANCHOR: &[u8] = b"HTTP/1.";
    let mut i = from;
    while let Some(off) = buf
        .get(i..)
        .and_then(|h| h.windows(ANCHOR.len()).position(|w| w == ANCHOR))
    {
        let at = i + off;
        let after = buf.get(at + ANCHOR.len()..).unwrap_or(&[]);
        match after {
            [] | [b'0'..=b'9'] | [b'0'..=b'9', b'\r'] => return Scan::Pending(at),
            [b'0'..=b'9', b' ', rest @ ..] if resp => match rest {
                [a, b, c, sep, ..] => {
                    let digits = [a, b, c].iter().all(|d| d.is_ascii_digit());
                    if digits && matches!(sep, b' ' | b'\r' | b'\n') {
                        return Scan::Found(at, LineKind::Response);
                    }
                }
                _ if rest.iter().all(u8::is_ascii_digit) => return Scan::Pending(at),
                _ => {}
            },
            [b'0'..=b'9', b'\r', b'\n', ..] | [b'0'..=b'9', b'\n', ..] if req => {
                if let Some(start) = request_start(buf, at, line_start) {
                    return Scan::Found(start, LineKind::Request);
                }
            }
            _ => {}
        }
        i = at + 1;
    }
    Scan::Nothing
}

/// Start of the request line whose ` HTTP/1.` anchor is at `anchor`, walking back.
fn request_start(buf: &[u8], anchor: usize, line_start: bool) -> Option<usize> {
    let before = buf.get(..anchor)?;
    let before = before.strip_suffix(b" ")?;
    let target_len = before
        .iter()
        .rev()
        .take_while(|&&b| is_target_byte(b))
        .count();
    if target_len == 0 {
        return None;
    }
    let before = before
        .get(..before.len() - target_len)?
        .strip_suffix(b" ")?;
    let run = before
        .iter()
        .rev()
        .take_while(|&&b| is_method_byte(b))
        .take(MAX_METHOD_LEN + 1)
        .count();
    if run == 0 {
        return None;
    }
    let start = before.len() - run;
    let at_line_start = match start.checked_sub(1) {
        None => line_start,
        Some(p) => before.get(p) == Some(&b'\n'),
    };
    if at_line_start && run <= MAX_METHOD_LEN {
        return Some(start);
    }
    let method = before.get(start..)?;
    let known = KNOWN_METHODS
        .iter()
        .filter(|m| method.ends_with(m))
        .map(|m| m.len())
        .max()?;
    Some(before.len() - known)
}

/// Position just past the blank line ending a head in `buf`, searching from `from`.
///
/// `from` may point into the middle of a line ending; the caller backs it up by three bytes
/// when resuming a search over a grown buffer.
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let hay = buf.get(from..)?;
    let mut i = 0;
    while let Some(off) = hay
        .get(i..)
        .and_then(|h| h.iter().position(|&b| b == b'\n'))
    {
        let lf = i + off;
        match hay.get(lf + 1) {
            Some(b'\n') => return Some(from + lf + 2),
            Some(b'\r') if hay.get(lf + 2) == Some(&b'\n') => return Some(from + lf + 3),
            _ => {}
        }
        i = lf + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            classify_line(b"GET / HTTP/1.1\r\n", true),
            LineKind::Request
        );
        assert_eq!(
            classify_line(b"M-SEARCH * HTTP/1.1\n", true),
            LineKind::Request
        );
        assert_eq!(classify_line(b"GET / HTTP/1.1", false), LineKind::Maybe);
        assert_eq!(classify_line(b"GET /a", false), LineKind::Maybe);
        assert_eq!(classify_line(b"GET / HTTP/2.0\r\n", true), LineKind::No);
        assert_eq!(classify_line(b"get / HTTP/1.1\r\n", true), LineKind::No);
        assert_eq!(classify_line(b"GET  / HTTP/1.1\r\n", true), LineKind::No);
        assert_eq!(classify_line(b"GET / HTTP/1.1 x\r\n", true), LineKind::No);
        assert_eq!(classify_line(b"HELLO world\n", true), LineKind::No);
        assert_eq!(classify_line(b"\r\n", true), LineKind::No);
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            classify_line(b"HTTP/1.1 200 OK\r\n", true),
            LineKind::Response
        );
        assert_eq!(classify_line(b"HTTP/1.0 204\r\n", true), LineKind::Response);
        assert_eq!(classify_line(b"HTTP/1.1 200", false), LineKind::Maybe);
        assert_eq!(classify_line(b"HTTP/1.1 2x0 OK\r\n", true), LineKind::No);
        assert_eq!(classify_line(b"HTTP/1.1 20\r\n", true), LineKind::No);
        assert_eq!(classify_line(b"HTTP/2 200\r\n", true), LineKind::No);
        // "HEAD" starts with H but is a request
        assert_eq!(
            classify_line(b"HEAD / HTTP/1.1\r\n", true),
            LineKind::Request
        );
        assert_eq!(classify_line(b"HTT", false), LineKind::Maybe);
    }

    #[test]
    fn detection() {
        assert!(looks_like_request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(looks_like_request(b"POST /x"));
        assert!(!looks_like_request(b"GE"));
        assert!(!looks_like_request(b"\x16\x03\x01\x02\x00"));
        assert!(!looks_like_request(b"HTTP/1.1 200 OK\r\n"));
        assert!(looks_like_response(b"HTTP/1.1 200 OK\r\n"));
        assert!(looks_like_response(b"HTTP/1.1 404 Not"));
        assert!(!looks_like_response(b"HTTP/1.1"));
        assert!(!looks_like_response(b"GET / HTTP/1.1\r\n"));
        assert!(!looks_like_response(b""));
    }

    #[test]
    fn scanning_for_start_lines() {
        let s = |b: &[u8]| scan_start(b, 0, false, true, true);
        assert_eq!(
            s(b"xx}GET /a HTTP/1.1\r\nHost: a"),
            Scan::Found(3, LineKind::Request)
        );
        assert_eq!(
            s(b"DATAPOST /a HTTP/1.1\n"),
            Scan::Found(4, LineKind::Request)
        );
        assert_eq!(
            s(b"x\nFOO /a HTTP/1.1\r\n"),
            Scan::Found(2, LineKind::Request)
        );
        assert_eq!(s(b"xFOO /a HTTP/1.1\r\n"), Scan::Nothing);
        assert_eq!(
            scan_start(b"FOO /a HTTP/1.1\r\n", 0, true, true, true),
            Scan::Found(0, LineKind::Request)
        );
        assert_eq!(
            s(b"abc}HTTP/1.1 200 OK\r\n"),
            Scan::Found(4, LineKind::Response)
        );
        assert_eq!(s(b"abc HTTP/1.1 20"), Scan::Pending(4));
        assert_eq!(s(b"abc GET / HTTP/1.1\r"), Scan::Pending(10));
        assert_eq!(
            s(b"see HTTP/1.1 spec HTTP/1.0 404 x"),
            Scan::Found(18, LineKind::Response)
        );
        assert_eq!(
            scan_start(b"HTTP/1.1 200 OK\r\n", 0, true, true, false),
            Scan::Nothing
        );
        assert_eq!(s(b"GET  HTTP/1.1\r\n"), Scan::Nothing);
        assert_eq!(s(b"no anchor here"), Scan::Nothing);
    }

    #[test]
    fn head_end() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nxx", 0), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nxx", 0), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
        assert_eq!(find_head_end(b"A\r\n\r\n", 2), Some(5));
        assert_eq!(find_head_end(b"A\r\n", 9), None);
    }
}
