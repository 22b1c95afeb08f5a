//! Seeded randomized tests: a known stream cut into segments that are shuffled, duplicated,
//! partially overlapped and lost, checked byte for byte against the original.

use super::*;
use crate::OverlapPolicy;

/// splitmix64: tiny, seeded, good enough to shuffle test input.
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
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }

    /// Moves each element at most `window` places (reordering as networks do it).
    fn jitter<T>(&mut self, v: &mut [T], window: usize) {
        for i in 0..v.len() {
            let j = (i + self.below(window + 1)).min(v.len() - 1);
            v.swap(i, j);
        }
    }
}

/// Segments as (offset, len) that cover `[0, n)` in order, with sizes up to `max`.
fn cut(rng: &mut Rng, n: usize, max: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < n {
        let len = (1 + rng.below(max)).min(n - off);
        out.push((off, len));
        off += len;
    }
    out
}

/// Adds duplicates of some segments and extra segments overlapping others.
fn mess_up(rng: &mut Rng, segs: &mut Vec<(usize, usize)>, n: usize) {
    let count = segs.len();
    for _ in 0..count / 3 {
        let dup = segs[rng.below(count)];
        segs.push(dup);
    }
    for _ in 0..count / 3 {
        let start = rng.below(n);
        let len = (1 + rng.below(600)).min(n - start);
        segs.push((start, len));
    }
}

/// One direction rebuilt from events: `Some(byte)` delivered, `None` gapped.
fn rebuild(sink: &Recorder, conn: ConnId, dir: Direction) -> Vec<Option<u8>> {
    let mut out = Vec::new();
    for e in &sink.events {
        match e {
            Event::Data(c, d, _, bytes) if *c == conn && *d == dir => {
                out.extend(bytes.iter().map(|&b| Some(b)));
            }
            Event::Gap(c, d, _, len) if *c == conn && *d == dir => {
                out.extend(std::iter::repeat_n(None, *len as usize));
            }
            _ => {}
        }
    }
    out
}

fn stream(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next() as u8).collect()
}

fn isn(rng: &mut Rng, n: usize) -> u32 {
    if rng.chance(30) {
        // Close below the wrap, so the stream crosses it.
        u32::MAX - rng.below(n + 2) as u32
    } else {
        rng.next() as u32
    }
}

/// Feeds `segs` of `data` (client direction, ISN `isn`) and a FIN at a random position.
fn feed(
    r: &mut Reassembler,
    sink: &mut Recorder,
    conn: &Conn,
    isn: u32,
    data: &[u8],
    segs: &[(usize, usize)],
    fin_at: usize,
) {
    let base = isn.wrapping_add(1);
    r.segment(&conn.seg(C, isn, 0, SYN, b""), sink);
    for (i, &(off, len)) in segs.iter().enumerate() {
        if i == fin_at {
            let fin_seq = base.wrapping_add(data.len() as u32);
            r.segment(&conn.seg(C, fin_seq, 0, FIN, b""), sink);
        }
        let seq = base.wrapping_add(off as u32);
        r.segment(&conn.seg(C, seq, 0, PSH, &data[off..off + len]), sink);
        assert!(r.buffered_bytes() <= r.config().max_buffered_total);
    }
    if fin_at >= segs.len() {
        let fin_seq = base.wrapping_add(data.len() as u32);
        r.segment(&conn.seg(C, fin_seq, 0, FIN, b""), sink);
    }
}

#[test]
fn shuffled_duplicated_overlapping_segments_deliver_the_original_stream() {
    for seed in 0..300u64 {
        let mut rng = Rng(seed);
        let n = 1 + rng.below(20_000);
        let data = stream(&mut rng, n);
        let max = 1 + rng.below(1_500);
        let mut segs = cut(&mut rng, n, max);
        mess_up(&mut rng, &mut segs, n);
        if rng.chance(50) {
            rng.shuffle(&mut segs);
        } else {
            let window = 1 + rng.below(20);
            rng.jitter(&mut segs, window);
        }
        let policy = if seed % 2 == 0 {
            OverlapPolicy::First
        } else {
            OverlapPolicy::Last
        };
        let mut r = Reassembler::new(ReassemblyConfig {
            overlap: policy,
            ..ReassemblyConfig::default()
        });
        let mut sink = Recorder::default();
        let conn = Conn::new(40000);
        let isn = isn(&mut rng, n);
        let fin_at = rng.below(segs.len() + 1);
        feed(&mut r, &mut sink, &conn, isn, &data, &segs, fin_at);
        let id = sink.opened()[0].id;
        assert!(sink.ended(id, C), "seed {seed}: not ended");
        assert_eq!(sink.closes(), vec![], "seed {seed}");
        r.finish(&mut sink);
        assert_eq!(sink.bytes(id, C, 0), data, "seed {seed}");
        let stats = r.stats();
        assert_eq!(stats.gaps, 0, "seed {seed}");
        assert_eq!(stats.delivered_bytes, n as u64, "seed {seed}");
        assert_eq!(stats.conflicting_overlaps, 0, "seed {seed}");
        assert_eq!(r.buffered_bytes(), 0, "seed {seed}");
    }
}

#[test]
fn lost_segments_become_gaps_exactly_where_bytes_are_missing() {
    for seed in 0..300u64 {
        let mut rng = Rng(1_000 + seed);
        let n = 1 + rng.below(10_000);
        let data = stream(&mut rng, n);
        let max = 1 + rng.below(800);
        let mut segs = cut(&mut rng, n, max);
        mess_up(&mut rng, &mut segs, n);
        segs.retain(|_| !rng.chance(15));
        let window = 1 + rng.below(10);
        rng.jitter(&mut segs, window);
        let mut covered = vec![false; n];
        for &(off, len) in &segs {
            covered[off..off + len].fill(true);
        }
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut sink = Recorder::default();
        let conn = Conn::new(40000);
        let isn = isn(&mut rng, n);
        feed(&mut r, &mut sink, &conn, isn, &data, &segs, segs.len());
        if rng.chance(50) {
            // The server acknowledges everything, FIN included: the holes are declared now.
            let ack = isn.wrapping_add(n as u32 + 2);
            r.segment(&conn.seg(S, SISN, ack, SYN | ACK, b""), &mut sink);
            let id = sink.opened()[0].id;
            assert!(sink.ended(id, C), "seed {seed}");
        }
        r.finish(&mut sink);
        let id = sink.opened()[0].id;
        let expected: Vec<Option<u8>> = data
            .iter()
            .zip(&covered)
            .map(|(&b, &c)| c.then_some(b))
            .collect();
        assert_eq!(rebuild(&sink, id, C), expected, "seed {seed}");
        assert!(sink.ended(id, C), "seed {seed}");
        let missing = covered.iter().filter(|c| !**c).count() as u64;
        assert_eq!(r.stats().gap_bytes, missing, "seed {seed}");
    }
}

#[test]
fn tiny_buffers_still_deliver_every_byte_in_its_place() {
    for seed in 0..300u64 {
        let mut rng = Rng(2_000 + seed);
        let n = 1 + rng.below(8_000);
        let data = stream(&mut rng, n);
        let max = 1 + rng.below(500);
        let mut segs = cut(&mut rng, n, max);
        mess_up(&mut rng, &mut segs, n);
        rng.shuffle(&mut segs);
        let per_direction = rng.below(3_000);
        let mut r = Reassembler::new(ReassemblyConfig {
            max_buffered_per_direction: per_direction,
            max_buffered_total: rng.below(3_000),
            overlap: if rng.chance(50) {
                OverlapPolicy::First
            } else {
                OverlapPolicy::Last
            },
            ..ReassemblyConfig::default()
        });
        let mut sink = Recorder::default();
        let conn = Conn::new(40000);
        let isn = isn(&mut rng, n);
        feed(&mut r, &mut sink, &conn, isn, &data, &segs, segs.len());
        r.finish(&mut sink);
        let id = sink.opened()[0].id;
        let got = rebuild(&sink, id, C);
        assert_eq!(got.len(), n, "seed {seed}");
        for (i, b) in got.iter().enumerate() {
            if let Some(b) = b {
                assert_eq!(*b, data[i], "seed {seed} offset {i}");
            }
        }
        assert!(sink.ended(id, C), "seed {seed}");
    }
}

/// Arbitrary segments over a few flows: random flags, sequence numbers near each flow's
/// stream, random payloads and times.
/// `tick` scales the time between segments.
fn chaos(rng: &mut Rng, count: usize, tick: u64) -> Vec<(TcpSegment<'static>, usize)> {
    static BYTES: [u8; 2048] = {
        let mut b = [0u8; 2048];
        let mut i = 0;
        while i < b.len() {
            b[i] = (i * 7 % 251) as u8;
            i += 1;
        }
        b
    };
    let hosts: Vec<SocketAddr> = (0..3u8)
        .map(|i| SocketAddr::from(([10, 0, 0, i], 1000 + u16::from(i % 2) * 50000)))
        .collect();
    let mut ts = 0u64;
    (0..count)
        .map(|i| {
            let a = hosts[rng.below(hosts.len())];
            let mut b = hosts[rng.below(hosts.len())];
            if a == b {
                b = SocketAddr::from(([10, 0, 1, 1], 80));
            }
            ts += rng.below(3_000) as u64 * tick;
            let start = rng.below(BYTES.len());
            let len = rng.below(300).min(BYTES.len() - start);
            let seg = TcpSegment {
                ts_ns: ts,
                src: a,
                dst: b,
                seq: (rng.below(4_000) as u32).wrapping_sub(1_000),
                ack: (rng.below(4_000) as u32).wrapping_sub(1_000),
                flags: TcpFlags(rng.next() as u8 & !(rng.next() as u8 & TcpFlags::RST)),
                payload: &BYTES[start..start + len],
            };
            (seg, i)
        })
        .collect()
}

#[test]
fn the_same_segments_always_give_the_same_events() {
    for seed in 0..50u64 {
        let run = || {
            let mut rng = Rng(3_000 + seed);
            let segs = chaos(&mut rng, 2_000, 1);
            let mut r = Reassembler::new(ReassemblyConfig {
                max_flows: 3,
                max_buffered_per_direction: 2_000,
                max_buffered_total: 3_000,
                idle_timeout_ns: 20_000,
                overlap: OverlapPolicy::First,
            });
            let mut sink = Recorder::default();
            for (seg, i) in &segs {
                r.segment(seg, &mut sink);
                assert!(r.buffered_bytes() <= 3_000);
                if i % 97 == 0 {
                    r.expire(seg.ts_ns, &mut sink);
                }
            }
            r.finish(&mut sink);
            assert_eq!(r.flow_count(), 0);
            assert_eq!(r.buffered_bytes(), 0);
            (sink.events, r.stats().clone())
        };
        let first = run();
        assert!(!first.0.is_empty());
        assert_eq!(first, run(), "seed {seed}");
    }
}

#[test]
fn expire_is_complete_and_changes_no_connections_events() {
    for seed in 0..50u64 {
        // Ticks long enough for activity to move entries in the LRU lists, or too short to.
        let tick = if seed % 2 == 0 { 1 } else { 50_000 };
        let run = |expire_every: usize| {
            let mut rng = Rng(4_000 + seed);
            let segs = chaos(&mut rng, 2_000, tick);
            let mut r = Reassembler::new(ReassemblyConfig {
                idle_timeout_ns: 10_000 * tick,
                ..ReassemblyConfig::default()
            });
            let mut sink = Recorder::default();
            for (seg, i) in &segs {
                r.segment(seg, &mut sink);
                if expire_every > 0 && i % expire_every == 0 {
                    r.expire(seg.ts_ns, &mut sink);
                    assert_eq!(r.idle_entries(seg.ts_ns), 0, "expire left idle entries");
                }
            }
            r.finish(&mut sink);
            sink.per_conn()
        };
        let lazy = run(0);
        assert!(
            lazy.len() > 1,
            "seed {seed}: the input should time some flows out"
        );
        assert_eq!(lazy, run(1), "seed {seed}");
        assert_eq!(lazy, run(13), "seed {seed}");
    }
}
