//! The fuzz harness, shared by the `segments` fuzz target (which includes this file) and the
//! regression tests of its findings: decodes arbitrary bytes into segments over a few flows
//! (arbitrary flags, sequence numbers near each sender's stream or anywhere, payloads that agree
//! or disagree with each other) and feeds them to a reassembler whose sink checks the event
//! invariants, the memory bound and the counters.

use std::collections::HashMap;
use std::net::SocketAddr;

use tapline_reassembly::{
    CloseReason, ConnId, ConnInfo, Direction, OverlapPolicy, Reassembler, ReassemblyConfig,
    StreamSink, TcpFlags, TcpSegment,
};

/// Reads the input front to back; past the end it yields zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

/// The byte every consistent segment carries at sequence number `seq`, from sender `port`.
fn content(port: u16, seq: u32) -> u8 {
    (seq as u8) ^ (port as u8).wrapping_mul(31)
}

#[derive(Default)]
struct DirState {
    /// Bytes delivered or gapped.
    offset: u64,
    ended: bool,
    /// `byte ^ salt - offset`, constant over a direction when payloads are consistent.
    phase: Option<u8>,
}

struct Conn {
    info: ConnInfo,
    dirs: [DirState; 2],
}

/// Checks the sink contract on every event.
#[derive(Default)]
struct Checker {
    open: HashMap<ConnId, Conn>,
    closed: HashMap<ConnId, CloseReason>,
    consistent: bool,
    /// Print segments and events (set `REASM_TRACE` to debug a finding).
    trace: bool,
    data_bytes: u64,
    gap_bytes: u64,
    opened: u64,
}

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

impl Checker {
    fn dir(&mut self, conn: ConnId, dir: Direction) -> (&mut DirState, u16) {
        assert!(!self.closed.contains_key(&conn), "event after close");
        let c = self
            .open
            .get_mut(&conn)
            .expect("event for unknown connection");
        let sender = match dir {
            Direction::ToServer => c.info.client.port(),
            Direction::ToClient => c.info.server.port(),
        };
        let d = &mut c.dirs[idx(dir)];
        assert!(!d.ended, "event after end");
        (d, sender)
    }
}

impl StreamSink for Checker {
    fn open(&mut self, conn: &ConnInfo) {
        if self.trace {
            eprintln!("  open {conn:?}");
        }
        assert!(!self.open.contains_key(&conn.id), "opened twice");
        assert!(!self.closed.contains_key(&conn.id), "id reused");
        self.opened += 1;
        self.open.insert(
            conn.id,
            Conn {
                info: *conn,
                dirs: Default::default(),
            },
        );
    }

    fn data(&mut self, conn: ConnId, dir: Direction, _ts: u64, bytes: &[u8]) {
        if self.trace {
            eprintln!("  data {conn:?} {dir:?} {}", bytes.len());
        }
        assert!(!bytes.is_empty(), "empty data");
        let consistent = self.consistent;
        self.data_bytes += bytes.len() as u64;
        let (d, sender) = self.dir(conn, dir);
        for &b in bytes {
            let phase = (b ^ content(sender, 0)).wrapping_sub(d.offset as u8);
            if consistent {
                let expected = *d.phase.get_or_insert(phase);
                assert_eq!(phase, expected, "byte out of place at offset {}", d.offset);
            }
            d.offset += 1;
        }
    }

    fn gap(&mut self, conn: ConnId, dir: Direction, _ts: u64, len: u64) {
        if self.trace {
            eprintln!("  gap {conn:?} {dir:?} {len}");
        }
        assert!(len > 0, "empty gap");
        assert!(len <= 1 << 32, "absurd gap {len}");
        self.gap_bytes += len;
        let (d, _) = self.dir(conn, dir);
        d.offset += len;
    }

    fn end(&mut self, conn: ConnId, dir: Direction, _ts: u64) {
        let (d, _) = self.dir(conn, dir);
        d.ended = true;
    }

    fn close(&mut self, conn: ConnId, _ts: u64, reason: CloseReason) {
        assert!(
            self.open.remove(&conn).is_some(),
            "close of unknown connection"
        );
        self.closed.insert(conn, reason);
    }
}

/// Decodes `data` into segments, feeds them and checks every invariant; panics on a violation.
pub fn run(data: &[u8]) {
    let trace = std::env::var_os("REASM_TRACE").is_some();
    let mut input = Input(data);
    let mode = input.u8();
    let config = ReassemblyConfig {
        max_flows: 1 + usize::from(input.u8() % 4),
        max_buffered_per_direction: usize::from(input.u16() % 4096),
        max_buffered_total: usize::from(input.u16() % 8192),
        idle_timeout_ns: u64::from(input.u16()) * 16,
        overlap: if mode & 1 == 0 {
            OverlapPolicy::First
        } else {
            OverlapPolicy::Last
        },
    };
    let consistent = mode & 2 == 0;
    let mut r = Reassembler::new(config);
    let mut sink = Checker {
        consistent,
        trace,
        ..Checker::default()
    };
    let hosts: [SocketAddr; 4] = [
        SocketAddr::from(([10, 0, 0, 1], 40000)),
        SocketAddr::from(([10, 0, 0, 2], 80)),
        SocketAddr::from(([10, 0, 0, 3], 80)),
        "[2001:db8::1]:40000".parse().expect("address"),
    ];
    // Per sender: a sequence number segments are placed around.
    let mut cursor = [0u32; 4];
    for c in cursor.iter_mut() {
        *c = input.u32();
    }
    let mut ts = 0u64;
    let mut payload = Vec::with_capacity(1024);
    while !input.0.is_empty() {
        let head = input.u8();
        let (s, d) = match head & 7 {
            0 => (0, 1),
            1 => (1, 0),
            2 => (0, 2),
            3 => (2, 0),
            4 => (1, 2),
            5 => (2, 1),
            6 => (3, 1),
            _ => (1, 3),
        };
        ts += u64::from(input.u8()) << ((head >> 6) * 4);
        let flags = TcpFlags(input.u8());
        let jump = input.u16() as i16;
        let seq = if head & 0x20 != 0 {
            input.u32()
        } else {
            cursor[s].wrapping_add(jump as i32 as u32)
        };
        let ack_jump = input.u16() as i16;
        let ack = cursor[d].wrapping_add(ack_jump as i32 as u32);
        let len = usize::from(input.u8()) * if head & 0x08 != 0 { 8 } else { 1 };
        payload.clear();
        let port = hosts[s].port();
        if consistent {
            // Payload bytes start after the SYN, which takes one sequence number.
            let first = seq.wrapping_add(u32::from(flags.syn()));
            payload.extend((0..len).map(|i| content(port, first.wrapping_add(i as u32))));
        } else {
            payload.extend_from_slice(input.bytes(len));
        }
        if head & 0x10 != 0 {
            // Move the sender's stream forward, as a real sender does.
            cursor[s] = seq.wrapping_add(payload.len() as u32);
        }
        let seg = TcpSegment {
            ts_ns: ts,
            src: hosts[s],
            dst: hosts[d],
            seq,
            ack,
            flags,
            payload: &payload,
        };
        if trace {
            eprintln!(
                "seg {}->{} seq={} ack={} {:?} len={} ts={}",
                seg.src,
                seg.dst,
                seg.seq,
                seg.ack,
                seg.flags,
                seg.payload.len(),
                seg.ts_ns
            );
        }
        r.segment(&seg, &mut sink);
        if trace {
            eprintln!("  buffered={} stats={:?}", r.buffered_bytes(), r.stats());
        }
        let buffered = r.buffered_bytes();
        assert!(buffered <= config.max_buffered_total);
        assert!(buffered <= config.max_buffered_per_direction * 2 * r.flow_count());
        assert!(r.flow_count() <= config.max_flows);
        assert_eq!(r.flow_count(), sink.open.len());
        if flags.0 == 0xff {
            r.expire(ts, &mut sink);
        }
    }
    r.finish(&mut sink);
    assert!(sink.open.is_empty(), "connection left open");
    assert_eq!(r.flow_count(), 0);
    assert_eq!(r.buffered_bytes(), 0);
    let stats = r.stats();
    assert_eq!(stats.delivered_bytes, sink.data_bytes);
    assert_eq!(stats.gap_bytes, sink.gap_bytes);
    assert_eq!(stats.flows_opened, sink.opened);
    assert_eq!(stats.flows_closed, sink.opened);
    if consistent {
        assert_eq!(stats.conflicting_overlaps, 0);
    }
}
