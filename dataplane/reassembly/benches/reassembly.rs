//! Reassembly throughput on small packets (~185 bytes on the wire, 131 bytes of payload), in
//! order and locally shuffled, over a few and over many interleaved connections.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tapline_reassembly::{
    CloseReason, ConnId, ConnInfo, Direction, Reassembler, ReassemblyConfig, StreamSink, TcpFlags,
    TcpSegment,
};

const PAYLOAD: usize = 131;

/// Counts delivered bytes, as cheaply as a sink can.
#[derive(Default)]
struct Count(u64);

impl StreamSink for Count {
    fn open(&mut self, _: &ConnInfo) {}
    fn data(&mut self, _: ConnId, _: Direction, _: u64, bytes: &[u8]) {
        self.0 += bytes.len() as u64;
    }
    fn gap(&mut self, _: ConnId, _: Direction, _: u64, _: u64) {}
    fn end(&mut self, _: ConnId, _: Direction, _: u64) {}
    fn close(&mut self, _: ConnId, _: u64, _: CloseReason) {}
}

/// splitmix64, for a fixed shuffle.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `per_flow` data segments for each of `flows` connections (after their SYNs), round robin;
/// with `jitter`, each segment may move up to that many places within its connection.
fn workload(flows: u16, per_flow: u32, jitter: usize, data: &[u8]) -> Vec<TcpSegment<'_>> {
    let server = SocketAddr::from(([10, 1, 0, 1], 80));
    let client = |i: u16| SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 30000 + i));
    let mut out = Vec::new();
    for i in 0..flows {
        out.push(TcpSegment {
            ts_ns: 0,
            src: client(i),
            dst: server,
            seq: 1000,
            ack: 0,
            flags: TcpFlags(TcpFlags::SYN),
            payload: &[],
        });
    }
    let mut rng = 42u64;
    let mut orders: Vec<Vec<u32>> = (0..flows)
        .map(|_| {
            let mut order: Vec<u32> = (0..per_flow).collect();
            if jitter > 0 {
                for k in 0..order.len() {
                    let j =
                        (k + (next(&mut rng) % (jitter as u64 + 1)) as usize).min(order.len() - 1);
                    order.swap(k, j);
                }
            }
            order
        })
        .collect();
    for k in 0..per_flow as usize {
        for (i, order) in orders.iter_mut().enumerate() {
            let n = order[k];
            out.push(TcpSegment {
                ts_ns: k as u64 * 1000,
                src: client(i as u16),
                dst: server,
                seq: 1001 + n * PAYLOAD as u32,
                ack: 0,
                flags: TcpFlags(TcpFlags::ACK | TcpFlags::PSH),
                payload: &data[..PAYLOAD],
            });
        }
    }
    out
}

fn run(segs: &[TcpSegment<'_>]) -> u64 {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut sink = Count::default();
    for seg in segs {
        r.segment(seg, &mut sink);
    }
    r.finish(&mut sink);
    sink.0
}

fn bench(c: &mut Criterion) {
    let data = vec![0x5a_u8; PAYLOAD];
    let mut group = c.benchmark_group("reassembly");
    for (name, flows, per_flow, jitter) in [
        ("in_order/64_flows", 64, 2_000, 0),
        ("in_order/10k_flows", 10_000, 13, 0),
        ("shuffled/64_flows", 64, 2_000, 8),
        ("shuffled/10k_flows", 10_000, 13, 8),
    ] {
        let segs = workload(flows, per_flow, jitter, &data);
        let bytes = u64::from(flows) * u64::from(per_flow) * PAYLOAD as u64;
        assert_eq!(run(&segs), bytes, "{name}: every byte delivered");
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function(name, |b| b.iter(|| black_box(run(black_box(&segs)))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
