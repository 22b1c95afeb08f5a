use std::io::Write;

use super::*;
use crate::rules::IgnoreRule;

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: application/json\r\nX-Request-Id: abc\r\nContent-Length: 40\r\n\r\n";

fn rules(list: &[&str]) -> IgnoreSet {
    let mut set = IgnoreSet::defaults();
    for r in list {
        set.add(&IgnoreRule::parse(r).unwrap());
    }
    set
}

fn run(
    expected: &Expected,
    status: u16,
    headers: &[(&str, &[u8])],
    body: &[u8],
    set: &IgnoreSet,
) -> Vec<String> {
    let observed = Observed {
        status,
        headers,
        body,
    };
    let (diffs, n) = compare(expected, &observed, set);
    assert_eq!(n, diffs.len());
    diffs.iter().map(Difference::line).collect()
}

#[test]
fn equal_responses_match_despite_date_and_framing() {
    let e = Expected::new(HEAD, br#"{"a":1}"#).unwrap();
    let headers: &[(&str, &[u8])] = &[
        ("content-type", b"application/json"),
        ("Date", b"Tue, 02 Jan 2024 00:00:00 GMT"),
        ("Transfer-Encoding", b"chunked"),
        ("X-Request-Id", b"abc"),
    ];
    assert!(run(&e, 200, headers, br#"{ "a" : 1.0 }"#, &rules(&[])).is_empty());
}

#[test]
fn status_headers_and_fields_are_named() {
    let e = Expected::new(HEAD, br#"{"user":{"email":"a@x","id":1}}"#).unwrap();
    let headers: &[(&str, &[u8])] = &[
        ("Content-Type", b"application/json"),
        ("X-Request-Id", b"def"),
        ("X-New", b"1"),
    ];
    let lines = run(
        &e,
        500,
        headers,
        br#"{"user":{"email":"b@x","id":1}}"#,
        &rules(&[]),
    );
    assert_eq!(
        lines,
        [
            "status: 200 → 500",
            "header:x-new: added \"1\"",
            "header:x-request-id: \"abc\" → \"def\"",
            "$.user.email: \"a@x\" → \"b@x\"",
        ]
    );
    let lines = run(
        &e,
        200,
        headers,
        br#"{"user":{"email":"b@x","id":1}}"#,
        &rules(&["header:x-request-id", "header:x-new", "json:$.user.email"]),
    );
    assert!(lines.is_empty(), "{lines:?}");
    let lines = run(
        &e,
        200,
        &headers[..1],
        b"",
        &rules(&["status", "body", "header:x-request-id"]),
    );
    assert!(lines.is_empty(), "{lines:?}");
    let lines = run(&e, 200, &headers[..1], b"", &rules(&[]));
    assert_eq!(lines[0], "header:x-request-id: missing (recorded \"abc\")");
}

#[test]
fn header_order_between_names_does_not_count() {
    let e = Expected::new(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nA: 3\r\n\r\n", b"").unwrap();
    let same: &[(&str, &[u8])] = &[("b", b"2"), ("a", b"1"), ("a", b"3")];
    assert!(run(&e, 200, same, b"", &rules(&[])).is_empty());
    let swapped: &[(&str, &[u8])] = &[("a", b"3"), ("b", b"2"), ("a", b"1")];
    assert_eq!(
        run(&e, 200, swapped, b"", &rules(&[])),
        ["header:a: \"1, 3\" → \"3, 1\""]
    );
}

#[test]
fn text_bodies_show_where_they_part() {
    let e = Expected::new(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
        b"hello world",
    )
    .unwrap();
    let lines = run(
        &e,
        200,
        &[("Content-Type", b"text/plain")],
        b"hello there",
        &rules(&[]),
    );
    assert_eq!(
        lines,
        [
            "body: \"hello world\" → \"hello there\" (11 bytes recorded, 11 bytes now, first difference at byte 6)"
        ]
    );
    // JSON recorded, an HTML error page now: one body difference.
    let e = Expected::new(HEAD, br#"{"a":1}"#).unwrap();
    let headers: &[(&str, &[u8])] = &[
        ("Content-Type", b"application/json"),
        ("X-Request-Id", b"abc"),
    ];
    let lines = run(&e, 200, headers, b"<html>", &rules(&[]));
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("body: "), "{lines:?}");
}

#[test]
fn gzip_is_undone_on_both_sides() {
    let gz = |data: &[u8], level| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let head =
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: application/json\r\n\r\n";
    let e = Expected::new(head, &gz(br#"{"a":[1,2]}"#, 1)).unwrap();
    let headers: &[(&str, &[u8])] = &[
        ("Content-Encoding", b"gzip"),
        ("Content-Type", b"application/json"),
    ];
    assert!(run(&e, 200, headers, &gz(br#"{"a":[1,2]}"#, 9), &rules(&[])).is_empty());
    assert_eq!(
        run(&e, 200, headers, &gz(br#"{"a":[1,3]}"#, 9), &rules(&[])),
        ["$.a[1]: 2 → 3"]
    );
}

#[test]
fn differences_are_capped() {
    let many: Vec<u32> = (0..200).collect();
    let other: Vec<u32> = (1..201).collect();
    let e = Expected::new(HEAD, &serde_json::to_vec(&many).unwrap()).unwrap();
    let observed = Observed {
        status: 201,
        headers: &[
            ("Content-Type", b"application/json"),
            ("X-Request-Id", b"abc"),
        ],
        body: &serde_json::to_vec(&other).unwrap(),
    };
    let (diffs, n) = compare(&e, &observed, &IgnoreSet::defaults());
    assert_eq!(diffs.len(), MAX_DIFFERENCES);
    assert_eq!(n, 201);
}

#[test]
fn a_head_that_does_not_parse_is_refused() {
    assert!(Expected::new(b"garbage\r\n\r\n", b"").is_none());
}
