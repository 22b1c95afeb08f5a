//! The bytes of a replayed request: the recorded head exactly as on the wire, but for the
//! `Host` value (rewritten to the target unless `--keep-host`), and the body framed again the
//! way it was recorded — `Content-Length` bodies as they are, chunked bodies as one chunk with
//! the recorded trailers.

use tapline_http1::parse_request_head;

/// Why a recorded request cannot be sent again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The head does not parse.
    #[error("the request head does not parse")]
    Head,
    /// The body is shorter than its `Content-Length` (cut by the capture).
    #[error("the body has {kept} of {declared} bytes")]
    ShortBody {
        /// Bytes stored.
        kept: usize,
        /// Bytes declared.
        declared: u64,
    },
}

/// Builds the request bytes; `host` replaces the `Host` value when given.
///
/// # Errors
/// [`FrameError`] when the head does not parse or the body is incomplete.
pub fn request_bytes(
    head: &[u8],
    body: &[u8],
    trailers: &[u8],
    host: Option<&str>,
) -> Result<Vec<u8>, FrameError> {
    let parsed = parse_request_head(head).map_err(|_| FrameError::Head)?;
    let mut chunked = false;
    let mut length = None;
    for (name, value) in &parsed.headers {
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
                .rfind(|t| !t.is_empty())
                .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
        }
    }
    let mut out = Vec::with_capacity(head.len() + body.len() + 32);
    match host {
        Some(host) => rewrite_host(head, host, &mut out),
        None => out.extend_from_slice(head),
    }
    if chunked {
        if !body.is_empty() {
            out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        out.extend_from_slice(trailers);
        out.extend_from_slice(b"\r\n");
    } else if let Some(declared) = length {
        if body.len() as u64 != declared {
            return Err(FrameError::ShortBody {
                kept: body.len(),
                declared,
            });
        }
        out.extend_from_slice(body);
    }
    Ok(out)
}

/// Copies `head` to `out` with the value of each `Host` line replaced by `host`; every other
/// byte (line endings, spacing, case, order) is kept.
fn rewrite_host(head: &[u8], host: &str, out: &mut Vec<u8>) {
    let mut rest = head;
    let mut first = true;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        let is_host = !first
            && line
                .iter()
                .position(|&b| b == b':')
                .and_then(|colon| line.get(..colon))
                .is_some_and(|name| name.eq_ignore_ascii_case(b"host"));
        first = false;
        if !is_host {
            out.extend_from_slice(line);
            continue;
        }
        let colon = line.iter().position(|&b| b == b':').unwrap_or(0);
        let after = line.get(colon + 1..).unwrap_or(&[]);
        let spaces = after
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let ending: &[u8] = if line.ends_with(b"\r\n") {
            b"\r\n"
        } else if line.ends_with(b"\n") {
            b"\n"
        } else {
            b""
        };
        out.extend_from_slice(line.get(..colon + 1 + spaces).unwrap_or(line));
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(ending);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_rewritten_and_nothing_else() {
        let head =
            b"GET /a HTTP/1.1\r\nhOsT:  old.example:80\r\nX-Host: keep\r\nAccept: */*\r\n\r\n";
        let out = request_bytes(head, b"", b"", Some("127.0.0.1:8080")).unwrap();
        assert_eq!(
            out,
            b"GET /a HTTP/1.1\r\nhOsT:  127.0.0.1:8080\r\nX-Host: keep\r\nAccept: */*\r\n\r\n"
        );
        assert_eq!(request_bytes(head, b"", b"", None).unwrap(), head);
        let bare = b"GET / HTTP/1.0\n\n";
        assert_eq!(request_bytes(bare, b"", b"", Some("x")).unwrap(), bare);
        let lf = b"GET / HTTP/1.1\nHost:a\n\n";
        assert_eq!(
            request_bytes(lf, b"", b"", Some("b")).unwrap(),
            b"GET / HTTP/1.1\nHost:b\n\n"
        );
    }

    #[test]
    fn bodies_are_framed_as_recorded() {
        let head = b"POST /o HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
        let out = request_bytes(head, b"hello", b"", None).unwrap();
        assert!(out.ends_with(b"\r\n\r\nhello"));
        let e = request_bytes(head, b"hel", b"", None).unwrap_err();
        assert_eq!(
            e,
            FrameError::ShortBody {
                kept: 3,
                declared: 5
            }
        );
        let head = b"POST /o HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        let out = request_bytes(head, b"0123456789abcdefX", b"X-Sum: 1\r\n", None).unwrap();
        assert!(out.ends_with(b"\r\n\r\n11\r\n0123456789abcdefX\r\n0\r\nX-Sum: 1\r\n\r\n"));
        let out = request_bytes(head, b"", b"", None).unwrap();
        assert!(out.ends_with(b"\r\n\r\n0\r\n\r\n"));
        assert_eq!(
            request_bytes(b"nonsense", b"", b"", None),
            Err(FrameError::Head)
        );
    }
}
