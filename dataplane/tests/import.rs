//! Import of synthetic captures: TCP conversations built packet by packet, then reordered and
//! duplicated with a seeded generator, must yield exactly the exchanges that were sent, with
//! the same output for any number of workers.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use tapline_dataplane::import::{ImportOptions, import};
use tapline_dataplane::snapshot::Snapshot;
use tapline_dataplane::view::{PairView, sha256_hex};

/// A tiny deterministic PRNG (xorshift64*), so the test needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Pkt {
    ts_ns: u64,
    bytes: Vec<u8>,
}

struct Conversation {
    client: SocketAddr,
    server: SocketAddr,
    exchanges: Vec<(Vec<u8>, Vec<u8>)>,
}

fn tcp_packet(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        panic!("ipv4 only in this helper");
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
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

/// Lays a conversation out as packets: handshake, each request then its response in MSS-sized
/// segments with ACKs, then FINs.
fn packets_of(conv: &Conversation, start_ns: u64, mss: usize) -> Vec<Pkt> {
    let (c, s) = (conv.client, conv.server);
    let mut cseq: u32 = 0xfff0_0000u32.wrapping_add(start_ns as u32);
    let mut sseq: u32 = 0x1000_0000;
    let mut t = start_ns;
    let mut out = Vec::new();
    let mut push = |t: &mut u64, bytes: Vec<u8>| {
        *t += 10_000;
        out.push(Pkt { ts_ns: *t, bytes });
    };
    push(&mut t, tcp_packet(c, s, cseq, 0, "S", b""));
    push(
        &mut t,
        tcp_packet(s, c, sseq, cseq.wrapping_add(1), "SA", b""),
    );
    cseq = cseq.wrapping_add(1);
    sseq = sseq.wrapping_add(1);
    push(&mut t, tcp_packet(c, s, cseq, sseq, "A", b""));
    for (req, resp) in &conv.exchanges {
        for chunk in req.chunks(mss) {
            push(&mut t, tcp_packet(c, s, cseq, sseq, "AP", chunk));
            cseq = cseq.wrapping_add(chunk.len() as u32);
        }
        push(&mut t, tcp_packet(s, c, sseq, cseq, "A", b""));
        for chunk in resp.chunks(mss) {
            push(&mut t, tcp_packet(s, c, sseq, cseq, "AP", chunk));
            sseq = sseq.wrapping_add(chunk.len() as u32);
        }
        push(&mut t, tcp_packet(c, s, cseq, sseq, "A", b""));
    }
    push(&mut t, tcp_packet(c, s, cseq, sseq, "FA", b""));
    push(
        &mut t,
        tcp_packet(s, c, sseq, cseq.wrapping_add(1), "FA", b""),
    );
    push(
        &mut t,
        tcp_packet(c, s, cseq.wrapping_add(1), sseq.wrapping_add(1), "A", b""),
    );
    out
}

fn conversations(rng: &mut Rng, count: usize) -> Vec<Conversation> {
    (0..count)
        .map(|i| {
            let client: SocketAddr = format!("10.1.{}.{}:{}", i / 200, i % 200 + 1, 30000 + i).parse().unwrap();
            let server: SocketAddr = "10.2.0.1:8080".parse().unwrap();
            let n = 1 + rng.below(4) as usize;
            let exchanges = (0..n)
                .map(|k| {
                    let body_len = rng.below(5000) as usize;
                    let body: Vec<u8> = (0..body_len).map(|_| b'a' + rng.below(26) as u8).collect();
                    let req = if k % 2 == 0 {
                        format!("GET /item/{i}/{k}?q=1 HTTP/1.1\r\nHost: svc\r\n\r\n").into_bytes()
                    } else {
                        let mut r = format!("POST /item/{i}/{k} HTTP/1.1\r\nHost: svc\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                        r.extend_from_slice(&body);
                        r
                    };
                    let mut resp = if k % 3 == 2 {
                        let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                        for c in body.chunks(700) {
                            r.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                            r.extend_from_slice(c);
                            r.extend_from_slice(b"\r\n");
                        }
                        r.extend_from_slice(b"0\r\n\r\n");
                        r
                    } else {
                        format!("HTTP/1.1 {} OK\r\nContent-Length: {}\r\n\r\n", 200 + k, body.len()).into_bytes()
                    };
                    if k % 3 != 2 {
                        resp.extend_from_slice(&body);
                    }
                    (req, resp)
                })
                .collect();
            Conversation { client, server, exchanges }
        })
        .collect()
}

fn write_pcap(path: &Path, packets: &[Pkt]) {
    let file = std::fs::File::create(path).unwrap();
    let header = PcapHeader {
        ts_resolution: pcap_file::TsResolution::NanoSecond,
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(file, header).unwrap();
    for p in packets {
        let ts = std::time::Duration::from_nanos(p.ts_ns);
        writer
            .write_packet(&PcapPacket::new(ts, p.bytes.len() as u32, &p.bytes))
            .unwrap();
    }
}

/// (method, path, status, request body sha, response body sha) of every pair, sorted.
fn summary(snapshot: &Path) -> Vec<String> {
    let snap = Snapshot::open(snapshot).unwrap();
    let mut errors = Vec::new();
    let mut out: Vec<String> = snap
        .pairs_sorted(&mut |e| errors.push(e))
        .into_iter()
        .map(|p| {
            let v = PairView::new(p);
            let req = p.request.as_ref().map(|m| sha256_hex(m.body.as_slice()));
            let resp = p.response.as_ref().map(|m| sha256_hex(m.body.as_slice()));
            format!(
                "{} {} {} {:?} {:?} {:?}",
                v.method().unwrap_or("-"),
                v.path().unwrap_or_default(),
                v.status().unwrap_or(0),
                req,
                resp,
                v.flags().names().collect::<Vec<_>>()
            )
        })
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    out.sort();
    out
}

fn expected(convs: &[Conversation]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, conv) in convs.iter().enumerate() {
        for (k, (req, resp)) in conv.exchanges.iter().enumerate() {
            let method = if k % 2 == 0 { "GET" } else { "POST" };
            let path = if k % 2 == 0 {
                format!("/item/{i}/{k}?q=1")
            } else {
                format!("/item/{i}/{k}")
            };
            let req_body = &req[req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
            let resp_body_start = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let status = if k % 3 == 2 { 200 } else { 200 + k };
            let resp_body: Vec<u8> = if k % 3 == 2 {
                // decode the chunked framing written above
                let mut body = Vec::new();
                let mut rest = &resp[resp_body_start..];
                loop {
                    let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
                    let size =
                        usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16)
                            .unwrap();
                    rest = &rest[line_end + 2..];
                    if size == 0 {
                        break;
                    }
                    body.extend_from_slice(&rest[..size]);
                    rest = &rest[size + 2..];
                }
                body
            } else {
                resp[resp_body_start..].to_vec()
            };
            out.push(format!(
                "{} {} {} {:?} {:?} {:?}",
                method,
                path,
                status,
                Some(sha256_hex(req_body)),
                Some(sha256_hex(&resp_body)),
                Vec::<&str>::new()
            ));
        }
    }
    out.sort();
    out
}

/// Compares two sorted lists and shows only what differs.
fn assert_same(got: &[String], want: &[String], what: &str) {
    let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
    let extra: Vec<_> = got.iter().filter(|g| !want.contains(g)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} missing, {} unexpected\nmissing: {missing:#?}\nunexpected: {extra:#?}",
        missing.len(),
        extra.len()
    );
}

fn run_import(pcap: &Path, out: &Path, workers: usize) {
    let mut options = ImportOptions {
        workers,
        segment_capacity: 1 << 20,
        ..ImportOptions::default()
    };
    // Small segments make the test roll over many of them; bodies must still fit in one.
    options.http.max_body_bytes = 256 * 1024;
    let summary = import(pcap, out, &options, &mut |_, _| {}).unwrap();
    assert!(summary.input_error.is_none());
}

fn build_capture(seed: u64, perturb: bool) -> (Vec<Conversation>, Vec<Pkt>) {
    let mut rng = Rng(seed);
    let convs = conversations(&mut rng, 60);
    let mut packets = Vec::new();
    for (i, conv) in convs.iter().enumerate() {
        let mss = [1, 7, 536, 1460][i % 4];
        packets.extend(packets_of(
            conv,
            1_700_000_000_000_000_000 + i as u64 * 3_000,
            mss,
        ));
    }
    packets.sort_by_key(|p| p.ts_ns);
    if perturb {
        // Duplicate ~5% of packets and swap neighbours within a small window.
        let mut out: Vec<Pkt> = Vec::with_capacity(packets.len() * 2);
        for p in packets {
            if rng.below(20) == 0 {
                out.push(Pkt {
                    ts_ns: p.ts_ns,
                    bytes: p.bytes.clone(),
                });
            }
            out.push(p);
        }
        // Reorder only packets that travel the same way: a capture at one host sees a
        // receiver's ACK after the data it acknowledges, so an ACK beyond a hole means the
        // capture missed bytes (and is reported as a gap).
        let sender = |p: &Pkt| (p.bytes[26..30].to_vec(), p.bytes[34..36].to_vec());
        for i in 0..out.len() {
            if rng.below(8) == 0 {
                let j = (i + 1 + rng.below(6) as usize).min(out.len() - 1);
                if (i..=j).all(|k| sender(&out[k]) == sender(&out[i])) {
                    out.swap(i, j);
                }
            }
        }
        packets = out;
    }
    (convs, packets)
}

#[test]
fn clean_capture_yields_every_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let (convs, packets) = build_capture(7, false);
    let pcap = dir.path().join("clean.pcap");
    write_pcap(&pcap, &packets);
    run_import(&pcap, &dir.path().join("snap"), 1);
    assert_same(
        &summary(&dir.path().join("snap")),
        &expected(&convs),
        "clean",
    );
}

#[test]
fn reordered_and_duplicated_capture_yields_every_exchange_for_any_worker_count() {
    for seed in [1u64, 2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let (convs, packets) = build_capture(seed, true);
        let pcap = dir.path().join("shuffled.pcap");
        write_pcap(&pcap, &packets);
        let want = expected(&convs);
        let mut outputs = Vec::new();
        for workers in [1, 2, 5] {
            let out = dir.path().join(format!("snap-{workers}"));
            run_import(&pcap, &out, workers);
            let got = summary(&out);
            assert_same(&got, &want, &format!("seed {seed}, {workers} workers"));
            let snap = Snapshot::open(&out).unwrap();
            let ids: Vec<String> = snap
                .pairs_sorted(&mut |_| {})
                .into_iter()
                .map(|p| PairView::new(p).to_json().to_string())
                .collect();
            outputs.push(ids);
        }
        assert_eq!(outputs[0], outputs[1], "seed {seed}: 1 vs 2 workers");
        assert_eq!(outputs[0], outputs[2], "seed {seed}: 1 vs 5 workers");
    }
}

#[test]
fn truncated_capture_keeps_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let (_, packets) = build_capture(9, false);
    let pcap = dir.path().join("cut.pcap");
    write_pcap(&pcap, &packets);
    let bytes = std::fs::read(&pcap).unwrap();
    std::fs::write(&pcap, &bytes[..bytes.len() * 2 / 3 + 5]).unwrap();
    let out = dir.path().join("snap");
    let options = ImportOptions {
        workers: 2,
        ..ImportOptions::default()
    };
    let summary = import(&pcap, &out, &options, &mut |_, _| {}).unwrap();
    let err = summary.input_error.expect("a truncation error").to_string();
    assert!(err.contains("truncated record at byte offset"), "{err}");
    assert!(summary.manifest.counts.rrpairs > 10);
    let snap = Snapshot::open(&out).unwrap();
    assert_eq!(
        snap.pairs(&mut |e| panic!("{e}")).len() as u64,
        summary.manifest.counts.rrpairs
    );
}
