//! The matcher driven directly: exact, closest, sequences, scopes, no match.

use std::time::Duration;

use super::*;
use crate::recorded::WireExchange;

/// One recorded exchange: `host` (or none), `method target`, request body, response body.
fn rec(
    i: u64,
    server: &str,
    host: Option<&str>,
    method: &str,
    target: &str,
    req_body: &str,
    resp_body: &str,
) -> Recorded {
    let host_line = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {target} HTTP/1.1\r\n{host_line}Content-Length: {}\r\nAccept: */*\r\n\r\n",
        req_body.len()
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        resp_body.len()
    );
    Recorded::from_wire(&WireExchange {
        id: i,
        start_ns: i,
        client: "10.0.0.1:40000".parse().unwrap(),
        server: server.parse().unwrap(),
        request_head: head.as_bytes(),
        request_body: req_body.as_bytes(),
        response_head: response.as_bytes(),
        response_body: resp_body.as_bytes(),
        response_trailers: b"",
        latency: Duration::from_millis(i),
    })
    .unwrap()
}

fn ask<'a>(
    index: &Index,
    host: Option<&'a str>,
    method: &'a str,
    target: &'a str,
    body: &'a str,
) -> Decision {
    let mut headers: Vec<(&str, &[u8])> = vec![("Accept", b"*/*")];
    if let Some(h) = host {
        headers.push(("Host", h.as_bytes()));
    }
    index.answer(&Request {
        method,
        target: target.as_bytes(),
        headers: &headers,
        body: body.as_bytes(),
    })
}

fn body_of(index: &Index, d: &Decision) -> String {
    let i = match d {
        Decision::Exact { recorded, .. } | Decision::Closest { recorded, .. } => *recorded,
        Decision::NoMatch { .. } => panic!("no match: {d:?}"),
    };
    String::from_utf8(index.recorded()[i].response.body.clone()).unwrap()
}

fn users() -> Vec<Recorded> {
    vec![
        rec(
            1,
            "10.0.0.2:80",
            Some("users"),
            "GET",
            "/users/1",
            "",
            "alice",
        ),
        rec(
            2,
            "10.0.0.2:80",
            Some("users"),
            "GET",
            "/jobs/9",
            "",
            "pending",
        ),
        rec(
            3,
            "10.0.0.3:8080",
            Some("orders:8080"),
            "GET",
            "/jobs/9",
            "",
            "orders-job",
        ),
        rec(
            4,
            "10.0.0.2:80",
            Some("users"),
            "GET",
            "/jobs/9",
            "",
            "running",
        ),
        rec(
            5,
            "10.0.0.2:80",
            Some("users"),
            "GET",
            "/jobs/9",
            "",
            "done",
        ),
        rec(
            6,
            "10.0.0.2:80",
            Some("users"),
            "POST",
            "/users",
            r#"{"name":"bob","ts":1}"#,
            "created",
        ),
        rec(7, "10.0.0.4:9000", None, "GET", "/health", "", "ok"),
    ]
}

#[test]
fn dependencies_are_hosts_or_server_addresses() {
    let index = Index::new(users(), MatchConfig::default());
    let names: Vec<_> = index
        .dependencies()
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, ["users", "orders:8080", "10.0.0.4:9000"]);
    assert_eq!(index.scope_of(Some(b"USERS:80")), Scope::Dependency(0));
    // The server address of a dependency names it too.
    assert_eq!(index.scope_of(Some(b"10.0.0.3:8080")), Scope::Dependency(1));
    assert_eq!(index.scope_of(Some(b"10.0.0.2")), Scope::Dependency(0));
    assert_eq!(index.scope_of(Some(b"127.0.0.1:9999")), Scope::All);
    assert_eq!(index.scope_of(None), Scope::All);
}

#[test]
fn nth_identical_call_gets_nth_answer_then_the_last() {
    let index = Index::new(users(), MatchConfig::default());
    let answers: Vec<String> = (0..5)
        .map(|_| body_of(&index, &ask(&index, Some("users"), "GET", "/jobs/9", "")))
        .collect();
    assert_eq!(answers, ["pending", "running", "done", "done", "done"]);
    let calls: Vec<u64> = (0..2)
        .map(|_| match ask(&index, Some("users"), "GET", "/jobs/9", "") {
            Decision::Exact { call, .. } => call,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(calls, [6, 7]);
}

#[test]
fn sequences_can_wrap() {
    let config = MatchConfig {
        end: SequenceEnd::Wrap,
        ..MatchConfig::default()
    };
    let index = Index::new(users(), config);
    let answers: Vec<String> = (0..4)
        .map(|_| body_of(&index, &ask(&index, Some("users"), "GET", "/jobs/9", "")))
        .collect();
    assert_eq!(answers, ["pending", "running", "done", "pending"]);
}

#[test]
fn host_selects_the_dependency() {
    let index = Index::new(users(), MatchConfig::default());
    let d = ask(&index, Some("orders:8080"), "GET", "/jobs/9", "");
    assert_eq!(body_of(&index, &d), "orders-job");
    // A Host the recording does not know: every dependency, in capture order.
    let all: Vec<String> = (0..4)
        .map(|_| {
            body_of(
                &index,
                &ask(&index, Some("localhost:7000"), "GET", "/jobs/9", ""),
            )
        })
        .collect();
    assert_eq!(all, ["pending", "orders-job", "running", "done"]);
    // The dependency recorded without Host is reached by its server address.
    let h = ask(&index, Some("10.0.0.4:9000"), "GET", "/health", "");
    assert_eq!(body_of(&index, &h), "ok");
    assert!(matches!(
        ask(&index, Some("orders:8080"), "GET", "/health", ""),
        Decision::NoMatch { .. }
    ));
}

#[test]
fn closest_match_by_score() {
    let index = Index::new(users(), MatchConfig::default());
    match ask(&index, Some("users"), "GET", "/users/42", "") {
        Decision::Closest {
            recorded, score, ..
        } => {
            assert_eq!(index.recorded()[recorded].id, 1);
            assert!((score.path - 0.875).abs() < 1e-9, "{score:?}");
        }
        other => panic!("{other:?}"),
    }
    let post = ask(
        &index,
        Some("users"),
        "POST",
        "/users",
        r#"{"ts":2,"name":"bob"}"#,
    );
    assert!(matches!(post, Decision::Closest { .. }), "{post:?}");
    assert_eq!(body_of(&index, &post), "created");
}

#[test]
fn closest_requires_the_method_and_the_score() {
    let index = Index::new(users(), MatchConfig::default());
    let Decision::NoMatch { scope, candidates } =
        ask(&index, Some("users"), "DELETE", "/users/1", "")
    else {
        panic!("a DELETE must not be answered by a GET");
    };
    assert_eq!(scope, Scope::Dependency(0));
    assert_eq!(candidates.len(), 3);
    assert!(candidates.iter().all(|c| !c.same_method));
    assert_eq!(index.recorded()[candidates[0].recorded].id, 1, "best first");
    let strict = Index::new(
        users(),
        MatchConfig {
            min_score: 1.0,
            ..MatchConfig::default()
        },
    );
    assert!(matches!(
        ask(&strict, Some("users"), "GET", "/users/42", ""),
        Decision::NoMatch { .. }
    ));
    assert!(matches!(
        ask(&index, Some("users"), "GET", "/orders/1", ""),
        Decision::NoMatch { .. }
    ));
}

#[test]
fn a_closest_match_advances_the_group_sequence() {
    let index = Index::new(users(), MatchConfig::default());
    let near: Vec<String> = (0..2)
        .map(|_| body_of(&index, &ask(&index, Some("users"), "GET", "/jobs/10", "")))
        .collect();
    assert_eq!(near, ["pending", "running"]);
    let exact = ask(&index, Some("users"), "GET", "/jobs/9", "");
    assert_eq!(body_of(&index, &exact), "done");
}

#[test]
fn bodies_are_part_of_the_exact_key() {
    let recorded = vec![
        rec(1, "10.0.0.2:80", Some("a"), "POST", "/q", "one", "1"),
        rec(2, "10.0.0.2:80", Some("a"), "POST", "/q", "two", "2"),
    ];
    let index = Index::new(recorded, MatchConfig::default());
    let two = ask(&index, Some("a"), "POST", "/q", "two");
    assert!(matches!(two, Decision::Exact { call: 1, .. }));
    assert_eq!(body_of(&index, &two), "2");
    assert_eq!(
        body_of(&index, &ask(&index, Some("a"), "POST", "/q", "one")),
        "1"
    );
}

#[test]
fn the_no_match_body_names_request_and_candidates() {
    let index = Index::new(users(), MatchConfig::default());
    let request = Request {
        method: "GET",
        target: b"/nope",
        headers: &[("Host", b"users")],
        body: b"",
    };
    let Decision::NoMatch { scope, candidates } = index.answer(&request) else {
        panic!("matched /nope");
    };
    let body = crate::nomatch::body(&index, &request, scope, &candidates);
    assert_eq!(body["request"]["target"], "/nope");
    assert_eq!(body["request"]["host"], "users");
    assert_eq!(body["scope"], "users");
    assert_eq!(body["closest"].as_array().unwrap().len(), 3);
    assert!(body["closest"][0]["score"].as_f64().is_some());
    let line = crate::nomatch::summary(&index, &request, &candidates);
    assert!(
        line.starts_with("GET /nope (Host users): closest GET "),
        "{line}"
    );
}

#[test]
fn an_empty_index_matches_nothing() {
    let index = Index::new(Vec::new(), MatchConfig::default());
    match ask(&index, None, "GET", "/", "") {
        Decision::NoMatch { candidates, .. } => assert!(candidates.is_empty()),
        other => panic!("{other:?}"),
    }
}
