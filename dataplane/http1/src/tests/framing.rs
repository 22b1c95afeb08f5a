//! Message framing: lengths, chunked coding, close-delimited bodies, bodiless responses,
//! interim responses and protocol switches.

use super::*;

#[test]
fn post_with_content_length() {
    let mut r = Run::new();
    r.req(1, b"POST /f HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello")
        .req(2, b" world")
        .resp(3, &ok("done"));
    let xs = r.take();
    assert_eq!(request(&xs[0]).body, b"hello world");
    assert_eq!(request(&xs[0]).body_wire_len, 11);
    assert_eq!((request(&xs[0]).start_ns, request(&xs[0]).end_ns), (1, 2));
}

#[test]
fn chunked_request_with_extensions_and_trailers() {
    let mut r = Run::new();
    let body = b"4;name=val\r\nWiki\r\n5 ; q\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\n";
    let mut wire = b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    wire.extend_from_slice(body);
    r.req(1, &wire).resp(2, &ok(""));
    let xs = r.take();
    assert_eq!(xs.len(), 1);
    let m = request(&xs[0]);
    assert_eq!(m.body, b"Wikipedia in\r\n\r\nchunks.");
    assert_eq!(m.trailers, b"X-Sum: 1\r\nX-B: 2\r\n");
    assert_eq!(m.body_wire_len, body.len() as u64);
    assert!(xs[0].flags.is_empty());
}

#[test]
fn chunked_response_without_trailers() {
    let mut r = Run::new();
    r.req(1, &get("/")).resp(
        2,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    let xs = r.take();
    assert_eq!(response(&xs[0]).body, b"abc");
    assert!(response(&xs[0]).trailers.is_empty());
    assert_eq!(response(&xs[0]).body_wire_len, 13);
}

#[test]
fn chunked_with_bare_line_feeds() {
    let mut r = Run::new();
    r.req(1, b"GET / HTTP/1.1\nHost: a\n\n").resp(
        2,
        b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nhi\n0\n\n",
    );
    let xs = r.take();
    assert_eq!(xs.len(), 1);
    assert_eq!(response(&xs[0]).body, b"hi");
    assert!(xs[0].flags.is_empty());
}

#[test]
fn close_delimited_response() {
    let mut r = Run::new();
    r.req(1, b"GET /old HTTP/1.0\r\n\r\n")
        .resp(2, b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\npart one,")
        .resp(3, b" part two");
    assert!(r.out.is_empty());
    r.resp_end(4);
    let xs = r.take();
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0].flags, Flags::CLOSE_DELIMITED);
    assert_eq!(response(&xs[0]).body, b"part one, part two");
    assert_eq!(response(&xs[0]).end_ns, 3);
}

#[test]
fn close_delimited_response_flushed_by_close() {
    let mut r = Run::new();
    r.req(1, &get("/"))
        .resp(2, b"HTTP/1.1 200 OK\r\n\r\nstream")
        .close(9);
    let xs = r.take();
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0].flags, Flags::CLOSE_DELIMITED);
    assert_eq!(response(&xs[0]).body, b"stream");
}

#[test]
fn head_response_has_no_body() {
    let mut r = Run::new();
    r.req(1, b"HEAD /big HTTP/1.1\r\n\r\n")
        .req(2, &get("/next"));
    r.resp(3, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        .resp(4, &ok("n"));
    let xs = r.take();
    assert_eq!(xs.len(), 2);
    assert!(response(&xs[0]).body.is_empty());
    assert_eq!(response(&xs[0]).body_wire_len, 0);
    assert_eq!(response(&xs[1]).body, b"n");
    assert!(xs.iter().all(|x| x.flags.is_empty()));
}

#[test]
fn no_body_statuses() {
    let mut r = Run::new();
    r.req(1, &get("/a")).req(1, &get("/b")).req(1, &get("/c"));
    r.resp(2, b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n");
    r.resp(
        3,
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    );
    r.resp(4, &ok("c"));
    let xs = r.take();
    assert_eq!(xs.len(), 3);
    assert!(response(&xs[0]).body.is_empty() && response(&xs[1]).body.is_empty());
    assert_eq!(response(&xs[2]).body, b"c");
}

#[test]
fn continue_is_kept_as_interim() {
    let mut r = Run::new();
    r.req(
        1,
        b"PUT /u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    );
    r.resp(2, b"HTTP/1.1 100 Continue\r\n\r\n");
    r.req(3, b"abc");
    r.resp(4, b"HTTP/1.1 102 Processing\r\n\r\n")
        .resp(5, &ok("stored"));
    let xs = r.take();
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0].interim.len(), 2);
    assert_eq!(line(&xs[0].interim[0]), "HTTP/1.1 100 Continue");
    assert_eq!(xs[0].interim[0].start_ns, 2);
    assert_eq!(request(&xs[0]).body, b"abc");
    assert_eq!(response(&xs[0]).body, b"stored");
    assert_eq!(response(&xs[0]).start_ns, 5);
}

#[test]
fn switching_protocols_stops_parsing() {
    let mut r = Run::new();
    r.req(
        1,
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
    );
    r.resp(
        2,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi",
    );
    r.req(3, b"GET /not-http HTTP/1.1\r\n\r\n")
        .resp(4, b"HTTP/1.1 200 OK\r\n\r\n");
    r.close(5);
    let xs = r.take();
    assert_eq!(xs.len(), 1, "{:?}", summary(&xs));
    assert_eq!(xs[0].flags, Flags::UPGRADE);
    assert_eq!(r.conn.state(), ConnState::Upgraded);
    let stats = r.conn.stats();
    assert_eq!(stats.upgraded_bytes, 7 + 4 + 26 + 19);
    assert_eq!(stats.skipped_bytes, 0);
}

#[test]
fn connect_tunnel() {
    let mut r = Run::new();
    r.req(
        1,
        b"CONNECT db.test:443 HTTP/1.1\r\nHost: db.test:443\r\n\r\n\x16\x03\x01\x00\x05hello",
    );
    r.resp(
        2,
        b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03",
    );
    let xs = r.take();
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0].flags, Flags::UPGRADE);
    assert_eq!(line(request(&xs[0])), "CONNECT db.test:443 HTTP/1.1");
    assert_eq!(r.conn.state(), ConnState::Upgraded);
    assert_eq!(r.conn.stats().upgraded_bytes, 10 + 3);
}

#[test]
fn refused_connect_and_upgrade_continue_as_http() {
    let mut r = Run::new();
    r.req(1, b"CONNECT x:443 HTTP/1.1\r\n\r\n")
        .req(2, &get("/after-connect"));
    r.resp(3, b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 0\r\n\r\n")
        .resp(4, &ok("a"));
    r.req(5, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
        .req(6, &get("/after-upgrade"));
    r.resp(7, &ok("no ws")).resp(8, &ok("b"));
    let xs = r.take();
    assert_eq!(
        summary(&xs).into_iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![
            "CONNECT x:443 HTTP/1.1",
            "GET /after-connect HTTP/1.1",
            "GET /ws HTTP/1.1",
            "GET /after-upgrade HTTP/1.1"
        ]
    );
    assert!(xs.iter().all(|x| x.flags.is_empty()));
    assert_eq!(r.conn.state(), ConnState::Http);
}

#[test]
fn http10_exchange() {
    let mut r = Run::new();
    r.req(1, b"GET / HTTP/1.0\r\nUser-Agent: t\r\n\r\n")
        .resp(2, b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let xs = r.take();
    assert_eq!(xs.len(), 1);
    assert!(xs[0].flags.is_empty());
}

#[test]
fn body_truncated_to_limit() {
    let mut r = Run::with(Http1Config {
        max_body_bytes: 4,
        ..Http1Config::default()
    });
    r.req(1, &get("/"))
        .resp(2, &ok("0123456789"))
        .req(3, &get("/2"))
        .resp(4, &ok("ab"));
    let xs = r.take();
    assert_eq!(xs[0].flags, Flags::BODY_TRUNCATED);
    assert_eq!(response(&xs[0]).body, b"0123");
    assert_eq!(response(&xs[0]).body_wire_len, 10);
    assert!(xs[1].flags.is_empty());
}

#[test]
fn many_headers_in_stream() {
    let mut head = b"GET /h HTTP/1.1\r\n".to_vec();
    for i in 0..200 {
        head.extend(format!("X-H{i}: v\r\n").as_bytes());
    }
    head.extend(b"\r\n");
    let mut r = Run::new();
    r.req(1, &head).resp(2, &ok("x"));
    let xs = r.take();
    assert_eq!(xs.len(), 1);
    assert!(xs[0].flags.is_empty());
    assert_eq!(request(&xs[0]).head, head);
}

#[test]
fn bad_content_length_is_a_parse_error() {
    let mut r = Run::new();
    r.req(
        1,
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    );
    r.req(2, &get("/next"));
    r.resp(3, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        .resp(4, &ok("n"));
    let xs = r.take();
    assert_eq!(xs.len(), 2, "{:?}", summary(&xs));
    assert!(xs[0].flags.contains(Flags::PARSE_ERROR));
    assert_eq!(line(request(&xs[1])), "GET /next HTTP/1.1");
    assert!(xs[1].flags.is_empty());
}

#[test]
fn oversized_head_is_a_parse_error_then_resync() {
    let mut r = Run::with(Http1Config {
        max_head_bytes: 256,
        ..Http1Config::default()
    });
    let mut big = b"GET /big HTTP/1.1\r\n".to_vec();
    for _ in 0..20 {
        big.extend(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    big.extend(b"\r\n");
    r.req(1, &big[..100])
        .req(2, &big[100..])
        .req(3, &get("/small"));
    r.resp(4, b"HTTP/1.1 431 Too Large\r\nContent-Length: 0\r\n\r\n")
        .resp(5, &ok("s"));
    let xs = r.take();
    assert_eq!(xs.len(), 2, "{:?}", summary(&xs));
    assert!(xs[0].flags.contains(Flags::PARSE_ERROR));
    assert_eq!(request(&xs[0]).head.len(), 256);
    assert_eq!(line(request(&xs[1])), "GET /small HTTP/1.1");
    assert_eq!(response(&xs[1]).body, b"s");
    assert_eq!(r.conn.stats().parse_errors, 1);
}
