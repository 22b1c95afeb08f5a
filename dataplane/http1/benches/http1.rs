//! Throughput of the connection parser on keep-alive streams: many small exchanges, and
//! exchanges with 64 KiB bodies fed in MSS-sized segments. Reports bytes/s (and exchanges/s
//! for the small ones).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tapline_http1::{Exchange, Http1Config, Http1Conn};
use tapline_reassembly::Direction;

/// One call per message, as a reassembler delivering whole small segments would.
fn small_stream(n: usize) -> Vec<(Direction, Vec<u8>)> {
    let mut calls = Vec::with_capacity(2 * n);
    for i in 0..n {
        let req = format!(
            "GET /api/v1/items/{i}?fields=name,price HTTP/1.1\r\nHost: shop.internal\r\n\
             User-Agent: bench/1.0\r\nAccept: application/json\r\n\r\n"
        );
        let body = format!("{{\"id\":{i},\"name\":\"item\",\"price\":12.5}}");
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        calls.push((Direction::ToServer, req.into_bytes()));
        calls.push((Direction::ToClient, resp.into_bytes()));
    }
    calls
}

/// Exchanges with 64 KiB bodies, the body cut into 1448-byte segments.
fn large_stream(n: usize) -> Vec<(Direction, Vec<u8>)> {
    let body = vec![b'x'; 64 * 1024];
    let mut calls = Vec::new();
    for i in 0..n {
        let req = format!(
            "POST /upload/{i} HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        calls.push((Direction::ToServer, req.into_bytes()));
        for seg in body.chunks(1448) {
            calls.push((Direction::ToServer, seg.to_vec()));
        }
        let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        calls.push((Direction::ToClient, resp.into_bytes()));
        for seg in body.chunks(1448) {
            calls.push((Direction::ToClient, seg.to_vec()));
        }
    }
    calls
}

fn run(calls: &[(Direction, Vec<u8>)], out: &mut Vec<Exchange>) -> usize {
    let mut conn = Http1Conn::new(Http1Config::default());
    let mut count = 0;
    for (ts, (dir, bytes)) in calls.iter().enumerate() {
        conn.data(*dir, ts as u64, bytes, out);
        count += out.len();
        out.clear();
    }
    conn.close(calls.len() as u64, out);
    count + out.len()
}

fn bench(c: &mut Criterion) {
    let mut out = Vec::new();
    let small = small_stream(1000);
    let small_bytes: usize = small.iter().map(|(_, b)| b.len()).sum();
    let mut g = c.benchmark_group("keepalive_small");
    g.throughput(Throughput::Bytes(small_bytes as u64));
    g.bench_function("bytes", |b| {
        b.iter(|| black_box(run(black_box(&small), &mut out)))
    });
    g.throughput(Throughput::Elements(1000));
    g.bench_function("exchanges", |b| {
        b.iter(|| black_box(run(black_box(&small), &mut out)))
    });
    g.finish();

    let large = large_stream(16);
    let large_bytes: usize = large.iter().map(|(_, b)| b.len()).sum();
    let mut g = c.benchmark_group("keepalive_64k_bodies");
    g.throughput(Throughput::Bytes(large_bytes as u64));
    g.bench_function("bytes", |b| {
        b.iter(|| black_box(run(black_box(&large), &mut out)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
