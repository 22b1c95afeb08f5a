use super::*;
use crate::testutil::{json_response, plan_of, rec};

const GET1: &str = "GET /u/1 HTTP/1.1\r\nHost: prod\r\n\r\n";
const GET2: &str = "GET /u/2 HTTP/1.1\r\nHost: prod\r\n\r\n";
const POST: &str = "POST /o HTTP/1.1\r\nHost: prod\r\nContent-Length: 2\r\n\r\nhi";

#[test]
fn connections_offsets_and_pipelining() {
    let recs = [
        rec(1000, 0, GET1, &json_response("{}"), 10, 12),
        rec(1000, 1, GET2, &json_response("{}"), 11, 13),
        rec(2000, 0, POST, &json_response("{}"), 15, 20),
        rec(1000, 2, GET1, &json_response("{}"), 30, 31),
    ];
    let plan = plan_of(&recs, None, &[]).unwrap();
    assert_eq!(plan.requests.len(), 4);
    let offsets: Vec<u64> = plan
        .requests
        .iter()
        .map(|r| r.offset_ns / 1_000_000)
        .collect();
    assert_eq!(offsets, [0, 1, 5, 20]);
    assert_eq!(plan.connections.len(), 2);
    assert_eq!(plan.connections[0].requests, [0, 1, 3]);
    assert_eq!(plan.connections[1].requests, [2]);
    let pipelined: Vec<bool> = plan.requests.iter().map(|r| r.pipelined).collect();
    assert_eq!(pipelined, [false, true, false, false]);
    assert_eq!(
        plan.requests[0].bytes,
        b"GET /u/1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n"
    );
    assert!(plan.requests[2].bytes.ends_with(b"\r\n\r\nhi"));
    assert_eq!(plan.requests[2].recorded_ns, 5_000_000);
    let keys: Vec<&str> = plan.endpoints.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["GET /u/{id}", "POST /o"]);
    assert_eq!(plan.requests[3].endpoint, 0);
    assert_eq!(plan.chosen, 4);
}

#[test]
fn pairs_that_cannot_be_replayed_are_counted() {
    let mut no_response = rec(1000, 0, GET1, "", 1, 2);
    no_response.response = None;
    let mut cut = rec(1001, 0, GET2, &json_response("{}"), 3, 4);
    cut.flags = PairFlags::GAP | PairFlags::INCOMPLETE;
    let short = rec(
        1002,
        0,
        "POST /o HTTP/1.1\r\nContent-Length: 9\r\n\r\nab",
        &json_response("{}"),
        5,
        6,
    );
    let good = rec(1003, 0, GET1, &json_response("{}"), 7, 8);
    let plan = plan_of(&[no_response, cut, short, good], None, &[]).unwrap();
    assert_eq!(plan.requests.len(), 1);
    assert_eq!(plan.recorded_without_response, 1);
    let skipped: Vec<(&str, u64)> = plan.skipped.iter().map(|(r, n)| (*r, *n)).collect();
    assert_eq!(
        skipped,
        [
            ("incomplete in the capture", 1),
            ("no recorded response", 1),
            ("request body incomplete in the capture", 1)
        ]
    );
}

#[test]
fn nothing_to_replay_says_why() {
    let e = plan_of(&[], None, &[]).unwrap_err().to_string();
    assert!(e.contains("snap: holds no HTTP/1 requests"), "{e}");
    let e = plan_of(
        &[rec(1, 0, GET1, &json_response("{}"), 1, 2)],
        Some("method=PUT"),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("none of its 1 HTTP requests matches --filter"),
        "{e}"
    );
    let mut only = rec(1, 0, GET1, "", 1, 2);
    only.response = None;
    let e = plan_of(&[only], None, &[]).unwrap_err().to_string();
    assert!(e.contains("1 no recorded response"), "{e}");
}

#[test]
fn several_servers_need_a_filter() {
    let mut other = rec(2, 0, GET2, &json_response("{}"), 3, 4);
    other.server = "10.0.0.3:8080";
    let recs = [
        rec(1, 0, GET1, &json_response("{}"), 1, 2),
        rec(3, 0, GET1, &json_response("{}"), 5, 6),
        other,
    ];
    let e = plan_of(&recs, None, &[]).unwrap_err().to_string();
    assert!(
        e.contains("requests to 2 servers (10.0.0.2:80 ×2, 10.0.0.3:8080 ×1)"),
        "{e}"
    );
    assert!(e.contains("--filter 'dst=10.0.0.2:80'"), "{e}");
    let plan = plan_of(&recs, Some("port=8080"), &[]).unwrap();
    assert_eq!(plan.requests.len(), 1);
}

#[test]
fn noise_between_identical_requests_covers_the_endpoint() {
    let recs = [
        rec(
            1,
            0,
            GET1,
            &json_response(r#"{"id":1,"ts":"10:00:01"}"#),
            1,
            2,
        ),
        rec(
            2,
            0,
            GET1,
            &json_response(r#"{"id":1,"ts":"10:00:02"}"#),
            3,
            4,
        ),
        rec(
            3,
            0,
            GET2,
            &json_response(r#"{"id":2,"ts":"10:00:03"}"#),
            5,
            6,
        ),
        rec(4, 0, POST, &json_response(r#"{"ts":"x"}"#), 7, 8),
    ];
    let plan = plan_of(&recs, None, &["header:x-trace"]).unwrap();
    let users = &plan.endpoints[0];
    assert_eq!(users.key, "GET /u/{id}");
    let noise: Vec<String> = users.noise.iter().map(ToString::to_string).collect();
    assert_eq!(noise, ["json:$.ts"]);
    assert!(users.ignore.header("x-trace"));
    let orders = &plan.endpoints[1];
    assert!(orders.noise.is_empty());
    assert!(orders.ignore.header("X-Trace"));
}
