//! Heads cut short: captures with a small snap length (`tcpdump -s 96`) keep only the first
//! bytes of each packet, so start lines run into gaps; the messages must still be reported
//! with what was captured, and paired.

use super::*;
use crate::{parse_request_head, parse_response_head};

/// The request and status of an exchange, as the stored-head views read them.
fn seen(x: &Exchange) -> (Option<String>, Option<u16>) {
    let req = x
        .request
        .as_ref()
        .and_then(|m| parse_request_head(&m.head).ok())
        .map(|h| format!("{} {}", h.method, String::from_utf8_lossy(h.target)));
    let status = x
        .response
        .as_ref()
        .and_then(|m| parse_response_head(&m.head).ok())
        .map(|h| h.status);
    (req, status)
}

/// The one HTTP connection of wireshark's `communityid.pcap`, captured with a 96-byte snap
/// length: 30 bytes of each data packet, the rest reported as gaps.
#[test]
fn snap_length_capture_keeps_request_and_status_lines() {
    let mut r = Run::new();
    let req = b"GET /images/sf.net_box.gif HTT";
    let resp = b"HTTP/1.1 200 OK\r\nDate: Tue, 16";
    r.req(145_412, req).req_gap(145_412, 496 - 30);
    r.resp(292_607, resp).resp_gap(292_607, 1448 - 30);
    // The second response packet: 30 bytes of gzip, line feed included.
    r.resp(292_777, b"\x91\xf8\xf6\xd6\x0c\xf2}\x00h\xbc#F\xdad\xe7\xbe\xff\t\x10\x1c\xb7+\xe0\xa2\xbc\x16\n\xce\x04\xed")
        .resp_gap(292_777, 283 - 30);
    r.resp_end(292_815).req_end(311_104).close(454_536);
    let xs = r.take();
    assert_eq!(xs.len(), 1, "{:?}", summary(&xs));
    let x = &xs[0];
    assert_eq!(x.flags, Flags::INCOMPLETE | Flags::GAP);
    assert_eq!(request(x).head, req);
    assert_eq!(response(x).head, resp);
    assert_eq!(request(x).start_ns, 145_412);
    assert_eq!(response(x).start_ns, 292_607);
    assert_eq!(
        seen(x),
        (Some("GET /images/sf.net_box.gif".into()), Some(200))
    );
    assert_eq!(r.conn.state(), ConnState::Http);
}

/// The same, with the request's gap reported only when its direction ends (after the
/// response arrived): the response waits for its request instead of going without.
#[test]
fn cut_request_reported_late_still_pairs() {
    let mut r = Run::new();
    r.req(1, b"GET /late HTTP/1.1\r\nHost: exa");
    r.resp(5, b"HTTP/1.1 200 OK\r\nContent-Type: t")
        .resp_gap(5, 500);
    assert!(r.out.is_empty());
    r.req_gap(6, 20);
    let xs = r.take();
    assert_eq!(xs.len(), 1, "{:?}", summary(&xs));
    assert_eq!(xs[0].flags, Flags::INCOMPLETE | Flags::GAP);
    assert_eq!(seen(&xs[0]), (Some("GET /late".into()), Some(200)));
    let mut r = Run::new();
    r.req(1, b"GET /late HT");
    r.resp(5, b"HTTP/1.1 200 OK\r\nContent-Type: t")
        .resp_gap(5, 500);
    r.req_gap(6, 20).close(7);
    let xs = r.take();
    assert_eq!(xs.len(), 1, "{:?}", summary(&xs));
    assert_eq!(seen(&xs[0]), (Some("GET /late".into()), Some(200)));
}

/// A keep-alive connection captured with a small snap length: every message is cut, each
/// at its own length; every request still pairs with its own response.
#[test]
fn seeded_snap_lengths_pair_every_exchange() {
    for seed in 1..200u64 {
        let mut rng = Lcg(seed);
        let mut r = Run::new();
        let n = 10;
        let mut ts = 0;
        let mut expected = Vec::new();
        for i in 0..n {
            let req =
                format!("GET /item/{i} HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n\r\n")
                    .into_bytes();
            // Statuses with a body (not 204).
            let status = 230 + i;
            let resp = format!(
                "HTTP/1.1 {status} OK\r\nContent-Length: 40\r\nServer: s\r\n\r\n{}",
                "b".repeat(40)
            )
            .into_bytes();
            // At least "GET /item/N " and "HTTP/1.1 2NN" survive.
            let keep_req = 13 + rng.next(req.len() - 13);
            let keep_resp = 12 + rng.next(resp.len() - 12);
            ts += 10;
            r.req(ts, &req[..keep_req])
                .req_gap(ts, (req.len() - keep_req) as u64);
            r.resp(ts + 5, &resp[..keep_resp])
                .resp_gap(ts + 5, (resp.len() - keep_resp) as u64);
            expected.push((Some(format!("GET /item/{i}")), Some(status as u16)));
        }
        r.close(ts + 100);
        let xs = r.take();
        let got: Vec<_> = xs.iter().map(seen).collect();
        assert_eq!(got, expected, "seed {seed}: {:?}", summary(&xs));
        assert!(
            xs.iter().all(|x| x.flags == Flags::INCOMPLETE | Flags::GAP),
            "seed {seed}: {:?}",
            summary(&xs)
        );
    }
}

/// A status line cut before its reason: the response answers the waiting request.
#[test]
fn status_line_cut_before_reason() {
    let mut r = Run::new();
    r.req(1, &get("/a"))
        .resp(2, b"HTTP/1.1 404")
        .resp_gap(3, 50);
    r.req(4, &get("/b")).resp(5, &ok("b"));
    let xs = r.take();
    assert_eq!(xs.len(), 2, "{:?}", summary(&xs));
    assert_eq!(xs[0].flags, Flags::INCOMPLETE | Flags::GAP);
    assert_eq!(response(&xs[0]).head, b"HTTP/1.1 404");
    assert_eq!(seen(&xs[0]), (Some("GET /a".into()), Some(404)));
    assert!(xs[1].flags.is_empty());
    assert_eq!(response(&xs[1]).body, b"b");
}

/// A request line cut by the end of its direction, on a stream picked up at that request.
#[test]
fn request_line_cut_by_fin() {
    let mut r = Run::new();
    r.req(1, b"POST /upload HTTP/1").req_end(2).close(3);
    let xs = r.take();
    assert_eq!(
        summary(&xs),
        vec![(
            "POST /upload HTTP/1".into(),
            "".into(),
            Flags::INCOMPLETE | Flags::NO_RESPONSE
        )]
    );
    assert_eq!(request(&xs[0]).end_ns, 1);
}

/// After a gap, a packet that begins with a cut request line is a request; the bytes before
/// a line start are not part of it.
#[test]
fn cut_request_line_after_a_gap_and_at_a_line_start() {
    let mut r = Run::new();
    r.req(1, &get("/a")).resp(2, &ok("a"));
    r.req(3, b"POST /b HTTP/1.1\r\nConte").req_gap(3, 98);
    r.req(4, b"tail}\r\nDELETE /c HT").req_gap(4, 30);
    r.req(5, b"PUT /d").req_gap(5, 60);
    r.resp(6, &ok("b")).resp(7, &ok("c")).resp(8, &ok("d"));
    let xs = r.take();
    let got: Vec<_> = xs.iter().map(seen).collect();
    assert_eq!(
        got,
        vec![
            (Some("GET /a".into()), Some(200)),
            (Some("POST /b".into()), Some(200)),
            (Some("DELETE /c".into()), Some(200)),
            (None, Some(200)),
        ],
        "{:?}",
        summary(&xs)
    );
    assert_eq!(request(&xs[2]).head, b"DELETE /c HT");
    assert_eq!(request(&xs[3]).head, b"PUT /d");
    assert_eq!(response(&xs[2]).body, b"c");
    assert_eq!(response(&xs[3]).body, b"d");
    assert!(xs[0].flags.is_empty());
    assert!(
        xs[1..]
            .iter()
            .all(|x| x.flags == Flags::INCOMPLETE | Flags::GAP)
    );
}

/// Text that only resembles a request line is not taken for one: mid-line after a gap
/// without a known method, or an unknown word, or no target yet.
#[test]
fn cut_lookalikes_are_not_requests() {
    for junk in [
        &b"ET /a HTT"[..],
        b"FOO /a HTT",
        b"GET ",
        b"GET / a b",
        b"x\r\nget /a HTT",
        b"\x00\x01GET /a HT",
    ] {
        let mut r = Run::new();
        r.req(1, &get("/a")).resp(2, &ok("a"));
        r.req_gap(3, 10).req(4, junk).req_gap(5, 10);
        r.resp(6, &ok("b"));
        r.close(7);
        let xs = r.take();
        assert_eq!(
            summary(&xs),
            vec![
                (
                    "GET /a HTTP/1.1".into(),
                    "HTTP/1.1 200 OK".into(),
                    Flags::NONE
                ),
                (
                    "".into(),
                    "HTTP/1.1 200 OK".into(),
                    Flags::NO_REQUEST | Flags::INCOMPLETE | Flags::GAP
                ),
            ],
            "{:?}",
            String::from_utf8_lossy(junk)
        );
    }
}

/// A cut `HEAD` request still frames its response as bodiless, so the exchanges after it
/// stay paired right.
#[test]
fn cut_head_request_keeps_response_framing() {
    for cut in [&b"HEAD /a HTTP/1.1\r\nHo"[..], b"HEAD /a HT"] {
        let mut r = Run::new();
        r.req(1, cut).req_gap(1, 30);
        r.resp(2, b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n");
        r.req(3, &get("/b")).resp(4, &ok("b"));
        r.req(5, &get("/c")).resp(6, &ok("c"));
        let xs = r.take();
        let got: Vec<_> = xs.iter().map(seen).collect();
        assert_eq!(
            got,
            vec![
                (Some("HEAD /a".into()), Some(200)),
                (Some("GET /b".into()), Some(200)),
                (Some("GET /c".into()), Some(200)),
            ],
            "{:?}",
            summary(&xs)
        );
        assert_eq!(xs[0].flags, Flags::INCOMPLETE | Flags::GAP);
        assert!(response(&xs[0]).body.is_empty());
        assert!(xs[1].flags.is_empty() && xs[2].flags.is_empty());
        assert_eq!(response(&xs[1]).body, b"b");
    }
}

/// A cut `CONNECT` request: its 200 still switches the connection to a tunnel.
#[test]
fn cut_connect_request_still_tunnels() {
    let mut r = Run::new();
    r.req(1, b"CONNECT db.internal:5432 HT").req_gap(1, 40);
    r.resp(
        2,
        b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01",
    );
    let xs = r.take();
    assert_eq!(xs.len(), 1, "{:?}", summary(&xs));
    assert_eq!(xs[0].flags, Flags::INCOMPLETE | Flags::GAP | Flags::UPGRADE);
    assert_eq!(r.conn.state(), ConnState::Upgraded);
}
