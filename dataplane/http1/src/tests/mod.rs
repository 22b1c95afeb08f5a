//! Connection-level tests: each drives an [`Http1Conn`] with scripted bytes, gaps and ends
//! and checks the exchanges it hands out.

mod cut;
mod framing;
mod loss;
mod regressions;
mod roles;

use tapline_reassembly::Direction::{ToClient, ToServer};

use crate::{ConnState, Exchange, Flags, Http1Config, Http1Conn, Message};

/// A connection under test with everything it handed out so far.
struct Run {
    conn: Http1Conn,
    out: Vec<Exchange>,
}

impl Run {
    fn new() -> Self {
        Self::with(Http1Config::default())
    }

    fn with(cfg: Http1Config) -> Self {
        Self {
            conn: Http1Conn::new(cfg),
            out: Vec::new(),
        }
    }

    fn req(&mut self, ts: u64, bytes: &[u8]) -> &mut Self {
        self.conn.data(ToServer, ts, bytes, &mut self.out);
        self
    }

    fn resp(&mut self, ts: u64, bytes: &[u8]) -> &mut Self {
        self.conn.data(ToClient, ts, bytes, &mut self.out);
        self
    }

    fn req_gap(&mut self, ts: u64, len: u64) -> &mut Self {
        self.conn.gap(ToServer, ts, len, &mut self.out);
        self
    }

    fn resp_gap(&mut self, ts: u64, len: u64) -> &mut Self {
        self.conn.gap(ToClient, ts, len, &mut self.out);
        self
    }

    fn req_end(&mut self, ts: u64) -> &mut Self {
        self.conn.end(ToServer, ts, &mut self.out);
        self
    }

    fn resp_end(&mut self, ts: u64) -> &mut Self {
        self.conn.end(ToClient, ts, &mut self.out);
        self
    }

    fn close(&mut self, ts: u64) -> &mut Self {
        self.conn.close(ts, &mut self.out);
        self
    }

    fn take(&mut self) -> Vec<Exchange> {
        std::mem::take(&mut self.out)
    }
}

fn request(x: &Exchange) -> &Message {
    x.request.as_ref().expect("request present")
}

fn response(x: &Exchange) -> &Message {
    x.response.as_ref().expect("response present")
}

/// The start line of a message's head.
fn line(m: &Message) -> &str {
    let end = m
        .head
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(m.head.len());
    std::str::from_utf8(&m.head[..end]).unwrap()
}

/// Start lines and flags of exchanges, for compact assertions.
fn summary(xs: &[Exchange]) -> Vec<(String, String, Flags)> {
    xs.iter()
        .map(|x| {
            (
                x.request
                    .as_ref()
                    .map(|m| line(m).to_string())
                    .unwrap_or_default(),
                x.response
                    .as_ref()
                    .map(|m| line(m).to_string())
                    .unwrap_or_default(),
                x.flags,
            )
        })
        .collect()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n\r\n").into_bytes()
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A tiny deterministic generator for chunk sizes.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

/// Drops timestamps so differently chunked runs compare equal.
fn untimed(mut xs: Vec<Exchange>) -> Vec<Exchange> {
    for x in &mut xs {
        for m in x
            .request
            .iter_mut()
            .chain(x.response.iter_mut())
            .chain(x.interim.iter_mut())
        {
            m.start_ns = 0;
            m.end_ns = 0;
        }
    }
    xs
}

#[test]
fn simple_exchange_with_timing() {
    let mut r = Run::new();
    r.req(10, &get("/a"));
    assert_eq!(r.conn.state(), ConnState::Http);
    r.resp(20, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe")
        .resp(30, b"llo");
    let xs = r.take();
    assert_eq!(xs.len(), 1);
    let x = &xs[0];
    assert_eq!(x.flags, Flags::NONE);
    assert_eq!(request(x).head, get("/a"));
    assert_eq!((request(x).start_ns, request(x).end_ns), (10, 10));
    assert_eq!(response(x).body, b"hello");
    assert_eq!(response(x).body_wire_len, 5);
    assert_eq!((response(x).start_ns, response(x).end_ns), (20, 30));
    assert_eq!(
        response(x).head,
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    );
}

#[test]
fn keep_alive_sequence() {
    let mut r = Run::new();
    for i in 0..3u64 {
        r.req(i * 10, &get(&format!("/{i}")))
            .resp(i * 10 + 5, &ok(&format!("body{i}")));
    }
    let xs = r.take();
    assert_eq!(xs.len(), 3);
    for (i, x) in xs.iter().enumerate() {
        assert_eq!(line(request(x)), format!("GET /{i} HTTP/1.1"));
        assert_eq!(response(x).body, format!("body{i}").as_bytes());
        assert!(x.flags.is_empty());
    }
}

#[test]
fn pipelined_requests_pair_in_order() {
    let mut r = Run::new();
    let mut reqs = get("/1");
    reqs.extend(get("/2"));
    reqs.extend(b"POST /3 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    r.req(1, &reqs);
    assert!(r.out.is_empty());
    let mut resps = ok("one");
    resps.extend(ok("two"));
    resps.extend(ok("three"));
    r.resp(2, &resps);
    let xs = r.take();
    let bodies: Vec<_> = xs
        .iter()
        .map(|x| (line(request(x)).to_string(), response(x).body.clone()))
        .collect();
    assert_eq!(
        bodies,
        vec![
            ("GET /1 HTTP/1.1".to_string(), b"one".to_vec()),
            ("GET /2 HTTP/1.1".to_string(), b"two".to_vec()),
            ("POST /3 HTTP/1.1".to_string(), b"three".to_vec()),
        ]
    );
    assert_eq!(request(&xs[2]).body, b"abc");
}

#[test]
fn any_chunking_gives_the_same_exchanges() {
    let mut reqs = Vec::new();
    let mut resps = Vec::new();
    for i in 0..20 {
        reqs.extend(get(&format!("/{i}")));
        reqs.extend(b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n");
        resps.extend(ok(&"x".repeat(i * 7)));
        resps.extend(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
    }
    let mut whole = Run::new();
    whole.req(1, &reqs).resp(2, &resps).close(3);
    let expected = untimed(whole.take());
    assert_eq!(expected.len(), 40);
    assert!(
        expected.iter().all(|x| x.flags.is_empty()),
        "{:?}",
        summary(&expected)
    );
    for seed in 0..20 {
        // One capture time for all: a response piece may come before its request's here,
        // which real captures never show.
        let ts = 0;
        let mut rng = Lcg(seed);
        let mut r = Run::new();
        let (mut i, mut j) = (0, 0);
        while i < reqs.len() || j < resps.len() {
            if i < reqs.len() && (rng.next(2) == 0 || j >= resps.len()) {
                let n = (1 + rng.next(40)).min(reqs.len() - i);
                r.req(ts, &reqs[i..i + n]);
                i += n;
            } else if j < resps.len() {
                let n = (1 + rng.next(40)).min(resps.len() - j);
                r.resp(ts, &resps[j..j + n]);
                j += n;
            }
        }
        r.close(ts);
        let got = untimed(r.take());
        assert!(got == expected, "seed {seed}: {:?}", summary(&got));
    }
}

#[test]
fn byte_by_byte_matches_whole() {
    let mut reqs = get("/x");
    reqs.extend(b"PUT /y HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd");
    let mut resps = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
    resps.extend(ok("first"));
    resps.extend(ok("second"));
    let mut r = Run::new();
    let mut ts = 0;
    for &b in &reqs {
        ts += 1;
        r.req(ts, &[b]);
    }
    for &b in &resps {
        ts += 1;
        r.resp(ts, &[b]);
    }
    let xs = r.take();
    assert_eq!(xs.len(), 2);
    assert_eq!(xs[0].interim.len(), 1);
    assert_eq!(response(&xs[1]).body, b"second");
    assert_eq!(request(&xs[1]).body, b"abcd");
    assert_eq!(request(&xs[0]).start_ns, 1);
    assert_eq!(request(&xs[0]).end_ns, get("/x").len() as u64);
}
