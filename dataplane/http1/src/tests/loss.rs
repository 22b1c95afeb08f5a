//! Losses: gaps, early ends and closes, bounds, and garbage.

use super::*;

#[test]
fn gap_inside_content_length_body_keeps_sync() {
    let mut r = Run::new();
    r.req(1, &get("/a"))
        .resp(2, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n012")
        .resp_gap(3, 4)
        .resp(4, b"789");
    r.req(5, &get("/b")).resp(6, &ok("b"));
    let xs = r.take();
    assert_eq!(xs.len(), 2);
    assert_eq!(xs[0].flags, Flags::GAP | Flags::INCOMPLETE);
    assert_eq!(response(&xs[0]).body, b"012789");
    assert_eq!(response(&xs[0]).body_wire_len, 10);
    assert!(xs[1].flags.is_empty());
}

#[test]
fn gap_inside_chunk_data_keeps_sync() {
    let mut r = Run::new();
    r.req(1, &get("/a"))
        .resp(
            2,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nab",
        )
        .resp_gap(3, 2);
    r.resp(4, b"ef\r\n0\r\n\r\n")
        .req(5, &get("/b"))
        .resp(6, &ok("b"));
    let xs = r.take();
    assert_eq!(xs.len(), 2);
    assert_eq!(xs[0].flags, Flags::GAP | Flags::INCOMPLETE);
    assert_eq!(response(&xs[0]).body, b"abef");
    assert!(xs[1].flags.is_empty());
}

#[test]
fn gap_in_chunk_framing_resyncs() {
    let mut r = Run::new();
    r.req(1, &get("/a"))
        .resp(
            2,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r",
        )
        .resp_gap(3, 5);
    r.resp(4, b"more junk\r\n0\r\n\r\n");
    r.req(5, &get("/b")).resp(6, &ok("b"));
    let xs = r.take();
    assert_eq!(xs.len(), 2, "{:?}", summary(&xs));
    assert_eq!(xs[0].flags, Flags::GAP | Flags::INCOMPLETE);
    assert_eq!(response(&xs[0]).body, b"abcdef");
    assert_eq!(line(request(&xs[1])), "GET /b HTTP/1.1");
    assert_eq!(response(&xs[1]).body, b"b");
    assert!(xs[1].flags.is_empty());
}

#[test]
fn gap_in_response_head_resyncs() {
    let mut r = Run::new();
    r.req(1, &get("/a"))
        .resp(2, b"HTTP/1.1 200 OK\r\nContent-")
        .resp_gap(3, 20)
        .resp(4, b"xx\r\n\r\nsome body");
    r.req(5, &get("/b")).resp(6, &ok("b"));
    let xs = r.take();
    assert_eq!(xs.len(), 2, "{:?}", summary(&xs));
    assert_eq!(xs[0].flags, Flags::GAP | Flags::INCOMPLETE);
    assert_eq!(response(&xs[0]).head, b"HTTP/1.1 200 OK\r\nContent-");
    assert!(xs[1].flags.is_empty());
}

#[test]
fn gap_swallowing_a_request_gets_a_placeholder() {
    let mut r = Run::new();
    r.req(1, &get("/a")).resp(2, &ok("a"));
    r.req_gap(3, 40).resp(4, &ok("lost-request"));
    r.req(5, &get("/c")).resp(6, &ok("c"));
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
            (
                "GET /c HTTP/1.1".into(),
                "HTTP/1.1 200 OK".into(),
                Flags::NONE
            ),
        ]
    );
    assert_eq!(response(&xs[1]).body, b"lost-request");
}

#[test]
fn gap_swallowing_a_response() {
    let mut r = Run::new();
    r.req(1, &get("/a"))
        .resp_gap(2, 50)
        .req(3, &get("/b"))
        .resp(4, &ok("b"));
    let xs = r.take();
    assert_eq!(
        summary(&xs),
        vec![
            (
                "GET /a HTTP/1.1".into(),
                "".into(),
                Flags::NO_RESPONSE | Flags::INCOMPLETE | Flags::GAP
            ),
            (
                "GET /b HTTP/1.1".into(),
                "HTTP/1.1 200 OK".into(),
                Flags::NONE
            ),
        ]
    );
}

#[test]
fn gap_in_request_head_pairs_with_its_response() {
    let mut r = Run::new();
    r.req(1, b"POST /a HTTP/1.1\r\nContent-Le")
        .req_gap(2, 30)
        .req(3, b"tail of body");
    r.resp(4, &ok("a")).req(5, &get("/b")).resp(6, &ok("b"));
    let xs = r.take();
    assert_eq!(xs.len(), 2, "{:?}", summary(&xs));
    assert_eq!(xs[0].flags, Flags::GAP | Flags::INCOMPLETE);
    assert_eq!(request(&xs[0]).head, b"POST /a HTTP/1.1\r\nContent-Le");
    assert_eq!(response(&xs[0]).body, b"a");
    assert!(xs[1].flags.is_empty());
}

#[test]
fn close_flushes_unanswered_requests() {
    let mut r = Run::new();
    r.req(1, &get("/a"))
        .req(2, &get("/b"))
        .resp(3, &ok("a"))
        .resp(4, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\npart");
    r.close(5);
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
                "GET /b HTTP/1.1".into(),
                "HTTP/1.1 200 OK".into(),
                Flags::INCOMPLETE
            ),
        ]
    );
    assert_eq!(response(&xs[1]).body, b"part");
    let mut r = Run::new();
    r.req(1, &get("/only")).close(2);
    assert_eq!(r.take()[0].flags, Flags::NO_RESPONSE | Flags::INCOMPLETE);
}

#[test]
fn response_side_end_settles_unanswered_requests() {
    let mut r = Run::new();
    r.req(1, &get("/a")).resp_end(2);
    let xs = r.take();
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0].flags, Flags::NO_RESPONSE | Flags::INCOMPLETE);
}

#[test]
fn request_cut_by_fin() {
    let mut r = Run::new();
    r.req(1, b"POST /a HTTP/1.1\r\nContent-Length: 100\r\n\r\nshort")
        .req_end(2)
        .resp(3, &ok("x"));
    let xs = r.take();
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0].flags, Flags::INCOMPLETE);
    assert_eq!(request(&xs[0]).body, b"short");
    let mut r = Run::new();
    r.req(1, b"GET /a HTTP/1.1\r\nHost").req_end(2).close(3);
    let xs = r.take();
    assert_eq!(xs[0].flags, Flags::INCOMPLETE | Flags::NO_RESPONSE);
    assert_eq!(request(&xs[0]).head, b"GET /a HTTP/1.1\r\nHost");
}

#[test]
fn pipeline_bound_hands_out_the_oldest() {
    let mut r = Run::with(Http1Config {
        max_pipelined: 2,
        ..Http1Config::default()
    });
    r.req(1, &get("/1")).req(2, &get("/2")).req(3, &get("/3"));
    let xs = r.take();
    assert_eq!(
        summary(&xs),
        vec![(
            "GET /1 HTTP/1.1".into(),
            "".into(),
            Flags::NO_RESPONSE | Flags::INCOMPLETE
        )]
    );
}

#[test]
fn garbage_becomes_not_http() {
    let mut r = Run::with(Http1Config {
        max_detect_bytes: 1000,
        ..Http1Config::default()
    });
    let junk: Vec<u8> = (0..600u32).map(|i| (i * 7 % 251) as u8).collect();
    r.req(1, &junk).resp(2, &junk);
    assert_eq!(r.conn.state(), ConnState::NotHttp);
    r.req(3, &get("/late")).resp(4, &ok("late")).close(5);
    assert!(r.take().is_empty());
    assert_eq!(
        r.conn.stats().ignored_bytes,
        get("/late").len() as u64 + ok("late").len() as u64
    );
}

#[test]
fn interim_responses_are_bounded() {
    let mut r = Run::new();
    r.req(1, &get("/"));
    for i in 0..40 {
        r.resp(2 + i, b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    r.resp(50, &ok("done"));
    let xs = r.take();
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0].interim.len(), 16);
    assert_eq!(r.conn.stats().dropped_messages, 24);
}

#[test]
fn odd_transfer_codings() {
    let mut r = Run::new();
    r.req(1, b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")
        .req(2, &get("/next"));
    r.resp(3, b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n")
        .resp(4, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw");
    r.resp_end(5);
    let xs = r.take();
    assert_eq!(xs.len(), 2, "{:?}", summary(&xs));
    assert!(xs[0].flags.contains(Flags::PARSE_ERROR));
    assert_eq!(xs[1].flags, Flags::CLOSE_DELIMITED);
    assert_eq!(response(&xs[1]).body, b"raw");
}

/// A realistic conversation with seeded losses: whatever is not flagged must be paired right.
#[test]
fn seeded_losses_never_mispair_clean_exchanges() {
    for seed in 1..500u64 {
        let mut rng = Lcg(seed);
        let mut r = Run::new();
        let mut ts = 0;
        let mut clean_expected = 0;
        for i in 0..12 {
            let req = if i % 3 == 0 {
                format!("POST /{i} HTTP/1.1\r\nContent-Length: 7\r\n\r\n{{\"a\":1}}").into_bytes()
            } else {
                get(&format!("/{i}"))
            };
            let resp = if i % 4 == 1 {
                format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{i}\r\n0\r\n\r\n",
                    i.to_string().len()
                )
                .into_bytes()
            } else {
                ok(&i.to_string())
            };
            let mut lossy = false;
            for (is_req, bytes) in [(true, req), (false, resp)] {
                ts += 10;
                let lose = rng.next(6) == 0;
                lossy |= lose;
                let (a, b) = if lose {
                    let at = rng.next(bytes.len());
                    let len = 1 + rng.next(bytes.len() - at);
                    (at, at + len)
                } else {
                    (bytes.len(), bytes.len())
                };
                let feed = |r: &mut Run, ts: u64, d: &[u8]| {
                    if is_req {
                        r.req(ts, d);
                    } else {
                        r.resp(ts, d);
                    }
                };
                feed(&mut r, ts, &bytes[..a]);
                if b > a {
                    if is_req {
                        r.req_gap(ts + 1, (b - a) as u64);
                    } else {
                        r.resp_gap(ts + 1, (b - a) as u64);
                    }
                }
                feed(&mut r, ts + 2, &bytes[b..]);
            }
            clean_expected += usize::from(!lossy);
        }
        r.close(ts + 100);
        let xs = r.take();
        let mut clean = 0;
        for x in &xs {
            if !x.flags.is_empty() {
                continue;
            }
            clean += 1;
            let path = line(request(x))
                .split(' ')
                .nth(1)
                .unwrap()
                .trim_start_matches('/')
                .to_string();
            assert_eq!(
                response(x).body,
                path.as_bytes(),
                "seed {seed}: {:?}",
                summary(&xs)
            );
        }
        // Losses cost at most the exchanges they touch and the one after.
        assert!(
            clean + 2 * (12 - clean_expected) >= 12,
            "seed {seed}: {:?}",
            summary(&xs)
        );
    }
}

/// Pipelined batches with seeded gaps inside bodies: sync is kept, so every exchange pairs
/// right and only the touched ones are flagged.
///
/// (A gap that swallows a whole unknown number of pipelined messages cannot be paired back
/// reliably; that case is not asserted.)
#[test]
fn seeded_body_gaps_in_pipelined_batches_keep_pairing() {
    for seed in 1..300u64 {
        let mut rng = Lcg(seed);
        let mut r = Run::new();
        let mut ts = 0;
        let mut touched = 0;
        for batch in 0..4 {
            let ids: Vec<usize> = (0..3).map(|k| batch * 3 + k).collect();
            let mut reqs = Vec::new();
            let mut resps = Vec::new();
            let mut bodies = Vec::new();
            for &i in &ids {
                reqs.extend(format!("POST /{i} HTTP/1.1\r\nContent-Length: 20\r\n\r\n").as_bytes());
                let body_at = reqs.len();
                reqs.extend(format!("{i:020}").as_bytes());
                resps.extend(ok(&format!("{i:020}")));
                bodies.push(body_at);
            }
            for (is_req, bytes) in [(true, reqs), (false, resps)] {
                ts += 10;
                let dir = if is_req { ToServer } else { ToClient };
                let (a, b) = if rng.next(3) == 0 {
                    // Inside the body of one message of the batch.
                    let k = rng.next(3);
                    let body_at = if is_req {
                        bodies[k]
                    } else {
                        (k + 1) * ok(&"0".repeat(20)).len() - 20
                    };
                    let at = body_at + rng.next(20);
                    touched += 1;
                    (at, at + 1 + rng.next(body_at + 20 - at))
                } else {
                    (bytes.len(), bytes.len())
                };
                r.conn.data(dir, ts, &bytes[..a], &mut r.out);
                if b > a {
                    r.conn.gap(dir, ts + 1, (b - a) as u64, &mut r.out);
                }
                r.conn.data(dir, ts + 2, &bytes[b..], &mut r.out);
            }
        }
        r.close(ts + 100);
        let xs = r.take();
        assert_eq!(xs.len(), 12, "seed {seed}: {:?}", summary(&xs));
        let flagged = xs.iter().filter(|x| !x.flags.is_empty()).count();
        assert!(flagged <= touched, "seed {seed}: {:?}", summary(&xs));
        for (i, x) in xs.iter().enumerate() {
            assert_eq!(
                line(request(x)),
                format!("POST /{i} HTTP/1.1"),
                "seed {seed}"
            );
            assert!(
                x.flags.is_empty() || x.flags == Flags::GAP | Flags::INCOMPLETE,
                "seed {seed}"
            );
            assert_eq!(response(x).body_wire_len, 20);
        }
    }
}
