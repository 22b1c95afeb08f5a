use super::*;
use crate::record::{ArchivedRRPair, Flow, Message, ProcessInfo, Protocol, RRPair};

fn pair(method: &str, target: &str, status: u16, flags: u32) -> rkyv::util::AlignedVec {
    with_process(method, target, status, flags, None)
}

fn with_process(
    method: &str,
    target: &str,
    status: u16,
    flags: u32,
    process: Option<ProcessInfo>,
) -> rkyv::util::AlignedVec {
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
        process,
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
fn tls_pairs_filter_on_their_process() {
    let process = ProcessInfo {
        pid: 4242,
        tid: 4243,
        command: "nginx".into(),
        cgroup: "/system.slice/nginx.service".into(),
        cgroup_id: 7,
    };
    let tls = with_process("GET", "/", 200, PairFlags::TLS, Some(process));
    let plain = pair("GET", "/", 200, 0);
    for (expr, on_tls, on_plain) in [
        ("flag=tls", true, false),
        ("flag!=tls", false, true),
        ("pid=4242", true, false),
        ("pid>4000 and pid<5000", true, false),
        ("pid!=4242", false, true),
        ("pid=1", false, false),
        ("command=nginx", true, false),
        ("comm=nginx", true, false),
        ("command~^ngi", true, false),
        ("command!=nginx", false, true),
        ("command!~curl", true, true),
        ("cgroup~nginx.service", true, false),
        ("cgroup=\"/system.slice/nginx.service\"", true, false),
    ] {
        assert_eq!(check(expr, &tls), on_tls, "{expr} on the tls pair");
        assert_eq!(check(expr, &plain), on_plain, "{expr} on the plain pair");
    }
    let e = Filter::parse("pid=abc").unwrap_err();
    assert!(e.reason.contains("expected a number"), "{e}");
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
