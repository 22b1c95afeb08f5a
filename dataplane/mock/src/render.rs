//! The bytes a mock sends: recorded responses re-framed for the client at hand, and the
//! mock's own answers (no match, bad request).
//!
//! A recorded response keeps its status, reason phrase, header order and case, and body. What
//! changes:
//! - the status line always says `HTTP/1.1`;
//! - hop-by-hop headers (`Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
//!   `Transfer-Encoding`, `Upgrade`, and any named by the recorded `Connection`) and
//!   `Content-Length` are dropped and framing is written anew: `Content-Length` of the stored
//!   body, or, for a response recorded chunked sent to an HTTP/1.1 client that keeps the
//!   connection, `Transfer-Encoding: chunked` with the body as one chunk and the recorded
//!   trailers (and `Trailer` kept);
//! - responses without a body (to `HEAD`, 1xx, 204, 304) keep a recorded `Content-Length`
//!   (except 1xx and 204) and send no body;
//! - `X-Tapline-Mock: matched` is added after the recorded headers (unless marking is off),
//!   and `Connection: close` when the mock closes the connection after the response.

use crate::recorded::RecordedResponse;

/// The header that marks every answer of the mock.
pub const MARK_HEADER: &str = "X-Tapline-Mock";

const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A recorded response rendered once for each way it can be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The whole response for an HTTP/1.1 client that keeps the connection open.
    pub keep_alive: Vec<u8>,
    /// The head for a client whose connection is closed after the response (HTTP/1.0, or
    /// `Connection: close`), always framed with `Content-Length`; the recorded body follows
    /// it when [`Rendered::close_has_body`].
    pub close_head: Vec<u8>,
    /// Whether a body follows `close_head` (false for responses that carry none).
    pub close_has_body: bool,
}

/// Renders `response`, recorded as the answer to a request with `method`; `mark` adds the
/// `X-Tapline-Mock: matched` header.
pub fn render(response: &RecordedResponse, method: &str, mark: bool) -> Rendered {
    let no_body = method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&response.status)
        || response.status == 204
        || response.status == 304;
    let chunked = response.chunked && !no_body;
    let mut keep_alive = head(response, mark, no_body, chunked, false);
    if !no_body {
        if chunked {
            append_chunked(&mut keep_alive, &response.body, &response.trailers);
        } else {
            keep_alive.extend_from_slice(&response.body);
        }
    }
    Rendered {
        keep_alive,
        close_head: head(response, mark, no_body, false, true),
        close_has_body: !no_body,
    }
}

fn head(
    response: &RecordedResponse,
    mark: bool,
    no_body: bool,
    chunked: bool,
    close: bool,
) -> Vec<u8> {
    let named_by_connection: Vec<String> = response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut out = Vec::with_capacity(256 + response.headers.len() * 32);
    out.extend_from_slice(format!("HTTP/1.1 {} ", response.status).as_bytes());
    out.extend_from_slice(&response.reason);
    out.extend_from_slice(b"\r\n");
    for (name, value) in &response.headers {
        let lower = name.to_ascii_lowercase();
        let keep = if lower == "content-length" {
            no_body && !(100..200).contains(&response.status) && response.status != 204
        } else if lower == "trailer" {
            chunked
        } else {
            !HOP_BY_HOP.contains(&lower.as_str()) && !named_by_connection.contains(&lower)
        };
        if keep {
            push_header(&mut out, name, value);
        }
    }
    if mark {
        push_header(&mut out, MARK_HEADER, b"matched");
    }
    if !no_body {
        if chunked {
            push_header(&mut out, "Transfer-Encoding", b"chunked");
        } else {
            push_header(
                &mut out,
                "Content-Length",
                response.body.len().to_string().as_bytes(),
            );
        }
    }
    if close {
        push_header(&mut out, "Connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn append_chunked(out: &mut Vec<u8>, body: &[u8], trailers: &[u8]) {
    if !body.is_empty() {
        out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    if !trailers.is_empty() {
        out.extend_from_slice(trailers);
        if !trailers.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// A response the mock makes itself (no match, bad request): `status` with `reason`, a body of
/// `content_type`, marked `X-Tapline-Mock: mark`; `close` adds `Connection: close`.
pub fn own_response(
    status: u16,
    reason: &str,
    mark: &str,
    content_type: &str,
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
    push_header(&mut out, "Content-Type", content_type.as_bytes());
    push_header(&mut out, MARK_HEADER, mark.as_bytes());
    push_header(
        &mut out,
        "Content-Length",
        body.len().to_string().as_bytes(),
    );
    if close {
        push_header(&mut out, "Connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
        chunked: bool,
    ) -> RecordedResponse {
        RecordedResponse {
            status,
            reason: b"OK".to_vec(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body: body.to_vec(),
            trailers: Vec::new(),
            chunked,
        }
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn content_length_is_written_anew_and_hop_by_hop_dropped() {
        let r = response(
            200,
            &[
                ("Server", "x"),
                ("Content-Length", "999"),
                ("Connection", "keep-alive, X-Hop"),
                ("X-Hop", "1"),
                ("keep-alive", "timeout=5"),
                ("ETag", "\"a\""),
            ],
            b"hello",
            false,
        );
        let out = render(&r, "GET", true);
        assert_eq!(
            text(&out.keep_alive),
            "HTTP/1.1 200 OK\r\nServer: x\r\nETag: \"a\"\r\nX-Tapline-Mock: matched\r\nContent-Length: 5\r\n\r\nhello"
        );
        assert_eq!(
            text(&out.close_head),
            "HTTP/1.1 200 OK\r\nServer: x\r\nETag: \"a\"\r\nX-Tapline-Mock: matched\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
        );
        assert!(out.close_has_body);
    }

    #[test]
    fn chunked_responses_stay_chunked_with_trailers() {
        let mut r = response(
            200,
            &[("Transfer-Encoding", "chunked"), ("Trailer", "X-Sum")],
            b"abc",
            true,
        );
        r.trailers = b"X-Sum: 7\r\n".to_vec();
        let out = render(&r, "GET", false);
        assert_eq!(
            text(&out.keep_alive),
            "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 7\r\n\r\n"
        );
        assert_eq!(
            text(&out.close_head),
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        );
        r.body.clear();
        r.trailers.clear();
        let empty = render(&r, "GET", false);
        assert!(text(&empty.keep_alive).ends_with("\r\n\r\n0\r\n\r\n"));
    }

    #[test]
    fn bodiless_responses_keep_their_length_and_send_nothing() {
        let head = render(
            &response(200, &[("Content-Length", "42")], b"", false),
            "HEAD",
            true,
        );
        assert_eq!(
            text(&head.keep_alive),
            "HTTP/1.1 200 OK\r\nContent-Length: 42\r\nX-Tapline-Mock: matched\r\n\r\n"
        );
        assert!(!head.close_has_body);
        let no_content = render(
            &response(204, &[("Content-Length", "0")], b"", false),
            "DELETE",
            false,
        );
        assert_eq!(text(&no_content.keep_alive), "HTTP/1.1 204 OK\r\n\r\n");
        let not_modified = render(&response(304, &[("ETag", "1")], b"", true), "GET", false);
        assert_eq!(
            text(&not_modified.keep_alive),
            "HTTP/1.1 304 OK\r\nETag: 1\r\n\r\n"
        );
    }

    #[test]
    fn own_responses_are_marked() {
        let out = own_response(599, "No Match", "no-match", "application/json", b"{}", true);
        assert_eq!(
            text(&out),
            "HTTP/1.1 599 No Match\r\nContent-Type: application/json\r\nX-Tapline-Mock: no-match\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
    }
}
