use std::net::SocketAddr;

use tapline_http1::Http1Config;
use tapline_reassembly::{ReassemblyConfig, TcpFlags, TcpSegment};

use super::{FlowEngine, WorkerStats};
use crate::record::{PairFlags, ProcessInfo, RRPair};
use crate::tls_chunk::{ChunkDirection, ChunkKind, TlsChunk};

const CLIENT: &str = "10.0.0.1:51000";
const SERVER: &str = "10.0.0.2:443";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn engine() -> FlowEngine {
    FlowEngine::new(ReassemblyConfig::default(), Http1Config::default())
}

/// A process's end of the test connection: the client (curl) or the server (nginx).
#[derive(Clone, Copy)]
struct Side {
    pid: u32,
    conn_id: u64,
    local: &'static str,
    remote: &'static str,
    command: &'static str,
}

const CURL: Side = Side {
    pid: 100,
    conn_id: 0xaaa0,
    local: CLIENT,
    remote: SERVER,
    command: "curl",
};
const NGINX: Side = Side {
    pid: 200,
    conn_id: 0xbbb0,
    local: SERVER,
    remote: CLIENT,
    command: "nginx",
};

fn chunk(
    side: Side,
    ts_ns: u64,
    direction: ChunkDirection,
    kind: ChunkKind,
    data: &[u8],
    lost: u32,
) -> TlsChunk<'_> {
    TlsChunk {
        ts_ns,
        pid: side.pid,
        tid: side.pid + 1,
        conn_id: side.conn_id,
        direction,
        kind,
        local: addr(side.local),
        remote: addr(side.remote),
        lost,
        cgroup_id: 9,
        command: side.command,
        cgroup: "/test.slice",
        data,
    }
}

fn send(e: &mut FlowEngine, side: Side, ts: u64, data: &[u8]) {
    e.tls_chunk(&chunk(
        side,
        ts,
        ChunkDirection::Sent,
        ChunkKind::Data,
        data,
        0,
    ));
}

fn recv(e: &mut FlowEngine, side: Side, ts: u64, data: &[u8]) {
    e.tls_chunk(&chunk(
        side,
        ts,
        ChunkDirection::Received,
        ChunkKind::Data,
        data,
        0,
    ));
}

fn close(e: &mut FlowEngine, side: Side, ts: u64) {
    e.tls_chunk(&chunk(
        side,
        ts,
        ChunkDirection::Sent,
        ChunkKind::Close,
        b"",
        0,
    ));
}

fn pairs_of(e: FlowEngine) -> (WorkerStats, Vec<RRPair>) {
    let (stats, batch) = e.finish();
    let pairs = batch
        .pairs()
        .map(|p| rkyv::deserialize::<RRPair, rkyv::rancor::Error>(p.unwrap()).unwrap())
        .collect();
    (stats, pairs)
}

const REQ: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
const RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

#[test]
fn client_side_plaintext_makes_tls_pairs_with_the_process() {
    let mut e = engine();
    send(&mut e, CURL, 1_000, REQ);
    recv(&mut e, CURL, 2_000, RESP);
    send(&mut e, CURL, 3_000, b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    recv(
        &mut e,
        CURL,
        4_000,
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    );
    close(&mut e, CURL, 5_000);
    let (stats, pairs) = pairs_of(e);
    assert_eq!(pairs.len(), 2);
    for (i, p) in pairs.iter().enumerate() {
        assert_eq!(p.flags, PairFlags::TLS, "pair {i}");
        assert_eq!(p.index_in_conn, i as u32);
        assert_eq!(p.conn_start_ns, 1_000);
        assert_eq!(
            p.process,
            Some(ProcessInfo {
                pid: 100,
                tid: 101,
                command: "curl".into(),
                cgroup: "/test.slice".into(),
                cgroup_id: 9,
            })
        );
    }
    let first = &pairs[0];
    let flow = rkyv::to_bytes::<rkyv::rancor::Error>(first).unwrap();
    let archived =
        rkyv::access::<crate::record::ArchivedRRPair, rkyv::rancor::Error>(&flow).unwrap();
    assert_eq!(archived.flow.src(), addr(CLIENT));
    assert_eq!(archived.flow.dst(), addr(SERVER));
    assert_eq!(first.request.as_ref().unwrap().head, REQ);
    assert_eq!(first.response.as_ref().unwrap().body, b"hello");
    assert_eq!(stats.tls_streams, 1);
    assert_eq!(stats.connections, 0);
    assert_eq!(stats.pairs, 2);
}

#[test]
fn server_side_view_with_a_high_server_port_is_swapped_right() {
    // The server listens on a port above the client's: the first guess is wrong and HTTP/1
    // detection puts it right.
    let server = Side {
        pid: 300,
        conn_id: 1,
        local: "10.0.0.2:50443",
        remote: "10.0.0.1:4000",
        command: "app",
    };
    let mut e = engine();
    recv(&mut e, server, 1_000, REQ);
    send(&mut e, server, 2_000, RESP);
    let (_, pairs) = pairs_of(e);
    assert_eq!(pairs.len(), 1);
    assert_eq!(
        pairs[0].flow,
        crate::record::Flow::new(addr("10.0.0.1:4000"), addr("10.0.0.2:50443"))
    );
    assert_eq!(pairs[0].flags, PairFlags::TLS);
}

#[test]
fn close_chunk_ends_a_close_delimited_body() {
    let mut e = engine();
    recv(&mut e, NGINX, 1_000, REQ);
    send(
        &mut e,
        NGINX,
        2_000,
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one, ",
    );
    send(&mut e, NGINX, 3_000, b"part two");
    close(&mut e, NGINX, 4_000);
    let (_, pairs) = pairs_of(e);
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].flags, PairFlags::TLS | PairFlags::CLOSE_DELIMITED);
    assert_eq!(
        pairs[0].response.as_ref().unwrap().body,
        b"part one, part two"
    );
    assert_eq!(pairs[0].response.as_ref().unwrap().end_ns, 3_000);
}

#[test]
fn lost_bytes_flag_a_gap() {
    let mut e = engine();
    recv(&mut e, NGINX, 1_000, REQ);
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    e.tls_chunk(&chunk(
        NGINX,
        2_000,
        ChunkDirection::Sent,
        ChunkKind::Data,
        head,
        7,
    ));
    recv(&mut e, NGINX, 3_000, REQ);
    send(&mut e, NGINX, 4_000, RESP);
    let (_, pairs) = pairs_of(e);
    assert_eq!(pairs.len(), 2, "{pairs:#?}");
    assert_ne!(pairs[0].flags & PairFlags::GAP, 0, "{:?}", pairs[0].flags);
    assert_ne!(pairs[0].flags & PairFlags::TLS, 0);
    assert_eq!(pairs[1].flags, PairFlags::TLS);
    assert_eq!(pairs[1].response.as_ref().unwrap().body, b"hello");
}

#[test]
fn both_ends_captured_make_each_exchange_once() {
    let mut e = engine();
    send(&mut e, CURL, 1_000, REQ);
    recv(&mut e, NGINX, 1_100, REQ);
    send(&mut e, NGINX, 2_000, RESP);
    recv(&mut e, CURL, 2_100, RESP);
    close(&mut e, CURL, 3_000);
    close(&mut e, NGINX, 3_100);
    let (stats, pairs) = pairs_of(e);
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].process.as_ref().unwrap().command, "curl");
    assert_eq!(stats.tls_streams, 1);
    // nginx's request, response and close
    assert_eq!(stats.tls_duplicate_chunks, 3);
    assert_eq!(stats.tls_duplicate_bytes, (REQ.len() + RESP.len()) as u64);
}

#[test]
fn a_new_handle_on_the_same_end_starts_a_new_connection() {
    let mut e = engine();
    send(&mut e, CURL, 1_000, REQ);
    recv(&mut e, CURL, 2_000, RESP);
    let again = Side {
        conn_id: 0xaaa1,
        ..CURL
    };
    send(&mut e, again, 3_000, REQ);
    recv(&mut e, again, 4_000, RESP);
    let (stats, pairs) = pairs_of(e);
    assert_eq!(pairs.len(), 2);
    assert_eq!(stats.tls_streams, 2);
    assert_eq!(stats.tls_duplicate_chunks, 0);
    assert_ne!(pairs[0].id, pairs[1].id);
}

fn tcp<'a>(
    ts: u64,
    src: &str,
    dst: &str,
    seq: u32,
    flags: u8,
    payload: &'a [u8],
) -> TcpSegment<'a> {
    TcpSegment {
        ts_ns: ts,
        src: addr(src),
        dst: addr(dst),
        seq,
        ack: 0,
        flags: TcpFlags(flags),
        payload,
    }
}

const CLIENT_HELLO: &[u8] =
    b"\x16\x03\x01\x00\x40\x01\x00\x00\x3c\x03\x03GET / HTTP/1.1\r\n\r\nrandom";

#[test]
fn ciphertext_is_never_parsed_and_is_counted() {
    let mut e = engine();
    let (syn, ack, psh) = (TcpFlags::SYN, TcpFlags::ACK, TcpFlags::PSH | TcpFlags::ACK);
    e.segment(&tcp(100, CLIENT, SERVER, 999, syn, b""));
    e.segment(&tcp(110, SERVER, CLIENT, 4999, syn | ack, b""));
    e.segment(&tcp(120, CLIENT, SERVER, 1000, ack, b""));
    // The handshake, one byte at a time: the first bytes alone show it is TLS.
    for (i, b) in CLIENT_HELLO.iter().enumerate() {
        e.segment(&tcp(
            130,
            CLIENT,
            SERVER,
            1000 + i as u32,
            psh,
            std::slice::from_ref(b),
        ));
    }
    send(&mut e, CURL, 1_000, REQ);
    // Application data records after the plaintext is known.
    let record = b"\x17\x03\x03\x00\x05HTTP/1.1 200 OK\r\n\r\n";
    e.segment(&tcp(1_050, SERVER, CLIENT, 5000, psh, record));
    recv(&mut e, CURL, 2_000, RESP);
    e.segment(&tcp(2_050, CLIENT, SERVER, 2000, TcpFlags::FIN | ack, b""));
    let (stats, pairs) = pairs_of(e);
    assert_eq!(pairs.len(), 1, "{pairs:#?}");
    assert_eq!(pairs[0].flags, PairFlags::TLS);
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.tls_connections, 1);
    assert_eq!(stats.non_http_connections, 0);
    assert_eq!(stats.tls_ciphertext_segments, 1);
}

#[test]
fn a_tls_handshake_without_plaintext_makes_no_pair() {
    let mut e = engine();
    let (syn, ack, psh) = (TcpFlags::SYN, TcpFlags::ACK, TcpFlags::PSH | TcpFlags::ACK);
    e.segment(&tcp(100, CLIENT, SERVER, 999, syn, b""));
    e.segment(&tcp(110, SERVER, CLIENT, 4999, syn | ack, b""));
    e.segment(&tcp(130, CLIENT, SERVER, 1000, psh, CLIENT_HELLO));
    e.segment(&tcp(
        140,
        SERVER,
        CLIENT,
        5000,
        psh,
        b"\x16\x03\x03\x00\x10HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ));
    let (stats, pairs) = pairs_of(e);
    assert!(pairs.is_empty(), "{pairs:#?}");
    assert_eq!(stats.tls_connections, 1);
    assert_eq!(stats.non_http_connections, 0);
    assert_eq!(stats.tls_ciphertext_segments, 0);
}

#[test]
fn plaintext_seen_before_the_handshake_still_marks_the_connection() {
    // Live sources may hand over the chunk before the packet batch that holds the SYN.
    let mut e = engine();
    send(&mut e, CURL, 100, REQ);
    let (syn, ack, psh) = (TcpFlags::SYN, TcpFlags::ACK, TcpFlags::PSH | TcpFlags::ACK);
    e.segment(&tcp(90, CLIENT, SERVER, 999, syn, b""));
    e.segment(&tcp(
        95,
        CLIENT,
        SERVER,
        1000,
        psh | ack,
        b"GET /not-parsed HTTP/1.1\r\n\r\n",
    ));
    recv(&mut e, CURL, 200, RESP);
    let (stats, pairs) = pairs_of(e);
    assert_eq!(pairs.len(), 1);
    assert_eq!(stats.tls_connections, 1);
    assert_eq!(stats.tls_ciphertext_segments, 1);
}

#[test]
fn idle_streams_expire_and_non_http_streams_are_counted() {
    let http = Http1Config {
        max_detect_bytes: 16,
        ..Http1Config::default()
    };
    let mut e = FlowEngine::new(ReassemblyConfig::default(), http);
    let idle = ReassemblyConfig::default().idle_timeout_ns;
    send(&mut e, CURL, 1_000_000_000, REQ);
    let h2 = Side {
        pid: 7,
        conn_id: 7,
        local: "10.0.0.9:40000",
        remote: "10.0.0.8:443",
        command: "grpc",
    };
    send(
        &mut e,
        h2,
        1_000_000_000,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00",
    );
    close(&mut e, h2, 1_500_000_000);
    // Much later, another connection's chunk moves the clock past the idle timeout.
    let other = Side {
        pid: 9,
        conn_id: 9,
        local: "10.0.0.5:40000",
        remote: "10.0.0.6:443",
        command: "wget",
    };
    send(&mut e, other, 1_000_000_000 + idle + 2_000_000_000, REQ);
    assert_eq!(
        e.pending(),
        1,
        "the idle request was handed out without a response"
    );
    let (stats, pairs) = pairs_of(e);
    assert_eq!(stats.tls_idle_timeouts, 1);
    assert_eq!(stats.tls_streams, 3);
    assert_eq!(stats.tls_non_http_streams, 1);
    assert_eq!(
        pairs.len(),
        2,
        "curl's idle request, then wget's at the end"
    );
    assert_ne!(pairs[0].flags & PairFlags::NO_RESPONSE, 0);
}

#[test]
fn a_tls_connection_picked_up_mid_stream_is_told_from_http() {
    let mut e = engine();
    let psh = TcpFlags::PSH | TcpFlags::ACK;
    let record = b"\x17\x03\x03\x00\x30GET / HTTP/1.1\r\nHost: x\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
    e.segment(&tcp(100, CLIENT, SERVER, 7000, psh, record));
    e.segment(&tcp(200, SERVER, CLIENT, 9000, psh, record));
    // A plain HTTP connection picked up mid-stream beside it still parses.
    e.segment(&tcp(300, "10.0.0.7:40000", "10.0.0.8:80", 1, psh, REQ));
    e.segment(&tcp(400, "10.0.0.8:80", "10.0.0.7:40000", 1, psh, RESP));
    let (stats, pairs) = pairs_of(e);
    assert_eq!(pairs.len(), 1, "{pairs:#?}");
    assert_eq!(pairs[0].flags, 0);
    assert_eq!(pairs[0].process, None);
    assert_eq!(stats.tls_connections, 1);
}

#[test]
fn streams_without_addresses_stand_on_their_handle() {
    let unknown = |pid, conn_id| Side {
        pid,
        conn_id,
        local: "0.0.0.0:0",
        remote: "0.0.0.0:0",
        command: "svc",
    };
    let (a, b) = (unknown(1, 10), unknown(2, 20));
    let mut e = engine();
    // Two connections at once, interleaved: neither ends or swallows the other.
    send(&mut e, a, 1_000, b"GET /a HTTP/1.1\r\n\r\n");
    send(&mut e, b, 1_100, b"GET /b HTTP/1.1\r\n\r\n");
    recv(&mut e, a, 2_000, RESP);
    recv(&mut e, b, 2_100, RESP);
    // The first learns its addresses midway: same stream, now with its endpoints.
    let a_known = Side {
        local: CLIENT,
        remote: SERVER,
        ..a
    };
    send(&mut e, a_known, 3_000, b"GET /c HTTP/1.1\r\n\r\n");
    recv(&mut e, a_known, 4_000, RESP);
    let (stats, pairs) = pairs_of(e);
    assert_eq!(stats.tls_streams, 2);
    assert_eq!(stats.tls_duplicate_chunks, 0);
    let mut seen: Vec<(String, u32, String)> = pairs
        .iter()
        .map(|p| {
            assert_eq!(p.flags, PairFlags::TLS, "{p:#?}");
            let head = String::from_utf8_lossy(&p.request.as_ref().unwrap().head).into_owned();
            let f = rkyv::to_bytes::<rkyv::rancor::Error>(&p.flow).unwrap();
            let flow =
                rkyv::access::<crate::record::ArchivedFlow, rkyv::rancor::Error>(&f).unwrap();
            (
                head,
                p.process.as_ref().unwrap().pid,
                flow.dst().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "GET /a HTTP/1.1\r\n\r\n".to_string(),
                1,
                "0.0.0.0:0".to_string()
            ),
            (
                "GET /b HTTP/1.1\r\n\r\n".to_string(),
                2,
                "0.0.0.0:0".to_string()
            ),
            ("GET /c HTTP/1.1\r\n\r\n".to_string(), 1, SERVER.to_string()),
        ]
    );
}
