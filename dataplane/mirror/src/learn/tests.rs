use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use super::*;
use crate::testutil::{archived, pair};

fn dependency_call(port: u16, target: &str, answer: &str) -> rkyv::util::AlignedVec {
    let mut p = pair(
        1,
        port,
        &format!("GET {target} HTTP/1.1\r\nHost: prices\r\n\r\n"),
        "",
        200,
        answer,
    );
    p.flow = tapline_dataplane::record::Flow::new(
        "127.0.0.1:40000".parse().unwrap(),
        format!("127.0.0.1:{port}").parse().unwrap(),
    );
    archived(&p)
}

fn access(bytes: &[u8]) -> &ArchivedRRPair {
    rkyv::access::<ArchivedRRPair, rkyv::rancor::Error>(bytes).unwrap()
}

#[test]
fn the_latest_answer_is_kept_and_the_number_is_bounded() {
    let mocks = LiveMocks::new(8080, 2);
    mocks.learn(access(&dependency_call(9000, "/p/1", r#"{"v":1}"#)));
    mocks.learn(access(&dependency_call(9000, "/p/1", r#"{"v":2}"#)));
    mocks.learn(access(&dependency_call(9000, "/p/2", r#"{"v":1}"#)));
    mocks.learn(access(&dependency_call(9000, "/p/3", r#"{"v":1}"#)));
    let s = mocks.summary();
    assert_eq!((s.learned, s.answers, s.not_kept), (2, 4, 1));
    assert_eq!(s.servers, ["127.0.0.1:9000"]);
    assert_eq!(mocks.new_servers().len(), 1);
    assert!(mocks.new_servers().is_empty());
    mocks.refresh();
    let index = mocks.current();
    let first = &index.index().recorded()[0];
    assert_eq!(first.response.body, br#"{"v":2}"#);
}

#[test]
fn learned_answers_are_served_on_the_dependency_address() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mocks = LiveMocks::new(8080, 100);
    let stop = Arc::new(AtomicBool::new(false));
    let serving = {
        let (mocks, stop) = (Arc::clone(&mocks), Arc::clone(&stop));
        std::thread::spawn(move || serve(&mocks, &stop, |_| Ok(())).unwrap())
    };
    mocks.learn(access(&dependency_call(port, "/p/1", r#"{"v":1}"#)));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut stream = loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            break s;
        }
        assert!(Instant::now() < deadline, "not listening");
        std::thread::sleep(Duration::from_millis(20));
    };
    // A kept-alive connection sees what is learned after it opened.
    mocks.learn(access(&dependency_call(port, "/p/2", r#"{"v":2}"#)));
    std::thread::sleep(REFRESH_EVERY * 4);
    stream
        .write_all(b"GET /p/2 HTTP/1.1\r\nHost: prices\r\n\r\nGET /p/1 HTTP/1.1\r\nHost: prices\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.contains(r#"{"v":2}"#) && answer.contains(r#"{"v":1}"#),
        "{answer}"
    );
    stop.store(true, Ordering::Relaxed);
    serving.join().unwrap();
    let s = mocks.summary();
    assert_eq!((s.requests, s.exact, s.unmatched), (2, 2, 0), "{s:?}");
}
