use super::*;
use crate::record::{ArchivedRRPair, Flow, Message, Protocol, RRPair};

fn pair(method: &str, target: &str, status: u16, flags: u32) -> rkyv::util::AlignedVec {
    let pair = RRPair {
        id: 0xabc,
        protocol: Protocol::Http1,
        start_ns: 1_000_000,
        end_ns: 251_000_000,
        flow: Flow::new(
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:8080".parse().unwrap(),
        ),
        conn_start_ns: 0,
        index_in_conn: 0,
        request: Some(Message {
            head: format!("{method} {target} HTTP/1.1\r\nHost: api.example\r\n\r\n").into_bytes(),
            body: b"hello".to_vec(),
            ..Message::default()
        }),
        response: Some(Message {
            head: format!("HTTP/1.1 {status} X\r\nContent-Length: 3\r\n\r\n").into_bytes(),
            body: b"abc".to_vec(),
            ..Message::default()
        }),
        interim: vec![],
        flags,
    };
    rkyv::to_bytes::<rkyv::rancor::Error>(&pair).unwrap()
}

fn check(expr: &str, bytes: &[u8]) -> bool {
    let archived = rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(bytes).unwrap();
    Filter::parse(expr)
        .unwrap()
        .matches(&PairView::new(archived))
}

#[test]
fn compares_fields() {
    let p = pair("POST", "/api/users?id=3", 503, 0);
    assert!(check("status>=500", &p));
    assert!(!check("status<500", &p));
    assert!(check("path~/api/", &p));
    assert!(check("method=POST and status=503", &p));
    assert!(!check("method=GET and status=503", &p));
    assert!(check("method=GET or status=503", &p));
    assert!(check("not method=GET", &p));
    assert!(check("dst=10.0.0.2:8080", &p));
    assert!(check("dst=10.0.0.2", &p));
    assert!(!check("src=10.0.0.2", &p));
    assert!(check("port=8080", &p));
    assert!(check("host=api.example", &p));
    assert!(check("duration>=250ms and duration<1s", &p));
    assert!(check("req_len=5 and resp_len=3", &p));
    assert!(check("(method=GET or method=POST) and path!~^/health", &p));
    assert!(check("path=\"/api/users?id=3\"", &p));
    assert!(check("protocol=http1", &p));
}

#[test]
fn flags_filter() {
    let p = pair("GET", "/", 200, PairFlags::INCOMPLETE);
    assert!(check("flag=incomplete", &p));
    assert!(!check("flag!=incomplete", &p));
    assert!(!check("flag=gap", &p));
}

#[test]
fn errors_name_the_problem_and_place() {
    let e = Filter::parse("stat>=500").unwrap_err();
    assert!(e.reason.contains("unknown field \"stat\""), "{e}");
    assert_eq!(e.position, 0);
    let e = Filter::parse("status>=abc").unwrap_err();
    assert!(e.reason.contains("expected a number"), "{e}");
    assert_eq!(e.position, 8);
    let e = Filter::parse("status>=500 and").unwrap_err();
    assert!(e.reason.contains("expected a field"), "{e}");
    let e = Filter::parse("path~(").unwrap_err();
    assert!(
        e.reason.contains("regular expression") || e.reason.contains("expected"),
        "{e}"
    );
    let e = Filter::parse("flag=bogus").unwrap_err();
    assert!(e.reason.contains("unknown flag"), "{e}");
    let e = Filter::parse("method=\"GET").unwrap_err();
    assert!(e.reason.contains("unterminated"), "{e}");
    assert!(Filter::parse("status 500").is_err());
}
