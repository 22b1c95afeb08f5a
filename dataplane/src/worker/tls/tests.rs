//! Duplicate detection when both ends of a connection are captured and their chunks reach the
//! worker in any order: every exchange must come out once, complete.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tapline_http1::Http1Config;
use tapline_reassembly::ReassemblyConfig;

use crate::record::{PairFlags, RRPair};
use crate::tls_chunk::{ChunkDirection, ChunkKind, TlsChunk};
use crate::worker::{FlowEngine, WorkerStats};

/// One chunk of a test, owning its addresses and bytes.
#[derive(Debug, Clone)]
struct Ev {
    ts: u64,
    pid: u32,
    conn_id: u64,
    local: SocketAddr,
    remote: SocketAddr,
    direction: ChunkDirection,
    kind: ChunkKind,
    data: Vec<u8>,
}

impl Ev {
    fn feed(&self, e: &mut FlowEngine) {
        e.tls_chunk(&TlsChunk {
            ts_ns: self.ts,
            pid: self.pid,
            tid: self.pid + 1,
            conn_id: self.conn_id,
            direction: self.direction,
            kind: self.kind,
            local: self.local,
            remote: self.remote,
            lost: 0,
            cgroup_id: 1,
            command: if self.pid == CLIENT_PID {
                "wrk"
            } else {
                "nginx"
            },
            cgroup: "",
            data: &self.data,
        });
    }
}

const CLIENT_PID: u32 = 100;
const SERVER_PID: u32 = 200;
const SERVER: &str = "127.0.0.1:443";

fn client_addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn request(tag: &str) -> Vec<u8> {
    format!("GET /{tag} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

fn response(tag: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{tag}",
        tag.len()
    )
    .into_bytes()
}

/// One process's chunks of one connection, in the order the process made them.
fn side(pid: u32, conn_id: u64, port: u16, tags: &[String], close: bool) -> Vec<Ev> {
    let server: SocketAddr = SERVER.parse().unwrap();
    let client = client_addr(port);
    let is_client = pid == CLIENT_PID;
    let (local, remote) = if is_client {
        (client, server)
    } else {
        (server, client)
    };
    let ev = |direction, kind, data| Ev {
        ts: 0,
        pid,
        conn_id,
        local,
        remote,
        direction,
        kind,
        data,
    };
    let mut out = Vec::new();
    for tag in tags {
        let (first, second) = if is_client {
            (ChunkDirection::Sent, ChunkDirection::Received)
        } else {
            (ChunkDirection::Received, ChunkDirection::Sent)
        };
        out.push(ev(first, ChunkKind::Data, request(tag)));
        out.push(ev(second, ChunkKind::Data, response(tag)));
    }
    if close {
        out.push(ev(ChunkDirection::Sent, ChunkKind::Close, Vec::new()));
    }
    out
}

/// Feeds the events in the order given, stamping them 1 µs apart from `start`.
fn feed_in_order(e: &mut FlowEngine, events: &[Ev], start: u64) {
    for (i, ev) in events.iter().enumerate() {
        let mut ev = ev.clone();
        ev.ts = start + i as u64 * 1_000;
        ev.feed(e);
    }
}

fn engine() -> FlowEngine {
    FlowEngine::new(ReassemblyConfig::default(), Http1Config::default())
}

fn pairs_of(e: FlowEngine) -> (WorkerStats, Vec<RRPair>) {
    let (stats, batch) = e.finish();
    let pairs = batch
        .pairs()
        .map(|p| rkyv::deserialize::<RRPair, rkyv::rancor::Error>(p.unwrap()).unwrap())
        .collect();
    (stats, pairs)
}

/// The request path of each pair, with how often it came out; panics on an incomplete pair.
fn tally(pairs: &[RRPair]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for p in pairs {
        assert_eq!(p.flags, PairFlags::TLS, "{p:#?}");
        let head = String::from_utf8_lossy(&p.request.as_ref().unwrap().head).into_owned();
        let path = head.split(' ').nth(1).unwrap().to_owned();
        assert_eq!(
            p.response.as_ref().unwrap().body,
            path.trim_start_matches('/').as_bytes()
        );
        *seen.entry(path).or_insert(0) += 1;
    }
    seen
}

#[test]
fn a_late_client_after_the_server_closed_is_still_a_duplicate() {
    // The client was preempted between its write and the uprobe's return: nginx's whole
    // exchange and its close reach the worker before the client's first chunk.
    let tags = ["u1".to_owned()];
    let mut events = side(SERVER_PID, 0xb0, 40_000, &tags, true);
    events.extend(side(CLIENT_PID, 0xa0, 40_000, &tags, true));
    let mut e = engine();
    feed_in_order(&mut e, &events, 1_000_000);
    let (stats, pairs) = pairs_of(e);
    assert_eq!(tally(&pairs), BTreeMap::from([("/u1".to_owned(), 1)]));
    assert_eq!(pairs[0].process.as_ref().unwrap().command, "nginx");
    assert_eq!(stats.tls_streams, 1);
    assert_eq!(stats.tls_duplicate_chunks, 3);
}

#[test]
fn the_same_end_reusing_its_four_tuple_starts_a_new_connection() {
    let first = ["one".to_owned()];
    let second = ["two".to_owned()];
    let mut e = engine();
    // curl closes; a new curl connection on the same ports follows. nginx's view of the second
    // connection comes first, then curl's, which owns it.
    let mut events = side(CLIENT_PID, 0xa0, 40_000, &first, true);
    events.extend(side(SERVER_PID, 0xb0, 40_000, &first, true));
    events.extend(side(SERVER_PID, 0xb1, 40_000, &second, true));
    events.extend(side(CLIENT_PID, 0xa1, 40_000, &second, true));
    feed_in_order(&mut e, &events, 1_000_000);
    let (_, pairs) = pairs_of(e);
    assert_eq!(
        tally(&pairs),
        BTreeMap::from([("/one".to_owned(), 1), ("/two".to_owned(), 1)])
    );

    // A connection that reuses the tuple long after, seen from the other end only, is parsed.
    let mut e = engine();
    feed_in_order(
        &mut e,
        &side(CLIENT_PID, 0xa0, 40_000, &first, true),
        1_000_000,
    );
    let later = 1_000_000 + super::TOMBSTONE_NS + 1_000_000_000;
    feed_in_order(
        &mut e,
        &side(SERVER_PID, 0xb1, 40_000, &second, true),
        later,
    );
    let (_, pairs) = pairs_of(e);
    assert_eq!(
        tally(&pairs),
        BTreeMap::from([("/one".to_owned(), 1), ("/two".to_owned(), 1)])
    );
}

/// A small deterministic generator (splitmix64) for shuffled interleavings.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Keep-alive connections from a client that reuses its library handle for the next connection
/// once the server closed one after a few requests (wrk and nginx's `keepalive_requests`),
/// both ends captured, their chunks interleaved at random with slightly disordered times.
#[test]
fn any_interleaving_of_both_ends_makes_each_exchange_once() {
    // Keep-alive, then a new connection per request (`Connection: close`).
    interleavings(3, 3, 4);
    interleavings(2, 8, 1);
}

fn interleavings(slots: u64, rounds: u64, per_conn: usize) {
    for seed in 0..300 {
        let mut rng = Rng(seed);
        // One sequence per process and handle, each in its own order.
        let mut queues: Vec<Vec<Ev>> = Vec::new();
        let mut want = BTreeMap::new();
        for slot in 0..slots {
            let mut client = Vec::new();
            let mut server = Vec::new();
            for round in 0..rounds {
                let port = 40_000 + (slot * rounds + round) as u16;
                let tags: Vec<String> = (0..per_conn)
                    .map(|i| format!("s{slot}r{round}e{i}"))
                    .collect();
                for t in &tags {
                    want.insert(format!("/{t}"), 1);
                }
                // The client's handle is cleared and reused, never freed: no close.
                client.extend(side(CLIENT_PID, 0xa0 + slot, port, &tags, false));
                // nginx frees its handle (a close) and reuses the memory for a later one.
                server.extend(side(SERVER_PID, 0xb0 + slot, port, &tags, true));
            }
            queues.push(client);
            queues.push(server);
        }
        let mut cursor = vec![0usize; queues.len()];
        let mut order = Vec::new();
        while order.len() < queues.iter().map(Vec::len).sum::<usize>() {
            let q = rng.below(queues.len());
            if let Some(ev) = queues[q].get(cursor[q]) {
                order.push(ev.clone());
                cursor[q] += 1;
            }
        }
        let mut e = engine();
        for (i, ev) in order.iter_mut().enumerate() {
            // Chunks from different CPUs a little out of time order.
            ev.ts = 1_000_000_000 + i as u64 * 1_000 + rng.below(3_000) as u64;
            ev.feed(&mut e);
        }
        let (_, pairs) = pairs_of(e);
        assert_eq!(
            tally(&pairs),
            want,
            "seed {seed}, {per_conn} per connection"
        );
    }
}

#[test]
fn a_handle_moving_to_another_connection_ends_the_old_one() {
    let client: SocketAddr = client_addr(40_000);
    let server: SocketAddr = SERVER.parse().unwrap();
    let ev = |ts, port, direction, data: &[u8]| Ev {
        ts,
        pid: CLIENT_PID,
        conn_id: 0xa0,
        local: client_addr(port),
        remote: server,
        direction,
        kind: ChunkKind::Data,
        data: data.to_vec(),
    };
    let mut e = engine();
    // A response delimited by the close, then the handle is cleared and reused (no free, so
    // no close chunk) for the next connection.
    ev(1_000, 40_000, ChunkDirection::Sent, &request("a")).feed(&mut e);
    ev(
        2_000,
        40_000,
        ChunkDirection::Received,
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\na",
    )
    .feed(&mut e);
    ev(3_000, 40_001, ChunkDirection::Sent, &request("b")).feed(&mut e);
    ev(4_000, 40_001, ChunkDirection::Received, &response("b")).feed(&mut e);
    assert_eq!(client.port(), 40_000);
    let (_, pairs) = pairs_of(e);
    let flags: Vec<u32> = pairs.iter().map(|p| p.flags).collect();
    assert_eq!(
        flags,
        [PairFlags::TLS | PairFlags::CLOSE_DELIMITED, PairFlags::TLS]
    );
}
