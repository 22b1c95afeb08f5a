//! Roles and ordering: swapped directions, mid-stream pickups, responses seen before their
//! requests.

use super::*;

#[test]
fn swapped_directions_are_detected() {
    let mut r = Run::new();
    // The reassembler labelled the server as the client.
    r.conn.data(ToClient, 1, &get("/swapped"), &mut r.out);
    r.conn.data(ToServer, 2, &ok("yes"), &mut r.out);
    let xs = r.take();
    assert_eq!(xs.len(), 1, "{:?}", summary(&xs));
    assert_eq!(line(request(&xs[0])), "GET /swapped HTTP/1.1");
    assert_eq!(response(&xs[0]).body, b"yes");
    assert!(xs[0].flags.is_empty());
}

#[test]
fn swapped_directions_response_first() {
    let mut r = Run::new();
    r.conn.data(ToServer, 2, &ok("yes"), &mut r.out);
    r.conn.data(ToClient, 1, &get("/swapped"), &mut r.out);
    r.conn.data(ToClient, 3, &get("/second"), &mut r.out);
    r.conn.data(ToServer, 4, &ok("two"), &mut r.out);
    let xs = r.take();
    assert_eq!(xs.len(), 2, "{:?}", summary(&xs));
    assert_eq!(response(&xs[0]).body, b"yes");
    assert_eq!(response(&xs[1]).body, b"two");
    assert!(xs.iter().all(|x| x.flags.is_empty()));
}

#[test]
fn mid_stream_pickup_resyncs_on_both_sides() {
    let mut r = Run::new();
    // Capture starts inside a JSON upload and inside the previous download.
    let mut reqs = b"\"k\": 1}, {\"k\": 2}]}".to_vec();
    reqs.extend(b"POST /next HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
    reqs.extend(b"POST /third HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]");
    let mut resps = b"tail of a body without newline".to_vec();
    resps.extend(ok("{\"id\":2}"));
    r.resp(1, &resps).req(2, &reqs).resp(3, &ok("{\"id\":3}"));
    let xs = r.take();
    assert_eq!(
        summary(&xs),
        vec![
            (
                "".into(),
                "HTTP/1.1 200 OK".into(),
                Flags::NO_REQUEST | Flags::INCOMPLETE
            ),
            (
                "POST /next HTTP/1.1".into(),
                "HTTP/1.1 200 OK".into(),
                Flags::NONE
            ),
        ]
    );
    assert_eq!(response(&xs[1]).body, b"{\"id\":3}");
    r.close(4);
    let xs = r.take();
    assert_eq!(
        summary(&xs),
        vec![(
            "POST /third HTTP/1.1".into(),
            "".into(),
            Flags::NO_RESPONSE | Flags::INCOMPLETE
        )]
    );
    assert_eq!(r.conn.stats().skipped_bytes, 19 + 30);
}

#[test]
fn response_waits_for_its_request() {
    let mut r = Run::new();
    // The response arrives first in call order (the request was held by the reassembler),
    // but was captured after it.
    r.resp(20, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
        .resp(21, &ok("next"));
    assert!(r.out.is_empty());
    r.req(10, b"HEAD /a HTTP/1.1\r\n\r\n").req(11, &get("/b"));
    let xs = r.take();
    assert_eq!(xs.len(), 2, "{:?}", summary(&xs));
    assert_eq!(line(request(&xs[0])), "HEAD /a HTTP/1.1");
    assert!(response(&xs[0]).body.is_empty());
    assert_eq!(response(&xs[1]).body, b"next");
    assert!(xs.iter().all(|x| x.flags.is_empty()));
}

#[test]
fn response_without_request_when_request_side_ends() {
    let mut r = Run::new();
    r.resp(1, &ok("orphan"));
    assert!(r.out.is_empty());
    r.req_end(2);
    let xs = r.take();
    assert_eq!(
        summary(&xs),
        vec![(
            "".into(),
            "HTTP/1.1 200 OK".into(),
            Flags::NO_REQUEST | Flags::INCOMPLETE
        )]
    );
}

#[test]
fn response_older_than_the_next_request_has_none() {
    let mut r = Run::new();
    r.resp(1, &ok("old"))
        .req(5, &get("/new"))
        .resp(6, &ok("new"));
    let xs = r.take();
    assert_eq!(
        summary(&xs),
        vec![
            (
                "".into(),
                "HTTP/1.1 200 OK".into(),
                Flags::NO_REQUEST | Flags::INCOMPLETE
            ),
            (
                "GET /new HTTP/1.1".into(),
                "HTTP/1.1 200 OK".into(),
                Flags::NONE
            ),
        ]
    );
}

#[test]
fn held_responses_are_bounded() {
    let mut r = Run::with(Http1Config {
        max_unpaired_bytes: 100,
        ..Http1Config::default()
    });
    r.resp(1, &ok(&"z".repeat(200)));
    let xs = r.take();
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0].flags, Flags::NO_REQUEST | Flags::INCOMPLETE);
}

#[test]
fn close_resolves_everything_held() {
    let mut r = Run::new();
    r.req(1, b"CONNECT a:1 HTTP/1.1\r\n\r\n")
        .req(2, &get("/held"));
    r.close(3);
    let xs = r.take();
    assert_eq!(
        summary(&xs).into_iter().map(|s| s.0).collect::<Vec<_>>(),
        vec!["CONNECT a:1 HTTP/1.1", "GET /held HTTP/1.1"]
    );
    assert!(
        xs.iter()
            .all(|x| x.flags == Flags::NO_RESPONSE | Flags::INCOMPLETE)
    );
}

#[test]
fn held_response_released_by_a_gap_on_the_unsynced_request_side() {
    let mut r = Run::new();
    r.req(1, b"tail of an upload").resp(2, &ok("answer"));
    assert!(r.out.is_empty());
    r.req_gap(3, 100);
    let xs = r.take();
    assert_eq!(
        summary(&xs),
        vec![(
            "".into(),
            "HTTP/1.1 200 OK".into(),
            Flags::NO_REQUEST | Flags::INCOMPLETE
        )]
    );
    r.req(4, &get("/n")).resp(5, &ok("n"));
    assert_eq!(
        summary(&r.take()),
        vec![(
            "GET /n HTTP/1.1".into(),
            "HTTP/1.1 200 OK".into(),
            Flags::NONE
        )]
    );
}
