use super::*;

/// Feeds `bytes` in pieces of `step` bytes, as a connection would; returns the responses
/// completed and the bytes left over.
fn feed(
    bytes: &[u8],
    step: usize,
    head_request: bool,
    eof: bool,
) -> Result<(Vec<Response>, usize), WireError> {
    let mut out = Vec::new();
    let mut parser = ResponseParser::new(head_request);
    let mut buf = Vec::new();
    for piece in bytes.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            let (used, done) = parser.advance(&buf)?;
            buf.drain(..used);
            if !done {
                break;
            }
            out.push(parser.take());
            parser = ResponseParser::new(head_request);
        }
    }
    if eof && (parser.started() || !buf.is_empty()) {
        parser.eof()?;
        out.push(parser.take());
    }
    Ok((out, buf.len()))
}

fn every_step(bytes: &[u8], head_request: bool, eof: bool) -> Vec<Response> {
    let (whole, left) = feed(bytes, bytes.len().max(1), head_request, eof).unwrap();
    assert_eq!(left, 0);
    for step in [1, 2, 3, 7, 64] {
        let (pieces, left) = feed(bytes, step, head_request, eof).unwrap();
        assert_eq!(left, 0);
        assert_eq!(pieces, whole, "step {step}");
    }
    whole
}

#[test]
fn content_length_and_keep_alive() {
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    let r = every_step(wire, false, false);
    assert_eq!(r.len(), 2);
    assert_eq!(
        (r[0].status, r[0].body.as_slice(), r[0].close),
        (200, &b"hello"[..], false)
    );
    assert_eq!(r[0].head, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    assert_eq!((r[1].status, r[1].body.len()), (404, 0));
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n!\r\n0\r\nX-Sum: 1\r\n\r\n";
    let r = every_step(wire, false, false);
    assert_eq!(r[0].body, b"hello!");
    assert_eq!(r[0].trailers, b"X-Sum: 1\r\n");
    let lf = b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n";
    assert_eq!(every_step(lf, false, false)[0].body, b"abc");
}

#[test]
fn bodiless_responses() {
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
    assert_eq!(every_step(wire, true, false)[0].body, b"");
    let wire =
        b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 4\r\n\r\n";
    let r = every_step(wire, false, false);
    assert_eq!((r[0].status, r[1].status, r[1].body.len()), (204, 304, 0));
}

#[test]
fn interim_responses_are_skipped() {
    let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    let r = every_step(wire, false, false);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].status, r[0].body.as_slice()), (201, &b"ok"[..]));
    assert!(r[0].head.starts_with(b"HTTP/1.1 201"));
}

#[test]
fn close_delimited_and_connection_close() {
    let wire = b"HTTP/1.1 200 OK\r\n\r\nuntil the end";
    let r = every_step(wire, false, true);
    assert_eq!(
        (r[0].body.as_slice(), r[0].close),
        (&b"until the end"[..], true)
    );
    let wire = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx";
    assert!(every_step(wire, false, false)[0].close);
    let wire = b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx";
    assert!(every_step(wire, false, false)[0].close);
    let wire = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx";
    assert!(!every_step(wire, false, false)[0].close);
}

#[test]
fn errors() {
    let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
    assert_eq!(feed(cut, 4, false, true).unwrap_err(), WireError::Truncated);
    let mut parser = ResponseParser::new(false);
    assert_eq!(parser.eof(), Err(WireError::Closed));
    assert!(matches!(
        feed(b"SMTP ready\r\n\r\n", 100, false, false),
        Err(WireError::Head(_))
    ));
    assert_eq!(
        feed(b"HTTP/1.1 101 Switching\r\n\r\n", 100, false, false).unwrap_err(),
        WireError::Upgrade
    );
    let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    assert!(matches!(
        feed(bad, 100, false, false),
        Err(WireError::Chunked(_))
    ));
    let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX";
    assert!(matches!(
        feed(bad, 100, false, false),
        Err(WireError::Chunked(_))
    ));
    let bad = b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n";
    assert!(matches!(
        feed(bad, 100, false, false),
        Err(WireError::Head(_))
    ));
    let huge = vec![b'a'; MAX_HEAD + 10];
    let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    long.extend_from_slice(&huge);
    assert_eq!(
        feed(&long, 100_000, false, false).unwrap_err(),
        WireError::HeadTooLarge
    );
}

#[test]
fn many_headers_fall_back_to_the_heap() {
    let mut wire = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..200 {
        wire.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
    }
    wire.extend_from_slice(b"Content-Length: 1\r\n\r\nz");
    assert_eq!(every_step(&wire, false, false)[0].body, b"z");
}
