//! The server's answers, first without sockets ([`Mock::respond`]), then over loopback.

use std::time::Duration;

use super::*;
use crate::index::MatchConfig;
use crate::recorded::{Recorded, WireExchange};

/// Request head, response head, response body, latency in ms.
type Exchange = (&'static [u8], &'static [u8], &'static [u8], u64);

fn recorded() -> Vec<Recorded> {
    let exchanges: [Exchange; 3] = [
        (
            b"GET /a HTTP/1.1\r\nHost: dep\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n",
            b"first",
            30,
        ),
        (
            b"GET /a HTTP/1.1\r\nHost: dep\r\n\r\n",
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"second",
            0,
        ),
        (
            b"HEAD /a HTTP/1.1\r\nHost: dep\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            b"",
            0,
        ),
    ];
    exchanges
        .iter()
        .enumerate()
        .map(|(i, (req, resp, body, ms))| {
            Recorded::from_wire(&WireExchange {
                id: i as u64,
                start_ns: i as u64,
                client: "10.0.0.1:1".parse().unwrap(),
                server: "10.0.0.2:80".parse().unwrap(),
                request_head: req,
                request_body: b"",
                response_head: resp,
                response_body: body,
                response_trailers: b"",
                latency: Duration::from_millis(*ms),
            })
            .unwrap()
        })
        .collect()
}

fn mock(latency: Latency) -> Mock {
    Mock::new(
        Index::new(recorded(), MatchConfig::default()),
        ServerConfig {
            latency,
            ..ServerConfig::default()
        },
    )
}

fn respond(mock: &Mock, request: &[u8]) -> (String, Duration, bool) {
    let Ok(Parse::Complete(parsed)) = parse_request(request, Limits::default()) else {
        panic!("not a complete request");
    };
    let mut out = Vec::new();
    let responded = mock.respond(&parsed, &mut out);
    out.extend_from_slice(responded.direct.unwrap_or_default());
    (
        String::from_utf8(out).unwrap(),
        responded.delay,
        responded.close,
    )
}

#[test]
fn answers_follow_the_recorded_sequence_and_framing() {
    let m = mock(Latency::Recorded);
    let (first, r1a, r1b) = respond(&m, b"GET /a HTTP/1.1\r\nHost: dep\r\n\r\n");
    assert_eq!(
        first,
        "HTTP/1.1 200 OK\r\nX-Tapline-Mock: matched\r\nContent-Length: 5\r\n\r\nfirst"
    );
    assert_eq!(r1a, Duration::from_millis(30));
    assert!(!r1b);
    let (second, _, _) = respond(&m, b"GET /a HTTP/1.1\r\nHost: dep\r\n\r\n");
    assert_eq!(
        second,
        "HTTP/1.1 201 Created\r\nX-Tapline-Mock: matched\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsecond\r\n0\r\n\r\n"
    );
    // An HTTP/1.0 client gets Content-Length and a closed connection.
    let (third, _, r3_close) = respond(&m, b"GET /a HTTP/1.0\r\nHost: dep\r\n\r\n");
    assert_eq!(
        third,
        "HTTP/1.1 201 Created\r\nX-Tapline-Mock: matched\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecond"
    );
    assert!(r3_close);
    let (head, _, _) = respond(&m, b"HEAD /a HTTP/1.1\r\nHost: dep\r\n\r\n");
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Tapline-Mock: matched\r\n\r\n"
    );
    let summary = m.summary();
    assert_eq!(
        (summary.requests, summary.exact, summary.closest),
        (4, 4, 0)
    );
}

#[test]
fn no_match_is_marked_counted_and_remembered() {
    let m = mock(Latency::None);
    let (answer, delay, _) = respond(
        &m,
        b"POST /zzz HTTP/1.1\r\nHost: dep\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(
        answer.starts_with("HTTP/1.1 599 Tapline Mock No Match\r\n"),
        "{answer}"
    );
    assert!(answer.contains("\r\nX-Tapline-Mock: no-match\r\n"));
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["request"]["method"], "POST");
    assert_eq!(json["closest"][0]["target"], "/a");
    assert_eq!(delay, Duration::ZERO);
    let summary = m.summary();
    assert_eq!(summary.unmatched, 1);
    assert_eq!(summary.unmatched_samples.len(), 1);
    assert!(summary.unmatched_samples[0].starts_with("POST /zzz"));
}

/// Serves `m` on a loopback port for the duration of `client`, then returns the summary.
fn over_loopback(m: Mock, client: impl FnOnce(std::net::SocketAddr) + Send + 'static) -> Summary {
    let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let mock = Arc::new(m);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let served = Arc::clone(&mock);
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let client = tokio::task::spawn_blocking(move || {
            client(addr);
            let _ = tx.send(());
        });
        served
            .serve(listener, async move {
                let _ = rx.await;
            })
            .await;
        client.await.unwrap();
    });
    mock.summary()
}

fn exchange(stream: &mut std::net::TcpStream, request: &[u8], want: usize) -> String {
    use std::io::{Read, Write};
    stream.write_all(request).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while got.len() < want {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed after {got:?}");
        got.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(got).unwrap()
}

#[test]
fn pipelined_requests_are_answered_in_order_over_one_connection() {
    let summary = over_loopback(mock(Latency::None), |addr| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let two = b"GET /a HTTP/1.1\r\nHost: dep\r\n\r\nGET /a HTTP/1.1\r\nHost: dep\r\n\r\n";
        let first = "HTTP/1.1 200 OK\r\nX-Tapline-Mock: matched\r\nContent-Length: 5\r\n\r\nfirst";
        let second = "HTTP/1.1 201 Created\r\nX-Tapline-Mock: matched\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsecond\r\n0\r\n\r\n";
        let got = exchange(&mut s, two, first.len() + second.len());
        assert_eq!(got, format!("{first}{second}"));
        // A request split across writes, then a bad one: 400 and the connection closes.
        let got = exchange(&mut s, b"GET /a HTTP/1.1\r\nHo", 0);
        assert_eq!(got, "");
        std::thread::sleep(Duration::from_millis(20));
        let got = exchange(&mut s, b"st: dep\r\n\r\n", second.len());
        assert_eq!(got, second);
        let bad = exchange(&mut s, b"\x01 / HTTP/1.1\r\n\r\n", 10);
        assert!(bad.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{bad}");
    });
    assert_eq!(summary.requests, 3);
    assert_eq!(summary.bad_requests, 1);
    assert_eq!(summary.connections, 1);
}

#[test]
fn expect_continue_gets_100_before_the_body() {
    let summary = over_loopback(mock(Latency::None), |addr| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head =
            b"POST /a HTTP/1.1\r\nHost: dep\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
        let cont = exchange(&mut s, head, 25);
        assert_eq!(cont, "HTTP/1.1 100 Continue\r\n\r\n");
        let answer = exchange(&mut s, b"abc", 12);
        assert!(answer.starts_with("HTTP/1.1 599 "), "{answer}");
    });
    assert_eq!(summary.unmatched, 1);
}

#[test]
fn recorded_latency_delays_the_answer() {
    let summary = over_loopback(mock(Latency::Recorded), |addr| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let started = std::time::Instant::now();
        let want = "HTTP/1.1 200 OK\r\nX-Tapline-Mock: matched\r\nContent-Length: 5\r\n\r\nfirst";
        let got = exchange(&mut s, b"GET /a HTTP/1.1\r\nHost: dep\r\n\r\n", want.len());
        let took = started.elapsed();
        assert!(got.ends_with("first"));
        assert!(took >= Duration::from_millis(30), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    });
    assert_eq!(summary.exact, 1);
}

#[test]
fn binding_a_taken_address_names_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = bind(addr).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot listen on {addr}: ")),
        "{err}"
    );
}

#[test]
fn large_bodies_are_written_whole_after_what_is_buffered() {
    let body: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
    let recorded = Recorded::from_wire(&WireExchange {
        id: 1,
        start_ns: 1,
        client: "10.0.0.1:1".parse().unwrap(),
        server: "10.0.0.2:80".parse().unwrap(),
        request_head: b"GET /big HTTP/1.1\r\nHost: dep\r\n\r\n",
        request_body: b"",
        response_head: head.as_bytes(),
        response_body: &body,
        response_trailers: b"",
        latency: Duration::ZERO,
    })
    .unwrap();
    let m = Mock::new(
        Index::new(vec![recorded], MatchConfig::default()),
        ServerConfig::default(),
    );
    let want_head = format!(
        "HTTP/1.1 200 OK\r\nX-Tapline-Mock: matched\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let expected: Vec<u8> = [want_head.as_bytes(), &body].concat();
    let summary = over_loopback(m, move |addr| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // A no-match answer (buffered) then the large one (written directly), pipelined.
        s.write_all(
            b"GET /nope HTTP/1.1\r\nHost: dep\r\n\r\nGET /big HTTP/1.1\r\nHost: dep\r\n\r\n",
        )
        .unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 65536];
        while !got.ends_with(&expected) {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "closed after {} bytes", got.len());
            got.extend_from_slice(&chunk[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 599 "));
    });
    assert_eq!((summary.exact, summary.unmatched), (1, 1));
}
