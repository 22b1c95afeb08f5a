//! TLS plaintext chunks through the whole pipeline: chunks of several HTTP/1.1 exchanges (keep-
//! alive, a chunked response, a body split over many chunks, a close-delimited body ended by a
//! Close chunk, lost bytes), interleaved with the ciphertext packets of the same connections, one
//! connection seen from both ends, and a plain TCP conversation beside them. Every exchange must
//! come out exactly once, byte for byte, with the right process, whatever the worker count.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use etherparse::PacketBuilder;
use tapline_dataplane::capture::RawPacket;
use tapline_dataplane::import::{ImportOptions, Pipeline};
use tapline_dataplane::record::{ArchivedRRPair, PacketDirection, PairFlags};
use tapline_dataplane::snapshot::{Counts, Snapshot, Source};
use tapline_dataplane::tls_chunk::{ChunkDirection, ChunkKind, LINKTYPE_TAPLINE_TLS, TlsChunk};
use tapline_dataplane::view::PairView;

const ETHERNET: u16 = 1;

/// A capture being laid out: frames in capture order, and what the test expects of them.
#[derive(Default)]
struct Capture {
    t: u64,
    frames: Vec<(u64, u16, Vec<u8>)>,
    /// Endpoints whose plaintext was already seen, for the ciphertext count.
    plaintext_seen: Vec<(SocketAddr, SocketAddr)>,
    want: Counts,
}

fn key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b { (a, b) } else { (b, a) }
}

/// One process's end of a TLS connection.
#[derive(Clone, Copy)]
struct Proc {
    pid: u32,
    conn_id: u64,
    local: &'static str,
    remote: &'static str,
    command: &'static str,
    cgroup: &'static str,
    /// This view is the second one of its connection (the test expects it dropped).
    duplicate: bool,
}

/// The TCP side of a connection: the packets that carry its ciphertext.
struct Tcp {
    client: SocketAddr,
    server: SocketAddr,
    cseq: u32,
    sseq: u32,
}

impl Capture {
    fn tick(&mut self) -> u64 {
        self.t += 1_000;
        1_700_000_000_000_000_000 + self.t
    }

    fn chunk(
        &mut self,
        p: Proc,
        direction: ChunkDirection,
        kind: ChunkKind,
        data: &[u8],
        lost: u32,
    ) {
        let ts_ns = self.tick();
        let chunk = TlsChunk {
            ts_ns,
            pid: p.pid,
            tid: p.pid + 7,
            conn_id: p.conn_id,
            direction,
            kind,
            local: p.local.parse().unwrap(),
            remote: p.remote.parse().unwrap(),
            lost,
            cgroup_id: u64::from(p.pid) * 10,
            command: p.command,
            cgroup: p.cgroup,
            data,
        };
        let mut bytes = Vec::new();
        chunk.encode_into(&mut bytes);
        self.frames.push((ts_ns, LINKTYPE_TAPLINE_TLS, bytes));
        self.want.tls_chunks += 1;
        self.want.tls_plaintext_bytes += data.len() as u64;
        self.want.tls_lost_bytes += u64::from(lost);
        if p.duplicate {
            self.want.tls_duplicate_chunks += 1;
            self.want.tls_duplicate_bytes += data.len() as u64;
        }
        let k = key(chunk.local, chunk.remote);
        if !self.plaintext_seen.contains(&k) {
            self.plaintext_seen.push(k);
        }
    }

    /// `data` in pieces of `size` bytes, each its own chunk.
    fn pieces(&mut self, p: Proc, direction: ChunkDirection, data: &[u8], size: usize) {
        for piece in data.chunks(size) {
            self.chunk(p, direction, ChunkKind::Data, piece, 0);
        }
    }

    fn send(&mut self, p: Proc, data: &[u8]) {
        self.chunk(p, ChunkDirection::Sent, ChunkKind::Data, data, 0);
    }

    fn recv(&mut self, p: Proc, data: &[u8]) {
        self.chunk(p, ChunkDirection::Received, ChunkKind::Data, data, 0);
    }

    fn close(&mut self, p: Proc) {
        self.chunk(p, ChunkDirection::Sent, ChunkKind::Close, b"", 0);
    }

    fn packet(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: u32,
        flags: &str,
        payload: &[u8],
    ) {
        let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
            panic!("ipv4 only");
        };
        let mut b = PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(s.ip().octets(), d.ip().octets(), 64)
            .tcp(s.port(), d.port(), seq, 65535);
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('F') {
            b = b.fin();
        }
        if flags.contains('A') {
            b = b.ack(ack);
        }
        if flags.contains('P') {
            b = b.psh();
        }
        let mut bytes = Vec::new();
        b.write(&mut bytes, payload).unwrap();
        let ts = self.tick();
        self.frames.push((ts, ETHERNET, bytes));
        self.want.packets += 1;
        self.want.tcp_segments += 1;
        if !payload.is_empty() && self.plaintext_seen.contains(&key(src, dst)) {
            self.want.tls_ciphertext_segments += 1;
        }
    }

    fn open(&mut self, client: &str, server: &str) -> Tcp {
        let mut tcp = Tcp {
            client: client.parse().unwrap(),
            server: server.parse().unwrap(),
            cseq: 1000,
            sseq: 90_000,
        };
        self.packet(tcp.client, tcp.server, tcp.cseq, 0, "S", b"");
        self.packet(tcp.server, tcp.client, tcp.sseq, tcp.cseq + 1, "SA", b"");
        tcp.cseq += 1;
        tcp.sseq += 1;
        self.packet(tcp.client, tcp.server, tcp.cseq, tcp.sseq, "A", b"");
        self.want.connections += 1;
        tcp
    }

    fn upstream(&mut self, tcp: &mut Tcp, payload: &[u8]) {
        self.packet(tcp.client, tcp.server, tcp.cseq, tcp.sseq, "AP", payload);
        tcp.cseq += payload.len() as u32;
    }

    fn downstream(&mut self, tcp: &mut Tcp, payload: &[u8]) {
        self.packet(tcp.server, tcp.client, tcp.sseq, tcp.cseq, "AP", payload);
        tcp.sseq += payload.len() as u32;
    }

    fn fin(&mut self, tcp: &mut Tcp) {
        self.packet(tcp.client, tcp.server, tcp.cseq, tcp.sseq, "FA", b"");
        self.packet(tcp.server, tcp.client, tcp.sseq, tcp.cseq + 1, "FA", b"");
        self.packet(tcp.client, tcp.server, tcp.cseq + 1, tcp.sseq + 1, "A", b"");
    }

    /// A TLS handshake as ciphertext: records whose bytes even look like HTTP in places.
    fn handshake(&mut self, tcp: &mut Tcp) {
        let mut hello = b"\x16\x03\x01\x00\x60\x01\x00\x00\x5c\x03\x03".to_vec();
        hello.extend_from_slice(b"GET / HTTP/1.1\r\nHost: tempting\r\n\r\n");
        hello.extend(std::iter::repeat_n(0xa5, 40));
        self.upstream(tcp, &hello);
        let mut reply = b"\x16\x03\x03\x00\x40\x02\x00\x00\x3c\x03\x03".to_vec();
        reply.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
        self.downstream(tcp, &reply);
        self.upstream(
            tcp,
            b"\x14\x03\x03\x00\x01\x01\x17\x03\x03\x00\x10encrypted-finish",
        );
        self.want.tls_connections += 1;
    }

    /// An application data record standing for `len` bytes of plaintext.
    fn record(len: usize) -> Vec<u8> {
        let mut r = vec![0x17, 0x03, 0x03];
        r.extend_from_slice(&((len + 16) as u16).to_be_bytes());
        r.extend((0..len + 16).map(|i| (i * 131 + 7) as u8));
        r
    }
}

/// What one stored pair must be.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Want {
    path: String,
    client: SocketAddr,
    server: SocketAddr,
    req_head: Vec<u8>,
    req_body: Vec<u8>,
    resp_head: Vec<u8>,
    resp_body: Vec<u8>,
    flags: Vec<&'static str>,
    process: Option<(u32, String, String)>,
}

fn split_head(message: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let at = message.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    (message[..at].to_vec(), message[at..].to_vec())
}

fn want(
    path: &str,
    (client, server): (&str, &str),
    req: &[u8],
    resp: &[u8],
    body: Option<&[u8]>,
    flags: &[&'static str],
    process: Option<Proc>,
) -> Want {
    let (req_head, req_body) = split_head(req);
    let (resp_head, wire_body) = split_head(resp);
    Want {
        path: path.into(),
        client: client.parse().unwrap(),
        server: server.parse().unwrap(),
        req_head,
        req_body,
        resp_head,
        resp_body: body.map_or(wire_body, <[u8]>::to_vec),
        flags: flags.to_vec(),
        process: process.map(|p| (p.pid, p.command.to_string(), p.cgroup.to_string())),
    }
}

fn got(p: &ArchivedRRPair) -> Want {
    let v = PairView::new(p);
    let req = p.request.as_ref().unwrap();
    let resp = p.response.as_ref().unwrap();
    Want {
        path: v.path().unwrap(),
        client: p.flow.src(),
        server: p.flow.dst(),
        req_head: req.head.to_vec(),
        req_body: req.body.to_vec(),
        resp_head: resp.head.to_vec(),
        resp_body: resp.body.to_vec(),
        flags: v.flags().names().collect(),
        process: p.process.as_ref().map(|p| {
            (
                p.pid.to_native(),
                p.command.as_str().to_string(),
                p.cgroup.as_str().to_string(),
            )
        }),
    }
}

const SERVER: &str = "10.2.0.1:443";

/// Lays out the whole capture; returns it with the pairs it must yield.
fn scenario() -> (Capture, Vec<Want>) {
    let mut cap = Capture::default();
    let mut wants = Vec::new();
    let nginx = |conn_id, remote| Proc {
        pid: 1000,
        conn_id,
        local: SERVER,
        remote,
        command: "nginx",
        cgroup: "/system.slice/nginx.service",
        duplicate: false,
    };
    let curl = |pid, conn_id, local| Proc {
        pid,
        conn_id,
        local,
        remote: SERVER,
        command: "curl",
        cgroup: "",
        duplicate: false,
    };

    // 1. Keep-alive, seen by nginx, with its ciphertext: a plain exchange, an upload split
    //    into 50-byte chunks, and a chunked response cut into 7-byte chunks.
    let c1 = "10.1.0.1:50001";
    let n1 = nginx(0x1111, c1);
    let mut t1 = cap.open(c1, SERVER);
    cap.handshake(&mut t1);
    let req = b"GET /one HTTP/1.1\r\nHost: shop\r\n\r\n".to_vec();
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst".to_vec();
    cap.upstream(&mut t1, &Capture::record(req.len()));
    cap.recv(n1, &req);
    cap.send(n1, &resp);
    cap.downstream(&mut t1, &Capture::record(resp.len()));
    wants.push(want(
        "/one",
        (c1, SERVER),
        &req,
        &resp,
        None,
        &["tls"],
        Some(n1),
    ));

    let body: Vec<u8> = (0..3000).map(|i| b'a' + (i % 26) as u8).collect();
    let mut req = format!(
        "POST /upload HTTP/1.1\r\nHost: shop\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let resp = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok".to_vec();
    for (i, piece) in req.chunks(50).enumerate() {
        if i % 10 == 0 {
            cap.upstream(&mut t1, &Capture::record(500));
        }
        cap.recv(n1, piece);
    }
    cap.send(n1, &resp);
    cap.downstream(&mut t1, &Capture::record(resp.len()));
    wants.push(want(
        "/upload",
        (c1, SERVER),
        &req,
        &resp,
        None,
        &["tls"],
        Some(n1),
    ));

    let req = b"GET /stream HTTP/1.1\r\nHost: shop\r\n\r\n".to_vec();
    let mut resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut decoded = Vec::new();
    for k in 0..6 {
        let part = format!("part {k} of the stream;");
        resp.extend_from_slice(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes());
        decoded.extend_from_slice(part.as_bytes());
    }
    resp.extend_from_slice(b"0\r\n\r\n");
    cap.recv(n1, &req);
    cap.upstream(&mut t1, &Capture::record(req.len()));
    cap.pieces(n1, ChunkDirection::Sent, &resp, 7);
    cap.downstream(&mut t1, &Capture::record(resp.len()));
    wants.push(want(
        "/stream",
        (c1, SERVER),
        &req,
        &resp,
        Some(&decoded),
        &["tls"],
        Some(n1),
    ));
    cap.close(n1);
    cap.fin(&mut t1);

    // 2. A close-delimited body, seen by curl, ended by its Close chunk.
    let c2 = "10.1.0.2:50002";
    let u2 = curl(2000, 0x2222, c2);
    let mut t2 = cap.open(c2, SERVER);
    cap.handshake(&mut t2);
    let req = b"GET /legacy HTTP/1.1\r\nHost: old\r\n\r\n".to_vec();
    let resp = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nno length, the close ends it".to_vec();
    cap.send(u2, &req);
    cap.upstream(&mut t2, &Capture::record(req.len()));
    cap.downstream(&mut t2, &Capture::record(resp.len()));
    cap.pieces(u2, ChunkDirection::Received, &resp, 11);
    cap.close(u2);
    cap.fin(&mut t2);
    wants.push(want(
        "/legacy",
        (c2, SERVER),
        &req,
        &resp,
        None,
        &["close_delimited", "tls"],
        Some(u2),
    ));

    // 3. Lost bytes (no packets for this one): the pair they fall in is flagged, the next
    //    one is whole.
    let c3 = "10.1.0.3:50003";
    let n3 = nginx(0x3333, c3);
    let req = b"GET /big HTTP/1.1\r\nHost: shop\r\n\r\n".to_vec();
    cap.recv(n3, &req);
    let big_head = b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n".to_vec();
    let mut first = big_head.clone();
    first.extend(std::iter::repeat_n(b'x', 100));
    cap.chunk(n3, ChunkDirection::Sent, ChunkKind::Data, &first, 150);
    cap.send(n3, &[b'y'; 50]);
    let req2 = b"GET /after HTTP/1.1\r\nHost: shop\r\n\r\n".to_vec();
    let resp2 = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext".to_vec();
    cap.recv(n3, &req2);
    cap.send(n3, &resp2);
    cap.close(n3);
    wants.push(want(
        "/after",
        (c3, SERVER),
        &req2,
        &resp2,
        None,
        &["tls"],
        Some(n3),
    ));

    // 4. Both ends on the capture host: curl first, nginx's view is the duplicate.
    let c4 = "10.1.0.4:50004";
    let u4 = curl(2001, 0x4444, c4);
    let n4 = Proc {
        duplicate: true,
        ..nginx(0x4445, c4)
    };
    let mut t4 = cap.open(c4, SERVER);
    cap.handshake(&mut t4);
    for (path, answer) in [("/a", "alpha"), ("/b", "beta")] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: both\r\n\r\n").into_bytes();
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .into_bytes();
        cap.send(u4, &req);
        cap.upstream(&mut t4, &Capture::record(req.len()));
        cap.recv(n4, &req);
        cap.send(n4, &resp);
        cap.downstream(&mut t4, &Capture::record(resp.len()));
        cap.recv(u4, &resp);
        wants.push(want(
            path,
            (c4, SERVER),
            &req,
            &resp,
            None,
            &["tls"],
            Some(u4),
        ));
    }
    cap.close(n4);
    cap.close(u4);
    cap.fin(&mut t4);

    // 5. Plain HTTP over TCP beside it all: as before, no TLS marker, no process.
    let c5 = "10.1.0.5:50005";
    let plain_server = "10.2.0.2:80";
    let mut t5 = cap.open(c5, plain_server);
    let req = b"GET /plain HTTP/1.1\r\nHost: web\r\n\r\n".to_vec();
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain".to_vec();
    cap.upstream(&mut t5, &req);
    cap.downstream(&mut t5, &resp);
    cap.fin(&mut t5);
    wants.push(want(
        "/plain",
        (c5, plain_server),
        &req,
        &resp,
        None,
        &[],
        None,
    ));

    cap.want.tls_streams = 4;
    wants.sort();
    (cap, wants)
}

fn run(cap: &Capture, dir: &std::path::Path, options: &ImportOptions) -> (Snapshot, u64) {
    let mut pipeline = Pipeline::create(dir, options).unwrap();
    for (ts_ns, link_type, bytes) in &cap.frames {
        pipeline
            .packet(&RawPacket {
                ts_ns: *ts_ns,
                ifindex: 1,
                direction: PacketDirection::Unknown,
                link_type: *link_type,
                orig_len: bytes.len() as u32,
                data: bytes,
            })
            .unwrap();
    }
    let dropped_before_finish = pipeline.tap_dropped();
    let source = Source {
        kind: "test".into(),
        path: "tls".into(),
    };
    pipeline.finish(source, None).unwrap();
    (Snapshot::open(dir).unwrap(), dropped_before_finish)
}

#[test]
fn tls_exchanges_come_out_once_byte_exact_with_their_process() {
    let (cap, wants) = scenario();
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for workers in [1, 2, 4] {
        let out = dir.path().join(format!("snap-{workers}"));
        let options = ImportOptions {
            workers,
            ..ImportOptions::default()
        };
        let (snap, _) = run(&cap, &out, &options);
        let pairs = snap.pairs_sorted(&mut |e| panic!("{e}"));
        let lossy: Vec<_> = pairs
            .iter()
            .filter(|p| PairView::new(p).path().as_deref() == Some("/big"))
            .collect();
        assert_eq!(lossy.len(), 1, "{workers} workers");
        let flags = PairView::new(lossy[0]).flags();
        assert!(
            flags.0 & PairFlags::GAP != 0 && flags.0 & PairFlags::TLS != 0,
            "{flags:?}"
        );
        assert_eq!(lossy[0].process.as_ref().unwrap().pid.to_native(), 1000);
        let mut all: Vec<Want> = pairs
            .iter()
            .filter(|p| PairView::new(p).path().as_deref() != Some("/big"))
            .map(|p| got(p))
            .collect();
        all.sort();
        assert_eq!(all.len(), wants.len(), "{workers} workers: {all:#?}");
        for (g, w) in all.iter().zip(&wants) {
            assert_eq!(g, w, "{workers} workers");
        }

        let c = &snap.manifest().counts;
        let w = &cap.want;
        assert_eq!(c.rrpairs, wants.len() as u64 + 1);
        assert_eq!(
            (
                c.packets,
                c.tcp_segments,
                c.connections,
                c.non_http_connections
            ),
            (w.packets, w.tcp_segments, w.connections, 0),
            "{workers} workers"
        );
        assert_eq!(
            (
                c.tls_chunks,
                c.tls_plaintext_bytes,
                c.tls_lost_bytes,
                c.tls_bad_chunks
            ),
            (w.tls_chunks, w.tls_plaintext_bytes, w.tls_lost_bytes, 0),
        );
        assert_eq!(
            (c.tls_duplicate_chunks, c.tls_duplicate_bytes),
            (w.tls_duplicate_chunks, w.tls_duplicate_bytes),
        );
        assert!(w.tls_duplicate_chunks > 0 && w.tls_ciphertext_segments > 10);
        assert_eq!(
            (
                c.tls_ciphertext_segments,
                c.tls_connections,
                c.tls_streams,
                c.tls_non_http_streams
            ),
            (
                w.tls_ciphertext_segments,
                w.tls_connections,
                w.tls_streams,
                0
            ),
        );
        assert_eq!(c.tap_dropped_pairs, 0);
        outputs.push(
            pairs
                .iter()
                .map(|p| PairView::new(p).to_json().to_string())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(outputs[0], outputs[1], "1 vs 2 workers");
    assert_eq!(outputs[0], outputs[2], "1 vs 4 workers");

    let line = outputs[0].iter().find(|l| l.contains("/legacy")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["tls"], true);
    assert_eq!(v["process"]["pid"], 2000);
    assert_eq!(v["process"]["command"], "curl");
    assert_eq!(v["process"]["cgroup"], "");
    let plain = outputs[0].iter().find(|l| l.contains("/plain")).unwrap();
    assert!(
        !plain.contains("\"tls\"") && !plain.contains("\"process\""),
        "{plain}"
    );
}

#[test]
fn the_pair_tap_gets_every_stored_pair_or_counts_it() {
    let (cap, _) = scenario();
    let dir = tempfile::tempdir().unwrap();

    let (tx, rx) = crossbeam_channel::bounded(1024);
    let options = ImportOptions {
        workers: 2,
        pair_tap: Some(tx),
        ..ImportOptions::default()
    };
    let (snap, _) = run(&cap, &dir.path().join("tap"), &options);
    let mut tapped: Vec<u64> = rx
        .try_iter()
        .flat_map(|batch| {
            batch
                .pairs()
                .map(|p| p.unwrap().id.to_native())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut stored: Vec<u64> = snap
        .pairs(&mut |e| panic!("{e}"))
        .iter()
        .map(|p| p.id.to_native())
        .collect();
    tapped.sort_unstable();
    stored.sort_unstable();
    assert_eq!(tapped, stored);
    assert_eq!(snap.manifest().counts.tap_dropped_pairs, 0);

    // A tap that never takes anything refuses every batch: all counted, none stored less.
    let (tx, _rx) = crossbeam_channel::bounded(0);
    let options = ImportOptions {
        workers: 2,
        pair_tap: Some(tx),
        ..ImportOptions::default()
    };
    let (snap, _) = run(&cap, &dir.path().join("full"), &options);
    let counts = &snap.manifest().counts;
    assert_eq!(counts.rrpairs, stored.len() as u64);
    assert_eq!(counts.tap_dropped_pairs, counts.rrpairs);
}

#[test]
fn ids_and_flows_do_not_depend_on_which_side_was_seen() {
    // The same exchange captured at the client only and at the server only yields the same
    // flow (client → server); only the process differs.
    let (mut client_only, mut server_only) = (Capture::default(), Capture::default());
    let req = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
    let resp = b"HTTP/1.1 204 No Content\r\n\r\n";
    let curl = Proc {
        pid: 1,
        conn_id: 1,
        local: "10.9.0.1:40000",
        remote: SERVER,
        command: "curl",
        cgroup: "",
        duplicate: false,
    };
    let server = Proc {
        pid: 2,
        conn_id: 2,
        local: SERVER,
        remote: "10.9.0.1:40000",
        command: "nginx",
        cgroup: "",
        duplicate: false,
    };
    client_only.send(curl, req);
    client_only.recv(curl, resp);
    server_only.recv(server, req);
    server_only.send(server, resp);
    let dir = tempfile::tempdir().unwrap();
    let options = ImportOptions {
        workers: 1,
        ..ImportOptions::default()
    };
    let mut flows = BTreeMap::new();
    for (name, cap) in [("client", &client_only), ("server", &server_only)] {
        let (snap, _) = run(cap, &dir.path().join(name), &options);
        let pairs = snap.pairs(&mut |e| panic!("{e}"));
        assert_eq!(pairs.len(), 1);
        let p = pairs[0];
        assert_eq!(
            PairView::new(p).flags().names().collect::<Vec<_>>(),
            ["tls"]
        );
        flows.insert(name, (p.flow.src(), p.flow.dst()));
    }
    assert_eq!(flows["client"], flows["server"]);
    assert_eq!(flows["client"].1, SERVER.parse::<SocketAddr>().unwrap());
}
