//! Fuzzes what a client sends a mock: bytes read as pipelined requests, each matched against a
//! small recorded index and answered (exact, closest by score, or the no-match JSON).

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tapline_mock::recorded::WireExchange;
use tapline_mock::wire::{Limits, Parse, parse_request};
use tapline_mock::{Index, MatchConfig, Mock, Recorded, ServerConfig};

const RECORDED: [(&[u8], &[u8], &[u8], &[u8]); 5] = [
    (
        b"GET /users/1?x=1 HTTP/1.1\r\nHost: users\r\nAccept: */*\r\n\r\n",
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        b"alice",
    ),
    (
        b"GET /users/1?x=1 HTTP/1.1\r\nHost: users\r\nAccept: */*\r\n\r\n",
        b"",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"bob",
    ),
    (
        b"POST /orders HTTP/1.1\r\nHost: orders:8080\r\nContent-Length: 19\r\n\r\n",
        b"{\"item\":[1,{\"a\":2}]}",
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n",
        b"ok",
    ),
    (
        b"HEAD /health HTTP/1.0\r\n\r\n",
        b"",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"",
    ),
    (
        b"PUT /o/123e4567-e89b-12d3-a456-426614174000 HTTP/1.1\r\nHost: orders:8080\r\n\r\n",
        b"\x00\xff",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
        b"",
    ),
];

fn mock() -> &'static Mock {
    static MOCK: OnceLock<Mock> = OnceLock::new();
    MOCK.get_or_init(|| {
        let recorded = RECORDED
            .iter()
            .enumerate()
            .filter_map(|(i, (req, body, resp, resp_body))| {
                Recorded::from_wire(&WireExchange {
                    id: i as u64,
                    start_ns: i as u64,
                    client: "10.0.0.1:1000".parse().ok()?,
                    server: "10.0.0.2:80".parse().ok()?,
                    request_head: req,
                    request_body: body,
                    response_head: resp,
                    response_body: resp_body,
                    response_trailers: b"",
                    latency: Duration::ZERO,
                })
                .ok()
            })
            .collect();
        Mock::new(
            Index::new(recorded, MatchConfig::default()),
            ServerConfig::default(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_head: 4096,
        max_body: 65536,
    };
    let mut rest = data;
    let mut out = Vec::new();
    for _ in 0..16 {
        match parse_request(rest, limits) {
            Ok(Parse::Complete(parsed)) => {
                assert!(parsed.consumed > 0 && parsed.consumed <= rest.len());
                out.clear();
                let responded = mock().respond(&parsed, &mut out);
                assert!(out.starts_with(b"HTTP/1.1 "));
                assert!(responded.delay.is_zero());
                rest = &rest[parsed.consumed..];
            }
            Ok(_) => break,
            Err(e) => {
                let (status, _) = e.status();
                assert!((400..600).contains(&status));
                break;
            }
        }
    }
});
